//! Fuzzes the sudo command-line grammar with arbitrary argv (split on NUL bytes): it must never
//! panic, and a parsed request re-rendered to argv must parse back to the same request.
//! Run: `cd fuzz && cargo +nightly fuzz run sudo_grammar`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let args: Vec<&str> = if text.is_empty() { Vec::new() } else { text.split('\0').collect() };
    if let Ok(req) = occ_policy::grammar::parse(&args) {
        let again = occ_policy::grammar::render(&req);
        let back = occ_policy::grammar::parse(&again).expect("a rendered request parses");
        assert_eq!(back, req);
    }
});
