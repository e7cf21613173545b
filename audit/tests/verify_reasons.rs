//! One test per verify reason: each tampering produces exactly the breaks DESIGN.md's table
//! names, at the right line and seq. Forged lines are hashed here, independently of the writer.

use std::collections::BTreeMap;
use std::path::PathBuf;

use occ_audit::{Head, SealKey, Value, VerifyOptions};

use crate::util::{command_event, reasons, verify_with_head, Log};

/// Serialises events into a chained log the way DESIGN.md defines it.
fn forge(events: Vec<BTreeMap<String, Value>>) -> Vec<Vec<u8>> {
    let mut prev: Option<String> = None;
    let mut out = Vec::new();
    for (i, mut e) in events.into_iter().enumerate() {
        e.entry("seq".into()).or_insert(Value::Int(i as i64));
        e.entry("timestamp".into())
            .or_insert(Value::from("2026-01-01T00:00:00.000Z"));
        e.entry("event_type".into())
            .or_insert(Value::from("command_run"));
        e.entry("prev_hash".into())
            .or_insert(Value::from(prev.clone()));
        let h = occ_audit::sha256_hex(&Value::Object(e.clone()).to_canonical());
        e.insert("chain_hash".into(), Value::from(h.clone()));
        prev = Some(h);
        let mut line = Value::Object(e).to_canonical();
        line.push(b'\n');
        out.push(line);
    }
    out
}

fn write(log: &Log, lines: &[Vec<u8>]) -> PathBuf {
    std::fs::write(&log.path, lines.concat()).expect("write");
    log.path.clone()
}

fn plain(n: usize) -> Vec<BTreeMap<String, Value>> {
    (0..n as u64).map(command_event).collect()
}

fn check(lines: &[Vec<u8>], want: &[(&str, u64, Option<u64>)]) {
    let log = Log::new();
    let p = write(&log, lines);
    let r = verify_with_head(&[p], None);
    let got: Vec<(&str, u64, Option<u64>)> = r
        .breaks
        .iter()
        .map(|b| (b.reason.as_str(), b.line, b.seq))
        .collect();
    assert_eq!(got, want, "{:#?}", r.breaks);
}

#[test]
fn forged_chain_is_intact() {
    check(&forge(plain(4)), &[]);
}

#[test]
fn invalid_json_then_previous_event_unverifiable() {
    let mut l = forge(plain(4));
    l[1] = b"{\"seq\": 1, oops\n".to_vec();
    check(
        &l,
        &[
            ("invalid_json", 2, None),
            ("previous_event_unverifiable", 3, Some(2)),
        ],
    );
}

#[test]
fn not_canonical_is_one_break() {
    let mut l = forge(plain(3));
    let s = String::from_utf8(l[1].clone()).expect("ascii");
    l[1] = s
        .replacen("\"decision\": ", "\"decision\":", 1)
        .into_bytes();
    check(&l, &[("not_canonical", 2, Some(1))]);
}

#[test]
fn missing_or_invalid_chain_hash() {
    let mut l = forge(plain(3));
    let s = String::from_utf8(l[2].clone()).expect("ascii");
    let start = s.find("\"chain_hash\": \"").expect("has hash") + 15;
    let mut t = s.clone();
    t.replace_range(start..start + 64, &"A".repeat(64));
    l[2] = t.into_bytes();
    check(&l, &[("missing_or_invalid_chain_hash", 3, Some(2))]);
}

#[test]
fn content_hash_mismatch() {
    let mut l = forge(plain(3));
    let s = String::from_utf8(l[1].clone()).expect("ascii");
    l[1] = s.replacen("\"allow\"", "\"alloW\"", 1).into_bytes();
    check(&l, &[("content_hash_mismatch", 2, Some(1))]);
}

#[test]
fn genesis_prev_hash_not_null() {
    let l = forge(plain(3));
    check(&l[1..], &[("genesis_prev_hash_not_null", 1, Some(1))]);
}

#[test]
fn prev_hash_link_mismatch() {
    let mut events = plain(3);
    events[2].insert("prev_hash".into(), Value::from("0".repeat(64)));
    check(&forge(events), &[("prev_hash_link_mismatch", 3, Some(2))]);
}

