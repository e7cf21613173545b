//! `occ-scan egress`: outbound connections (TCP ESTABLISHED and SYN_SENT, connected UDP)
//! matched against `egress_allowlist.json`. The accepted side of local listeners is inbound,
//! not egress, and is excluded; loopback traffic is listed separately and never flagged.
//! Host names are matched only through a best-effort resolution step, and the report says so.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use crate::files::{EgressRule, RuleFile};
use crate::net;
use crate::ports::Severity;
use crate::resolve::{HostResolution, Resolver, ReverseResolution};
use crate::sockets::{self, Collection, Protocol, Socket, SocketState, Visibility};

/// Sockets sorted by direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directions {
    /// Outbound to a non-loopback address.
    pub outbound: Vec<Socket>,
    /// Outbound to loopback.
    pub loopback: Vec<Socket>,
    /// Accepted side of a local listener (inbound), excluded.
    pub inbound: Vec<Socket>,
}

/// Whether the socket is a live or opening connection (TCP ESTABLISHED / SYN_SENT, or
/// connected UDP).
pub fn is_connection(s: &Socket) -> bool {
    match s.protocol {
        Protocol::Tcp => matches!(s.state, SocketState::Established | SocketState::SynSent),
        Protocol::Udp => s.state == SocketState::Established && s.remote_port != 0,
    }
}

/// Splits connections into outbound, loopback and inbound. A TCP connection is inbound when a
/// listener in the same network namespace holds its local port on its address or a wildcard.
pub fn classify(collection: &Collection) -> Directions {
    let mut listeners: HashMap<(Option<u64>, u16), Vec<IpAddr>> = HashMap::new();
    for s in collection
        .sockets
        .iter()
        .filter(|s| s.protocol == Protocol::Tcp && s.state == SocketState::Listen)
    {
        listeners
            .entry((s.net_namespace, s.port))
            .or_default()
            .push(s.address);
    }
    let mut d = Directions::default();
    for s in collection.sockets.iter().filter(|s| is_connection(s)) {
        let accepted = s.protocol == Protocol::Tcp
            && s.state == SocketState::Established
            && listeners
                .get(&(s.net_namespace, s.port))
                .is_some_and(|addrs| {
                    addrs.iter().any(|a| {
                        net::is_wildcard(*a) || net::canonical(*a) == net::canonical(s.address)
                    })
                });
        if accepted {
            d.inbound.push(s.clone());
        } else if net::is_loopback(s.remote_address) {
            d.loopback.push(s.clone());
        } else {
            d.outbound.push(s.clone());
        }
    }
    let key = |s: &Socket| (s.remote_address, s.remote_port, s.address, s.port, s.pid);
    d.outbound.sort_by_key(key);
    d.loopback.sort_by_key(key);
    d.inbound.sort_by_key(key);
    d
}

/// Whether `rule` allows the connection `s`. Cheap fields first; DNS last.
pub fn rule_allows(rule: &EgressRule, s: &Socket, resolver: &mut Resolver) -> bool {
    let remote = net::canonical(s.remote_address);
    let cheap = rule.protocol == s.protocol
        && rule.port.is_none_or(|p| p == s.remote_port)
        && rule.command.as_deref().is_none_or(|c| {
            s.comm
                .as_deref()
                .is_some_and(|comm| comm.eq_ignore_ascii_case(c))
        })
        && rule
            .exe
            .as_deref()
            .is_none_or(|e| s.path.as_deref() == Some(e))
        && rule.cidr.is_none_or(|c| c.contains(remote));
    if !cheap {
        return false;
    }
    if let Some(host) = &rule.host {
        let r = resolver.forward(host);
        if !r.addresses.iter().any(|a| net::canonical(*a) == remote) {
            return false;
        }
    }
    if let Some((_, re)) = &rule.host_regex {
        if !re.is_match(&remote.to_string())
            && !resolver
                .reverse(remote)
                .names
                .iter()
                .any(|n| re.is_match(n))
        {
            return false;
        }
    }
    true
}

/// One outbound connection and the rule that allowed it.
#[derive(Debug, Clone, Serialize)]
pub struct EgressConnection {
    /// The socket.
    #[serde(flatten)]
    pub socket: Socket,
    /// The index of the first allowing rule, or null.
    pub allowed_by: Option<usize>,
}

