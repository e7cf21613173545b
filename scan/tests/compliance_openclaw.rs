//! The OpenClaw checks read OpenClaw as it is: every account named in the evidence, OpenClaw's
//! own security audit cited (and occ-scan's reading named as the fallback when there is none),
//! the config another instance selects (`OPENCLAW_CONFIG_PATH`, a profile) with its
//! `$include`s, OpenClaw's backup archives with their path and age, and the gateway's own port.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use occ_scan::compliance::model::Status::{Compliant, NotAssessed, Partial, Violation};
use occ_scan::compliance::openclaw::cli::CliConfig;
use occ_scan::compliance::openclaw::instance::{self, EnvVars, Origin};
use occ_scan::compliance::openclaw::{backups, security_audit};
use serde_json::json;

use crate::compliance_checks::AUDIT_OPEN_ACCOUNT;
use crate::compliance_support::*;

/// The issue's risky config: the channel is closed, its account `work` is not.
const RISKY: &str = r#"{
  // OpenClaw config with per-account settings
  gateway: { mode: "local", bind: "loopback", port: 18789, auth: { mode: "token", token: "x" } },
  channels: {
    defaults: { groupPolicy: "allowlist" },
    telegram: {
      enabled: true,
      dmPolicy: "pairing",
      allowFrom: ["123456789"],
      accounts: {
        work: {
          botToken: "123456:ABC",
          dmPolicy: "open",
          allowFrom: ["*"],
          groupPolicy: "open",
          groups: { "-1001234567890": { requireMention: false } },
        },
      },
    },
  },
}"#;

fn has(evidence: &[String], needle: &str) -> bool {
    evidence.iter().any(|e| e.contains(needle))
}

#[test]
fn every_account_is_named_and_openclaws_own_audit_is_cited() {
    let h = good_home();
    write(&h.paths.openclaw_json(), RISKY);
    let mut host = good_host(&h);
    // The CLI answered: its config and its audit.
    let channels: serde_json::Value =
        json5::from_str::<serde_json::Value>(RISKY).unwrap()["channels"].clone();
    let o = host.openclaw.as_mut().unwrap();
    o.config = Some(Ok(CliConfig {
        file: h.paths.openclaw_json(),
        channels: Some(channels),
        gateway: None,
    }));
    o.security_audit = Some(security_audit::parse(AUDIT_OPEN_ACCOUNT));
    let all = evaluate(&h, &host, &audit_of(&h));

    let r = &all["channel_allowlist_configured"];
    assert_eq!(r.status, Violation, "{r:?}");
    assert_eq!(
        r.observed_state,
        "openclaw security audit: 3 critical: security.exposure.open_groups_with_elevated, \
         security.exposure.open_groups_with_runtime_or_fs, \
         security.exposure.open_groups_with_control_plane_tools"
    );
    assert_eq!(r.risk.as_str(), "critical");
    assert!(
        has(
            &r.evidence,
            "openclaw security audit: 3 critical, 2 warn, 1 info"
        ),
        "{:?}",
        r.evidence
    );
    assert!(has(&r.evidence, "(channels.telegram.accounts.work.groupPolicy, channels.telegram.accounts.work.dmPolicy)"), "{:?}", r.evidence);
    assert!(
        has(&r.evidence, "read from `openclaw config get`"),
        "{:?}",
        r.evidence
    );
    // Telegram keeps the channel's listed allowFrom over the account's "*" (OpenClaw's rule);
    // dmPolicy=open and groupPolicy=open still open the account.
    assert!(
        has(
            &r.evidence,
            "telegram.accounts.work: dmPolicy=open, allowFrom=[123456789], groupPolicy=open"
        ),
        "{:?}",
        r.evidence
    );
    assert!(
        has(&r.evidence, "occ-scan's reading: open to anyone: telegram.accounts.work (dmPolicy=open, groupPolicy=open)"),
        "{:?}",
        r.evidence
    );
    assert!(r.mitigation.contains("allowlist"), "{}", r.mitigation);

    // The account's group needs no mention: the channel's own settings do not hide it.
    let m = &all["group_mentions_required"];
    assert_eq!(m.status, Violation, "{m:?}");
    assert!(
        has(&m.evidence, "telegram.accounts.work.groups.-1001234567890"),
        "{:?}",
        m.evidence
    );
    assert!(
        has(
            &m.evidence,
            "openclaw security audit: 3 critical, 2 warn, 1 info; 0 finding(s) for this control"
        ),
        "{:?}",
        m.evidence
    );
}

