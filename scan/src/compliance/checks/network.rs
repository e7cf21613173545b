//! Listening ports and egress, judged on the scan reports and the monitoring files. A failed
//! scan makes its checks not_assessed; an empty report from a failed scan never reads as clean.

use std::collections::BTreeSet;

use super::ctx::Ctx;
use super::verdict::Verdict;
use crate::compliance::model::{num_or_dash, or_dash, NetReport, NetRow};
use crate::error::ScanError;

/// Whether an address string is loopback.
pub fn is_loopback(addr: &str) -> bool {
    let a = addr.trim_matches(|c| c == '[' || c == ']');
    let a = a.split('%').next().unwrap_or(a);
    a == "::1"
        || a == "localhost"
        || a.starts_with("127.")
        || a.starts_with("::ffff:127.")
        || a == "0:0:0:0:0:0:0:1"
}

fn is_read_error(e: &ScanError) -> bool {
    matches!(e, ScanError::Read { .. })
}

fn sock_key(f: &NetRow) -> String {
    format!(
        "{}:{}/{}",
        or_dash(f.address.as_deref()),
        num_or_dash(f.port),
        or_dash(f.protocol.as_deref())
    )
}

/// Whether a row's local address is loopback (an unknown address is not).
pub(super) fn row_is_loopback(f: &NetRow) -> bool {
    f.address.as_deref().is_some_and(is_loopback)
}

fn net_failed(r: &NetReport) -> Option<Verdict> {
    match r {
        NetReport::Failed(e) => Some(Verdict::not_assessed(e.clone())),
        NetReport::Ok(_) => None,
    }
}

fn scan_ev(r: &NetReport, what: &str) -> Vec<String> {
    let mut ev = vec![format!(
        "{what} scan method {}: {} listening, {} connections, {} findings",
        r.method(),
        r.listeners().len(),
        r.connections().len(),
        r.findings().len()
    )];
    let unknown = r.unknown_owner_count();
    if unknown > 0 {
        ev.push(format!(
            "reduced visibility: {unknown} socket(s) with unknown owner (run as root to see them)"
        ));
    }
    ev
}

/// Whether a listener is the OpenClaw gateway's own, on its configured port: TCP on loopback,
/// owned by the running gateway (its pid) or a process named like it. An unknown owner is
/// never taken for the gateway.
fn is_gateway_listener(c: &Ctx, f: &NetRow, port: u16) -> bool {
    let owner_is_gateway = match (f.pid, &c.host.gateway) {
        (Some(pid), Some(g)) if pid == u64::from(g.pid) => true,
        _ => f
            .comm
            .as_deref()
            .is_some_and(|comm| comm.starts_with("openclaw-gatew")),
    };
    f.port == Some(port.into())
        && f.protocol.as_deref() == Some("tcp")
        && row_is_loopback(f)
        && owner_is_gateway
}

