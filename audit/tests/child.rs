//! Child-process entry points. The parent runs this test binary again with
//! `--exact child::entry` and `OCC_AUDIT_CHILD=<role>`; in a normal run the entry does nothing.

use std::process::{Command, Stdio};

use occ_audit::{Fsync, Options, Writer};

use crate::util::command_event;

pub const VAR: &str = "OCC_AUDIT_CHILD";

/// A command that runs this binary as a child in `role`.
pub fn command(role: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut c = Command::new(exe);
    c.args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
        .env(VAR, role)
        .stdin(Stdio::null());
    c
}

fn crash_hook() {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "HALF-WRITTEN");
    let _ = out.flush();
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn entry() {
    let Ok(role) = std::env::var(VAR) else {
        return;
    };
    let parts: Vec<&str> = role.splitn(4, ':').collect();
    match parts.as_slice() {
        // append:<n>:<always|batch>:<log path>
        ["append", n, mode, path] => {
            let n: u64 = n.parse().expect("count");
            let fsync = if *mode == "batch" {
                Fsync::batch()
            } else {
                Fsync::Always
            };
            let mut w = Writer::open(
                path,
                Options {
                    fsync,
                    ..Options::default()
                },
            )
            .expect("open");
            let pid = i64::from(std::process::id());
            for i in 0..n {
                let mut f = command_event(i);
                f.insert("child_pid".into(), pid.into());
                w.append("command_run", f).expect("append");
            }
            w.sync().expect("sync");
        }
        // crash:<log path> — write one record in two parts and hang in between.
        ["crash", path] => {
            let mut w = Writer::open(
                path,
                Options {
                    crash_hook: Some(crash_hook),
                    ..Options::default()
                },
            )
            .expect("open");
            let _ = w.append("command_run", command_event(0));
            panic!("the parent should have killed this child");
        }
        // fill:<log path> — append until the disk is full; the first error must be a failed
        // write, and everything before it must verify intact.
        ["fill", path] => crate::bad_input::fill_until_full(path),
        other => panic!("unknown child role {other:?}"),
    }
}
