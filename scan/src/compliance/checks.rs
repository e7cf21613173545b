//! The 23 checks. Each reads evidence (occ's files, OpenClaw's config, the host probes and the
//! scan reports) and returns a verdict with what it saw. A check that cannot gather its
//! evidence returns `not_assessed` with the error; presence alone never makes a check pass.

#![allow(
    clippy::result_large_err,
    reason = "the Err side is the check's final verdict, built once per check"
)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use occ_policy::file::{Fsync, Module, StackEntry};
use occ_policy::rule::ListKind;
use occ_policy::{BrokerConfig, CommandPolicy, FileError};

use super::audit::AuditOutcome;
use super::facts::{BrokerProbe, Host};
use super::files::{self, EgressRule, PolicyFiles};
use super::model::{num_or_dash, or_dash, NetReport, NetRow, Risk, Status};
use super::util;
use crate::error::ScanError;
use crate::exec;
use crate::paths::Paths;

/// Every check id, in the controls map's order.
pub const CHECK_IDS: [&str; 23] = [
    "privilege_approval_required",
    "least_privilege_enforced",
    "elevation_timeout_30m",
    "audit_logging_privileged_actions",
    "open_ports_approved",
    "insecure_ports_remediated",
    "channel_allowlist_configured",
    "group_mentions_required",
    "gateway_loopback_only",
    "secrets_permissions_hardened",
    "runtime_privilege_hook_installed",
    "alternate_privilege_paths_restricted",
    "backup_configured",
    "update_hygiene",
    "prompt_injection_controls",
    "command_policy_enforced",
    "session_boundary_enforced",
    "multi_factor_approval",
    "egress_allowlist_configured",
    "egress_connections_approved",
    "audit_log_integrity",
    "broker_reachable",
    "shim_first_in_path",
];

/// What one check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The status.
    pub status: Status,
    /// One line: what was observed.
    pub observed: String,
    /// The facts behind it.
    pub evidence: Vec<String>,
    /// What is missing (empty when compliant).
    pub gap: String,
    /// What to do (empty when compliant).
    pub mitigation: String,
    /// Why the check could not run (not_assessed only).
    pub error: Option<String>,
    /// Risk override (e.g. critical exposure); else derived from the map.
    pub risk: Option<Risk>,
}

impl Verdict {
    fn new(status: Status, observed: impl Into<String>) -> Verdict {
        Verdict {
            status,
            observed: observed.into(),
            evidence: Vec::new(),
            gap: String::new(),
            mitigation: String::new(),
            error: None,
            risk: None,
        }
    }

    /// Compliant.
    pub fn compliant(observed: impl Into<String>) -> Verdict {
        Verdict::new(Status::Compliant, observed)
    }

    /// Partial, with the gap and the fix.
    pub fn partial(observed: impl Into<String>, gap: &str, mitigation: &str) -> Verdict {
        let mut v = Verdict::new(Status::Partial, observed);
        v.gap = gap.into();
        v.mitigation = mitigation.into();
        v
    }

    /// Violation, with the gap and the fix.
    pub fn violation(observed: impl Into<String>, gap: &str, mitigation: &str) -> Verdict {
        let mut v = Verdict::new(Status::Violation, observed);
        v.gap = gap.into();
        v.mitigation = mitigation.into();
        v
    }

    /// Not assessed, with the error.
    pub fn not_assessed(error: impl Into<String>) -> Verdict {
        let e = error.into();
        let mut v = Verdict::new(Status::NotAssessed, format!("not assessed: {e}"));
        v.error = Some(e);
        v.gap = "the evidence for this control could not be gathered".into();
        v.mitigation = "fix the error shown, then run `occ-scan assess` again".into();
        v
    }

    fn ev(mut self, e: impl Into<String>) -> Verdict {
        self.evidence.push(e.into());
        self
    }

