//! Crashes mid-record: a fixture with a half-written record, and 50 rounds of a real child
//! process SIGKILLed between the two halves of a record (the crash-hook feature). Verify shows
//! at most `torn_tail` before recovery, and the chain is intact after the next append.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use occ_audit::canon::{Checker, Field};

use crate::child;
use crate::util::{command_event, reasons, Log};

#[test]
fn half_record_fixture_is_torn_then_recovered() {
    let log = Log::new();
    log.fill(5);
    let whole = std::fs::read(&log.path).expect("read");
    // Build a sixth record elsewhere and keep only its first half.
    let other = Log::new();
    other.fill(6);
    let sixth = crate::util::lines(&other.path).pop().expect("line");
    let half = &sixth[..sixth.len() / 2];
    let mut torn = whole.clone();
    torn.extend_from_slice(half);
    std::fs::write(&log.path, &torn).expect("write fixture");

    assert_eq!(reasons(&log.verify()), ["torn_tail"]);

    let mut w = log.writer();
    let next = w.append("command_run", command_event(6)).expect("append");
    drop(w);
    let r = log.verify();
    assert!(r.intact(), "{:?}", r.breaks);
    // The recovery event says what was cut, and the earlier records are untouched.
    let after = std::fs::read(&log.path).expect("read");
    assert!(after.starts_with(&whole));
    let lines = crate::util::lines(&log.path);
    assert_eq!(lines.len(), 7);
    let mut c = Checker::new();
    let rec = c.check(&lines[5][..lines[5].len() - 1]).expect("canonical");
    assert_eq!(
        rec.field("event_type"),
        Some(Field::Str(b"log_recovered".as_slice()))
    );
    let want_off = whole.len().to_string();
    let want_len = half.len().to_string();
    let want_sha = occ_audit::sha256_hex(half);
    assert_eq!(rec.field("offset"), Some(Field::Int(want_off.as_bytes())));
    assert_eq!(rec.field("length"), Some(Field::Int(want_len.as_bytes())));
    assert_eq!(rec.field("sha256"), Some(Field::Str(want_sha.as_bytes())));
    assert_eq!(next.seq, 6);
}

#[test]
fn fifty_sigkills_mid_record_recover_intact() {
    let log = Log::new();
    log.fill(1);
    for round in 0..50 {
        let mut kid = child::command(&format!("crash:{}", log.path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let out = kid.stdout.take().expect("stdout");
        let mut seen = false;
        for line in BufReader::new(out).lines() {
            if line.expect("read child").contains("HALF-WRITTEN") {
                seen = true;
                break;
            }
        }
        assert!(seen, "round {round}: the child never reached the hook");
        kid.kill().expect("SIGKILL");
        let st = kid.wait().expect("wait");
        assert!(!st.success());

        let before = log.verify();
        let rs = reasons(&before);
        assert!(
            rs.iter().all(|r| *r == "torn_tail"),
            "round {round}: {:?}",
            before.breaks
        );
        assert!(rs.len() <= 1);

        log.writer()
            .append("command_run", command_event(round))
            .expect("append after crash");
        let after = log.verify();
        assert!(after.intact(), "round {round}: {:?}", after.breaks);
    }
    // One initial event, then per round a log_recovered and an event.
    assert_eq!(crate::util::lines(&log.path).len(), 1 + 50 * 2);
}
