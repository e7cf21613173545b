//! The streaming verifier: reads one or more log files in order with constant memory and
//! reports every break, one per problem, in file order, with the reasons of DESIGN.md's table.
//! Lines are parsed and hashed on worker threads (`batch`, `examine`: each line's own bytes,
//! never a re-serialised record); this module checks, in file order, everything that ties a
//! line to the ones before it, so its breaks never depend on how the lines were split.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::Mac;
use occ_base::hex;

use crate::batch::{self, Item};
use crate::canon::{Checker, Field, Record, Span};
use crate::chain::refuse_odd_path;
use crate::error::{AuditError, Result};
use crate::examine::{hash_field, Canonical, Content, Fact, Facts, PrevHash, Seal};
use crate::head::Head;
use crate::seal::SealKey;
use crate::{sys, MAX_LINE};

/// How far the verifier ratchets k_0 forward to find the first sealed record it reads.
const MAX_RATCHET_SEARCH: u64 = 100_000_000;

/// Why a record breaks the chain. `as_str` gives the name DESIGN.md uses.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    InvalidJson,
    NotCanonical,
    MissingOrInvalidChainHash,
    ContentHashMismatch,
    GenesisPrevHashNotNull,
    PrevHashLinkMismatch,
    PreviousEventUnverifiable,
    SeqGap,
    TornTail,
    SealMismatch,
    SealMissing,
    BehindHeadCheckpoint,
    RotationLinkMismatch,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::NotCanonical => "not_canonical",
            Reason::MissingOrInvalidChainHash => "missing_or_invalid_chain_hash",
            Reason::ContentHashMismatch => "content_hash_mismatch",
            Reason::GenesisPrevHashNotNull => "genesis_prev_hash_not_null",
            Reason::PrevHashLinkMismatch => "prev_hash_link_mismatch",
            Reason::PreviousEventUnverifiable => "previous_event_unverifiable",
            Reason::SeqGap => "seq_gap",
            Reason::TornTail => "torn_tail",
            Reason::SealMismatch => "seal_mismatch",
            Reason::SealMissing => "seal_missing",
            Reason::BehindHeadCheckpoint => "behind_head_checkpoint",
            Reason::RotationLinkMismatch => "rotation_link_mismatch",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub file: PathBuf,
    /// From 1. For `behind_head_checkpoint` on an empty log, 0.
    pub line: u64,
    /// The record's own seq, when it has a readable one.
    pub seq: Option<u64>,
    pub reason: Reason,
    pub detail: String,
}

/// The outcome of a verify run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub files: Vec<PathBuf>,
    /// Newline-terminated lines read (records, intact or not).
    pub events: u64,
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    /// The first `max_breaks` breaks.
    pub breaks: Vec<Break>,
    /// All breaks found, including those not kept in `breaks`.
    pub breaks_total: u64,
    /// Whether any record read carries a seal (checked only with a key).
    pub sealed: bool,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.breaks_total == 0
    }
}

/// What to verify against.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// k_0, to check seals. Without it, seals are only checked for presence.
    pub key: Option<SealKey>,
    /// The head checkpoint the last record must match.
    pub head: Option<Head>,
    /// How many breaks to keep in the report (the count stays exact). Default 10,000.
    pub max_breaks: usize,
    /// Where the chain stands before the first of the files, when the files before it were
    /// verified earlier and are unchanged since: the first file must then continue that chain
    /// as a rotated file does (its rotation link and seq). Seals are not checked past such a
    /// start (the key's ratchet position is unknown), so it is for key-less checks only.
    pub after: Option<After>,
}

/// The end of a chain verified earlier: its last file's name, last seq and chain hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub file: String,
    pub seq: u64,
    /// 64 lowercase hex digits.
    pub chain_hash: [u8; 64],
    /// Whether sealing had begun: then every record after it must carry a seal.
    pub sealed: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            key: None,
            head: None,
            max_breaks: 10_000,
            after: None,
        }
    }
}