/// An unapproved outbound connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EgressFinding {
    /// Severity.
    pub severity: Severity,
    /// Always `unapproved-egress`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The remote address (the seed's key).
    pub remote_host: IpAddr,
    /// The remote port.
    pub remote_port: u16,
    /// The protocol.
    pub protocol: Protocol,
    /// ESTABLISHED or SYN_SENT.
    pub state: SocketState,
    /// Local address.
    pub address: IpAddr,
    /// Local port.
    pub port: u16,
    /// Owner pid (null: unknown).
    pub pid: Option<u32>,
    /// Owner comm (null: unknown).
    pub command: Option<String>,
    /// Owner executable (null: unknown).
    pub exe: Option<String>,
    /// Network namespace.
    pub net_namespace: Option<u64>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub recommendation: String,
}

/// What the name resolution did.
#[derive(Debug, Clone, Serialize)]
pub struct ResolutionInfo {
    /// Always true: DNS answers at scan time may differ from those the process used.
    pub best_effort: bool,
    /// Whether lookups were made.
    pub enabled: bool,
    /// Timeout per lookup.
    pub timeout_ms: u128,
    /// A sentence for the reader.
    pub note: &'static str,
    /// Forward lookups of `host` rules.
    pub hosts: Vec<HostResolution>,
    /// Reverse lookups made for `host_regex` rules.
    pub reverse: Vec<ReverseResolution>,
}

/// Counts for dashboards and the compliance checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EgressCounts {
    /// Outbound non-loopback connections.
    pub outbound: usize,
    /// Loopback connections (reported, not judged).
    pub loopback: usize,
    /// Accepted inbound connections excluded.
    pub inbound_excluded: usize,
    /// Outbound connections no rule allows.
    pub unapproved: usize,
    /// Outbound connections whose owner is unknown.
    pub unknown_owner: usize,
    /// Outbound per protocol and state (`tcp ESTABLISHED`).
    pub by_state: BTreeMap<String, usize>,
}

/// The `occ-scan egress` report. `status`, `allowlist_file`, `allowlist_rules_count`, `tool`,
/// `connections` and `findings` are the seed's keys.
#[derive(Debug, Clone, Serialize)]
pub struct EgressReport {
    /// Always `"ok"`.
    pub status: &'static str,
    /// The allowlist path.
    pub allowlist_file: String,
    /// Whether it exists (missing: every outbound connection is unapproved).
    pub allowlist_file_present: bool,
    /// Rules in it.
    pub allowlist_rules_count: usize,
    /// `proc` or `lsof`.
    pub tool: &'static str,
    /// What the method reads.
    pub method: &'static str,
    /// RFC 3339 UTC.
    pub generated_at: String,
    /// Outbound non-loopback connections.
    pub connections: Vec<EgressConnection>,
    /// Outbound loopback connections, reported separately and not judged.
    pub loopback_connections: Vec<Socket>,
    /// Findings.
    pub findings: Vec<EgressFinding>,
    /// Counts.
    pub counts: EgressCounts,
    /// Name resolution, best effort.
    pub resolution: ResolutionInfo,
    /// Rules or conditions the admin should look at.
    pub warnings: Vec<String>,
    /// What the scan could not see.
    pub visibility: Visibility,
    /// What a polling scan misses.
    pub blind_spots: Vec<String>,
}

