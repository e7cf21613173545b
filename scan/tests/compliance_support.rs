//! Helpers for the compliance tests: a fully compliant OCC_HOME and a host whose probes all
//! look good, which each test then breaks in one way.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use occ_policy::boundary::{
    AccessSeen, AgentSeen, BrokerSeen, Facts, FilesSeen, SudoSeen, SystemPaths,
};
use occ_scan::compliance::audit::{self, AuditOutcome};
use occ_scan::compliance::facts::{Agent, BrokerProbe, GatewayProc, Host, OpenClawCli};
use occ_scan::compliance::map::ControlsMap;
use occ_scan::compliance::model::{CheckResult, NetReport, Status};
use occ_scan::compliance::openclaw::instance::Instance;
use occ_scan::compliance::report;
use occ_scan::compliance::state::ScanState;
use occ_scan::compliance::util;
use occ_scan::paths::Paths;
use serde_json::json;

pub const TOKEN_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

pub fn write(p: &Path, text: &str) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(p, text).unwrap();
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes a script the test will run (mode 0755). A `cp` child process puts it in place, so no
/// write descriptor of this multi-threaded test process ever points at it: another test
/// thread's child could inherit one between its fork and exec, and running the script then
/// fails with "Text file busy" (ETXTBSY).
pub fn write_exe(p: &Path, text: &str) {
    let name = p.file_name().unwrap().to_string_lossy();
    let staging = p.with_file_name(format!(".{name}.staging"));
    write(&staging, text);
    let st = std::process::Command::new("cp")
        .arg("--")
        .arg(&staging)
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success(), "cp {} failed: {st}", p.display());
    std::fs::remove_file(&staging).unwrap();
    chmod(p, 0o755);
}

/// A temporary OCC_HOME where every file-based check is compliant.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub paths: Paths,
}

impl Home {
    pub fn sec(&self, name: &str) -> PathBuf {
        self.paths.security_file(name)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.paths.home.join(rel)
    }

    /// Rewrites the install manifest for the current shim.
    pub fn write_manifest(&self) {
        let shim = self.paths.shim();
        let h = util::sha256_file(&shim).unwrap();
        write(
            &self.paths.install_manifest(),
            &serde_json::to_string(&json!({"version": 1, "files": [
                {"path": shim.display().to_string(), "sha256": h, "kind": "binary"}
            ]}))
            .unwrap(),
        );
    }

    /// Appends `n` events to the audit log through occ-audit's writer.
    pub fn append_audit(&self, n: usize) {
        let mut w = occ_audit::Writer::open(self.sec("privileged-audit.jsonl"), Default::default())
            .unwrap();
        for i in 0..n {
            let mut f = BTreeMap::new();
            f.insert("submituser".to_string(), occ_audit::Value::from("agent"));
            f.insert("n".to_string(), occ_audit::Value::from(i as i64));
            w.append("approval_granted", f).unwrap();
        }
    }
}

pub fn good_home() -> Home {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("occ home");
    let paths = Paths::at(&home);
    let h = Home { dir, paths };
    write(
        &h.sec("broker.json"),
        &json!({
            "version": 1,
            "approval": {"token_sha256": TOKEN_HASH, "channels": ["queue"], "pending_expiry_minutes": 30},
            "session": {"require_session_id": true, "idle_timeout_minutes": 30},
            "audit": {"fsync": "always"}
        })
        .to_string(),
    );
    write(
        &h.sec("command-policy.json"),
        r#"{"version": 2, "allow": ["/usr/bin/systemctl restart nginx", "/usr/bin/apt-get install nginx"], "deny": ["/usr/bin/rm"]}"#,
    );
    write(
        &h.sec("prompt-policy.json"),
        r#"{"require_confirmation_for_untrusted": true}"#,
    );
    write(
        &h.sec("egress_allowlist.json"),
        r#"[{"protocol": "tcp", "port": 443, "host": "api.openai.com"}, {"cidr": "10.0.0.0/8"}]"#,
    );
    write(
        &h.sec("approved_ports.json"),
        r#"[{"port": 18789, "protocol": "tcp", "bind": "127.0.0.1"}]"#,
    );
    // JSON5: comments, unquoted keys, trailing commas.
    write(
        &h.paths.openclaw_json(),
        &format!(
            r#"{{
  // OpenClaw config
  gateway: {{ mode: "local", bind: "loopback", port: 18789, auth: {{ mode: "token", token: "x" }}, }},
  tools: {{ exec: {{ pathPrepend: ["{}"] }} }},
  channels: {{
    telegram: {{ enabled: true, dmPolicy: "allowlist", allowFrom: ["12345"],
                groups: {{ "-100": {{ requireMention: true }} }} }},
  }},
}}"#,
            h.paths.home.join("bin").display()
        ),
    );
    write(&h.path("backups/occ-2026.tar"), "backup bytes");
    write(
        &h.paths.shim(),
        "#!/bin/false\noccs shim stand-in for tests\n",
    );
    chmod(&h.paths.shim(), 0o755);
    h.write_manifest();
    h.append_audit(3);
    for d in [h.paths.home.clone(), h.paths.security()] {
        chmod(&d, 0o700);
    }
    for f in ["broker.json", "command-policy.json"] {
        chmod(&h.sec(f), 0o600);
    }
    chmod(&h.paths.openclaw_json(), 0o600);
    h
}

