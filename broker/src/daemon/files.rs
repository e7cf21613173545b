//! The broker's run files: `run/` (0700), the single-instance lock, the pid file and the socket
//! (0600). A stale socket is removed only while holding the lock, so two brokers never fight
//! over one path.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Longest socket path `sun_path` holds (108 bytes with the terminating NUL).
pub const SUN_PATH_MAX: usize = 107;

/// Why the broker could not set up its run files.
#[derive(Debug)]
#[non_exhaustive]
pub enum FilesError {
    /// Another broker holds `run/broker.lock`.
    Locked {
        /// Its pid, from `run/broker.pid`, if readable.
        pid: Option<u32>,
    },
    /// A file operation failed.
    Io {
        /// What we were doing.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `run/` is a symlink, not a directory, or owned by another user.
    Unsafe {
        /// The path.
        path: PathBuf,
        /// What is wrong and the fix.
        why: String,
    },
    /// The socket path does not fit `sun_path`.
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for FilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilesError::Locked { pid: Some(p) } => {
                write!(f, "a broker is already running (pid {p})")
            }
            FilesError::Locked { pid: None } => write!(f, "a broker is already running"),
            FilesError::Io { op, path, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
            FilesError::Unsafe { path, why } => write!(f, "{}: {why}", path.display()),
            FilesError::PathTooLong { path, len } => write!(
                f,
                "socket path {} is {len} bytes, longer than the {SUN_PATH_MAX} bytes sun_path \
                 holds; use a shorter OCC_HOME",
                path.display()
            ),
        }
    }
}

impl std::error::Error for FilesError {}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FilesError + 'a {
    move |source| FilesError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Paths under `$OCC_HOME/run`.
#[derive(Clone, Debug)]
pub struct RunPaths {
    /// `run/`.
    pub dir: PathBuf,
    /// `run/broker.sock`.
    pub socket: PathBuf,
    /// `run/broker.lock`.
    pub lock: PathBuf,
    /// `run/broker.pid`.
    pub pid: PathBuf,
    /// `run/broker.log`.
    pub log: PathBuf,
    /// The admin socket, when approvers have their own (system mode).
    pub admin: Option<PathBuf>,
    /// The directory's mode: 0700 for a user's broker, 0755 for the system broker.
    pub dir_mode: u32,
    /// The sockets' mode: 0600 for a user's broker; 0666 for the system broker, whose
    /// callers are told apart by the kernel (SO_PEERCRED), never by file modes.
    pub socket_mode: u32,
}

impl RunPaths {
    /// The run paths for a home.
    pub fn new(home: &Path) -> RunPaths {
        let dir = home.join("run");
        RunPaths {
            socket: dir.join("broker.sock"),
            lock: dir.join("broker.lock"),
            pid: dir.join("broker.pid"),
            log: dir.join("broker.log"),
            dir,
            admin: None,
            dir_mode: 0o700,
            socket_mode: 0o600,
        }
    }

    /// The system broker's paths: sockets, lock and pid in `/run/occ`, its log in
    /// `/var/log/occ/broker.log`.
    pub fn system() -> RunPaths {
        let dir = PathBuf::from(crate::layout::SYSTEM_RUN_DIR);
        RunPaths {
            socket: PathBuf::from(crate::layout::SYSTEM_BROKER_SOCKET),
            admin: Some(PathBuf::from(crate::layout::SYSTEM_ADMIN_SOCKET)),
            lock: dir.join("broker.lock"),
            pid: dir.join("broker.pid"),
            log: Path::new(crate::layout::SYSTEM_LOG_DIR).join("broker.log"),
            dir,
            dir_mode: 0o755,
            socket_mode: 0o666,
        }
    }
}

/// Creates `run/` (and the home) with the paths' mode if missing; refuses a symlink, a
/// non-directory or a directory owned by someone else, and sets our own directory's mode.
pub fn ensure_run_dir(paths: &RunPaths) -> Result<(), FilesError> {
    let dir = &paths.dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(paths.dir_mode)
        .create(dir)
        .map_err(io_err("create", dir))?;
    let md = std::fs::symlink_metadata(dir).map_err(io_err("inspect", dir))?;
    if !md.is_dir() {
        return Err(FilesError::Unsafe {
            path: dir.clone(),
            why: "is not a directory (a symlink or file); remove it and retry".into(),
        });
    }
    let uid = nix::unistd::geteuid().as_raw();
    if md.uid() != uid {
        return Err(FilesError::Unsafe {
            path: dir.clone(),
            why: format!(
                "is owned by uid {}, not the broker's uid {uid}; chown it or remove it",
                md.uid()
            ),
        });
    }
    if md.mode() & 0o7777 != paths.dir_mode {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(paths.dir_mode))
            .map_err(io_err("chmod", dir))?;
    }
    Ok(())
}

/// Past this size, `run/broker.log` is rotated when a broker starts.
pub const LOG_ROTATE_BYTES: u64 = 4 << 20;

