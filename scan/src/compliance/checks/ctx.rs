//! The evidence every check reads, gathered once per run: occ's files (the policy files exactly
//! as the broker loads them), OpenClaw's config, the host probes and the audit verifier's
//! result, with the small readers the checks share. Loading never decides a verdict.

use std::time::SystemTime;

use occ_policy::file::{Module, StackEntry};
use occ_policy::rule::ListKind;
use occ_policy::{BrokerConfig, CommandPolicy};

use super::verdict::Verdict;
use crate::compliance::audit::AuditOutcome;
use crate::compliance::facts::Host;
use crate::compliance::files::{self, EgressRule, PolicyFiles};
use crate::compliance::openclaw::{self, OcConfig};
use crate::error::ScanError;
use crate::paths::Paths;

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
    pub(super) policy: PolicyFiles,
    /// `security/egress_allowlist.json`.
    pub(super) egress_rules: Loaded<Vec<EgressRule>>,
    /// OpenClaw's config: as its CLI resolves it, else `openclaw.json` read by occ-scan.
    pub(super) openclaw: Loaded<OcConfig>,
    /// The legacy `env` file.
    pub(super) env: Loaded<std::collections::BTreeMap<String, String>>,
    /// What the broker's own loader (occ-policy) refuses in `security/`, as it would read it.
    pub(super) broker_refuses: Vec<String>,
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
            openclaw: match &host.openclaw_instance {
                Ok(i) => openclaw::load(
                    host.openclaw.as_ref().and_then(|o| o.config.as_ref()),
                    &why_not_cli(host),
                    i,
                ),
                Err(e) => Err(ScanError::Environment { message: e.clone() }),
            },
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

/// Why the `openclaw` CLI gave no answer, for the evidence of a check that reads the files.
pub(super) fn why_not_cli(host: &Host) -> String {
    match &host.openclaw {
        None => "the openclaw CLI was not found, or --skip-openclaw".into(),
        Some(o) => match &o.version {
            Err(e) => format!("the openclaw CLI does not answer: {e}"),
            Ok(_) => "the openclaw CLI was not asked".into(),
        },
    }
}

/// broker.json or its documented defaults; `Err` holds a not_assessed verdict.
pub(super) fn broker_cfg(c: &Ctx) -> Result<(BrokerConfig, &'static str), Verdict> {
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
pub(super) fn broker_cfg_installed(c: &Ctx) -> Result<(BrokerConfig, &'static str), Verdict> {
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
pub(super) fn stack_requires(stack: &[StackEntry], module: Module) -> bool {
    use occ_policy::file::Control;
    stack
        .iter()
        .any(|e| e.module == module && matches!(e.control, Control::Required | Control::Requisite))
}

/// The stack as written in broker.json (`files:requisite, …`).
pub(super) fn stack_text(stack: &[StackEntry]) -> String {
    stack
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rules per list of command-policy.json: allow, allow_exact, deny, deny_exact.
pub(super) fn rule_counts(p: &CommandPolicy) -> [usize; 4] {
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
