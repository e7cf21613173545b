//! The verifier's pipeline: one thread per core (the calling thread among them) takes turns
//! cutting the files into batches of whole lines and examines each batch's lines on their own
//! (`examine`), and the calling thread gets every item back in file order. A fixed pool of batch buffers bounds memory whatever the
//! files hold; it must never hand a worker a partial line, nor buffer a line longer than
//! `MAX_LINE`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::canon::Checker;
use crate::error::{AuditError, Result};
use crate::examine::{examine_batch, Facts};
use crate::verify::open_for_reading;
use crate::MAX_LINE;

/// One batch buffer: more than `MAX_LINE`, so a full buffer without a newline always means
/// an over-long line.
const BUF: usize = 2 << 20;

/// How much is read into a batch at a time: a batch is usually one read, about a thousand
/// records. The worker that reads a batch examines it, so the bytes the kernel copies into
/// the buffer are still in that core's cache when they are parsed and hashed. Only a line
/// longer than this makes the worker read on into the rest of the buffer (whose pages stay
/// untouched otherwise).
const READ: usize = 256 << 10;

/// The tail of a batch-sized range that is read first, under the source's lock, to find where
/// the batch ends (its last newline); the batch itself is then read outside the lock, so the
/// threads' kernel copies overlap. Records are far shorter, so a newline is almost always
/// there; when it is not, the whole batch is read under the lock as before.
const PROBE: usize = 4 << 10;

/// Batches in flight beyond one per worker: one being checked in order, two finished out of
/// order.
const SPARE_BATCHES: usize = 3;

/// A batch buffer and the facts its lines gave, reused from batch to batch.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Always `BUF` bytes long; the batch is `buf[..len]`.
    buf: Vec<u8>,
    len: usize,
    /// What the batch's lines gave (filled by a worker).
    pub facts: Facts,
}

impl Slot {
    /// The batch's bytes: whole lines, each ending with `\n`. Fact spans index into it.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What the files hold next, in file order.
#[derive(Debug)]
pub(crate) enum Item {
    /// Whole newline-terminated lines, examined.
    Lines(Slot),
    /// A line longer than `MAX_LINE`, skipped without being buffered.
    TooLong { len: u64 },
    /// Bytes at the end of the file with no newline after them.
    Torn { len: u64 },
    /// The end of the file.
    FileEnd,
    /// The file could not be opened or read; nothing after it follows.
    Failed(AuditError),
    /// Every file was read.
    Finished,
}

/// One item of file `file`, after its first `read` bytes were taken.
#[derive(Debug)]
pub(crate) struct Job {
    no: u64,
    pub file: usize,
    pub read: u64,
    pub item: Item,
}

enum Done {
    Job(Job),
    /// A worker panicked; the caller's thread resumes the panic.
    Panicked(Box<dyn std::any::Any + Send + 'static>),
}

/// Reads `files` in order and examines their lines on one thread per core (the calling
/// thread and one helper per other core), and hands every item to `each` on the calling
/// thread, in file order. The calling thread examines a batch itself whenever the next item in
/// order is not ready, so no core is left waiting and no third thread competes for two cores.
/// Stops at the first `Err` from `each` or at a file that cannot be read (its `Item::Failed`
/// is the last item `each` sees).
pub(crate) fn in_order(files: &[PathBuf], mut each: impl FnMut(&Job) -> Result<()>) -> Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let (free_tx, free_rx) = mpsc::channel::<Slot>();
    for _ in 0..workers + SPARE_BATCHES {
        // Zeroed pages are mapped lazily: a small log touches little of each buffer.
        let slot = Slot {
            buf: vec![0; BUF],
            len: 0,
            facts: Facts::default(),
        };
        let _ = free_tx.send(slot);
    }
    let free_rx = Mutex::new(free_rx);
    let source = Mutex::new(Source {
        files,
        idx: 0,
        file: None,
        offset: 0,
        torn: false,
        no: 0,
        ended: false,
    });
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 1..workers {
            let done = done_tx.clone();
            let (source, free, stop) = (&source, &free_rx, &stop);
            s.spawn(move || work(source, free, stop, &done));
        }
        drop(done_tx);
        // Whatever way this returns, the workers stop at their next batch and the channels
        // close, so every thread ends before the scope does.
        let _stop = StopOnDrop(&stop);
        let (done_rx, free_tx) = (done_rx, free_tx);
        let mut early: BTreeMap<u64, Job> = BTreeMap::new();
        let mut next = 0u64;
        // The calling thread's own examining: its checker, a buffer it kept, and whether the
        // source may still give items.
        let mut checker = Checker::new();
        let mut kept: Option<Slot> = None;
        let mut source_open = true;
        loop {
            if let Some(j) = early.remove(&next) {
                next += 1;
                if finish(j, &mut each, &free_tx)? {
                    return Ok(());
                }
                continue;
            }
            match done_rx.try_recv() {
                Ok(Done::Job(j)) => {
                    early.insert(j.no, j);
                    continue;
                }
                Ok(Done::Panicked(p)) => std::panic::resume_unwind(p),
                Err(_) => {}
            }
            // The next item is not ready: examine a batch here while a buffer is free.
            if source_open {
                let free = || free_rx.try_lock().ok().and_then(|rx| rx.try_recv().ok());
                if let Some(taken) = kept.take().or_else(free) {
                    match step(&source, &mut checker, taken) {
                        (Some(j), back) => {
                            kept = back;
                            early.insert(j.no, j);
                        }
                        (None, back) => {
                            kept = back;
                            source_open = false;
                        }
                    }
                    continue;
                }
            }
            match done_rx.recv() {
                Ok(Done::Job(j)) => {
                    early.insert(j.no, j);
                }
                Ok(Done::Panicked(p)) => std::panic::resume_unwind(p),
                // Every helper ended and `Finished` was never seen: cannot happen unless one
                // panicked, which it reported first.
                Err(_) => return Ok(()),
            }
        }
    })
}

