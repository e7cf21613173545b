//! Captured /proc tables (IPv4, IPv6, UDP, several TCP states, a second network namespace)
//! parsed through a fake proc tree into the known sockets, and judged by ports and egress.

use std::net::IpAddr;
use std::path::Path;

use occ_scan::egress;
use occ_scan::files::{load_approved_ports, load_egress_allowlist};
use occ_scan::ports;
use occ_scan::resolve::Resolver;
use occ_scan::sockets::{self, Collection, Family, Protocol, Socket, SocketState};

use crate::support::{FakeProc, FakeProcess};

const HOST_NS: u64 = 4026531840;
const CONTAINER_NS: u64 = 4026532500;

/// The captured host: sshd (two pids sharing a listener), a node gateway with outbound
/// connections, apache on :80, resolver and DHCP UDP sockets, a hidden TFTP owner, and a
/// container namespace with nginx and mysqld.
fn captured_host() -> FakeProc {
    let p = FakeProc::new();
    p.tables("net", "host");
    // Pid 900 is the container's first process but its net dir is gone; 901 must be used.
    p.tables("901/net", "container");
    p.self_is(100);
    let procs = [
        FakeProcess {
            pid: 1,
            net_ns: HOST_NS,
            comm: "systemd",
            exe: "/usr/lib/systemd/systemd",
            uid: 0,
            cmdline: &["/sbin/init"],
            sockets: &[],
        },
        FakeProcess {
            pid: 100,
            net_ns: HOST_NS,
            comm: "occ-scan",
            exe: "/usr/local/bin/occ-scan",
            uid: 0,
            cmdline: &["occ-scan", "ports"],
            sockets: &[],
        },
        FakeProcess {
            pid: 210,
            net_ns: HOST_NS,
            comm: "sshd",
            exe: "/usr/sbin/sshd",
            uid: 0,
            cmdline: &["sshd: /usr/sbin/sshd -D"],
            sockets: &[(3, 20101), (4, 20201)],
        },
        FakeProcess {
            pid: 215,
            net_ns: HOST_NS,
            comm: "sshd",
            exe: "/usr/sbin/sshd",
            uid: 0,
            cmdline: &["sshd: alice [priv]"],
            sockets: &[(3, 20101), (5, 20105)],
        },
        FakeProcess {
            pid: 300,
            net_ns: HOST_NS,
            comm: "node",
            exe: "/usr/bin/node",
            uid: 1000,
            cmdline: &["node", "gateway.js"],
            sockets: &[
                (20, 20102),
                (21, 20104),
                (22, 20106),
                (23, 20108),
                (24, 20202),
                (25, 20203),
            ],
        },
        FakeProcess {
            pid: 310,
            net_ns: HOST_NS,
            comm: "python3",
            exe: "/usr/bin/python3.11",
            uid: 1000,
            cmdline: &["python3", "client.py"],
            sockets: &[(3, 20107), (4, 20204), (5, 20303), (6, 20401)],
        },
        FakeProcess {
            pid: 400,
            net_ns: HOST_NS,
            comm: "systemd-resolve",
            exe: "/usr/lib/systemd/systemd-resolved",
            uid: 101,
            cmdline: &["/usr/lib/systemd/systemd-resolved"],
            sockets: &[(12, 20302)],
        },
        FakeProcess {
            pid: 410,
            net_ns: HOST_NS,
            comm: "dhclient",
            exe: "/usr/sbin/dhclient",
            uid: 0,
            cmdline: &["dhclient", "eth0"],
            sockets: &[(6, 20301)],
        },
        FakeProcess {
            pid: 500,
            net_ns: HOST_NS,
            comm: "apache2",
            exe: "/usr/sbin/apache2",
            uid: 0,
            cmdline: &["/usr/sbin/apache2", "-k", "start"],
            sockets: &[(4, 20103)],
        },
        FakeProcess {
            pid: 900,
            net_ns: CONTAINER_NS,
            comm: "nginx",
            exe: "/usr/sbin/nginx",
            uid: 0,
            cmdline: &["nginx: master process"],
            sockets: &[(6, 30101)],
        },
        FakeProcess {
            pid: 901,
            net_ns: CONTAINER_NS,
            comm: "mysqld",
            exe: "/usr/sbin/mysqld",
            uid: 999,
            cmdline: &["mysqld"],
            sockets: &[(10, 30102)],
        },
    ];
    for pr in &procs {
        p.process(pr);
    }
    p.hidden_process(950);
    p
}

