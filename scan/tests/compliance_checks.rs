//! Every compliance check in its compliant, partial, violation and not_assessed forms,
//! including the seed's reproduced false passes (a dummy `exit 0` shim, `allowFrom: ["*"]`,
//! a missing lsof, an empty egress report), now judged on evidence.

use std::time::{Duration, SystemTime};

use occ_policy::boundary::{BrokerSeen, PathProblem, SudoSeen};
use occ_scan::compliance::checks::CHECKS;
use occ_scan::compliance::facts::{BrokerProbe, ExecPathConfig, PrivTool};
use occ_scan::compliance::model::NetReport;
use occ_scan::compliance::model::Status::{self, Compliant, NotAssessed, Partial, Violation};
use occ_scan::compliance::openclaw::{backups, security_audit};
use serde_json::json;

use crate::compliance_support::*;

/// OpenClaw 2026.9.6's audit of a config whose telegram account `work` is open (the real
/// output, details shortened).
pub const AUDIT_OPEN_ACCOUNT: &str = r#"{"ts": 1796617118861, "summary": {"critical": 3, "warn": 2, "info": 1},
 "findings": [
  {"checkId": "summary.attack_surface", "severity": "info", "title": "Attack surface summary", "detail": "groups: open=0, allowlist=2"},
  {"checkId": "gateway.trusted_proxies_missing", "severity": "warn", "title": "Reverse proxy headers are not trusted",
   "detail": "gateway.bind is loopback and gateway.trustedProxies is empty.", "remediation": "Set gateway.trustedProxies to your proxy IPs or keep the Control UI local-only."},
  {"checkId": "security.exposure.open_groups_with_elevated", "severity": "critical", "title": "Open group/DM policy with elevated tools enabled",
   "detail": "Found inbound policy=\"open\" at:\n- channels.telegram.accounts.work.groupPolicy\n- channels.telegram.accounts.work.dmPolicy\nWith tools.elevated enabled, a prompt injection in those conversations can become a high-impact incident.",
   "remediation": "Set each listed group/DM policy to \"allowlist\" and keep elevated allowlists extremely tight."},
  {"checkId": "security.exposure.open_groups_with_runtime_or_fs", "severity": "critical", "title": "Open group/DM policy with runtime/filesystem tools exposed",
   "detail": "Found inbound policy=\"open\" at:\n- channels.telegram.accounts.work.groupPolicy\n- channels.telegram.accounts.work.dmPolicy"},
  {"checkId": "security.exposure.open_groups_with_control_plane_tools", "severity": "critical", "title": "Open group/DM policy with control-plane tools exposed",
   "detail": "Found inbound policy=\"open\" at:\n- channels.telegram.accounts.work.groupPolicy\n- channels.telegram.accounts.work.dmPolicy"},
  {"checkId": "security.trust_model.multi_user_heuristic", "severity": "warn", "title": "Potential multi-user setup detected (personal-assistant model warning)", "detail": "Heuristic signals"}
 ], "secretDiagnostics": []}"#;

/// An audit whose only critical finding is a world-readable config.
const AUDIT_FS_CRITICAL: &str = r#"{"summary": {"critical": 1, "warn": 0, "info": 0}, "findings": [
  {"checkId": "fs.config.perms_world_readable", "severity": "critical", "title": "Config file is world-readable",
   "detail": "/home/a/.openclaw/openclaw.json mode=644", "remediation": "chmod 600 /home/a/.openclaw/openclaw.json"}]}"#;

type Setup = fn(&Home, &mut occ_scan::compliance::facts::Host);

fn broker(h: &Home, v: serde_json::Value) {
    write(&h.sec("broker.json"), &v.to_string());
}

/// What `openclaw config get` answered for the exec PATH keys.
fn set_exec_path(
    host: &mut occ_scan::compliance::facts::Host,
    global: serde_json::Value,
    entries: Option<serde_json::Value>,
) {
    if let Some(o) = host.openclaw.as_mut() {
        o.exec_path = Some(Ok(ExecPathConfig {
            global: Some(global),
            entries,
        }));
    }
}

/// What `openclaw security audit --json` answered.
fn set_audit(host: &mut occ_scan::compliance::facts::Host, text: &str) {
    if let Some(o) = host.openclaw.as_mut() {
        o.security_audit = Some(security_audit::parse(text));
    }
}

/// OpenClaw's backup record (`openclaw status --json`): one successful archive, `days` old.
fn set_backups(host: &mut occ_scan::compliance::facts::Host, archive: &std::path::Path, days: u64) {
    let at = SystemTime::now() - Duration::from_secs(86_400 * days);
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let text = json!({"backups": {"latestOk": {"id": "1", "createdAt": ms as u64,
        "archivePath": archive.display().to_string(), "status": "ok", "kind": "archive"}}});
    if let Some(o) = host.openclaw.as_mut() {
        o.backups = Some(backups::parse_status(&text.to_string()));
    }
}

fn unreadable(p: &std::path::Path) {
    // A Unix socket where a file should be: opening it fails (ENXIO) even for root, so the
    // evidence cannot be read at all. (A directory is readable evidence: the broker refuses it.)
    let _ = std::fs::remove_file(p);
    drop(std::os::unix::net::UnixListener::bind(p).unwrap());
}

fn set_age(p: &std::path::Path, days: u64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(86_400 * days))
        .unwrap();
}

