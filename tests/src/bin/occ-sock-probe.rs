//! Test helper for the system-mode tests, run as the agent user: what an agent can do to the
//! broker's sockets with nothing but its own uid.
//!
//! - `hold SOCKET N WAIT_MS`: opens N connections, sends nothing, and reads what each gets back
//!   within WAIT_MS. Prints one JSON line (`connected`, `connect_errors`, `busy`: refused with
//!   `broker_busy`, `held`: no answer, still open, `other`), then keeps every connection open
//!   until its stdin closes.
//! - `bind PATH`: tries to bind a listening socket at PATH; prints `bound` (exit 0) or the
//!   error (exit 1).
#![forbid(unsafe_code)]

use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["hold", socket, n, wait_ms] => hold(socket, parse(n), parse(wait_ms)),
        ["bind", path] => bind(path),
        _ => {
            eprintln!("usage: occ-sock-probe hold SOCKET N WAIT_MS | bind PATH");
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
