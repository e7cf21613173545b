//! The Prometheus textfile (node_exporter's textfile collector format): one gauge per check,
//! counts per status and per finding type, whether each scan ran, and the run's time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::model::{Assessment, Status};
use super::util;

/// Escapes a label value.
pub fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The gauge value of a status.
pub fn status_value(s: Status) -> i32 {
    match s {
        Status::Compliant => 0,
        Status::Partial => 1,
        Status::Violation => 2,
        Status::NotAssessed => -1,
    }
}

/// Renders the textfile.
pub fn render(a: &Assessment) -> String {
    let mut o = String::new();
    o.push_str("# HELP occ_scan_check_status Compliance check status: 0 compliant, 1 partial, 2 violation, -1 not assessed.\n# TYPE occ_scan_check_status gauge\n");
    for c in &a.checks {
        let _ = writeln!(
            o,
            "occ_scan_check_status{{check_id=\"{}\",risk=\"{}\",status=\"{}\"}} {}",
            label(&c.check_id),
            c.risk.as_str(),
            c.status.as_str(),
            status_value(c.status)
        );
    }
    o.push_str("# HELP occ_scan_checks Checks per status.\n# TYPE occ_scan_checks gauge\n");
    for s in Status::ALL {
        let n = a.checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(o, "occ_scan_checks{{status=\"{}\"}} {n}", s.as_str());
    }
    o.push_str("# HELP occ_scan_checks_overdue Failing checks past their due date.\n# TYPE occ_scan_checks_overdue gauge\n");
    let _ = writeln!(
        o,
        "occ_scan_checks_overdue {}",
        a.checks.iter().filter(|c| c.overdue).count()
    );
    o.push_str(
        "# HELP occ_scan_findings Scan findings per type.\n# TYPE occ_scan_findings gauge\n",
    );
    let mut ok_lines = String::new();
    for (scan, v) in [("ports", &a.scans.ports), ("egress", &a.scans.egress)] {
        let failed = v.get("status").and_then(Value::as_str) == Some("error");
        let _ = writeln!(
            ok_lines,
            "occ_scan_scan_ok{{scan=\"{scan}\"}} {}",
            i32::from(!failed)
        );
        let mut by: BTreeMap<String, u32> = BTreeMap::new();
        for t in ["unapproved-port", "insecure-port", "public-bind"]
            .iter()
            .filter(|_| scan == "ports")
            .chain(["unapproved-egress"].iter().filter(|_| scan == "egress"))
        {
            by.insert((*t).to_string(), 0);
        }
        if let Some(m) = v.get("findings_by_type").and_then(Value::as_object) {
            for (t, n) in m {
                by.insert(
                    t.clone(),
                    u32::try_from(n.as_u64().unwrap_or(0)).unwrap_or(u32::MAX),
                );
            }
        }
        if failed {
            continue;
        }
        for (t, n) in by {
            let _ = writeln!(
                o,
                "occ_scan_findings{{scan=\"{scan}\",type=\"{}\"}} {n}",
                label(&t)
            );
        }
    }
    o.push_str("# HELP occ_scan_scan_ok Whether the scan ran (0: failed, its checks are not assessed).\n# TYPE occ_scan_scan_ok gauge\n");
    o.push_str(&ok_lines);
    o.push_str("# HELP occ_scan_last_run_timestamp_seconds When the assessment ran.\n# TYPE occ_scan_last_run_timestamp_seconds gauge\n");
    let ts = util::parse_rfc3339(&a.metadata.generated_at_utc)
        .map(util::unix_secs)
        .unwrap_or(0);
    let _ = writeln!(o, "occ_scan_last_run_timestamp_seconds {ts}");
    o
}