#[test]
fn seq_gap() {
    let mut events = plain(3);
    events[2].insert("seq".into(), Value::Int(7));
    check(&forge(events), &[("seq_gap", 3, Some(7))]);
}

#[test]
fn torn_tail() {
    let mut l = forge(plain(3));
    l[2].pop();
    check(&l, &[("torn_tail", 3, None)]);
}

#[test]
fn seal_missing_and_seal_mismatch() {
    let log = Log::new();
    let mut w = log.writer();
    w.append("command_run", command_event(0)).expect("append");
    let (k0, _) = w
        .start_sealing("log_initialized", BTreeMap::new())
        .expect("seal");
    w.append("command_run", command_event(1)).expect("append");
    drop(w);
    let verify = |key: Option<SealKey>| {
        occ_audit::verify_files(
            std::slice::from_ref(&log.path),
            VerifyOptions {
                key,
                ..VerifyOptions::default()
            },
            &mut |_| {},
        )
        .expect("verify")
    };
    assert!(verify(Some(k0.clone())).intact());
    let wrong = SealKey::from_bytes([9; 32]);
    assert_eq!(
        reasons(&verify(Some(wrong))),
        ["seal_mismatch", "seal_mismatch"]
    );

    // Append a correctly chained but unsealed record.
    let lines = crate::util::lines(&log.path);
    let last = String::from_utf8(lines[2].clone()).expect("ascii");
    let prev = last
        .split("\"chain_hash\": \"")
        .nth(1)
        .and_then(|s| s.get(..64))
        .expect("hash")
        .to_owned();
    let mut e = command_event(3);
    e.insert("seq".into(), Value::Int(3));
    e.insert("prev_hash".into(), Value::from(prev));
    e.insert("timestamp".into(), Value::from("2026-01-01T00:00:00.000Z"));
    e.insert("event_type".into(), Value::from("command_run"));
    let h = occ_audit::sha256_hex(&Value::Object(e.clone()).to_canonical());
    e.insert("chain_hash".into(), Value::from(h));
    let mut bytes = lines.concat();
    bytes.extend_from_slice(&Value::Object(e).to_canonical());
    bytes.push(b'\n');
    std::fs::write(&log.path, bytes).expect("write");
    let r = verify(Some(k0));
    assert_eq!(reasons(&r), ["seal_missing"]);
    assert_eq!((r.breaks[0].line, r.breaks[0].seq), (4, Some(3)));
    assert_eq!(reasons(&verify(None)), ["seal_missing"]);
}

#[test]
fn sealed_log_verifies_from_a_later_file_with_k0() {
    let log = Log::new();
    let mut w = log.writer();
    let (k0, _) = w
        .start_sealing("log_initialized", BTreeMap::new())
        .expect("seal");
    for i in 0..5 {
        w.append("command_run", command_event(i)).expect("append");
    }
    let rot = w.rotate().expect("rotate");
    w.append("command_run", command_event(9)).expect("append");
    drop(w);
    let run = |files: Vec<PathBuf>| {
        occ_audit::verify_files(
            &files,
            VerifyOptions {
                key: Some(k0.clone()),
                ..VerifyOptions::default()
            },
            &mut |_| {},
        )
        .expect("verify")
    };
    assert!(run(vec![rot.archive.clone(), log.path.clone()]).intact());
    assert!(run(vec![log.path.clone()]).intact());
}

#[test]
fn behind_head_checkpoint() {
    let log = Log::new();
    log.fill(4);
    let lines = crate::util::lines(&log.path);
    std::fs::write(&log.path, lines[..3].concat()).expect("cut");
    let r = log.verify();
    assert_eq!(reasons(&r), ["behind_head_checkpoint"]);
    assert_eq!((r.breaks[0].line, r.breaks[0].seq), (3, Some(2)));

    // A head naming the right seq with another hash is also a break.
    let mut h = Head::read(&log.head_path()).expect("read").expect("head");
    h.seq = 2;
    h.chain_hash = "0".repeat(64);
    h.write(&log.head_path()).expect("write head");
    assert_eq!(reasons(&log.verify()), ["behind_head_checkpoint"]);
}

