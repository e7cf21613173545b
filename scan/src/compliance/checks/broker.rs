//! The broker answers, and `sudo` resolves to occ's shim for every OpenClaw agent: occ's bin
//! is first in each agent's effective `tools.exec.pathPrepend` (an agent's own list replaces
//! the global one), as OpenClaw's CLI resolves its config.

use std::path::Path;

use occ_policy::openclaw::{self as oc, AgentPath};
use serde_json::Value;

use super::ctx::Ctx;
use super::verdict::Verdict;
use crate::compliance::facts::BrokerProbe;
use crate::compliance::model::Risk;
use crate::compliance::openclaw;
use crate::exec;

pub(super) fn broker_reachable(c: &Ctx) -> Verdict {
    match &c.host.broker {
        BrokerProbe::NoClient(e) | BrokerProbe::Unsupported(e) => Verdict::not_assessed(e.clone()),
        BrokerProbe::Down(e) => Verdict::violation(
            "the broker does not answer",
            "agent sudo calls fail closed (refused) until it is back",
            "start it (`occ broker`, or the occ-broker user unit)",
        )
        .ev(e.clone()),
        BrokerProbe::Up(v) => {
            let pid = v
                .get("pid")
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into());
            let ours = env!("CARGO_PKG_VERSION");
            match v.get("version").and_then(Value::as_str) {
                Some(theirs) if theirs != ours => Verdict::partial(
                    format!("the broker answers but runs version {theirs} (occ-scan is {ours})"),
                    "the running broker predates the installed binaries",
                    "restart the broker after upgrading occ",
                )
                .ev(format!("pid {pid}")),
                _ => Verdict::compliant("the broker answers `occ status`").ev(format!("pid {pid}")),
            }
        }
    }
}

/// Every OpenClaw agent's effective `pathPrepend` (the global list, and each agent's own list
/// that replaces it), from OpenClaw's own resolution when its CLI answered, else from
/// openclaw.json as occ-scan reads it; with where it came from.
fn agent_paths(c: &Ctx) -> (Vec<AgentPath>, String) {
    let cli = c.host.openclaw.as_ref().and_then(|o| o.exec_path.as_ref());
    if let Some(Ok(x)) = cli {
        return (
            oc::effective(x.global.as_ref(), x.entries.as_ref()),
            "`openclaw config get`".into(),
        );
    }
    let why_not_cli = match cli {
        Some(Err(e)) => format!("the CLI failed: {e}"),
        _ => super::ctx::why_not_cli(c.host),
    };
    // The config as occ-scan reads it (with its includes); the CLI's config view holds only
    // the keys other checks asked for, so read the file when that is what was loaded.
    let file = match &c.openclaw {
        Ok(Some(cfg)) if !cfg.from_cli => Ok(Some(cfg.value.clone())),
        _ => match &c.host.openclaw_instance {
            Ok(i) => openclaw::config::read(&i.config_path, &i.include_roots)
                .map(|r| r.map(|r| r.value))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        },
    };
    let (global, entries) = match &file {
        Ok(Some(cfg)) => (
            cfg.pointer("/tools/exec/pathPrepend").cloned(),
            cfg.pointer("/agents/entries").cloned(),
        ),
        _ => (None, None),
    };
    let path = c.host.openclaw_instance.as_ref().map_or_else(
        |_| "openclaw.json".to_string(),
        |i| i.config_path.display().to_string(),
    );
    let unread = match &file {
        Err(e) => format!("; it cannot be read: {e}"),
        Ok(None) => "; it does not exist".into(),
        Ok(Some(_)) => String::new(),
    };
    (
        oc::effective(global.as_ref(), entries.as_ref()),
        format!("{path} ({why_not_cli}){unread}"),
    )
}

pub(super) fn shim_first_in_path(c: &Ctx) -> Verdict {
    let shim = c.paths.shim();
    let Ok(shim_real) = std::fs::canonicalize(&shim) else {
        return Verdict::violation(
            format!("no shim at {}", shim.display()),
            "sudo cannot resolve to occ's shim",
            "install occ",
        );
    };
    let shim_dir = shim_real
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    // OpenClaw's exec puts each agent's pathPrepend first, inside the command, after the
    // login shell's PATH and then the gateway's own. Only the pathPrepend decides: the login
    // shell's PATH (unseen here) goes before the gateway's.
    let (agents, source) = agent_paths(c);
    let tail = match &c.host.gateway {
        Some(g) => match &g.path_env {
            Ok(Some(p)) => p.clone(),
            _ => String::new(),
        },
        None => c.host.own_path.clone().unwrap_or_default(),
    };
    let mut bad = Vec::new();
    let mut bypass = false;
    for a in &agents {
        let first_is_shim = a
            .dirs
            .first()
            .and_then(|d| std::fs::canonicalize(d).ok())
            .is_some_and(|d| d == shim_dir);
        if first_is_shim {
            continue;
        }
        let searched = [a.dirs.join(":"), tail.clone()]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(":");
        let sudo = resolve_sudo(&searched, &shim_real);
        bypass |= !sudo.ends_with("(the shim)");
        bad.push(if a.dirs.is_empty() {
            format!(
                "{}: no pathPrepend, so the login shell's PATH decides ({sudo} after the gateway's PATH)",
                a.label()
            )
        } else {
            format!("{}: {} first ({sudo})", a.label(), a.dirs[0])
        });
    }
    let keys: Vec<&str> = agents.iter().map(|a| a.key.as_str()).collect();
    if !bad.is_empty() {
        let v = Verdict::violation(
            format!("occ's shim is not first in OpenClaw's exec PATH for {}", bad.join("; ")),
            "the agent's sudo may bypass occ",
            "run `occ install` again: it puts OCC_HOME/bin first in tools.exec.pathPrepend and in every agent's own list",
        )
        .ev(format!("read from {source}: {}", keys.join(", ")));
        return if bypass { v.risk(Risk::Critical) } else { v };
    }
    let ev = format!(
        "{} first in {} (read from {source})",
        shim_dir.display(),
        keys.join(", ")
    );
    let Some(g) = &c.host.gateway else {
        return Verdict::partial(
            "tools.exec.pathPrepend puts the shim first for every agent; the gateway is not running to confirm",
            "the gateway's real environment could not be checked",
            "start the gateway and run occ-scan again",
        )
        .ev(ev);
    };
    if let Err(e) = &g.path_env {
        return Verdict::not_assessed(e.clone()).ev(ev);
    }
    Verdict::compliant("sudo resolves to occ's shim for every OpenClaw agent: its bin is first in each effective pathPrepend")
        .ev(format!("{ev}; gateway pid {} PATH={tail}", g.pid))
}

fn resolve_sudo(path: &str, shim_real: &Path) -> String {
    match exec::which_in("sudo", std::ffi::OsStr::new(path)) {
        Some(p) => {
            let is_shim = std::fs::canonicalize(&p).is_ok_and(|r| r == shim_real);
            format!(
                "sudo -> {}{}",
                p.display(),
                if is_shim { " (the shim)" } else { "" }
            )
        }
        None => "no sudo".into(),
    }
}
