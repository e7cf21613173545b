//! The verifier's pipeline: worker threads take turns cutting the files into batches of whole
//! lines, examine each batch's lines on their own (`examine`), and the calling thread gets
//! every item back in file order. A fixed pool of batch buffers bounds memory whatever the
//! files hold; it must never hand a worker a partial line, nor buffer a line longer than
//! `MAX_LINE`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, MutexGuard};

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

/// Reads `files` in order and examines their lines on one worker thread per core, and hands
/// every item to `each` on the calling thread, in file order. Stops at the first `Err` from
/// `each` or at a file that cannot be read (its `Item::Failed` is the last item `each` sees).
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
        for _ in 0..workers {
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
        loop {
            let job = match early.remove(&next) {
                Some(j) => j,
                None => match done_rx.recv() {
                    Ok(Done::Job(j)) if j.no == next => j,
                    Ok(Done::Job(j)) => {
                        early.insert(j.no, j);
                        continue;
                    }
                    Ok(Done::Panicked(p)) => std::panic::resume_unwind(p),
                    // Every worker ended without `Finished`: cannot happen unless one
                    // panicked, which it reported first.
                    Err(_) => return Ok(()),
                },
            };
            next += 1;
            each(&job)?;
            match job.item {
                Item::Lines(mut slot) => {
                    slot.facts.clear();
                    // The workers may already be gone after the last file.
                    let _ = free_tx.send(slot);
                }
                Item::Failed(e) => return Err(e),
                Item::Finished => return Ok(()),
                Item::TooLong { .. } | Item::Torn { .. } | Item::FileEnd => {}
            }
        }
    })
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

/// One worker: takes a free buffer, has the source fill it with the next whole lines (under
/// the source's lock, so batches are numbered in file order), then examines them.
fn work(
    source: &Mutex<Source<'_>>,
    free: &Mutex<Receiver<Slot>>,
    stop: &AtomicBool,
    done: &Sender<Done>,
) {
    let mut checker = Checker::new();
    let mut slot: Option<Slot> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut taken = match slot.take() {
            Some(s) => s,
            None => match lock(free).recv() {
                Ok(s) => s,
                // The caller stopped listening.
                Err(_) => return,
            },
        };
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (no, file, read, next) = lock(source).next(&mut taken)?;
            let item = match next {
                Next::Lines => {
                    let Slot { buf, len, facts } = &mut taken;
                    examine_batch(&mut checker, &buf[..*len], facts);
                    Item::Lines(taken)
                }
                Next::Other(item) => {
                    slot = Some(taken);
                    item
                }
            };
            Some(Job {
                no,
                file,
                read,
                item,
            })
        }));
        let out = match out {
            Ok(Some(job)) => Done::Job(job),
            // Every file was read and `Finished` was sent.
            Ok(None) => return,
            Err(p) => Done::Panicked(p),
        };
        if done.send(out).is_err() {
            return;
        }
    }
}

/// What [`Source::next`] put in the buffer it was given.
enum Next {
    /// Whole lines, `buf[..len]`, to be examined.
    Lines,
    /// An item without lines; the buffer is left for the next call.
    Other(Item),
}

/// Where reading has got to. Each call to `next` takes the next item and its number.
struct Source<'a> {
    files: &'a [PathBuf],
    /// The file being read (or to open next).
    idx: usize,
    file: Option<File>,
    /// The offset in `file` of the first byte not yet given out (the start of a line).
    offset: u64,
    /// A torn tail was given out: the file ends there.
    torn: bool,
    no: u64,
    /// `Finished` or `Failed` was given out.
    ended: bool,
}

impl Source<'_> {
    /// The next item, numbered, with the file it belongs to and how far that file has been
    /// taken; `None` once `Finished` or `Failed` was given out.
    fn next(&mut self, slot: &mut Slot) -> Option<(u64, usize, u64, Next)> {
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

    fn take(&mut self, slot: &mut Slot) -> Result<Next> {
        let Some(path) = self.files.get(self.idx) else {
            return Ok(Next::Other(Item::Finished));
        };
        let f = match &self.file {
            Some(f) => f,
            None => {
                self.offset = 0;
                self.torn = false;
                self.file.insert(open_for_reading(path)?)
            }
        };
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

fn read_at(f: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    loop {
        match f.read_at(buf, at) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}