#[test]
fn stale_head_behind_the_log_is_fine() {
    // Group commit writes the head after the records; a head naming an earlier record is ok.
    let log = Log::new();
    log.fill(2);
    let h = Head::read(&log.head_path()).expect("read").expect("head");
    log.fill(0);
    let mut w = log.writer();
    w.append("command_run", command_event(5)).expect("append");
    drop(w);
    h.write(&log.head_path()).expect("restore old head");
    assert!(log.verify().intact());
}

#[test]
fn rotation_link_mismatch() {
    let log = Log::new();
    log.fill(3);
    let rot = log.writer().rotate().expect("rotate");
    log.fill(2);
    let ok = verify_with_head(&[rot.archive.clone(), log.path.clone()], None);
    assert!(ok.intact(), "{:?}", ok.breaks);
    // Seq continues across files.
    assert_eq!(rot.genesis.seq, 3);

    // Another log's archive in front of this file does not link.
    let other = Log::new();
    other.fill(3);
    let r = verify_with_head(&[other.path.clone(), log.path.clone()], None);
    assert_eq!(reasons(&r), ["rotation_link_mismatch"]);
    assert_eq!(r.breaks[0].line, 1);

    // Dropping an archived record from the end of the old file breaks the link too.
    let lines = crate::util::lines(&rot.archive);
    std::fs::write(&rot.archive, lines[..2].concat()).expect("cut");
    let r = verify_with_head(&[rot.archive.clone(), log.path.clone()], None);
    assert_eq!(reasons(&r), ["rotation_link_mismatch", "seq_gap"]);
}

#[test]
fn breaks_are_capped_but_counted() {
    let log = Log::new();
    std::fs::write(&log.path, "x\n".repeat(50)).expect("write");
    let r = occ_audit::verify_files(
        std::slice::from_ref(&log.path),
        VerifyOptions {
            max_breaks: 10,
            ..VerifyOptions::default()
        },
        &mut |_| {},
    )
    .expect("verify");
    assert_eq!(r.breaks.len(), 10);
    // Each garbage line is its own invalid_json; previous_event_unverifiable is only for a
    // readable record after one.
    assert_eq!(r.breaks_total, 50);
}

/// A file verified after an earlier-verified archive (`VerifyOptions::after`) must continue
/// that chain exactly as a rotation does: the right archive name, last seq and chain hash; any
/// other start is a break, never a quiet pass.
#[test]
fn the_current_file_alone_continues_the_chain_it_is_told_of() {
    let log = Log::new();
    log.fill(3);
    let rot = log.writer().rotate().expect("rotate");
    log.fill(2);
    let last: serde_json::Value =
        serde_json::from_slice(crate::util::lines(&rot.archive).last().unwrap()).unwrap();
    let hash: [u8; 64] = last["chain_hash"]
        .as_str()
        .unwrap()
        .as_bytes()
        .try_into()
        .unwrap();
    let name = rot
        .archive
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let after = |file: &str, seq: u64, chain_hash: [u8; 64]| {
        occ_audit::verify_files(
            std::slice::from_ref(&log.path),
            VerifyOptions {
                after: Some(occ_audit::After {
                    file: file.to_string(),
                    seq,
                    chain_hash,
                    sealed: false,
                }),
                ..VerifyOptions::default()
            },
            &mut |_| {},
        )
        .expect("readable")
    };
    let seq = last["seq"].as_u64().unwrap();
    let ok = after(&name, seq, hash);
    assert!(ok.intact(), "{:?}", ok.breaks);
    assert_eq!(ok.events, 3, "the rotation genesis and the two after it");
    // Told of another hash, another seq or another file: the first record does not link.
    let mut other = hash;
    other[0] = if other[0] == b'a' { b'b' } else { b'a' };
    assert_eq!(
        reasons(&after(&name, seq, other)),
        ["rotation_link_mismatch"]
    );
    assert_eq!(
        reasons(&after(&name, seq + 1, hash)),
        ["rotation_link_mismatch", "seq_gap"]
    );
    assert_eq!(
        reasons(&after("privileged-audit-other.jsonl", seq, hash)),
        ["rotation_link_mismatch"]
    );
}
