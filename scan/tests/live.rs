//! Live sockets: listeners and connections opened by this test process and by child
//! processes (this same test binary, re-run as a helper), found with the right pid and exe.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use occ_scan::egress;
use occ_scan::files::load_egress_allowlist;
use occ_scan::resolve::Resolver;
use occ_scan::sockets::{
    self, CollectOptions, Collection, Family, MethodChoice, Protocol, Socket, SocketState,
};

use crate::support::skip;

fn collect(method: MethodChoice) -> Collection {
    sockets::collect(&CollectOptions {
        method,
        ..CollectOptions::default()
    })
    .unwrap()
}

fn own_exe() -> String {
    std::fs::read_link("/proc/self/exe")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The kernel's comm for an exe: its file name, cut to 15 bytes.
fn comm_of(exe: &str) -> String {
    let name = exe.rsplit('/').next().unwrap();
    name.chars().take(15).collect()
}

fn own_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap()
}

fn own_net_ns() -> u64 {
    let t = std::fs::read_link("/proc/self/ns/net").unwrap();
    let t = t.to_string_lossy();
    t.trim_start_matches("net:[")
        .trim_end_matches(']')
        .parse()
        .unwrap()
}

fn find(c: &Collection, proto: Protocol, local: SocketAddr, state: SocketState) -> &Socket {
    c.sockets
        .iter()
        .find(|s| {
            s.protocol == proto
                && s.address == local.ip()
                && s.port == local.port()
                && s.state == state
        })
        .unwrap_or_else(|| panic!("{proto} {local} {state} not found"))
}

fn loopback_v6() -> Option<TcpListener> {
    match TcpListener::bind("[::1]:0") {
        Ok(l) => Some(l),
        Err(e) => {
            skip(&format!("::1 is not available here ({e})"));
            None
        }
    }
}