#[test]
fn without_the_cli_occ_scans_own_reading_decides_and_says_so() {
    let h = good_home();
    write(&h.paths.openclaw_json(), RISKY);
    let mut host = good_host(&h);
    host.openclaw = None;
    let r = &evaluate(&h, &host, &audit_of(&h))["channel_allowlist_configured"];
    assert_eq!(r.status, Violation, "{r:?}");
    assert_eq!(
        r.observed_state,
        "open to anyone: telegram.accounts.work (dmPolicy=open, groupPolicy=open)"
    );
    assert!(
        has(&r.evidence, "openclaw security audit not run (the openclaw CLI was not found, or --skip-openclaw); judged from occ-scan's reading alone"),
        "{:?}",
        r.evidence
    );
    assert!(
        has(&r.evidence, &format!("read from {}, read by occ-scan (the openclaw CLI was not found, or --skip-openclaw)", h.paths.openclaw_json().display())),
        "{:?}",
        r.evidence
    );

    // A CLI whose audit fails: the evidence says so, occ-scan's reading stands.
    let mut host = good_host(&h);
    host.openclaw.as_mut().unwrap().security_audit = Some(Err(
        "`openclaw security audit --json` exited Some(1): boom".into(),
    ));
    let r = &evaluate(&h, &host, &audit_of(&h))["channel_allowlist_configured"];
    assert_eq!(r.status, Violation);
    assert!(has(&r.evidence, "openclaw security audit failed (`openclaw security audit --json` exited Some(1): boom)"), "{:?}", r.evidence);
    // A clean audit does not clear what occ-scan's reading finds.
    let mut host = good_host(&h);
    host.openclaw.as_mut().unwrap().security_audit = Some(security_audit::parse(
        r#"{"summary": {"critical": 0, "warn": 0, "info": 0}, "findings": []}"#,
    ));
    assert_eq!(
        evaluate(&h, &host, &audit_of(&h))["channel_allowlist_configured"].status,
        Violation
    );
}

#[test]
fn the_config_another_instance_selects_is_read_with_its_includes() {
    let h = good_home();
    // occ's home holds a harmless config; the instance OPENCLAW_CONFIG_PATH selects is elsewhere
    // and opens an account through an include.
    let other = h.dir.path().join("oc-work");
    write(
        &other.join("main.json5"),
        r#"{ gateway: { bind: "loopback", port: 19789, auth: { mode: "token" } },
             channels: { telegram: { allowFrom: ["1"], accounts: { $include: "./accounts/all.json5" } } } }"#,
    );
    write(
        &other.join("accounts/all.json5"),
        r#"{ ops: { dmPolicy: "open", allowFrom: ["*"] } }"#,
    );
    let own: EnvVars = [
        ("HOME", h.dir.path().join("user home").display().to_string()),
        (
            "OPENCLAW_CONFIG_PATH",
            other.join("main.json5").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let i = instance::resolve(&own, None, &h.paths.home, &PathBuf::from("/")).unwrap();
    assert_eq!(i.origin, Origin::OwnEnv);
    let mut host = good_host(&h);
    host.openclaw_instance = Ok(i);
    host.openclaw = None;
    host.ports = ports_ok(
        json!([]),
        json!([{"type": "unapproved-port", "address": "127.0.0.1", "port": 19789, "protocol": "tcp", "pid": 4242, "comm": "openclaw-gatewa"}]),
    );
    let all = evaluate(&h, &host, &audit_of(&h));
    let r = &all["channel_allowlist_configured"];
    assert_eq!(r.status, Violation, "{r:?}");
    assert!(
        r.observed_state.contains("telegram.accounts.ops"),
        "{}",
        r.observed_state
    );
    assert!(
        has(
            &r.evidence,
            "main.json5 and 1 included file(s), read by occ-scan"
        ),
        "{:?}",
        r.evidence
    );
    // The gateway's port comes from that config, and the gateway on it is approved.
    let p = &all["open_ports_approved"];
    assert_eq!(p.status, Compliant, "{p:?}");
    assert!(
        has(
            &p.evidence,
            "approved as OpenClaw's gateway port 19789 (gateway.port): 127.0.0.1:19789/tcp"
        ),
        "{:?}",
        p.evidence
    );

    // An include that cannot be read: not assessed, naming the file.
    std::fs::remove_file(other.join("accounts/all.json5")).unwrap();
    let r = &evaluate(&h, &host, &audit_of(&h))["channel_allowlist_configured"];
    assert_eq!(r.status, NotAssessed, "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("accounts/all.json5"),
        "{:?}",
        r.error
    );

    // A variable OpenClaw would not accept stops the OpenClaw checks, naming it.
    host.openclaw_instance = Err("OPENCLAW_PROFILE=\"../x\" is not a profile name".into());
    let r = &evaluate(&h, &host, &audit_of(&h))["gateway_loopback_only"];
    assert_eq!(r.status, NotAssessed);
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("OPENCLAW_PROFILE"),
        "{:?}",
        r.error
    );
}

