//! The chain writer: the only code that appends to the log. Each append takes an exclusive
//! `flock`, continues `seq` and `prev_hash` from the file's real tail, and writes the record
//! with one `write(2)`. It must never rewrite or drop a complete record, and every failure is
//! returned so the caller can refuse the action it was about to record.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use hmac::Mac;
use occ_base::hex;
use sha2::{Digest, Sha256};

use crate::canon::{self, Checker, Field, Value};
use crate::error::{AuditError, Result};
use crate::head::Head;
use crate::seal::SealKey;
use crate::{sys, MAX_LINE};

/// Fields the writer fills in; callers may not pass them.
pub const RESERVED: [&str; 6] = [
    "seq",
    "timestamp",
    "event_type",
    "prev_hash",
    "seal",
    "chain_hash",
];

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// `fsync` the log after every record, then rewrite the head checkpoint. An `append`
    /// that returned `Ok` is durable.
    #[default]
    Always,
    /// Group commit: each record is still written with one `write(2)` under the lock (so a
    /// crash of the process loses nothing), but the `fsync` and the head checkpoint happen
    /// once per `max_records` appends, when `max_delay` has passed since the first unsynced
    /// append (checked at the next append), on [`Writer::sync`], and on drop. A power loss can
    /// lose the records since the last sync; the head never names such a record.
    Batch {
        max_records: u32,
        max_delay: Duration,
    },
}

impl Fsync {
    /// `batch` with 64 records or 200 ms per sync.
    pub fn batch() -> Self {
        Fsync::Batch {
            max_records: 64,
            max_delay: Duration::from_millis(200),
        }
    }
}

/// How a [`Writer`] behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub fsync: Fsync,
    /// The head checkpoint; default `audit-head.json` beside the log.
    pub head: Option<PathBuf>,
    /// The current seal key; default `audit-seal.key` beside the log. Sealing is on exactly
    /// when this file exists.
    pub seal_key: Option<PathBuf>,
    /// Test-only: write each record in two `write(2)` calls and call this in between.
    #[cfg(feature = "crash-hook")]
    pub crash_hook: Option<fn()>,
}

/// What an append wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    /// 64 lowercase hex digits.
    pub chain_hash: String,
    pub timestamp: String,
}

/// The last complete record of the file, as the writer chains onto it.
#[derive(Debug, Clone)]
pub(crate) struct Last {
    pub seq: u64,
    pub chain_hash: String,
    pub timestamp: String,
    pub sealed: bool,
}

/// What the writer knows about the file while it holds the lock.
#[derive(Debug, Clone)]
pub(crate) struct Tail {
    /// File length this knowledge is valid for.
    pub len: u64,
    pub last: Option<Last>,
    /// The key for the next sealed event, when sealing.
    pub key: Option<SealKey>,
}

/// Appends events to one audit log. Cheap to keep open; safe to use from several processes.
#[derive(Debug)]
pub struct Writer {
    pub(crate) path: PathBuf,
    pub(crate) head_path: PathBuf,
    pub(crate) key_path: PathBuf,
    pub(crate) file: File,
    dev: u64,
    ino: u64,
    pub(crate) opts: Options,
    pub(crate) tail: Option<Tail>,
    pending: u32,
    pending_since: Option<Instant>,
    checker: Checker,
}

