//! Audit-log verification for `audit_log_integrity`, through occ-audit: a full run of its
//! streaming verifier the first time (and whenever the stored checkpoint no longer fits the
//! file), and afterwards only the lines appended since the (offset, seq, hash) checkpoint kept
//! in the scan state, so a cycle stays fast on a huge log. Any doubt falls back to the full
//! verifier, whose report names each break. This module never writes the log.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use occ_audit::canon::{Checker, Field, Record};
use occ_audit::lines::{Line, LineReader};
use occ_audit::{Head, VerifyOptions};
use sha2::{Digest, Sha256};

use super::state::{ArchiveMark, AuditCheckpoint};
use crate::paths::Paths;

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    /// There is no log at this path.
    NoLog(String),
    /// The chain verifies.
    Intact {
        /// Events covered, from genesis.
        events: u64,
        /// Events verified in this run.
        new_events: u64,
        /// Whether the head checkpoint was present and matched.
        head_checked: bool,
        /// Last seq.
        last_seq: Option<u64>,
    },
    /// The chain is broken.
    Broken {
        /// Events read.
        events: u64,
        /// One line per break: `file:line seq reason detail`.
        breaks: Vec<String>,
    },
    /// The verifier is not available.
    Unavailable(String),
    /// The log could not be read.
    Error(String),
}

/// The default audit log.
pub fn log_path(paths: &Paths) -> PathBuf {
    paths.security_file("privileged-audit.jsonl")
}

/// A checked record's seq and chain hash (lowercase hex), or None when it does not verify on
/// its own (not canonical, no chain hash, or a content hash mismatch).
fn self_check(checker: &mut Checker, line: &[u8]) -> Option<(u64, String, Option<String>)> {
    let rec: Record<'_> = checker.check(line).ok()?;
    let seq = rec.field("seq")?.as_u64()?;
    let i = rec.find("chain_hash")?;
    let Field::Str(stored) = rec.field("chain_hash")? else {
        return None;
    };
    let stored = std::str::from_utf8(stored).ok()?.to_string();
    let mut h = Sha256::new();
    rec.pieces_without(&[i], |p| h.update(p));
    if super::util::hex(&h.finalize()) != stored {
        return None;
    }
    // A sealed record is left to the full verifier (the scanner has no seal key).
    if rec.find("seal").is_some() {
        return None;
    }
    let prev = match rec.field("prev_hash")? {
        Field::Null => None,
        Field::Str(p) => Some(std::str::from_utf8(p).ok()?.to_string()),
        _ => return None,
    };
    Some((seq, stored, prev))
}

/// The incremental path: verifies the checkpointed record and every complete line after it.
/// Returns (new checkpoint, new events) or None to fall back to the full verifier.
fn incremental(
    log: &Path,
    cp: &AuditCheckpoint,
    line_start: u64,
) -> Option<(AuditCheckpoint, u64, u64)> {
    let file = occ_audit::open_for_reading(log).ok()?;
    let len = file.metadata().ok()?.len();
    if cp.file != log || len < cp.offset || line_start >= cp.offset {
        return None;
    }
    let mut checker = Checker::new();
    // The checkpointed record must still be there, unchanged.
    let mut last = vec![0u8; usize::try_from(cp.offset - line_start).ok()?];
    file.read_exact_at(&mut last, line_start).ok()?;
    if last.pop() != Some(b'\n') {
        return None;
    }
    let (seq, hash, _) = self_check(&mut checker, &last)?;
    if seq != cp.seq || hash != cp.hash {
        return None;
    }
    let mut f = file;
    f.seek(SeekFrom::Start(cp.offset)).ok()?;
    let mut reader = LineReader::new((&mut f).take(len - cp.offset));
    let (mut prev_seq, mut prev_hash) = (seq, hash);
    let mut new_events = 0;
    let mut start = line_start;
    let mut offset = cp.offset;
    while let Some(line) = reader.next_line().ok()? {
        let Line::Complete(bytes) = line else {
            return None; // torn tail or oversized line: let the full verifier report it
        };
        let (s, h, p) = self_check(&mut checker, bytes)?;
        if s != prev_seq.checked_add(1)? || p.as_deref() != Some(prev_hash.as_str()) {
            return None;
        }
        new_events += 1;
        start = offset;
        offset = cp.offset + reader.offset;
        prev_seq = s;
        prev_hash = h;
    }
    Some((
        AuditCheckpoint {
            file: log.to_path_buf(),
            offset,
            seq: prev_seq,
            hash: prev_hash,
            line_start: start,
            archives: Vec::new(),
        },
        new_events,
        prev_seq,
    ))
}

