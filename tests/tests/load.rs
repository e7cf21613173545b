//! Load: 64 concurrent agent clients × 50 granted runs through the real shim, broker and real
//! sudo, while other clients of the same uid send garbage, oversized and half-sent frames.
//! Every granted run must succeed and the audit chain must stay intact and contiguous.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::approval::{pending_id, ready, text, AgentHome};

const CLIENTS: usize = 64;
const RUNS: usize = 50;

/// A python3 client, run as the agent user, that misbehaves on the broker's socket in every
/// way the wire format forbids, `rounds` times.
const GARBAGE: &str = r#"
import os, socket, struct, sys, time
sock, rounds = sys.argv[1], int(sys.argv[2])
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    return s
# One stuck client first: half a frame, then silence. It must not hold up anyone else.
stuck = conn()
stuck.sendall(bytes([0xCC, 1, 1, 0]) + struct.pack(">I", 100) + b"stuck")
for i in range(rounds):
    kind = i % 4
    try:
        s = conn()
        if kind == 0:
            s.sendall(os.urandom(64))                                        # garbage
        elif kind == 1:
            s.sendall(bytes([0xCC, 1, 1, 0]) + struct.pack(">I", 2 << 20))  # oversized
        elif kind == 2:
            s.sendall(bytes([0xCC, 1, 1, 0]) + struct.pack(">I", 100) + b"half")  # half-sent
            s.close()
            continue
        else:
            s.sendall(bytes([0xCC, 9]))                                      # bad version
        s.settimeout(10)
        try:
            s.recv(4096)
        except Exception:
            pass
        s.close()
    except OSError as e:
        print("connect failed:", e, file=sys.stderr)
        sys.exit(1)
stuck.close()
"#;

#[test]
fn sixty_four_clients_times_fifty_granted_runs_with_garbage_alongside() {
    let Some(ids) = ready() else { return };
    if !std::path::Path::new("/usr/bin/python3").is_file() {
        occ_tests::skip("needs /usr/bin/python3 for the misbehaving clients");
        return;
    }
    let h = Arc::new(AgentHome::new(ids));
    // Room for 64 clients of one uid: each may briefly have two connections open, the next
    // request's and the previous one's, which the broker holds until it has recorded how that
    // run ended. (The default, 64, is exactly the client count; the caps have tests of their
    // own in never_hangs.rs.)
    h.write_security(
        "broker.json",
        r#"{"limits": {"connections_per_uid": 160, "admin_connections_per_uid": 16}}"#,
    );
    let sid = [("OPENCLAW_TASK_SESSION_ID", "load")];
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &sid));
    assert!(h
        .occ(&["approve", "--yes", &id, "--session"])
        .status
        .success());

    let script = h.home.join("garbage.py");
    std::fs::write(&script, GARBAGE).unwrap();
    let sock = h.home.join("run/broker.sock");
    let mut garbage = Vec::new();
    for _ in 0..4 {
        let mut c = h.cmd(std::path::Path::new("/usr/bin/python3"));
        c.arg(&script)
            .arg(&sock)
            .arg("80")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        garbage.push(c.spawn().unwrap());
    }

    let failures = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let h = Arc::clone(&h);
            let failures = Arc::clone(&failures);
            std::thread::spawn(move || {
                for _ in 0..RUNS {
                    let out = h.sudo(&["-n", "/usr/bin/true"], &sid);
                    if out.status.code() != Some(0) && failures.fetch_add(1, Ordering::SeqCst) < 3 {
                        eprintln!("run failed: {}", text(&out.stderr));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for g in garbage {
        let out = g.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "garbage client: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "every granted run succeeds"
    );

    h.stop_broker();
    let ev = h.events();
    let finished = ev
        .iter()
        .filter(|e| e["event_type"] == "exec_finish" && e["exit_value"] == 0)
        .count();
    assert_eq!(finished, CLIENTS * RUNS);
    let protocol_errors = ev
        .iter()
        .filter(|e| e["event_type"] == "protocol_error")
        .count();
    assert!(
        protocol_errors >= 200,
        "misbehaving clients recorded: {protocol_errors}"
    );
    let seqs: Vec<u64> = ev.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "seq contiguous");
    let out = Command::new(occ_tests::bin("occ"))
        .args(["audit", "verify", "--json", "--log"])
        .arg(h.home.join("security/privileged-audit.jsonl"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["intact"], true, "{}", text(&out.stdout));
}
