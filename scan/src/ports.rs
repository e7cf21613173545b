//! `occ-scan ports` and `occ-scan baseline`: listening TCP and UDP sockets compared with
//! `approved_ports.json`. Findings carry the bind address, pid and exe; one entry per socket,
//! never per worker pid. A listener whose owner is unknown is never matched by a `command` or
//! `exe` rule: unknown is not guessed to be approved.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use crate::files::{ApprovedPort, Bind, RuleFile};
use crate::net;
use crate::sockets::{self, Collection, Protocol, Socket, Visibility};

/// Finding severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

impl Severity {
    /// Upper-case label for text output.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
        }
    }
}

/// A port whose protocol sends credentials or data in clear text, and what to use instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InsecurePort {
    /// The port.
    pub port: u16,
    /// The clear-text service usually found there.
    pub service: &'static str,
    /// The secure alternative.
    pub recommendation: &'static str,
}

/// The seed's insecure-port table.
pub const INSECURE_PORTS: &[InsecurePort] = &[
    InsecurePort {
        port: 20,
        service: "FTP data",
        recommendation: "Use SFTP (22) or FTPS (990) instead of FTP",
    },
    InsecurePort {
        port: 21,
        service: "FTP control",
        recommendation: "Use SFTP (22) or FTPS (990) instead of FTP",
    },
    InsecurePort {
        port: 23,
        service: "Telnet",
        recommendation: "Use SSH (22) instead of Telnet",
    },
    InsecurePort {
        port: 69,
        service: "TFTP",
        recommendation: "Use an HTTPS-based or SFTP transfer instead of TFTP",
    },
    InsecurePort {
        port: 80,
        service: "HTTP",
        recommendation: "Serve HTTPS (443) and redirect or close HTTP",
    },
    InsecurePort {
        port: 110,
        service: "POP3",
        recommendation: "Use POP3S (995)",
    },
    InsecurePort {
        port: 143,
        service: "IMAP",
        recommendation: "Use IMAPS (993)",
    },
    InsecurePort {
        port: 389,
        service: "LDAP",
        recommendation: "Use LDAPS (636) or StartTLS",
    },
    InsecurePort {
        port: 512,
        service: "rexec",
        recommendation: "Disable the r-commands; use SSH (22)",
    },
    InsecurePort {
        port: 513,
        service: "rlogin",
        recommendation: "Disable the r-commands; use SSH (22)",
    },
    InsecurePort {
        port: 514,
        service: "rsh / plain syslog",
        recommendation: "Disable rsh; use SSH (22), and TLS syslog (6514) for logs",
    },
];

/// The table entry for a port.
pub fn insecure_port(port: u16) -> Option<&'static InsecurePort> {
    INSECURE_PORTS.iter().find(|p| p.port == port)
}

/// A port finding's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortFindingKind {
    /// No rule in approved_ports.json covers the listener.
    UnapprovedPort,
    /// The port is in the insecure table.
    InsecurePort,
    /// Bound to every interface (0.0.0.0, :: or *).
    PublicBind,
}

impl PortFindingKind {
    /// The type string.
    pub fn as_str(self) -> &'static str {
        match self {
            PortFindingKind::UnapprovedPort => "unapproved-port",
            PortFindingKind::InsecurePort => "insecure-port",
            PortFindingKind::PublicBind => "public-bind",
        }
    }
}

/// One finding about one listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortFinding {
    /// Severity.
    pub severity: Severity,
    /// Type.
    #[serde(rename = "type")]
    pub kind: PortFindingKind,
    /// The port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
    /// The bind address.
    pub address: IpAddr,
    /// The owner's pid (null: unknown).
    pub pid: Option<u32>,
    /// The owner's comm (null: unknown).
    pub command: Option<String>,
    /// The owner's executable (null: unknown).
    pub exe: Option<String>,
    /// The socket's network namespace.
    pub net_namespace: Option<u64>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub recommendation: String,
}

/// Counts for dashboards and the compliance checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortCounts {
    /// Listening sockets.
    pub listening: usize,
    /// TCP listeners.
    pub tcp: usize,
    /// UDP listeners (bound, unconnected).
    pub udp: usize,
    /// Distinct (protocol, port) pairs.
    pub distinct_ports: usize,
    /// Listeners whose owner is unknown.
    pub unknown_owner: usize,
    /// Findings per type.
    pub findings_by_type: BTreeMap<&'static str, usize>,
}