/// The previous record, as the next one must link to it.
#[derive(Debug, Clone, Copy)]
enum Prev {
    /// Nothing before (start of the first file).
    Start,
    /// A record with a well-formed stored chain hash (its hex digits).
    Hash([u8; 64]),
    /// The same, for a record in the batch being checked: its chain hash's span there. The
    /// worker compared the next line's prev_hash with it (`links_back`); the bytes are read
    /// only to report a mismatch, and copied into `Hash` when the batch ends.
    InBatch(Span),
    /// A line that did not parse: the link cannot be checked.
    Unverifiable,
    /// A parsed record without a usable chain hash (already reported).
    NoHash,
}

struct State {
    report: Report,
    max_breaks: usize,
    checker: Checker,
    key: Option<SealKey>,
    sealing: bool,
    /// Whether the key has been matched to a record's position in the ratchet yet.
    key_synced: bool,
    prev: Prev,
    last_seq: Option<u64>,
    /// The last record of the previous file: (file name, seq, chain hash), for rotation links.
    prev_file_end: Option<(String, Option<u64>, Prev)>,
    head: Option<Head>,
    /// (line, seq, file index) of the last record, and whether the head's seq was seen with
    /// the head's hash.
    last_line: Option<(usize, u64, Option<u64>)>,
    head_seen: Option<bool>,
    first_ts: Vec<u8>,
    last_ts: Vec<u8>,
    /// The first file continues a chain verified earlier ([`VerifyOptions::after`]).
    continues: bool,
}

