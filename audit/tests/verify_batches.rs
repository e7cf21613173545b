//! Logs many of the verifier's batches long (it reads 256 KiB at a time into 2 MiB buffers):
//! lines cut across batch ends, seals whose keys ratchet across them, and over-long lines at
//! every position give exactly the breaks each tampering gives alone, in file order. Lines are
//! forged and sealed here, independently of the writer.

use std::path::PathBuf;

use occ_audit::{Report, SealKey, Value, VerifyOptions, MAX_LINE};

use crate::util::{command_event, Log};

/// About 8 MiB of sealed records: dozens of batches, several buffers' worth.
const EVENTS: u64 = 16_000;

/// Batches end at the last newline before each multiple of this (one read each).
const MARK: usize = 256 << 10;

/// Chains and seals events the way DESIGN.md defines it: seal = HMAC(k_i, the event without
/// seal and chain_hash), chain_hash = SHA-256 of the event without chain_hash.
fn forge_sealed(n: u64, k0: &SealKey) -> Vec<Vec<u8>> {
    let mut key = k0.clone();
    let mut prev: Option<String> = None;
    (0..n)
        .map(|i| {
            let mut e = command_event(i);
            e.insert("seq".into(), Value::Int(i as i64));
            e.insert("timestamp".into(), Value::from("2026-01-01T00:00:00.000Z"));
            e.insert("event_type".into(), Value::from("command_run"));
            e.insert("prev_hash".into(), Value::from(prev.clone()));
            let seal = key.seal(&Value::Object(e.clone()).to_canonical());
            key = key.next();
            e.insert("seal".into(), Value::from(seal));
            let h = occ_audit::sha256_hex(&Value::Object(e.clone()).to_canonical());
            e.insert("chain_hash".into(), Value::from(h.clone()));
            prev = Some(h);
            let mut line = Value::Object(e).to_canonical();
            line.push(b'\n');
            line
        })
        .collect()
}

fn k0() -> SealKey {
    SealKey::from_bytes([0x5a; 32])
}

/// Verifies `lines` as one file with `key`, checking that progress only grows and ends at the
/// file's length.
fn verify(log: &Log, lines: &[Vec<u8>], key: Option<SealKey>) -> Report {
    let bytes = lines.concat();
    std::fs::write(&log.path, &bytes).expect("write");
    let mut seen = Vec::new();
    let r = occ_audit::verify_files(
        std::slice::from_ref(&log.path),
        VerifyOptions {
            key,
            ..VerifyOptions::default()
        },
        &mut |n| seen.push(n),
    )
    .expect("verify");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&(bytes.len() as u64)));
    r
}

fn breaks(r: &Report) -> Vec<(&'static str, u64, Option<u64>)> {
    r.breaks
        .iter()
        .map(|b| (b.reason.as_str(), b.line, b.seq))
        .collect()
}

fn first_diff<T: PartialEq + Clone>(a: &[T], b: &[T]) -> (usize, usize, Option<(T, T)>) {
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    (a.len(), b.len(), at.map(|i| (a[i].clone(), b[i].clone())))
}

/// The index of the line holding byte `at`.
fn line_at(lines: &[Vec<u8>], at: usize) -> usize {
    let mut end = 0;
    lines
        .iter()
        .position(|l| {
            end += l.len();
            end > at
        })
        .expect("offset inside the log")
}

#[test]
fn sealed_log_many_batches_long_verifies_with_k0_and_fails_with_another_key() {
    let log = Log::new();
    let lines = forge_sealed(EVENTS, &k0());
    assert!(
        lines.concat().len() > 4 * (2 << 20),
        "spans several batches"
    );
    let r = verify(&log, &lines, Some(k0()));
    assert!(r.intact(), "{:?}", &r.breaks[..r.breaks.len().min(3)]);
    assert_eq!((r.events, r.sealed), (EVENTS, true));
    let wrong = verify(&log, &lines, Some(SealKey::from_bytes([1; 32])));
    assert_eq!(wrong.breaks_total, EVENTS);
    // Every record, in order (the report keeps the first 10,000).
    let want: Vec<_> = (0..10_000)
        .map(|i| ("seal_mismatch", i + 1, Some(i)))
        .collect();
    let got = breaks(&wrong);
    assert!(
        got == want,
        "first differences: {:?}",
        first_diff(&got, &want)
    );
}

#[test]
fn tampering_at_every_buffer_end_breaks_exactly_there_in_order() {
    let log = Log::new();
    let mut lines = forge_sealed(EVENTS, &k0());
    let len = lines.concat().len();
    // The line across each batch end, and the first and the last line.
    let mut targets: Vec<usize> = (1..=len / MARK)
        .map(|m| line_at(&lines, m * MARK))
        .collect();
    targets.extend([0, lines.len() - 1]);
    targets.sort_unstable();
    targets.dedup();
    assert!(targets.len() >= 30, "{targets:?}");
    for &t in &targets {
        let at = lines[t]
            .windows(7)
            .position(|w| w == b"\"agent\"")
            .expect("submituser");
        lines[t][at + 1] = b'A';
    }
    let r = verify(&log, &lines, Some(k0()));
    let want: Vec<_> = targets
        .iter()
        .flat_map(|&t| {
            let (line, seq) = (t as u64 + 1, Some(t as u64));
            [
                ("content_hash_mismatch", line, seq),
                ("seal_mismatch", line, seq),
            ]
        })
        .collect();
    assert_eq!(breaks(&r), want);
}