fn collect(root: &Path) -> Collection {
    sockets::procfs::collect(root).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn find(c: &Collection, inode: u64) -> &Socket {
    c.sockets
        .iter()
        .find(|s| s.socket == Some(inode))
        .unwrap_or_else(|| panic!("socket {inode} not found"))
}

#[test]
fn captured_tables_parse_to_the_known_sockets() {
    let p = captured_host();
    let c = collect(p.root());
    // 9 tcp + 4 tcp6 + 4 udp + 1 udp6 in the host namespace, 2 tcp in the container.
    assert_eq!(c.sockets.len(), 20, "{:#?}", c.sockets);

    // (inode, address, port, protocol, family, state, pid, comm, ns)
    type Row = (
        u64,
        &'static str,
        u16,
        Protocol,
        Family,
        SocketState,
        Option<u32>,
        Option<&'static str>,
        u64,
    );
    let rows: [Row; 19] = [
        (
            20101,
            "0.0.0.0",
            22,
            Protocol::Tcp,
            Family::Ipv4,
            SocketState::Listen,
            Some(210),
            Some("sshd"),
            HOST_NS,
        ),
        (
            20102,
            "127.0.0.1",
            18789,
            Protocol::Tcp,
            Family::Ipv4,
            SocketState::Listen,
            Some(300),
            Some("node"),
            HOST_NS,
        ),
        (
            20103,
            "0.0.0.0",
            80,
            Protocol::Tcp,
            Family::Ipv4,
            SocketState::Listen,
            Some(500),
            Some("apache2"),
            HOST_NS,
        ),
        (
            20104,
            "10.0.0.2",
            54321,
            Protocol::Tcp,
            Family::Ipv4,
            SocketState::Established,
            Some(300),
            Some("node"),
            HOST_NS,
        ),
        (
            20105,
            "10.0.0.2",
            22,
            Protocol::Tcp,
            Family::Ipv4,
            SocketState::Established,
            Some(215),
            Some("sshd"),
            HOST_NS,
        ),
        (
            20106,
            "10.0.0.2",
            51440,
            Protocol::Tcp,
            Family::Ipv4,
            SocketState::SynSent,
            Some(300),
            Some("node"),
            HOST_NS,
        ),
        (
            20107,
            "127.0.0.1",
            40000,
            Protocol::Tcp,
            Family::Ipv4,
            SocketState::Established,
            Some(310),
            Some("python3"),
            HOST_NS,
        ),
        (
            20108,
            "127.0.0.1",
            18789,
            Protocol::Tcp,
            Family::Ipv4,
            SocketState::Established,
            Some(300),
            Some("node"),
            HOST_NS,
        ),
        (
            20201,
            "::",
            22,
            Protocol::Tcp,
            Family::Ipv6,
            SocketState::Listen,
            Some(210),
            Some("sshd"),
            HOST_NS,
        ),
        (
            20202,
            "::1",
            8443,
            Protocol::Tcp,
            Family::Ipv6,
            SocketState::Listen,
            Some(300),
            Some("node"),
            HOST_NS,
        ),
        (
            20203,
            "2001:db8::1",
            42162,
            Protocol::Tcp,
            Family::Ipv6,
            SocketState::Established,
            Some(300),
            Some("node"),
            HOST_NS,
        ),
        (
            20204,
            "::ffff:127.0.0.1",
            57592,
            Protocol::Tcp,
            Family::Ipv6,
            SocketState::Established,
            Some(310),
            Some("python3"),
            HOST_NS,
        ),
        (
            20301,
            "0.0.0.0",
            68,
            Protocol::Udp,
            Family::Ipv4,
            SocketState::Unconn,
            Some(410),
            Some("dhclient"),
            HOST_NS,
        ),
        (
            20302,
            "127.0.0.53",
            53,
            Protocol::Udp,
            Family::Ipv4,
            SocketState::Unconn,
            Some(400),
            Some("systemd-resolve"),
            HOST_NS,
        ),
        (
            20303,
            "10.0.0.2",
            57842,
            Protocol::Udp,
            Family::Ipv4,
            SocketState::Established,
            Some(310),
            Some("python3"),
            HOST_NS,
        ),
        (
            20304,
            "0.0.0.0",
            69,
            Protocol::Udp,
            Family::Ipv4,
            SocketState::Unconn,
            None,
            None,
            HOST_NS,
        ),
        (
            20401,
            "::1",
            5201,
            Protocol::Udp,
            Family::Ipv6,
            SocketState::Unconn,
            Some(310),
            Some("python3"),
            HOST_NS,
        ),
        (
            30101,
            "0.0.0.0",
            8080,
            Protocol::Tcp,
            Family::Ipv4,
            SocketState::Listen,
            Some(900),
            Some("nginx"),
            CONTAINER_NS,
        ),
        (
            30102,
            "127.0.0.1",
            3306,
            Protocol::Tcp,
            Family::Ipv4,
            SocketState::Listen,
            Some(901),
            Some("mysqld"),
            CONTAINER_NS,
        ),
    ];
    for (inode, addr, port, proto, fam, state, pid, comm, ns) in rows {
        let s = find(&c, inode);
        assert_eq!(
            (
                s.address,
                s.port,
                s.protocol,
                s.family,
                s.state,
                s.pid,
                s.comm.as_deref(),
                s.net_namespace
            ),
            (ip(addr), port, proto, fam, state, pid, comm, Some(ns)),
            "socket {inode}"
        );
    }

    // The TIME_WAIT row has no inode and no owner, and does not count as unknown.
    let tw: Vec<_> = c
        .sockets
        .iter()
        .filter(|s| s.state == SocketState::TimeWait)
        .collect();
    assert_eq!(tw.len(), 1);
    assert_eq!((tw[0].socket, tw[0].pid, tw[0].port), (None, None, 45250));
    assert_eq!(tw[0].remote_address, ip("162.220.34.34"));

    // Owner details come from /proc/<pid>, the socket uid from the table.
    let node = find(&c, 20104);
    assert_eq!(node.path.as_deref(), Some("/usr/bin/node"));
    assert_eq!(node.uid, Some(1000));
    assert_eq!(node.fd, Some(21));
    assert_eq!(
        node.cmdline.as_deref(),
        Some(&["node".to_owned(), "gateway.js".to_owned()][..])
    );
    assert_eq!(
        (node.remote_address, node.remote_port),
        (ip("162.220.34.34"), 443)
    );
    let apache = find(&c, 20103);
    assert_eq!((apache.uid, apache.socket_uid), (Some(0), Some(33)));
    let v6 = find(&c, 20203);
    assert_eq!(
        (v6.remote_address, v6.remote_port),
        (ip("2001:db8::2"), 443)
    );

    // Unknown owner is stated, never guessed; visibility is reduced but the scan succeeds.
    let tftp = find(&c, 20304);
    assert_eq!(
        (tftp.comm.as_deref(), tftp.path.as_deref(), tftp.uid),
        (None, None, None)
    );
    assert_eq!(tftp.socket_uid, Some(0));
    assert_eq!(c.visibility.unknown_owner_sockets, 1);
    assert_eq!(c.visibility.processes_uninspectable, 1);
    assert!(!c.visibility.complete);
    assert!(
        c.visibility
            .notes
            .iter()
            .any(|n| n.contains("1 socket(s) with unknown owner")),
        "{:?}",
        c.visibility.notes
    );
}

#[test]
fn each_namespace_is_read_once_through_a_readable_member() {
    let p = captured_host();
    let c = collect(p.root());
    let ns: Vec<_> = c
        .visibility
        .namespaces
        .iter()
        .map(|n| (n.inode, n.representative_pid, n.readable, n.sockets))
        .collect();
    assert_eq!(
        ns,
        [
            (Some(HOST_NS), None, true, 18),
            (Some(CONTAINER_NS), Some(901), true, 2)
        ]
    );
    // Nothing is listed twice although eleven processes share two namespaces.
    let mut inodes: Vec<_> = c.sockets.iter().filter_map(|s| s.socket).collect();
    let n = inodes.len();
    inodes.sort_unstable();
    inodes.dedup();
    assert_eq!(inodes.len(), n);
}

#[test]
fn an_unreadable_namespace_is_reported_not_fatal() {
    let p = captured_host();
    std::fs::remove_dir_all(p.root().join("901/net")).unwrap();
    let c = collect(p.root());
    let container = c
        .visibility
        .namespaces
        .iter()
        .find(|n| n.inode == Some(CONTAINER_NS))
        .unwrap();
    assert!(!container.readable);
    assert!(!c.visibility.complete);
    assert!(c
        .visibility
        .notes
        .iter()
        .any(|n| n.contains(&CONTAINER_NS.to_string())));
    assert_eq!(c.sockets.len(), 18);
}

#[test]
fn a_missing_proc_is_an_error_not_an_empty_scan() {
    let d = tempfile::tempdir().unwrap();
    let e = sockets::procfs::collect(&d.path().join("nope")).unwrap_err();
    assert!(e.to_string().contains("--method lsof"), "{e}");
    // An existing but empty proc root (no tables, no processes) also fails.
    let e = sockets::procfs::collect(d.path()).unwrap_err();
    assert!(
        e.to_string().contains("cannot read the socket tables"),
        "{e}"
    );
}

#[test]
fn ports_report_on_the_captured_host() {
    let p = captured_host();
    let c = collect(p.root());
    let d = tempfile::tempdir().unwrap();
    let approved = d.path().join("approved_ports.json");
    std::fs::write(
        &approved,
        r#"[{"port": 22, "protocol": "tcp", "command": "sshd", "bind": "*"},
            {"port": 18789, "command": "node", "host": "127.0.0.1", "pid": 300, "user": "alice"},
            {"port": 8443, "exe": "/usr/bin/node", "bind": "::1"},
            {"port": 53, "protocol": "udp", "bind": "127.0.0.53"},
            {"port": 68, "protocol": "udp", "command": "dhclient"},
            {"port": 5201, "protocol": "udp", "bind": "::1"},
            {"port": 3306, "bind": "127.0.0.1", "command": "mysqld"},
            {"port": 8080, "bind": "127.0.0.1", "command": "nginx"},
            {"port": 69, "protocol": "udp", "command": "in.tftpd"}]"#,
    )
    .unwrap();
    let rules = load_approved_ports(&approved).unwrap();
    let r = ports::evaluate(&c, &rules);
    assert_eq!(r.counts.listening, 11);
    assert_eq!((r.counts.tcp, r.counts.udp), (7, 4));
    assert_eq!(r.counts.unknown_owner, 1);
    let got: Vec<_> = r
        .findings
        .iter()
        .map(|f| {
            (
                f.kind.as_str(),
                f.protocol.as_str(),
                f.address.to_string(),
                f.port,
                f.pid,
            )
        })
        .collect();
    let want: Vec<(&str, &str, String, u16, Option<u32>)> = vec![
        ("public-bind", "tcp", "0.0.0.0".into(), 22, Some(210)),
        ("public-bind", "tcp", "::".into(), 22, Some(210)),
        ("unapproved-port", "tcp", "0.0.0.0".into(), 80, Some(500)),
        ("insecure-port", "tcp", "0.0.0.0".into(), 80, Some(500)),
        ("public-bind", "tcp", "0.0.0.0".into(), 80, Some(500)),
        // approving 127.0.0.1:8080 does not approve 0.0.0.0:8080
        ("unapproved-port", "tcp", "0.0.0.0".into(), 8080, Some(900)),
        ("public-bind", "tcp", "0.0.0.0".into(), 8080, Some(900)),
        ("public-bind", "udp", "0.0.0.0".into(), 68, Some(410)),
        // the TFTP owner is unknown: a command rule cannot approve it
        ("unapproved-port", "udp", "0.0.0.0".into(), 69, None),
        ("insecure-port", "udp", "0.0.0.0".into(), 69, None),
        ("public-bind", "udp", "0.0.0.0".into(), 69, None),
    ];
    assert_eq!(got, want);
    let f80 = &r.findings[2];
    assert_eq!(f80.exe.as_deref(), Some("/usr/sbin/apache2"));
    assert_eq!(f80.command.as_deref(), Some("apache2"));
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "status",
        "approved_file",
        "approved_rules_count",
        "tool",
        "listening_services",
        "findings",
    ] {
        assert!(json.get(key).is_some(), "seed key {key} missing");
    }
    assert_eq!(json["tool"], "proc");
    assert_eq!(json["findings"][3]["type"], "insecure-port");
    assert_eq!(json["listening_services"][0]["protocol"], "tcp");
    assert_eq!(json["visibility"]["complete"], false);
}

