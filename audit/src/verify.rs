//! The streaming verifier: reads one or more log files in order with constant memory and
//! reports every break, one per problem, in file order, with the reasons of DESIGN.md's table.
//! It hashes each line's own bytes; it must never re-serialise a record to check it.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::Mac;
use occ_base::hex;
use sha2::{Digest, Sha256};

use crate::canon::{Checker, Field, LineError, Record};
use crate::chain::refuse_odd_path;
use crate::error::{AuditError, Result};
use crate::head::Head;
use crate::lines::{Line, LineReader};
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
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            key: None,
            head: None,
            max_breaks: 10_000,
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
    file_idx: usize,
}

/// Verifies `files` in order as one chain (the archives of a rotated log first, the current
/// log last). `progress` is called with the bytes read so far. An `Err` means a file could not
/// be read at all (exit 2); breaks are in the report (exit 1).
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
        file_idx: 0,
    };
    let mut done_before: u64 = 0;
    for (idx, path) in files.iter().enumerate() {
        st.file_idx = idx;
        let file = open_for_reading(path)?;
        let mut reader = LineReader::new(file);
        let mut line_no: u64 = 0;
        let mut last_progress = 0u64;
        loop {
            let line = reader
                .next_line()
                .map_err(|e| AuditError::io(path, "read", e))?;
            let Some(line) = line else { break };
            line_no += 1;
            match line {
                Line::Complete(bytes) => {
                    st.report.events += 1;
                    st.record(path, idx, line_no, bytes);
                }
                Line::TooLong { len } => {
                    st.report.events += 1;
                    st.brk(
                        path,
                        line_no,
                        None,
                        Reason::InvalidJson,
                        format!("line is {len} bytes, over the {MAX_LINE}-byte limit; skipped"),
                    );
                    st.prev = Prev::Unverifiable;
                    st.last_seq = None;
                }
                Line::Torn { len } => st.brk(
                    path,
                    line_no,
                    None,
                    Reason::TornTail,
                    format!(
                        "the file ends with {len} bytes and no newline (an interrupted write; \
                         the next append cuts them off and records log_recovered)"
                    ),
                ),
            }
            if reader.read_bytes - last_progress >= 1 << 20 {
                last_progress = reader.read_bytes;
                progress(done_before + last_progress);
            }
        }
        done_before += reader.read_bytes;
        progress(done_before);
        let name = file_name(path);
        st.prev_file_end = Some((name, st.last_seq, st.prev));
    }
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