/// A port report read the way `assess --ports-report FILE` reads one.
pub fn ports_ok(listeners: serde_json::Value, findings: serde_json::Value) -> NetReport {
    let v = json!({"status": "ok", "method": "proc", "listening_services": listeners, "findings": findings});
    let r = NetReport::from_json("port", v.to_string().as_bytes());
    assert!(matches!(r, NetReport::Ok(_)), "{r:?}");
    r
}

/// An egress report read the way `assess --egress-report FILE` reads one.
pub fn egress_ok(connections: serde_json::Value, findings: serde_json::Value) -> NetReport {
    let v = json!({"status": "ok", "method": "proc", "connections": connections, "findings": findings,
        "blind_spots": ["short-lived connections between scans"]});
    let r = NetReport::from_json("egress", v.to_string().as_bytes());
    assert!(matches!(r, NetReport::Ok(_)), "{r:?}");
    r
}

/// A host where every probe looks good for `home`.
pub fn good_host(h: &Home) -> Host {
    let bin = h.paths.home.join("bin");
    Host {
        agent: Agent {
            // The files' owner, so the ownership checks pass whoever runs the tests; the
            // gateway below runs as 1000, so the agent is never root.
            uid: std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(h.dir.path()).unwrap()),
            groups: vec!["agent".into()],
        },
        gateway: Some(GatewayProc {
            pid: 4242,
            uid: Some(1000),
            comm: "openclaw-gatewa".into(),
            path_env: Ok(Some(format!("{}:/usr/bin:/bin", bin.display()))),
            env: Default::default(),
        }),
        // OpenClaw's default instance: occ's home; its home (where archives are looked for)
        // inside the test's directory, never the real one.
        openclaw_instance: Ok(Instance::default_at(
            &h.paths.home,
            Some(h.dir.path().join("user home")),
        )),
        priv_tools: Vec::new(),
        openclaw: Some(OpenClawCli {
            modified: Some(SystemTime::now() - Duration::from_secs(86_400 * 10)),
            ..OpenClawCli::unasked(
                "/usr/local/bin/openclaw".into(),
                Ok("openclaw 2026.11.1".into()),
            )
        }),
        broker: BrokerProbe::Up(json!({"running": true, "pid": 77})),
        ports: ports_ok(
            json!([{"address": "127.0.0.1", "port": 18789, "protocol": "tcp", "pid": 4242, "comm": "openclaw-gatewa"}]),
            json!([]),
        ),
        egress: egress_ok(
            json!([{"address": "10.0.0.5", "port": 40000, "remote_address": "10.1.2.3", "remote_port": 443, "protocol": "tcp", "state": "ESTABLISHED", "pid": 4242, "comm": "node", "allowed_by": 1}]),
            json!([]),
        ),
        own_path: Some("/usr/bin:/bin".into()),
        system: good_system(),
    }
}

/// System mode installed and sound: an agent with no sudo rights that is no approver, root's
/// files, a root broker.
pub fn good_system() -> Facts {
    Facts {
        paths: SystemPaths::standard(),
        installed: true,
        access: Ok(AccessSeen {
            requesters: vec!["agent".into()],
            approvers: vec!["alice".into(), "%ops".into()],
            unknown: vec![],
        }),
        agents: vec![AgentSeen {
            name: "agent".into(),
            uid: 1500,
            groups: vec!["agent".into()],
            sudo: SudoSeen::Listed(vec![]),
            sudoers_lines: vec![],
        }],
        files: FilesSeen {
            problems: vec![],
            unchecked: vec![],
            checked: 12,
        },
        broker: BrokerSeen::Answers {
            pid: 77,
            uid: 0,
            proc_uids: Some([0; 4]),
            pid_file: Some(77),
        },
    }
}

/// Verifies the audit log the way assess does.
pub fn audit_of(h: &Home) -> AuditOutcome {
    audit::verify(&h.paths, None).0
}

/// Runs every check.
pub fn evaluate(h: &Home, host: &Host, audit: &AuditOutcome) -> BTreeMap<String, CheckResult> {
    let map = ControlsMap::embedded().unwrap();
    let mut state = ScanState::default();
    report::evaluate(&h.paths, &map, host, audit, SystemTime::now(), &mut state)
        .into_iter()
        .map(|r| (r.check_id.clone(), r))
        .collect()
}

/// Runs one check and returns its result.
pub fn check(h: &Home, host: &Host, id: &str) -> CheckResult {
    let audit = audit_of(h);
    evaluate(h, host, &audit).remove(id).unwrap()
}

pub fn assert_status(r: &CheckResult, want: Status, case: &str) {
    assert_eq!(
        r.status, want,
        "{case}: {} is {:?}: observed {:?}, evidence {:?}, error {:?}",
        r.check_id, r.status, r.observed_state, r.evidence, r.error
    );
    if want == Status::NotAssessed {
        assert!(r.error.is_some(), "{case}: not_assessed without an error");
    }
    if want == Status::Compliant {
        assert!(
            r.gap.is_empty() && r.mitigation.is_empty(),
            "{case}: compliant with a gap"
        );
    } else {
        assert!(
            !r.mitigation.is_empty(),
            "{case}: failing without a mitigation"
        );
    }
}