/// The `occ-scan ports` report. `status`, `approved_file`, `approved_rules_count`, `tool`,
/// `listening_services` and `findings` are the seed's keys.
#[derive(Debug, Clone, Serialize)]
pub struct PortsReport {
    /// Always `"ok"` (a failed scan is an error, not a report).
    pub status: &'static str,
    /// The approved_ports.json path.
    pub approved_file: String,
    /// Whether it exists (missing: every listener is unapproved).
    pub approved_file_present: bool,
    /// Rules in it.
    pub approved_rules_count: usize,
    /// `proc` or `lsof`.
    pub tool: &'static str,
    /// What the method reads.
    pub method: &'static str,
    /// RFC 3339 UTC.
    pub generated_at: String,
    /// Listening sockets (TCP LISTEN, UDP bound and unconnected).
    pub listening_services: Vec<Socket>,
    /// Findings.
    pub findings: Vec<PortFinding>,
    /// Counts.
    pub counts: PortCounts,
    /// What the scan could not see.
    pub visibility: Visibility,
    /// What a polling scan misses.
    pub blind_spots: Vec<String>,
}

/// Whether `rule` approves the listener `s`.
pub fn approves(rule: &ApprovedPort, s: &Socket) -> bool {
    rule.port == s.port
        && rule.protocol == s.protocol
        && rule.bind.is_none_or(|b| b.covers(s.address))
        && rule.command.as_deref().is_none_or(|c| {
            s.comm
                .as_deref()
                .is_some_and(|comm| comm.eq_ignore_ascii_case(c))
        })
        && rule
            .exe
            .as_deref()
            .is_none_or(|e| s.path.as_deref() == Some(e))
}

/// Whether the socket is bound to every interface.
pub fn is_public_bind(s: &Socket) -> bool {
    net::is_wildcard(s.address)
}

/// Listening sockets, sorted by protocol, port and address.
pub fn listening(collection: &Collection) -> Vec<Socket> {
    let mut v: Vec<Socket> = collection
        .sockets
        .iter()
        .filter(|s| s.is_listening())
        .cloned()
        .collect();
    v.sort_by(|a, b| {
        (a.protocol, a.port, a.address, a.net_namespace, a.pid).cmp(&(
            b.protocol,
            b.port,
            b.address,
            b.net_namespace,
            b.pid,
        ))
    });
    v
}

/// Findings for the listeners, in order: unapproved, insecure, public bind (per listener).
pub fn findings(listeners: &[Socket], rules: &[ApprovedPort]) -> Vec<PortFinding> {
    let mut out = Vec::new();
    for s in listeners {
        let base = |severity, kind, message: String, recommendation: String| PortFinding {
            severity,
            kind,
            port: s.port,
            protocol: s.protocol,
            address: s.address,
            pid: s.pid,
            command: s.comm.clone(),
            exe: s.path.clone(),
            net_namespace: s.net_namespace,
            message,
            recommendation,
        };
        let what = format!(
            "{} {} ({})",
            s.protocol,
            s.local_endpoint(),
            s.owner_label()
        );
        if !rules.iter().any(|r| approves(r, s)) {
            out.push(base(
                Severity::Medium,
                PortFindingKind::UnapprovedPort,
                format!("{what} is not in the approved baseline"),
                "Approve it in approved_ports.json with a justification (port, protocol, bind, \
                 command, exe), or stop the service"
                    .to_owned(),
            ));
        }
        if let Some(ins) = insecure_port(s.port) {
            out.push(base(
                Severity::High,
                PortFindingKind::InsecurePort,
                format!(
                    "{what}: port {} is {}, a clear-text protocol",
                    s.port, ins.service
                ),
                ins.recommendation.to_owned(),
            ));
        }
        if is_public_bind(s) {
            out.push(base(
                Severity::Medium,
                PortFindingKind::PublicBind,
                format!("{what} listens on all interfaces"),
                "Bind it to 127.0.0.1 / ::1 or a specific internal interface, or firewall it"
                    .to_owned(),
            ));
        }
    }
    out
}