/// Builds the report.
pub fn evaluate(
    collection: &Collection,
    rules: &RuleFile<EgressRule>,
    resolver: &mut Resolver,
) -> EgressReport {
    let d = classify(collection);
    resolver.prefetch(rules.rules.iter().filter_map(|r| r.host.as_deref()));

    let mut connections = Vec::with_capacity(d.outbound.len());
    let mut findings = Vec::new();
    let mut by_state = BTreeMap::new();
    for s in d.outbound {
        *by_state
            .entry(format!("{} {}", s.protocol, s.state))
            .or_insert(0) += 1;
        let allowed_by = rules
            .rules
            .iter()
            .position(|r| rule_allows(r, &s, resolver));
        if allowed_by.is_none() {
            findings.push(EgressFinding {
                severity: Severity::Medium,
                kind: "unapproved-egress",
                remote_host: s.remote_address,
                remote_port: s.remote_port,
                protocol: s.protocol,
                state: s.state,
                address: s.address,
                port: s.port,
                pid: s.pid,
                command: s.comm.clone(),
                exe: s.path.clone(),
                net_namespace: s.net_namespace,
                message: format!(
                    "{} {} -> {} ({}) is not in the egress allowlist",
                    s.protocol,
                    s.local_endpoint(),
                    s.remote_endpoint(),
                    s.owner_label()
                ),
                recommendation: "Add a rule to egress_allowlist.json (cidr or host, port, \
                                 protocol, exe) if the destination is expected; otherwise stop \
                                 the process and investigate"
                    .to_owned(),
            });
        }
        connections.push(EgressConnection {
            socket: s,
            allowed_by,
        });
    }

    let mut warnings = Vec::new();
    if !rules.present {
        warnings.push(format!(
            "{} does not exist: every outbound connection is unapproved",
            rules.path.display()
        ));
    }
    for (i, r) in rules.rules.iter().enumerate() {
        if r.any_host() {
            warnings.push(format!(
                "rule {i} has no host, host_regex or cidr: it allows any destination{}",
                if r.port.is_none() && r.command.is_none() && r.exe.is_none() {
                    " on any port from any process (allows everything)"
                } else {
                    ""
                }
            ));
        }
    }
    let hosts = resolver.hosts();
    for h in &hosts {
        if let Some(e) = &h.error {
            warnings.push(format!(
                "host \"{}\" did not resolve ({e}); its rules allow nothing this run",
                h.host
            ));
        }
    }

    let counts = EgressCounts {
        outbound: connections.len(),
        loopback: d.loopback.len(),
        inbound_excluded: d.inbound.len(),
        unapproved: findings.len(),
        unknown_owner: connections
            .iter()
            .filter(|c| !c.socket.owner_known())
            .count(),
        by_state,
    };
    let mut blind_spots = sockets::blind_spots(collection.method);
    blind_spots.push(
        "egress is sampled from socket state: connections shorter than the scan interval, UDP \
         sent without connect() and SYN_SENT attempts that fail quickly are missed; complete \
         coverage needs eBPF, audit connect() or conntrack"
            .to_owned(),
    );
    blind_spots.push(
        "host and host_regex rules are judged through DNS at scan time, which may differ from \
         what the process resolved (CDNs rotate addresses)"
            .to_owned(),
    );
    EgressReport {
        status: "ok",
        allowlist_file: rules.path.display().to_string(),
        allowlist_file_present: rules.present,
        allowlist_rules_count: rules.rules.len(),
        tool: collection.method.as_str(),
        method: collection.method.description(),
        generated_at: crate::now_rfc3339(),
        connections,
        loopback_connections: d.loopback,
        findings,
        counts,
        resolution: ResolutionInfo {
            best_effort: true,
            enabled: resolver.enabled(),
            timeout_ms: resolver.timeout().as_millis(),
            note: "host rules are resolved forward and host_regex rules are matched against the \
                   remote address and its reverse (PTR / hosts) names, at scan time, with a \
                   timeout; best effort",
            hosts,
            reverse: resolver.addresses(),
        },
        warnings,
        visibility: collection.visibility.clone(),
        blind_spots,
    }
}

impl EgressReport {
    /// The human summary.
    pub fn render_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "Egress monitoring report (method: {})", self.tool);
        let _ = writeln!(
            t,
            "Allowlist: {} ({} rules{})",
            self.allowlist_file,
            self.allowlist_rules_count,
            if self.allowlist_file_present {
                ""
            } else {
                "; file missing"
            }
        );
        let _ = writeln!(
            t,
            "Egress connections: {} (loopback {} listed separately; {} inbound excluded)",
            self.counts.outbound, self.counts.loopback, self.counts.inbound_excluded
        );
        let _ = writeln!(t, "Findings: {}", self.findings.len());
        crate::render_visibility(&mut t, &self.visibility);
        let _ = writeln!(
            t,
            "Name resolution: best effort, at scan time ({} ms timeout{})",
            self.resolution.timeout_ms,
            if self.resolution.enabled {
                ""
            } else {
                "; disabled"
            }
        );
        for w in &self.warnings {
            let _ = writeln!(t, "Warning: {w}");
        }
        if !self.findings.is_empty() {
            t.push('\n');
        }
        for f in &self.findings {
            let _ = writeln!(t, "- [{}] {}: {}", f.severity.label(), f.kind, f.message);
        }
        t
    }
}