/// Verifies `files` in order as one chain (the archives of a rotated log first, the current
/// log last). `progress` is called with the bytes read so far. An `Err` means a file could not
/// be read at all (exit 2); breaks are in the report (exit 1).
///
/// Lines are examined on one worker thread per core (`examine`: canonical form, chain hash);
/// this thread takes their results in file order and checks what links lines together.
pub fn verify_files(
    files: &[PathBuf],
    opts: VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    let mut st = State {
        report: Report {
            files: files.to_vec(),
            ..Report::default()
        },
        max_breaks: opts.max_breaks,
        checker: Checker::new(),
        key: opts.key,
        sealing: false,
        key_synced: false,
        prev: Prev::Start,
        last_seq: None,
        prev_file_end: None,
        head: opts.head,
        last_line: None,
        head_seen: None,
        first_ts: Vec::new(),
        last_ts: Vec::new(),
        continues: false,
    };
    if let Some(a) = opts.after {
        st.prev = Prev::Hash(a.chain_hash);
        st.last_seq = Some(a.seq);
        st.prev_file_end = Some((a.file, Some(a.seq), Prev::Hash(a.chain_hash)));
        st.sealing = a.sealed;
        st.report.sealed = a.sealed;
        st.continues = true;
    }
    let mut done_before: u64 = 0;
    let mut line_no: u64 = 0;
    let mut last_progress = 0u64;
    batch::in_order(files, |job| {
        let (idx, read) = (job.file, job.read);
        let Some(path) = files.get(idx) else {
            return Ok(());
        };
        match &job.item {
            Item::Lines(slot) => {
                let bytes = slot.bytes();
                for fact in &slot.facts.lines {
                    line_no += 1;
                    st.report.events += 1;
                    st.record(path, idx, line_no, bytes, fact);
                }
                st.batch_end(bytes, &slot.facts);
            }
            Item::TooLong { len } => {
                line_no += 1;
                st.report.events += 1;
                st.too_long(path, line_no, *len);
            }
            Item::Torn { len } => {
                line_no += 1;
                st.brk(
                    path,
                    line_no,
                    None,
                    Reason::TornTail,
                    format!(
                        "the file ends with {len} bytes and no newline (an interrupted write; \
                         the next append cuts them off and records log_recovered)"
                    ),
                );
            }
            Item::FileEnd => {
                done_before += read;
                progress(done_before);
                st.prev_file_end = Some((file_name(path), st.last_seq, st.prev));
                line_no = 0;
                last_progress = 0;
                return Ok(());
            }
            Item::Failed(_) | Item::Finished => return Ok(()),
        }
        if read - last_progress >= 1 << 20 {
            last_progress = read;
            progress(done_before + read);
        }
        Ok(())
    })?;
    st.finish_head(files);
    let mut r = st.report;
    r.first_timestamp = (!st.first_ts.is_empty()).then(|| crate::canon::decode_str(&st.first_ts));
    r.last_timestamp = (!st.last_ts.is_empty()).then(|| crate::canon::decode_str(&st.last_ts));
    Ok(r)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Opens a log for reading: no symlinks, regular files only (never blocks on a FIFO).
pub fn open_for_reading(path: &Path) -> Result<std::fs::File> {
    refuse_odd_path(path)?;
    let f = sys::open_read(path).map_err(|e| {
        if sys::is_symlink_error(&e) {
            AuditError::Symlink {
                path: path.to_owned(),
            }
        } else {
            AuditError::io(path, "open", e)
        }
    })?;
    let md = f.metadata().map_err(|e| AuditError::io(path, "stat", e))?;
    if !md.file_type().is_file() {
        return Err(AuditError::NotRegular {
            path: path.to_owned(),
        });
    }
    Ok(f)
}

impl State {
    fn brk(&mut self, file: &Path, line: u64, seq: Option<u64>, reason: Reason, detail: String) {
        self.report.breaks_total += 1;
        if self.report.breaks.len() < self.max_breaks {
            self.report.breaks.push(Break {
                file: file.to_owned(),
                line,
                seq,
                reason,
                detail,
            });
        }
    }

    /// After a batch's lines: keep what the next batch needs from its bytes.
    fn batch_end(&mut self, batch: &[u8], facts: &Facts) {
        if let Prev::InBatch(h) = self.prev {
            self.prev = batch[h.start..h.end]
                .try_into()
                .map_or(Prev::NoHash, Prev::Hash);
        }
        let at = |s: Span| &batch[s.start..s.end];
        if let Some(t) = facts.first_timestamp.filter(|_| self.first_ts.is_empty()) {
            self.first_ts.extend_from_slice(at(t));
        }
        if let Some(t) = facts.last_timestamp {
            self.last_ts.clear();
            self.last_ts.extend_from_slice(at(t));
        }
    }

    fn too_long(&mut self, path: &Path, line_no: u64, len: u64) {
        self.brk(
            path,
            line_no,
            None,
            Reason::InvalidJson,
            format!("line is {len} bytes, over the {MAX_LINE}-byte limit; skipped"),
        );
        self.prev = Prev::Unverifiable;
        self.last_seq = None;
    }

    /// One line's checks that depend on the lines before it, from what a worker found.
    /// `batch` holds the line at the fact's offsets.
    fn record(&mut self, path: &Path, idx: usize, line_no: u64, batch: &[u8], fact: &Fact) {
        match fact {
            Fact::Canonical(c) => self.canonical(path, idx, line_no, batch, c),
            Fact::TooLong { len } => self.too_long(path, line_no, *len),
            Fact::Invalid(d) => {
                self.brk(path, line_no, None, Reason::InvalidJson, d.clone());
                self.prev = Prev::Unverifiable;
                self.last_seq = None;
            }
            Fact::NotCanonical {
                detail,
                seq,
                chain_hash,
            } => {
                // Still follow the chain through it, so one reformatted line is one break.
                self.brk(path, line_no, *seq, Reason::NotCanonical, detail.clone());
                self.prev = chain_hash.map_or(Prev::NoHash, Prev::InBatch);
                self.last_seq = *seq;
                if let Some(s) = *seq {
                    self.last_line = Some((idx, s, Some(line_no)));
                }
            }
        }
    }

    fn canonical(&mut self, path: &Path, idx: usize, line_no: u64, batch: &[u8], c: &Canonical) {
        // Only what this thread must read of the line's bytes is read: a batch was filled and
        // examined on other cores, and every line touched here would be a cache miss.
        let at = |s: Span| &batch[s.start..s.end];
        let first_in_file = line_no == 1;
        let seq = c.seq;

        // chain_hash: present, well-formed, and the hash of the line without it.
        match (&c.content, c.chain_hash) {
            (Content::Matches, Some(_)) => {}
            (Content::Differs(got), Some(want)) => {
                let want = at(want);
                let got = hex::encode32(got);
                self.brk(
                    path,
                    line_no,
                    seq,
                    Reason::ContentHashMismatch,
                    format!(
                        "stored chain_hash {}..., content hashes to {}...",
                        String::from_utf8_lossy(&want[..12]),
                        String::from_utf8_lossy(&got[..12])
                    ),
                );
            }
            _ => self.brk(
                path,
                line_no,
                seq,
                Reason::MissingOrInvalidChainHash,
                "chain_hash is absent or not 64 lowercase hex digits".into(),
            ),
        }

        // prev_hash: null at a file's genesis, else the previous record's stored hash.
        if first_in_file {
            if c.prev_hash != PrevHash::Null {
                self.brk(
                    path,
                    line_no,
                    seq,
                    Reason::GenesisPrevHashNotNull,
                    "the first record of a file must have prev_hash null (records before it \
                     may have been removed)"
                        .into(),
                );
            }
            if idx > 0 || self.continues {
                // Rare (once per file): parse the line again for its prev_file_* members.
                let line = at(c.line);
                let mut checker = std::mem::take(&mut self.checker);
                if let Ok(rec) = checker.check(line) {
                    self.rotation_link(path, line_no, seq, &rec);
                }
                self.checker = checker;
            }
        } else {
            match self.prev {
                Prev::Unverifiable => self.brk(
                    path,
                    line_no,
                    seq,
                    Reason::PreviousEventUnverifiable,
                    "the previous line is not JSON, so this link cannot be checked".into(),
                ),
                Prev::Hash(want) => {
                    if !matches!(c.prev_hash, PrevHash::Str64(p) if at(p) == want) {
                        self.link_mismatch(path, line_no, seq, &want);
                    }
                }
                Prev::InBatch(h) => {
                    if !c.links_back {
                        self.link_mismatch(path, line_no, seq, at(h));
                    }
                }
                Prev::NoHash | Prev::Start => {}
            }
        }

        // seq: previous + 1.
        match (seq, self.last_seq) {
            (None, _) => self.brk(
                path,
                line_no,
                None,
                Reason::SeqGap,
                "seq is absent or not a non-negative integer".into(),
            ),
            (Some(s), Some(p)) if Some(s) != p.checked_add(1) => self.brk(
                path,
                line_no,
                seq,
                Reason::SeqGap,
                format!("seq {s} follows seq {p}"),
            ),
            _ => {}
        }

        // seal: once one event is sealed, every later one must be.
        match &c.seal {
            Some(seal) => self.seal(path, line_no, seq, batch, seal),
            None if self.sealing => self.brk(
                path,
                line_no,
                seq,
                Reason::SealMissing,
                "sealing began earlier in the log, but this record has no seal".into(),
            ),
            None => {}
        }

        if let (Some(h), Some(s)) = (&self.head, seq) {
            if h.seq == s {
                let same = c
                    .chain_hash
                    .is_some_and(|d| at(d) == h.chain_hash.as_bytes());
                self.head_seen = Some(same);
            }
        }
        self.prev = c.chain_hash.map_or(Prev::NoHash, Prev::InBatch);
        self.last_seq = seq;
        if let Some(s) = seq {
            self.last_line = Some((idx, s, Some(line_no)));
        }
    }

    fn link_mismatch(&mut self, path: &Path, line_no: u64, seq: Option<u64>, want: &[u8]) {
        self.brk(
            path,
            line_no,
            seq,
            Reason::PrevHashLinkMismatch,
            format!(
                "prev_hash does not name the previous record ({}...)",
                String::from_utf8_lossy(&want[..want.len().min(12)])
            ),
        );
    }

    /// The seal, in order: its key is the one after the previous sealed record's.
    fn seal(&mut self, path: &Path, line_no: u64, seq: Option<u64>, batch: &[u8], seal: &Seal) {
        self.sealing = true;
        self.report.sealed = true;
        let stored_seal: Option<&[u8]> = seal.stored.map(|s| &batch[s.start..s.end]);
        if let Some(mut key) = self.key.take() {
            let mac_of = |k: &SealKey| -> [u8; 64] {
                let mut mac = k.mac();
                seal.input.feed(batch, |p| mac.update(p));
                hex::encode32(&mac.finalize().into_bytes().into())
            };
            let matches = |k: &SealKey| stored_seal.is_some_and(|s| s == mac_of(k));
            let mut ok = matches(&key);
            if !ok && !self.key_synced {
                // The input may start after sealing began (the current file of a rotated
                // log): ratchet k_0 forward to this record. There are at most seq+1 sealed
                // records before it.
                let mut k = key.next();
                for _ in 0..seq.unwrap_or(0).min(MAX_RATCHET_SEARCH) {
                    if matches(&k) {
                        key = k;
                        ok = true;
                        break;
                    }
                    k = k.next();
                }
            }
            self.key_synced = true;
            if !ok {
                self.brk(
                    path,
                    line_no,
                    seq,
                    Reason::SealMismatch,
                    "the seal does not match the key (wrong key, or the record was altered \
                     and re-hashed)"
                        .into(),
                );
            }
            self.key = Some(key.next());
        } else if stored_seal.is_none() {
            self.brk(
                path,
                line_no,
                seq,
                Reason::SealMismatch,
                "seal is not 64 lowercase hex digits".into(),
            );
        }
    }

    fn rotation_link(&mut self, path: &Path, line_no: u64, seq: Option<u64>, rec: &Record<'_>) {
        let Some((name, pseq, phash)) = self.prev_file_end.clone() else {
            return;
        };
        let mut problems = Vec::new();
        match rec.field("prev_file") {
            Some(Field::Str(f)) => {
                let f = crate::canon::decode_str(f);
                let base = Path::new(&f)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if base != name {
                    problems.push(format!("prev_file {f:?} is not the previous file {name:?}"));
                }
            }
            _ => problems.push("prev_file is absent".to_owned()),
        }
        let fseq = rec.field("prev_file_seq").and_then(|f| f.as_u64());
        if fseq.is_none() || fseq != pseq {
            problems.push(format!(
                "prev_file_seq {} is not the previous file's last seq {}",
                fseq.map_or("absent".into(), |s| s.to_string()),
                pseq.map_or("unknown".into(), |s| s.to_string())
            ));
        }
        let fhash = hash_field(rec.field("prev_file_hash"));
        let ok = matches!((fhash, phash), (Some(a), Prev::Hash(b)) if a == b);
        if !ok {
            problems.push("prev_file_hash is not the previous file's last chain_hash".into());
        }
        if !problems.is_empty() {
            self.brk(
                path,
                line_no,
                seq,
                Reason::RotationLinkMismatch,
                problems.join("; "),
            );
        }
    }

    fn finish_head(&mut self, files: &[PathBuf]) {
        let Some(head) = self.head.clone() else {
            return;
        };
        let Some(last_file) = files.last() else {
            return;
        };
        let (line, last_seq, file) = match self.last_line {
            Some((idx, s, l)) => (l.unwrap_or(0), Some(s), files[idx].clone()),
            None => (0, None, last_file.clone()),
        };
        let detail = match (last_seq, self.head_seen) {
            (None, _) => Some(format!(
                "the head names seq {} but the log holds no readable record",
                head.seq
            )),
            (Some(s), _) if head.seq > s => Some(format!(
                "the head names seq {} but the log ends at seq {s}: records were cut off",
                head.seq
            )),
            (Some(_), Some(true)) => None,
            (Some(_), Some(false)) => Some(format!(
                "the record with seq {} has a different chain_hash than the head names",
                head.seq
            )),
            (Some(_), None) => Some(format!(
                "the head names seq {}, which is not in these files",
                head.seq
            )),
        };
        if let Some(d) = detail {
            self.brk(&file, line, last_seq, Reason::BehindHeadCheckpoint, d);
        }
    }
}
