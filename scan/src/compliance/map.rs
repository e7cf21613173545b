//! The controls map: each check id with its ISO/IEC 27001:2022 Annex A, NIST CSF 2.0 and
//! NIST SP 800-53 r5 controls, default risk, owner and remediation window. The map ships in
//! `references/compliance-controls-map.json` and is embedded at build time.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::model::Risk;
use crate::error::ScanError;

/// The embedded map's text.
pub const EMBEDDED: &str = include_str!("../../../references/compliance-controls-map.json");

/// One control in the map.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Stable check id (the seed's ids plus occ's three).
    pub check_id: String,
    /// Short title.
    pub title: String,
    /// ISO/IEC 27001:2022 Annex A controls, e.g. `A.8.2`.
    pub iso27001: Vec<String>,
    /// NIST CSF 2.0 subcategories, e.g. `PR.AA-05` (the seed's key name).
    pub nist: Vec<String>,
    /// NIST SP 800-53 r5 controls, e.g. `AC-6(10)`.
    pub sp800_53: Vec<String>,
    /// Risk when the check is a violation.
    pub default_risk: Risk,
    /// Who fixes it.
    pub owner: String,
    /// Days from first seen to due.
    pub due_days: u32,
    /// What compliant looks like.
    pub expected_state: String,
}

/// The parsed map, in file order.
#[derive(Debug, Clone)]
pub struct ControlsMap {
    /// Controls in file order.
    pub controls: Vec<Control>,
}

impl ControlsMap {
    /// The map shipped with this build.
    pub fn embedded() -> Result<Self, ScanError> {
        Self::parse(
            EMBEDDED,
            Path::new("references/compliance-controls-map.json"),
        )
    }

    /// Parses a map file's text, checking ids are unique and framework ids well formed.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ScanError> {
        let controls: Vec<Control> = serde_json::from_str(text).map_err(|e| {
            ScanError::invalid(
                path,
                &format!("line {}", e.line()),
                e.to_string(),
                "make it a JSON array of control objects as in references/",
            )
        })?;
        let mut seen = std::collections::HashSet::new();
        for c in &controls {
            if !seen.insert(c.check_id.clone()) {
                return Err(ScanError::invalid(
                    path,
                    &c.check_id,
                    "duplicate check_id",
                    "keep one entry per check",
                ));
            }
            for id in &c.iso27001 {
                if !valid_iso(id) {
                    return Err(bad_id(path, &c.check_id, "iso27001", id));
                }
            }
            for id in &c.nist {
                if !valid_csf2(id) {
                    return Err(bad_id(path, &c.check_id, "nist", id));
                }
            }
            for id in &c.sp800_53 {
                if !valid_sp800_53(id) {
                    return Err(bad_id(path, &c.check_id, "sp800_53", id));
                }
            }
        }
        Ok(ControlsMap { controls })
    }

    /// The control for a check id.
    pub fn get(&self, check_id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.check_id == check_id)
    }
}

fn bad_id(path: &Path, check: &str, key: &str, id: &str) -> ScanError {
    ScanError::invalid(
        path,
        &format!("{check}.{key}"),
        format!("{id:?} is not a valid id for this framework"),
        "use ISO 27001:2022 Annex A (A.5.1-A.8.34), NIST CSF 2.0 (e.g. PR.AA-05) or SP 800-53 r5 (e.g. AC-6(10))",
    )
}

/// ISO/IEC 27001:2022 Annex A: themes 5 (37 controls), 6 (8), 7 (14), 8 (34).
pub fn valid_iso(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("A.") else {
        return false;
    };
    let Some((theme, n)) = rest.split_once('.') else {
        return false;
    };
    let max = match theme {
        "5" => 37,
        "6" => 8,
        "7" => 14,
        "8" => 34,
        _ => return false,
    };
    n.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n)) && !n.starts_with('0')
}

/// NIST CSF 2.0 subcategories (categories and their highest subcategory number; CSF 1.1's
/// PR.IP, PR.AC, PR.PT and DE.DP are gone in 2.0).
pub fn valid_csf2(id: &str) -> bool {
    const CATS: &[(&str, u32)] = &[
        ("GV.OC", 5),
        ("GV.RM", 7),
        ("GV.RR", 4),
        ("GV.PO", 2),
        ("GV.OV", 3),
        ("GV.SC", 10),
        ("ID.AM", 8),
        ("ID.RA", 10),
        ("ID.IM", 4),
        ("PR.AA", 6),
        ("PR.AT", 2),
        ("PR.DS", 11),
        ("PR.PS", 6),
        ("PR.IR", 4),
        ("DE.CM", 9),
        ("DE.AE", 8),
        ("RS.MA", 5),
        ("RS.AN", 8),
        ("RS.CO", 3),
        ("RS.MI", 2),
        ("RC.RP", 6),
        ("RC.CO", 4),
    ];
    let Some((cat, n)) = id.split_once('-') else {
        return false;
    };
    let Some(&(_, max)) = CATS.iter().find(|(c, _)| *c == cat) else {
        return false;
    };
    n.len() == 2 && n.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n))
}

/// NIST SP 800-53 r5 control ids: a family, a number, and an optional enhancement.
pub fn valid_sp800_53(id: &str) -> bool {
    const FAMILIES: &[&str] = &[
        "AC", "AT", "AU", "CA", "CM", "CP", "IA", "IR", "MA", "MP", "PE", "PL", "PM", "PS", "PT",
        "RA", "SA", "SC", "SI", "SR",
    ];
    let Some((fam, rest)) = id.split_once('-') else {
        return false;
    };
    if !FAMILIES.contains(&fam) {
        return false;
    }
    let (num, enh) = match rest.split_once('(') {
        Some((n, e)) => match e.strip_suffix(')') {
            Some(e) => (n, Some(e)),
            None => return false,
        },
        None => (rest, None),
    };
    let ok_num = |s: &str| !s.is_empty() && !s.starts_with('0') && s.parse::<u32>().is_ok();
    ok_num(num) && enh.is_none_or(ok_num)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_map_is_valid_and_complete() {
        let m = ControlsMap::embedded().unwrap();
        assert_eq!(m.controls.len(), 24);
        let ids: Vec<&str> = m.controls.iter().map(|c| c.check_id.as_str()).collect();
        let table: Vec<&str> = super::super::checks::CHECKS.iter().map(|c| c.id).collect();
        assert_eq!(
            ids, table,
            "the checks table follows the map, id for id and in order"
        );
    }

    #[test]
    fn framework_ids() {
        assert!(valid_iso("A.8.2") && valid_iso("A.5.37") && !valid_iso("A.8.35"));
        assert!(!valid_iso("A.12.4.1"));
        assert!(valid_csf2("PR.AA-05") && !valid_csf2("PR.IP-01") && !valid_csf2("PR.AA-5"));
        assert!(valid_sp800_53("AC-6(10)") && valid_sp800_53("SI-4") && !valid_sp800_53("XX-1"));
    }
}