/// Called by the broker that holds the lock, when it logs to `run/broker.log`: a log over
/// [`LOG_ROTATE_BYTES`] becomes `broker.log.1` (replacing an older one), and a fresh log takes
/// over this process's stdout and stderr. Returns whether it rotated.
pub fn rotate_log(paths: &RunPaths) -> Result<bool, FilesError> {
    let big = std::fs::symlink_metadata(&paths.log)
        .is_ok_and(|m| m.file_type().is_file() && m.len() > LOG_ROTATE_BYTES);
    if !big {
        return Ok(false);
    }
    let old = paths.dir.join("broker.log.1");
    std::fs::rename(&paths.log, &old).map_err(io_err("rotate", &paths.log))?;
    let log = open_log(paths)?;
    for fd in [1, 2] {
        nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&log), fd)
            .map_err(|e| io_err("redirect output to", &paths.log)(e.into()))?;
    }
    Ok(true)
}

/// Opens `run/broker.log` for appending (0600), refusing a symlink.
pub fn open_log(paths: &RunPaths) -> Result<File, FilesError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&paths.log)
        .map_err(io_err("open", &paths.log))
}

/// The lock, pid file and listening socket of a running broker. Dropping it releases the lock
/// but leaves the files; call [`Running::remove`] on a clean stop.
#[derive(Debug)]
pub struct Running {
    /// The paths.
    pub paths: RunPaths,
    _lock: Flock<File>,
}

/// Takes the single-instance lock, writes the pid file and binds the socket.
pub fn acquire(paths: &RunPaths) -> Result<(Running, UnixListener), FilesError> {
    ensure_run_dir(paths)?;
    let len = paths.socket.as_os_str().len();
    if len > SUN_PATH_MAX {
        return Err(FilesError::PathTooLong {
            path: paths.socket.clone(),
            len,
        });
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&paths.lock)
        .map_err(io_err("open", &paths.lock))?;
    let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            return Err(FilesError::Locked {
                pid: read_pid(&paths.pid),
            })
        }
        Err((_, e)) => {
            return Err(FilesError::Io {
                op: "lock",
                path: paths.lock.clone(),
                source: io::Error::from(e),
            })
        }
    };
    // We hold the lock: whatever socket is there belongs to a dead broker.
    remove_stale_socket(&paths.socket)?;
    // The pid file first: once the socket answers, everything about the broker is in place.
    write_pid(&paths.pid)?;
    let listener = bind(&paths.socket, paths.socket_mode)?;
    Ok((
        Running {
            paths: paths.clone(),
            _lock: lock,
        },
        listener,
    ))
}

/// Removes a dead broker's socket; refuses anything else in its place.
fn remove_stale_socket(path: &Path) -> Result<(), FilesError> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(io_err("remove stale", path))
        }
        Ok(_) => Err(FilesError::Unsafe {
            path: path.to_path_buf(),
            why: "exists and is not a socket; remove it and retry".into(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

/// Binds a listening socket and gives it `mode`.
fn bind(path: &Path, mode: u32) -> Result<UnixListener, FilesError> {
    let listener = UnixListener::bind(path).map_err(io_err("bind", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err("chmod", path))?;
    Ok(listener)
}

/// Binds the admin socket of a broker that has one (the caller holds the lock).
pub fn bind_admin(paths: &RunPaths) -> Result<Option<UnixListener>, FilesError> {
    let Some(admin) = &paths.admin else {
        return Ok(None);
    };
    remove_stale_socket(admin)?;
    bind(admin, paths.socket_mode).map(Some)
}

impl Running {
    /// Removes the sockets (first, so no new caller connects to a stopping broker).
    pub fn remove_socket(&self) {
        let _ = std::fs::remove_file(&self.paths.socket);
        if let Some(admin) = &self.paths.admin {
            let _ = std::fs::remove_file(admin);
        }
    }

    /// Removes the socket and the pid file; the lock goes when `self` drops.
    pub fn remove(self) {
        self.remove_socket();
        let _ = std::fs::remove_file(&self.paths.pid);
    }
}

fn write_pid(path: &Path) -> Result<(), FilesError> {
    use occ_base::atomic::{self, Options};
    let text = format!("{}\n", std::process::id());
    // Serialized: only the holder of broker.lock writes the pid file.
    atomic::write_private(path, text.as_bytes(), Options::durable().serialized()).map_err(|e| {
        FilesError::Io {
            op: "write",
            path: path.to_path_buf(),
            source: e.into_source(),
        }
    })
}

/// The pid in a pid file, if it holds one.
pub fn read_pid(path: &Path) -> Option<u32> {
    let mut s = String::new();
    File::open(path)
        .ok()?
        .take(32)
        .read_to_string(&mut s)
        .ok()?;
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_is_0600_and_a_stale_temp_is_cleared() {
        let d = tempfile::tempdir().unwrap();
        let pid = d.path().join("broker.pid");
        // What a broker killed mid-write leaves behind; it must not block or leak into the file.
        std::fs::write(d.path().join(".broker.pid.tmp"), b"999999\n").unwrap();
        write_pid(&pid).unwrap();
        assert_eq!(read_pid(&pid), Some(std::process::id()));
        let md = std::fs::symlink_metadata(&pid).unwrap();
        assert_eq!(md.mode() & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