/// Builds the report.
pub fn evaluate(collection: &Collection, rules: &RuleFile<ApprovedPort>) -> PortsReport {
    let listening_services = listening(collection);
    let findings = findings(&listening_services, &rules.rules);
    let mut by_type = BTreeMap::new();
    for f in &findings {
        *by_type.entry(f.kind.as_str()).or_insert(0) += 1;
    }
    let mut distinct: Vec<(Protocol, u16)> = listening_services
        .iter()
        .map(|s| (s.protocol, s.port))
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    let counts = PortCounts {
        listening: listening_services.len(),
        tcp: listening_services
            .iter()
            .filter(|s| s.protocol == Protocol::Tcp)
            .count(),
        udp: listening_services
            .iter()
            .filter(|s| s.protocol == Protocol::Udp)
            .count(),
        distinct_ports: distinct.len(),
        unknown_owner: listening_services
            .iter()
            .filter(|s| !s.owner_known())
            .count(),
        findings_by_type: by_type,
    };
    PortsReport {
        status: "ok",
        approved_file: rules.path.display().to_string(),
        approved_file_present: rules.present,
        approved_rules_count: rules.rules.len(),
        tool: collection.method.as_str(),
        method: collection.method.description(),
        generated_at: crate::now_rfc3339(),
        listening_services,
        findings,
        counts,
        visibility: collection.visibility.clone(),
        blind_spots: sockets::blind_spots(collection.method),
    }
}

impl PortsReport {
    /// The human summary.
    pub fn render_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "Port monitoring report (method: {})", self.tool);
        let _ = writeln!(
            t,
            "Approved baseline: {} ({} rules{})",
            self.approved_file,
            self.approved_rules_count,
            if self.approved_file_present {
                ""
            } else {
                "; file missing"
            }
        );
        let _ = writeln!(
            t,
            "Listening services: {} (tcp {}, udp {}; {} distinct ports)",
            self.counts.listening, self.counts.tcp, self.counts.udp, self.counts.distinct_ports
        );
        let _ = writeln!(t, "Findings: {}", self.findings.len());
        crate::render_visibility(&mut t, &self.visibility);
        if !self.findings.is_empty() {
            t.push('\n');
        }
        for f in &self.findings {
            let owner = match (f.pid, &f.command, &f.exe) {
                (Some(pid), c, e) => format!(
                    "{} pid {pid} {}",
                    c.as_deref().unwrap_or("unknown"),
                    e.as_deref().unwrap_or("(exe unknown)")
                ),
                (None, ..) => "unknown owner".to_owned(),
            };
            let _ = writeln!(
                t,
                "- [{}] {} {} {} ({owner}): {}",
                f.severity.label(),
                f.kind.as_str(),
                f.protocol,
                sockets::endpoint(f.address, f.port),
                f.recommendation
            );
        }
        t
    }
}