/// Hands `job` to `each` and gives its buffer back; true after the last item.
fn finish(
    job: Job,
    each: &mut impl FnMut(&Job) -> Result<()>,
    free_tx: &Sender<Slot>,
) -> Result<bool> {
    each(&job)?;
    match job.item {
        Item::Lines(mut slot) => {
            slot.facts.clear();
            // The helpers may already be gone after the last file.
            let _ = free_tx.send(slot);
            Ok(false)
        }
        Item::Failed(e) => Err(e),
        Item::Finished => Ok(true),
        Item::TooLong { .. } | Item::Torn { .. } | Item::FileEnd => Ok(false),
    }
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One helper: takes a free buffer and examines the next batch in it, until the source ends
/// or the caller stops.
fn work(
    source: &Mutex<Source<'_>>,
    free: &Mutex<Receiver<Slot>>,
    stop: &AtomicBool,
    done: &Sender<Done>,
) {
    let mut checker = Checker::new();
    let mut kept: Option<Slot> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let taken = match kept.take() {
            Some(s) => s,
            None => match lock(free).recv() {
                Ok(s) => s,
                // The caller stopped listening.
                Err(_) => return,
            },
        };
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            step(source, &mut checker, taken)
        }));
        let out = match out {
            Ok((Some(job), back)) => {
                kept = back;
                Done::Job(job)
            }
            // Every file was read and `Finished` was given out.
            Ok((None, _)) => return,
            Err(p) => Done::Panicked(p),
        };
        if done.send(out).is_err() {
            return;
        }
    }
}

/// Has the source fill `taken` with the next whole lines (under the source's lock, so items
/// are numbered in file order), then examines them. Gives the item, or `None` once the source
/// has ended, and the buffer back when the item did not keep it.
fn step(
    source: &Mutex<Source<'_>>,
    checker: &mut Checker,
    mut taken: Slot,
) -> (Option<Job>, Option<Slot>) {
    let Some((no, file, read, next)) = lock(source).next(&mut taken) else {
        return (None, Some(taken));
    };
    let lines = match next {
        Next::Lines => Ok(()),
        // Read here, outside the source's lock.
        Next::Range {
            file,
            path,
            start,
            len,
        } => match fill(&file, path, &mut taken.buf[..len], start) {
            Ok(()) => {
                taken.len = len;
                Ok(())
            }
            Err(e) => Err(Item::Failed(e)),
        },
        Next::Other(item) => Err(item),
    };
    let job = |item| Job {
        no,
        file,
        read,
        item,
    };
    match lines {
        Ok(()) => {
            let Slot { buf, len, facts } = &mut taken;
            examine_batch(checker, &buf[..*len], facts);
            (Some(job(Item::Lines(taken))), None)
        }
        Err(item) => (Some(job(item)), Some(taken)),
    }
}

