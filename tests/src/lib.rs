//! Helpers for the end-to-end tests: find the built binaries, make temporary homes, and report
//! skips honestly (a skip under `OCC_REQUIRE_FULL_TESTS=1` is a failure).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Directory holding the built `occ`, `occ-scan` and `occ-shim` binaries: `$OCC_BIN_DIR`, or
/// the cargo target directory this test binary was built into.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("OCC_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    // target/<profile>/deps/<test-exe> -> target/<profile>
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(|d| d.parent())
        .map(PathBuf::from)
        .expect("test binary lives in target/<profile>/deps")
}

/// Path of one built binary; panics with the fix when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace` first, or set OCC_BIN_DIR",
        p.display()
    );
    p
}

/// Copies an executable that a test will run. A `cp` child process makes the copy, never a file
/// descriptor of this multi-threaded test process: another test thread's child could inherit
/// that descriptor between its fork and its exec, and running the copy meanwhile fails with
/// "Text file busy" (ETXTBSY).
pub fn copy_exe(src: impl AsRef<Path>, dst: impl AsRef<Path>) {
    let (src, dst) = (src.as_ref(), dst.as_ref());
    let st = Command::new("cp")
        .arg("--")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
    assert!(
        st.success(),
        "cp {} {} failed: {st}",
        src.display(),
        dst.display()
    );
}

/// Writes a script a test will run (mode 0755), put in place by [`copy_exe`] for the same reason.
pub fn write_exe(path: impl AsRef<Path>, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = path.as_ref();
    let name = path.file_name().expect("a file name").to_string_lossy();
    let staging = path.with_file_name(format!(".{name}.staging"));
    std::fs::write(&staging, text).unwrap();
    copy_exe(&staging, path);
    std::fs::remove_file(&staging).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Reports a skipped test. Under `OCC_REQUIRE_FULL_TESTS=1` a skip is a failure.
pub fn skip(why: &str) {
    if std::env::var("OCC_REQUIRE_FULL_TESTS").as_deref() == Ok("1") {
        panic!("SKIP not allowed under OCC_REQUIRE_FULL_TESTS=1: {why}");
    }
    eprintln!("SKIP: {why}");
}

/// Serialises the tests that use the real system-mode paths (`/etc/occ`, `/run/occ`,
/// `/var/lib/occ`, `/var/log/occ`, `/usr/local/bin/occ`): hold the guard for the whole test.
/// A test that panicked while holding it does not block the others (the poison is ignored:
/// each test cleans up after itself with a Drop guard).
pub fn system_paths_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serialises the tests that start a process occ-scan takes for the OpenClaw gateway (the real
/// gateway, or a stand-in named like it) with the tests that look for one in /proc: otherwise a
/// test could find the other's gateway. Poison is ignored, as for [`system_paths_lock`].
pub fn gateway_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}
