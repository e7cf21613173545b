//! System mode's boundary (`system_mode_boundary`), judged by `occ_policy::boundary` exactly as
//! `occ doctor --system` judges it; this file only turns the judgement into a verdict. The
//! facts come from `facts::probe_system`. Without root occ-scan cannot read /etc/occ or list
//! another user's sudo rights, and says `not_assessed`.

use occ_policy::boundary::{self, Area, BrokerSeen, Holds};

use super::ctx::Ctx;
use super::verdict::Verdict;
use crate::compliance::model::Risk;

pub(super) fn system_mode_boundary(c: &Ctx) -> Verdict {
    let f = &c.host.system;
    if !f.installed {
        return Verdict::not_assessed(format!(
            "system mode is not installed here ({} is missing); in user mode the agent's own \
             sudo rights, if any, bypass occ (alternate_privilege_paths_restricted judges those)",
            f.paths.config_dir.display()
        ));
    }
    let mut holds = Vec::new();
    let mut breaches = Vec::new();
    let mut unknown = Vec::new();
    for j in boundary::judge(f) {
        match j.holds {
            Holds::Yes(s) => holds.push(format!("{}: {s}", j.area.name())),
            Holds::No(b) => breaches.extend(b.into_iter().map(|b| (j.area, b))),
            Holds::Unknown(s) => unknown.push(format!("{}: {s}", j.area.name())),
        }
    }
    let evidence: Vec<String> = breaches
        .iter()
        .map(|(area, b)| format!("{}: {} (fix: {})", area.name(), b.problem, b.fix))
        .chain(unknown.iter().cloned())
        .chain(holds)
        .collect();
    let Some((area, first)) = breaches.first() else {
        if !unknown.is_empty() {
            return Verdict::not_assessed(unknown.join("; ")).evs(evidence);
        }
        return Verdict::compliant(
            "system mode holds: the agent has no sudo rights and is no approver, the broker's \
             files are root's, and a root broker answers",
        )
        .evs(evidence);
    };
    let fixes: Vec<&str> = breaches.iter().map(|(_, b)| b.fix.as_str()).collect();
    // A broker that is down fails closed: the agent gets no root that way. Any other breach
    // is a way around the boundary.
    let only_down = matches!(f.broker, BrokerSeen::Silent(_))
        && breaches.iter().all(|(a, _)| *a == Area::Broker);
    if only_down {
        return Verdict::partial(
            first.problem.clone(),
            "the boundary holds, but no broker answers, so every agent sudo fails",
            &fixes.join("; "),
        )
        .evs(evidence);
    }
    let v = Verdict::violation(
        format!("{}: {}", area.name(), first.problem),
        "the agent can get root, approve, or change the broker's files without a human",
        &fixes.join("; "),
    )
    .evs(evidence);
    if breaches.iter().any(|(a, _)| *a == Area::AgentSudo) {
        v.risk(Risk::Critical)
    } else {
        v
    }
}
