//! The original tool's plaintext token, `OPENCLAW_APPROVAL_TOKEN`. It is accepted only from
//! the broker's own start environment or from a 0600 `$OCC_HOME/env` file owned by the broker's
//! user — never from a caller — and only its digest is kept. `occ doctor` flags it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Where the legacy token came from, for `occ doctor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The broker's own start environment.
    Environment,
    /// `$OCC_HOME/env`.
    EnvFile,
}

/// Finds a legacy token; returns its source and SHA-256 digest.
pub fn find(home: &Path) -> Option<(Source, String)> {
    if let Some(t) = std::env::var("OPENCLAW_APPROVAL_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        return Some((Source::Environment, crate::token::hash_hex(&t)));
    }
    let file = home.join("env");
    let md = std::fs::symlink_metadata(&file).ok()?;
    let me = nix::unistd::geteuid().as_raw();
    if !md.is_file() || md.mode() & 0o077 != 0 || (md.uid() != me && md.uid() != 0) {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    text.lines().find_map(|l| {
        let l = l.trim();
        let l = l.strip_prefix("export ").unwrap_or(l);
        let v = l.strip_prefix("OPENCLAW_APPROVAL_TOKEN=")?;
        let v = v.trim().trim_matches('"').trim_matches('\'');
        (!v.is_empty()).then(|| (Source::EnvFile, crate::token::hash_hex(v)))
    })
}

/// The legacy token's digest, if one is configured.
pub fn token_sha256(home: &Path) -> Option<String> {
    find(home).map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn env_file_token_is_read_only_when_private() {
        if std::env::var_os("OPENCLAW_APPROVAL_TOKEN").is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(&f, "export OPENCLAW_APPROVAL_TOKEN=\"s3cret-token\"\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            find(dir.path()),
            None,
            "a group/world-readable env file is ignored"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            find(dir.path()),
            Some((Source::EnvFile, crate::token::hash_hex("s3cret-token")))
        );
    }
}
