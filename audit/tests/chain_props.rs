//! Properties of the chain: a fresh chain verifies; any single-byte change, deleted line,
//! swapped pair of lines or cut tail (with the head present) makes verify fail.

use occ_audit::Value;
use proptest::prelude::*;

use crate::util::{fields, reasons, verify_with_head, Log};

/// Writes a chain of events with the given free-text fields; returns the log.
fn chain(texts: &[String]) -> Log {
    let log = Log::new();
    let mut w = log.writer();
    for (i, t) in texts.iter().enumerate() {
        w.append(
            "command_run",
            fields(&[
                ("reason", Value::Str(t.clone())),
                ("n", Value::Int(i as i64)),
            ]),
        )
        .expect("append");
    }
    log
}

fn verify_bytes(log: &Log, bytes: &[u8]) -> occ_audit::Report {
    let p = log.dir.path().join("mutated.jsonl");
    std::fs::write(&p, bytes).expect("write");
    verify_with_head(&[p], Some(&log.head_path()))
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(any::<String>(), 2..8)
}

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn fresh_chain_verifies(t in texts()) {
        let log = chain(&t);
        let r = log.verify();
        prop_assert!(r.intact(), "{:?}", r.breaks);
        prop_assert_eq!(r.events, t.len() as u64);
    }

    #[test]
    fn any_single_byte_change_breaks(t in texts(), pos in any::<prop::sample::Index>(), new in any::<u8>()) {
        let log = chain(&t);
        let mut bytes = std::fs::read(&log.path).expect("read");
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != new);
        bytes[i] = new;
        let r = verify_bytes(&log, &bytes);
        prop_assert!(!r.intact(), "byte {} -> {:#x} went unnoticed", i, new);
    }

    #[test]
    fn deleted_line_breaks(t in texts(), which in any::<prop::sample::Index>()) {
        let log = chain(&t);
        let mut lines = crate::util::lines(&log.path);
        lines.remove(which.index(lines.len()));
        let r = verify_bytes(&log, &lines.concat());
        prop_assert!(!r.intact());
    }

    #[test]
    fn swapped_pair_breaks(t in texts(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let log = chain(&t);
        let mut lines = crate::util::lines(&log.path);
        let (a, b) = (a.index(lines.len()), b.index(lines.len()));
        prop_assume!(a != b);
        lines.swap(a, b);
        let r = verify_bytes(&log, &lines.concat());
        prop_assert!(!r.intact());
    }

    #[test]
    fn cut_tail_breaks_with_head(t in texts(), cut in 1usize..2000) {
        let log = chain(&t);
        let bytes = std::fs::read(&log.path).expect("read");
        let keep = bytes.len().saturating_sub(cut);
        let r = verify_bytes(&log, &bytes[..keep]);
        prop_assert!(!r.intact());
        let rs = reasons(&r);
        prop_assert!(rs.iter().all(|r| *r == "torn_tail" || *r == "behind_head_checkpoint"), "{:?}", rs);
    }
}

#[test]
fn cut_tail_without_head_only_shows_when_torn() {
    // Documents the limit the head exists for: a cut at a line boundary is invisible without it.
    let log = chain(&["a".into(), "b".into(), "c".into()]);
    let lines = crate::util::lines(&log.path);
    let p = log.dir.path().join("cut.jsonl");
    std::fs::write(&p, lines[..2].concat()).expect("write");
    assert!(verify_with_head(std::slice::from_ref(&p), None).intact());
    assert_eq!(
        reasons(&verify_with_head(&[p], Some(&log.head_path()))),
        ["behind_head_checkpoint"]
    );
}
