//! OpenClaw's own backups. `openclaw backup create` writes `<timestamp>-openclaw-backup.tar.gz`
//! into `--output`, else the working directory, else (when that is inside the state it backs
//! up) the home directory; it refuses any path inside the state directory. Every run (archive,
//! SQLite snapshot, Git backup, the scheduled `backup enable` job) is recorded in OpenClaw's
//! state database, which `openclaw status --json` reports as `backups.latest` and
//! `backups.latestOk`. This module reads that record and, without the CLI, finds archives by
//! their name in the places `backup create` writes by default.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

/// The file name every `openclaw backup create` archive ends with.
pub const ARCHIVE_SUFFIX: &str = "-openclaw-backup.tar.gz";

/// One recorded backup run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// When it ran, in milliseconds since the epoch.
    pub created_at: u64,
    /// The archive, snapshot directory or repository it wrote (or tried to).
    #[serde(default)]
    pub archive_path: Option<String>,
    /// `ok` or `failed`.
    pub status: String,
    /// `archive`, `sqlite` or `git`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
}

impl Run {
    /// When it ran.
    pub fn time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.created_at)
    }
}

/// `backups` in `openclaw status --json`: the newest attempt and the newest success.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The newest attempt.
    #[serde(default)]
    pub latest: Option<Run>,
    /// The newest successful run.
    #[serde(default)]
    pub latest_ok: Option<Run>,
}

/// Reads `backups` from what `openclaw status --json` printed.
pub fn parse_status(stdout: &str) -> Result<Record, String> {
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        format!(
            "`openclaw status --json` printed something occ-scan cannot read ({e}): {}",
            stdout.trim().lines().next().unwrap_or("")
        )
    })?;
    match v.get("backups") {
        None | Some(Value::Null) => Ok(Record::default()),
        Some(b) => serde_json::from_value(b.clone()).map_err(|e| {
            format!("`openclaw status --json` has a `backups` occ-scan cannot read: {e}")
        }),
    }
}

/// An archive found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Its path.
    pub path: PathBuf,
    /// When it was last modified.
    pub modified: SystemTime,
}

/// Where `openclaw backup create` writes without `--output`, and where its docs put them: the
/// home directory (`~`, `~/Backups`, `~/Backups/openclaw`).
pub fn default_dirs(home: &Path) -> Vec<PathBuf> {
    vec![
        home.to_path_buf(),
        home.join("Backups"),
        home.join("Backups/openclaw"),
    ]
}

/// The newest non-empty `*-openclaw-backup.tar.gz` in `dirs` (missing directories skipped;
/// another read error is returned, naming the directory).
pub fn newest_archive(dirs: &[PathBuf]) -> Result<Option<Archive>, String> {
    let mut newest: Option<Archive> = None;
    for d in dirs {
        let rd = match std::fs::read_dir(d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot list {}: {e}", d.display())),
        };
        for entry in rd.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().ends_with(ARCHIVE_SUFFIX) {
                continue;
            }
            let Ok(m) = entry.metadata() else { continue };
            if !m.is_file() || m.len() == 0 {
                continue;
            }
            let Ok(modified) = m.modified() else { continue };
            if newest.as_ref().is_none_or(|n| modified > n.modified) {
                newest = Some(Archive {
                    path: entry.path(),
                    modified,
                });
            }
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_record_openclaw_status_prints() {
        // OpenClaw 2026.9.6, after one refused and one written archive.
        let text = r#"{"runtimeVersion": "2026.9.6", "backups": {
            "latest": {"id": "7ad7", "createdAt": 1796617254169, "archivePath": "/h/.openclaw/backups",
                       "status": "failed", "kind": "archive",
                       "error": "Backup output must not be written inside a source path: /h/.openclaw/backups is inside /h/.openclaw"},
            "latestOk": {"id": "86e5", "createdAt": 1796617182514,
                         "archivePath": "/h/Backups/2026-12-07T04-19-41.166+00-00-openclaw-backup.tar.gz",
                         "status": "ok", "kind": "archive"}}}"#;
        let r = parse_status(text).unwrap();
        assert_eq!(r.latest.as_ref().unwrap().status, "failed");
        let ok = r.latest_ok.unwrap();
        assert_eq!(ok.kind.as_deref(), Some("archive"));
        assert_eq!(
            ok.time(),
            UNIX_EPOCH + Duration::from_millis(1_796_617_182_514)
        );
        assert_eq!(
            parse_status(r#"{"backups": null}"#).unwrap(),
            Record::default()
        );
        assert!(parse_status("not json").is_err());
        assert!(parse_status(r#"{"backups": {"latestOk": {"status": "ok"}}}"#).is_err());
    }

    #[test]
    fn finds_the_newest_non_empty_archive_by_name() {
        let d = tempfile::tempdir().unwrap();
        let old = d
            .path()
            .join("2026-01-01T00-00-00.000+00-00-openclaw-backup.tar.gz");
        let new = d
            .path()
            .join("Backups/2026-02-01T00-00-00.000+00-00-openclaw-backup.tar.gz");
        std::fs::create_dir_all(new.parent().unwrap()).unwrap();
        std::fs::write(&old, "a").unwrap();
        std::fs::write(&new, "b").unwrap();
        std::fs::write(d.path().join("Backups/x-openclaw-backup.tar.gz"), "").unwrap();
        std::fs::write(d.path().join("Backups/notes.tar.gz"), "c").unwrap();
        let f = std::fs::File::options().write(true).open(&old).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(86_400))
            .unwrap();
        let got = newest_archive(&default_dirs(d.path())).unwrap().unwrap();
        assert_eq!(got.path, new);
        assert!(newest_archive(&[d.path().join("none")]).unwrap().is_none());
    }
}
