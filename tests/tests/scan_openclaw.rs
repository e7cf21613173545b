//! occ-scan reads OpenClaw as it is, through the real binary: the instance
//! `OPENCLAW_CONFIG_PATH` selects with its `$include`s, every account of a channel judged
//! (`channels.defaults` is no channel), OpenClaw's own backup archives, and the gateway's
//! port from its environment. Then the same with the real `openclaw` CLI (OpenClaw 2026.9.6
//! from `OCC_OPENCLAW_DIR`): its `security audit --json` cited, its backup record read.
//! OpenClaw runs offline: none of its commands here connects anywhere but 127.0.0.1.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn control(v: &Value, id: &str) -> Value {
    v["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no {id} in {v}"))
}

fn evidence_has(c: &Value, needle: &str) -> bool {
    c["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap_or("").contains(needle))
}

/// The issue's shape: a closed channel, an open account (in an included file).
const ACCOUNTS: &str = r#"{
  // included from openclaw.json
  work: { botToken: "123456:ABC", dmPolicy: "open", allowFrom: ["*"], groupPolicy: "open",
          groups: { "-1001234567890": {} } },
}"#;

#[test]
fn scan_openclaw_config_path_includes_accounts_backups_and_the_gateway_port() {
    let _gateway = occ_tests::gateway_lock();
    let d = tempfile::tempdir().unwrap();
    let occ_home = d.path().join("occ");
    let home = d.path().join("home");
    let oc = d.path().join("etc-openclaw");
    std::fs::create_dir_all(&occ_home).unwrap();
    // occ's home holds a harmless openclaw.json that must not be what is judged.
    write(&occ_home.join("openclaw.json"), "{channels: {}}");
    write(
        &oc.join("openclaw.json"),
        r#"{
  gateway: { mode: "local", bind: "loopback", auth: { mode: "token", token: "t" } },
  channels: {
    defaults: { groupPolicy: "allowlist" },
    telegram: { dmPolicy: "pairing", allowFrom: ["123456789"], accounts: { $include: "./accounts.json5" } },
  },
}"#,
    );
    write(&oc.join("accounts.json5"), ACCOUNTS);
    // `openclaw backup create`'s archive, where it writes without --output: the home.
    let archive = home.join("2026-12-07T04-19-30.822+00-00-openclaw-backup.tar.gz");
    write(&archive, "archive bytes");
    // A stand-in gateway whose environment sets its port, as its systemd unit does.
    let gw = d.path().join("openclaw-gateway");
    occ_tests::copy_exe("/bin/sleep", &gw);
    let mut child = Command::new(&gw)
        .arg("30")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("OPENCLAW_GATEWAY_PORT", "19876")
        .spawn()
        .unwrap();
    let pid = child.id();
    let ports = d.path().join("ports.json");
    write(
        &ports,
        &format!(
            r#"{{"status":"ok","tool":"proc","listening_services":[
              {{"address":"127.0.0.1","port":19876,"protocol":"tcp","pid":{pid},"comm":"openclaw-gatewa"}}],
            "findings":[{{"type":"unapproved-port","address":"127.0.0.1","port":19876,"protocol":"tcp","pid":{pid},"comm":"openclaw-gatewa"}}]}}"#
        ),
    );
    let p = ports.to_str().unwrap();
    let pid_arg = pid.to_string();
    let out = Command::new(occ_tests::bin("occ-scan"))
        .args(["--json", "assess", "--skip-openclaw", "--no-reports"])
        .args([
            "--ports-report",
            p,
            "--egress-report",
            p,
            "--gateway-pid",
            &pid_arg,
        ])
        .env("OCC_HOME", &occ_home)
        .env("OCC_MODE", "user")
        .env("HOME", &home)
        .env("OPENCLAW_CONFIG_PATH", oc.join("openclaw.json"))
        .env_remove("OPENCLAW_STATE_DIR")
        .env_remove("OPENCLAW_PROFILE")
        .env_remove("OPENCLAW_HOME")
        .env_remove("OPENCLAW_GATEWAY_PORT")
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let v = json_of(&out);

    let c = control(&v, "channel_allowlist_configured");
    assert_eq!(c["status"], "violation", "{c}");
    assert_eq!(
        c["observed_state"],
        "open to anyone: telegram.accounts.work (dmPolicy=open, groupPolicy=open)",
        "{c}"
    );
    assert!(
        evidence_has(
            &c,
            &format!(
                "read from {}/openclaw.json and 1 included file(s), read by occ-scan",
                oc.display()
            )
        ),
        "{c}"
    );
    assert!(evidence_has(&c, "openclaw security audit not run"), "{c}");
    assert!(
        !evidence_has(&c, "defaults:"),
        "channels.defaults judged as a channel: {c}"
    );

    let m = control(&v, "group_mentions_required");
    assert_eq!(m["status"], "compliant", "{m}");
    assert!(
        evidence_has(&m, "telegram.accounts.work.groups.-1001234567890"),
        "{m}"
    );

    let p = control(&v, "open_ports_approved");
    assert_eq!(p["status"], "compliant", "{p}");
    assert!(
        evidence_has(&p, &format!("approved as OpenClaw's gateway port 19876 (OPENCLAW_GATEWAY_PORT in the gateway's environment (pid {pid})): 127.0.0.1:19876/tcp")),
        "{p}"
    );

    let b = control(&v, "backup_configured");
    assert_eq!(b["status"], "compliant", "{b}");
    assert!(
        b["evidence"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("newest: {}, 0 day(s) old", archive.display())),
        "{b}"
    );
}