#[test]
fn a_profiles_gateway_port_is_its_own() {
    // `--profile work` without gateway.port: OpenClaw's port for that profile, 41984.
    let h = good_home();
    write(
        &h.paths.openclaw_json(),
        r#"{gateway: {bind: "loopback", auth: {mode: "token"}}}"#,
    );
    let mut host = good_host(&h);
    let mut i = instance::Instance::default_at(&h.paths.home, None);
    i.profile = Some("work".into());
    host.openclaw_instance = Ok(i);
    host.ports = ports_ok(
        json!([]),
        json!([{"type": "unapproved-port", "address": "127.0.0.1", "port": 41984, "protocol": "tcp", "pid": 4242, "comm": "openclaw-gatewa"},
               {"type": "unapproved-port", "address": "127.0.0.1", "port": 18789, "protocol": "tcp", "pid": 4242, "comm": "openclaw-gatewa"}]),
    );
    let p = &evaluate(&h, &host, &audit_of(&h))["open_ports_approved"];
    assert_eq!(p.status, Partial, "{p:?}");
    assert_eq!(
        p.observed_state,
        "1 unapproved listening socket(s): 127.0.0.1:18789/tcp"
    );
    assert!(has(&p.evidence, "approved as OpenClaw's gateway port 41984 (OpenClaw's default for profile work): 127.0.0.1:41984/tcp"), "{:?}", p.evidence);
}

#[test]
fn backups_name_the_archive_and_its_age() {
    let h = good_home();
    std::fs::remove_dir_all(h.path("backups")).unwrap();
    let archive = h
        .dir
        .path()
        .join("Backups/2026-12-07T04-19-41.166+00-00-openclaw-backup.tar.gz");
    write(&archive, "archive");
    let at = SystemTime::now() - Duration::from_secs(86_400 * 2 + 60);
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // The newest attempt (into the state directory) failed; the one before it wrote the archive.
    let status = json!({"backups": {
        "latest": {"id": "2", "createdAt": ms + 1000, "archivePath": h.paths.home.join("backups").display().to_string(),
                   "status": "failed", "kind": "archive",
                   "error": "Backup output must not be written inside a source path"},
        "latestOk": {"id": "1", "createdAt": ms, "archivePath": archive.display().to_string(), "status": "ok", "kind": "archive"}}});
    let mut host = good_host(&h);
    host.openclaw.as_mut().unwrap().backups = Some(backups::parse_status(&status.to_string()));
    let r = &evaluate(&h, &host, &audit_of(&h))["backup_configured"];
    assert_eq!(r.status, Compliant, "{r:?}");
    assert!(
        r.evidence[0].starts_with(&format!("newest: {}, 2 day(s) old (", archive.display())),
        "{:?}",
        r.evidence
    );
    assert!(
        r.evidence[0].ends_with("from OpenClaw's backup record (archive backup)"),
        "{:?}",
        r.evidence
    );
    assert!(
        has(&r.evidence, "OpenClaw's newest backup attempt failed"),
        "{:?}",
        r.evidence
    );

    // No record and no archive anywhere: a violation that says where it looked.
    let mut host = good_host(&h);
    std::fs::remove_file(&archive).unwrap();
    host.openclaw.as_mut().unwrap().backups = Some(backups::parse_status(r#"{"backups": {}}"#));
    let r = &evaluate(&h, &host, &audit_of(&h))["backup_configured"];
    assert_eq!(r.status, Violation, "{r:?}");
    assert!(
        has(&r.evidence, "OpenClaw records no successful backup"),
        "{:?}",
        r.evidence
    );
    assert!(
        has(&r.evidence, "no *-openclaw-backup.tar.gz in"),
        "{:?}",
        r.evidence
    );
    assert!(
        r.mitigation.contains("openclaw backup create --output"),
        "{}",
        r.mitigation
    );
}