/// What [`Source::next`] put in the buffer it was given.
enum Next<'a> {
    /// Whole lines, `buf[..len]`, to be examined.
    Lines,
    /// Whole lines at `start..start + len` of `file`, still to be read into the buffer.
    Range {
        file: Arc<File>,
        path: &'a Path,
        start: u64,
        len: usize,
    },
    /// An item without lines; the buffer is left for the next call.
    Other(Item),
}

/// Where reading has got to. Each call to `next` takes the next item and its number.
struct Source<'a> {
    files: &'a [PathBuf],
    /// The file being read (or to open next).
    idx: usize,
    /// Shared with the threads reading a range of it.
    file: Option<Arc<File>>,
    /// The offset in `file` of the first byte not yet given out (the start of a line).
    offset: u64,
    /// A torn tail was given out: the file ends there.
    torn: bool,
    no: u64,
    /// `Finished` or `Failed` was given out.
    ended: bool,
}

impl<'a> Source<'a> {
    /// The next item, numbered, with the file it belongs to and how far that file has been
    /// taken; `None` once `Finished` or `Failed` was given out.
    fn next(&mut self, slot: &mut Slot) -> Option<(u64, usize, u64, Next<'a>)> {
        if self.ended {
            return None;
        }
        let idx = self.idx;
        let next = match self.take(slot) {
            Ok(n) => n,
            Err(e) => Next::Other(Item::Failed(e)),
        };
        if matches!(next, Next::Other(Item::Failed(_) | Item::Finished)) {
            self.ended = true;
        }
        let no = self.no;
        self.no += 1;
        let file = if matches!(next, Next::Other(Item::Finished)) {
            self.files.len()
        } else {
            idx
        };
        let read = if matches!(next, Next::Other(Item::Failed(_) | Item::Finished)) {
            0
        } else {
            self.offset
        };
        Some((no, file, read, next))
    }

    fn take(&mut self, slot: &mut Slot) -> Result<Next<'a>> {
        let files = self.files;
        let Some(path) = files.get(self.idx) else {
            return Ok(Next::Other(Item::Finished));
        };
        let f = match &self.file {
            Some(f) => f,
            None => {
                self.offset = 0;
                self.torn = false;
                self.file.insert(Arc::new(open_for_reading(path)?))
            }
        };
        if !self.torn {
            // The fast path: a whole batch is there and its last PROBE bytes hold a newline.
            let probe_at = self.offset + (READ - PROBE) as u64;
            let n = read_at(f, &mut slot.buf[..PROBE], probe_at)
                .map_err(|e| AuditError::io(path, "read", e))?;
            if n == PROBE {
                if let Some(p) = memchr::memrchr(b'\n', &slot.buf[..PROBE]) {
                    let len = READ - PROBE + p + 1;
                    let start = self.offset;
                    self.offset += len as u64;
                    return Ok(Next::Range {
                        file: Arc::clone(f),
                        path,
                        start,
                        len,
                    });
                }
            }
        }
        let read = |buf: &mut [u8], at: u64| {
            read_at(f, buf, at).map_err(|e| AuditError::io(path, "read", e))
        };
        let mut have = if self.torn {
            0
        } else {
            read(&mut slot.buf[..READ], self.offset)?
        };
        if have == 0 {
            self.file = None;
            self.idx += 1;
            return Ok(Next::Other(Item::FileEnd));
        }
        // slot.buf[..have] was read at `offset`; slot.buf[..clean] holds no newline.
        let mut clean = 0;
        loop {
            if let Some(p) = memchr::memrchr(b'\n', &slot.buf[clean..have]) {
                slot.len = clean + p + 1;
                self.offset += slot.len as u64;
                return Ok(Next::Lines);
            }
            clean = have;
            if have > MAX_LINE {
                // An over-long line: count it without keeping it.
                let mut len = have as u64;
                loop {
                    let n = read(&mut slot.buf[..READ], self.offset + len)?;
                    if n == 0 {
                        self.offset += len;
                        self.torn = true;
                        return Ok(Next::Other(Item::Torn { len }));
                    }
                    if let Some(p) = memchr::memchr(b'\n', &slot.buf[..n]) {
                        len += p as u64;
                        self.offset += len + 1;
                        return Ok(Next::Other(Item::TooLong { len }));
                    }
                    len += n as u64;
                }
            }
            let n = read(
                &mut slot.buf[have..BUF.min(have + READ)],
                self.offset + have as u64,
            )?;
            if n == 0 {
                self.offset += have as u64;
                self.torn = true;
                return Ok(Next::Other(Item::Torn { len: have as u64 }));
            }
            have += n;
        }
    }
}

