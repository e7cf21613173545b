//! `occ-scan assess`: runs the checks, merges them with the controls map and the scan state
//! (first-seen dates, so due dates do not slide), and writes the assessment and the
//! compliance summary in the seed's shape. Every file is written atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use super::audit::{self, AuditOutcome};
use super::checks::{self, Ctx};
use super::facts::{Host, ProbeOptions};
use super::map::{Control, ControlsMap};
use super::model::{
    risk_counts, status_counts, Assessment, CheckResult, FullScans, Metadata, NetReport, Risk,
    RunRecord, Scans, Status, ASSESSMENT_FILE, DASHBOARD_FILE, FRAMEWORKS, SUMMARY_FILE,
};
use super::state::{CheckMemory, ScanState};
use super::{dashboard, netscan, prom, util};
use crate::error::ScanError;
use crate::paths::Paths;

/// What the assessment keeps of a scan: status, error, tool, sizes and findings per type.
pub fn scan_summary(r: &NetReport) -> Value {
    let scan = match r {
        NetReport::Failed(e) => return json!({"status": "error", "error": e}),
        NetReport::Ok(s) => s,
    };
    let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &scan.findings {
        *by_type
            .entry(f.kind.as_deref().unwrap_or("unknown"))
            .or_insert(0) += 1;
    }
    json!({
        "status": "ok",
        "tool": r.method(),
        "listening": scan.listening_services.len(),
        "connections": scan.connections.len(),
        "findings": scan.findings.len(),
        "findings_by_type": by_type,
        "counts": scan.counts,
    })
}

/// Runs every check against `host` and merges with the map and `state` (which it updates).
pub fn evaluate(
    paths: &Paths,
    map: &ControlsMap,
    host: &Host,
    audit: &AuditOutcome,
    now: SystemTime,
    state: &mut ScanState,
) -> Vec<CheckResult> {
    let ctx = Ctx::load(paths, now, host, audit);
    map.controls
        .iter()
        .map(|control| {
            let verdict = checks::run(&control.check_id, &ctx).unwrap_or_else(|| {
                checks::Verdict::not_assessed(format!(
                    "no check implements {} in this build",
                    control.check_id
                ))
            });
            merge(control, verdict, now, state)
        })
        .collect()
}

fn merge(
    control: &Control,
    v: checks::Verdict,
    now: SystemTime,
    state: &mut ScanState,
) -> CheckResult {
    let mem = state.checks.entry(control.check_id.clone()).or_default();
    let failing = v.status.is_failing();
    match v.status {
        Status::Violation | Status::Partial => {
            if mem.first_seen.is_none() {
                mem.first_seen = Some(util::rfc3339(now));
            }
        }
        Status::Compliant => mem.first_seen = None,
        // Unknown is not fixed: keep the clock running.
        Status::NotAssessed => {}
    }
    mem.last_status = Some(v.status);
    let first_seen = if failing {
        mem.first_seen.clone()
    } else {
        None
    };
    let due = first_seen
        .as_deref()
        .and_then(util::parse_rfc3339)
        .map(|t| util::date_plus_days(t, i64::from(control.due_days)));
    let today = util::date_plus_days(now, 0);
    let overdue = due.as_deref().is_some_and(|d| d < today.as_str());
    let risk = match v.status {
        Status::Violation => v.risk.unwrap_or(control.default_risk),
        Status::Partial => v.risk.map_or(control.default_risk.lower(), Risk::lower),
        _ => control.default_risk,
    };
    CheckResult {
        check_id: control.check_id.clone(),
        title: control.title.clone(),
        iso27001: control.iso27001.clone(),
        nist: control.nist.clone(),
        sp800_53: control.sp800_53.clone(),
        expected_state: control.expected_state.clone(),
        status: v.status,
        risk,
        observed_state: v.observed,
        evidence: v.evidence,
        gap: if v.status == Status::Compliant {
            String::new()
        } else {
            v.gap
        },
        mitigation: if v.status == Status::Compliant {
            String::new()
        } else {
            v.mitigation
        },
        owner: control.owner.clone(),
        first_seen,
        due_date: due,
        overdue,
        error: v.error,
    }
}

/// Options for [`assess`].
#[derive(Debug, Clone, Default)]
pub struct AssessOptions {
    /// Probe options.
    pub probe: ProbeOptions,
    /// Use these reports instead of scanning.
    pub ports: Option<NetReport>,
    /// Use this report instead of scanning.
    pub egress: Option<NetReport>,
    /// Override "now" (tests).
    pub now: Option<SystemTime>,
    /// A host already probed (the cycle probes while the sockets are collected); its
    /// `ports` and `egress` are replaced by the reports above when those are given.
    pub host: Option<Host>,
}

/// Scans ports and egress in-process from one socket collection (so both reports describe
/// the same instant) and saves them under `assessments/` (done when the guard is dropped).
pub fn scan_network(paths: &Paths) -> (NetReport, NetReport, netscan::Saving) {
    netscan::scan(paths)
}

