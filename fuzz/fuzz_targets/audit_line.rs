//! Fuzzes the audit log's canonical-form checker with untrusted lines: it must never panic, and
//! a line it accepts as canonical must parse as JSON (serde_json with `arbitrary_precision`, so
//! integers of any size, which the log allows, parse). Lone surrogate escapes (`"\udc00"`) are
//! the one thing serde_json refuses that the checker accepts on purpose (RFC 8259's grammar
//! allows them and Python's `json.dumps` writes them), so every surrogate escape is replaced by
//! `\ufffd` before serde_json checks the line.
//! Run: `cd fuzz && cargo +nightly fuzz run audit_line`.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// `line` with each `\uXXXX` escape of a surrogate (D800–DFFF) replaced by `\ufffd`, walking
/// escapes pairwise so an escaped backslash is never mistaken for the start of one.
fn without_surrogate_escapes(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] != b'\\' || i + 1 >= line.len() {
            out.push(line[i]);
            i += 1;
            continue;
        }
        let hex = line.get(i + 2..i + 6).and_then(|h| std::str::from_utf8(h).ok());
        let cp = hex.and_then(|h| u32::from_str_radix(h, 16).ok());
        if line[i + 1] == b'u' && cp.is_some_and(|c| (0xd800..0xe000).contains(&c)) {
            out.extend_from_slice(b"\\ufffd");
            i += 6;
        } else {
            out.extend_from_slice(&line[i..i + 2]);
            i += 2;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut checker = occ_audit::canon::Checker::new();
    if checker.check(data).is_ok() {
        let json = without_surrogate_escapes(data);
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&json) {
            panic!("accepted as canonical, but not JSON: {e}");
        }
    }
});