pub(super) fn open_ports_approved(c: &Ctx) -> Verdict {
    let r = &c.host.ports;
    if let Some(v) = net_failed(r) {
        return v;
    }
    // OpenClaw's gateway listening on its own configured port, on loopback, is approved by
    // OpenClaw's config; gateway_loopback_only judges its bind and auth.
    let (port, port_from) = super::openclaw::gateway_port(c);
    let (gateway, unapproved): (Vec<&NetRow>, Vec<&NetRow>) = r
        .findings_of("unapproved-port")
        .into_iter()
        .partition(|f| is_gateway_listener(c, f, port));
    let keys: BTreeSet<String> = unapproved.iter().map(|f| sock_key(f)).collect();
    let public = unapproved.iter().any(|f| !row_is_loopback(f));
    let mut ev = scan_ev(r, "port");
    if !gateway.is_empty() {
        let socks: BTreeSet<String> = gateway.iter().map(|f| sock_key(f)).collect();
        ev.push(format!(
            "approved as OpenClaw's gateway port {port} ({port_from}): {}",
            socks.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if keys.is_empty() {
        return Verdict::compliant(if gateway.is_empty() {
            format!(
                "all {} listening sockets are in approved_ports.json",
                r.listeners().len()
            )
        } else {
            format!(
                "all {} listening sockets are in approved_ports.json or are OpenClaw's gateway on its port",
                r.listeners().len()
            )
        })
        .evs(ev);
    }
    let list: Vec<String> = keys.iter().take(10).cloned().collect();
    let observed = format!(
        "{} unapproved listening socket(s): {}",
        keys.len(),
        list.join(", ")
    );
    if public {
        Verdict::violation(
            observed,
            "services outside the baseline are reachable from the network",
            "close them or add them to approved_ports.json with a justification",
        )
        .evs(ev)
    } else {
        Verdict::partial(
            observed,
            "loopback services outside the baseline",
            "approve them in approved_ports.json or stop them",
        )
        .evs(ev)
    }
}

pub(super) fn insecure_ports_remediated(c: &Ctx) -> Verdict {
    let r = &c.host.ports;
    if let Some(v) = net_failed(r) {
        return v;
    }
    let insecure = r.findings_of("insecure-port");
    let keys: BTreeSet<String> = insecure.iter().map(|f| sock_key(f)).collect();
    let ev = scan_ev(r, "port");
    if keys.is_empty() {
        return Verdict::compliant("no cleartext or risky service listens").evs(ev);
    }
    let public = insecure.iter().any(|f| !row_is_loopback(f));
    let recs: BTreeSet<&str> = insecure
        .iter()
        .filter_map(|f| f.recommendation.as_deref())
        .collect();
    let observed = format!(
        "{} insecure listener(s): {}",
        keys.len(),
        keys.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
    );
    let fix = if recs.is_empty() {
        "replace each with its secure alternative".to_string()
    } else {
        recs.into_iter().collect::<Vec<_>>().join("; ")
    };
    if public {
        Verdict::violation(
            observed,
            "cleartext protocols are exposed to the network",
            &fix,
        )
        .evs(ev)
    } else {
        Verdict::partial(
            observed,
            "cleartext protocols listen on loopback only",
            &fix,
        )
        .evs(ev)
    }
}

pub(super) fn egress_allowlist_configured(c: &Ctx) -> Verdict {
    let path = c.paths.security_file("egress_allowlist.json");
    let rules = match &c.egress_rules {
        Err(e) if is_read_error(e) => return Verdict::not_assessed(e.to_string()),
        Err(e) => {
            return Verdict::violation(
                "egress_allowlist.json does not parse",
                "no egress can be judged while the file is invalid",
                "fix the key or value the error names",
            )
            .ev(e.to_string())
        }
        Ok(None) => {
            return Verdict::violation(
                format!("no allowlist at {}", path.display()),
                "outbound connections are not judged",
                "write egress_allowlist.json with the destinations the agent needs",
            )
        }
        Ok(Some(r)) => r,
    };
    if rules.is_empty() {
        return Verdict::violation(
            "egress_allowlist.json is an empty list",
            "no destination is approved, so every connection is a finding",
            "list the destinations the agent needs",
        );
    }
    let wide: Vec<String> = rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.any_destination())
        .map(|(i, _)| format!("rule [{i}] allows any destination"))
        .collect();
    if !wide.is_empty() {
        return Verdict::partial(
            format!("{} rule(s), {} of them catch-all", rules.len(), wide.len()),
            "a catch-all rule approves every destination",
            "give each rule a host, host_regex or cidr",
        )
        .evs(wide);
    }
    Verdict::compliant(format!("{} specific egress rule(s)", rules.len()))
        .ev(format!("{}", path.display()))
}

pub(super) fn egress_connections_approved(c: &Ctx) -> Verdict {
    let r = &c.host.egress;
    if let Some(v) = net_failed(r) {
        return v;
    }
    let mut ev = scan_ev(r, "egress");
    let blind = r
        .scan()
        .map(|s| s.blind_spots.join("; "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "point-in-time sample: short-lived connections are not seen".into());
    ev.push(format!("blind spots: {blind}"));
    let findings = r.findings_of("unapproved-egress");
    match &c.egress_rules {
        Err(e) if is_read_error(e) => return Verdict::not_assessed(e.to_string()),
        Err(e) => return Verdict::not_assessed(format!("the allowlist does not parse: {e}")),
        Ok(None) => {
            return Verdict::partial(
                format!(
                    "{} outbound connection(s), no allowlist to judge them",
                    r.connections().len()
                ),
                "connections are seen but not judged",
                "write egress_allowlist.json",
            )
            .evs(ev)
        }
        Ok(Some(_)) => {}
    }
    if findings.is_empty() {
        return Verdict::compliant(format!(
            "all {} outbound connection(s) are allowlisted",
            r.connections().len()
        ))
        .evs(ev);
    }
    let dests: BTreeSet<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{}:{} ({})",
                or_dash(f.remote_address.as_deref()),
                num_or_dash(f.remote_port),
                or_dash(f.comm.as_deref())
            )
        })
        .collect();
    Verdict::violation(
        format!(
            "{} unapproved destination(s): {}",
            dests.len(),
            dests
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "the host talks to destinations nobody approved",
        "add legitimate destinations to egress_allowlist.json; block the rest",
    )
    .evs(ev)
}
