//! The shim and approval: occ's shim is the agent's sudo, a human approves every privileged
//! command, the agent is unprivileged and limited, and grants expire. A shim that cannot be
//! verified against the install manifest never counts as installed.

use occ_policy::file::Module;

use super::ctx::{broker_cfg, broker_cfg_installed, rule_counts, stack_requires, stack_text, Ctx};
use super::verdict::Verdict;
use crate::compliance::files;
use crate::compliance::model::{Risk, Status};
use crate::compliance::util;

pub(super) fn runtime_privilege_hook_installed(c: &Ctx) -> Verdict {
    use std::os::unix::fs::MetadataExt;
    let shim = c.paths.shim();
    let meta = match std::fs::metadata(&shim) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Verdict::violation(
                format!("no shim at {}", shim.display()),
                "agent sudo calls do not go through occ",
                "install occ (`occ install`), which writes the shim and its manifest",
            )
            .risk(Risk::High)
        }
        Err(e) => return Verdict::not_assessed(format!("{}: {e}", shim.display())),
    };
    if !meta.is_file() || meta.mode() & 0o111 == 0 {
        return Verdict::violation(
            format!("{} is not an executable file", shim.display()),
            "the shim cannot run",
            "reinstall occ",
        );
    }
    let digest = match util::sha256_file(&shim) {
        Ok(d) => d,
        Err(e) => return Verdict::not_assessed(format!("{}: cannot hash: {e}", shim.display())),
    };
    let manifest_path = c.paths.install_manifest();
    let manifest = match files::manifest_digests(&manifest_path) {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Verdict::not_assessed(format!(
                "{} is missing, so the shim cannot be told apart from a stand-in",
                manifest_path.display()
            ))
            .ev(format!("shim sha256 {digest}"))
        }
        Err(e) => return Verdict::not_assessed(e.to_string()),
    };
    let expected = manifest.get(&shim).or_else(|| {
        manifest
            .iter()
            .find(|(p, _)| p.ends_with("bin/sudo"))
            .map(|(_, h)| h)
    });
    let Some(expected) = expected else {
        return Verdict::not_assessed(format!(
            "{} lists no bin/sudo digest",
            manifest_path.display()
        ));
    };
    if &digest != expected {
        return Verdict::violation(
            format!(
                "{} is not occ's shim (sha256 differs from the install manifest)",
                shim.display()
            ),
            "a stand-in sudo can run anything without approval",
            "reinstall occ and find out who replaced the shim",
        )
        .ev(format!("shim sha256 {digest}"))
        .ev(format!("manifest sha256 {expected}"));
    }
    let owner_ok = meta.uid() == 0 || meta.uid() == c.host.agent.uid;
    if meta.mode() & 0o022 != 0 || !owner_ok {
        return Verdict::partial(
            format!(
                "occ's shim, but mode {:o} owner uid {}",
                meta.mode() & 0o7777,
                meta.uid()
            ),
            "another user can replace the shim",
            "chmod 0755 the shim and keep it owned by its user or root",
        )
        .ev(format!("shim sha256 {digest} matches the manifest"));
    }
    Verdict::compliant(format!("{} is occ's shim", shim.display()))
        .ev(format!(
            "sha256 {digest} matches {}",
            manifest_path.display()
        ))
        .ev(format!(
            "mode {:o}, owner uid {}",
            meta.mode() & 0o7777,
            meta.uid()
        ))
}

