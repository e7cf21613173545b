//! The assessment's data model: check statuses and risks, the port and egress scans as the
//! checks and the dashboard read them, each check's result, and the assessment with its
//! history. Everything that renders an assessment (the summary JSON, the dashboard, the
//! Prometheus textfile) or builds one depends on this module; it depends on none of them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::paths::Paths;

// ---------------------------------------------------------------------------------------------
// Statuses and risks.

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The evidence shows the control in force.
    Compliant,
    /// The control is partly in force.
    Partial,
    /// The evidence shows the control is not in force.
    Violation,
    /// The evidence could not be gathered; the error says why.
    NotAssessed,
}

impl Status {
    /// The status as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Compliant => "compliant",
            Status::Partial => "partial",
            Status::Violation => "violation",
            Status::NotAssessed => "not_assessed",
        }
    }

    /// Whether the check counts as a finding (violation or partial).
    pub fn is_failing(self) -> bool {
        matches!(self, Status::Violation | Status::Partial)
    }

    /// Rank used by notify to spot escalations: violation 2, partial 1, else 0.
    pub fn rank(self) -> u8 {
        match self {
            Status::Violation => 2,
            Status::Partial => 1,
            _ => 0,
        }
    }

    /// Parses a status as written in reports.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "compliant" => Some(Status::Compliant),
            "partial" => Some(Status::Partial),
            "violation" => Some(Status::Violation),
            "not_assessed" => Some(Status::NotAssessed),
            _ => None,
        }
    }

    /// All statuses, in report order.
    pub const ALL: [Status; 4] = [
        Status::Violation,
        Status::Partial,
        Status::Compliant,
        Status::NotAssessed,
    ];
}

/// Risk of a failing check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical: a high-risk control failing in a way that is exposed right now.
    Critical,
}

impl Risk {
    /// The risk as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }

    /// Weight used for the per-control risk chart.
    pub fn weight(self) -> u32 {
        match self {
            Risk::Low => 1,
            Risk::Medium => 2,
            Risk::High => 3,
            Risk::Critical => 4,
        }
    }

    /// One step lower (a partial finding carries less risk than a violation).
    pub fn lower(self) -> Risk {
        match self {
            Risk::Critical => Risk::High,
            Risk::High => Risk::Medium,
            Risk::Medium | Risk::Low => Risk::Low,
        }
    }

    /// All risks, highest first.
    pub const ALL: [Risk; 4] = [Risk::Critical, Risk::High, Risk::Medium, Risk::Low];
}

// ---------------------------------------------------------------------------------------------
// Port and egress scans.

/// A port or egress scan as the checks and the dashboard read it, or why there is none.
#[derive(Debug, Clone)]
pub enum NetReport {
    /// The scan ran.
    Ok(Box<NetScan>),
    /// The scan failed; the error. Checks that need it are `not_assessed`.
    Failed(String),
}

/// What the checks and the dashboard read from a port or egress report: the method, the rows
/// and the counts. A cycle builds it from the typed report it just made; `assess
/// --ports-report FILE` reads it from a saved `occ-scan ports|egress --json` report, and the
/// seed's field names (`host`, `command`, `user`, `remote_host`) are read too.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NetScan {
    /// How sockets were read (`proc` or `lsof`; the seed's `lsof`, `ss`, `netstat`).
    #[serde(deserialize_with = "text")]
    pub tool: Option<String>,
    /// What the method reads, in words.
    #[serde(deserialize_with = "text")]
    pub method: Option<String>,
    /// Listening sockets (port report).
    pub listening_services: Vec<NetRow>,
    /// Outbound connections (egress report).
    pub connections: Vec<NetRow>,
    /// Findings.
    pub findings: Vec<NetRow>,
    /// What a polling scan misses.
    pub blind_spots: Vec<String>,
    /// The report's counts, kept as they are for the assessment's scan summary.
    pub counts: Option<Value>,
}

