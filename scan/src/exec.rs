//! occ-scan's one way to run an external tool (lsof, getent, the openclaw CLI, `occ status`,
//! systemctl and crontab, the notifier) and to find one on PATH. Running is occ's one runner
//! (`occ_base::child`): a deadline, the process group killed whole when it passes, output
//! drained concurrently and capped, so a full pipe or an endless writer can never wedge a scan.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::ScanError;

pub use occ_base::child::{ChildOutput, CAPTURE_CAP};

/// Runs `cmd` with `stdin` bytes (or /dev/null) by occ's one runner ([`occ_base::child::run`]):
/// stdout and stderr captured, the process group killed when `timeout` passes (then
/// `timed_out` is set). `Err` only when it cannot be started or waited for.
pub fn run(
    cmd: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<ChildOutput, ScanError> {
    occ_base::child::run(cmd, stdin, timeout).map_err(|e| ScanError::Child {
        program: e.program,
        message: e.message,
    })
}

/// Finds `name` on a PATH-style list: the first absolute entry holding an executable regular
/// file.
pub fn which_in(name: &str, path_var: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| is_executable_file(p))
}

/// Finds `name` on this process's PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| which_in(name, &p))
}

/// Finds a program on PATH, then in the sbin/bin directories a cron or launchd PATH may lack
/// (lsof lives in /usr/sbin on some systems).
pub fn find_program(name: &str) -> Option<PathBuf> {
    which(name).or_else(|| {
        [
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
            "/usr/local/sbin",
            "/usr/local/bin",
            "/opt/homebrew/bin",
        ]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| is_executable_file(p))
    })
}

/// Whether `p` (following symlinks) is a regular file with an execute bit.
pub fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_is_an_error_naming_it() {
        let cmd = Command::new("/nonexistent/occ-scan-test-program");
        let e = run(cmd, None, Duration::from_secs(1)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/occ-scan-test-program: cannot start:"),
            "{e}"
        );
    }
}