const CASES: &[(&str, Status, &str, Setup)] = &[
    // privilege_approval_required
    ("privilege_approval_required", Compliant, "good", |_, _| {}),
    (
        "privilege_approval_required",
        Partial,
        "shim unverifiable (no manifest)",
        |h, _| std::fs::remove_file(h.paths.install_manifest()).unwrap(),
    ),
    (
        "privilege_approval_required",
        Violation,
        "seed: dummy exit-0 shim",
        |h, _| write(&h.paths.shim(), "#!/bin/sh\nexit 0\n"),
    ),
    (
        "privilege_approval_required",
        Violation,
        "stack without approve",
        |h, _| {
            broker(
                h,
                json!({"approval": {"stack": ["policy:requisite", "grant:sufficient"], "token_sha256": TOKEN_HASH}}),
            )
        },
    ),
    (
        "privilege_approval_required",
        NotAssessed,
        "broker.json unreadable",
        |h, _| unreadable(&h.sec("broker.json")),
    ),
    // least_privilege_enforced
    ("least_privilege_enforced", Compliant, "good", |_, _| {}),
    (
        "least_privilege_enforced",
        Partial,
        "deny-only policy",
        |h, _| {
            write(
                &h.sec("command-policy.json"),
                r#"{"version": 2, "deny": ["/usr/bin/rm"]}"#,
            )
        },
    ),
    (
        "least_privilege_enforced",
        Violation,
        "gateway runs as root",
        |_, host| {
            if let Some(g) = host.gateway.as_mut() {
                g.uid = Some(0)
            }
        },
    ),
    (
        "least_privilege_enforced",
        NotAssessed,
        "policy unreadable",
        |h, _| unreadable(&h.sec("command-policy.json")),
    ),
    // elevation_timeout_30m
    ("elevation_timeout_30m", Compliant, "good", |_, _| {}),
    (
        "elevation_timeout_30m",
        Partial,
        "60 idle minutes",
        |h, _| broker(h, json!({"session": {"idle_timeout_minutes": 60}})),
    ),
    (
        "elevation_timeout_30m",
        Violation,
        "240 idle minutes",
        |h, _| broker(h, json!({"session": {"idle_timeout_minutes": 240}})),
    ),
    (
        "elevation_timeout_30m",
        NotAssessed,
        "broker.json unreadable",
        |h, _| unreadable(&h.sec("broker.json")),
    ),
    // audit_logging_privileged_actions
    (
        "audit_logging_privileged_actions",
        Compliant,
        "good",
        |_, _| {},
    ),
    (
        "audit_logging_privileged_actions",
        Partial,
        "fsync batch",
        |h, _| broker(h, json!({"audit": {"fsync": "batch"}})),
    ),
    (
        "audit_logging_privileged_actions",
        Violation,
        "no log",
        |h, _| std::fs::remove_file(h.sec("privileged-audit.jsonl")).unwrap(),
    ),
    (
        "audit_logging_privileged_actions",
        NotAssessed,
        "log path loops",
        |h, _| {
            let p = h.sec("privileged-audit.jsonl");
            std::fs::remove_file(&p).unwrap();
            std::os::unix::fs::symlink(&p, &p).unwrap();
        },
    ),
    // open_ports_approved
    ("open_ports_approved", Compliant, "good", |_, _| {}),
    (
        "open_ports_approved",
        Partial,
        "unapproved loopback listener",
        |_, host| {
            host.ports = ports_ok(
                json!([]),
                json!([{"type": "unapproved-port", "address": "127.0.0.1", "port": 9000, "protocol": "tcp"}]),
            )
        },
    ),
    (
        "open_ports_approved",
        Violation,
        "unapproved public listener",
        |_, host| {
            host.ports = ports_ok(
                json!([]),
                json!([{"type": "unapproved-port", "address": "0.0.0.0", "port": 8080, "protocol": "tcp"}]),
            )
        },
    ),
    (
        "open_ports_approved",
        Compliant,
        "OpenClaw's gateway on its own port, on loopback",
        |_, host| {
            host.ports = ports_ok(
                json!([]),
                json!([{"type": "unapproved-port", "address": "127.0.0.1", "port": 18789, "protocol": "tcp", "pid": 4242, "comm": "openclaw-gatewa"},
                       {"type": "unapproved-port", "address": "::1", "port": 18789, "protocol": "tcp", "pid": 4242, "comm": "openclaw-gatewa"}]),
            )
        },
    ),
    (
        "open_ports_approved",
        Partial,
        "another process on the gateway's port",
        |_, host| {
            host.ports = ports_ok(
                json!([]),
                json!([{"type": "unapproved-port", "address": "127.0.0.1", "port": 18789, "protocol": "tcp", "pid": 99, "comm": "python3"}]),
            )
        },
    ),
    (
        "open_ports_approved",
        Violation,
        "the gateway's port on every interface",
        |_, host| {
            host.ports = ports_ok(
                json!([]),
                json!([{"type": "unapproved-port", "address": "0.0.0.0", "port": 18789, "protocol": "tcp", "pid": 4242, "comm": "openclaw-gatewa"}]),
            )
        },
    ),
    (
        "open_ports_approved",
        NotAssessed,
        "seed: lsof missing, scan failed",
        |_, host| {
            host.ports = NetReport::from_json("port", br#"{"status":"error","error":"No supported port listing tool found (lsof/ss/netstat)"}"#)
        },
    ),
    // insecure_ports_remediated
    ("insecure_ports_remediated", Compliant, "good", |_, _| {}),
    (
        "insecure_ports_remediated",
        Partial,
        "telnet on loopback",
        |_, host| {
            host.ports = ports_ok(
                json!([]),
                json!([{"type": "insecure-port", "address": "127.0.0.1", "port": 23, "protocol": "tcp", "recommendation": "use SSH"}]),
            )
        },
    ),
    (
        "insecure_ports_remediated",
        Violation,
        "http on 0.0.0.0",
        |_, host| {
            host.ports = ports_ok(
                json!([]),
                json!([{"type": "insecure-port", "address": "0.0.0.0", "port": 80, "protocol": "tcp", "recommendation": "use HTTPS"}]),
            )
        },
    ),
    (
        "insecure_ports_remediated",
        NotAssessed,
        "seed: lsof missing, scan failed",
        |_, host| host.ports = NetReport::Failed("no /proc and no lsof".into()),
    ),
    // channel_allowlist_configured
    ("channel_allowlist_configured", Compliant, "good", |_, _| {}),
    (
        "channel_allowlist_configured",
        Partial,
        "pairing without allowFrom",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{channels: {telegram: {dmPolicy: "pairing"}}}"#,
            )
        },
    ),
    (
        "channel_allowlist_configured",
        Violation,
        "seed: allowFrom [*] on one channel",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{channels: {telegram: {allowFrom: ["12345"]}, discord: {allowFrom: ["*"]}}}"#,
            )
        },
    ),
    (
        "channel_allowlist_configured",
        NotAssessed,
        "no openclaw.json",
        |h, _| std::fs::remove_file(h.paths.openclaw_json()).unwrap(),
    ),
    (
        "channel_allowlist_configured",
        Compliant,
        "channels.defaults and modelByChannel are not channels",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{channels: {defaults: {groupPolicy: "allowlist"}, modelByChannel: {telegram: {"-100": "openai/gpt-5.4-mini"}}}}"#,
            )
        },
    ),
    (
        "channel_allowlist_configured",
        Violation,
        "issue 17: one account opens DMs under a closed channel",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{channels: {telegram: {dmPolicy: "allowlist", allowFrom: ["123"],
                    accounts: {home: {}, work: {dmPolicy: "open", allowFrom: ["*"]}}}}}"#,
            )
        },
    ),
    (
        "channel_allowlist_configured",
        Violation,
        "OpenClaw's own audit: a critical finding",
        |_, host| set_audit(host, AUDIT_OPEN_ACCOUNT),
    ),
    (
        "channel_allowlist_configured",
        NotAssessed,
        "an $include that cannot be read",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{channels: {$include: "./channels.json5"}}"#,
            )
        },
    ),
    // group_mentions_required
    ("group_mentions_required", Compliant, "good", |_, _| {}),
    (
        "group_mentions_required",
        Partial,
        "one of two groups",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{channels: {telegram: {groups: {"a": {requireMention: true}, "b": {requireMention: false}}}}}"#,
            )
        },
    ),
    (
        "group_mentions_required",
        Violation,
        "no group requires a mention",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{channels: {telegram: {groups: {"*": {requireMention: false}}}}, messages: {groupChat: {mentionPatterns: ["bot"]}}}"#,
            )
        },
    ),
    (
        "group_mentions_required",
        NotAssessed,
        "openclaw.json not JSON5",
        |h, _| write(&h.paths.openclaw_json(), "{ gateway: "),
    ),
    (
        "group_mentions_required",
        Violation,
        "an account's own groups replace the channel's",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{channels: {telegram: {groups: {"-1": {requireMention: true}},
                    accounts: {work: {groups: {"-2": {requireMention: false}}}}}}}"#,
            )
        },
    ),
    (
        "group_mentions_required",
        Compliant,
        "unset requireMention is OpenClaw's default: required",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{channels: {telegram: {groups: {"-1": {}}, accounts: {a: {}, b: {groups: {"-2": {topics: {"9": {}}}}}}}}}"#,
            )
        },
    ),
    // gateway_loopback_only
    ("gateway_loopback_only", Compliant, "good", |_, _| {}),
    (
        "gateway_loopback_only",
        Partial,
        "loopback without token auth",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{gateway: {bind: "loopback", auth: {mode: "none"}}}"#,
            )
        },
    ),
    ("gateway_loopback_only", Violation, "bind lan", |h, _| {
        write(
            &h.paths.openclaw_json(),
            r#"{gateway: {bind: "lan", auth: {mode: "token"}}}"#,
        )
    }),
    (
        "gateway_loopback_only",
        Violation,
        "config says loopback, socket says 0.0.0.0",
        |_, host| {
            host.ports = ports_ok(
                json!([{"address": "0.0.0.0", "port": 18789, "protocol": "tcp"}]),
                json!([]),
            )
        },
    ),
    (
        "gateway_loopback_only",
        NotAssessed,
        "no openclaw.json",
        |h, _| std::fs::remove_file(h.paths.openclaw_json()).unwrap(),
    ),
    (
        "gateway_loopback_only",
        Violation,
        "the gateway's OPENCLAW_GATEWAY_PORT listens on 0.0.0.0",
        |_, host| {
            if let Some(g) = host.gateway.as_mut() {
                g.env.insert("OPENCLAW_GATEWAY_PORT".into(), "19999".into());
            }
            host.ports = ports_ok(
                json!([{"address": "127.0.0.1", "port": 18789, "protocol": "tcp"},
                       {"address": "0.0.0.0", "port": 19999, "protocol": "tcp"}]),
                json!([]),
            )
        },
    ),
    // secrets_permissions_hardened
    ("secrets_permissions_hardened", Compliant, "good", |_, _| {}),
    (
        "secrets_permissions_hardened",
        Violation,
        "an included OpenClaw file is world-readable",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                r#"{channels: {$include: "./channels.json5"}}"#,
            );
            let inc = h.path("channels.json5");
            write(&inc, r#"{telegram: {allowFrom: ["1"]}}"#);
            chmod(&inc, 0o644);
        },
    ),
    (
        "secrets_permissions_hardened",
        Violation,
        "OpenClaw's own audit: its config is world-readable",
        |_, host| set_audit(host, AUDIT_FS_CRITICAL),
    ),
    (
        "secrets_permissions_hardened",
        Partial,
        "home 0755",
        |h, _| chmod(&h.paths.home, 0o755),
    ),
    (
        "secrets_permissions_hardened",
        Violation,
        "openclaw.json 0644",
        |h, _| chmod(&h.paths.openclaw_json(), 0o644),
    ),
    (
        "secrets_permissions_hardened",
        Violation,
        "command-policy.json 0666, which the broker refuses",
        |h, _| chmod(&h.sec("command-policy.json"), 0o666),
    ),
    (
        "secrets_permissions_hardened",
        Violation,
        "prompt-policy.json 0660, which the broker refuses",
        |h, _| chmod(&h.sec("prompt-policy.json"), 0o660),
    ),
    (
        "secrets_permissions_hardened",
        Violation,
        "command-policy.json a symlink, which the broker refuses",
        |h, _| {
            let p = h.sec("command-policy.json");
            std::fs::rename(&p, h.sec("real-policy.json")).unwrap();
            std::os::unix::fs::symlink("real-policy.json", &p).unwrap();
        },
    ),
    (
        "secrets_permissions_hardened",
        NotAssessed,
        "OCC_HOME missing",
        |h, _| std::fs::rename(&h.paths.home, h.dir.path().join("moved")).unwrap(),
    ),
    // runtime_privilege_hook_installed
    (
        "runtime_privilege_hook_installed",
        Compliant,
        "good",
        |_, _| {},
    ),
    (
        "runtime_privilege_hook_installed",
        Partial,
        "shim world-writable",
        |h, _| chmod(&h.paths.shim(), 0o777),
    ),
    (
        "runtime_privilege_hook_installed",
        Violation,
        "seed: dummy exit-0 shim",
        |h, _| write(&h.paths.shim(), "#!/bin/sh\nexit 0\n"),
    ),
    (
        "runtime_privilege_hook_installed",
        Violation,
        "no shim",
        |h, _| std::fs::remove_file(h.paths.shim()).unwrap(),
    ),
    (
        "runtime_privilege_hook_installed",
        NotAssessed,
        "no install manifest",
        |h, _| std::fs::remove_file(h.paths.install_manifest()).unwrap(),
    ),
    // alternate_privilege_paths_restricted
    (
        "alternate_privilege_paths_restricted",
        Compliant,
        "good",
        |_, _| {},
    ),
    (
        "alternate_privilege_paths_restricted",
        Partial,
        "setuid su present",
        |_, host| {
            host.priv_tools = vec![PrivTool {
                path: "/usr/bin/su".into(),
                setuid_root: true,
            }]
        },
    ),
    (
        "alternate_privilege_paths_restricted",
        Violation,
        "agent in sudo group",
        |_, host| host.agent.groups.push("sudo".into()),
    ),
    (
        "alternate_privilege_paths_restricted",
        NotAssessed,
        "gateway uid unreadable",
        |_, host| {
            if let Some(g) = host.gateway.as_mut() {
                g.uid = None
            }
        },
    ),
    // backup_configured
    ("backup_configured", Compliant, "good", |_, _| {}),
    ("backup_configured", Partial, "30-day-old backup", |h, _| {
        set_age(&h.path("backups/occ-2026.tar"), 30)
    }),
    (
        "backup_configured",
        Violation,
        "seed: one empty file",
        |h, _| write(&h.path("backups/occ-2026.tar"), ""),
    ),
    (
        "backup_configured",
        Compliant,
        "OpenClaw's recorded archive",
        |h, host| {
            std::fs::remove_dir_all(h.path("backups")).unwrap();
            let a = h
                .dir
                .path()
                .join("Backups/2026-12-07T04-19-41.166+00-00-openclaw-backup.tar.gz");
            write(&a, "archive");
            set_backups(host, &a, 0);
        },
    ),
    (
        "backup_configured",
        Compliant,
        "an OpenClaw archive by its name in the home",
        |h, _| {
            std::fs::remove_dir_all(h.path("backups")).unwrap();
            write(
                &h.dir
                    .path()
                    .join("user home/2026-12-07T04-19-30.822+00-00-openclaw-backup.tar.gz"),
                "archive",
            );
        },
    ),
    (
        "backup_configured",
        Violation,
        "OpenClaw's recorded archive is gone",
        |h, host| {
            std::fs::remove_dir_all(h.path("backups")).unwrap();
            set_backups(host, &h.dir.path().join("gone-openclaw-backup.tar.gz"), 0);
        },
    ),
    (
        "backup_configured",
        Partial,
        "OpenClaw's recorded archive is 20 days old",
        |h, host| {
            std::fs::remove_dir_all(h.path("backups")).unwrap();
            let a = h.dir.path().join("Backups/old-openclaw-backup.tar.gz");
            write(&a, "archive");
            set_backups(host, &a, 20);
        },
    ),
    (
        "backup_configured",
        NotAssessed,
        "backups is not a directory",
        |h, _| {
            std::fs::remove_dir_all(h.path("backups")).unwrap();
            write(&h.path("backups"), "x");
        },
    ),
    // update_hygiene
    ("update_hygiene", Compliant, "good", |_, _| {}),
    ("update_hygiene", Partial, "120 days old", |_, host| {
        if let Some(o) = host.openclaw.as_mut() {
            o.modified = Some(SystemTime::now() - Duration::from_secs(86_400 * 120))
        }
    }),
    ("update_hygiene", Violation, "400 days old", |_, host| {
        if let Some(o) = host.openclaw.as_mut() {
            o.modified = Some(SystemTime::now() - Duration::from_secs(86_400 * 400))
        }
    }),
    (
        "update_hygiene",
        NotAssessed,
        "no openclaw CLI",
        |_, host| host.openclaw = None,
    ),
    // prompt_injection_controls
    ("prompt_injection_controls", Compliant, "good", |_, _| {}),
    (
        "prompt_injection_controls",
        Partial,
        "stack skips untrusted",
        |h, _| {
            broker(
                h,
                json!({"approval": {"stack": ["policy:requisite", "approve:required", "token:required"], "token_sha256": TOKEN_HASH}}),
            )
        },
    ),
    (
        "prompt_injection_controls",
        Violation,
        "confirmation off",
        |h, _| {
            write(
                &h.sec("prompt-policy.json"),
                r#"{"require_confirmation_for_untrusted": false}"#,
            )
        },
    ),
    (
        "prompt_injection_controls",
        Violation,
        "empty file, which the broker refuses",
        |h, _| write(&h.sec("prompt-policy.json"), ""),
    ),
    (
        "prompt_injection_controls",
        NotAssessed,
        "unreadable",
        |h, _| unreadable(&h.sec("prompt-policy.json")),
    ),
    // command_policy_enforced
    ("command_policy_enforced", Compliant, "good", |_, _| {}),
    ("command_policy_enforced", Partial, "no rules", |h, _| {
        write(&h.sec("command-policy.json"), r#"{"version": 2}"#)
    }),
    (
        "command_policy_enforced",
        Violation,
        "bash with any args allowed",
        |h, _| {
            write(
                &h.sec("command-policy.json"),
                r#"{"version": 2, "allow": ["/bin/bash"]}"#,
            )
        },
    ),
    (
        "command_policy_enforced",
        Violation,
        "apt-get with any args: -o APT::Update::Pre-Invoke runs a command",
        |h, _| {
            write(
                &h.sec("command-policy.json"),
                r#"{"version": 2, "allow": ["/usr/bin/apt-get install *"]}"#,
            )
        },
    ),
    (
        "command_policy_enforced",
        Violation,
        "seed: regex template",
        |h, _| {
            write(
                &h.sec("command-policy.json"),
                r#"{"allow": ["^openclaw\\b"], "deny": ["\\brm\\s+-rf\\b"]}"#,
            )
        },
    ),
    (
        "command_policy_enforced",
        Violation,
        "unknown key",
        |h, _| {
            write(
                &h.sec("command-policy.json"),
                r#"{"version": 2, "alow": []}"#,
            )
        },
    ),
    (
        "command_policy_enforced",
        Violation,
        "broker refuses a group-writable policy",
        |h, _| chmod(&h.sec("command-policy.json"), 0o666),
    ),
    (
        "command_policy_enforced",
        Violation,
        "broker refuses a bad glob",
        |h, _| {
            write(
                &h.sec("command-policy.json"),
                r#"{"version": 2, "allow": ["/usr/bin/apt-get install [z-a"]}"#,
            )
        },
    ),
    (
        "command_policy_enforced",
        Violation,
        "a directory in its place, which the broker refuses",
        |h, _| {
            let p = h.sec("command-policy.json");
            std::fs::remove_file(&p).unwrap();
            std::fs::create_dir(&p).unwrap();
        },
    ),
    ("command_policy_enforced", Violation, "version 1", |h, _| {
        write(
            &h.sec("command-policy.json"),
            r#"{"version": 1, "allow": ["/usr/bin/systemctl restart nginx"]}"#,
        )
    }),
    (
        "command_policy_enforced",
        Violation,
        "broker.json with an unknown key, which the broker refuses",
        |h, _| {
            broker(
                h,
                json!({"approval": {"token_sha256": TOKEN_HASH}, "bogus": 1}),
            )
        },
    ),
    (
        "command_policy_enforced",
        NotAssessed,
        "unreadable",
        |h, _| unreadable(&h.sec("command-policy.json")),
    ),
    // session_boundary_enforced
    ("session_boundary_enforced", Compliant, "good", |_, _| {}),
    (
        "session_boundary_enforced",
        Partial,
        "60-minute sessions",
        |h, _| {
            broker(
                h,
                json!({"session": {"require_session_id": true, "idle_timeout_minutes": 60}}),
            )
        },
    ),
    (
        "session_boundary_enforced",
        Violation,
        "no session requirement",
        |h, _| {
            broker(h, json!({"session": {"require_session_id": false}}));
        },
    ),
    (
        "session_boundary_enforced",
        NotAssessed,
        "broker.json unreadable",
        |h, _| unreadable(&h.sec("broker.json")),
    ),
    // multi_factor_approval
    ("multi_factor_approval", Compliant, "good", |_, _| {}),
    (
        "multi_factor_approval",
        Partial,
        "plaintext token still in env",
        |h, _| write(&h.path("env"), "export OPENCLAW_APPROVAL_TOKEN='s3cret'\n"),
    ),
    ("multi_factor_approval", Violation, "no token", |h, _| {
        broker(h, json!({}))
    }),
    (
        "multi_factor_approval",
        Compliant,
        "a chosen token kept as argon2id",
        |h, _| {
            broker(
                h,
                json!({"approval": {
                    "token_argon2id": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"}}),
            )
        },
    ),
    (
        "multi_factor_approval",
        NotAssessed,
        "broker.json unreadable",
        |h, _| unreadable(&h.sec("broker.json")),
    ),
    // egress_allowlist_configured
    ("egress_allowlist_configured", Compliant, "good", |_, _| {}),
    (
        "egress_allowlist_configured",
        Partial,
        "seed: {} allows everything",
        |h, _| {
            write(
                &h.sec("egress_allowlist.json"),
                r#"[{"host": "api.openai.com"}, {}]"#,
            )
        },
    ),
    (
        "egress_allowlist_configured",
        Violation,
        "empty list",
        |h, _| write(&h.sec("egress_allowlist.json"), "[]"),
    ),
    (
        "egress_allowlist_configured",
        NotAssessed,
        "unreadable",
        |h, _| unreadable(&h.sec("egress_allowlist.json")),
    ),
    // egress_connections_approved
    ("egress_connections_approved", Compliant, "good", |_, _| {}),
    (
        "egress_connections_approved",
        Partial,
        "no allowlist to judge by",
        |h, _| std::fs::remove_file(h.sec("egress_allowlist.json")).unwrap(),
    ),
    (
        "egress_connections_approved",
        Violation,
        "unapproved destination",
        |_, host| {
            host.egress = egress_ok(
                json!([]),
                json!([{"type": "unapproved-egress", "remote_host": "203.0.113.9", "remote_port": 4444, "command": "nc"}]),
            )
        },
    ),
    (
        "egress_connections_approved",
        NotAssessed,
        "seed: empty egress from a failed scan",
        |_, host| {
            host.egress = NetReport::from_json("egress", br#"{"status":"error","error":"Failed to run lsof","connections":[],"findings":[]}"#)
        },
    ),
    // audit_log_integrity
    ("audit_log_integrity", Compliant, "good", |_, _| {}),
    (
        "audit_log_integrity",
        Partial,
        "no head checkpoint",
        |h, _| std::fs::remove_file(h.sec("audit-head.json")).unwrap(),
    ),
    (
        "audit_log_integrity",
        Violation,
        "one byte changed",
        |h, _| {
            let p = h.sec("privileged-audit.jsonl");
            let t = std::fs::read_to_string(&p)
                .unwrap()
                .replacen("agent", "agenT", 1);
            std::fs::write(&p, t).unwrap();
        },
    ),
    ("audit_log_integrity", NotAssessed, "no log", |h, _| {
        std::fs::remove_file(h.sec("privileged-audit.jsonl")).unwrap()
    }),
    // broker_reachable
    ("broker_reachable", Compliant, "good", |_, _| {}),
    (
        "broker_reachable",
        Partial,
        "old broker still running",
        |_, host| host.broker = BrokerProbe::Up(json!({"running": true, "version": "0.0.1"})),
    ),
    ("broker_reachable", Violation, "broker down", |_, host| {
        host.broker = BrokerProbe::Down("connection refused".into())
    }),
    (
        "broker_reachable",
        NotAssessed,
        "no occ client",
        |_, host| host.broker = BrokerProbe::NoClient("no occ binary".into()),
    ),
    // shim_first_in_path
    ("shim_first_in_path", Compliant, "good", |_, _| {}),
    (
        "shim_first_in_path",
        Compliant,
        "OpenClaw's own resolution wins over the file",
        |h, host| {
            write(&h.paths.openclaw_json(), "{}");
            set_exec_path(host, json!([h.paths.home.join("bin")]), None);
        },
    ),
    (
        "shim_first_in_path",
        Partial,
        "configured, gateway not running",
        |_, host| host.gateway = None,
    ),
    (
        // The drop-in route: the gateway's own PATH has the shim first, but OpenClaw puts the
        // login shell's PATH before it, so without pathPrepend nothing holds.
        "shim_first_in_path",
        Violation,
        "no pathPrepend, only the gateway's PATH",
        |h, _| write(&h.paths.openclaw_json(), "{}"),
    ),
    (
        "shim_first_in_path",
        Violation,
        "no pathPrepend, gateway not running",
        |h, host| {
            write(&h.paths.openclaw_json(), "{}");
            host.gateway = None;
        },
    ),
    (
        "shim_first_in_path",
        Violation,
        "an agent's own list replaces the global one (file)",
        |h, _| {
            write(
                &h.paths.openclaw_json(),
                &format!(
                    "{{tools: {{exec: {{pathPrepend: ['{}']}}}}, agents: {{entries: {{ops: {{tools: {{exec: {{pathPrepend: ['/usr/local/bin']}}}}}}}}}}}}",
                    h.paths.home.join("bin").display()
                ),
            );
        },
    ),
    (
        "shim_first_in_path",
        Violation,
        "an agent's own list replaces the global one (CLI)",
        |h, host| {
            let d = h.dir.path().join("sbin");
            write(&d.join("sudo"), "#!/bin/sh\n");
            chmod(&d.join("sudo"), 0o755);
            set_exec_path(
                host,
                json!([h.paths.home.join("bin")]),
                Some(json!({"main": {"tools": {"exec": {"pathPrepend": [d]}}}})),
            );
        },
    ),
    (
        "shim_first_in_path",
        Violation,
        "world-writable dir before the shim",
        |h, _| {
            let d = h.dir.path().join("open");
            std::fs::create_dir_all(&d).unwrap();
            chmod(&d, 0o777);
            write(
                &h.paths.openclaw_json(),
                &format!(
                    "{{tools: {{exec: {{pathPrepend: ['{}', '{}']}}}}}}",
                    d.display(),
                    h.paths.home.join("bin").display()
                ),
            );
        },
    ),
    (
        "shim_first_in_path",
        Violation,
        "real sudo first",
        |h, _| {
            let d = h.dir.path().join("sbin");
            write(&d.join("sudo"), "#!/bin/sh\n");
            chmod(&d.join("sudo"), 0o755);
            write(
                &h.paths.openclaw_json(),
                &format!(
                    "{{tools: {{exec: {{pathPrepend: ['{}', '{}']}}}}}}",
                    d.display(),
                    h.paths.home.join("bin").display()
                ),
            );
        },
    ),
    (
        "shim_first_in_path",
        NotAssessed,
        "gateway environ unreadable",
        |_, host| {
            if let Some(g) = host.gateway.as_mut() {
                g.path_env = Err("cannot read /proc/4242/environ: Permission denied".into())
            }
        },
    ),
    // system_mode_boundary
    ("system_mode_boundary", Compliant, "good", |_, _| {}),
    (
        "system_mode_boundary",
        Violation,
        "nothing answers the socket (no root service; every sudo fails closed)",
        |_, host| host.system.broker = BrokerSeen::Silent("no such socket".into()),
    ),
    (
        "system_mode_boundary",
        Violation,
        "agent has a NOPASSWD sudo rule",
        |_, host| host.system.agents[0].sudo = SudoSeen::Listed(vec!["(ALL) NOPASSWD: ALL".into()]),
    ),
    (
        "system_mode_boundary",
        Violation,
        "agent is an approver through a group",
        |_, host| host.system.agents[0].groups.push("ops".into()),
    ),
    (
        "system_mode_boundary",
        Violation,
        "a config file owned by the agent",
        |_, host| {
            host.system.files.problems.push(PathProblem {
                path: "/etc/occ/broker.json".into(),
                problem: "is owned by agent (uid 1500), not root".into(),
                fix: "chown root:root /etc/occ/broker.json".into(),
            })
        },
    ),
    (
        "system_mode_boundary",
        Violation,
        "a non-root process answers the socket",
        |_, host| {
            host.system.broker = BrokerSeen::Answers {
                pid: 77,
                uid: 1500,
                proc_uids: Some([1500; 4]),
                pid_file: Some(77),
            }
        },
    ),
    (
        "system_mode_boundary",
        NotAssessed,
        "system mode not installed (user mode)",
        |_, host| host.system.installed = false,
    ),
    (
        "system_mode_boundary",
        Partial,
        "sudo rights unlisted (not root): it holds where it could be checked",
        |_, host| host.system.agents[0].sudo = SudoSeen::Unknown("needs root".into()),
    ),
    (
        "system_mode_boundary",
        NotAssessed,
        "system mode not installed",
        |_, host| host.system.installed = false,
    ),
];

#[test]
fn every_check_is_compliant_on_a_good_home() {
    let h = good_home();
    let host = good_host(&h);
    let audit = audit_of(&h);
    let all = evaluate(&h, &host, &audit);
    assert_eq!(all.len(), CHECKS.len());
    for (id, r) in &all {
        assert_status(r, Compliant, &format!("good home: {id}"));
        assert!(r.due_date.is_none() && r.first_seen.is_none());
    }
}

#[test]
fn every_check_in_every_form() {
    let mut covered = std::collections::BTreeSet::new();
    for (id, want, case, setup) in CASES {
        let h = good_home();
        let mut host = good_host(&h);
        setup(&h, &mut host);
        let r = check(&h, &host, id);
        assert_status(&r, *want, case);
        covered.insert((id.to_string(), *want));
    }
    for id in CHECKS.iter().map(|c| c.id) {
        for s in [Compliant, Partial, Violation, NotAssessed] {
            assert!(
                covered.contains(&(id.to_string(), s)),
                "{id} has no {s:?} case"
            );
        }
    }
}

#[test]
fn seed_spoofed_home_is_not_nineteen_of_twenty() {
    // The seed's configured home: dummy shim, allowFrom ["*"], one empty backup, env-file
    // session flag and plaintext token. It was 19/20 compliant; now those fail.
    let h = good_home();
    write(&h.paths.shim(), "#!/bin/sh\nexit 0\n");
    write(
        &h.paths.openclaw_json(),
        r#"{gateway: {mode: "local", bind: "loopback", auth: {mode: "token"}}, channels: {a: {allowFrom: ["*"]}}}"#,
    );
    write(&h.path("backups/occ-2026.tar"), "");
    write(
        &h.path("env"),
        "OPENCLAW_REQUIRE_SESSION_ID=1\nOPENCLAW_APPROVAL_TOKEN=\"t\"\n",
    );
    broker(&h, json!({}));
    let host = good_host(&h);
    let all = evaluate(&h, &host, &audit_of(&h));
    for id in [
        "privilege_approval_required",
        "runtime_privilege_hook_installed",
        "channel_allowlist_configured",
        "backup_configured",
    ] {
        assert_eq!(
            all[id].status, Violation,
            "{id}: {:?}",
            all[id].observed_state
        );
    }
    assert_eq!(all["session_boundary_enforced"].status, Partial);
    assert_eq!(all["multi_factor_approval"].status, Partial);
}

#[test]
fn due_dates_count_from_first_seen_and_do_not_slide() {
    use occ_scan::compliance::map::ControlsMap;
    use occ_scan::compliance::report;
    use occ_scan::compliance::state::ScanState;
    let h = good_home();
    std::fs::remove_file(h.sec("privileged-audit.jsonl")).unwrap();
    let host = good_host(&h);
    let audit = audit_of(&h);
    let map = ControlsMap::embedded().unwrap();
    let mut state = ScanState::default();
    let day0 = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 20_000);
    let first = report::evaluate(&h.paths, &map, &host, &audit, day0, &mut state);
    let r0 = first
        .iter()
        .find(|r| r.check_id == "audit_logging_privileged_actions")
        .unwrap();
    assert_eq!(r0.status, Violation);
    let due = r0.due_date.clone().unwrap();
    // 30 days later the same finding keeps its due date and is overdue.
    let later = day0 + Duration::from_secs(86_400 * 30);
    let second = report::evaluate(&h.paths, &map, &host, &audit, later, &mut state);
    let r1 = second
        .iter()
        .find(|r| r.check_id == "audit_logging_privileged_actions")
        .unwrap();
    assert_eq!(r1.due_date.as_ref(), Some(&due));
    assert!(r1.overdue);
    // Compliant checks carry no gap, mitigation or due date, and count no risk.
    let ok = second.iter().find(|r| r.status == Compliant).unwrap();
    assert!(ok.gap.is_empty() && ok.due_date.is_none());
}

#[test]
fn incremental_audit_verification_resumes_and_catches_tampering() {
    use occ_scan::compliance::audit::{verify, AuditOutcome};
    let h = good_home();
    let (o, cp) = verify(&h.paths, None);
    assert!(matches!(o, AuditOutcome::Intact { events: 3, .. }), "{o:?}");
    let cp = cp.unwrap();
    assert_eq!(cp.seq, 2);
    h.append_audit(2);
    let (o, cp2) = verify(&h.paths, Some(&cp));
    assert!(
        matches!(
            o,
            AuditOutcome::Intact {
                events: 5,
                new_events: 2,
                head_checked: true,
                ..
            }
        ),
        "{o:?}"
    );
    // Tamper with an event before the checkpoint's record: the checkpointed record itself is
    // re-checked, so changing it forces the full verifier, which names the break.
    let p = h.sec("privileged-audit.jsonl");
    let text = std::fs::read_to_string(&p).unwrap();
    let last = text.lines().last().unwrap().to_string();
    let forged = text.replace(&last, &last.replacen("agent", "agenX", 1));
    std::fs::write(&p, forged).unwrap();
    let (o, _) = verify(&h.paths, cp2.as_ref());
    assert!(matches!(o, AuditOutcome::Broken { .. }), "{o:?}");
}

#[test]
fn audit_integrity_verifies_the_whole_rotated_chain_and_resumes_only_over_unchanged_archives() {
    use occ_scan::compliance::audit::{verify, AuditOutcome};
    let h = good_home();
    let log = h.sec("privileged-audit.jsonl");
    let mut w = occ_audit::Writer::open(&log, Default::default()).unwrap();
    let archive = w.rotate().unwrap().archive;
    drop(w);
    h.append_audit(1);
    let (o, cp) = verify(&h.paths, None);
    assert!(matches!(o, AuditOutcome::Intact { events: 5, .. }), "{o:?}");
    let cp = cp.expect("a checkpoint");
    assert_eq!(cp.archives.len(), 1, "{cp:?}");
    // Unchanged archives: the next run resumes.
    h.append_audit(1);
    let (o, cp2) = verify(&h.paths, Some(&cp));
    assert!(
        matches!(o, AuditOutcome::Intact { new_events: 1, .. }),
        "{o:?}"
    );
    // A rewritten archive (same length, same inode) whose mtime was set back, as its owner
    // can (`touch -r`), is still noticed: the kernel moved its ctime.
    let mtime = std::fs::metadata(&archive).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(&archive).unwrap();
    std::fs::write(&archive, text.replacen("agent", "agenX", 1)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&archive)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(
        std::fs::metadata(&archive).unwrap().modified().unwrap(),
        mtime
    );
    let (o, _) = verify(&h.paths, cp2.as_ref());
    assert!(matches!(o, AuditOutcome::Broken { .. }), "{o:?}");
}

#[test]
fn reports_escape_hostile_config_and_count_risk_of_failing_checks_only() {
    use occ_scan::compliance::model::{Assessment, FullScans, Metadata, Scans};
    use occ_scan::compliance::report;
    use occ_scan::compliance::{dashboard, prom};
    let h = good_home();
    // A channel name an attacker chose, reaching the evidence and so the dashboard.
    write(
        &h.paths.openclaw_json(),
        r#"{channels: {"<script>alert(1)</script>": {allowFrom: ["*"]}}}"#,
    );
    let mut host = good_host(&h);
    host.ports = ports_ok(
        json!([{"address": "0.0.0.0", "port": 80, "protocol": "tcp", "comm": "<img src=x onerror=alert(1)>"}]),
        json!([{"type": "insecure-port", "address": "0.0.0.0", "port": 80, "protocol": "tcp"}]),
    );
    let results: Vec<_> = evaluate(&h, &host, &audit_of(&h)).into_values().collect();
    let a = Assessment {
        metadata: Metadata {
            system: "OpenClaw".into(),
            generated_at_utc: "2026-01-01T00:00:00Z".into(),
            frameworks: vec![],
            occ_home: h.paths.home.display().to_string(),
            occ_scan_version: "test".into(),
            warnings: vec![],
        },
        checks: results,
        scans: Scans {
            ports: report::scan_summary(&host.ports),
            egress: json!({"status": "error", "error": "not run"}),
        },
        history: vec![],
        reports: FullScans {
            ports: Some(host.ports.clone()),
            egress: Some(NetReport::Failed("not run".into())),
        },
    };
    let html = dashboard::render(&a);
    assert!(
        !html.contains("<script"),
        "unescaped script in the dashboard"
    );
    assert!(!html.contains("<img"), "unescaped img in the dashboard");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(html.matches("<tr class=\"sock\">").count(), 1);
    assert_eq!(html.matches("class=\"mark\"").count(), CHECKS.len());
    let s = report::summary(&a);
    let failing = a.checks.iter().filter(|c| c.status.is_failing()).count() as u64;
    let risk: u64 = s["summary"]["risk_counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(risk, failing);
    assert_eq!(
        s["summary"]["mitigations"].as_array().unwrap().len() as u64,
        failing,
        "mitigations list failing checks only"
    );
    let p = prom::render(&a);
    assert!(p.contains("occ_scan_check_status{check_id=\"insecure_ports_remediated\",risk=\"high\",status=\"violation\"} 2"), "{p}");
    assert!(
        p.contains("occ_scan_findings{scan=\"ports\",type=\"insecure-port\"} 1"),
        "{p}"
    );
    assert!(p.contains("occ_scan_scan_ok{scan=\"egress\"} 0"), "{p}");
}

#[test]
fn defaults_alone_do_not_pass_without_an_installed_broker() {
    let h = good_home();
    std::fs::remove_file(h.sec("broker.json")).unwrap();
    // Installed (shim and manifest present): the broker's documented defaults apply.
    let host = good_host(&h);
    assert_eq!(check(&h, &host, "elevation_timeout_30m").status, Compliant);
    // Nothing installed: nothing to apply defaults to.
    std::fs::remove_file(h.paths.shim()).unwrap();
    std::fs::remove_file(h.paths.install_manifest()).unwrap();
    for id in ["elevation_timeout_30m", "prompt_injection_controls"] {
        let r = check(&h, &host, id);
        assert_eq!(r.status, NotAssessed, "{id}: {:?}", r.observed_state);
    }
}

#[test]
fn audit_logging_cites_what_the_running_broker_reports() {
    let h = good_home();
    let mut host = good_host(&h);
    host.broker = BrokerProbe::Up(
        json!({"broker": "up", "audit": {"fsync": "always", "syncs_before_answers": 3}}),
    );
    let r = &evaluate(&h, &host, &audit_of(&h))["audit_logging_privileged_actions"];
    assert_eq!(r.status, Compliant, "{r:?}");
    assert!(
        r.evidence
            .iter()
            .any(|e| e == "the running broker reports audit.fsync=always, 3 sync(s) before answers"),
        "{:?}",
        r.evidence
    );
    // A broker that says nothing about its audit adds no such line.
    let plain = &evaluate(&h, &good_host(&h), &audit_of(&h))["audit_logging_privileged_actions"];
    assert!(!plain.evidence.iter().any(|e| e.contains("running broker")));
}

/// How a row breaks command-policy.json.
type Break = fn(&std::path::Path);

/// Every way the broker refuses a policy file, one per line: preflight refuses it too.
const REFUSED_POLICY_FILES: &[(&str, Break)] = &[
    ("bad JSON", |p| write(p, r#"{"version": 2, "allow": ["#)),
    ("unknown key", |p| write(p, r#"{"version": 2, "alow": []}"#)),
    ("version 1", |p| write(p, r#"{"version": 1, "allow": []}"#)),
    ("regex rule", |p| {
        write(p, r#"{"version": 2, "allow": ["^ls\\b"]}"#)
    }),
    ("mode 0666", |p| chmod(p, 0o666)),
    ("mode 0660", |p| chmod(p, 0o660)),
    ("symlink", |p| {
        std::fs::rename(p, p.with_file_name("real-policy.json")).unwrap();
        std::os::unix::fs::symlink("real-policy.json", p).unwrap();
    }),
    ("empty file", |p| write(p, "")),
    ("directory", |p| {
        std::fs::remove_file(p).unwrap();
        std::fs::create_dir(p).unwrap();
    }),
];

#[test]
fn preflight_refuses_every_policy_file_the_broker_refuses() {
    use occ_scan::compliance::preflight::preflight;
    let invalid = |h: &Home| preflight(&h.paths).0["policy_files"]["invalid"].clone();
    let h = good_home();
    assert_eq!(invalid(&h), json!([]), "the good home's policy files load");
    for (case, breaks) in REFUSED_POLICY_FILES {
        let h = good_home();
        let file = h.sec("command-policy.json");
        breaks(&file);
        let (report, ok) = preflight(&h.paths);
        assert!(!ok, "{case}: {report}");
        assert!(
            report["critical"]
                .as_array()
                .unwrap()
                .contains(&json!("invalid_policy_files")),
            "{case}: {report}"
        );
        let why = report["policy_files"]["invalid"].to_string();
        assert!(why.contains("command-policy.json"), "{case}: {why}");
    }
}