/// One socket, connection or finding of a report. Every field is optional: a report from
/// another tool may lack it, and an unknown owner has no pid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NetRow {
    /// A finding's type (`unapproved-port`, …).
    #[serde(rename = "type", deserialize_with = "text")]
    pub kind: Option<String>,
    /// `tcp` or `udp`.
    #[serde(deserialize_with = "text")]
    pub protocol: Option<String>,
    /// Local address (the seed's `host`).
    #[serde(deserialize_with = "text", alias = "host", alias = "bind")]
    pub address: Option<String>,
    /// Local port.
    #[serde(deserialize_with = "number")]
    pub port: Option<u64>,
    /// Owner pid (none: unknown; the seed wrote `"unknown"`).
    #[serde(deserialize_with = "number")]
    pub pid: Option<u64>,
    /// Owner comm (the seed's `command`).
    #[serde(deserialize_with = "text", alias = "command")]
    pub comm: Option<String>,
    /// Owner executable (a finding's `exe`).
    #[serde(deserialize_with = "text", alias = "exe")]
    pub path: Option<String>,
    /// Owner uid (the seed's `user` name).
    #[serde(deserialize_with = "text", alias = "user")]
    pub uid: Option<String>,
    /// Socket state.
    #[serde(deserialize_with = "text")]
    pub state: Option<String>,
    /// Network namespace inode.
    #[serde(deserialize_with = "number")]
    pub net_namespace: Option<u64>,
    /// Remote address (an egress finding's `remote_host`).
    #[serde(deserialize_with = "text", alias = "remote_host")]
    pub remote_address: Option<String>,
    /// Remote port.
    #[serde(deserialize_with = "number")]
    pub remote_port: Option<u64>,
    /// The allowlist rule that allowed a connection.
    #[serde(deserialize_with = "number")]
    pub allowed_by: Option<u64>,
    /// A finding's recommendation.
    #[serde(deserialize_with = "text")]
    pub recommendation: Option<String>,
}

/// A scalar as text: strings as they are, numbers and booleans printed, null as none.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

/// A whole number, or a string holding one; anything else (the seed's `"unknown"`) is none.
fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Text for a table cell or a key: the value, or `-` when absent.
pub fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

/// A number for a table cell or a key: the value, or `-` when absent.
pub fn num_or_dash(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |n| n.to_string())
}

impl NetReport {
    /// Parses a saved report; a report whose `status` is `error` counts as failed.
    pub fn from_json(what: &str, bytes: &[u8]) -> NetReport {
        let v = match serde_json::from_slice::<Value>(bytes) {
            Ok(v) if v.is_object() => v,
            Ok(_) => return NetReport::Failed(format!("{what}: report is not a JSON object")),
            Err(e) => return NetReport::Failed(format!("{what}: report is not JSON: {e}")),
        };
        if v.get("status").and_then(Value::as_str) == Some("error") {
            let e = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error message");
            return NetReport::Failed(format!("{what} reported an error: {e}"));
        }
        match NetScan::deserialize(v) {
            Ok(scan) => NetReport::Ok(Box::new(scan)),
            Err(e) => NetReport::Failed(format!("{what}: report is not a scan report: {e}")),
        }
    }

    /// Reads a saved report file.
    pub fn from_file(what: &str, path: &Path) -> NetReport {
        match std::fs::read(path) {
            Ok(b) => NetReport::from_json(what, &b),
            Err(e) => NetReport::Failed(format!("{what}: cannot read {}: {e}", path.display())),
        }
    }

    /// The scan when it ran.
    pub fn scan(&self) -> Option<&NetScan> {
        match self {
            NetReport::Ok(s) => Some(s),
            NetReport::Failed(_) => None,
        }
    }

    /// Findings (empty when failed).
    pub fn findings(&self) -> &[NetRow] {
        self.scan().map_or(&[], |s| &s.findings)
    }

