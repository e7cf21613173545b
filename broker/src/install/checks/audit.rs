//! The audit log's check: the whole chain, resuming over unchanged archives.

use super::*;

/// Where `occ doctor` keeps its audit checkpoint: `$OCC_HOME/run` in user mode,
/// `/var/lib/occ` in system mode.
pub const AUDIT_CHECKPOINT: &str = "doctor-audit-checkpoint.json";

/// What the last whole-chain check found about the archives: each one's mark (path, length,
/// inode, mtime, ctime) and where the chain stood at the end of the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
struct AuditCheckpoint {
    archives: Vec<occ_scan::compliance::state::ArchiveMark>,
    last_file: String,
    last_seq: u64,
    last_hash: String,
    sealed: bool,
}

/// The audit log verifies, the whole chain (a missing log is fine: the broker creates it).
/// The current file is verified line by line every time; the archives behind it only when
/// they changed since the last whole-chain check left `checkpoint` (each one's length, inode,
/// mtime and ctime: an in-place edit moves the ctime, which only the kernel sets), so the cost
/// stays that of the current file. The current file must then continue the chain where the
/// last archive ended, as a rotation does; a checkpoint that no longer fits means the whole
/// chain again. The checkpoint is the one file a check writes: a cache, 0600, replaced
/// atomically, and failing to keep it only makes the next check a whole one.
pub fn audit_log(security: &Path, checkpoint: &Path) -> Check {
    use occ_scan::compliance::state::ArchiveMark;
    let log = security.join("privileged-audit.jsonl");
    if std::fs::symlink_metadata(&log).is_err() {
        return Check::ok(
            "audit_log",
            format!(
                "no audit log yet at {} (the broker creates it)",
                log.display()
            ),
        );
    }
    let head = match occ_audit::Head::read(&crate::paths::head_for(&log)) {
        Ok(h) => h,
        Err(e) => return Check::fail("audit_log", e.to_string(), "occ audit verify --json"),
    };
    // The archives the rotation links lead back to now, and their marks.
    let archives: Option<Vec<PathBuf>> = occ_audit::history(&log).ok().and_then(|h| {
        let n = h.files.len().saturating_sub(1);
        h.lost.is_none().then(|| h.files[..n].to_vec())
    });
    let marks: Option<Vec<ArchiveMark>> = archives
        .as_ref()
        .and_then(|a| a.iter().map(|f| ArchiveMark::of(f)).collect());
    let saved: Option<AuditCheckpoint> = std::fs::read(checkpoint)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let resume = saved.filter(|cp| {
        marks
            .as_ref()
            .is_some_and(|m| !m.is_empty() && *m == cp.archives)
    });
    let after = resume.as_ref().and_then(|cp| {
        Some(occ_audit::After {
            file: cp.last_file.clone(),
            seq: cp.last_seq,
            chain_hash: cp.last_hash.as_bytes().try_into().ok()?,
            sealed: cp.sealed,
        })
    });
    let resumed = after.is_some();
    let opts = occ_audit::VerifyOptions {
        head,
        after,
        ..occ_audit::VerifyOptions::default()
    };
    let result = if resumed {
        occ_audit::verify_files(std::slice::from_ref(&log), opts, &mut |_| {})
    } else {
        // The whole chain: every archive the rotation links lead back to, then the current file.
        occ_audit::verify_history(&log, opts, &mut |_| {})
    };
    match result {
        Ok(r) if r.intact() => {
            let n_archives = marks.as_ref().map_or(0, Vec::len);
            if !resumed {
                keep_checkpoint(checkpoint, archives.as_deref(), marks);
            }
            let how = if resumed {
                format!(
                    "{} events in the current file, checked; its {n_archives} archive(s) \
                     unchanged since the whole chain was verified ({})",
                    r.events,
                    checkpoint.display()
                )
            } else {
                format!("{} events in {} file(s)", r.events, r.files.len())
            };
            Check::ok("audit_log", format!("{} verifies ({how})", log.display()))
        }
        Ok(r) => {
            let _ = std::fs::remove_file(checkpoint);
            Check::fail(
                "audit_log",
                format!(
                    "{} has {} break(s){}",
                    log.display(),
                    r.breaks_total,
                    r.breaks
                        .first()
                        .map(|b| format!(
                            ", first in {} line {}: {}",
                            b.file.display(),
                            b.line,
                            b.reason
                        ))
                        .unwrap_or_default()
                ),
                format!(
                    "investigate with `occ audit verify --log {}`",
                    log.display()
                ),
            )
        }
        Err(e) => Check::fail("audit_log", e.to_string(), "occ audit verify"),
    }
}

/// After a whole-chain check that passed: where the last archive ends, with every archive's
/// mark, for the next check to resume from (none without archives).
fn keep_checkpoint(
    checkpoint: &Path,
    archives: Option<&[PathBuf]>,
    marks: Option<Vec<occ_scan::compliance::state::ArchiveMark>>,
) {
    let cp = (|| {
        let last = archives?.last()?;
        let marks = marks?;
        let text = std::fs::read(last).ok()?;
        let line = text.strip_suffix(b"\n")?.rsplit(|b| *b == b'\n').next()?;
        let ev: serde_json::Value = serde_json::from_slice(line).ok()?;
        Some(AuditCheckpoint {
            archives: marks,
            last_file: last.file_name()?.to_string_lossy().into_owned(),
            last_seq: ev["seq"].as_u64()?,
            last_hash: ev["chain_hash"].as_str()?.to_string(),
            sealed: ev.get("seal").is_some(),
        })
    })();
    match cp.and_then(|cp| serde_json::to_vec(&cp).ok()) {
        Some(text) => {
            let _ = occ_base::atomic::write_private(
                checkpoint,
                &text,
                occ_base::atomic::Options::durable().without_fsync(),
            );
        }
        None => {
            let _ = std::fs::remove_file(checkpoint);
        }
    }
}
