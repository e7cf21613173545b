//! The used statements: each signed statement is accepted once per signer, even across
//! restarts. Entries are kept until their statement expires (after that the statement is
//! refused as expired anyway), in one private file written atomically before the decision
//! counts. A file that does not read is a refusal of every signed approval, never a reset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The file name in the broker's state directory.
pub const FILE: &str = "used-statements.json";

/// The used set.
#[derive(Debug)]
pub struct Used {
    path: PathBuf,
    /// hex SHA-256 of (fingerprint, statement) → the statement's expiry (ms).
    seen: BTreeMap<String, u64>,
}

/// The key one signer's use of one statement is kept under.
pub fn key(fingerprint: &str, statement: &str) -> String {
    let mut h = Sha256::new();
    h.update(fingerprint.as_bytes());
    h.update([0]);
    h.update(statement.as_bytes());
    occ_base::hex::encode(&h.finalize())
}

impl Used {
    /// Reads the set kept in `dir` (empty when there is none yet).
    pub fn load(dir: &Path) -> Result<Used, String> {
        let path = dir.join(FILE);
        let seen = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{} does not read ({e}); signed approvals are refused until it is fixed \
                     or removed by root",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Used { path, seen })
    }

    /// Whether `key` was used.
    pub fn contains(&self, key: &str) -> bool {
        self.seen.contains_key(key)
    }

    /// Records `key` (dropping expired entries) and writes the file durably.
    pub fn record(&mut self, key: String, expires_ms: u64, now_ms: u64) -> Result<(), String> {
        self.seen.retain(|_, exp| *exp > now_ms);
        self.seen.insert(key, expires_ms);
        let bytes = serde_json::to_vec(&self.seen).map_err(|e| e.to_string())?;
        occ_base::atomic::write_private(&self.path, &bytes, Default::default())
            .map_err(|e| format!("cannot record the used statement: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_statement_stays_used_after_a_reload_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let mut u = Used::load(dir.path()).unwrap();
        let k = key("SHA256:x", "statement");
        assert!(!u.contains(&k));
        u.record(k.clone(), 2_000, 1_000).unwrap();
        let mut again = Used::load(dir.path()).unwrap();
        assert!(again.contains(&k));
        assert!(!again.contains(&key("SHA256:y", "statement")));
        again.record(key("SHA256:y", "s2"), 9_000, 3_000).unwrap();
        assert!(
            !Used::load(dir.path()).unwrap().contains(&k),
            "expired entries go"
        );
        std::fs::write(dir.path().join(FILE), b"{broken").unwrap();
        assert!(Used::load(dir.path()).unwrap_err().contains("refused"));
    }
}
