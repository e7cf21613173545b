//! Writes a benchmark log through the real writer (group commit): N realistic 400–600-byte
//! `command_run` events, the same shape as `benches/audit.rs` uses.
//! Usage: `cargo run --release -p occ-audit --example bench_log -- N PATH [K0_HEX]`; with a
//! key every event is sealed from k_0.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use occ_audit::{Fsync, Options, Value, Writer};

const WHY: &str = "restart nginx after the agent edited /etc/nginx/sites-enabled/site.conf to add \
                   the new upstream; the change was reviewed in the chat and the approver asked \
                   for a reload first, which did not pick up the listener change, so restart";

/// About 400 to 600 bytes once the writer adds seq, timestamp, event_type, prev_hash and
/// chain_hash.
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(n), Some(path)) = (
        args.first().and_then(|n| n.parse::<u64>().ok()),
        args.get(1).map(PathBuf::from),
    ) else {
        eprintln!("usage: bench_log N PATH [K0_HEX] (PATH must not exist yet)");
        return ExitCode::from(2);
    };
    let key = match args
        .get(2)
        .map(|h| occ_audit::SealKey::from_hex(h))
        .transpose()
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("bench_log: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = Options {
        fsync: Fsync::Batch {
            max_records: 100_000,
            max_delay: Duration::from_secs(3600),
        },
        ..Options::default()
    };
    if let Some(k) = &key {
        // Sealing is on exactly when the key file beside the log exists.
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        if let Err(e) = k.write_file(&dir.join("audit-seal.key")) {
            eprintln!("bench_log: {e}");
            return ExitCode::FAILURE;
        }
    }
    let run = || -> occ_audit::Result<()> {
        let mut w = Writer::open(&path, opts)?;
        for i in 0..n {
            w.append("command_run", event(i))?;
        }
        w.sync()
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_log: {e}");
            ExitCode::FAILURE
        }
    }
}