#[test]
fn baseline_from_the_captured_host_approves_it_exactly() {
    let p = captured_host();
    let c = collect(p.root());
    let rules = ports::baseline(&c);
    assert_eq!(rules.len(), 11);
    let unknown = rules.iter().find(|r| r.port == 69).unwrap();
    assert_eq!(unknown.command, None);
    assert!(unknown
        .comment
        .as_deref()
        .unwrap()
        .contains("owner unknown"));
    assert!(unknown.comment.as_deref().unwrap().contains("INSECURE"));
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("approved_ports.json");
    occ_scan::files::write_json(&path, &rules).unwrap();
    let loaded = load_approved_ports(&path).unwrap();
    let r = ports::evaluate(&c, &loaded);
    assert!(
        r.findings
            .iter()
            .all(|f| f.kind != ports::PortFindingKind::UnapprovedPort),
        "{:#?}",
        r.findings
    );
}

#[test]
fn egress_on_the_captured_host() {
    let p = captured_host();
    let c = collect(p.root());
    let d = egress::classify(&c);
    let inodes = |v: &[Socket]| {
        let mut i: Vec<u64> = v.iter().filter_map(|s| s.socket).collect();
        i.sort_unstable();
        i
    };
    assert_eq!(inodes(&d.outbound), [20104, 20106, 20203, 20303]);
    assert_eq!(inodes(&d.loopback), [20107, 20204]);
    assert_eq!(inodes(&d.inbound), [20105, 20108]);

    let dir = tempfile::tempdir().unwrap();
    let allow = dir.path().join("egress_allowlist.json");
    std::fs::write(
        &allow,
        r#"[{"cidr": "162.220.34.0/24", "port": 443, "exe": "/usr/bin/node"},
            {"protocol": "udp", "port": 53, "host": "8.8.8.8"},
            {"port": 443, "host_regex": "2001:db8::[0-9]", "command": "curl"}]"#,
    )
    .unwrap();
    let rules = load_egress_allowlist(&allow).unwrap();
    let mut resolver = Resolver::disabled();
    let r = egress::evaluate(&c, &rules, &mut resolver);
    let got: Vec<_> = r
        .findings
        .iter()
        .map(|f| {
            (
                f.remote_host.to_string(),
                f.remote_port,
                f.state.as_str(),
                f.pid,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("192.0.2.1".to_owned(), 443, "SYN_SENT", Some(300)),
            // the host_regex matches the address, but the rule is for curl, not node
            ("2001:db8::2".to_owned(), 443, "ESTABLISHED", Some(300)),
        ]
    );
    let allowed: Vec<_> = r.connections.iter().map(|c| c.allowed_by).collect();
    assert_eq!(allowed.iter().filter(|a| a.is_some()).count(), 2);
    assert_eq!(r.counts.inbound_excluded, 2);
    assert_eq!(r.loopback_connections.len(), 2);
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "status",
        "allowlist_file",
        "allowlist_rules_count",
        "tool",
        "connections",
        "findings",
    ] {
        assert!(json.get(key).is_some(), "seed key {key} missing");
    }
    assert_eq!(json["resolution"]["best_effort"], true);
    assert!(json["blind_spots"].as_array().unwrap().len() >= 3);
    let conns = json["connections"].as_array().unwrap();
    assert!(conns
        .iter()
        .any(|c| c["protocol"] == "udp" && c["remote_port"] == 53));
    assert!(conns
        .iter()
        .all(|c| c.get("allowed_by").is_some() && c.get("pid").is_some()));
}

