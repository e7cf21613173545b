//! The broker's one clock: milliseconds since the epoch, which every expiry and idle rule
//! reads. `occ` always reads the system clock. A program that embeds the broker library may
//! install another source once, before it starts serving (the tests' `occ-test-clock` does);
//! nothing a caller sends, no file and no environment variable can move it.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static SOURCE: OnceLock<fn() -> u64> = OnceLock::new();

/// Milliseconds since the epoch, from the installed source or the system clock.
pub fn now_ms() -> u64 {
    match SOURCE.get() {
        Some(source) => source(),
        None => system_ms(),
    }
}

/// The system clock in milliseconds since the epoch (0 before the epoch).
pub fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Installs the clock source for the rest of the process. Only the first call takes effect;
/// it returns whether this call was the one. `occ`'s own `main` never calls it.
pub fn install_source(source: fn() -> u64) -> bool {
    SOURCE.set(source).is_ok()
}
