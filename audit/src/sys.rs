//! The only FFI in occ-audit: advisory locks, the effective uid and opening files without
//! following symlinks. Nothing here decides policy; callers check what these calls report.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens (creating with mode 0600) a log for appending: `O_RDWR|O_APPEND|O_CREAT|O_NOFOLLOW|
/// O_CLOEXEC` (std always adds `O_CLOEXEC`). Read access is needed to re-read the tail.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens a file for reading without following a final symlink and without blocking on a FIFO.
pub fn open_read(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Creates a new file exclusively (0600, no symlink follow) for writing.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// An exclusive `flock` held until dropped. It keeps its own duplicate of the descriptor
/// (a lock belongs to the open file description, which the duplicate shares), so the guard
/// does not borrow the file it locks.
#[derive(Debug)]
pub struct Flock {
    file: File,
}

/// Blocks until this process holds an exclusive `flock` on `file`.
pub fn lock_exclusive(file: &File) -> io::Result<Flock> {
    let file = file.try_clone()?;
    loop {
        // SAFETY: flock only reads the integer fd, which `file` keeps open for the whole call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(Flock { file });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        // SAFETY: the guard owns the fd, so it is open; unlocking cannot violate
        // memory safety and a failure only means the lock is released at close instead.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// fsyncs a directory so a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let d = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)?;
    d.sync_all()
}

/// Fills `buf` with random bytes from the kernel.
pub fn random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let want = buf.len() - filled;
        // SAFETY: the pointer and length describe the unfilled tail of `buf`, which is valid
        // for writes of `want` bytes for the duration of the call.
        let n = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), want, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(())
}