fn head_matches(head: &Option<Head>, seq: u64, hash: &str) -> Option<bool> {
    head.as_ref().map(|h| h.seq == seq && h.chain_hash == hash)
}

/// Verifies the log, resuming from `checkpoint` when it still applies. Returns the outcome and
/// the checkpoint to store (None to drop it).
pub fn verify(
    paths: &Paths,
    checkpoint: Option<&AuditCheckpoint>,
) -> (AuditOutcome, Option<AuditCheckpoint>) {
    let log = log_path(paths);
    match std::fs::symlink_metadata(&log) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (AuditOutcome::NoLog(log.display().to_string()), None)
        }
        Err(e) => {
            return (
                AuditOutcome::Error(format!("{}: {e}", log.display())),
                checkpoint.cloned(),
            )
        }
        Ok(_) => {}
    }
    let head_path = log.with_file_name("audit-head.json");
    let head = match Head::read(&head_path) {
        Ok(h) => h,
        Err(e) => return (AuditOutcome::Error(e.to_string()), checkpoint.cloned()),
    };
    // The archives behind the current file, as the rotation links name them now.
    let archives: Option<Vec<ArchiveMark>> = occ_audit::history(&log).ok().and_then(|h| {
        let n = h.files.len().saturating_sub(1);
        (h.lost.is_none())
            .then(|| h.files[..n].iter().map(|f| ArchiveMark::of(f)).collect())
            .flatten()
    });
    let resumable = checkpoint.filter(|cp| archives.as_ref() == Some(&cp.archives));
    if let Some(cp) = resumable {
        if let Some((mut next, new_events, last_seq)) = incremental(&log, cp, cp.line_start) {
            next.archives = cp.archives.clone();
            // The head must name the last record; otherwise let the full verifier explain.
            if head_matches(&head, next.seq, &next.hash) != Some(false) {
                return (
                    AuditOutcome::Intact {
                        events: last_seq + 1,
                        new_events,
                        head_checked: head.is_some(),
                        last_seq: Some(last_seq),
                    },
                    Some(next),
                );
            }
        }
    }
    full(&log, head)
}

fn full(log: &Path, head: Option<Head>) -> (AuditOutcome, Option<AuditCheckpoint>) {
    let has_head = head.is_some();
    let opts = VerifyOptions {
        head,
        max_breaks: 20,
        ..VerifyOptions::default()
    };
    // The whole chain: every archive the rotation links lead back to, then the current file.
    let report = match occ_audit::verify_history(log, opts, &mut |_| {}) {
        Ok(r) => r,
        Err(e) => return (AuditOutcome::Error(e.to_string()), None),
    };
    if !report.intact() {
        let breaks = report
            .breaks
            .iter()
            .map(|b| {
                format!(
                    "line {} seq {}: {} ({})",
                    b.line,
                    b.seq.map_or("-".into(), |s| s.to_string()),
                    b.reason.as_str(),
                    b.detail
                )
            })
            .collect();
        return (
            AuditOutcome::Broken {
                events: report.events,
                breaks,
            },
            None,
        );
    }
    // Checkpoint at the last record, with the archives the chain ran through.
    let archives: Option<Vec<ArchiveMark>> = report
        .files
        .iter()
        .take(report.files.len().saturating_sub(1))
        .map(|f| ArchiveMark::of(f))
        .collect();
    let checkpoint = (|| {
        let file = occ_audit::open_for_reading(log).ok()?;
        let len = file.metadata().ok()?.len();
        let end = occ_audit::lines::complete_len(&file, len).ok()?;
        let start = occ_audit::lines::last_lines_offset(&file, end, 1).ok()?;
        let mut buf = vec![0u8; usize::try_from(end.checked_sub(start)?).ok()?];
        file.read_exact_at(&mut buf, start).ok()?;
        buf.pop();
        let (seq, hash, _) = self_check(&mut Checker::new(), &buf)?;
        Some(AuditCheckpoint {
            file: log.to_path_buf(),
            offset: end,
            seq,
            hash,
            line_start: start,
            archives: archives?,
        })
    })();
    (
        AuditOutcome::Intact {
            events: report.events,
            new_events: report.events,
            head_checked: has_head,
            last_seq: checkpoint.as_ref().map(|c| c.seq),
        },
        checkpoint,
    )
}
