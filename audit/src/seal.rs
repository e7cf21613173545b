//! The forward-secure seal: HMAC-SHA256 under a key that is ratcheted by SHA-256 after every
//! sealed event. It owns the key type and the key file; it must never print or log a key except
//! k_0 when sealing begins, and it wipes keys it no longer needs.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use occ_base::atomic::{self, Options};
use occ_base::hex;
use sha2::{Digest, Sha256};

use crate::error::{AuditError, Result};

/// Domain separator of the ratchet: k_{i+1} = SHA-256("occ-seal-ratchet" ‖ k_i).
const RATCHET: &[u8] = b"occ-seal-ratchet";

/// A 32-byte seal key. Wiped on drop; its `Debug` form hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey([u8; 32]);

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl Drop for SealKey {
    fn drop(&mut self) {
        // Best effort wipe; black_box keeps the compiler from dropping the stores.
        for b in self.0.iter_mut() {
            *b = 0;
            std::hint::black_box(&*b);
        }
    }
}

impl SealKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        SealKey(b)
    }

    /// A fresh random key (k_0).
    pub fn generate() -> Result<Self> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b)
            .map_err(|e| AuditError::io("getrandom", "read random bytes", e.into()))?;
        Ok(SealKey(b))
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.len() != 64 {
            return Err(AuditError::BadKey {
                detail: format!("got {} characters", s.len()),
            });
        }
        hex::decode32(s.as_bytes())
            .map(SealKey)
            .ok_or_else(|| AuditError::BadKey {
                detail: "not hexadecimal".into(),
            })
    }

    /// The key as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// The next key in the ratchet.
    pub fn next(&self) -> SealKey {
        let mut h = Sha256::new();
        h.update(RATCHET);
        h.update(self.0);
        SealKey(h.finalize().into())
    }

    /// Starts an HMAC under this key; feed it the event's canonical bytes.
    pub fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// The seal (hex) of `bytes`.
    pub fn seal(&self, bytes: &[u8]) -> String {
        let mut m = self.mac();
        m.update(bytes);
        hex::encode(&m.finalize().into_bytes())
    }

    /// Reads a key file holding hex (as `audit-seal.key` or an admin's copy of k_0).
    pub fn read_file(path: &Path) -> Result<SealKey> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuditError::io(path, "read the seal key", e))?;
        SealKey::from_hex(&text).map_err(|_| AuditError::SealKeyInvalid {
            path: path.to_owned(),
        })
    }

    /// Replaces the key file atomically (temp file, fsync, rename; mode 0600).
    pub fn write_file(&self, path: &Path) -> Result<()> {
        let mut text = self.to_hex().into_bytes();
        text.push(b'\n');
        let r = write_atomic(path, &text);
        text.iter_mut().for_each(|b| *b = 0);
        r
    }
}

/// Writes `bytes` to `path` through a temp file beside it: write, fsync, rename, fsync the
/// directory. The temp name is fixed and a stale one is removed first (no old key lingers
/// beside the file), so callers hold the log's append lock.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic::write_private(path, bytes, Options::durable().serialized()).map_err(|e| {
        AuditError::WriteFailed {
            path: path.to_owned(),
            source: e.into_source(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratchet_matches_definition() {
        let k0 = SealKey::from_bytes([7u8; 32]);
        let mut h = Sha256::new();
        h.update(b"occ-seal-ratchet");
        h.update([7u8; 32]);
        let want: [u8; 32] = h.finalize().into();
        assert_eq!(k0.next(), SealKey::from_bytes(want));
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let k = SealKey::from_bytes([0xab; 32]);
        assert_eq!(SealKey::from_hex(&k.to_hex()).ok(), Some(k));
        assert!(SealKey::from_hex("abc").is_err());
        assert!(SealKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{:?}", SealKey::from_bytes([1; 32])), "SealKey(..)");
    }
}