    /// Findings of one `type`.
    pub fn findings_of(&self, kind: &str) -> Vec<&NetRow> {
        self.findings()
            .iter()
            .filter(|f| f.kind.as_deref() == Some(kind))
            .collect()
    }

    /// Listening sockets.
    pub fn listeners(&self) -> &[NetRow] {
        self.scan().map_or(&[], |s| &s.listening_services)
    }

    /// Outbound connections.
    pub fn connections(&self) -> &[NetRow] {
        self.scan().map_or(&[], |s| &s.connections)
    }

    /// How the scan saw sockets (the seed's `tool`: `proc` or `lsof`; else `method`).
    pub fn method(&self) -> &str {
        self.scan()
            .and_then(|s| s.tool.as_deref().or(s.method.as_deref()))
            .unwrap_or("unknown")
    }

    /// Listening sockets and connections whose owner could not be seen.
    pub fn unknown_owner_count(&self) -> usize {
        self.listeners()
            .iter()
            .chain(self.connections())
            .filter(|s| s.pid.is_none())
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// Results and the assessment.

/// The assessment file (the seed's name).
pub const ASSESSMENT_FILE: &str = "openclaw-assessment.json";
/// The summary file (the seed's name).
pub const SUMMARY_FILE: &str = "compliance-summary.json";
/// The dashboard file (the seed's name).
pub const DASHBOARD_FILE: &str = "compliance-dashboard.html";
/// Saved port report.
pub const PORTS_FILE: &str = "port-monitor-latest.json";
/// Saved egress report.
pub const EGRESS_FILE: &str = "egress-monitor-latest.json";

/// Frameworks named in reports.
pub const FRAMEWORKS: [&str; 3] = [
    "ISO/IEC 27001:2022 Annex A",
    "NIST CSF 2.0",
    "NIST SP 800-53 Rev. 5",
];

/// One check's result merged with its control (the seed's merged item, plus evidence-grade
/// fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckResult {
    /// Check id.
    pub check_id: String,
    /// Title.
    pub title: String,
    /// ISO/IEC 27001:2022 Annex A controls.
    pub iso27001: Vec<String>,
    /// NIST CSF 2.0 subcategories.
    pub nist: Vec<String>,
    /// NIST SP 800-53 r5 controls.
    pub sp800_53: Vec<String>,
    /// What compliant looks like.
    pub expected_state: String,
    /// Status.
    pub status: Status,
    /// Risk (for failing checks: of the finding; else the control's inherent risk).
    pub risk: Risk,
    /// What was observed.
    pub observed_state: String,
    /// Facts behind the verdict.
    pub evidence: Vec<String>,
    /// What is missing (empty when compliant).
    pub gap: String,
    /// What to do (empty when compliant).
    pub mitigation: String,
    /// Who fixes it.
    pub owner: String,
    /// When the finding was first seen (failing checks).
    pub first_seen: Option<String>,
    /// first_seen + the control's window (failing checks).
    pub due_date: Option<String>,
    /// Whether the due date has passed.
    pub overdue: bool,
    /// Why the check could not run (not_assessed).
    pub error: Option<String>,
}

/// A full assessment: metadata, results and the scans they used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assessment {
    /// System, time, frameworks, warnings.
    pub metadata: Metadata,
    /// Results in the map's order.
    pub checks: Vec<CheckResult>,
    /// The port and egress reports (or their errors), for the dashboard.
    pub scans: Scans,
    /// Recent runs (oldest first).
    pub history: Vec<RunRecord>,
    /// The full scan reports, for the dashboard's tables; not stored in the assessment (they
    /// are in `port-monitor-latest.json` and `egress-monitor-latest.json`).
    #[serde(skip)]
    pub reports: FullScans,
}

/// The port and egress scans behind the dashboard's tables (none: no report yet).
#[derive(Debug, Clone, Default)]
pub struct FullScans {
    /// The port scan.
    pub ports: Option<NetReport>,
    /// The egress scan.
    pub egress: Option<NetReport>,
}