/// Rules approving everything that listens now, for the admin to prune: one per distinct
/// (port, protocol, bind, command, exe). A listener with an unknown owner gets a rule without
/// command or exe, and a comment saying so.
pub fn baseline(collection: &Collection) -> Vec<ApprovedPort> {
    let mut rules: Vec<ApprovedPort> = Vec::new();
    for s in listening(collection) {
        let mut notes = Vec::new();
        if s.pid.is_none() {
            notes
                .push("owner unknown at baseline time (run as root to pin the process)".to_owned());
        }
        if let Some(ins) = insecure_port(s.port) {
            notes.push(format!(
                "INSECURE: {} ({})",
                ins.service, ins.recommendation
            ));
        }
        if is_public_bind(&s) {
            notes.push("listens on all interfaces".to_owned());
        }
        let rule = ApprovedPort {
            port: s.port,
            protocol: s.protocol,
            bind: Some(Bind::Addr(s.address)),
            command: s.comm.clone(),
            exe: s.path.clone(),
            user: None,
            pid: None,
            comment: Some(if notes.is_empty() {
                "baseline: review and justify".to_owned()
            } else {
                format!("baseline: review and justify; {}", notes.join("; "))
            }),
        };
        let same = |r: &ApprovedPort| {
            (r.port, r.protocol, r.bind, &r.command, &r.exe)
                == (
                    rule.port,
                    rule.protocol,
                    rule.bind,
                    &rule.command,
                    &rule.exe,
                )
        };
        if !rules.iter().any(same) {
            rules.push(rule);
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::{Family, SocketState};

    fn listener(addr: &str, port: u16, comm: Option<&str>) -> Socket {
        let address: IpAddr = addr.parse().unwrap();
        Socket {
            address,
            port,
            protocol: Protocol::Tcp,
            family: if address.is_ipv4() {
                Family::Ipv4
            } else {
                Family::Ipv6
            },
            pid: comm.map(|_| 10),
            comm: comm.map(str::to_owned),
            path: comm.map(|c| format!("/usr/bin/{c}")),
            uid: comm.map(|_| 0),
            state: SocketState::Listen,
            net_namespace: None,
            remote_address: net::wildcard(address.is_ipv6()),
            remote_port: 0,
            socket: Some(1),
            fd: None,
            socket_uid: Some(0),
            cmdline: None,
        }
    }

    fn rule(port: u16) -> ApprovedPort {
        ApprovedPort {
            port,
            protocol: Protocol::Tcp,
            bind: None,
            command: None,
            exe: None,
            user: None,
            pid: None,
            comment: None,
        }
    }

    #[test]
    fn approval_table() {
        let lo = listener("127.0.0.1", 8080, Some("node"));
        let any = listener("0.0.0.0", 8080, Some("node"));
        let unknown = listener("127.0.0.1", 8080, None);
        let bind_lo = ApprovedPort {
            bind: Some(Bind::Addr("127.0.0.1".parse().unwrap())),
            ..rule(8080)
        };
        let node = ApprovedPort {
            command: Some("NODE".into()),
            ..rule(8080)
        };
        let exe = ApprovedPort {
            exe: Some("/usr/bin/node".into()),
            ..rule(8080)
        };
        let udp = ApprovedPort {
            protocol: Protocol::Udp,
            ..rule(8080)
        };
        let cases: [(&ApprovedPort, &Socket, bool, &str); 10] = [
            (&bind_lo, &lo, true, "exact bind"),
            (
                &bind_lo,
                &any,
                false,
                "approving loopback must not approve 0.0.0.0",
            ),
            (&node, &lo, true, "command is case-insensitive"),
            (
                &node,
                &unknown,
                false,
                "unknown owner never matches a command",
            ),
            (&exe, &lo, true, "exe exact"),
            (&exe, &unknown, false, "unknown owner never matches an exe"),
            (&udp, &lo, false, "protocol differs"),
            (&rule(8081), &lo, false, "port differs"),
            (
                &rule(8080),
                &unknown,
                true,
                "port-only rule covers an unknown owner",
            ),
            (
                &ApprovedPort {
                    bind: Some(Bind::Any),
                    ..rule(8080)
                },
                &any,
                true,
                "* covers all",
            ),
        ];
        for (r, s, want, why) in cases {
            assert_eq!(approves(r, s), want, "{why}");
        }
    }

    #[test]
    fn findings_carry_address_pid_exe_in_seed_order() {
        let s = listener("0.0.0.0", 80, Some("python3"));
        let f = findings(std::slice::from_ref(&s), &[]);
        let kinds: Vec<_> = f.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(kinds, ["unapproved-port", "insecure-port", "public-bind"]);
        assert_eq!(f[1].severity, Severity::High);
        assert!(f[1].recommendation.contains("443"));
        assert!(f
            .iter()
            .all(|f| f.pid == Some(10) && f.exe.as_deref() == Some("/usr/bin/python3")));
        assert!(f.iter().all(|f| f.address == s.address));
        assert!(findings(&[listener("::1", 8443, Some("x"))], &[rule(8443)]).is_empty());
        assert_eq!(
            findings(&[listener("::", 8443, Some("x"))], &[rule(8443)]).len(),
            1
        );
    }

    #[test]
    fn insecure_table_matches_the_seed() {
        let ports: Vec<u16> = INSECURE_PORTS.iter().map(|p| p.port).collect();
        assert_eq!(ports, [20, 21, 23, 69, 80, 110, 143, 389, 512, 513, 514]);
    }
}
