//! Evidence-based compliance for occ: the checks behind `occ-scan assess`, the reports
//! (summary JSON, HTML dashboard, Prometheus textfile), `notify`, `preflight`, `cycle` and
//! `schedule`. A check that cannot gather its evidence says `not_assessed`; it never reads a
//! failure as "compliant".

pub mod audit;
pub mod checks;
pub mod cycle;
pub mod dashboard;
pub mod facts;
pub mod files;
pub mod map;
pub mod netscan;
pub mod notify;
pub mod preflight;
pub mod prom;
pub mod report;
pub mod schedule;
pub mod state;
pub mod util;

use serde::{Deserialize, Serialize};

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
