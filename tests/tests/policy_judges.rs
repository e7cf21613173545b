//! The four judges of a policy file agree. For every broken or unsafe kind of `broker.json`,
//! `command-policy.json` or `prompt-policy.json`, on a home installed by `occ install` and used
//! as the agent user: the broker refuses a `sudo` through the shim, `occ doctor` fails naming
//! the file, `occ-scan preflight` fails naming it, and the compliance check that judges it is
//! not compliant. One row per kind; each is put back before the next.
//!
//! Needs root (to become the agent and to chown to a foreign uid), the real sudo, and the
//! `occ-agent` user with its scoped NOPASSWD drop-in, all of which `.ci/run` sets up.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::approval::{ready, text};

const BROKER: &str = "broker.json";
const COMMAND: &str = "command-policy.json";
const PROMPT: &str = "prompt-policy.json";

/// A uid that owns nothing here (`nobody` on Debian): a foreign owner.
const FOREIGN_UID: u32 = 65534;

/// How a row breaks its file.
#[derive(Clone, Copy, Debug)]
enum Break {
    /// Replace the content (the agent's own 0600 file).
    Text(&'static str),
    /// Change the mode.
    Mode(u32),
    /// Give it to another uid (mode 0644, so the agent can still open it).
    ForeignOwner,
    /// Replace it with a symlink to an identical, private file beside it.
    Symlink,
}

/// One kind of broken or unsafe policy file and the judges that must refuse it.
struct Row {
    kind: &'static str,
    file: &'static str,
    how: Break,
    /// The `occ doctor` check that fails, naming the file.
    doctor: &'static str,
    /// The `occ-scan assess` check that must not be compliant.
    check: &'static str,
}

macro_rules! rows {
    ($($kind:literal: $file:ident $how:expr => $doctor:literal, $check:literal;)*) => {
        &[$(Row { kind: $kind, file: $file, how: $how, doctor: $doctor, check: $check },)*]
    };
}

use Break::{ForeignOwner, Mode, Symlink, Text};

const ROWS: &[Row] = rows! {
    // kind             file    how it breaks                                          doctor check, compliance check
    "bad JSON":          COMMAND Text(r#"{"version": 2, "allow": ["#)              => "policy", "command_policy_enforced";
    "unknown key":       COMMAND Text(r#"{"version": 2, "alow": []}"#)             => "policy", "command_policy_enforced";
    "version 1":         COMMAND Text(r#"{"version": 1, "allow": []}"#)            => "policy", "command_policy_enforced";
    "regex rule":        COMMAND Text(r#"{"version": 2, "allow": ["^ls\\b"]}"#)    => "policy", "command_policy_enforced";
    "mode 0666":         COMMAND Mode(0o666)                                       => "files",  "secrets_permissions_hardened";
    "mode 0660":         COMMAND Mode(0o660)                                       => "files",  "secrets_permissions_hardened";
    "foreign owner":     COMMAND ForeignOwner                                      => "files",  "secrets_permissions_hardened";
    "symlink":           COMMAND Symlink                                           => "files",  "secrets_permissions_hardened";
    "empty file":        COMMAND Text("")                                          => "policy", "command_policy_enforced";
    "unknown key":       BROKER  Text(r#"{"bogus": true}"#)                        => "policy", "command_policy_enforced";
    "version 2":         BROKER  Text(r#"{"version": 2}"#)                         => "policy", "command_policy_enforced";
    "mode 0666":         BROKER  Mode(0o666)                                       => "files",  "secrets_permissions_hardened";
    "foreign owner":     BROKER  ForeignOwner                                      => "files",  "secrets_permissions_hardened";
    "bad JSON":          PROMPT  Text("{")                                         => "policy", "prompt_injection_controls";
    "unknown key":       PROMPT  Text(r#"{"require_confirmation": true}"#)         => "policy", "prompt_injection_controls";
    "mode 0660":         PROMPT  Mode(0o660)                                       => "files",  "secrets_permissions_hardened";
    "symlink":           PROMPT  Symlink                                           => "files",  "secrets_permissions_hardened";
};

/// A home installed by `occ install` for the agent user, with the built binaries staged and a
/// `systemctl` that finds no user manager (so the broker is spawned, never a real unit).
struct Installed {
    dir: tempfile::TempDir,
    home: PathBuf,
    fakes: PathBuf,
    uid: u32,
    gid: u32,
}

impl Installed {
    fn new((uid, gid): (u32, u32)) -> Installed {
        let dir = tempfile::Builder::new()
            .prefix("occ-judges")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (home, stage, fakes) = (
            dir.path().join("h"),
            dir.path().join("stage"),
            dir.path().join("fakes"),
        );
        for d in [&home, &stage, &fakes] {
            std::fs::create_dir(d).unwrap();
        }
        for name in ["occ", "occ-scan", "occ-shim"] {
            occ_tests::copy_exe(occ_tests::bin(name), stage.join(name));
        }
        occ_tests::write_exe(
            fakes.join("systemctl"),
            "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n",
        );
        // Saved scan reports, so assess judges the files without scanning the host's sockets.
        std::fs::write(
            dir.path().join("net.json"),
            r#"{"status":"ok","tool":"proc","listening_services":[],"connections":[],"findings":[]}"#,
        )
        .unwrap();
        for d in [&home, &stage] {
            let st = Command::new("chown")
                .args(["-R", &format!("{uid}:{gid}")])
                .arg(d)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let i = Installed {
            dir,
            home,
            fakes,
            uid,
            gid,
        };
        let out = i.run(
            &stage.join("occ"),
            &["install", "--from", stage.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "occ install: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        i
    }

    fn occ_home(&self) -> PathBuf {
        self.home.join(".openclaw")
    }

    fn security(&self, name: &str) -> PathBuf {
        self.occ_home().join("security").join(name)
    }

    /// `PROGRAM ARGS` as the agent, with the shim's directory first on PATH.
    fn run(&self, program: &Path, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .uid(self.uid)
            .gid(self.gid)
            .env_clear()
            .env("HOME", &self.home)
            .env(
                "PATH",
                format!(
                    "{}:{}:/usr/local/bin:/usr/bin:/bin",
                    self.occ_home().join("bin").display(),
                    self.fakes.display()
                ),
            )
            .env("OCC_MODE", "user")
            .env("LANG", "C")
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.occ_home().join("bin").join(name)
    }

    /// Judge (a): the agent's `sudo -n /usr/bin/true` through the shim.
    fn sudo(&self) -> Output {
        self.run(&self.bin("sudo"), &["-n", "/usr/bin/true"])
    }

    /// Judge (b): `occ doctor --json`.
    fn doctor(&self) -> (Option<i32>, Value) {
        let out = self.run(&self.bin("occ"), &["doctor", "--json"]);
        (out.status.code(), json(&out, "occ doctor"))
    }

    /// Judge (c): `occ-scan --json preflight`.
    fn preflight(&self) -> (Option<i32>, Value) {
        let out = self.run(&self.bin("occ-scan"), &["--json", "preflight"]);
        (out.status.code(), json(&out, "occ-scan preflight"))
    }

    /// Judge (d): `occ-scan --json assess`, as check id -> the check's result.
    fn assess(&self) -> Value {
        let net = self.dir.path().join("net.json");
        let net = net.to_str().unwrap();
        let out = self.run(
            &self.bin("occ-scan"),
            &[
                "--json",
                "assess",
                "--skip-openclaw",
                "--no-reports",
                "--ports-report",
                net,
                "--egress-report",
                net,
            ],
        );
        let v = json(&out, "occ-scan assess");
        let by_id = v["controls"]
            .as_array()
            .unwrap_or_else(|| panic!("no controls: {v}"))
            .iter()
            .map(|c| (c["check_id"].as_str().unwrap().to_string(), c.clone()))
            .collect();
        Value::Object(by_id)
    }

    fn chown(&self, p: &Path, uid: u32, gid: u32) {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    }

    /// Writes a policy file as the agent's own private file.
    fn put(&self, p: &Path, text: &str) {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
        self.chown(p, self.uid, self.gid);
    }

    fn breaks(&self, p: &Path, how: Break) {
        match how {
            Text(t) => self.put(p, t),
            Mode(m) => std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap(),
            ForeignOwner => {
                self.chown(p, FOREIGN_UID, FOREIGN_UID);
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
            Symlink => {
                let real = p.with_file_name("real-policy.json");
                std::fs::rename(p, &real).unwrap();
                std::os::unix::fs::symlink(&real, p).unwrap();
                self.chown(p, self.uid, self.gid);
            }
        }
    }

    /// Puts the file back exactly as `occ install` left it (content, 0600, the agent's).
    fn restore(&self, p: &Path, original: &str) {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(p.with_file_name("real-policy.json"));
        self.put(p, original);
    }

    fn stop_broker(&self) {
        let pidfile = self.occ_home().join("run/broker.pid");
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while pidfile.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.stop_broker();
    }
}

fn json(out: &Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// The doctor checks named `name` that failed naming `file`.
fn doctor_fails(v: &Value, name: &str, file: &str) -> bool {
    v["checks"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["name"] == name
                && c["status"] == "fail"
                && c["detail"].as_str().is_some_and(|d| d.contains(file))
        })
    })
}

/// Every judge passes the home as installed.
fn assert_all_pass(i: &Installed, when: &str) {
    let out = i.sudo();
    assert!(
        text(&out.stderr).contains("sudo: approval pending (occ #"),
        "{when}: the broker does not file the request: {}",
        text(&out.stderr)
    );
    let (code, v) = i.doctor();
    assert_eq!(
        (code, &v["ok"]),
        (Some(0), &Value::Bool(true)),
        "{when}: {v:#}"
    );
    let (code, v) = i.preflight();
    assert_eq!(
        (code, &v["status"]),
        (Some(0), &Value::from("ok")),
        "{when}: {v:#}"
    );
    let a = i.assess();
    for row in ROWS {
        assert_eq!(
            a[row.check]["status"], "compliant",
            "{when}: {:#}",
            a[row.check]
        );
    }
}

#[test]
fn every_judge_refuses_every_broken_policy_file_needs_root() {
    let Some(ids) = ready() else { return };
    let i = Installed::new(ids);
    assert_all_pass(&i, "as installed");
    for row in ROWS {
        let case = format!("{} {}", row.file, row.kind);
        let p = i.security(row.file);
        let original = std::fs::read_to_string(&p).unwrap();
        i.breaks(&p, row.how);

        let out = i.sudo();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: sudo: {err}");
        assert!(
            err.trim_end().ends_with("(occ: policy_invalid)") && err.contains(row.file),
            "{case}: the broker does not refuse: {err}"
        );

        let (code, v) = i.doctor();
        assert_eq!(code, Some(1), "{case}: occ doctor: {v:#}");
        assert!(
            doctor_fails(&v, row.doctor, row.file),
            "{case}: occ doctor's {} check does not fail naming {}: {v:#}",
            row.doctor,
            row.file
        );

        let (code, v) = i.preflight();
        assert_eq!(
            (code, &v["status"]),
            (Some(1), &Value::from("fail")),
            "{case}: {v:#}"
        );
        assert!(
            v["critical"].to_string().contains("invalid_policy_files")
                && v["policy_files"]["invalid"].to_string().contains(row.file),
            "{case}: occ-scan preflight: {v:#}"
        );

        let c = &i.assess()[row.check];
        assert!(
            c["status"].is_string() && c["status"] != "compliant",
            "{case}: {} is compliant: {c:#}",
            row.check
        );

        i.restore(&p, &original);
    }
    // Nothing a row did outlives it: the judges pass again.
    assert_all_pass(&i, "after every row was put back");
}
