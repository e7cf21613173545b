//! System mode's install end to end, as root on the real paths (/etc/occ, /run/occ,
//! /var/lib/occ, /var/log/occ, /usr/local): `install.sh --system --bin-dir` with the binaries
//! cargo built, the files it leaves, the broker it starts (directly where there is no
//! systemd, as in CI), an approved run, `occ doctor --system` and occ-scan's
//! `system_mode_boundary` passing and then failing on each broken boundary, and
//! `occ uninstall --system` removing exactly what the manifest lists. Every test holds
//! `occ_tests::system_paths_lock()` and a guard that undoes what it made, even on failure.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const AGENT: &str = "occ-sysagent";
const APPROVER: &str = "occ-approver";
const GROUP: &str = "occ-approvers";
const SUDOERS_PROBE: &str = "/etc/sudoers.d/occ-sysagent-test";
const OCC: &str = "/usr/local/bin/occ";
const SECURE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a system install makes. The guard removes those that were not there when the test
/// started.
const MADE: &[&str] = &[
    "/etc/occ",
    "/var/lib/occ",
    "/var/log/occ",
    "/run/occ",
    "/usr/local/lib/occ",
    "/usr/local/bin/occ",
    "/usr/local/bin/occ-scan",
];

/// What must be absent when a test starts: another install (or a test's config) would be
/// kept by the installer and change what the test sees. A broker's leftovers in /run/occ,
/// /var/lib/occ and /var/log/occ are fine.
const MUST_BE_FREE: &[&str] = &[
    "/etc/occ",
    "/var/lib/occ/install-manifest.json",
    "/usr/local/lib/occ",
    "/usr/local/bin/occ",
    "/usr/local/bin/occ-scan",
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} exited {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `(uid, gid, home)` of a user, from /etc/passwd.
fn user(name: &str) -> Option<(u32, u32, PathBuf)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.first() != Some(&name) {
            return None;
        }
        Some((
            f.get(2)?.parse().ok()?,
            f.get(3)?.parse().ok()?,
            f.get(5)?.into(),
        ))
    })
}

/// The members of a group, or `None` when there is no such group.
fn group_members(name: &str) -> Option<Vec<String>> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name)).then(|| {
            f.get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|x| !x.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        })
    })
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", SECURE_PATH)
        .env("LANG", "C")
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// `program args…` as `name`, with a login-like environment.
fn as_user(name: &str, program: &str, args: &[&str]) -> Output {
    let (uid, gid, home) = user(name).unwrap_or_else(|| panic!("no user {name}"));
    Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", SECURE_PATH)
        .env("HOME", &home)
        .env("USER", name)
        .env("LANG", "C")
        .current_dir("/")
        .stdin(Stdio::null())
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} as {name}: {e}"))
}

fn mode_owner(p: &str) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    (m.mode() & 0o7777, m.uid())
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn broker_pid() -> Option<i32> {
    std::fs::read_to_string("/run/occ/broker.pid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|p| pid_alive(*p))
}

/// Sends `signal` to `pid` and waits up to 10 s for it to go; whether it went.
fn signal_and_wait(pid: i32, signal: &str) -> bool {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    !pid_alive(pid)
}

/// `occ doctor --system --json`: its exit code and report.
fn doctor() -> (Option<i32>, Value) {
    let out = run(OCC, &["doctor", "--system", "--json"]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json is not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code(), v)
}

/// The doctor's failing lines named `name`, as `detail; fix`.
fn failures(v: &Value, name: &str) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name && c["status"] == "fail")
        .map(|c| format!("{}; fix: {}", c["detail"], c["fix"]))
        .collect()
}

fn assert_doctor_passes(what: &str) {
    let (code, v) = doctor();
    assert_eq!(code, Some(0), "{what}: {v:#}");
    assert_eq!(v["ok"], true, "{what}: {v:#}");
    for name in [
        "agent_sudo",
        "agent_approver",
        "system_files",
        "system_broker",
    ] {
        let ok = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == name && c["status"] == "ok");
        assert!(ok, "{what}: {name} is not ok: {v:#}");
    }
}