#[test]
fn an_allow_everything_rule_is_flagged() {
    let p = captured_host();
    let c = collect(p.root());
    let dir = tempfile::tempdir().unwrap();
    let allow = dir.path().join("egress_allowlist.json");
    std::fs::write(&allow, "[{}, {\"protocol\": \"udp\"}]").unwrap();
    let rules = load_egress_allowlist(&allow).unwrap();
    let r = egress::evaluate(&c, &rules, &mut Resolver::disabled());
    assert!(r.findings.is_empty());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("rule 0") && w.contains("allows everything")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn captured_lsof_f0_output_parses_to_the_known_sockets() {
    let bytes = std::fs::read(crate::support::fixture("../lsof/python-F0.txt")).unwrap();
    let (s, malformed) = sockets::lsof::parse_sockets(&bytes);
    assert_eq!(malformed, 0);
    let got: Vec<_> = s
        .iter()
        .map(|s| {
            (
                s.fd,
                s.family,
                s.protocol,
                s.local,
                s.remote,
                s.tcp_state.as_deref(),
                s.device,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Some(3),
                Family::Ipv4,
                Protocol::Tcp,
                (ip("127.0.0.1"), 60277),
                None,
                Some("LISTEN"),
                Some(1179429)
            ),
            (
                Some(4),
                Family::Ipv6,
                Protocol::Tcp,
                (ip("::"), 38429),
                None,
                Some("LISTEN"),
                Some(1179430)
            ),
            (
                Some(5),
                Family::Ipv6,
                Protocol::Udp,
                (ip("::1"), 45080),
                None,
                None,
                Some(1179431)
            ),
            (
                Some(6),
                Family::Ipv4,
                Protocol::Udp,
                (ip("192.0.2.2"), 50694),
                Some((ip("192.0.2.1"), 53)),
                None,
                Some(1179432)
            ),
            (
                Some(7),
                Family::Ipv4,
                Protocol::Tcp,
                (ip("127.0.0.1"), 54082),
                Some((ip("127.0.0.1"), 60277)),
                Some("ESTABLISHED"),
                Some(1179433)
            ),
            (
                Some(8),
                Family::Ipv4,
                Protocol::Tcp,
                (ip("127.0.0.1"), 60277),
                Some((ip("127.0.0.1"), 54082)),
                Some("ESTABLISHED"),
                Some(1179434)
            ),
        ]
    );
    assert!(s
        .iter()
        .all(|s| s.pid == 10701 && s.comm.as_deref() == Some("python3") && s.uid == Some(0)));
}

#[test]
fn the_checks_read_the_same_scan_in_a_cycle_as_from_a_saved_report() {
    use occ_scan::compliance::model::{NetReport, NetScan};
    let p = captured_host();
    let c = collect(p.root());
    let d = tempfile::tempdir().unwrap();
    // No approved_ports.json: every listener is unapproved, so every row has a finding.
    let rules = load_approved_ports(&d.path().join("approved_ports.json")).unwrap();
    let ports = ports::evaluate(&c, &rules);
    let allow = d.path().join("egress_allowlist.json");
    std::fs::write(&allow, r#"[{"cidr": "162.220.34.0/24", "port": 443}]"#).unwrap();
    let rules = load_egress_allowlist(&allow).unwrap();
    let egress = egress::evaluate(&c, &rules, &mut Resolver::disabled());

    let in_cycle = NetScan::from(&ports);
    let saved = NetReport::from_json("port", &serde_json::to_vec_pretty(&ports).unwrap());
    assert_eq!(saved.scan(), Some(&in_cycle));
    assert_eq!(
        in_cycle.listening_services.len(),
        ports.listening_services.len()
    );
    assert!(saved
        .findings_of("insecure-port")
        .iter()
        .all(|f| f.recommendation.as_deref().is_some_and(|r| !r.is_empty())));
    // The hidden TFTP owner stays unknown on both paths.
    assert!(saved.unknown_owner_count() >= 1);
    assert!(saved
        .listeners()
        .iter()
        .any(|l| l.port == Some(69) && l.pid.is_none()));

    let in_cycle = NetScan::from(&egress);
    let saved = NetReport::from_json("egress", &serde_json::to_vec(&egress).unwrap());
    assert_eq!(saved.scan(), Some(&in_cycle));
    assert_eq!(saved.connections().len(), egress.connections.len());
    assert_eq!(
        saved
            .connections()
            .iter()
            .filter(|c| c.allowed_by.is_some())
            .count(),
        egress
            .connections
            .iter()
            .filter(|c| c.allowed_by.is_some())
            .count()
    );
    assert!(!saved.findings_of("unapproved-egress").is_empty());
}
