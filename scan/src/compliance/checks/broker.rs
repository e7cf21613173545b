//! The broker answers, and `sudo` resolves to occ's shim in the PATH the OpenClaw gateway
//! really uses (its /proc environ, after `tools.exec.pathPrepend`).

use std::path::Path;

use serde_json::Value;

use super::ctx::Ctx;
use super::verdict::Verdict;
use crate::compliance::facts::BrokerProbe;
use crate::compliance::model::Risk;
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

pub(super) fn shim_first_in_path(c: &Ctx) -> Verdict {
    let shim = c.paths.shim();
    let Ok(shim_real) = std::fs::canonicalize(&shim) else {
        return Verdict::violation(
            format!("no shim at {}", shim.display()),
            "sudo cannot resolve to occ's shim",
            "install occ",
        );
    };
    let own = c
        .host
        .own_path
        .as_deref()
        .map(|p| resolve_sudo(p, &shim_real))
        .unwrap_or_else(|| "PATH unset".into());
    // OpenClaw's exec tool puts tools.exec.pathPrepend before the gateway's own PATH.
    let prepend: Vec<String> = match &c.openclaw {
        Ok(Some(cfg)) => match cfg.pointer("/tools/exec/pathPrepend") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            Some(Value::String(s)) => s.split(':').map(String::from).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let prepend = prepend.join(":");
    let Some(g) = &c.host.gateway else {
        if !prepend.is_empty()
            && exec::which_in("sudo", std::ffi::OsStr::new(&prepend))
                .and_then(|f| std::fs::canonicalize(f).ok())
                .is_some_and(|r| r == shim_real)
        {
            return Verdict::partial(
                "openclaw.json tools.exec.pathPrepend puts the shim first; the gateway is not running to confirm",
                "the gateway's real environment could not be checked",
                "start the gateway and run occ-scan again",
            )
            .ev(format!("tools.exec.pathPrepend={prepend}"));
        }
        return Verdict::not_assessed(
            "the OpenClaw gateway is not running, so its PATH cannot be checked",
        )
        .ev(format!("occ-scan's own PATH: {own}"));
    };
    let gw_path = match &g.path_env {
        Err(e) => return Verdict::not_assessed(e.clone()),
        Ok(None) if prepend.is_empty() => {
            return Verdict::violation(
                format!("the gateway (pid {}) has no PATH", g.pid),
                "sudo resolves by the default search path, not to the shim",
                "set PATH for the gateway with OCC_HOME/bin first",
            )
        }
        Ok(None) => String::new(),
        Ok(Some(p)) => p.clone(),
    };
    let path_owned = match (prepend.is_empty(), gw_path.is_empty()) {
        (true, _) => gw_path.clone(),
        (false, true) => prepend.clone(),
        (false, false) => format!("{prepend}:{gw_path}"),
    };
    let path = path_owned.as_str();
    let first = exec::which_in("sudo", std::ffi::OsStr::new(path));
    let ev = if prepend.is_empty() {
        format!("gateway pid {} PATH={gw_path}", g.pid)
    } else {
        format!(
            "gateway pid {} PATH={gw_path}, after tools.exec.pathPrepend={prepend}",
            g.pid
        )
    };
    match first.and_then(|f| std::fs::canonicalize(&f).ok().map(|r| (f, r))) {
        Some((f, real)) if real == shim_real => {
            // A directory searched before the shim's that others can write lets them plant a
            // sudo that wins.
            use std::os::unix::fs::MetadataExt;
            let shim_dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
            let open: Vec<String> = std::env::split_paths(std::ffi::OsStr::new(path))
                .take_while(|d| *d != shim_dir)
                .filter(|d| std::fs::metadata(d).is_ok_and(|m| m.mode() & 0o002 != 0))
                .map(|d| d.display().to_string())
                .collect();
            if open.is_empty() {
                Verdict::compliant("sudo resolves to occ's shim in the gateway's PATH").ev(ev)
            } else {
                Verdict::partial(
                    format!("the shim is first, but {} precede(s) it and are world-writable", open.join(", ")),
                    "anyone can plant a sudo that wins over the shim",
                    "remove world-writable directories from the gateway's PATH, or put OCC_HOME/bin first",
                )
                .ev(ev)
            }
        }
        Some((f, _)) => Verdict::violation(
            format!("sudo resolves to {} in the gateway's PATH", f.display()),
            "the agent's sudo bypasses occ",
            "put OCC_HOME/bin first in the gateway's PATH (occ install does this) and restart it",
        )
        .ev(ev)
        .risk(Risk::Critical),
        None => Verdict::violation(
            "no sudo on the gateway's PATH",
            "the shim is not on the agent's PATH",
            "put OCC_HOME/bin first in the gateway's PATH and restart it",
        )
        .ev(ev),
    }
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
