//! Rotation: the current log is renamed to `<stem>-<UTC timestamp>.jsonl` and replaced, in one
//! rename, by a new file whose genesis names the old file's last record. It must never leave a
//! moment in which another writer could find an empty log at the path and start a new chain.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use crate::canon::Value;
use crate::chain::{Last, Tail, Writer};
use crate::error::{AuditError, Result};
use crate::head::Head;
use crate::sys;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Where the old log now lives.
    pub archive: PathBuf,
    /// The new log's genesis event.
    pub genesis: crate::Appended,
}

/// `privileged-audit.jsonl` + `2026-11-22T22:45:01.123Z` → `privileged-audit-20261122T224501.123Z.jsonl`.
fn archive_name(log_name: &str, timestamp: &str) -> String {
    let compact: String = timestamp
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    match log_name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{compact}.{ext}"),
        _ => format!("{log_name}-{compact}"),
    }
}

impl Writer {
    /// Rotates the log (see the module docs). The new genesis is a `log_rotated` event with
    /// `prev_file` (the archive's file name), `prev_file_seq` and `prev_file_hash`; `seq`
    /// continues. Sealing, when on, continues with the next key.
    pub fn rotate(&mut self) -> Result<Rotated> {
        let guard = self.lock()?;
        self.load_tail()?;
        let tail = self
            .tail
            .clone()
            .ok_or_else(|| AuditError::NothingToRotate {
                path: self.path.clone(),
            })?;
        let Some(last) = tail.last.clone() else {
            return Err(AuditError::NothingToRotate {
                path: self.path.clone(),
            });
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audit.jsonl".into());
        let archive = self
            .path
            .with_file_name(archive_name(&name, &crate::chain::now_rfc3339()));
        if archive.symlink_metadata().is_ok() {
            return Err(AuditError::RotateTargetExists { path: archive });
        }
        let archive_file = archive
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();

        let mut fields = BTreeMap::new();
        fields.insert("prev_file".to_owned(), Value::Str(archive_file));
        fields.insert("prev_file_seq".to_owned(), Value::Int(last.seq as i64));
        fields.insert(
            "prev_file_hash".to_owned(),
            Value::Str(last.chain_hash.clone()),
        );
        // The genesis continues seq and the seal ratchet but has no prev_hash.
        let (line, genesis) = Writer::build(&tail, "log_rotated", fields, None);

        let tmp = self.path.with_file_name(format!(".{name}.rotating"));
        let wr = |e: std::io::Error, p: &PathBuf| AuditError::WriteFailed {
            path: p.clone(),
            source: e,
        };
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(wr(e, &tmp)),
        }
        let mut f = sys::open_append(&tmp).map_err(|e| wr(e, &tmp))?;
        f.write_all(&line)
            .and_then(|()| f.sync_all())
            .map_err(|e| wr(e, &tmp))?;
        // Writers that open the new file wait on this lock until the head and key are written.
        let new_guard = sys::lock_exclusive(&f).map_err(|e| wr(e, &tmp))?;
        // link() refuses to replace an existing archive; then the rename swaps in the new log.
        std::fs::hard_link(&self.path, &archive).map_err(|e| wr(e, &archive))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| wr(e, &self.path))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            occ_base::atomic::sync_dir(dir).map_err(|e| wr(e, &dir.to_owned()))?;
        }
        drop(guard);

        let next_key = tail.key.as_ref().map(crate::SealKey::next);
        if let Some(k) = &next_key {
            k.write_file(&self.key_path)?;
        }
        Head {
            seq: genesis.seq,
            chain_hash: genesis.chain_hash.clone(),
            timestamp: genesis.timestamp.clone(),
        }
        .write(&self.head_path)?;
        self.adopt(f)?;
        self.tail = Some(Tail {
            len: line.len() as u64,
            last: Some(Last {
                seq: genesis.seq,
                chain_hash: genesis.chain_hash.clone(),
                timestamp: genesis.timestamp.clone(),
                sealed: next_key.is_some(),
            }),
            key: next_key,
        });
        drop(new_guard);
        Ok(Rotated { archive, genesis })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn archive_names() {
        assert_eq!(
            super::archive_name("privileged-audit.jsonl", "2026-11-22T22:45:01.123Z"),
            "privileged-audit-20261122T224501.123Z.jsonl"
        );
        assert_eq!(
            super::archive_name("log", "2026-01-01T00:00:00.000Z"),
            "log-20260101T000000.000Z"
        );
    }
}
