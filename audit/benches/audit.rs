//! occ-audit benchmarks: append throughput (fsync always vs batch) and verify throughput on a
//! generated log of 1,000,000 realistic 400–600-byte events. The log is kept in
//! `target/occ-audit-bench/` so `benches/rss.sh` can measure `occ audit verify`'s peak RSS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use occ_audit::{Fsync, Options, Value, VerifyOptions, Writer};

const EVENTS: u64 = 1_000_000;

const WHY: &str = "restart nginx after the agent edited /etc/nginx/sites-enabled/site.conf to add \
                   the new upstream; the change was reviewed in the chat and the approver asked \
                   for a reload first, which did not pick up the listener change, so restart";

/// A realistic privileged-command event: about 400 to 600 bytes once the writer adds seq,
/// timestamp, event_type, prev_hash and chain_hash.
fn event(i: u64) -> BTreeMap<String, Value> {
    let mut f = BTreeMap::new();
    let why_len = ((i * 7919) % 190) as usize;
    f.insert("submituser".into(), Value::from("agent"));
    f.insert("command".into(), Value::from("/usr/bin/systemctl"));
    f.insert(
        "runargv".into(),
        Value::from(vec![
            "systemctl".to_owned(),
            "restart".to_owned(),
            format!("svc-{}.service", i % 97),
        ]),
    );
    f.insert("runcwd".into(), Value::from("/srv/site"));
    f.insert(
        "occ_session_id".into(),
        Value::from(format!("{:08x}", i / 50)),
    );
    f.insert("reason".into(), Value::from(&WHY[..why_len]));
    f
}

fn bench_dir() -> PathBuf {
    // target/<profile>/deps/<bench exe> -> target/occ-audit-bench
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    target.join("occ-audit-bench")
}

/// The 1M-event log, generated once (through the real writer, group commit).
fn million_event_log() -> PathBuf {
    let dir = bench_dir();
    let path = dir.join("privileged-audit.jsonl");
    let done = dir.join("complete");
    if done.exists() && path.exists() {
        return path;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut w = Writer::open(
        &path,
        Options {
            fsync: Fsync::Batch {
                max_records: 100_000,
                max_delay: Duration::from_secs(3600),
            },
            ..Options::default()
        },
    )
    .expect("open bench log");
    for i in 0..EVENTS {
        w.append("command_run", event(i)).expect("append");
    }
    w.sync().expect("sync");
    std::fs::write(&done, b"").expect("mark complete");
    path
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(1));
    for (name, fsync) in [("always", Fsync::Always), ("batch", Fsync::batch())] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Writer::open(
            dir.path().join("privileged-audit.jsonl"),
            Options {
                fsync,
                ..Options::default()
            },
        )
        .expect("open");
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                w.append("command_run", event(i)).expect("append")
            })
        });
    }
    g.finish();
}

fn verify(c: &mut Criterion) {
    let path = million_event_log();
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "verify log: {} ({} events, {} bytes, {} bytes/event)",
        path.display(),
        EVENTS,
        bytes,
        bytes / EVENTS
    );
    let mut g = c.benchmark_group("verify");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(EVENTS));
    g.bench_function("1m_events", |b| {
        b.iter(|| {
            let r = occ_audit::verify_files(
                std::slice::from_ref(&path),
                VerifyOptions::default(),
                &mut |_| {},
            )
            .expect("verify");
            assert!(r.intact() && r.events == EVENTS);
            r
        })
    });
    g.finish();
}

criterion_group!(benches, append, verify);
criterion_main!(benches);
