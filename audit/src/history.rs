//! A log's whole history: the current file and every archive its rotation links lead back to.
//! Each file that starts with `log_rotated` names the file before it (`prev_file`, a file name
//! in the same directory); the chain ends at a file that starts any other way (`log_initialized`
//! or a first event). A link that leads nowhere is a break the verifier reports, never a
//! silent start.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::canon::{self, Field, Record};
use crate::error::{AuditError, Result};
use crate::verify::{open_for_reading, verify_files, Break, Reason, Report, VerifyOptions};
use crate::MAX_LINE;

/// The files of one log, oldest first, and where the walk back stopped short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// Oldest first; the current file last.
    pub files: Vec<PathBuf>,
    /// A link that could not be followed: (the file whose first record names it, why).
    pub lost: Option<(PathBuf, String)>,
}

/// The `prev_file` the first record of `path` names, when it is a `log_rotated` genesis.
fn prev_file_of(path: &Path) -> Result<Option<String>> {
    use std::io::{BufRead, BufReader, Read};
    let file = open_for_reading(path)?;
    // Only the first line, and never more than MAX_LINE of it: a small buffer, not the
    // verifier's, since this runs once per file before verifying starts.
    let mut first = Vec::new();
    BufReader::with_capacity(16 << 10, file.take(MAX_LINE as u64 + 1))
        .read_until(b'\n', &mut first)
        .map_err(|e| AuditError::io(path, "read", e))?;
    let Some(bytes) = first.strip_suffix(b"\n") else {
        return Ok(None);
    };
    let mut members = Vec::new();
    if canon::lenient(bytes, &mut members).is_err() {
        return Ok(None);
    }
    let rec = Record {
        line: bytes,
        members: &members,
    };
    let rotated = matches!(rec.field("event_type"), Some(Field::Str(t)) if t == b"log_rotated");
    if !rotated {
        return Ok(None);
    }
    Ok(match rec.field("prev_file") {
        Some(Field::Str(f)) => Some(canon::decode_str(f)),
        _ => None,
    })
}

/// Walks back from `current` through the rotation links.
pub fn history(current: &Path) -> Result<History> {
    let mut files = vec![current.to_path_buf()];
    let mut seen: HashSet<PathBuf> = HashSet::from([current.to_path_buf()]);
    let mut lost = None;
    let dir = current.parent().unwrap_or(Path::new("."));
    let mut at = current.to_path_buf();
    while let Some(name) = prev_file_of(&at)? {
        let bare = Path::new(&name);
        if name.is_empty() || bare.components().count() != 1 || name == "." || name == ".." {
            lost = Some((at.clone(), format!("prev_file {name:?} is not a file name")));
            break;
        }
        let prev = dir.join(bare);
        if !seen.insert(prev.clone()) {
            lost = Some((at.clone(), format!("prev_file {name:?} loops back")));
            break;
        }
        match std::fs::symlink_metadata(&prev) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                lost = Some((
                    at.clone(),
                    format!(
                        "prev_file {name:?} is missing from {}: the log's history before it is \
                         gone",
                        dir.display()
                    ),
                ));
                break;
            }
            Err(e) => return Err(AuditError::io(&prev, "stat", e)),
        }
        files.push(prev.clone());
        at = prev;
    }
    files.reverse();
    Ok(History { files, lost })
}

/// Verifies the whole history of `current` as one chain: every archive the rotation links lead
/// back to, then the current file. A link to a missing file is a `rotation_link_mismatch`.
pub fn verify_history(
    current: &Path,
    opts: VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    let h = history(current)?;
    let mut report = verify_files(&h.files, opts, progress)?;
    if let Some((file, why)) = h.lost {
        report.breaks_total += 1;
        report.breaks.insert(
            0,
            Break {
                file,
                line: 1,
                seq: None,
                reason: Reason::RotationLinkMismatch,
                detail: why,
            },
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{Options, Writer};

    fn log_with_rotations(dir: &Path, rotations: usize) -> (PathBuf, Vec<PathBuf>) {
        let log = dir.join("privileged-audit.jsonl");
        let mut w = Writer::open(&log, Options::default()).expect("open");
        let mut archives = Vec::new();
        for i in 0..=rotations {
            for _ in 0..3 {
                w.append("command_run", BTreeMap::new()).expect("append");
            }
            if i < rotations {
                // Archive names carry milliseconds; keep them distinct.
                std::thread::sleep(std::time::Duration::from_millis(5));
                archives.push(w.rotate().expect("rotate").archive);
            }
        }
        (log, archives)
    }

    #[test]
    fn history_follows_every_rotation_back_to_the_start() {
        let dir = tempfile::tempdir().expect("dir");
        let (log, archives) = log_with_rotations(dir.path(), 3);
        let h = history(&log).expect("history");
        let mut want = archives.clone();
        want.push(log.clone());
        assert_eq!(h.files, want);
        assert_eq!(h.lost, None);
        let r = verify_history(&log, VerifyOptions::default(), &mut |_| {}).expect("verify");
        assert!(r.intact(), "{:?}", r.breaks);
        assert_eq!(r.events, 4 * 3 + 3);
    }

    #[test]
    fn a_deleted_archive_is_a_break_that_names_it() {
        let dir = tempfile::tempdir().expect("dir");
        let (log, archives) = log_with_rotations(dir.path(), 2);
        std::fs::remove_file(&archives[0]).expect("rm");
        let r = verify_history(&log, VerifyOptions::default(), &mut |_| {}).expect("verify");
        assert!(!r.intact());
        assert_eq!(r.breaks[0].reason, Reason::RotationLinkMismatch);
        assert_eq!(r.breaks[0].file, archives[1]);
        let name = archives[0].file_name().expect("name").to_string_lossy();
        assert!(r.breaks[0].detail.contains(name.as_ref()), "{:?}", r.breaks);
    }

    #[test]
    fn a_tampered_archive_breaks_the_whole_chain() {
        let dir = tempfile::tempdir().expect("dir");
        let (log, archives) = log_with_rotations(dir.path(), 1);
        let text = std::fs::read_to_string(&archives[0]).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        // Drop the middle record of the archive.
        let cut = format!("{}\n{}\n", lines[0], lines[2]);
        std::fs::write(&archives[0], cut).expect("write");
        let current_only = verify_files(
            std::slice::from_ref(&log),
            VerifyOptions::default(),
            &mut |_| {},
        )
        .expect("verify");
        assert!(current_only.intact(), "the current file alone looks fine");
        let r = verify_history(&log, VerifyOptions::default(), &mut |_| {}).expect("verify");
        assert!(!r.intact(), "the whole chain is not");
    }
}