/// The real CLI: `openclaw backup create`, then occ-scan with the CLI on PATH.
#[test]
fn scan_openclaw_cites_the_real_security_audit_and_backup_record() {
    let Some(inst) = crate::openclaw::install_or_skip() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    let state = home.join(".openclaw");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let port = crate::openclaw::free_port();
    write(
        &state.join("openclaw.json"),
        &format!(
            r#"{{
  gateway: {{ mode: "local", bind: "loopback", port: {port},
             auth: {{ mode: "token", token: "occ-scan-test-token-0123456789abcdef" }} }},
  update: {{ checkOnStart: false }},
  discovery: {{ mdns: {{ mode: "off" }} }},
  channels: {{
    defaults: {{ groupPolicy: "allowlist" }},
    telegram: {{ enabled: true, dmPolicy: "pairing", allowFrom: ["123456789"],
                accounts: {{ $include: "./accounts.json5" }} }},
  }},
}}"#
        ),
    );
    write(&state.join("accounts.json5"), ACCOUNTS);
    for f in ["openclaw.json", "accounts.json5"] {
        std::fs::set_permissions(
            state.join(f),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        inst.node_bin.display(),
        inst.cli_bin.display()
    );
    let env = |c: &mut Command| {
        c.env_clear()
            .env("HOME", &home)
            .env("PATH", &path)
            .env("LANG", "C")
            .env("OCC_MODE", "user")
            // The instance is this one, whatever gateway runs elsewhere on the host.
            .env("OPENCLAW_STATE_DIR", &state)
            .env("OPENCLAW_NO_AUTO_UPDATE", "1")
            .env("OPENCLAW_DISABLE_BONJOUR", "1")
            .env("OPENCLAW_SKIP_CHANNELS", "1")
            .current_dir(&home);
    };
    // OpenClaw records backup runs in its state database, which a gateway that has run (or
    // any state command, as here) has created; without it the run goes unrecorded.
    let mut c = Command::new(inst.cli_bin.join("openclaw"));
    c.args(["tasks", "list", "--json"]);
    env(&mut c);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "openclaw tasks list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backups = home.join("Backups");
    std::fs::create_dir_all(&backups).unwrap();
    let mut c = Command::new(inst.cli_bin.join("openclaw"));
    c.args(["backup", "create", "--json", "--output"])
        .arg(&backups);
    env(&mut c);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "openclaw backup create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created = json_of(&out);
    let archive = created["archivePath"].as_str().unwrap().to_string();

    let empty = d.path().join("empty.json");
    write(
        &empty,
        r#"{"status":"ok","tool":"proc","listening_services":[],"findings":[]}"#,
    );
    let e = empty.to_str().unwrap();
    let mut c = Command::new(occ_tests::bin("occ-scan"));
    c.args(["--json", "assess", "--no-reports", "--child-timeout", "60"])
        .args(["--ports-report", e, "--egress-report", e]);
    env(&mut c);
    c.env("OCC_HOME", &state);
    let v = json_of(&c.output().unwrap());

    let ch = control(&v, "channel_allowlist_configured");
    assert_eq!(ch["status"], "violation", "{ch}");
    assert_eq!(ch["risk"], "critical", "{ch}");
    let observed = ch["observed_state"].as_str().unwrap();
    assert!(
        observed.starts_with("openclaw security audit: ")
            && observed.contains(" critical: security.exposure.open_groups_with_"),
        "{ch}"
    );
    assert!(
        evidence_has(&ch, "(channels.telegram.accounts.work.groupPolicy"),
        "{ch}"
    );
    assert!(
        evidence_has(
            &ch,
            &format!(
                "read from `openclaw config get` (config {}/openclaw.json)",
                state.display()
            )
        ),
        "{ch}"
    );
    assert!(
        evidence_has(
            &ch,
            "telegram.accounts.work: dmPolicy=open, allowFrom=[123456789], groupPolicy=open"
        ),
        "{ch}"
    );

    let b = control(&v, "backup_configured");
    assert_eq!(b["status"], "compliant", "{b}");
    let first = b["evidence"][0].as_str().unwrap();
    assert!(
        first.starts_with(&format!("newest: {archive}, 0 day(s) old"))
            && first.ends_with("from OpenClaw's backup record (archive backup)"),
        "{b}"
    );

    let g = control(&v, "gateway_loopback_only");
    assert_eq!(g["status"], "compliant", "{g}");
    assert!(
        evidence_has(&g, &format!("port={port} (gateway.port)")),
        "{g}"
    );
    assert!(evidence_has(&g, "openclaw security audit: "), "{g}");
}
