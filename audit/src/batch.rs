//! The verifier's pipeline: a reader thread cuts files into batches of whole lines, worker
//! threads examine each line on its own (`examine`), and the calling thread gets every item
//! back in file order. A fixed pool of batch buffers bounds memory whatever the files hold; it
//! must never hand a worker a partial line, nor buffer a line longer than `MAX_LINE`.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

use crate::canon::Checker;
use crate::error::{AuditError, Result};
use crate::examine::{examine_batch, Facts};
use crate::verify::open_for_reading;
use crate::MAX_LINE;

/// One batch buffer: more than `MAX_LINE`, so a full buffer without a newline always means
/// an over-long line.
const BUF: usize = 2 << 20;

/// How much is read into a batch at a time: a batch is usually one read, about a thousand
/// records, small enough to still be in cache when a worker takes it. Only a line longer than
/// this makes the reader read on into the rest of the buffer (whose pages stay untouched
/// otherwise).
const READ: usize = 256 << 10;

/// Batches in flight beyond one per worker: one being filled, one being checked in order, one
/// finished out of order.
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

/// What the reader found next, in file order.
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

/// One item of file `file`, after `read` bytes of it were read.
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

/// Reads `files` in order on a reader thread, examines their lines on one worker thread per
/// core, and hands every item to `each` on the calling thread, in file order. Stops at the
/// first `Err` from `each` or at a file that cannot be read (its `Item::Failed` is the last
/// item `each` sees).
pub(crate) fn in_order(files: &[PathBuf], mut each: impl FnMut(&Job) -> Result<()>) -> Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = workers + SPARE_BATCHES;
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let (free_tx, free_rx) = mpsc::channel::<Slot>();
    let job_rx = Mutex::new(job_rx);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (job_rx, stop) = (&job_rx, &stop);
        s.spawn(move || {
            let mut r = Reader {
                jobs: job_tx,
                free: free_rx,
                spare: None,
                made: 0,
                pool,
                no: 0,
                stop,
            };
            r.all(files);
        });
        for _ in 0..workers {
            let done = done_tx.clone();
            s.spawn(move || work(job_rx, &done));
        }
        drop(done_tx);
        // Whatever way this returns, the reader stops at its next read and the channels
        // close, so every thread ends before the scope does.
        let _stop = StopOnDrop(stop);
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
                    // The reader ended without `Finished`: it panicked, and the scope
                    // re-raises that panic.
                    Err(_) => return Ok(()),
                },
            };
            next += 1;
            each(&job)?;
            match job.item {
                Item::Lines(mut slot) => {
                    slot.facts.clear();
                    // The reader may already be gone after its last file.
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

fn work(jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>) {
    let mut checker = Checker::new();
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut job = job;
            if let Item::Lines(slot) = &mut job.item {
                let Slot { buf, len, facts } = slot;
                examine_batch(&mut checker, &buf[..*len], facts);
            }
            job
        }));
        let out = match out {
            Ok(job) => Done::Job(job),
            Err(p) => Done::Panicked(p),
        };
        if done.send(out).is_err() {
            return;
        }
    }
}

struct Reader<'a> {
    jobs: Sender<Job>,
    free: Receiver<Slot>,
    /// A slot kept from the previous file.
    spare: Option<Slot>,
    made: usize,
    pool: usize,
    no: u64,
    stop: &'a AtomicBool,
}

/// Why the reader stops early.
enum Stop {
    /// The caller stopped listening.
    Gone,
    /// A file could not be read; reported as `Item::Failed`.
    Failed(AuditError),
}

impl Reader<'_> {
    fn all(&mut self, files: &[PathBuf]) {
        for (idx, path) in files.iter().enumerate() {
            let read = open_for_reading(path)
                .map_err(Stop::Failed)
                .and_then(|f| self.file(idx, path, f));
            match read {
                Ok(()) => {}
                Err(Stop::Gone) => return,
                Err(Stop::Failed(e)) => {
                    let _ = self.send(idx, 0, Item::Failed(e));
                    return;
                }
            }
        }
        let _ = self.send(files.len(), 0, Item::Finished);
    }

    fn send(&mut self, file: usize, read: u64, item: Item) -> std::result::Result<(), Stop> {
        let job = Job {
            no: self.no,
            file,
            read,
            item,
        };
        self.no += 1;
        self.jobs.send(job).map_err(|_| Stop::Gone)
    }

    /// A free slot: the spare, a new one while the pool is not full, else one the caller
    /// has finished with (waiting for it).
    fn slot(&mut self) -> std::result::Result<Slot, Stop> {
        if let Some(s) = self.spare.take() {
            return Ok(s);
        }
        if self.made < self.pool {
            self.made += 1;
            return Ok(Slot {
                buf: vec![0; BUF],
                len: 0,
                facts: Facts::default(),
            });
        }
        self.free.recv().map_err(|_| Stop::Gone)
    }

    /// Sends one file's items, up to its `FileEnd`.
    fn file(
        &mut self,
        idx: usize,
        path: &Path,
        mut f: std::fs::File,
    ) -> std::result::Result<(), Stop> {
        let mut slot = self.slot()?;
        // slot.buf[..have] is read but not sent; slot.buf[..clean] holds no newline.
        let (mut have, mut clean) = (0usize, 0usize);
        let mut read = 0u64;
        loop {
            if let Some(p) = memchr::memrchr(b'\n', &slot.buf[clean..have]) {
                let end = clean + p + 1;
                let mut next = self.slot()?;
                let rest = have - end;
                next.buf[..rest].copy_from_slice(&slot.buf[end..have]);
                slot.len = end;
                self.send(idx, read, Item::Lines(slot))?;
                slot = next;
                have = rest;
            }
            clean = have;
            if have > MAX_LINE {
                // An over-long line: count it without keeping it.
                let mut len = have as u64;
                loop {
                    let n = self.read_into(&mut f, &mut slot.buf[..READ], path)?;
                    read += n as u64;
                    if n == 0 {
                        self.spare = Some(slot);
                        self.send(idx, read, Item::Torn { len })?;
                        self.send(idx, read, Item::FileEnd)?;
                        return Ok(());
                    }
                    if let Some(p) = memchr::memchr(b'\n', &slot.buf[..n]) {
                        len += p as u64;
                        self.send(idx, read, Item::TooLong { len })?;
                        slot.buf.copy_within(p + 1..n, 0);
                        have = n - p - 1;
                        clean = 0;
                        break;
                    }
                    len += n as u64;
                }
                continue;
            }
            let n = self.read_into(&mut f, &mut slot.buf[have..BUF.min(have + READ)], path)?;
            read += n as u64;
            if n == 0 {
                self.spare = Some(slot);
                if have > 0 {
                    self.send(idx, read, Item::Torn { len: have as u64 })?;
                }
                self.send(idx, read, Item::FileEnd)?;
                return Ok(());
            }
            have += n;
        }
    }

    fn read_into(
        &self,
        f: &mut std::fs::File,
        buf: &mut [u8],
        path: &Path,
    ) -> std::result::Result<usize, Stop> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(Stop::Gone);
        }
        loop {
            match f.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r.map_err(|e| Stop::Failed(AuditError::io(path, "read", e))),
            }
        }
    }
}
