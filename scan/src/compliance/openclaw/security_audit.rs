//! `openclaw security audit --json` as OpenClaw prints it: `summary` counts and `findings`
//! (`checkId`, `severity`, `title`, `detail`, `remediation`), plus `suppressedFindings` when
//! `security.audit.suppressions` hides some. Which findings bear on which of occ-scan's checks
//! is decided here, by checkId; what they mean for a verdict is the checks' business.

use serde::Deserialize;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// `security.exposure.open_groups_with_elevated`, `channels.telegram.dm.open`, ….
    pub check_id: String,
    /// `critical`, `warn` or `info`.
    pub severity: String,
    /// One line.
    #[serde(default)]
    pub title: String,
    /// The detail (often lists the config paths at fault, one `- path` a line).
    #[serde(default)]
    pub detail: String,
    /// What to change.
    #[serde(default)]
    pub remediation: Option<String>,
    /// Whether `security.audit.suppressions` hid it from OpenClaw's own summary.
    #[serde(skip)]
    pub suppressed: bool,
}

impl Finding {
    /// Whether it is critical.
    pub fn critical(&self) -> bool {
        self.severity == "critical"
    }

    /// The config paths the detail lists (`- channels.telegram.accounts.work.dmPolicy`).
    pub fn paths(&self) -> Vec<&str> {
        self.detail
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- "))
            .map(str::trim)
            .filter(|p| !p.is_empty() && !p.contains(char::is_whitespace) && p.contains('.'))
            .collect()
    }

    /// `critical security.exposure.open_groups_with_elevated: Open group/DM policy … (paths)`.
    pub fn describe(&self) -> String {
        let paths = self.paths();
        format!(
            "{} {}{}: {}{}",
            self.severity,
            self.check_id,
            if self.suppressed {
                " (suppressed in OpenClaw's security.audit.suppressions)"
            } else {
                ""
            },
            self.title,
            if paths.is_empty() {
                String::new()
            } else {
                format!(" ({})", paths.join(", "))
            }
        )
    }
}

/// The audit's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityAudit {
    /// Critical findings OpenClaw counted.
    pub critical: u64,
    /// Warnings.
    pub warn: u64,
    /// Informational.
    pub info: u64,
    /// Every finding, suppressed ones included (marked).
    pub findings: Vec<Finding>,
}

#[derive(Deserialize)]
struct Summary {
    #[serde(default)]
    critical: u64,
    #[serde(default)]
    warn: u64,
    #[serde(default)]
    info: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    summary: Summary,
    findings: Vec<Finding>,
    #[serde(default)]
    suppressed_findings: Vec<Finding>,
}

/// Reads the JSON `openclaw security audit --json` printed.
pub fn parse(stdout: &str) -> Result<SecurityAudit, String> {
    let raw: Raw = serde_json::from_str(stdout.trim()).map_err(|e| {
        format!(
            "`openclaw security audit --json` printed something occ-scan cannot read ({e}): {}",
            stdout.trim().lines().next().unwrap_or("")
        )
    })?;
    let mut findings = raw.findings;
    findings.extend(raw.suppressed_findings.into_iter().map(|mut f| {
        f.suppressed = true;
        f
    }));
    Ok(SecurityAudit {
        critical: raw.summary.critical,
        warn: raw.summary.warn,
        info: raw.summary.info,
        findings,
    })
}

/// The areas of occ-scan's checks that OpenClaw's audit speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Who may message the agent: DM and group policies, allowlists, and what open rooms reach.
    Channels,
    /// Group mention gating (OpenClaw's channel warnings that mention it).
    Mentions,
    /// The gateway's bind, auth and exposure.
    Gateway,
    /// Permissions of OpenClaw's state directory, config, includes and credentials.
    Files,
}

impl Area {
    /// Whether a finding bears on this area.
    pub fn covers(self, f: &Finding) -> bool {
        let id = f.check_id.as_str();
        match self {
            Area::Channels => {
                (id.starts_with("channels.") && !mentions_text(f))
                    || id.starts_with("security.exposure.")
                    || id.starts_with("tools.elevated.allowFrom.")
            }
            Area::Mentions => id.starts_with("channels.") && mentions_text(f),
            Area::Gateway => id.starts_with("gateway."),
            Area::Files => id.starts_with("fs."),
        }
    }
}

fn mentions_text(f: &Finding) -> bool {
    let t = format!("{} {}", f.title, f.detail).to_ascii_lowercase();
    t.contains("requiremention") || t.contains("unmentioned")
}

impl SecurityAudit {
    /// The findings in `area`, critical first.
    pub fn in_area(&self, area: Area) -> Vec<&Finding> {
        let mut v: Vec<&Finding> = self.findings.iter().filter(|f| area.covers(f)).collect();
        v.sort_by_key(|f| !f.critical());
        v
    }

