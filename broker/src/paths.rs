//! Where occ keeps its files. User mode lives under `$OCC_HOME` (default `~/.openclaw`).

use std::path::PathBuf;

/// The occ home directory: `$OCC_HOME` if set and non-empty, else `$HOME/.openclaw`.
pub fn occ_home() -> PathBuf {
    if let Some(h) = std::env::var_os("OCC_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".openclaw")
}

/// `$OCC_HOME/security`.
pub fn security_dir() -> PathBuf {
    occ_home().join("security")
}

/// The default audit log.
pub fn audit_log() -> PathBuf {
    security_dir().join("privileged-audit.jsonl")
}

/// The head checkpoint beside a log: `audit-head.json` in the same directory.
pub fn head_for(log: &std::path::Path) -> PathBuf {
    log.with_file_name("audit-head.json")
}

/// The seal key beside a log: `audit-seal.key` in the same directory.
pub fn seal_key_for(log: &std::path::Path) -> PathBuf {
    log.with_file_name("audit-seal.key")
}

/// Writes a private state file atomically: a temp file in the same directory (mode 0600),
/// fsynced, renamed over `path`, then the directory fsynced. Parent directories are created
/// with mode 0700.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}
