//! OpenClaw's own configuration: who may message the agent (every channel and every account,
//! as OpenClaw merges them), group mentions, and a gateway bound to loopback with token auth,
//! cross-checked with what actually listens. When the `openclaw` CLI answers, its own
//! `security audit` is cited and its critical findings fail the check; occ-scan's reading of the
//! config (as the CLI resolves it, else the files) is judged either way.

use serde_json::Value;

use super::ctx::{why_not_cli, Ctx};
use super::network::{is_loopback, row_is_loopback};
use super::verdict::Verdict;
use crate::compliance::model::{or_dash, NetReport, Risk};
use crate::compliance::openclaw::channels::{self, Scope};
use crate::compliance::openclaw::security_audit::{Area, Finding};
use crate::compliance::openclaw::OcConfig;

fn openclaw_cfg<'c>(c: &'c Ctx) -> Result<&'c OcConfig, Verdict> {
    match &c.openclaw {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(Verdict::not_assessed(format!(
            "{} not found (is OpenClaw set up for this user?)",
            match &c.host.openclaw_instance {
                Ok(i) => i.describe(),
                Err(_) => "openclaw.json".into(),
            }
        ))),
        Err(e) => Err(Verdict::not_assessed(e.to_string())),
    }
}

/// `own` (occ-scan's verdict on the config) with OpenClaw's own `security audit` brought in:
/// its findings for `area` cited first, and a critical one makes the check a critical
/// violation whatever occ-scan's reading said. Without the audit, the evidence says why.
fn with_security_audit(c: &Ctx, area: Area, own: Verdict) -> Verdict {
    let audit = c
        .host
        .openclaw
        .as_ref()
        .and_then(|o| o.security_audit.as_ref());
    let a = match audit {
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            return front(
                own,
                vec![format!(
                    "openclaw security audit failed ({e}); judged from occ-scan's reading alone"
                )],
            )
        }
        None => {
            return front(
                own,
                vec![format!(
                    "openclaw security audit not run ({}); judged from occ-scan's reading alone",
                    why_not_cli(c.host)
                )],
            )
        }
    };
    let found = a.in_area(area);
    let mut ev = vec![format!(
        "openclaw security audit: {}; {} finding(s) for this control",
        a.counts(),
        found.len()
    )];
    ev.extend(
        found
            .iter()
            .map(|f| format!("openclaw security audit: {}", f.describe())),
    );
    let critical: Vec<&Finding> = found.iter().copied().filter(|f| f.critical()).collect();
    let Some(first) = critical.first() else {
        return front(own, ev);
    };
    let ids: Vec<&str> = critical.iter().map(|f| f.check_id.as_str()).collect();
    let mitigation = first
        .remediation
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| {
            if own.mitigation.is_empty() {
                "fix what `openclaw security audit` lists, then run it again".into()
            } else {
                own.mitigation.clone()
            }
        });
    let mut v = Verdict::violation(
        format!(
            "openclaw security audit: {} critical: {}",
            critical.len(),
            ids.join(", ")
        ),
        &format!("OpenClaw's own audit: {}", first.title),
        &mitigation,
    )
    .risk(Risk::Critical);
    v.evidence = ev;
    v.evidence
        .push(format!("occ-scan's reading: {}", own.observed));
    v.evidence.extend(own.evidence);
    v
}

fn front(mut v: Verdict, mut first: Vec<String>) -> Verdict {
    first.append(&mut v.evidence);
    v.evidence = first;
    v
}

fn channel_scopes(cfg: &OcConfig) -> channels::Channels {
    channels::read(cfg.value.get("channels").unwrap_or(&Value::Null))
}

/// Why a scope lets anyone in: `dmPolicy=open`, `allowFrom "*"`, `groupPolicy=open`.
fn open_reasons(s: &Scope) -> Vec<&'static str> {
    let mut r = Vec::new();
    if s.dm_policy == "open" {
        r.push("dmPolicy=open");
    }
    if s.allow_from.iter().any(|a| a.trim() == "*") {
        r.push("allowFrom \"*\"");
    }
    if s.group_policy == "open" {
        r.push("groupPolicy=open");
    }
    r
}

pub(super) fn channel_allowlist_configured(c: &Ctx) -> Verdict {
    let own = match openclaw_cfg(c) {
        Ok(cfg) => own_channel_allowlist(cfg),
        Err(v) => v,
    };
    with_security_audit(c, Area::Channels, own)
}