    /// `3 critical, 2 warn, 1 info` (OpenClaw's own count, suppressed findings aside).
    pub fn counts(&self) -> String {
        format!(
            "{} critical, {} warn, {} info",
            self.critical, self.warn, self.info
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What OpenClaw 2026.9.6 printed for a config whose telegram account `work` has
    /// `dmPolicy: "open"`, `allowFrom: ["*"]` and `groupPolicy: "open"` (details shortened).
    pub const REAL: &str = r#"{
  "ts": 1796617118861,
  "summary": {"critical": 3, "warn": 2, "info": 1},
  "findings": [
    {"checkId": "summary.attack_surface", "severity": "info", "title": "Attack surface summary",
     "detail": "groups: open=0, allowlist=2\ntools.elevated: enabled"},
    {"checkId": "gateway.trusted_proxies_missing", "severity": "warn",
     "title": "Reverse proxy headers are not trusted",
     "detail": "gateway.bind is loopback and gateway.trustedProxies is empty.",
     "remediation": "Set gateway.trustedProxies to your proxy IPs or keep the Control UI local-only."},
    {"checkId": "security.exposure.open_groups_with_elevated", "severity": "critical",
     "title": "Open group/DM policy with elevated tools enabled",
     "detail": "Found inbound policy=\"open\" at:\n- channels.telegram.accounts.work.groupPolicy\n- channels.telegram.accounts.work.dmPolicy\nWith tools.elevated enabled, a prompt injection in those conversations can become a high-impact incident.",
     "remediation": "Set each listed group/DM policy to \"allowlist\" and keep elevated allowlists extremely tight."},
    {"checkId": "security.exposure.open_groups_with_runtime_or_fs", "severity": "critical",
     "title": "Open group/DM policy with runtime/filesystem tools exposed",
     "detail": "Found inbound policy=\"open\" at:\n- channels.telegram.accounts.work.groupPolicy\n- channels.telegram.accounts.work.dmPolicy\nRisky tool exposure contexts:\n- agents.defaults (sandbox=off; runtime=[exec, process])"},
    {"checkId": "security.exposure.open_groups_with_control_plane_tools", "severity": "critical",
     "title": "Open group/DM policy with control-plane tools exposed",
     "detail": "Found inbound policy=\"open\" at:\n- channels.telegram.accounts.work.groupPolicy"},
    {"checkId": "security.trust_model.multi_user_heuristic", "severity": "warn",
     "title": "Potential multi-user setup detected (personal-assistant model warning)",
     "detail": "Heuristic signals indicate this gateway may be reachable by multiple users."}
  ],
  "secretDiagnostics": []
}"#;

    #[test]
    fn reads_the_real_shape_and_sorts_findings_into_areas() {
        let a = parse(REAL).unwrap();
        assert_eq!(a.counts(), "3 critical, 2 warn, 1 info");
        let ch = a.in_area(Area::Channels);
        assert_eq!(ch.len(), 3);
        assert!(ch.iter().all(|f| f.critical()));
        assert_eq!(
            ch[0].paths(),
            [
                "channels.telegram.accounts.work.groupPolicy",
                "channels.telegram.accounts.work.dmPolicy"
            ]
        );
        assert!(ch[0].describe().starts_with(
            "critical security.exposure.open_groups_with_elevated: Open group/DM policy with elevated tools enabled (channels.telegram.accounts.work.groupPolicy"
        ));
        // The risky-tool context line is not a config path of the finding's own.
        assert!(!ch[1].paths().iter().any(|p| p.starts_with("agents.")));
        assert_eq!(a.in_area(Area::Gateway).len(), 1);
        assert!(a.in_area(Area::Files).is_empty());
        assert!(a.in_area(Area::Mentions).is_empty());
    }

    #[test]
    fn suppressed_findings_still_count_and_say_so() {
        let text = r#"{"summary": {"critical": 0, "warn": 0, "info": 1},
            "findings": [{"checkId": "security.audit.suppressions.active", "severity": "info", "title": "t", "detail": ""}],
            "suppressedFindings": [{"checkId": "channels.telegram.dm.open", "severity": "critical",
              "title": "Telegram DMs are open", "detail": "- channels.telegram.dmPolicy"}]}"#;
        let a = parse(text).unwrap();
        let ch = a.in_area(Area::Channels);
        assert_eq!(ch.len(), 1);
        assert!(ch[0].suppressed && ch[0].critical());
        assert!(
            ch[0].describe().contains("suppressed"),
            "{}",
            ch[0].describe()
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_clean_audit() {
        assert!(parse("").is_err());
        assert!(parse("Security audit: 0 critical").is_err());
        assert!(parse(r#"{"summary": {}}"#).is_err(), "no findings list");
    }
}
