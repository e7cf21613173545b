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