/// Runs the doctor, expects it to fail on `name` only, and returns that failure's text.
fn assert_doctor_fails(name: &str, what: &str) -> String {
    let (code, v) = doctor();
    assert_eq!(code, Some(1), "{what}: doctor should fail: {v:#}");
    let lines = failures(&v, name);
    assert!(!lines.is_empty(), "{what}: no failing {name}: {v:#}");
    for c in v["checks"].as_array().unwrap() {
        if c["status"] == "fail" {
            assert_eq!(c["name"], name, "{what}: another check fails too: {c}");
        }
    }
    lines.join("\n")
}

/// occ-scan's `system_mode_boundary` result on this host (assess as root, a scratch home).
fn scan_boundary(scratch: &Path) -> Value {
    let out = Command::new("/usr/local/bin/occ-scan")
        .args([
            "--json",
            "assess",
            "--skip-openclaw",
            "--no-reports",
            "--child-timeout",
            "20",
        ])
        .env_clear()
        .env("PATH", SECURE_PATH)
        .env("OCC_HOME", scratch)
        .env("OCC_MODE", "user")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "occ-scan assess is not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    v["controls"]
        .as_array()
        .unwrap_or_else(|| panic!("no controls: {v:#}"))
        .iter()
        .find(|c| c["check_id"] == "system_mode_boundary")
        .cloned()
        .unwrap_or_else(|| panic!("no system_mode_boundary: {v:#}"))
}

fn systemd_runs() -> bool {
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd")
}

/// The real system paths for one test: checks they are free, makes the users, stages the
/// built binaries; dropping it undoes everything the test (or a failed install) left.
struct System {
    stage: tempfile::TempDir,
    /// The paths of [`MADE`] that were there before the test.
    existed: BTreeSet<&'static str>,
    group_existed: bool,
    users_made: Vec<String>,
    agent_home_existed: bool,
}