    fn evs(mut self, e: impl IntoIterator<Item = String>) -> Verdict {
        self.evidence.extend(e);
        self
    }

    fn risk(mut self, r: Risk) -> Verdict {
        self.risk = Some(r);
        self
    }
}

/// A loaded file: its value, absent, or the error (read errors are not_assessed; content
/// errors are findings).
pub type Loaded<T> = Result<Option<T>, ScanError>;

/// All the evidence the checks read, gathered once per run.
pub struct Ctx<'a> {
    /// occ's paths.
    pub paths: &'a Paths,
    /// When the run happened.
    pub now: SystemTime,
    /// Host probes and scan reports.
    pub host: &'a Host,
    /// The audit verifier's result.
    pub audit: &'a AuditOutcome,
    /// The policy files, each as the broker loads it.
    policy: PolicyFiles,
    egress_rules: Loaded<Vec<EgressRule>>,
    openclaw: Loaded<Value>,
    env: Loaded<std::collections::BTreeMap<String, String>>,
    /// What the broker's own loader (occ-policy) refuses in `security/`, as it would read it.
    broker_refuses: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// Loads occ's and OpenClaw's files for one run.
    pub fn load(
        paths: &'a Paths,
        now: SystemTime,
        host: &'a Host,
        audit: &'a AuditOutcome,
    ) -> Self {
        let reader = paths.reader_uid();
        Ctx {
            paths,
            now,
            host,
            audit,
            policy: PolicyFiles::load(paths, reader),
            egress_rules: files::egress_allowlist(&paths.security_file("egress_allowlist.json")),
            openclaw: files::openclaw_config(&paths.openclaw_json()),
            env: files::env_file(&paths.home.join("env")),
            broker_refuses: occ_policy::load(&paths.security(), reader, &|_| None)
                .err()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

/// Runs one check by id; `None` for an unknown id.
pub fn run(id: &str, c: &Ctx) -> Option<Verdict> {
    Some(match id {
        "privilege_approval_required" => privilege_approval_required(c),
        "least_privilege_enforced" => least_privilege_enforced(c),
        "elevation_timeout_30m" => elevation_timeout_30m(c),
        "audit_logging_privileged_actions" => audit_logging_privileged_actions(c),
        "open_ports_approved" => open_ports_approved(c),
        "insecure_ports_remediated" => insecure_ports_remediated(c),
        "channel_allowlist_configured" => channel_allowlist_configured(c),
        "group_mentions_required" => group_mentions_required(c),
        "gateway_loopback_only" => gateway_loopback_only(c),
        "secrets_permissions_hardened" => secrets_permissions_hardened(c),
        "runtime_privilege_hook_installed" => runtime_privilege_hook_installed(c),
        "alternate_privilege_paths_restricted" => alternate_privilege_paths_restricted(c),
        "backup_configured" => backup_configured(c),
        "update_hygiene" => update_hygiene(c),
        "prompt_injection_controls" => prompt_injection_controls(c),
        "command_policy_enforced" => command_policy_enforced(c),
        "session_boundary_enforced" => session_boundary_enforced(c),
        "multi_factor_approval" => multi_factor_approval(c),
        "egress_allowlist_configured" => egress_allowlist_configured(c),
        "egress_connections_approved" => egress_connections_approved(c),
        "audit_log_integrity" => audit_log_integrity(c),
        "broker_reachable" => broker_reachable(c),
        "shim_first_in_path" => shim_first_in_path(c),
        _ => return None,
    })
}

fn is_read_error(e: &ScanError) -> bool {
    matches!(e, ScanError::Read { .. })
}

/// broker.json or its documented defaults; `Err` holds a not_assessed verdict.
fn broker_cfg(c: &Ctx) -> Result<(BrokerConfig, &'static str), Verdict> {
    match &c.policy.broker {
        Ok(Some(b)) => Ok((b.clone(), "broker.json")),
        Ok(None) => Ok((
            BrokerConfig::default(),
            "broker.json absent, DESIGN defaults",
        )),
        Err(e) => Err(Verdict::not_assessed(files::describe(e))),
    }
}

/// broker.json for checks that could pass on its defaults alone: without broker.json, a shim
/// or an install manifest there is no broker whose defaults would apply.
fn broker_cfg_installed(c: &Ctx) -> Result<(BrokerConfig, &'static str), Verdict> {
    let installed = c.paths.shim().exists() || c.paths.install_manifest().exists();
    if matches!(c.policy.broker, Ok(None)) && !installed {
        return Err(Verdict::not_assessed(format!(
            "occ is not installed in {} (no security/broker.json, bin/sudo or install-manifest.json)",
            c.paths.home.display()
        )));
    }
    broker_cfg(c)
}

/// Whether the stack holds `module` as requisite or required.
fn stack_requires(stack: &[StackEntry], module: Module) -> bool {
    use occ_policy::file::Control;
    stack
        .iter()
        .any(|e| e.module == module && matches!(e.control, Control::Required | Control::Requisite))
}

/// The stack as written in broker.json (`files:requisite, …`).
fn stack_text(stack: &[StackEntry]) -> String {
    stack
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rules per list of command-policy.json: allow, allow_exact, deny, deny_exact.
fn rule_counts(p: &CommandPolicy) -> [usize; 4] {
    let count = |list: ListKind| {
        p.allow
            .rules()
            .iter()
            .chain(p.deny.rules())
            .filter(|r| r.id.list == list)
            .count()
    };
    [
        count(ListKind::Allow),
        count(ListKind::AllowExact),
        count(ListKind::Deny),
        count(ListKind::DenyExact),
    ]
}

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

// ---------------------------------------------------------------------------------------------
// The shim and approval.

fn runtime_privilege_hook_installed(c: &Ctx) -> Verdict {
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

fn privilege_approval_required(c: &Ctx) -> Verdict {
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

fn least_privilege_enforced(c: &Ctx) -> Verdict {
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

fn elevation_timeout_30m(c: &Ctx) -> Verdict {
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

// ---------------------------------------------------------------------------------------------
// Audit.

fn audit_logging_privileged_actions(c: &Ctx) -> Verdict {
    let log = c.paths.security_file("privileged-audit.jsonl");
    let size = match std::fs::metadata(&log) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Verdict::violation(
                format!("no audit log at {}", log.display()),
                "privileged actions leave no record",
                "start the broker (`occ broker`) so it creates and writes the log",
            )
        }
        Err(e) => return Verdict::not_assessed(format!("{}: {e}", log.display())),
    };
    let (cfg, src) = match broker_cfg(c) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let fsync = match cfg.audit.fsync {
        Fsync::Always => "always",
        Fsync::Batch => "batch",
    };
    let mut ev = vec![
        format!("{}: {size} bytes", log.display()),
        format!("{src}: audit.fsync={fsync}"),
    ];
    // What the running broker says it does (it follows broker.json at each request).
    if let BrokerProbe::Up(status) = &c.host.broker {
        if let Some(mode) = status["audit"]["fsync"].as_str() {
            ev.push(format!(
                "the running broker reports audit.fsync={mode}, {} sync(s) before answers",
                status["audit"]["syncs_before_answers"]
            ));
        }
    }
    if size == 0 {
        return Verdict::partial(
            "the audit log is empty",
            "no privileged action has been recorded yet",
            "run one approved command and check `occ audit show`",
        )
        .evs(ev);
    }
    if let AuditOutcome::Broken { breaks, .. } = c.audit {
        return Verdict::partial(
            "the audit log is written but its chain is broken",
            "records may have been altered or removed",
            "see audit_log_integrity and `occ audit verify`",
        )
        .evs(ev)
        .evs(breaks.iter().take(3).cloned());
    }
    if fsync != "always" {
        return Verdict::partial(
            format!("audit.fsync is {fsync}"),
            "a crash can lose the last records",
            "set audit.fsync to \"always\" in broker.json",
        )
        .evs(ev);
    }
    if !c.paths.security_file("audit-head.json").exists() {
        return Verdict::partial(
            "no audit-head.json beside the log",
            "a cut tail of the log cannot be detected",
            "let the broker write audit-head.json (it does on every append)",
        )
        .evs(ev);
    }
    Verdict::compliant("the broker records privileged actions durably").evs(ev)
}

fn audit_log_integrity(c: &Ctx) -> Verdict {
    match c.audit {
        AuditOutcome::NoLog(p) => Verdict::not_assessed(format!("no audit log at {p} to verify")),
        AuditOutcome::Unavailable(why) | AuditOutcome::Error(why) => {
            Verdict::not_assessed(why.clone())
        }
        AuditOutcome::Broken { breaks, events } => Verdict::violation(
            format!("the audit chain is broken ({} break(s))", breaks.len()),
            "audit records were altered, removed or reordered",
            "run `occ audit verify` and investigate each break; keep the log as evidence",
        )
        .ev(format!("{events} events checked"))
        .evs(breaks.iter().take(5).cloned())
        .risk(Risk::Critical),
        AuditOutcome::Intact {
            events,
            new_events,
            head_checked,
            last_seq,
        } => {
            let ev = format!(
                "{events} events intact up to seq {}; {new_events} verified this run from the checkpoint",
                last_seq.map_or("-".into(), |s| s.to_string())
            );
            if *head_checked {
                Verdict::compliant("the audit chain verifies and matches its head").ev(ev)
            } else {
                Verdict::partial(
                    "the chain verifies but there is no head checkpoint",
                    "a cut tail would go unnoticed",
                    "let the broker write audit-head.json",
                )
                .ev(ev)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Network.

fn sock_key(f: &NetRow) -> String {
    format!(
        "{}:{}/{}",
        or_dash(f.address.as_deref()),
        num_or_dash(f.port),
        or_dash(f.protocol.as_deref())
    )
}

/// Whether a row's local address is loopback (an unknown address is not).
fn row_is_loopback(f: &NetRow) -> bool {
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

fn open_ports_approved(c: &Ctx) -> Verdict {
    let r = &c.host.ports;
    if let Some(v) = net_failed(r) {
        return v;
    }
    let unapproved = r.findings_of("unapproved-port");
    let keys: BTreeSet<String> = unapproved.iter().map(|f| sock_key(f)).collect();
    let public = unapproved.iter().any(|f| !row_is_loopback(f));
    let ev = scan_ev(r, "port");
    if keys.is_empty() {
        return Verdict::compliant(format!(
            "all {} listening sockets are in approved_ports.json",
            r.listeners().len()
        ))
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

fn insecure_ports_remediated(c: &Ctx) -> Verdict {
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

fn egress_allowlist_configured(c: &Ctx) -> Verdict {
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

fn egress_connections_approved(c: &Ctx) -> Verdict {
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

// ---------------------------------------------------------------------------------------------
// OpenClaw's configuration.

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

fn channel_allowlist_configured(c: &Ctx) -> Verdict {
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

fn group_mentions_required(c: &Ctx) -> Verdict {
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

fn gateway_loopback_only(c: &Ctx) -> Verdict {
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

// ---------------------------------------------------------------------------------------------
// Files and host.

fn secrets_permissions_hardened(c: &Ctx) -> Verdict {
    use std::os::unix::fs::MetadataExt;
    let home = &c.paths.home;
    if let Err(e) = std::fs::metadata(home) {
        return Verdict::not_assessed(format!("{}: {e}", home.display()));
    }
    let secrets = [
        c.paths.openclaw_json(),
        home.join("env"),
        c.paths.security_file("audit-seal.key"),
        c.paths.security_file("broker.json"),
    ];
    let dirs = [home.clone(), c.paths.security(), home.join("credentials")];
    let mut bad_secret = Vec::new();
    let mut bad_dir = Vec::new();
    let mut ev = Vec::new();
    for (p, is_secret) in secrets
        .iter()
        .map(|p| (p, true))
        .chain(dirs.iter().map(|p| (p, false)))
    {
        let m = match std::fs::symlink_metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Verdict::not_assessed(format!("{}: {e}", p.display())),
        };
        let mode = m.mode() & 0o7777;
        ev.push(format!("{} mode {mode:o} uid {}", p.display(), m.uid()));
        let owner_ok = m.uid() == 0 || m.uid() == c.host.agent.uid;
        if mode & 0o002 != 0 || (is_secret && mode & 0o077 != 0) || !owner_ok {
            bad_secret.push(p.display().to_string());
        } else if mode & 0o077 != 0 {
            bad_dir.push(p.display().to_string());
        }
    }
    // The policy files as the broker opens them (occ-policy's checks on the open file): a
    // symlink, a foreign owner or a group- or world-writable mode lets someone else change what
    // the broker enforces, and the broker refuses every request until it is fixed.
    let refused: Vec<&FileError> = c
        .policy
        .problems()
        .into_iter()
        .filter(|e| matches!(e, FileError::Unsafe { .. }))
        .collect();
    for e in &refused {
        let p = e.file().display().to_string();
        if !bad_secret.contains(&p) {
            bad_secret.push(p);
        }
        ev.push(e.to_string());
    }
    if refused.is_empty() {
        ev.push(
            "the broker's checks before reading (owner, mode, no symlink) pass for broker.json, \
             command-policy.json and prompt-policy.json"
                .into(),
        );
    }
    if !bad_secret.is_empty() {
        return Verdict::violation(
            format!("exposed: {}", bad_secret.join(", ")),
            "other users can read or change secrets and configuration",
            "chmod 600 the files and 700 the directories, owned by the agent's user",
        )
        .evs(ev);
    }
    if !bad_dir.is_empty() {
        return Verdict::partial(
            format!(
                "directories open to group or others: {}",
                bad_dir.join(", ")
            ),
            "other users can list occ's files",
            "chmod 700 the directories",
        )
        .evs(ev);
    }
    Verdict::compliant("secrets and configuration are private to their owner").evs(ev)
}

fn alternate_privilege_paths_restricted(c: &Ctx) -> Verdict {
    let uid = match &c.host.gateway {
        Some(g) => match g.uid {
            Some(u) => u,
            None => {
                return Verdict::not_assessed(format!(
                    "cannot read the uid of the OpenClaw gateway (pid {}) from /proc",
                    g.pid
                ))
            }
        },
        None => c.host.agent.uid,
    };
    let mut ev = vec![format!(
        "agent uid {uid}, groups: {}",
        if c.host.agent.groups.is_empty() {
            "-".into()
        } else {
            c.host.agent.groups.join(", ")
        }
    )];
    let tools: Vec<String> = c
        .host
        .priv_tools
        .iter()
        .filter(|t| t.setuid_root)
        .map(|t| t.path.display().to_string())
        .collect();
    ev.push(format!(
        "setuid-root privilege tools: {}",
        if tools.is_empty() {
            "none".into()
        } else {
            tools.join(", ")
        }
    ));
    if uid == 0 {
        return Verdict::violation(
            "the agent runs as root",
            "every privilege is available without occ",
            "run the agent as an unprivileged user",
        )
        .evs(ev);
    }
    let admin: Vec<&String> = c
        .host
        .agent
        .groups
        .iter()
        .filter(|g| matches!(g.as_str(), "sudo" | "wheel" | "admin" | "root"))
        .collect();
    if !admin.is_empty() {
        return Verdict::violation(
            format!("the agent's user is in {:?}", admin),
            "the agent can call the real sudo directly and bypass occ",
            "remove the agent's user from sudo/wheel/admin (system mode)",
        )
        .evs(ev);
    }
    if !tools.is_empty() {
        return Verdict::partial(
            "password-guarded setuid tools are reachable",
            "su/doas/pkexec offer a path to root outside occ if a password leaks",
            "remove or restrict su, doas and pkexec for the agent's user",
        )
        .evs(ev);
    }
    Verdict::compliant("no other privilege path is available to the agent").evs(ev)
}

fn newest_backup(dir: &Path, depth: u8) -> std::io::Result<(u32, Option<SystemTime>)> {
    let mut count = 0;
    let mut newest: Option<SystemTime> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let m = entry.metadata()?;
        if m.is_dir() && depth > 0 {
            let (n, t) = newest_backup(&entry.path(), depth - 1)?;
            count += n;
            newest = newest.max(t);
        } else if m.is_file() && m.len() > 0 {
            count += 1;
            newest = newest.max(m.modified().ok());
        }
    }
    Ok((count, newest))
}

fn backup_configured(c: &Ctx) -> Verdict {
    let dirs: Vec<_> = ["backups", "backup"]
        .iter()
        .map(|d| c.paths.home.join(d))
        .filter(|d| d.exists())
        .collect();
    if dirs.is_empty() {
        return Verdict::violation(
            "no backups/ directory",
            "occ's configuration and audit log cannot be restored",
            "back up OCC_HOME into OCC_HOME/backups regularly",
        );
    }
    let mut count = 0;
    let mut newest = None;
    for d in &dirs {
        match newest_backup(d, 2) {
            Ok((n, t)) => {
                count += n;
                newest = newest.max(t);
            }
            Err(e) => return Verdict::not_assessed(format!("{}: {e}", d.display())),
        }
    }
    let Some(newest) = newest.filter(|_| count > 0) else {
        return Verdict::violation(
            "the backups directory holds no non-empty file",
            "there is nothing to restore",
            "write real backups into OCC_HOME/backups",
        );
    };
    let age_days = c.now.duration_since(newest).unwrap_or_default().as_secs() / 86_400;
    let ev = format!(
        "{count} non-empty backup file(s), newest {age_days} day(s) old ({})",
        util::rfc3339(newest)
    );
    if age_days > 7 {
        return Verdict::partial(
            format!("newest backup is {age_days} days old"),
            "backups are stale",
            "schedule a backup at least weekly",
        )
        .ev(ev);
    }
    Verdict::compliant("a recent backup exists").ev(ev)
}

fn update_hygiene(c: &Ctx) -> Verdict {
    let Some(cli) = &c.host.openclaw else {
        return Verdict::not_assessed(
            "the openclaw CLI was not found (openclaw-bin-path.txt, PATH, usual install paths)",
        );
    };
    let version = match &cli.version {
        Ok(v) => v.clone(),
        Err(e) => {
            return Verdict::violation(
                format!("{} does not report its version", cli.path.display()),
                "the OpenClaw install is broken or unknown",
                "reinstall OpenClaw from its package",
            )
            .ev(e.clone())
        }
    };
    let Some(modified) = cli.modified else {
        return Verdict::not_assessed(format!("cannot stat {}", cli.path.display()));
    };
    let age = c.now.duration_since(modified).unwrap_or_default().as_secs() / 86_400;
    let ev = format!(
        "{} reports {version}; installed {age} day(s) ago",
        cli.path.display()
    );
    if age > 180 {
        return Verdict::violation(
            format!("OpenClaw {version} was installed {age} days ago"),
            "security fixes from the last half year are missing",
            "update OpenClaw to the current release",
        )
        .ev(ev);
    }
    if age > 90 {
        return Verdict::partial(
            format!("OpenClaw {version} was installed {age} days ago"),
            "the install is more than 90 days old",
            "update OpenClaw to the current release",
        )
        .ev(ev);
    }
    Verdict::compliant(format!("OpenClaw {version}, updated {age} day(s) ago")).ev(ev)
}

// ---------------------------------------------------------------------------------------------
// Policies.

fn prompt_injection_controls(c: &Ctx) -> Verdict {
    let p = match &c.policy.prompt {
        Err(e) if files::unreadable(e) => return Verdict::not_assessed(files::describe(e)),
        Err(e) => {
            return Verdict::violation(
                "prompt-policy.json does not parse",
                "the untrusted-source control is not configured",
                "write {\"require_confirmation_for_untrusted\": true}",
            )
            .ev(files::describe(e))
        }
        Ok(None) => return Verdict::violation(
            "no prompt-policy.json",
            "requests from untrusted sources need no extra confirmation",
            "write {\"require_confirmation_for_untrusted\": true} to security/prompt-policy.json",
        ),
        Ok(Some(p)) => p,
    };
    if !p.require_confirmation_for_untrusted {
        return Verdict::violation(
            "require_confirmation_for_untrusted is false",
            "requests from untrusted sources need no extra confirmation",
            "set require_confirmation_for_untrusted to true",
        );
    }
    let (cfg, src) = match broker_cfg_installed(c) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let stack = &cfg.approval.stack;
    if !stack_requires(stack, Module::Untrusted) {
        return Verdict::partial(
            "the policy asks for confirmation but the broker's stack skips the untrusted module",
            "the policy is not enforced",
            "add \"untrusted:required\" to broker.json approval.stack",
        )
        .ev(format!("approval stack ({src}): {}", stack_text(stack)));
    }
    Verdict::compliant("untrusted-source requests need explicit confirmation")
        .ev(format!("approval stack ({src}) includes untrusted"))
}

/// Allow rules that let a shell or interpreter run with any arguments.
pub fn unsafe_allow_rules(p: &CommandPolicy) -> Vec<String> {
    p.allow
        .rules()
        .iter()
        .filter(|r| r.id.list == ListKind::Allow)
        .map(|r| &r.text)
        .filter(|rule| {
            let words: Vec<&str> = rule.split_whitespace().collect();
            let Some(first) = words.first() else {
                return false;
            };
            let name = first.trim_matches(|c| c == '"' || c == '\'');
            let name = name.rsplit('/').next().unwrap_or(name);
            files::is_code_runner(name)
                && (words.len() == 1 || words.iter().skip(1).any(|w| w.contains('*')))
        })
        .cloned()
        .collect()
}

fn command_policy_enforced(c: &Ctx) -> Verdict {
    let p = match &c.policy.command {
        Err(e) if files::unreadable(e) => return Verdict::not_assessed(files::describe(e)),
        Err(e) => {
            return Verdict::violation(
                "command-policy.json does not load",
                "the broker refuses every request until the policy parses",
                "fix what the error names",
            )
            .evs(e.iter().map(ToString::to_string))
        }
        Ok(None) => {
            return Verdict::violation(
                "no command-policy.json",
                "nothing limits which commands the agent may request",
                "write a version 2 command-policy.json (see references/)",
            )
        }
        Ok(Some(p)) => p,
    };
    let [allow, allow_exact, deny, deny_exact] = rule_counts(p);
    let ev = format!(
        "version 2: {allow} allow, {deny} deny, {allow_exact} allow_exact, {deny_exact} deny_exact"
    );
    let bad = unsafe_allow_rules(p);
    if !bad.is_empty() {
        return Verdict::violation(
            format!(
                "allow rules let shells or interpreters run anything: {}",
                bad.join(" | ")
            ),
            "one approval of such a rule runs arbitrary code as root",
            "allow specific commands with fixed arguments instead",
        )
        .ev(ev);
    }
    if p.allow.is_empty() && p.deny.is_empty() {
        return Verdict::partial(
            "the policy has no rules",
            "every command goes to a human with no policy guidance",
            "add allow rules for what the agent needs and deny rules for what it must never do",
        )
        .ev(ev);
    }
    if !c.broker_refuses.is_empty() {
        return Verdict::violation(
            "the broker's own loader refuses the policy files",
            "the broker fails closed: every request is refused until the files load",
            "fix each problem named in the evidence (`occ policy check` shows them too)",
        )
        .ev(ev)
        .evs(c.broker_refuses.iter().take(5).cloned());
    }
    Verdict::compliant("the command policy parses and is safe")
        .ev(ev)
        .ev("occ-policy loads every policy file as the broker would")
}

fn session_boundary_enforced(c: &Ctx) -> Verdict {
    let (cfg, src) = match broker_cfg(c) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let require = cfg.session.require_session_id;
    let idle = cfg.session.idle_timeout_minutes;
    let ev = format!("{src}: session.require_session_id={require}, idle_timeout_minutes={idle}");
    let legacy = matches!(&c.env, Ok(Some(e)) if e.get("OPENCLAW_REQUIRE_SESSION_ID").map(String::as_str) == Some("1"));
    if !require {
        if legacy {
            return Verdict::partial(
                "only the legacy env file asks for a session id",
                "the broker reads broker.json, not the env file",
                "set session.require_session_id to true in broker.json",
            )
            .ev(ev);
        }
        return Verdict::violation(
            "requests need no task session id",
            "grants are not tied to the task that asked for them",
            "set session.require_session_id to true in broker.json",
        )
        .ev(ev);
    }
    if idle == 0 || idle > 30 {
        return Verdict::partial(
            format!("session id required, idle timeout {idle} min"),
            "session grants outlive 30 idle minutes",
            "set session.idle_timeout_minutes to 30 or less",
        )
        .ev(ev);
    }
    Verdict::compliant("grants are bound to a task session").ev(ev)
}

fn multi_factor_approval(c: &Ctx) -> Verdict {
    let (cfg, src) = match broker_cfg(c) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let plaintext = matches!(&c.env, Ok(Some(e)) if e.get("OPENCLAW_APPROVAL_TOKEN").is_some_and(|t| !t.is_empty()));
    let stack = &cfg.approval.stack;
    match cfg.approval.token_sha256.as_deref() {
        None | Some("") => {
            if plaintext {
                return Verdict::partial(
                    "only a legacy plaintext token in the env file",
                    "the agent can read the token, so it can approve itself",
                    "run `occ token set --generate` and delete OPENCLAW_APPROVAL_TOKEN from the env file",
                )
                .ev(format!("{src}: approval.token_sha256 unset"));
            }
            Verdict::violation(
                "no approver token",
                "an agent that runs `occ approve` approves its own requests",
                "run `occ token set --generate` and keep the token away from the agent",
            )
            .ev(format!("{src}: approval.token_sha256 unset"))
        }
        Some(_) => {
            let ev = format!("{src}: token_sha256 set; stack: {}", stack_text(stack));
            if !stack_requires(stack, Module::Token) {
                return Verdict::partial(
                    "a token is set but the stack does not require it",
                    "approvals do not ask for the token",
                    "add \"token:required\" to approval.stack",
                )
                .ev(ev);
            }
            if plaintext {
                return Verdict::partial(
                    "token hash set, but a plaintext token is still in the env file",
                    "the agent can read the plaintext token",
                    "delete OPENCLAW_APPROVAL_TOKEN from the env file",
                )
                .ev(ev);
            }
            Verdict::compliant("approvals need the approver token").ev(ev)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Broker and PATH.

fn broker_reachable(c: &Ctx) -> Verdict {
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

fn shim_first_in_path(c: &Ctx) -> Verdict {
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

/// A helper for tests and reports: how long ago `t` was, in whole days.
pub fn age_days(now: SystemTime, t: SystemTime) -> u64 {
    now.duration_since(t).unwrap_or(Duration::ZERO).as_secs() / 86_400
}
