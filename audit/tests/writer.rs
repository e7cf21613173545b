//! The writer's contract beyond chaining: reserved fields, group commit and the head, the seal
//! key surviving a crash between record and ratchet, and head-versus-empty-log refusal.

use std::collections::BTreeMap;
use std::time::Duration;

use occ_audit::{AuditError, Fsync, Head, Options, Value, VerifyOptions, Writer};

use crate::util::{command_event, Log};

#[test]
fn reserved_fields_and_bad_event_types_are_refused() {
    let log = Log::new();
    let mut w = log.writer();
    for key in [
        "seq",
        "chain_hash",
        "prev_hash",
        "seal",
        "timestamp",
        "event_type",
    ] {
        let mut f = BTreeMap::new();
        f.insert(key.to_owned(), Value::Int(1));
        let e = w.append("command_run", f).expect_err("reserved");
        assert!(matches!(e, AuditError::ReservedField { .. }), "{e}");
        assert!(e.to_string().contains(key));
    }
    assert!(w.append("", BTreeMap::new()).is_err());
    let huge = Value::Str("x".repeat(occ_audit::MAX_LINE));
    let mut f = BTreeMap::new();
    f.insert("blob".to_owned(), huge);
    let e = w.append("command_run", f).expect_err("too large");
    assert!(matches!(e, AuditError::TooLarge { .. }), "{e}");
    // Nothing was written by the refusals.
    assert_eq!(std::fs::metadata(&log.path).expect("stat").len(), 0);
}

#[test]
fn batch_mode_updates_the_head_only_at_sync() {
    let log = Log::new();
    let mut w = Writer::open(
        &log.path,
        Options {
            fsync: Fsync::Batch {
                max_records: 1000,
                max_delay: Duration::from_secs(3600),
            },
            ..Options::default()
        },
    )
    .expect("open");
    for i in 0..5 {
        w.append("command_run", command_event(i)).expect("append");
    }
    assert_eq!(Head::read(&log.head_path()).expect("read"), None);
    // The records are already in the file (one write each), and verify is clean.
    assert_eq!(log.verify().events, 5);
    w.sync().expect("sync");
    let h = Head::read(&log.head_path()).expect("read").expect("head");
    assert_eq!(h.seq, 4);
    assert!(log.verify().intact());
}

#[test]
fn seal_key_left_behind_by_a_crash_is_ratcheted_on_reopen() {
    let log = Log::new();
    let mut w = log.writer();
    let (k0, _) = w
        .start_sealing("log_initialized", BTreeMap::new())
        .expect("seal");
    let key_path = w.seal_key_path().to_owned();
    let before = std::fs::read(&key_path).expect("key");
    w.append("command_run", command_event(1)).expect("append");
    drop(w);
    // Simulate a crash after the sealed record was written but before the key file was
    // replaced: put the key that sealed it back.
    std::fs::write(&key_path, &before).expect("restore stale key");
    let mut w = log.writer();
    w.append("command_run", command_event(2)).expect("append");
    drop(w);
    let r = occ_audit::verify_files(
        std::slice::from_ref(&log.path),
        VerifyOptions {
            key: Some(k0),
            ..VerifyOptions::default()
        },
        &mut |_| {},
    )
    .expect("verify");
    assert!(r.intact(), "{:?}", r.breaks);
}

#[test]
fn sealed_log_without_its_key_file_refuses_to_append() {
    let log = Log::new();
    let mut w = log.writer();
    let _ = w
        .start_sealing("log_initialized", BTreeMap::new())
        .expect("seal");
    let key_path = w.seal_key_path().to_owned();
    drop(w);
    std::fs::remove_file(&key_path).expect("rm key");
    let e = log
        .writer()
        .append("command_run", command_event(0))
        .expect_err("refused");
    assert!(matches!(e, AuditError::SealKeyMissing { .. }), "{e}");
}

#[test]
fn emptied_log_with_a_head_is_refused() {
    let log = Log::new();
    log.fill(3);
    std::fs::write(&log.path, b"").expect("truncate");
    let e = log
        .writer()
        .append("command_run", command_event(0))
        .expect_err("refused");
    assert!(e.to_string().contains("audit-head.json"), "{e}");
}

#[test]
fn writers_in_one_process_share_the_chain() {
    let log = Log::new();
    let mut a = log.writer();
    let mut b = log.writer();
    for i in 0..10 {
        let w = if i % 2 == 0 { &mut a } else { &mut b };
        assert_eq!(
            w.append("command_run", command_event(i))
                .expect("append")
                .seq,
            i
        );
    }
    assert!(log.verify().intact());
}