/// Run as a child by the tests below (`OCC_SCAN_HELPER` set); a no-op otherwise. It opens
/// sockets, prints `OCC_HELPER key=value …`, and holds them until its stdin closes.
#[test]
fn helper_process() {
    let Ok(mode) = std::env::var("OCC_SCAN_HELPER") else {
        return;
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut keep_tcp = Vec::new();
    let mut keep_udp = Vec::new();
    let mut keep_conn = Vec::new();
    match mode.as_str() {
        "loopback" => {
            let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
            let u4 = UdpSocket::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l4.local_addr().unwrap()).unwrap();
            fields.push(("tcp4".into(), l4.local_addr().unwrap().port().to_string()));
            fields.push(("udp4".into(), u4.local_addr().unwrap().port().to_string()));
            fields.push(("client".into(), c.local_addr().unwrap().port().to_string()));
            if let Ok(l6) = TcpListener::bind("[::1]:0") {
                fields.push(("tcp6".into(), l6.local_addr().unwrap().port().to_string()));
                keep_tcp.push(l6);
            }
            keep_tcp.push(l4);
            keep_udp.push(u4);
            keep_conn.push(c);
        }
        // In a fresh network namespace loopback is down, so bind the wildcard.
        "any" => {
            let l = TcpListener::bind("0.0.0.0:0").unwrap();
            fields.push(("tcp4".into(), l.local_addr().unwrap().port().to_string()));
            keep_tcp.push(l);
        }
        "many" => {
            let n: usize = std::env::var("OCC_SCAN_HELPER_COUNT")
                .unwrap()
                .parse()
                .unwrap();
            let mut ports = Vec::with_capacity(n);
            for _ in 0..n {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                ports.push(l.local_addr().unwrap().port().to_string());
                keep_tcp.push(l);
            }
            fields.push(("ports".into(), ports.join(",")));
        }
        other => panic!("unknown helper mode {other}"),
    }
    let line: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nOCC_HELPER {}", line.join(" ")).unwrap();
    out.flush().unwrap();
    drop(out);
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

/// A running helper; killed on drop.
struct Helper {
    child: Child,
    fields: HashMap<String, String>,
}

impl Helper {
    /// Starts the helper, optionally through a wrapper argv (`unshare -n`, `sh -c …`).
    fn start(mode: &str, wrapper: &[&str], env: &[(&str, &str)]) -> Result<Helper, String> {
        let exe = std::env::current_exe().unwrap();
        let mut argv: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
        argv.push(exe.to_string_lossy().into_owned());
        argv.extend(
            [
                "--exact",
                "live::helper_process",
                "--nocapture",
                "--test-threads=1",
            ]
            .map(String::from),
        );
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env("OCC_SCAN_HELPER", mode)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| format!("{argv:?}: {e}"))?;
        let stdout = child.stdout.take().unwrap();
        // Read in a thread so a helper that never reports cannot hang the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                // libtest may print `test name ... ` on the same line first.
                if let Some((_, rest)) = l.split_once("OCC_HELPER ") {
                    let fields: HashMap<String, String> = rest
                        .split(' ')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    let _ = tx.send(fields);
                }
            }
        });
        let fields = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(f) => f,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(format!("helper {argv:?} did not report: {status}"));
            }
        };
        Ok(Helper { child, fields })
    }

    fn port(&self, key: &str) -> u16 {
        self.fields[key].parse().unwrap()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn finds_own_listeners_and_connections_on_v4_and_v6_with_pid_and_exe() {
    let Some(l6) = loopback_v6() else { return };
    let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let u4 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let u6 = UdpSocket::bind("[::1]:0").unwrap();
    let c4 = TcpStream::connect(l4.local_addr().unwrap()).unwrap();
    let (a4, _) = l4.accept().unwrap();
    let c6 = TcpStream::connect(l6.local_addr().unwrap()).unwrap();
    let (a6, _) = l6.accept().unwrap();

    let c = collect(MethodChoice::Proc);
    let (pid, exe, uid, ns) = (std::process::id(), own_exe(), own_uid(), own_net_ns());
    let cases = [
        (
            Protocol::Tcp,
            l4.local_addr().unwrap(),
            SocketState::Listen,
            Family::Ipv4,
        ),
        (
            Protocol::Tcp,
            l6.local_addr().unwrap(),
            SocketState::Listen,
            Family::Ipv6,
        ),
        (
            Protocol::Udp,
            u4.local_addr().unwrap(),
            SocketState::Unconn,
            Family::Ipv4,
        ),
        (
            Protocol::Udp,
            u6.local_addr().unwrap(),
            SocketState::Unconn,
            Family::Ipv6,
        ),
        (
            Protocol::Tcp,
            c4.local_addr().unwrap(),
            SocketState::Established,
            Family::Ipv4,
        ),
        (
            Protocol::Tcp,
            c6.local_addr().unwrap(),
            SocketState::Established,
            Family::Ipv6,
        ),
        (
            Protocol::Tcp,
            a4.local_addr().unwrap(),
            SocketState::Established,
            Family::Ipv4,
        ),
    ];
    for (proto, addr, state, family) in cases {
        let s = find(&c, proto, addr, state);
        assert_eq!(s.pid, Some(pid), "{proto} {addr}");
        assert_eq!(s.path.as_deref(), Some(exe.as_str()), "{proto} {addr}");
        assert_eq!(s.comm.as_deref(), Some(comm_of(&exe).as_str()));
        assert_eq!(s.uid, Some(uid));
        assert_eq!(s.socket_uid, Some(uid));
        assert_eq!(s.family, family);
        assert_eq!(s.net_namespace, Some(ns));
        assert!(s.cmdline.as_ref().is_some_and(|c| !c.is_empty()));
        assert!(s.fd.is_some());
    }
    let client = find(
        &c,
        Protocol::Tcp,
        c4.local_addr().unwrap(),
        SocketState::Established,
    );
    assert_eq!(
        (client.remote_address, client.remote_port),
        (
            l4.local_addr().unwrap().ip(),
            l4.local_addr().unwrap().port()
        )
    );

    // Our clients are loopback egress; the accepted sides are inbound and excluded.
    let d = egress::classify(&c);
    let has =
        |v: &[Socket], a: SocketAddr| v.iter().any(|s| s.address == a.ip() && s.port == a.port());
    assert!(has(&d.loopback, c4.local_addr().unwrap()));
    assert!(has(&d.loopback, c6.local_addr().unwrap()));
    assert!(
        has(&d.inbound, a4.local_addr().unwrap()) && !has(&d.loopback, a4.local_addr().unwrap())
    );
    assert!(has(&d.inbound, a6.local_addr().unwrap()));
    assert!(!has(&d.outbound, c4.local_addr().unwrap()));
}

#[test]
fn finds_a_child_process_sockets_with_its_pid_and_exe() {
    let h = Helper::start("loopback", &[], &[]).unwrap();
    let c = collect(MethodChoice::Proc);
    let exe = own_exe();
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let checks = [
        (
            Protocol::Tcp,
            SocketAddr::new(lo, h.port("tcp4")),
            SocketState::Listen,
        ),
        (
            Protocol::Udp,
            SocketAddr::new(lo, h.port("udp4")),
            SocketState::Unconn,
        ),
        (
            Protocol::Tcp,
            SocketAddr::new(lo, h.port("client")),
            SocketState::Established,
        ),
    ];
    for (proto, addr, state) in checks {
        let s = find(&c, proto, addr, state);
        assert_eq!(s.pid, Some(h.pid()), "{proto} {addr}");
        assert_eq!(s.path.as_deref(), Some(exe.as_str()));
    }
    if h.fields.contains_key("tcp6") {
        let s = find(
            &c,
            Protocol::Tcp,
            SocketAddr::new("::1".parse().unwrap(), h.port("tcp6")),
            SocketState::Listen,
        );
        assert_eq!(s.pid, Some(h.pid()));
    }
}

#[test]
fn finds_all_2000_listeners_of_a_child() {
    const N: usize = 2000;
    // Raise the soft fd limit for the child only; the hard limit must allow it.
    let h = Helper::start(
        "many",
        &["sh", "-c", "ulimit -n 4096 2>/dev/null; exec \"$@\"", "sh"],
        &[("OCC_SCAN_HELPER_COUNT", "2000")],
    )
    .unwrap();
    let want: Vec<u16> = h.fields["ports"]
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(want.len(), N);
    let t = Instant::now();
    let c = collect(MethodChoice::Proc);
    let took = t.elapsed();
    let found: std::collections::HashSet<u16> = c
        .sockets
        .iter()
        .filter(|s| s.pid == Some(h.pid()) && s.state == SocketState::Listen)
        .map(|s| s.port)
        .collect();
    let missing: Vec<_> = want.iter().filter(|p| !found.contains(p)).collect();
    assert!(
        missing.is_empty(),
        "{} of {N} listeners not found, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!("collected {} sockets in {took:?}", c.sockets.len());
}

/// A non-loopback address of this host and a UDP socket connected from it: to a TEST-NET
/// address when there is a route (a UDP connect sends nothing), else to one of the host's own
/// addresses listed in the kernel's FIB.
fn non_loopback_ip() -> Option<(IpAddr, UdpSocket, SocketAddr)> {
    let usable = |ip: IpAddr| !ip.is_loopback() && !ip.is_unspecified();
    let u = UdpSocket::bind("0.0.0.0:0").ok()?;
    let peer: SocketAddr = "192.0.2.1:9".parse().ok()?;
    if u.connect(peer).is_ok() {
        let ip = u.local_addr().ok()?.ip();
        if usable(ip) {
            return Some((ip, u, peer));
        }
    }
    let fib = std::fs::read_to_string("/proc/net/fib_trie").ok()?;
    let mut last = None;
    for line in fib.lines() {
        let t = line.trim_start_matches([' ', '|', '-', '+']).trim();
        if let Ok(ip) = t.parse::<std::net::Ipv4Addr>() {
            last = Some(IpAddr::V4(ip));
        } else if line.contains("/32 host LOCAL") {
            if let Some(ip) = last.filter(|ip| usable(*ip)) {
                let u = UdpSocket::bind("0.0.0.0:0").ok()?;
                let peer = SocketAddr::new(ip, 9);
                u.connect(peer).ok()?;
                return Some((ip, u, peer));
            }
        }
    }
    None
}

#[test]
fn egress_to_a_non_loopback_address_is_judged_against_the_allowlist() {
    let Some((ip, udp, peer)) = non_loopback_ip() else {
        skip("no non-loopback IPv4 address on this host");
        return;
    };
    let l = TcpListener::bind((ip, 0)).unwrap();
    let conn = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (accepted, _) = l.accept().unwrap();
    let lport = l.local_addr().unwrap().port();
    let (pid, exe) = (std::process::id(), own_exe());
    let c = collect(MethodChoice::Proc);

    let d = egress::classify(&c);
    let ours = |v: &[Socket], port: u16| v.iter().any(|s| s.pid == Some(pid) && s.port == port);
    assert!(
        ours(&d.outbound, conn.local_addr().unwrap().port()),
        "client side is egress"
    );
    assert!(
        ours(&d.outbound, udp.local_addr().unwrap().port()),
        "connected UDP is egress"
    );
    assert!(
        ours(&d.inbound, accepted.local_addr().unwrap().port()),
        "accepted side is inbound"
    );

    let dir = tempfile::tempdir().unwrap();
    let allow = dir.path().join("egress_allowlist.json");
    let judge = |rules: &str| {
        std::fs::write(&allow, rules).unwrap();
        let rules = load_egress_allowlist(&allow).unwrap();
        let r = egress::evaluate(&c, &rules, &mut Resolver::disabled());
        let mut mine: Vec<(String, u16)> = r
            .findings
            .iter()
            .filter(|f| f.pid == Some(pid))
            .map(|f| (f.protocol.to_string(), f.remote_port))
            .collect();
        mine.sort();
        for f in r.findings.iter().filter(|f| f.pid == Some(pid)) {
            assert_eq!(f.exe.as_deref(), Some(exe.as_str()));
        }
        mine
    };
    assert_eq!(
        judge("[]"),
        [("tcp".to_owned(), lport), ("udp".to_owned(), 9)]
    );
    let exact = format!(
        r#"[{{"cidr": "{ip}/32", "port": {lport}, "exe": "{exe}"}},
            {{"protocol": "udp", "port": 9, "host": "{peer_ip}"}}]"#,
        peer_ip = peer.ip()
    );
    assert_eq!(judge(&exact), []);
    let wrong_exe = format!(r#"[{{"cidr": "{ip}/32", "port": {lport}, "exe": "/usr/bin/curl"}}]"#);
    assert_eq!(
        judge(&wrong_exe),
        [("tcp".to_owned(), lport), ("udp".to_owned(), 9)]
    );
    let wrong_port = format!(r#"[{{"cidr": "{ip}/32", "port": 1, "protocol": "udp"}}]"#);
    assert_eq!(judge(&wrong_port).len(), 2);
}

#[test]
fn a_second_network_namespace_is_scanned_needs_root() {
    if !occ_scan::sockets::running_as_root() {
        skip("needs root (unshare -n)");
        return;
    }
    let h = match Helper::start("any", &["unshare", "-n"], &[]) {
        Ok(h) => h,
        Err(e) => {
            skip(&format!("cannot create a network namespace: {e}"));
            return;
        }
    };
    let c = collect(MethodChoice::Proc);
    let s = c
        .sockets
        .iter()
        .find(|s| {
            s.pid == Some(h.pid()) && s.state == SocketState::Listen && s.port == h.port("tcp4")
        })
        .expect("the listener inside the new namespace is found");
    let ns = s.net_namespace.unwrap();
    assert_ne!(ns, own_net_ns());
    let info = c
        .visibility
        .namespaces
        .iter()
        .find(|n| n.inode == Some(ns))
        .unwrap();
    assert!(info.readable);
    assert_eq!(info.representative_pid, Some(h.pid()));
    assert_eq!(s.path.as_deref(), Some(own_exe().as_str()));
}

#[test]
fn lsof_method_matches_proc_on_live_sockets() {
    if occ_scan::exec::find_program("lsof").is_none() {
        skip("lsof is not installed (apt-get install lsof)");
        return;
    }
    let Some(l6) = loopback_v6() else { return };
    let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let u4 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c4 = TcpStream::connect(l4.local_addr().unwrap()).unwrap();
    let proc = collect(MethodChoice::Proc);
    let lsof = collect(MethodChoice::Lsof);
    assert_eq!(lsof.method, sockets::Method::Lsof);
    let cases = [
        (Protocol::Tcp, l4.local_addr().unwrap(), SocketState::Listen),
        (Protocol::Tcp, l6.local_addr().unwrap(), SocketState::Listen),
        (Protocol::Udp, u4.local_addr().unwrap(), SocketState::Unconn),
        (
            Protocol::Tcp,
            c4.local_addr().unwrap(),
            SocketState::Established,
        ),
    ];
    for (proto, addr, state) in cases {
        let a = find(&proc, proto, addr, state);
        let b = find(&lsof, proto, addr, state);
        let key = |s: &Socket| {
            (
                (
                    s.address,
                    s.port,
                    s.protocol,
                    s.family,
                    s.state,
                    s.remote_address,
                    s.remote_port,
                ),
                (s.pid, s.comm.clone(), s.path.clone(), s.uid, s.socket, s.fd),
            )
        };
        assert_eq!(key(a), key(b), "{proto} {addr}");
    }
}
