//! Fuzzes the audit log's canonical-form checker with untrusted lines: it must never panic, and
//! a line it accepts as canonical must parse as JSON.
//! Run: `cd fuzz && cargo +nightly fuzz run audit_line`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut checker = occ_audit::canon::Checker::new();
    if checker.check(data).is_ok() {
        assert!(serde_json::from_slice::<serde_json::Value>(data).is_ok());
    }
});
