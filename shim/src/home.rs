//! Where the shim's broker lives. The home comes from the shim's own location
//! (`realpath(/proc/self/exe)` is `$OCC_HOME/bin/sudo`); the caller's `OCC_HOME` can never
//! point the shim at another broker.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The system-mode socket, used when system mode is installed and `OCC_MODE` is not `user`.
pub const SYSTEM_SOCKET: &str = "/run/occ/broker.sock";

/// The system broker's configuration directory: when it exists, system mode is installed, and
/// a missing socket means the service is down (a refusal), never a reason to start a broker.
pub const SYSTEM_CONFIG_DIR: &str = "/etc/occ";

/// Longest socket path `sun_path` can hold (108 bytes with the terminating NUL).
pub const SUN_PATH_MAX: usize = 107;

/// The broker this shim talks to.
#[derive(Debug)]
pub struct Home {
    /// `$OCC_HOME`.
    pub home: PathBuf,
    /// The socket to connect to.
    pub socket: PathBuf,
    /// Whether it is the system-mode socket (a service; never started on demand).
    pub system: bool,
}

impl Home {
    /// `$OCC_HOME/run`.
    pub fn run_dir(&self) -> PathBuf {
        self.home.join("run")
    }
}

/// Finds the home from `/proc/self/exe`, then the socket.
pub fn locate() -> Result<Home, String> {
    let exe = std::fs::canonicalize("/proc/self/exe")
        .map_err(|e| format!("cannot resolve /proc/self/exe: {e}"))?;
    let home = home_of(&exe)?;
    // OCC_HOME is honoured only when it names this same directory, so it can never redirect
    // the shim; anything else is ignored.
    let system = std::env::var_os("OCC_MODE").as_deref() != Some(std::ffi::OsStr::new("user"))
        && (Path::new(SYSTEM_SOCKET).exists() || Path::new(SYSTEM_CONFIG_DIR).is_dir());
    let socket = if system {
        PathBuf::from(SYSTEM_SOCKET)
    } else {
        home.join("run").join("broker.sock")
    };
    let len = socket.as_os_str().as_bytes().len();
    if len > SUN_PATH_MAX {
        return Err(format!(
            "socket path {} is {len} bytes, longer than the {SUN_PATH_MAX} bytes sun_path holds; \
             install occ under a shorter OCC_HOME",
            socket.display()
        ));
    }
    Ok(Home {
        home,
        socket,
        system,
    })
}

/// `$OCC_HOME` for a resolved executable path `$OCC_HOME/bin/<name>`.
pub fn home_of(exe: &Path) -> Result<PathBuf, String> {
    let bin = exe
        .parent()
        .filter(|b| b.file_name() == Some("bin".as_ref()));
    match bin.and_then(Path::parent) {
        Some(home) => Ok(home.to_path_buf()),
        None => Err(format!(
            "{} is not inside an OCC_HOME/bin directory, so it has no broker",
            exe.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_the_parent_of_bin() {
        assert_eq!(
            home_of(Path::new("/h/.openclaw/bin/sudo")).unwrap(),
            PathBuf::from("/h/.openclaw")
        );
        assert!(home_of(Path::new("/usr/local/sbin/sudo")).is_err());
        assert!(home_of(Path::new("/sudo")).is_err());
    }
}
