//! OpenClaw's own configuration (`openclaw.json`): who may message the agent, group mentions,
//! and a gateway bound to loopback with token auth, cross-checked with what actually listens.

use serde_json::Value;

use super::ctx::Ctx;
use super::network::{is_loopback, row_is_loopback};
use super::verdict::Verdict;
use crate::compliance::model::{or_dash, NetReport, Risk};

fn openclaw_cfg<'c>(c: &'c Ctx) -> Result<&'c Value, Verdict> {
    match &c.openclaw {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(Verdict::not_assessed(format!(
            "{} not found (is OpenClaw set up for this user?)",
            c.paths.openclaw_json().display()
        ))),
        Err(e) => Err(Verdict::not_assessed(e.to_string())),
    }
}

fn enabled_channels(cfg: &Value) -> Vec<(&String, &Value)> {
    cfg.get("channels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, ch)| {
                    ch.is_object() && ch.get("enabled").and_then(Value::as_bool) != Some(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn channel_allowlist_configured(c: &Ctx) -> Verdict {
    let cfg = match openclaw_cfg(c) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let channels = enabled_channels(cfg);
    if channels.is_empty() {
        return Verdict::compliant("no inbound channels are enabled");
    }
    let mut open = Vec::new();
    let mut unlisted = Vec::new();
    let mut ev = Vec::new();
    for (name, ch) in &channels {
        let allow: Vec<String> = ch
            .get("allowFrom")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                    .collect()
            })
            .unwrap_or_default();
        let dm = ch
            .get("dmPolicy")
            .and_then(Value::as_str)
            .unwrap_or("pairing");
        ev.push(format!(
            "{name}: dmPolicy={dm}, allowFrom={} entries",
            allow.len()
        ));
        if dm == "open" || allow.iter().any(|a| a.trim() == "*") {
            open.push((*name).clone());
        } else if allow.is_empty() && dm != "disabled" {
            unlisted.push((*name).clone());
        }
    }
    if !open.is_empty() {
        return Verdict::violation(
            format!("channel(s) open to anyone: {}", open.join(", ")),
            "anyone who can message the bot can instruct the agent",
            "replace \"*\" with the sender ids that may talk to the agent, and set dmPolicy to allowlist",
        )
        .evs(ev);
    }
    if !unlisted.is_empty() {
        return Verdict::partial(
            format!("channel(s) without allowFrom: {}", unlisted.join(", ")),
            "unknown senders can still request pairing",
            "set allowFrom to the sender ids that may talk to the agent",
        )
        .evs(ev);
    }
    Verdict::compliant(format!(
        "{} channel(s), each limited to listed senders",
        channels.len()
    ))
    .evs(ev)
}

pub(super) fn group_mentions_required(c: &Ctx) -> Verdict {
    let cfg = match openclaw_cfg(c) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let mut with = Vec::new();
    let mut without = Vec::new();
    for (name, ch) in enabled_channels(cfg) {
        if ch.get("groupPolicy").and_then(Value::as_str) == Some("disabled") {
            continue;
        }
        let Some(groups) = ch.get("groups").and_then(Value::as_object) else {
            continue;
        };
        for (g, gv) in groups {
            let key = format!("{name}.groups.{g}");
            if gv.get("requireMention").and_then(Value::as_bool) == Some(true) {
                with.push(key);
            } else {
                without.push(key);
            }
        }
    }
    if with.is_empty() && without.is_empty() {
        return Verdict::compliant("no group chats are configured");
    }
    let ev = vec![
        format!(
            "requireMention: {}",
            if with.is_empty() {
                "-".into()
            } else {
                with.join(", ")
            }
        ),
        format!(
            "no requireMention: {}",
            if without.is_empty() {
                "-".into()
            } else {
                without.join(", ")
            }
        ),
    ];
    if without.is_empty() {
        return Verdict::compliant(format!(
            "all {} group entries require a mention",
            with.len()
        ))
        .evs(ev);
    }
    if with.is_empty() {
        return Verdict::violation(
            "no group requires a mention",
            "every message in those groups reaches the agent",
            "set requireMention: true on each group entry",
        )
        .evs(ev);
    }
    Verdict::partial(
        format!(
            "{} of {} group entries require a mention",
            with.len(),
            with.len() + without.len()
        ),
        "some groups reach the agent without a mention",
        "set requireMention: true on the remaining group entries",
    )
    .evs(ev)
}

pub(super) fn gateway_loopback_only(c: &Ctx) -> Verdict {
    let cfg = match openclaw_cfg(c) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let gw = match cfg.get("gateway") {
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
        .or_else(|| cfg.get("auth").filter(|a| a.is_object()));
    let mode = auth
        .and_then(|a| a.get("mode"))
        .and_then(Value::as_str)
        .unwrap_or("none")
        .to_string();
    let port = gw.get("port").and_then(Value::as_u64).unwrap_or(18789);
    let mut ev = vec![format!(
        "openclaw.json: gateway.bind={bind}, auth.mode={mode}, port={port}"
    )];
    // Cross-check with what actually listens on the gateway port.
    let exposed: Vec<String> = match &c.host.ports {
        NetReport::Ok(_) => c
            .host
            .ports
            .listeners()
            .iter()
            .filter(|l| l.port == Some(port) && !row_is_loopback(l))
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
