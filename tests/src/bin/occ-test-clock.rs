//! `occ` with a clock the tests can move: identical to `occ` (it runs the same library entry
//! point) except that the broker's clock is the system clock plus the milliseconds written in
//! `run/test-clock-offset-ms` beside its own `bin/` directory. It lives in the tests crate,
//! which is never installed, so no build of `occ` itself carries any clock control.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

/// `$OCC_HOME/run/test-clock-offset-ms`, found from this executable's own path
/// (`$OCC_HOME/bin/occ`).
fn offset_file() -> Option<&'static PathBuf> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.parent()?.join("run/test-clock-offset-ms"))
    })
    .as_ref()
}

fn shifted_now_ms() -> u64 {
    let offset = offset_file()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    occ_broker::clock::system_ms().saturating_add(offset)
}

fn main() {
    occ_broker::clock::install_source(shifted_now_ms);
    std::process::exit(occ_broker::cli::main());
}