/// Reads exactly `buf.len()` bytes of a range the source found ending with a newline. A file
/// that changed between the two reads (cut shorter, rewritten) is an error, never a partial
/// line handed on.
fn fill(f: &File, path: &Path, buf: &mut [u8], at: u64) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let n = read_at(f, &mut buf[got..], at + got as u64)
            .map_err(|e| AuditError::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    if got == buf.len() && buf.last() == Some(&b'\n') {
        Ok(())
    } else {
        Err(AuditError::io(
            path,
            "read",
            io::Error::other("the file changed while it was being read"),
        ))
    }
}

fn read_at(f: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    loop {
        match f.read_at(buf, at) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte of `files` comes back once, in order, as whole lines, whichever path (the
    /// probe or the whole batch under the lock) cut each batch.
    fn items_rebuild(files: &[(PathBuf, Vec<u8>)]) {
        let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
        let mut got: Vec<Vec<u8>> = vec![Vec::new(); files.len()];
        let mut ends = 0;
        in_order(&paths, |job| {
            match &job.item {
                Item::Lines(slot) => {
                    let b = slot.bytes();
                    assert!(!b.is_empty() && b.ends_with(b"\n"));
                    assert_eq!(
                        slot.facts.lines.len(),
                        memchr::memchr_iter(b'\n', b).count()
                    );
                    got[job.file].extend_from_slice(b);
                    assert_eq!(job.read, got[job.file].len() as u64);
                }
                Item::FileEnd => ends += 1,
                Item::Finished => {}
                other => panic!("unexpected item {other:?}"),
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(ends, files.len());
        for ((p, want), got) in files.iter().zip(&got) {
            assert!(got == want, "{} came back different", p.display());
        }
    }

    #[test]
    fn lines_longer_than_the_probe_anywhere_in_a_batch_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        // Lines of 100 bytes to 300 KiB, so some batches end in a line longer than PROBE
        // (no newline in the probe: the batch is read under the lock) and some lines are
        // longer than a whole read.
        for (n, sizes) in [
            [100usize, 5_000, 100, 70_000, 100, 300_000].as_slice(),
            &[PROBE + 1, READ - PROBE, PROBE - 1, READ + 1, 2],
        ]
        .iter()
        .enumerate()
        {
            let mut bytes = Vec::new();
            for round in 0..12 {
                for (i, &len) in sizes.iter().enumerate() {
                    let len = len + (round * 37 + i * 11) % 500;
                    bytes.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
                    bytes.push(b'\n');
                }
            }
            let path = dir.path().join(format!("{n}.jsonl"));
            std::fs::write(&path, &bytes).unwrap();
            files.push((path, bytes));
        }
        items_rebuild(&files);
    }

    #[test]
    fn a_range_that_changed_between_probe_and_read_is_an_error_never_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, b"one\ntwo\nthree\n").unwrap();
        let f = File::open(&path).unwrap();
        let mut buf = [0u8; 8];
        // Whole lines, as the probe found them.
        fill(&f, &path, &mut buf, 0).unwrap();
        assert_eq!(&buf, b"one\ntwo\n");
        // Since cut shorter: fewer bytes than the probe saw.
        let mut long = [0u8; 20];
        let e = fill(&f, &path, &mut long, 0).unwrap_err().to_string();
        assert!(e.contains("changed while it was being read"), "{e}");
        // Rewritten: the range no longer ends at a newline.
        let mut mid = [0u8; 6];
        assert!(fill(&f, &path, &mut mid, 0).is_err());
    }
}
