//! The head checkpoint `audit-head.json`: the seq and chain hash of the last event written, so
//! a verifier notices a cut tail. Written atomically under the log's append lock; it must never
//! name an event that is not yet durable in the log.

use std::io::Read;
use std::path::Path;

/// A head file is about 130 bytes; anything past this is not one.
const MAX_HEAD: u64 = 64 << 10;

use crate::canon::{self, Field, Record};
use crate::error::{AuditError, Result};
use crate::seal::write_atomic;

/// The last event the writer made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    /// 64 lowercase hex digits.
    pub chain_hash: String,
    /// The event's own timestamp.
    pub timestamp: String,
}

impl Head {
    /// The file's bytes: `{"seq":N,"chain_hash":"…","timestamp":"…"}` and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{{\"seq\":{},\"chain_hash\":", self.seq).into_bytes();
        canon::write_str(&self.chain_hash, &mut out);
        out.extend_from_slice(b",\"timestamp\":");
        canon::write_str(&self.timestamp, &mut out);
        out.extend_from_slice(b"}\n");
        out
    }

    /// Parses a head file's bytes (any JSON whitespace; unknown keys ignored).
    pub fn parse(bytes: &[u8]) -> Result<Head, String> {
        let text = bytes.trim_ascii();
        let mut members = Vec::new();
        canon::lenient(text, &mut members)?;
        if text.first() != Some(&b'{') {
            return Err("not a JSON object".into());
        }
        let rec = Record {
            line: text,
            members: &members,
        };
        let seq = rec
            .field("seq")
            .and_then(|f| f.as_u64())
            .ok_or("`seq` missing or not a non-negative integer")?;
        let chain_hash = match rec.field("chain_hash") {
            Some(Field::Str(h)) if h.len() == 64 && occ_base::hex::decode32_lower(h).is_some() => {
                String::from_utf8_lossy(h).into_owned()
            }
            _ => return Err("`chain_hash` missing or not 64 lowercase hex digits".into()),
        };
        let timestamp = match rec.field("timestamp") {
            Some(Field::Str(t)) => canon::decode_str(t),
            _ => String::new(),
        };
        Ok(Head {
            seq,
            chain_hash,
            timestamp,
        })
    }

    /// Reads a head file; `Ok(None)` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<Head>> {
        // No symlinks, no FIFOs, and never more than a head file can hold.
        let file = match crate::sys::open_read(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if crate::sys::is_symlink_error(&e) => {
                return Err(AuditError::Symlink {
                    path: path.to_owned(),
                })
            }
            Err(e) => return Err(AuditError::io(path, "read the head checkpoint", e)),
        };
        let md = file
            .metadata()
            .map_err(|e| AuditError::io(path, "read the head checkpoint", e))?;
        if !md.file_type().is_file() {
            return Err(AuditError::NotRegular {
                path: path.to_owned(),
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_HEAD)
            .read_to_end(&mut bytes)
            .map_err(|e| AuditError::io(path, "read the head checkpoint", e))?;
        Head::parse(&bytes)
            .map(Some)
            .map_err(|detail| AuditError::HeadInvalid {
                path: path.to_owned(),
                detail,
            })
    }

    /// Replaces the head file atomically (mode 0600).
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trips() {
        let h = Head {
            seq: 42,
            chain_hash: "ab".repeat(32),
            timestamp: "2026-01-01T00:00:00.000Z".into(),
        };
        assert_eq!(Head::parse(&h.to_bytes()), Ok(h));
    }

    #[test]
    fn head_rejects_bad_fields() {
        assert!(Head::parse(b"{\"seq\": -1, \"chain_hash\": \"00\"}").is_err());
        assert!(Head::parse(b"[1]").is_err());
        assert!(Head::parse(b"\xff").is_err());
        let upper = format!("{{\"seq\": 1, \"chain_hash\": \"{}\"}}", "AB".repeat(32));
        assert!(Head::parse(upper.as_bytes()).is_err());
    }
}
