//! The OS calls occ-audit makes: advisory locks, the effective uid and opening files without
//! following symlinks. nix and std make the calls, so the crate has no FFI of its own; nothing
//! here decides policy, callers check what these calls report.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{FlockArg, OFlag};

/// Opens (creating with mode 0600) a log for appending: `O_RDWR|O_APPEND|O_CREAT|O_NOFOLLOW|
/// O_CLOEXEC` (std always adds `O_CLOEXEC`). Read access is needed to re-read the tail.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)
}

/// Opens a file for reading without following a final symlink and without blocking on a FIFO.
pub fn open_read(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path)
}

/// Whether an open failed because the final component is a symlink (`O_NOFOLLOW`'s `ELOOP`).
pub fn is_symlink_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::ELOOP as i32)
}

/// An exclusive `flock` held until dropped, which unlocks it. It keeps its own duplicate of the
/// descriptor (a lock belongs to the open file description, which the duplicate shares), so the
/// guard does not borrow the file it locks.
pub type Flock = nix::fcntl::Flock<File>;

/// Blocks until this process holds an exclusive `flock` on `file`.
pub fn lock_exclusive(file: &File) -> io::Result<Flock> {
    let mut dup = file.try_clone()?;
    loop {
        match Flock::lock(dup, FlockArg::LockExclusive) {
            Ok(guard) => return Ok(guard),
            Err((again, Errno::EINTR)) => dup = again,
            Err((_, e)) => return Err(e.into()),
        }
    }
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}
