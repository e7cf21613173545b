//! The audit log: privileged actions are recorded durably, and the chain verifies up to its
//! head. A log that cannot be verified is not_assessed, never intact.

use occ_policy::file::Fsync;

use super::ctx::{broker_cfg, Ctx};
use super::verdict::Verdict;
use crate::compliance::audit::AuditOutcome;
use crate::compliance::facts::BrokerProbe;
use crate::compliance::model::Risk;

pub(super) fn audit_logging_privileged_actions(c: &Ctx) -> Verdict {
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

pub(super) fn audit_log_integrity(c: &Ctx) -> Verdict {
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