/// Runs a full assessment: scans (unless given), probes, audit verification, checks; updates
/// and saves the scan state; writes `openclaw-assessment.json`.
pub fn assess(paths: &Paths, opts: AssessOptions) -> Result<Assessment, ScanError> {
    let now = opts.now.unwrap_or_else(SystemTime::now);
    let map = ControlsMap::embedded()?;
    let state_path = ScanState::path(paths);
    let (mut state, warning) = ScanState::load(&state_path);
    let mut warnings: Vec<String> = warning.into_iter().collect();
    let mut saving = None;
    let (ports, egress) = match (opts.ports, opts.egress) {
        (Some(p), Some(e)) => (p, e),
        (p, e) => {
            let (sp, se, s) = scan_network(paths);
            saving = Some(s);
            (p.unwrap_or(sp), e.unwrap_or(se))
        }
    };
    let (audit_outcome, checkpoint) = audit::verify(paths, state.audit_checkpoint.as_ref());
    state.audit_checkpoint = checkpoint;
    let host = match opts.host {
        Some(mut h) => {
            h.ports = ports;
            h.egress = egress;
            h
        }
        None => Host::probe(paths, &opts.probe, ports, egress),
    };
    let results = evaluate(paths, &map, &host, &audit_outcome, now, &mut state);
    // Forget checks that left the map.
    state
        .checks
        .retain(|k, _| map.controls.iter().any(|c| &c.check_id == k));
    let count = |s: Status| results.iter().filter(|r| r.status == s).count() as u32;
    state.history.push(RunRecord {
        at: util::rfc3339(now),
        violation: count(Status::Violation),
        partial: count(Status::Partial),
        compliant: count(Status::Compliant),
        not_assessed: count(Status::NotAssessed),
        port_findings: host.ports.findings().len() as u32,
        egress_findings: host.egress.findings().len() as u32,
    });
    if let Err(e) = state.save(&state_path) {
        warnings.push(e.to_string());
    }
    // The saved scan reports: written beside the checks, reported here if they failed.
    warnings.extend(saving.map(netscan::Saving::finish).unwrap_or_default());
    let assessment = Assessment {
        metadata: Metadata {
            system: "OpenClaw".into(),
            generated_at_utc: util::rfc3339(now),
            frameworks: FRAMEWORKS.iter().map(|s| s.to_string()).collect(),
            occ_home: paths.home.display().to_string(),
            occ_scan_version: env!("CARGO_PKG_VERSION").into(),
            warnings,
        },
        checks: results,
        scans: Scans {
            ports: scan_summary(&host.ports),
            egress: scan_summary(&host.egress),
        },
        history: state.history.clone(),
        reports: FullScans {
            ports: Some(host.ports),
            egress: Some(host.egress),
        },
    };
    util::atomic_write_json_report(&paths.assessment_file(ASSESSMENT_FILE), &assessment)?;
    Ok(assessment)
}

/// Loads a saved assessment.
pub fn load_assessment(path: &Path) -> Result<Assessment, ScanError> {
    let text = std::fs::read(path).map_err(|source| ScanError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        ScanError::invalid(
            path,
            &format!("line {}", e.line()),
            e.to_string(),
            "run `occ-scan assess` to write a fresh assessment",
        )
    })
}

/// The compliance summary in the seed's shape: `{generated_at_utc, system, summary:
/// {status_counts, risk_counts, violations, mitigations}, controls}`, plus `frameworks` and
/// scan counts.
pub fn summary(a: &Assessment) -> Value {
    let failing: Vec<&CheckResult> = a.checks.iter().filter(|r| r.status.is_failing()).collect();
    let mitigations: Vec<&CheckResult> = failing
        .iter()
        .copied()
        .filter(|r| !r.mitigation.is_empty())
        .collect();
    json!({
        "generated_at_utc": a.metadata.generated_at_utc,
        "system": a.metadata.system,
        "frameworks": a.metadata.frameworks,
        "summary": {
            "status_counts": status_counts(a),
            "risk_counts": risk_counts(a),
            "overdue": a.checks.iter().filter(|r| r.overdue).count(),
            "violations": failing,
            "mitigations": mitigations,
        },
        "controls": a.checks,
        "scans": {
            "ports": a.scans.ports,
            "egress": a.scans.egress,
        },
        "warnings": a.metadata.warnings,
    })
}

/// Where reports go.
#[derive(Debug, Clone)]
pub struct ReportPaths {
    /// Summary JSON.
    pub summary: PathBuf,
    /// Dashboard HTML.
    pub dashboard: PathBuf,
    /// Prometheus textfile, when asked for.
    pub prom: Option<PathBuf>,
}

impl ReportPaths {
    /// The defaults under `assessments/`.
    pub fn defaults(paths: &Paths, prom: Option<PathBuf>) -> Self {
        ReportPaths {
            summary: paths.assessment_file(SUMMARY_FILE),
            dashboard: paths.assessment_file(DASHBOARD_FILE),
            prom,
        }
    }
}

/// Writes the summary, the dashboard and (optionally) the Prometheus textfile, atomically.
pub fn write_reports(a: &Assessment, out: &ReportPaths) -> Result<(), ScanError> {
    util::atomic_write_json_report(&out.summary, &summary(a))?;
    util::atomic_write_report(&out.dashboard, dashboard::render(a).as_bytes())?;
    if let Some(p) = &out.prom {
        util::atomic_write_report(p, prom::render(a).as_bytes())?;
        // node_exporter runs as another user and must read the textfile.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644));
    }
    Ok(())
}

/// Exit code for an assessment: 1 when any check is violation or partial, else 0.
pub fn exit_code(a: &Assessment) -> i32 {
    i32::from(a.checks.iter().any(|r| r.status.is_failing()))
}

/// Memory of one check (re-exported for tests).
pub type Memory = CheckMemory;
