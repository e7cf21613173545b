//! Shared helpers: temporary logs, realistic events, and verifying with the head.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use occ_audit::{Head, Options, Report, Value, VerifyOptions, Writer};

pub fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A realistic command event (about 400-600 bytes on disk).
pub fn command_event(i: u64) -> BTreeMap<String, Value> {
    fields(&[
        ("submituser", Value::from("agent")),
        ("runuser", Value::from("root")),
        ("rungroup", Value::from("root")),
        ("command", Value::from("/usr/bin/systemctl")),
        (
            "runargv",
            Value::from(vec!["systemctl", "restart", "nginx.service"]),
        ),
        ("runcwd", Value::from("/home/agent/work")),
        ("occ_session_id", Value::from(format!("sess-{}", i % 7))),
        ("approval_id", Value::from(format!("a{:07}", i % 9_999_999))),
        ("decision", Value::from("allow")),
        ("peer_pid", Value::Int(1000 + (i % 30_000) as i64)),
        (
            "reason",
            Value::from("restart after config change \u{e9}\u{1F600}"),
        ),
    ])
}

pub struct Log {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Log {
    /// A fresh log in a temporary directory, on tmpfs (`/dev/shm`) when there is one: these
    /// tests are about locking, chaining and recovery, and disk fsync latency on a busy host
    /// would only make them slow. Real-disk behaviour is what the benchmarks measure.
    pub fn new() -> Log {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("tempdir");
        let path = dir.path().join("privileged-audit.jsonl");
        Log { dir, path }
    }

    pub fn head_path(&self) -> PathBuf {
        self.path.with_file_name("audit-head.json")
    }

    pub fn writer(&self) -> Writer {
        Writer::open(&self.path, Options::default()).expect("open writer")
    }

    /// Writes `n` command events.
    pub fn fill(&self, n: u64) {
        let mut w = self.writer();
        for i in 0..n {
            w.append("command_run", command_event(i)).expect("append");
        }
    }

    pub fn verify(&self) -> Report {
        verify_with_head(std::slice::from_ref(&self.path), Some(&self.head_path()))
    }
}

pub fn verify_with_head(files: &[PathBuf], head: Option<&Path>) -> Report {
    let head = head.and_then(|h| Head::read(h).expect("read head"));
    occ_audit::verify_files(
        files,
        VerifyOptions {
            head,
            ..VerifyOptions::default()
        },
        &mut |_| {},
    )
    .expect("verify runs")
}

pub fn reasons(r: &Report) -> Vec<&'static str> {
    r.breaks.iter().map(|b| b.reason.as_str()).collect()
}

pub fn lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).expect("read log");
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}