pub(super) fn privilege_approval_required(c: &Ctx) -> Verdict {
    let (cfg, src) = match broker_cfg(c) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let stack = &cfg.approval.stack;
    let ev_stack = format!("approval stack ({src}): {}", stack_text(stack));
    if !stack_requires(stack, Module::Approve) {
        return Verdict::violation(
            "the approval stack does not require a human decision",
            "privileged commands can run without a person approving them",
            "put \"approve:required\" back into broker.json approval.stack",
        )
        .ev(ev_stack);
    }
    if cfg.approval.channels.is_empty() {
        return Verdict::violation(
            "no approval channel is configured",
            "nobody can approve, or a misconfigured broker may skip approval",
            "set approval.channels to [\"queue\"]",
        )
        .ev(ev_stack);
    }
    let hook = runtime_privilege_hook_installed(c);
    match hook.status {
        Status::Compliant => Verdict::compliant("a human approves every privileged command")
            .ev(ev_stack)
            .evs(hook.evidence),
        Status::Violation => Verdict::violation(
            "approval is configured but the shim is missing or not occ's",
            "sudo calls bypass the broker, so the approval requirement is not in force",
            "reinstall occ's shim (see runtime_privilege_hook_installed)",
        )
        .ev(ev_stack)
        .ev(hook.observed)
        .evs(hook.evidence),
        Status::Partial | Status::NotAssessed => Verdict::partial(
            "approval is configured; the shim could not be fully verified",
            "without a verified shim the approval requirement may be bypassed",
            "see runtime_privilege_hook_installed",
        )
        .ev(ev_stack)
        .ev(hook.observed),
    }
}

pub(super) fn least_privilege_enforced(c: &Ctx) -> Verdict {
    let policy = match &c.policy.command {
        Err(e) => return Verdict::not_assessed(files::describe(e)),
        Ok(p) => p.as_ref().map(rule_counts),
    };
    let gw = match &c.host.gateway {
        Some(g) => match g.uid {
            Some(0) => {
                return Verdict::violation(
                    format!("the OpenClaw gateway (pid {}) runs as root", g.pid),
                    "the agent already has every privilege; occ cannot gate it",
                    "run the gateway as an unprivileged user",
                )
                .risk(Risk::Critical)
            }
            Some(u) => Some(format!("gateway pid {} runs as uid {u}", g.pid)),
            None => None,
        },
        None => None,
    };
    let allow_rules = policy.map_or(0, |[allow, allow_exact, _, _]| allow + allow_exact);
    let policy_ev = match policy {
        None => "command-policy.json absent".to_string(),
        Some([allow, allow_exact, deny, deny_exact]) => format!(
            "command-policy.json: {allow} allow, {allow_exact} allow_exact, {deny} deny, {deny_exact} deny_exact"
        ),
    };
    if allow_rules == 0 {
        return Verdict::partial(
            "no command allowlist: any command may be requested",
            "each command still needs approval, but nothing narrows what can be asked",
            "list the commands the agent needs in command-policy.json \"allow\"",
        )
        .ev(policy_ev)
        .evs(gw);
    }
    match gw {
        Some(g) => Verdict::compliant("the agent is unprivileged and limited to an allowlist")
            .ev(policy_ev)
            .ev(g),
        None => Verdict::partial(
            "command allowlist in force; the gateway's uid could not be checked",
            "the OpenClaw gateway was not found running, so its privileges are unknown",
            "start the gateway and re-run, or run occ-scan as its user",
        )
        .ev(policy_ev),
    }
}

pub(super) fn elevation_timeout_30m(c: &Ctx) -> Verdict {
    let (cfg, src) = match broker_cfg_installed(c) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let idle = cfg.session.idle_timeout_minutes;
    let pending = cfg.approval.pending_expiry_minutes;
    let ev = format!(
        "{src}: session.idle_timeout_minutes={idle}, approval.pending_expiry_minutes={pending}"
    );
    if idle == 0 || idle > 120 {
        return Verdict::violation(
            format!("session grants last {idle} idle minutes"),
            "an approved session stays open far beyond 30 minutes",
            "set session.idle_timeout_minutes to 30 or less",
        )
        .ev(ev);
    }
    if idle > 30 || pending > 30 {
        return Verdict::partial(
            format!("idle timeout {idle} min, pending expiry {pending} min"),
            "grants or pending requests outlive 30 minutes",
            "set session.idle_timeout_minutes and approval.pending_expiry_minutes to 30 or less",
        )
        .ev(ev);
    }
    Verdict::compliant(format!("grants end after {idle} idle minutes")).ev(ev)
}