#[test]
fn a_wrong_prev_hash_is_caught_on_every_line_around_every_buffer_end() {
    let log = Log::new();
    let mut lines = forge_sealed(EVENTS, &k0());
    let len = lines.concat().len();
    // Every line within 12 of each batch end, so both the links a worker checks and the first
    // link of each batch are covered, even if batches end a few lines off the mark.
    let mut targets: Vec<usize> = (1..=len / MARK)
        .flat_map(|b| {
            let t = line_at(&lines, b * MARK);
            t - 12..=t + 12
        })
        .collect();
    targets.dedup();
    for &t in &targets {
        let at = lines[t]
            .windows(14)
            .position(|w| w == b"\"prev_hash\": \"")
            .expect("prev_hash")
            + 14;
        lines[t][at] = if lines[t][at] == b'0' { b'1' } else { b'0' };
    }
    let r = verify(&log, &lines, Some(k0()));
    let want: Vec<_> = targets
        .iter()
        .flat_map(|&t| {
            let (line, seq) = (t as u64 + 1, Some(t as u64));
            [
                ("content_hash_mismatch", line, seq),
                ("prev_hash_link_mismatch", line, seq),
                ("seal_mismatch", line, seq),
            ]
        })
        .collect();
    let got = breaks(&r);
    assert!(
        got == want,
        "first differences: {:?}",
        first_diff(&got, &want)
    );
}

#[test]
fn over_long_lines_are_skipped_wherever_they_fall_and_the_chain_goes_on() {
    let log = Log::new();
    let mut lines = forge_sealed(EVENTS, &k0());
    // Put before these records (highest first, so indices hold): a line of exactly MAX_LINE
    // bytes is parsed (and is not JSON); longer ones are skipped unread, whether they fit in
    // one buffer or are longer than any.
    let junk: [(usize, usize); 5] = [
        (14_000, 3 * MAX_LINE + 7),
        (9_001, MAX_LINE + 1),
        (5_000, MAX_LINE),
        (4_999, MAX_LINE + 1),
        (100, MAX_LINE + 1),
    ];
    for (after, n) in junk {
        let mut l = vec![b'x'; n];
        l.push(b'\n');
        lines.insert(after, l);
    }
    let mut torn = vec![b'y'; 2 * MAX_LINE];
    torn.splice(..0, b"{\"seq\": ".iter().copied());
    lines.push(torn.clone());
    let r = verify(&log, &lines, Some(k0()));
    assert_eq!(r.events, EVENTS + 5);

    // Each junk line, then the record it was put before, whose link cannot be checked.
    let mut want = Vec::new();
    for (k, (after, n)) in junk.iter().rev().enumerate() {
        let line = (after + k + 1) as u64;
        want.push(("invalid_json", line, None, *n));
        want.push((
            "previous_event_unverifiable",
            line + 1,
            Some(*after as u64),
            0,
        ));
    }
    let last = EVENTS + 5 + 1;
    want.push(("torn_tail", last, None, torn.len()));
    let got: Vec<_> = r
        .breaks
        .iter()
        .map(|b| (b.reason.as_str(), b.line, b.seq, b.detail.clone()))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((g.0, g.1, g.2), (w.0, w.1, w.2), "{g:?}");
        match (w.0, w.3) {
            ("invalid_json", n) if n > MAX_LINE => assert!(
                g.3.starts_with(&format!("line is {n} bytes, over the")),
                "{g:?}"
            ),
            ("invalid_json", _) => assert!(!g.3.contains("over the"), "{g:?}"),
            ("torn_tail", n) => assert!(g.3.contains(&format!("with {n} bytes")), "{g:?}"),
            _ => {}
        }
    }
}

#[test]
fn a_multi_file_chain_of_many_batches_names_breaks_per_file() {
    let log = Log::new();
    let lines = forge_sealed(EVENTS, &k0());
    // The same sealed run split in two files by hand is not a rotation (no log_rotated
    // genesis), so the second file's first record breaks its genesis rule and nothing else:
    // the seal ratchet and seq carry on across the file boundary.
    let cut = 7_777usize;
    let first = log.path.with_file_name("first.jsonl");
    std::fs::write(&first, lines[..cut].concat()).expect("write");
    std::fs::write(&log.path, lines[cut..].concat()).expect("write");
    let files: Vec<PathBuf> = vec![first.clone(), log.path.clone()];
    let r = occ_audit::verify_files(
        &files,
        VerifyOptions {
            key: Some(k0()),
            ..VerifyOptions::default()
        },
        &mut |_| {},
    )
    .expect("verify");
    assert_eq!(r.events, EVENTS);
    let got: Vec<_> = r
        .breaks
        .iter()
        .map(|b| (b.file.clone(), b.reason.as_str(), b.line, b.seq))
        .collect();
    let seq = Some(cut as u64);
    assert_eq!(
        got,
        [
            (log.path.clone(), "genesis_prev_hash_not_null", 1, seq),
            (log.path.clone(), "rotation_link_mismatch", 1, seq),
        ]
    );
}