impl System {
    fn new() -> System {
        // Another suite on this host (system_mode.rs in another checkout) may hold the paths:
        // wait for it to finish, as it waits for us, and fail if it does not.
        let begun = Instant::now();
        loop {
            let taken: Vec<String> = MUST_BE_FREE
                .iter()
                .filter(|p| std::fs::symlink_metadata(p).is_ok())
                .map(|p| p.to_string())
                .chain(broker_pid().map(|pid| format!("a system broker (pid {pid})")))
                .collect();
            if taken.is_empty() {
                break;
            }
            assert!(
                begun.elapsed() < Duration::from_secs(120),
                "the system paths are in use ({}): another system-mode install or test holds \
                 them; remove it (occ uninstall --system) before running this test",
                taken.join(", ")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut users_made = Vec::new();
        for name in [AGENT, APPROVER] {
            if user(name).is_none() {
                let out = run("useradd", &["--create-home", "--shell", "/bin/sh", name]);
                assert_ok(&out, &format!("useradd {name}"));
                users_made.push(name.to_string());
            }
        }
        let sudo = run("sudo", &["-n", "-l", "-U", AGENT]);
        assert!(
            text(&sudo.stdout).contains("is not allowed to run sudo"),
            "{AGENT} must start with no sudo rights: {}",
            text(&sudo.stdout)
        );
        let agent_home = user(AGENT).unwrap().2.join(".openclaw");
        let stage = tempfile::Builder::new()
            .prefix("occ-sys")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for name in ["occ", "occ-scan", "occ-shim"] {
            occ_tests::copy_exe(occ_tests::bin(name), stage.path().join(name));
        }
        System {
            stage,
            existed: MADE
                .iter()
                .copied()
                .filter(|p| std::fs::symlink_metadata(p).is_ok())
                .collect(),
            group_existed: group_members(GROUP).is_some(),
            users_made,
            agent_home_existed: agent_home.exists(),
        }
    }

    fn install_sh(&self, extra: &[&str]) -> Output {
        let script = repo_root().join("install/install.sh");
        let stage = self.stage.path().display().to_string();
        let mut args = vec![
            script.to_str().unwrap(),
            "--system",
            "--agent",
            AGENT,
            "--approver",
            APPROVER,
            "--bin-dir",
            &stage,
        ];
        args.extend_from_slice(extra);
        run("sh", &args)
    }

    fn staged_occ(&self) -> String {
        self.stage.path().join("occ").display().to_string()
    }
}

impl Drop for System {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(SUDOERS_PROBE);
        if Path::new("/var/lib/occ/install-manifest.json").exists() && Path::new(OCC).exists() {
            let _ = run(OCC, &["uninstall", "--system"]);
        }
        if let Some(pid) = broker_pid() {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            let ours = exe.starts_with("/usr/local/bin") || exe.starts_with(self.stage.path());
            if ours && !signal_and_wait(pid, "TERM") {
                signal_and_wait(pid, "KILL");
            }
        }
        for p in MADE.iter().filter(|p| !self.existed.contains(*p)) {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
        if let Some((_, _, home)) = user(AGENT) {
            if !self.agent_home_existed {
                let _ = std::fs::remove_dir_all(home.join(".openclaw"));
            }
        }
        if !self.group_existed && group_members(GROUP).is_some() {
            let _ = run("groupdel", &[GROUP]);
        }
        for name in &self.users_made {
            let _ = run("userdel", &["--remove", name]);
        }
    }
}

#[test]
fn system_install_doctor_each_breach_and_uninstall_needs_root() {
    let _lock = occ_tests::system_paths_lock();
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (system mode writes /etc/occ, /usr/local and /run/occ)");
        return;
    }
    let sys = System::new();
    let (agent_uid, _, agent_home) = user(AGENT).unwrap();

    // Install from the prebuilt binaries.
    let out = sys.install_sh(&[]);
    assert_ok(&out, "install.sh --system --bin-dir");
    let s = text(&out.stdout);
    if systemd_runs() {
        assert!(s.contains("enable --now occ-broker.service"), "{s}");
    } else {
        assert!(
            s.contains("no systemd: started directly; it will not come back after a reboot"),
            "{s}"
        );
        assert!(!Path::new("/etc/systemd/system/occ-broker.service").exists());
    }
    assert!(
        s.contains("What next:") && s.contains("occ doctor --system"),
        "{s}"
    );

    // Files, modes, owners.
    for (p, mode) in [
        ("/usr/local/bin/occ", 0o755),
        ("/usr/local/bin/occ-scan", 0o755),
        ("/usr/local/lib/occ", 0o755),
        ("/usr/local/lib/occ/occ-shim", 0o755),
        ("/etc/occ", 0o700),
        ("/etc/occ/broker.json", 0o600),
        ("/etc/occ/command-policy.json", 0o600),
        ("/etc/occ/prompt-policy.json", 0o600),
        ("/var/lib/occ", 0o700),
        ("/var/lib/occ/install-manifest.json", 0o600),
        ("/var/log/occ", 0o700),
        ("/var/log/occ/privileged-audit.jsonl", 0o600),
        ("/run/occ", 0o755),
    ] {
        assert_eq!(mode_owner(p), (mode, 0), "{p}: (mode, owner)");
    }
    for (installed, built) in [
        ("/usr/local/bin/occ", "occ"),
        ("/usr/local/bin/occ-scan", "occ-scan"),
        ("/usr/local/lib/occ/occ-shim", "occ-shim"),
    ] {
        assert!(
            std::fs::read(installed).unwrap()
                == std::fs::read(sys.stage.path().join(built)).unwrap(),
            "{installed} is not the built {built}"
        );
    }
    let json = |p: &str| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let broker = json("/etc/occ/broker.json");
    assert_eq!(broker["requesters"], serde_json::json!([AGENT]));
    assert_eq!(broker["approvers"], serde_json::json!([APPROVER]));
    let policy = json("/etc/occ/command-policy.json");
    assert_eq!(
        policy["allow"],
        serde_json::json!([]),
        "nothing pre-allowed"
    );
    assert!(!policy["deny"].as_array().unwrap().is_empty());
    // The agent's shim: made by the agent, in its own home.
    let shim = agent_home.join(".openclaw/bin/sudo");
    let m = std::fs::symlink_metadata(&shim).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o755, agent_uid));
    assert!(std::fs::read(&shim).unwrap() == std::fs::read("/usr/local/lib/occ/occ-shim").unwrap());
    let manifest = json("/var/lib/occ/install-manifest.json");
    assert_eq!(manifest["system"]["agent"], AGENT, "{manifest:#}");
    let how = if systemd_runs() { "systemd" } else { "spawned" };
    assert_eq!(manifest["broker"]["how"], how, "{manifest:#}");

    // The broker answers, as root, and runs what an approver approves.
    let pid = broker_pid().expect("the broker's pid file names a live process");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uids.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["0", "0", "0", "0"],
        "{uids}"
    );
    let shim_s = shim.display().to_string();
    let first = as_user(AGENT, &shim_s, &["-n", "/usr/bin/id", "-u"]);
    let err = text(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{err}");
    let id = err
        .split("occ #")
        .nth(1)
        .and_then(|r| r.get(..8))
        .unwrap_or_else(|| panic!("no request id in: {err}"))
        .to_string();
    let self_approval = as_user(AGENT, OCC, &["approve", "--yes", &id]);
    assert!(!self_approval.status.success(), "the agent approved itself");
    assert!(text(&self_approval.stderr).contains("not_an_approver"));
    assert_ok(
        &as_user(APPROVER, OCC, &["approve", "--yes", &id]),
        "occ approve",
    );
    let ran = as_user(AGENT, &shim_s, &["-n", "/usr/bin/id", "-u"]);
    assert_ok(&ran, "the approved sudo id -u");
    assert_eq!(text(&ran.stdout), "0\n");

    assert_doctor_passes("after install");
    let scratch = tempfile::tempdir().unwrap();
    let sb = scan_boundary(scratch.path());
    assert_eq!(sb["status"], "compliant", "{sb:#}");

    // 1. The agent gets a sudo rule.
    std::fs::write(
        SUDOERS_PROBE,
        format!("{AGENT} ALL=(ALL) NOPASSWD: /usr/bin/id\n"),
    )
    .unwrap();
    std::fs::set_permissions(SUDOERS_PROBE, std::fs::Permissions::from_mode(0o440)).unwrap();
    let why = assert_doctor_fails("agent_sudo", "a NOPASSWD rule");
    assert!(
        why.contains("NOPASSWD: /usr/bin/id") && why.contains(SUDOERS_PROBE),
        "{why}"
    );
    let sb = scan_boundary(scratch.path());
    assert_eq!(sb["status"], "violation", "{sb:#}");
    assert!(
        sb["observed_state"]
            .as_str()
            .unwrap()
            .contains("NOPASSWD: /usr/bin/id"),
        "{sb:#}"
    );
    std::fs::remove_file(SUDOERS_PROBE).unwrap();
    assert_doctor_passes("sudo rule removed");

    // 2. The agent becomes an approver.
    let original = std::fs::read("/etc/occ/broker.json").unwrap();
    let mut edited = broker.clone();
    edited["approvers"] = serde_json::json!([APPROVER, AGENT]);
    std::fs::write("/etc/occ/broker.json", edited.to_string()).unwrap();
    let why = assert_doctor_fails("agent_approver", "the agent among the approvers");
    assert!(
        why.contains(&format!("approvers entry \\\"{AGENT}\\\"")),
        "{why}"
    );
    std::fs::write("/etc/occ/broker.json", &original).unwrap();
    assert_doctor_passes("approvers restored");

    // 3. A file in /etc/occ owned by the agent.
    std::os::unix::fs::chown("/etc/occ/prompt-policy.json", Some(agent_uid), None).unwrap();
    let (code, v) = doctor();
    assert_eq!(code, Some(1), "{v:#}");
    let why = failures(&v, "system_files").join("\n");
    assert!(
        why.contains(&format!("/etc/occ/prompt-policy.json is owned by {AGENT}"))
            && why.contains("chown root:root /etc/occ/prompt-policy.json"),
        "{v:#}"
    );
    std::os::unix::fs::chown("/etc/occ/prompt-policy.json", Some(0), None).unwrap();
    assert_doctor_passes("owner restored");

    // 4. No root broker: a non-root one cannot start, and with the root one killed nothing
    // answers.
    let impostor = as_user(AGENT, OCC, &["broker", "--system", "--foreground"]);
    assert_eq!(impostor.status.code(), Some(2));
    assert!(
        text(&impostor.stderr).contains("must run as root"),
        "{}",
        text(&impostor.stderr)
    );
    assert!(signal_and_wait(pid, "KILL"), "the broker survived SIGKILL");
    let why = assert_doctor_fails("system_broker", "the broker killed");
    assert!(
        why.contains("nothing answers on /run/occ/broker.sock"),
        "{why}"
    );
    let sb = scan_boundary(scratch.path());
    assert_eq!(
        sb["status"], "violation",
        "no root service answers (every sudo fails closed meanwhile): {sb:#}"
    );
    assert!(
        sb["gap"]
            .as_str()
            .unwrap_or_default()
            .contains("fails closed"),
        "{sb:#}"
    );
    assert_ok(&run(OCC, &["broker", "--system"]), "restart the broker");
    assert_doctor_passes("broker restarted");
    let pid = broker_pid().unwrap();

    // Uninstall removes exactly what the manifest lists, and keeps the audit log.
    let manifest = json("/var/lib/occ/install-manifest.json");
    let strs = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let files: BTreeSet<String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    let mut listed = files.clone();
    listed.extend(strs(&manifest["dirs"]));
    listed.extend(strs(&manifest["runtime"]));
    listed.insert("/var/lib/occ/install-manifest.json".into());
    for f in [
        "/usr/local/bin/occ",
        "/usr/local/bin/occ-scan",
        "/usr/local/lib/occ/occ-shim",
        "/etc/occ/broker.json",
        "/etc/occ/command-policy.json",
        "/etc/occ/prompt-policy.json",
    ] {
        assert!(files.contains(f), "{f} not in the manifest: {manifest:#}");
    }
    // A file the admin put there is not occ's to remove.
    std::fs::write("/etc/occ/admin-notes.txt", "mine\n").unwrap();
    let out = run(OCC, &["uninstall", "--system", "--json"]);
    assert_ok(&out, "occ uninstall --system");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let removed = strs(&r["removed"]);
    for p in &removed {
        assert!(
            listed.contains(p),
            "{p} was removed but is not in the manifest: {r:#}"
        );
    }
    for f in &files {
        assert!(removed.contains(f), "{f} was not removed: {r:#}");
        assert!(!Path::new(f).exists(), "{f} is still there");
    }
    assert!(
        strs(&r["reverted"]).contains(&format!("stopped the broker (pid {pid})")),
        "{r:#}"
    );
    assert!(!pid_alive(pid));
    let kept: Vec<(String, String)> = r["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["path"].as_str().unwrap().into(),
                k["why"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        kept.iter()
            .any(|(p, why)| p == "/var/log/occ" && why.contains("the audit log is kept")),
        "{r:#}"
    );
    assert!(
        kept.iter()
            .any(|(p, why)| p == "/etc/occ" && why.contains("admin-notes.txt")),
        "{r:#}"
    );
    assert!(Path::new("/etc/occ/admin-notes.txt").exists());
    assert!(Path::new("/var/log/occ/privileged-audit.jsonl").exists());
    let verify = run(
        &sys.staged_occ(),
        &[
            "audit",
            "verify",
            "--log",
            "/var/log/occ/privileged-audit.jsonl",
        ],
    );
    assert_ok(&verify, "the kept audit log verifies");
    let agent_lines = strs(&r["agent_home"]);
    assert!(
        agent_lines
            .iter()
            .any(|l| l.contains(&format!("removed  {}", shim.display()))),
        "{r:#}"
    );
    assert!(!shim.exists());
    for p in ["/usr/local/lib/occ", "/var/lib/occ", "/run/occ"] {
        if !sys.existed.contains(p) {
            assert!(!Path::new(p).exists(), "{p} is still there");
        }
    }
    std::fs::remove_file("/etc/occ/admin-notes.txt").unwrap();
    std::fs::remove_dir("/etc/occ").unwrap();
}

#[test]
fn system_install_with_an_approvers_group_and_refusals_needs_root() {
    let _lock = occ_tests::system_paths_lock();
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (system mode writes /etc/occ, /usr/local and /run/occ)");
        return;
    }
    let sys = System::new();
    let occ = sys.staged_occ();
    let stage = sys.stage.path().display().to_string();
    let install = |agent: &str, approver: &str, extra: &[&str]| {
        let mut args = vec![
            "install",
            "--system",
            "--agent",
            agent,
            "--approver",
            approver,
            "--from",
            &stage,
        ];
        args.extend_from_slice(extra);
        run(&occ, &args)
    };

    // Refusals change nothing.
    let agent_group = {
        let (_, gid, _) = user(AGENT).unwrap();
        std::fs::read_to_string("/etc/group")
            .unwrap()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2) == Some(&gid.to_string().as_str())).then(|| f[0].to_string())
            })
            .unwrap()
    };
    for (agent, approver, extra, want) in [
        (AGENT, AGENT, &[][..], "would approve its own requests"),
        ("root", APPROVER, &[][..], "is root"),
        (
            AGENT,
            &format!("%{agent_group}")[..],
            &[][..],
            "is in group",
        ),
        (
            AGENT,
            &format!("%{agent_group}")[..],
            &["--create-approvers-group"][..],
            "pass --approver USER",
        ),
        ("occ-no-such-user", APPROVER, &[][..], "no such user"),
    ] {
        let out = install(agent, approver, extra);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{agent} {approver}: {}",
            text(&out.stdout)
        );
        assert!(
            text(&out.stderr).contains(want),
            "{agent} {approver}: {}",
            text(&out.stderr)
        );
        for p in MADE.iter().filter(|p| !sys.existed.contains(*p)) {
            assert!(!Path::new(p).exists(), "a refused install made {p}");
        }
    }

    let out = install(AGENT, APPROVER, &["--create-approvers-group"]);
    assert_ok(&out, "install --create-approvers-group");
    let members = group_members(GROUP).expect("the group exists");
    assert!(members.iter().any(|m| m == APPROVER), "{members:?}");
    let broker: Value =
        serde_json::from_slice(&std::fs::read("/etc/occ/broker.json").unwrap()).unwrap();
    assert_eq!(
        broker["approvers"],
        serde_json::json!([format!("%{GROUP}")])
    );
    assert_doctor_passes("with the approvers group");
    let not_root = as_user(APPROVER, OCC, &["doctor", "--system"]);
    assert_eq!(not_root.status.code(), Some(2));
    assert!(text(&not_root.stderr).contains("must run as root"));
    assert_ok(
        &as_user(APPROVER, OCC, &["approvals"]),
        "a group approver lists requests",
    );
    // Installing again changes nothing and keeps the record of what the first install made.
    let again = install(AGENT, APPROVER, &["--create-approvers-group"]);
    assert_ok(&again, "install again");
    assert!(
        text(&again.stdout).contains("nothing to change: already installed"),
        "{}",
        text(&again.stdout)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read("/var/lib/occ/install-manifest.json").unwrap())
            .unwrap();
    let g = &manifest["system"]["groups"][0];
    assert_eq!(g["group"], GROUP, "{manifest:#}");
    assert_eq!(g["created"], !sys.group_existed, "{manifest:#}");

    let out = run(OCC, &["uninstall", "--system"]);
    assert_ok(&out, "uninstall");
    let s = text(&out.stdout);
    assert!(s.contains("the audit log is kept"), "{s}");
    if !sys.group_existed {
        assert!(s.contains(&format!("deleted group {GROUP}")), "{s}");
        assert!(group_members(GROUP).is_none(), "the group occ made is gone");
    }
    for p in MADE.iter().filter(|p| !sys.existed.contains(*p)) {
        let kept = *p == "/var/log/occ";
        assert_eq!(Path::new(p).exists(), kept, "{p} after uninstall");
    }
}