impl FullScans {
    /// Reads the saved reports of the last scan.
    pub fn load(paths: &Paths) -> FullScans {
        let read = |what: &str, n: &str| {
            let path = paths.assessment_file(n);
            path.exists().then(|| NetReport::from_file(what, &path))
        };
        FullScans {
            ports: read("port", PORTS_FILE),
            egress: read("egress", EGRESS_FILE),
        }
    }
}

/// Assessment metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    /// `OpenClaw`.
    pub system: String,
    /// When.
    pub generated_at_utc: String,
    /// Frameworks.
    pub frameworks: Vec<String>,
    /// OCC_HOME.
    pub occ_home: String,
    /// occ-scan version.
    pub occ_scan_version: String,
    /// Problems that did not stop the run.
    pub warnings: Vec<String>,
}

/// Scan reports as JSON, or `{"status":"error","error":…}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scans {
    /// `occ-scan ports`.
    pub ports: Value,
    /// `occ-scan egress`.
    pub egress: Value,
}

/// One run, for the "findings over recent runs" chart.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunRecord {
    /// When (RFC 3339).
    pub at: String,
    /// Checks in violation.
    pub violation: u32,
    /// Partial checks.
    pub partial: u32,
    /// Compliant checks.
    pub compliant: u32,
    /// Checks not assessed.
    pub not_assessed: u32,
    /// Port findings.
    pub port_findings: u32,
    /// Egress findings.
    pub egress_findings: u32,
}

/// Counts per status, across all checks.
pub fn status_counts(a: &Assessment) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for r in &a.checks {
        *m.entry(r.status.as_str().to_string()).or_insert(0) += 1;
    }
    m
}

/// Counts per risk, failing checks only.
pub fn risk_counts(a: &Assessment) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for r in a.checks.iter().filter(|r| r.status.is_failing()) {
        *m.entry(r.risk.as_str().to_string()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_scan_reports() {
        let r = NetReport::from_json("ports", br#"{"status":"error","error":"lsof missing"}"#);
        assert!(matches!(r, NetReport::Failed(ref e) if e.contains("lsof missing")));
        let r = NetReport::from_json("ports", b"not json");
        assert!(matches!(r, NetReport::Failed(_)));
        // Not a scan: listening_services must be a list.
        let r = NetReport::from_json("ports", br#"{"status":"ok","listening_services":7}"#);
        assert!(
            matches!(r, NetReport::Failed(ref e) if e.contains("not a scan report")),
            "{r:?}"
        );
    }

    #[test]
    fn a_seed_port_report_reads_with_its_own_field_names() {
        // The seed's shape (seed-spec §3.6): command, pid int or "unknown", user, host.
        let r = NetReport::from_json(
            "port",
            br#"{"status":"ok","tool":"lsof","listening_services":[
                {"command":"sshd","pid":812,"user":"root","host":"*","port":22,"protocol":"tcp"},
                {"command":"tftpd","pid":"unknown","user":null,"host":"0.0.0.0","port":69,"protocol":"tcp"}],
              "findings":[{"type":"insecure-port","severity":"high","port":69,"command":"tftpd",
                "recommendation":"Use SFTP"}]}"#,
        );
        assert_eq!(r.method(), "lsof");
        let l = r.listeners();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].comm.as_deref(), Some("sshd"));
        assert_eq!(l[0].pid, Some(812));
        assert_eq!(l[0].uid.as_deref(), Some("root"));
        assert_eq!(l[0].address.as_deref(), Some("*"));
        assert_eq!(l[1].pid, None, "\"unknown\" is an unknown owner, not a pid");
        assert_eq!(r.unknown_owner_count(), 1);
        let f = r.findings_of("insecure-port");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].recommendation.as_deref(), Some("Use SFTP"));
        assert!(r.findings_of("unapproved-port").is_empty());
    }
}
