//! System mode's boundary (`system_mode_boundary`), judged by `occ_policy::boundary` exactly as
//! `occ doctor --system` judges it; this file only turns the judgement into a verdict. The
//! facts come from `facts::probe_system`. Without root occ-scan cannot read /etc/occ or list
//! another user's sudo rights: `not_assessed` when nothing could be checked, `partial` when
//! the boundary holds as far as it could be.

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
    let mut holds: Vec<String> = Vec::new();
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
    let held = evidence.len() - breaches.len() - unknown.len();
    let Some((area, first)) = breaches.first() else {
        if !unknown.is_empty() {
            // Nothing could be checked: not assessed. Some of it: it holds that far.
            if held == 0 {
                return Verdict::not_assessed(unknown.join("; ")).evs(evidence);
            }
            return Verdict::partial(
                unknown.join("; "),
                "the boundary holds where it could be checked, but not all of it could be",
                "run occ-scan as root, which reads /etc/occ and every agent's sudo rights",
            )
            .evs(evidence);
        }
        return Verdict::compliant(
            "system mode holds: the agent has no sudo rights and is no approver, the broker's \
             files are root's, and a root broker answers",
        )
        .evs(evidence);
    };
    let fixes: Vec<&str> = breaches.iter().map(|(_, b)| b.fix.as_str()).collect();
    // A broker that is down fails closed (the agent gets no root that way), but the root
    // service the boundary needs is not there: a violation like any other breach, its gap
    // saying which kind.
    let only_down = matches!(f.broker, BrokerSeen::Silent(_))
        && breaches.iter().all(|(a, _)| *a == Area::Broker);
    if only_down {
        return Verdict::violation(
            first.problem.clone(),
            "no root broker answers: every agent sudo fails closed, and nothing can be \
             approved until it is started",
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
