//! A check's verdict: status, what was observed, the evidence, the gap and the fix. Built by
//! the checks; merged with the controls map by `report`. It never decides a status itself.

use crate::compliance::model::{Risk, Status};

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
    pub(super) fn new(status: Status, observed: impl Into<String>) -> Verdict {
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

    pub(super) fn ev(mut self, e: impl Into<String>) -> Verdict {
        self.evidence.push(e.into());
        self
    }

    pub(super) fn evs(mut self, e: impl IntoIterator<Item = String>) -> Verdict {
        self.evidence.extend(e);
        self
    }

    pub(super) fn risk(mut self, r: Risk) -> Verdict {
        self.risk = Some(r);
        self
    }
}