fn own_channel_allowlist(cfg: &OcConfig) -> Verdict {
    let chans = channel_scopes(cfg);
    let mut ev = vec![format!("read from {}", cfg.source)];
    ev.extend(chans.scopes.iter().map(Scope::describe));
    if !chans.disabled.is_empty() {
        ev.push(format!("disabled: {}", chans.disabled.join(", ")));
    }
    if chans.scopes.is_empty() {
        return Verdict::compliant("no inbound channels are enabled").evs(ev);
    }
    let open: Vec<String> = chans
        .scopes
        .iter()
        .filter_map(|s| {
            let r = open_reasons(s);
            (!r.is_empty()).then(|| format!("{} ({})", s.label, r.join(", ")))
        })
        .collect();
    if !open.is_empty() {
        return Verdict::violation(
            format!("open to anyone: {}", open.join("; ")),
            "anyone who can message the bot, or add it to a group, can instruct the agent",
            "set dmPolicy and groupPolicy to allowlist and replace \"*\" with the sender ids that \
             may talk to the agent, on the channel and on each account that overrides it",
        )
        .evs(ev);
    }
    let members: Vec<&str> = chans
        .scopes
        .iter()
        .filter(|s| s.groups_open())
        .map(|s| s.label.as_str())
        .collect();
    let unlisted: Vec<&str> = chans
        .scopes
        .iter()
        .filter(|s| s.allow_from.is_empty() && s.dm_policy != "disabled")
        .map(|s| s.label.as_str())
        .collect();
    if !chans.root_open.is_empty() {
        return Verdict::partial(
            format!(
                "open on the channel, overridden by every account: {}",
                chans.root_open.join("; ")
            ),
            "an account added later, or one that drops its override, is open to anyone",
            "set the channel's own dmPolicy and groupPolicy to allowlist too",
        )
        .evs(ev);
    }
    if !unlisted.is_empty() {
        return Verdict::partial(
            format!("without allowFrom: {}", unlisted.join(", ")),
            "unknown senders can still request pairing",
            "set allowFrom to the sender ids that may talk to the agent",
        )
        .evs(ev);
    }
    if !members.is_empty() {
        return Verdict::partial(
            format!(
                "any member of an allowed group may talk to the agent: {}",
                members.join(", ")
            ),
            "groupAllowFrom \"*\" admits every member of the listed groups",
            "list the member ids in groupAllowFrom instead of \"*\"",
        )
        .evs(ev);
    }
    Verdict::compliant(format!(
        "{} channel(s) and account(s), each limited to listed senders",
        chans.scopes.len()
    ))
    .evs(ev)
}

pub(super) fn group_mentions_required(c: &Ctx) -> Verdict {
    let own = match openclaw_cfg(c) {
        Ok(cfg) => own_group_mentions(cfg),
        Err(v) => v,
    };
    with_security_audit(c, Area::Mentions, own)
}

