//! Where occ keeps its files. User mode lives under `$OCC_HOME` (default `~/.openclaw`).

use std::path::PathBuf;

/// The occ home directory: `$OCC_HOME` if set and non-empty, else `$HOME/.openclaw`.
pub fn occ_home() -> PathBuf {
    if let Some(h) = std::env::var_os("OCC_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    user_home().join(".openclaw")
}

/// The user's home: `$HOME`, else the password database's entry, else `/`.
pub fn user_home() -> PathBuf {
    occ_base::home::user_home().unwrap_or_else(|| PathBuf::from("/"))
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

/// Writes a private state file atomically: a temp file in the same directory (mode 0600),
/// fsynced, renamed over `path`, then the directory fsynced. Parent directories are created
/// with mode 0700.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    use occ_base::atomic::{self, AtomicError, Options};
    atomic::write_private(path, bytes, Options::durable().create_parents()).map_err(|e| match e {
        AtomicError::CreateDir { dir, source } => {
            format!("cannot create {}: {source}", dir.display())
        }
        other => format!("cannot write {}: {}", path.display(), other.into_source()),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn write_private_makes_0700_parents_and_a_0600_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("security/broker.json");
        write_private(&p, b"{}\n").unwrap();
        write_private(&p, b"{ }\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{ }\n");
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(&d.path().join("security")), 0o700);
        assert_eq!(
            std::fs::read_dir(d.path().join("security"))
                .unwrap()
                .count(),
            1
        );
    }

    #[test]
    fn write_private_names_what_it_cannot_create_or_write() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let e = write_private(&file.join("sub/x"), b"").unwrap_err();
        assert!(
            e.starts_with(&format!("cannot create {}: ", file.join("sub").display())),
            "{e}"
        );
        let dir = d.path().join("dir");
        std::fs::create_dir_all(dir.join("inside")).unwrap();
        let e = write_private(&dir, b"").unwrap_err();
        assert!(
            e.starts_with(&format!("cannot write {}: ", dir.display())),
            "{e}"
        );
    }
}