/// The system unit occ writes, byte for byte (`OCC_UPDATE_GOLDEN=1` rewrites the copy).
#[test]
fn system_unit_matches_its_golden_copy() {
    let got =
        occ_broker::install::unit::system_broker_unit(Path::new("/usr/local/bin/occ")).unwrap();
    let file = repo_root().join("tests/golden/install/occ-broker-system.service");
    if std::env::var_os("OCC_UPDATE_GOLDEN").is_some() {
        std::fs::write(&file, &got).unwrap();
    }
    let want = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (OCC_UPDATE_GOLDEN=1 writes it)", file.display()));
    assert_eq!(got, want, "{} differs from the golden copy", file.display());
}

/// A fake `crontab` keeping the crontab in `$HOME/.occ-test-crontab` (the machine's crontabs
/// are never touched).
const FAKE_CRONTAB: &str = "#!/bin/sh\nt=\"$HOME/.occ-test-crontab\"\ncase \"$1\" in\n  -l) if [ -f \"$t\" ]; then cat \"$t\"; else echo \"no crontab for $USER\" >&2; exit 1; fi ;;\n  -) cat > \"$t\" ;;\n  -r) rm -f \"$t\" ;;\nesac\n";

/// `occ uninstall --system` removes the occ-scan schedules of the system occ-scan: root's own
/// (its crontab line) and the agent's (removed by the agent's child, in the agent's crontab),
/// keeps every other line, and says so.
#[test]
fn system_uninstall_removes_root_and_agent_occ_scan_schedules_needs_root() {
    let _lock = occ_tests::system_paths_lock();
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (system mode writes /etc/occ, /usr/local and /run/occ)");
        return;
    }
    let sys = System::new();
    let (agent_uid, agent_gid, agent_home) = user(AGENT).unwrap();
    assert_ok(&sys.install_sh(&[]), "install.sh --system");

    // The agent's crontab command is first on the PATH its uninstall child gets. The guard
    // removes the fakes, then the directories this test made, even on failure.
    struct Undo(Vec<PathBuf>, Vec<PathBuf>);
    impl Drop for Undo {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::fs::remove_file(p);
            }
            for d in self.1.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
    let agent_bin = agent_home.join(".local/bin");
    let agent_tab = agent_home.join(".occ-test-crontab");
    let mut undo = Undo(
        vec![agent_bin.join("crontab"), agent_tab.clone()],
        Vec::new(),
    );
    for d in [agent_home.join(".local"), agent_bin.clone()] {
        if !d.exists() {
            std::fs::create_dir(&d).unwrap();
            undo.1.push(d.clone());
            std::os::unix::fs::chown(&d, Some(agent_uid), Some(agent_gid)).unwrap();
        }
    }
    occ_tests::write_exe(agent_bin.join("crontab"), FAKE_CRONTAB);
    std::fs::write(&agent_tab, "0 4 * * * /usr/bin/true # the agent's own\n").unwrap();
    std::os::unix::fs::chown(&agent_tab, Some(agent_uid), Some(agent_gid)).unwrap();
    let agent_path = format!("{}:{SECURE_PATH}", agent_bin.display());
    let out = Command::new("/usr/local/bin/occ-scan")
        .args(["schedule", "install", "--backend", "cron"])
        .env_clear()
        .env("PATH", &agent_path)
        .env("HOME", &agent_home)
        .env("USER", AGENT)
        .env("LANG", "C")
        .current_dir("/")
        .uid(agent_uid)
        .gid(agent_gid)
        .output()
        .unwrap();
    assert_ok(&out, "the agent's occ-scan schedule install");

    // Root's: a fake crontab in a scratch directory first on root's PATH.
    let scratch = tempfile::tempdir().unwrap();
    let fakes = scratch.path().join("fakes");
    std::fs::create_dir(&fakes).unwrap();
    occ_tests::write_exe(fakes.join("crontab"), FAKE_CRONTAB);
    let root_path = format!("{}:{SECURE_PATH}", fakes.display());
    let as_root = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", &root_path)
            .env("HOME", scratch.path())
            .env("USER", "root")
            .env("LANG", "C")
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let root_tab = scratch.path().join(".occ-test-crontab");
    std::fs::write(&root_tab, "MAILTO=root\n").unwrap();
    assert_ok(
        &as_root(
            "/usr/local/bin/occ-scan",
            &["schedule", "install", "--backend", "cron"],
        ),
        "root's occ-scan schedule install",
    );
    for tab in [&root_tab, &agent_tab] {
        let t = std::fs::read_to_string(tab).unwrap();
        assert!(
            t.contains("'/usr/local/bin/occ-scan' cycle --quiet # occ-scan-cycle"),
            "{}: {t}",
            tab.display()
        );
    }

    let out = as_root(OCC, &["uninstall", "--system", "--json"]);
    assert_ok(&out, "occ uninstall --system");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        std::fs::read_to_string(&root_tab).unwrap(),
        "MAILTO=root\n",
        "{r:#}"
    );
    assert_eq!(
        std::fs::read_to_string(&agent_tab).unwrap(),
        "0 4 * * * /usr/bin/true # the agent's own\n",
        "{r:#}"
    );
    assert!(
        r["reverted"]
            .to_string()
            .contains("occ-scan schedule: removed the crontab line"),
        "root's line: {r:#}"
    );
    assert!(
        r["agent_home"]
            .to_string()
            .contains("reverted occ-scan schedule: removed the crontab line"),
        "the agent's line: {r:#}"
    );
    drop(undo);
}