fn own_group_mentions(cfg: &OcConfig) -> Verdict {
    let mut with = Vec::new();
    let mut by_default = Vec::new();
    let mut without = Vec::new();
    let mut any_group = Vec::new();
    for s in channel_scopes(cfg).scopes {
        if s.groups_disabled() {
            continue;
        }
        if s.group_policy == "open" {
            any_group.push(s.label.clone());
        }
        let explicit = |p: &str| s.mentions.iter().find(|(q, _)| q == p).map(|(_, b)| *b);
        for (place, b) in &s.mentions {
            if *b {
                with.push(place.clone());
            } else {
                without.push(place.clone());
            }
        }
        // A group entry without its own requireMention takes the "*" entry's, else OpenClaw's
        // default: a mention is required.
        for entry in &s.group_entries {
            if explicit(entry).is_some() {
                continue;
            }
            let star = entry
                .rsplit_once('.')
                .map(|(parent, _)| format!("{parent}.*"));
            match star.as_deref().and_then(explicit) {
                Some(false) => without.push(format!("{entry} (from \"*\")")),
                Some(true) => with.push(format!("{entry} (from \"*\")")),
                None => by_default.push(entry.clone()),
            }
        }
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut ev = vec![
        format!("read from {}", cfg.source),
        format!("requireMention: {}", list(&with)),
        format!("no requireMention: {}", list(&without)),
        format!(
            "mention required by OpenClaw's default (unset): {}",
            list(&by_default)
        ),
    ];
    if !any_group.is_empty() {
        ev.push(format!(
            "groupPolicy=open (any group; mention gating still applies): {}",
            any_group.join(", ")
        ));
    }
    let required = with.len() + by_default.len();
    if without.is_empty() {
        if required == 0 && any_group.is_empty() {
            return Verdict::compliant("no group chats are configured").evs(ev);
        }
        return Verdict::compliant(format!(
            "every group needs a mention ({required} group setting(s), {} by OpenClaw's default)",
            by_default.len()
        ))
        .evs(ev);
    }
    if required == 0 {
        return Verdict::violation(
            "no group requires a mention",
            "every message in those groups reaches the agent",
            "set requireMention: true (or remove requireMention: false) on each group entry",
        )
        .evs(ev);
    }
    Verdict::partial(
        format!(
            "{} of {} group setting(s) require a mention",
            required,
            required + without.len()
        ),
        "some groups reach the agent without a mention",
        "set requireMention: true (or remove requireMention: false) on the remaining entries",
    )
    .evs(ev)
}

/// The gateway's port and where it comes from: `OPENCLAW_GATEWAY_PORT` in the running
/// gateway's environment (or the environment that selected the instance), else `gateway.port`,
/// else OpenClaw's default for the profile.
pub(super) fn gateway_port(c: &Ctx) -> (u16, String) {
    if let Some((pid, p)) = c.host.gateway.as_ref().and_then(|g| {
        g.env
            .get("OPENCLAW_GATEWAY_PORT")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .filter(|p| *p > 0)
            .map(|p| (g.pid, p))
    }) {
        return (
            p,
            format!("OPENCLAW_GATEWAY_PORT in the gateway's environment (pid {pid})"),
        );
    }
    let instance = c.host.openclaw_instance.as_ref().ok();
    if let Some(p) = instance.and_then(|i| i.env_gateway_port) {
        return (p, "OPENCLAW_GATEWAY_PORT".into());
    }
    if let Ok(Some(cfg)) = &c.openclaw {
        if let Some(p) = cfg
            .value
            .pointer("/gateway/port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
        {
            return (p, "gateway.port".into());
        }
    }
    match instance {
        Some(i) if i.profile.is_some() => (
            i.default_gateway_port(),
            format!(
                "OpenClaw's default for profile {}",
                i.profile.as_deref().unwrap_or_default()
            ),
        ),
        _ => (
            crate::compliance::openclaw::instance::DEFAULT_GATEWAY_PORT,
            "OpenClaw's default".into(),
        ),
    }
}

pub(super) fn gateway_loopback_only(c: &Ctx) -> Verdict {
    let own = match openclaw_cfg(c) {
        Ok(cfg) => own_gateway_loopback(c, cfg),
        Err(v) => v,
    };
    with_security_audit(c, Area::Gateway, own)
}

fn own_gateway_loopback(c: &Ctx, cfg: &OcConfig) -> Verdict {
    let gw = match cfg.value.get("gateway") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Verdict::violation(
                format!("openclaw.json gateway is not an object: {other}"),
                "the gateway's bind and auth cannot be established",
                "make gateway an object with bind \"loopback\" and auth.mode \"token\"",
            )
        }
    };
    let bind = gw
        .get("bind")
        .and_then(Value::as_str)
        .unwrap_or("loopback")
        .to_string();
    let auth = gw
        .get("auth")
        .filter(|a| a.is_object())
        .or_else(|| cfg.value.get("auth").filter(|a| a.is_object()));
    let mode = auth
        .and_then(|a| a.get("mode"))
        .and_then(Value::as_str)
        .unwrap_or("none")
        .to_string();
    let (port, port_from) = gateway_port(c);
    let mut ev = vec![
        format!("read from {}", cfg.source),
        format!("gateway.bind={bind}, auth.mode={mode}, port={port} ({port_from})"),
    ];
    // Cross-check with what actually listens on the gateway port.
    let exposed: Vec<String> = match &c.host.ports {
        NetReport::Ok(_) => c
            .host
            .ports
            .listeners()
            .iter()
            .filter(|l| l.port == Some(port.into()) && !row_is_loopback(l))
            .map(|l| or_dash(l.address.as_deref()).to_owned())
            .collect(),
        NetReport::Failed(e) => {
            ev.push(format!("listening sockets not checked: {e}"));
            Vec::new()
        }
    };
    if !exposed.is_empty() {
        ev.push(format!("port {port} listens on {}", exposed.join(", ")));
    }
    let loopback = bind == "loopback" || is_loopback(&bind);
    if !loopback || !exposed.is_empty() {
        let v = Verdict::violation(
            format!("the gateway is reachable beyond loopback (bind={bind})"),
            "other hosts can reach the agent's control plane",
            "set gateway.bind to \"loopback\" and restart the gateway",
        )
        .evs(ev);
        return if mode == "none" {
            v.risk(Risk::Critical)
        } else {
            v
        };
    }
    if mode != "token" {
        return Verdict::partial(
            format!("loopback only, but auth.mode is {mode}"),
            "any local process can drive the gateway",
            "set gateway.auth.mode to \"token\" with a generated token",
        )
        .evs(ev);
    }
    Verdict::compliant("the gateway binds loopback with token auth").evs(ev)
}

/// OpenClaw's file-permission findings (`fs.*`) for `secrets_permissions_hardened`: the
/// evidence to add, and whether one is critical.
pub(super) fn file_findings(c: &Ctx) -> (Vec<String>, Option<String>) {
    let Some(Ok(a)) = c
        .host
        .openclaw
        .as_ref()
        .and_then(|o| o.security_audit.as_ref())
    else {
        return (Vec::new(), None);
    };
    let found = a.in_area(Area::Files);
    let critical = found
        .iter()
        .filter(|f| f.critical())
        .map(|f| f.check_id.clone())
        .collect::<Vec<_>>();
    (
        found
            .iter()
            .map(|f| format!("openclaw security audit: {}", f.describe()))
            .collect(),
        (!critical.is_empty()).then(|| critical.join(", ")),
    )
}