/// The current time as RFC 3339 UTC with milliseconds and `Z`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Checks a path that is about to be opened: no symlink, nothing but a regular file.
pub(crate) fn refuse_odd_path(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(AuditError::Symlink {
            path: path.to_owned(),
        }),
        Ok(m) if !m.file_type().is_file() => Err(AuditError::NotRegular {
            path: path.to_owned(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AuditError::io(path, "inspect the log", e)),
    }
}

/// Checks an open log's metadata: regular, owned by us or root, not group/other-writable.
pub(crate) fn refuse_unsafe_file(path: &Path, md: &std::fs::Metadata) -> Result<()> {
    use occ_base::trusted::{self, TrustError};
    let me = sys::euid();
    trusted::check(path, md, me).map_err(|e| {
        let path = path.to_owned();
        match e {
            TrustError::NotRegular { .. } => AuditError::NotRegular { path },
            TrustError::ForeignOwner { owner, .. } => AuditError::ForeignOwner { path, owner, me },
            TrustError::Writable { mode, .. } => AuditError::Writable { path, mode },
            // `check` fails only with the three above; any new check is still a refusal.
            other => AuditError::io(path, "check the log", std::io::Error::other(other)),
        }
    })
}

fn open_checked(path: &Path) -> Result<(File, u64, u64)> {
    refuse_odd_path(path)?;
    let file = sys::open_append(path).map_err(|e| {
        if sys::is_symlink_error(&e) {
            AuditError::Symlink {
                path: path.to_owned(),
            }
        } else {
            AuditError::io(path, "open the log", e)
        }
    })?;
    let md = file
        .metadata()
        .map_err(|e| AuditError::io(path, "stat the log", e))?;
    refuse_unsafe_file(path, &md)?;
    Ok((file, md.dev(), md.ino()))
}

impl Writer {
    /// Opens (creating with mode 0600, and its directory with 0700) the log at `path`.
    /// Refuses a symlink, a non-regular file, a file owned by another user, or one writable by
    /// group or others.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Writer> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| AuditError::io(dir, "create the log directory", e))?;
            }
        }
        let (file, dev, ino) = open_checked(&path)?;
        let head_path = opts
            .head
            .clone()
            .unwrap_or_else(|| path.with_file_name("audit-head.json"));
        let key_path = opts
            .seal_key
            .clone()
            .unwrap_or_else(|| path.with_file_name("audit-seal.key"));
        Ok(Writer {
            path,
            head_path,
            key_path,
            file,
            dev,
            ino,
            opts,
            tail: None,
            pending: 0,
            pending_since: None,
            checker: Checker::new(),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The head checkpoint's path.
    pub fn head_path(&self) -> &Path {
        &self.head_path
    }

    /// The seal key's path.
    pub fn seal_key_path(&self) -> &Path {
        &self.key_path
    }

    /// Takes the append lock on the file currently at `path`, reopening it when another
    /// process rotated it away underneath us.
    pub(crate) fn lock(&mut self) -> Result<sys::Flock> {
        loop {
            let guard = sys::lock_exclusive(&self.file)
                .map_err(|e| AuditError::io(&self.path, "lock the log", e))?;
            match std::fs::symlink_metadata(&self.path) {
                Ok(m) if m.dev() == self.dev && m.ino() == self.ino => return Ok(guard),
                _ => {
                    drop(guard);
                    let (file, dev, ino) = open_checked(&self.path)?;
                    self.file = file;
                    self.dev = dev;
                    self.ino = ino;
                    self.tail = None;
                }
            }
        }
    }

    /// Switches to a file this writer created at `path` (after a rotation).
    pub(crate) fn adopt(&mut self, file: File) -> Result<()> {
        let md = file
            .metadata()
            .map_err(|e| AuditError::io(&self.path, "stat the log", e))?;
        self.dev = md.dev();
        self.ino = md.ino();
        self.file = file;
        Ok(())
    }

    /// Number of events in the log so far is `seq + 1` of the last; `None` when empty.
    pub fn last_seq(&mut self) -> Result<Option<u64>> {
        let _g = self.lock()?;
        self.load_tail()?;
        Ok(self
            .tail
            .as_ref()
            .and_then(|t| t.last.as_ref())
            .map(|l| l.seq))
    }

    /// Appends one event. `fields` are the event's own fields; `seq`, `timestamp`,
    /// `event_type`, `prev_hash`, `seal` and `chain_hash` are filled in here. With
    /// `Fsync::Always`, `Ok` means the record is on disk. Any `Err` means the record was not
    /// kept (or, for a failed head update, that the checkpoint is stale): do not proceed.
    pub fn append(
        &mut self,
        event_type: &str,
        fields: BTreeMap<String, Value>,
    ) -> Result<Appended> {
        check_event(event_type, &fields)?;
        let _g = self.lock()?;
        self.load_tail()?;
        self.append_locked(event_type, fields)
    }

    /// In batch mode: makes every appended record durable and updates the head. A no-op
    /// cost-wise with `Fsync::Always`.
    pub fn sync(&mut self) -> Result<()> {
        let _g = self.lock()?;
        self.load_tail()?;
        self.sync_locked()
    }

    /// Makes every record appended so far durable with one `fdatasync`, without rewriting the
    /// head checkpoint. The head catches up at the next [`Writer::sync`]; until then it names
    /// an earlier record, which verifies (a head may lag the log, never lead it). For callers
    /// that must not proceed until one record is on disk, and keep the head fresh elsewhere.
    pub fn sync_data(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| AuditError::WriteFailed {
            path: self.path.clone(),
            source: e,
        })
    }

    /// A second handle on the current log file. `sync_data` through it makes durable every
    /// record appended before it was taken, without holding whatever guards this writer, so
    /// other appends need not wait for the disk.
    pub fn data_handle(&self) -> Result<std::fs::File> {
        self.file.try_clone().map_err(|e| AuditError::WriteFailed {
            path: self.path.clone(),
            source: e,
        })
    }

    fn sync_locked(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| AuditError::WriteFailed {
            path: self.path.clone(),
            source: e,
        })?;
        self.pending = 0;
        self.pending_since = None;
        let head = self
            .tail
            .as_ref()
            .and_then(|t| t.last.as_ref())
            .map(|l| Head {
                seq: l.seq,
                chain_hash: l.chain_hash.clone(),
                timestamp: l.timestamp.clone(),
            });
        if let Some(h) = head {
            h.write(&self.head_path)?;
        }
        Ok(())
    }

    /// Under the lock: brings `self.tail` up to date with the file, cutting a torn tail.
    pub(crate) fn load_tail(&mut self) -> Result<()> {
        let len = self
            .file
            .metadata()
            .map_err(|e| AuditError::io(&self.path, "stat the log", e))?
            .len();
        if self.tail.as_ref().is_some_and(|t| t.len == len) {
            return Ok(());
        }
        self.tail = None;
        let torn = self.read_tail(len)?;
        if let Some((offset, discarded_len, sha)) = torn {
            let mut f = BTreeMap::new();
            f.insert("offset".to_owned(), Value::Int(offset as i64));
            f.insert("length".to_owned(), Value::Int(discarded_len as i64));
            f.insert("sha256".to_owned(), Value::Str(sha));
            self.append_locked("log_recovered", f)?;
        }
        Ok(())
    }

    /// Reads the last complete record and the seal key into `self.tail`. A torn tail is cut
    /// off first; returns its (offset, length, sha256) so the caller records the recovery.
    fn read_tail(&mut self, len: u64) -> Result<Option<(u64, u64, String)>> {
        let mut torn = None;
        let mut end = len;
        if len > 0 && self.byte_at(len - 1)? != b'\n' {
            let cut = match self.rfind_newline(len)? {
                Some(p) => p + 1,
                None => 0,
            };
            let sha = self.sha256_range(cut, len)?;
            self.file
                .set_len(cut)
                .map_err(|e| AuditError::WriteFailed {
                    path: self.path.clone(),
                    source: e,
                })?;
            self.file.sync_data().map_err(|e| AuditError::WriteFailed {
                path: self.path.clone(),
                source: e,
            })?;
            torn = Some((cut, len - cut, sha));
            end = cut;
        }
        let last = if end == 0 {
            if let Some(h) = Head::read(&self.head_path)? {
                return Err(AuditError::CorruptTail {
                    path: self.path.clone(),
                    offset: 0,
                    detail: format!(
                        "the log is empty but {} names seq {}; events were deleted. Move {} \
                         aside to start a new log",
                        self.head_path.display(),
                        h.seq,
                        self.head_path.display()
                    ),
                });
            }
            None
        } else {
            let start = self.rfind_newline(end - 1)?.map_or(0, |p| p + 1);
            let line_len = (end - 1 - start) as usize;
            if line_len > MAX_LINE {
                return Err(self.corrupt(end, "the line is longer than 1 MiB".into()));
            }
            let mut buf = vec![0u8; line_len];
            self.file
                .read_exact_at(&mut buf, start)
                .map_err(|e| AuditError::io(&self.path, "read the log", e))?;
            Some((self.parse_last(&buf, end)?, buf))
        };
        let key = self.load_key(last.as_ref().map(|(l, b)| (l, b.as_slice())))?;
        let last = last.map(|(l, _)| l);
        self.tail = Some(Tail {
            len: end,
            last,
            key,
        });
        Ok(torn)
    }

    fn corrupt(&self, offset: u64, detail: String) -> AuditError {
        AuditError::CorruptTail {
            path: self.path.clone(),
            offset,
            detail,
        }
    }

    fn parse_last(&mut self, buf: &[u8], end: u64) -> Result<Last> {
        let rec = match self.checker.check(buf) {
            Ok(r) => r,
            Err(canon::LineError::Invalid(d) | canon::LineError::NotCanonical(d)) => {
                return Err(self.corrupt(end, d))
            }
        };
        let seq = rec.field("seq").and_then(|f| f.as_u64());
        let chain = match rec.field("chain_hash") {
            Some(Field::Str(h)) if hex::decode32_lower(h).is_some() => {
                Some(String::from_utf8_lossy(h).into_owned())
            }
            _ => None,
        };
        let timestamp = match rec.field("timestamp") {
            Some(Field::Str(t)) => canon::decode_str(t),
            _ => String::new(),
        };
        let sealed = rec.find("seal").is_some();
        match (seq, chain) {
            (Some(seq), Some(chain_hash)) => Ok(Last {
                seq,
                chain_hash,
                timestamp,
                sealed,
            }),
            _ => Err(AuditError::CorruptTail {
                path: self.path.clone(),
                offset: end,
                detail: "no valid seq or chain_hash".into(),
            }),
        }
    }

    /// The key for the next sealed event, repairing a key file left one step behind by a crash
    /// between writing a sealed record and ratcheting the key.
    fn load_key(&mut self, last: Option<(&Last, &[u8])>) -> Result<Option<SealKey>> {
        let sealed = last.is_some_and(|(l, _)| l.sealed);
        match std::fs::symlink_metadata(&self.key_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if sealed {
                    return Err(AuditError::SealKeyMissing {
                        path: self.key_path.clone(),
                        log: self.path.clone(),
                    });
                }
                return Ok(None);
            }
            Err(e) => return Err(AuditError::io(&self.key_path, "inspect the seal key", e)),
            Ok(m) if m.file_type().is_symlink() => {
                return Err(AuditError::Symlink {
                    path: self.key_path.clone(),
                })
            }
            Ok(_) => {}
        }
        let mut key = SealKey::read_file(&self.key_path)?;
        if let Some((_, line)) = last.filter(|(l, _)| l.sealed) {
            // Did the key file's key seal the last record? Then the ratchet step after it was
            // lost in a crash; take it now.
            if let Ok(rec) = self.checker.check(line) {
                if let (Some(si), Some(ci)) = (rec.find("seal"), rec.find("chain_hash")) {
                    let mut drop = [si, ci];
                    drop.sort_unstable();
                    let mut mac = key.mac();
                    rec.pieces_without(&drop, |p| mac.update(p));
                    let got = hex::encode(&mac.finalize().into_bytes());
                    if rec.field("seal") == Some(Field::Str(got.as_bytes())) {
                        key = key.next();
                        key.write_file(&self.key_path)?;
                    }
                }
            }
        }
        Ok(Some(key))
    }

    fn byte_at(&self, pos: u64) -> Result<u8> {
        let mut b = [0u8; 1];
        self.file
            .read_exact_at(&mut b, pos)
            .map_err(|e| AuditError::io(&self.path, "read the log", e))?;
        Ok(b[0])
    }

    /// The position of the last `\n` strictly before `end`.
    fn rfind_newline(&self, end: u64) -> Result<Option<u64>> {
        let mut buf = vec![0u8; 64 << 10];
        let mut hi = end;
        while hi > 0 {
            let lo = hi.saturating_sub(buf.len() as u64);
            let chunk = &mut buf[..(hi - lo) as usize];
            self.file
                .read_exact_at(chunk, lo)
                .map_err(|e| AuditError::io(&self.path, "read the log", e))?;
            if let Some(p) = memchr::memrchr(b'\n', chunk) {
                return Ok(Some(lo + p as u64));
            }
            hi = lo;
        }
        Ok(None)
    }

    fn sha256_range(&self, from: u64, to: u64) -> Result<String> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut pos = from;
        while pos < to {
            let n = ((to - pos) as usize).min(buf.len());
            self.file
                .read_exact_at(&mut buf[..n], pos)
                .map_err(|e| AuditError::io(&self.path, "read the log", e))?;
            h.update(&buf[..n]);
            pos += n as u64;
        }
        Ok(hex::encode(&h.finalize()))
    }

    /// Builds the record for the current tail: seq, prev_hash, seal, chain_hash.
    pub(crate) fn build(
        tail: &Tail,
        event_type: &str,
        mut fields: BTreeMap<String, Value>,
        prev_hash: Option<&str>,
    ) -> (Vec<u8>, Appended) {
        let seq = tail.last.as_ref().map_or(0, |l| l.seq + 1);
        let timestamp = now_rfc3339();
        fields.insert("event_type".into(), Value::from(event_type));
        fields.insert("seq".into(), Value::Int(seq as i64));
        fields.insert("timestamp".into(), Value::Str(timestamp.clone()));
        fields.insert("prev_hash".into(), Value::from(prev_hash));
        let mut ev = Value::Object(fields);
        if let (Some(key), Value::Object(m)) = (&tail.key, &mut ev) {
            let seal = key.seal(&ev_bytes(m));
            m.insert("seal".into(), Value::Str(seal));
        }
        let Value::Object(mut m) = ev else {
            unreachable!("built as an object")
        };
        let bytes = ev_bytes(&m);
        let chain_hash = hex::encode(&Sha256::digest(&bytes));
        m.insert("chain_hash".into(), Value::Str(chain_hash.clone()));
        let mut line = ev_bytes(&m);
        line.push(b'\n');
        (
            line,
            Appended {
                seq,
                chain_hash,
                timestamp,
            },
        )
    }

    /// Under the lock with `self.tail` loaded: writes one event.
    pub(crate) fn append_locked(
        &mut self,
        event_type: &str,
        fields: BTreeMap<String, Value>,
    ) -> Result<Appended> {
        let Some(tail) = self.tail.as_ref() else {
            return Err(AuditError::io(
                &self.path,
                "append",
                std::io::Error::other("tail not loaded"),
            ));
        };
        let prev = tail.last.as_ref().map(|l| l.chain_hash.clone());
        let (line, appended) = Writer::build(tail, event_type, fields, prev.as_deref());
        if line.len() > MAX_LINE {
            return Err(AuditError::TooLarge {
                len: line.len(),
                max: MAX_LINE,
            });
        }
        let old_len = tail.len;
        self.write_record(&line, old_len)?;
        if self.opts.fsync == Fsync::Always {
            if let Err(e) = self.file.sync_data() {
                self.undo(old_len);
                return Err(AuditError::WriteFailed {
                    path: self.path.clone(),
                    source: e,
                });
            }
        }
        let sealed = self.tail.as_ref().is_some_and(|t| t.key.is_some());
        let next_key = self
            .tail
            .as_ref()
            .and_then(|t| t.key.as_ref())
            .map(SealKey::next);
        self.tail = Some(Tail {
            len: old_len + line.len() as u64,
            last: Some(Last {
                seq: appended.seq,
                chain_hash: appended.chain_hash.clone(),
                timestamp: appended.timestamp.clone(),
                sealed,
            }),
            key: next_key,
        });
        if let Some(k) = self.tail.as_ref().and_then(|t| t.key.as_ref()) {
            k.write_file(&self.key_path)?;
        }
        match self.opts.fsync {
            Fsync::Always => Head {
                seq: appended.seq,
                chain_hash: appended.chain_hash.clone(),
                timestamp: appended.timestamp.clone(),
            }
            .write(&self.head_path)?,
            Fsync::Batch {
                max_records,
                max_delay,
            } => {
                self.pending += 1;
                let since = *self.pending_since.get_or_insert_with(Instant::now);
                if self.pending >= max_records || since.elapsed() >= max_delay {
                    self.sync_locked()?;
                }
            }
        }
        Ok(appended)
    }

    /// One `write(2)` of the whole record (two with the test-only crash hook). A short or
    /// failed write is cut back off so no partial record stays behind.
    fn write_record(&mut self, line: &[u8], old_len: u64) -> Result<()> {
        #[cfg(feature = "crash-hook")]
        if let Some(hook) = self.opts.crash_hook {
            let half = line.len() / 2;
            let r = (&self.file).write_all(&line[..half]);
            if r.is_ok() {
                hook();
            }
            let r = r.and_then(|()| (&self.file).write_all(&line[half..]));
            return r.map_err(|e| {
                self.undo(old_len);
                AuditError::WriteFailed {
                    path: self.path.clone(),
                    source: e,
                }
            });
        }
        let r = loop {
            match (&self.file).write(line) {
                Ok(n) if n == line.len() => break Ok(()),
                Ok(n) => {
                    break Err(std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        format!("short write: {n} of {} bytes", line.len()),
                    ))
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        r.map_err(|e| {
            self.undo(old_len);
            AuditError::WriteFailed {
                path: self.path.clone(),
                source: e,
            }
        })
    }

    /// Cuts the file back to `len` after a failed write, so the next append chains onto the
    /// last complete record. Best effort: if this fails too, the next append finds a torn tail
    /// and records the recovery.
    fn undo(&mut self, len: u64) {
        let _ = self.file.set_len(len);
        self.tail = None;
    }

    /// Begins sealing (opt-in): creates the key file with a fresh k_0 and appends `event_type`
    /// sealed under it, both under one lock. Returns k_0 (show it to the admin once) and the
    /// event. Refuses when the key file already exists.
    pub fn start_sealing(
        &mut self,
        event_type: &str,
        fields: BTreeMap<String, Value>,
    ) -> Result<(SealKey, Appended)> {
        check_event(event_type, &fields)?;
        let _g = self.lock()?;
        self.load_tail()?;
        if self.key_path.symlink_metadata().is_ok() {
            return Err(AuditError::SealAlreadyOn {
                path: self.key_path.clone(),
            });
        }
        let k0 = SealKey::generate()?;
        k0.write_file(&self.key_path)?;
        if let Some(t) = self.tail.as_mut() {
            t.key = Some(k0.clone());
        }
        let ev = self.append_locked(event_type, fields)?;
        Ok((k0, ev))
    }

    /// Whether sealing is on for this log (its key file exists).
    pub fn sealing(&self) -> bool {
        self.key_path.symlink_metadata().is_ok()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.pending > 0 {
            let _ = self.sync();
        }
    }
}

fn ev_bytes(m: &BTreeMap<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    canon::write_object(m.iter(), &mut out);
    out
}

fn check_event(event_type: &str, fields: &BTreeMap<String, Value>) -> Result<()> {
    if event_type.is_empty() || event_type.len() > 128 {
        return Err(AuditError::BadEventType {
            event_type: event_type.to_owned(),
        });
    }
    if let Some(k) = RESERVED.iter().find(|k| fields.contains_key(**k)) {
        return Err(AuditError::ReservedField {
            key: (*k).to_owned(),
        });
    }
    Ok(())
}