/// The field's bytes when they are exactly 64 lowercase hex digits.
fn lower_hex64(h: &[u8]) -> Option<[u8; 64]> {
    let arr: [u8; 64] = h.try_into().ok()?;
    let bad = arr.iter().fold(0u8, |acc, &c| {
        acc | u8::from(!(c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
    });
    (bad == 0).then_some(arr)
}

fn hash_field(f: Option<Field<'_>>) -> Option<[u8; 64]> {
    match f {
        Some(Field::Str(h)) => lower_hex64(h),
        _ => None,
    }
}

/// Positions of the top-level members verify needs, found in one pass.
#[derive(Default)]
struct Index {
    seq: Option<usize>,
    timestamp: Option<usize>,
    chain_hash: Option<usize>,
    prev_hash: Option<usize>,
    seal: Option<usize>,
}

impl Index {
    fn of(rec: &Record<'_>) -> Index {
        let mut ix = Index::default();
        for (i, m) in rec.members.iter().enumerate() {
            let k = &rec.line[m.key.start..m.key.end];
            // Dispatch on length first so each comparison is a fixed-size one.
            let slot = match k {
                [b's', b'e', b'q'] => &mut ix.seq,
                [b's', b'e', b'a', b'l'] => &mut ix.seal,
                [b't', b'i', b'm', b'e', b's', b't', b'a', b'm', b'p'] => &mut ix.timestamp,
                [b'p', b'r', b'e', b'v', b'_', b'h', b'a', b's', b'h'] => &mut ix.prev_hash,
                [b'c', b'h', b'a', b'i', b'n', b'_', b'h', b'a', b's', b'h'] => &mut ix.chain_hash,
                _ => continue,
            };
            *slot = Some(i);
        }
        ix
    }
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

    fn record(&mut self, path: &Path, idx: usize, line_no: u64, bytes: &[u8]) {
        let first_in_file = line_no == 1;
        let mut checker = std::mem::take(&mut self.checker);
        match checker.check(bytes) {
            Ok(rec) => self.canonical(path, idx, line_no, first_in_file, rec),
            Err(LineError::Invalid(d)) => {
                self.brk(path, line_no, None, Reason::InvalidJson, d);
                self.prev = Prev::Unverifiable;
                self.last_seq = None;
            }
            Err(LineError::NotCanonical(d)) => {
                // Still follow the chain through it, so one reformatted line is one break.
                let rec = checker.salvaged(bytes);
                let seq = rec.field("seq").and_then(|f| f.as_u64());
                self.brk(path, line_no, seq, Reason::NotCanonical, d);
                self.prev = hash_field(rec.field("chain_hash")).map_or(Prev::NoHash, Prev::Hash);
                self.last_seq = seq;
                if let Some(s) = seq {
                    self.last_line = Some((idx, s, Some(line_no)));
                }
            }
        }
        self.checker = checker;
    }

    fn canonical(
        &mut self,
        path: &Path,
        idx: usize,
        line_no: u64,
        first_in_file: bool,
        rec: Record<'_>,
    ) {
        let ix = Index::of(&rec);
        let raw = |i: Option<usize>| {
            i.map(|i| {
                let m = rec.members[i];
                Field::of(&rec.line[m.value.start..m.value.end])
            })
        };
        let seq = raw(ix.seq).and_then(|f| f.as_u64());
        if let Some(Field::Str(t)) = raw(ix.timestamp) {
            if self.first_ts.is_empty() {
                self.first_ts.extend_from_slice(t);
            }
            self.last_ts.clear();
            self.last_ts.extend_from_slice(t);
        }

        // chain_hash: present, well-formed, and the hash of the line without it.
        let stored = match raw(ix.chain_hash) {
            Some(Field::Str(h)) => lower_hex64(h),
            _ => None,
        };
        match (ix.chain_hash, stored) {
            (Some(i), Some(want)) => {
                let mut h = Sha256::new();
                rec.pieces_without(&[i], |p| h.update(p));
                let got = hex::encode32(&h.finalize().into());
                if got != want {
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
        let prev_field = raw(ix.prev_hash);
        if first_in_file {
            if prev_field != Some(Field::Null) {
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
            if idx > 0 {
                self.rotation_link(path, line_no, seq, &rec);
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
                    if prev_field != Some(Field::Str(&want)) {
                        self.brk(
                            path,
                            line_no,
                            seq,
                            Reason::PrevHashLinkMismatch,
                            format!(
                                "prev_hash does not name the previous record ({}...)",
                                String::from_utf8_lossy(&want[..12])
                            ),
                        );
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
        match ix.seal {
            Some(si) => {
                self.sealing = true;
                self.report.sealed = true;
                let stored_seal = match raw(Some(si)) {
                    Some(Field::Str(h)) => lower_hex64(h),
                    _ => None,
                };
                if let Some(mut key) = self.key.take() {
                    let mut drop = [si, ix.chain_hash.unwrap_or(usize::MAX)];
                    drop.sort_unstable();
                    let drop: &[usize] = if drop[1] == usize::MAX {
                        &drop[..1]
                    } else {
                        &drop
                    };
                    let mac_of = |k: &SealKey| -> [u8; 64] {
                        let mut mac = k.mac();
                        rec.pieces_without(drop, |p| mac.update(p));
                        hex::encode32(&mac.finalize().into_bytes().into())
                    };
                    let mut ok = stored_seal == Some(mac_of(&key));
                    if !ok && !self.key_synced {
                        // The input may start after sealing began (the current file of a
                        // rotated log): ratchet k_0 forward to this record. There are at most
                        // seq+1 sealed records before it.
                        let mut k = key.next();
                        for _ in 0..seq.unwrap_or(0).min(MAX_RATCHET_SEARCH) {
                            if stored_seal == Some(mac_of(&k)) {
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
                            "the seal does not match the key (wrong key, or the record was \
                             altered and re-hashed)"
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
                let same = stored.is_some_and(|d| d[..] == *h.chain_hash.as_bytes());
                self.head_seen = Some(same);
            }
        }
        self.prev = stored.map_or(Prev::NoHash, Prev::Hash);
        self.last_seq = seq;
        if let Some(s) = seq {
            self.last_line = Some((idx, s, Some(line_no)));
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
