//! Test helper for the system-mode tests, run as the agent user: what an agent can do to the
//! broker's sockets with nothing but its own uid.
//!
//! - `hold SOCKET N WAIT_MS`: opens N connections, sends nothing, and reads what each gets back
//!   within WAIT_MS. Prints one JSON line (`connected`, `connect_errors`, `busy`: refused with
//!   `broker_busy`, `held`: no answer, still open, `other`), then keeps every connection open
//!   until its stdin closes.
//! - `bind PATH`: tries to bind a listening socket at PATH; prints `bound` (exit 0) or the
//!   error (exit 1).
//! - `file SOCKET N ARGS TAG`: files N distinct requests, one connection each, as the sudo
//!   shim would send `sudo -n /usr/bin/true TAG-I` followed by ARGS more arguments, without
//!   stdio (much faster than N shims). Prints one JSON line: `pending` (answered `Pending`),
//!   `unique` (distinct ids) and `other` (the first other answer, if any).
//! - `admin SOCKET JSON`: sends one admin request as it is, without `occ`'s own checks, and
//!   prints `{"ok": …, "reply": …}` from the (possibly multi-part) answer.
#![forbid(unsafe_code)]

use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["hold", socket, n, wait_ms] => hold(socket, parse(n), parse(wait_ms)),
        ["bind", path] => bind(path),
        ["file", socket, n, args, tag] => file(socket, parse(n), parse(args), tag),
        ["admin", socket, body] => admin(socket, body),
        _ => {
            eprintln!(
                "usage: occ-sock-probe hold SOCKET N WAIT_MS | bind PATH | file SOCKET N ARGS TAG | admin SOCKET JSON"
            );
            2
        }
    };
    std::process::exit(code);
}

fn parse(n: &str) -> u64 {
    n.parse()
        .unwrap_or_else(|_| panic!("{n:?} is not a number"))
}

/// What one connection got back.
enum Got {
    Busy,
    Held,
    Other,
}

fn hold(socket: &str, n: u64, wait_ms: u64) -> i32 {
    let mut conns = Vec::new();
    let mut connect_errors = 0;
    for _ in 0..n {
        match UnixStream::connect(socket) {
            Ok(s) => conns.push(s),
            Err(_) => connect_errors += 1,
        }
    }
    // Each connection is read on its own thread, so every one gets the whole wait at once.
    let readers: Vec<_> = conns
        .iter()
        .map(|c| {
            let mut c = c.try_clone().expect("clone a connection");
            std::thread::spawn(move || {
                c.set_read_timeout(Some(Duration::from_millis(wait_ms)))
                    .expect("set a read timeout");
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let closed = loop {
                    match c.read(&mut buf) {
                        Ok(0) => break true,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                        Err(_) => break false,
                    }
                };
                let busy = got.windows(11).any(|w| w == b"broker_busy");
                match (busy, closed, got.is_empty()) {
                    (true, _, _) => Got::Busy,
                    (false, false, true) => Got::Held,
                    _ => Got::Other,
                }
            })
        })
        .collect();
    let (mut busy, mut held, mut other) = (0, 0, 0);
    for r in readers {
        match r.join().expect("a reader thread") {
            Got::Busy => busy += 1,
            Got::Held => held += 1,
            Got::Other => other += 1,
        }
    }
    println!(
        "{{\"connected\": {}, \"connect_errors\": {connect_errors}, \"busy\": {busy}, \"held\": {held}, \"other\": {other}}}",
        conns.len()
    );
    // Hold everything open until the test says it is done.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(conns);
    0
}

fn bind(path: &str) -> i32 {
    match UnixListener::bind(path) {
        Ok(_) => {
            println!("bound");
            0
        }
        Err(e) => {
            println!("{e}");
            1
        }
    }
}

fn file(socket: &str, n: u64, args: u64, tag: &str) -> i32 {
    use occ_proto::{read_frame, write_frame, Frame, Request};
    let cwd = std::env::current_dir()
        .map(|d| d.into_os_string().into_encoded_bytes())
        .unwrap_or_default();
    let (mut pending, mut ids, mut other) = (0u64, std::collections::HashSet::new(), None);
    for i in 0..n {
        let mut argv: Vec<Vec<u8>> = vec![
            b"-n".to_vec(),
            b"/usr/bin/true".to_vec(),
            format!("{tag}-{i}").into_bytes(),
        ];
        argv.extend((0..args).map(|a| format!("arg{a}").into_bytes()));
        let req = Request {
            argv,
            cwd: cwd.clone(),
            ..Request::default()
        };
        let answer = UnixStream::connect(socket)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                write_frame(&s, &Frame::Request(req), &[]).map_err(|e| e.to_string())?;
                read_frame(&s).map_err(|e| e.to_string())
            });
        match answer.map(|r| r.frame) {
            Ok(Frame::Pending { id, .. }) => {
                pending += 1;
                ids.insert(id);
            }
            got => {
                if other.is_none() {
                    other = Some(format!("{got:?}"));
                }
            }
        }
    }
    let other = serde_json::to_string(&other).unwrap_or_else(|_| "null".into());
    println!(
        "{{\"pending\": {pending}, \"unique\": {}, \"other\": {other}}}",
        ids.len()
    );
    0
}

fn admin(socket: &str, body: &str) -> i32 {
    use occ_proto::{read_frame, write_frame, Frame};
    let s = UnixStream::connect(socket).expect("connect to the broker");
    let admin = Frame::Admin {
        body: body.as_bytes().to_vec(),
    };
    write_frame(&s, &admin, &[]).expect("send the admin request");
    let mut whole = Vec::new();
    loop {
        match read_frame(&s).expect("an answer").frame {
            Frame::AdminReplyPart { body } => whole.extend(body),
            Frame::AdminReply { ok, body } => {
                whole.extend(body);
                println!(
                    "{{\"ok\": {ok}, \"reply\": {}}}",
                    String::from_utf8_lossy(&whole)
                );
                return 0;
            }
            other => {
                eprintln!("unexpected answer: {other:?}");
                return 1;
            }
        }
    }
}
