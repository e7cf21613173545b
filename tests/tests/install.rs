//! `install/install.sh`, `occ install`, `occ uninstall` and `occ doctor` end to end: a fresh
//! temporary HOME for every test, the binaries cargo already built (`--from`, never a second
//! release build), fake `openclaw` and `systemctl` scripts where a test needs them, and every
//! broker a test starts stopped when it ends.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const AGENT: &str = "occ-agent";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// A fake `systemctl` with no user manager (as in a container without a session bus).
const NO_SYSTEMD: &str =
    "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n";

/// A fake `systemctl --user` with a loaded `openclaw-gateway.service` whose environment sets
/// PATH. It logs every call, and starts/stops the real broker the way the unit would.
const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
echo "$*" >> "$FAKE_LOG"
[ "$1" = --user ] && shift
case $1 in
  show-environment) printf 'HOME=%s\nPATH=/usr/local/bin:/usr/bin:/bin\n' "$HOME" ;;
  show)
    case "$2:$4" in
      openclaw-gateway.service:LoadState) echo LoadState=loaded ;;
      openclaw-gateway.service:Environment)
        echo 'Environment=HOME=/home/agent "PATH=/opt/node/bin:/usr/bin:/bin" LANG=C.UTF-8' ;;
      *) echo "$4=" ;;
    esac ;;
  enable|start|restart) "$HOME/.openclaw/bin/occ" broker >/dev/null ;;
  disable|stop)
    pid=$(cat "$HOME/.openclaw/run/broker.pid" 2>/dev/null) && kill "$pid" ;;
esac
exit 0
"#;

/// A fake `openclaw` CLI over one JSON config, `$FAKE_OC_DIR/openclaw.json`: `config get KEY
/// --json` (exit 1 and OpenClaw's own "valid but unset" words when unset), `config set KEY
/// JSON --strict-json` and `config unset KEY`, on dotted paths. The real CLI is exercised by
/// the OpenClaw integration test (openclaw.rs).
const FAKE_OPENCLAW: &str = r#"#!/usr/bin/python3
import json, os, sys
a = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(" ".join(a) + "\n")
if a[:1] != ["config"] or len(a) < 3:
    sys.exit(2)
path = os.path.join(os.environ["FAKE_OC_DIR"], "openclaw.json")
cfg = json.load(open(path)) if os.path.exists(path) else {}
keys = a[2].split(".")
node = cfg
for k in keys[:-1]:
    node = node.get(k) if isinstance(node, dict) else None
last = keys[-1]
if a[1] == "get":
    if not isinstance(node, dict) or last not in node:
        print(json.dumps({"ok": False, "error": {"type": "cli_error",
              "message": "Config path is valid but unset: " + a[2] + "."}}))
        sys.exit(1)
    print(json.dumps(node[last], indent=2))
    sys.exit(0)
if a[1] == "set":
    node = cfg
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[last] = json.loads(a[3])
elif a[1] == "unset":
    if isinstance(node, dict):
        node.pop(last, None)
else:
    sys.exit(2)
json.dump(cfg, open(path, "w"), indent=2)
"#;

/// A temporary HOME with a staging copy of the built binaries and a directory of fakes first
/// on PATH. Dropping it stops any broker started in it.
struct Env {
    dir: tempfile::TempDir,
    home: PathBuf,
    stage: PathBuf,
    fakes: PathBuf,
    agent: Option<(u32, u32)>,
}

impl Env {
    fn new(systemctl: &str) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("occ-inst")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = dir.path().join("h");
        let stage = dir.path().join("stage");
        let fakes = dir.path().join("fakes");
        for d in [&home, &stage, &fakes] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        for name in ["occ", "occ-scan", "occ-shim"] {
            occ_tests::copy_exe(occ_tests::bin(name), stage.join(name));
        }
        let e = Env {
            dir,
            home,
            stage,
            fakes,
            agent: None,
        };
        e.fake("systemctl", systemctl);
        e
    }

    fn fake(&self, name: &str, script: &str) {
        occ_tests::write_exe(self.fakes.join(name), script);
    }

    fn occ_home(&self) -> PathBuf {
        self.home.join(".openclaw")
    }

    fn path_var(&self) -> String {
        format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            self.occ_home().join("bin").display(),
            self.fakes.display()
        )
    }

    fn cmd(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", &self.home)
            .env("PATH", self.path_var())
            .env("LANG", "C")
            // User mode, even where a system broker is installed (the system-mode tests).
            .env("OCC_MODE", "user")
            .env("FAKE_LOG", self.dir.path().join("fake.log"))
            .env("FAKE_OC_DIR", self.dir.path().join("oc"))
            .current_dir(&self.home)
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.agent {
            c.uid(uid).gid(gid);
        }
        c
    }

    /// `STAGE/occ ARGS` (the freshly built occ, before install).
    fn occ(&self, args: &[&str]) -> Output {
        self.cmd(&self.stage.join("occ"))
            .args(args)
            .output()
            .unwrap()
    }

    /// `$OCC_HOME/bin/occ ARGS` (the installed occ).
    fn installed(&self, args: &[&str]) -> Output {
        self.cmd(&self.occ_home().join("bin/occ"))
            .args(args)
            .output()
            .unwrap()
    }

    fn install(&self, extra: &[&str]) -> Output {
        let from = self.stage.display().to_string();
        let mut args = vec!["install", "--from", &from];
        args.extend_from_slice(extra);
        self.occ(&args)
    }

    fn fake_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fake.log")).unwrap_or_default()
    }

    fn broker_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.occ_home().join("run/broker.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn stop_broker(&self) {
        if let Some(pid) = self.broker_pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop_broker();
        // Unmount nothing, chmod back anything a test made read-only so the temp dir goes.
        let _ = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(self.dir.path())
            .status();
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// Every path under `root` with its mode and (for files) content, for before/after checks.
fn tree(root: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let body = if m.is_file() {
                std::fs::read(&p).unwrap_or_default()
            } else {
                Vec::new()
            };
            out.insert(
                p.strip_prefix(root).unwrap().to_path_buf(),
                (m.mode() & 0o7777, body),
            );
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
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

/// The agent user's uid and gid, if it exists.
fn agent_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&AGENT))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

fn chown_r(p: &Path, (uid, gid): (u32, u32)) {
    let st = Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn full_cycle_as_the_agent_user_install_doctor_approve_uninstall_needs_root() {
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (to run as the agent user)");
        return;
    }
    let Some(ids) = agent_ids() else {
        occ_tests::skip("needs the occ-agent user (created by .ci/run)");
        return;
    };
    let sudo_ok = Command::new("/usr/bin/sudo")
        .args(["-n", "-l", "-U", AGENT, "/usr/bin/id"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !sudo_ok {
        occ_tests::skip("needs occ-agent's NOPASSWD sudoers drop-in (written by .ci/run)");
        return;
    }
    let mut env = Env::new(NO_SYSTEMD);
    chown_r(&env.home, ids);
    chown_r(&env.stage, ids);
    env.agent = Some(ids);
    let before = tree(&env.home);

    let out = env.install(&[]);
    assert_ok(&out, "occ install");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ok    path_order: sudo resolves to the shim"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok    broker: the broker answers"),
        "{stdout}"
    );
    assert!(stdout.contains("ok    policy:"), "{stdout}");
    assert!(
        stdout.contains("export PATH=\""),
        "manual PATH line: {stdout}"
    );

    // Every file and its mode.
    let h = env.occ_home();
    for (p, m) in [
        (h.clone(), 0o700),
        (h.join("bin"), 0o700),
        (h.join("run"), 0o700),
        (h.join("security"), 0o700),
        (h.join("bin/occ"), 0o755),
        (h.join("bin/occ-scan"), 0o755),
        (h.join("bin/sudo"), 0o755),
        (h.join("security/command-policy.json"), 0o600),
        (h.join("security/prompt-policy.json"), 0o600),
        (h.join("security/broker.json"), 0o600),
        (h.join("install-manifest.json"), 0o600),
    ] {
        assert_eq!(mode(&p), m, "{}", p.display());
        assert_eq!(
            std::fs::metadata(&p).unwrap().uid(),
            ids.0,
            "{}",
            p.display()
        );
    }
    assert_eq!(
        std::fs::read(h.join("bin/sudo")).unwrap(),
        std::fs::read(env.stage.join("occ-shim")).unwrap(),
        "bin/sudo is the shim"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(h.join("install-manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    // The three binaries and three policy templates; the rest are the manual pages and
    // completions (their own test checks where they go).
    let not_docs = files.iter().filter(|f| f["kind"] != "doc").count();
    assert_eq!(not_docs, 6, "{manifest}");
    assert!(
        files
            .iter()
            .any(|f| f["kind"] == "doc" && f["path"].as_str().unwrap().ends_with("man8/occ.8")),
        "{manifest}"
    );
    for f in files {
        let p = PathBuf::from(f["path"].as_str().unwrap());
        let sha = occ_audit_sha(&std::fs::read(&p).unwrap());
        assert_eq!(f["sha256"], Value::String(sha), "{}", p.display());
    }
    assert_eq!(manifest["broker"]["how"], "spawned");

    // doctor passes (warnings allowed: no OpenClaw here, a debug shim is not static).
    let doc = env.installed(&["doctor"]);
    assert_ok(&doc, "occ doctor");
    let d = text(&doc.stdout);
    for name in [
        "path_order",
        "broker",
        "files",
        "real_sudo",
        "sudo_n_l",
        "audit_log",
        "audit_seal",
        "policy",
        "legacy_token",
    ] {
        assert!(d.contains(&format!("ok    {name}:")), "{name} not ok:\n{d}");
    }
    let dj = env.installed(&["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&dj.stdout).unwrap();
    assert_eq!(v["ok"], Value::Bool(true), "{v}");

    // pending -> approve -> run, through the installed shim as the agent.
    let sudo = h.join("bin/sudo");
    let first = env
        .cmd(&sudo)
        .args(["-n", "/usr/bin/id", "-u"])
        .output()
        .unwrap();
    let err = text(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{err}");
    let id = err
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("sudo: approval pending (occ #"))
        .and_then(|r| r.split([',', ')']).next())
        .unwrap_or_else(|| panic!("not a pending line: {err}"))
        .to_string();
    assert_ok(&env.installed(&["approve", "--yes", &id]), "occ approve");
    let ran = env
        .cmd(&sudo)
        .args(["-n", "/usr/bin/id", "-u"])
        .output()
        .unwrap();
    assert_eq!(text(&ran.stdout), "0\n", "stderr: {}", text(&ran.stderr));
    assert_eq!(ran.status.code(), Some(0));

    // uninstall: nothing is left but what was there before, and the audit log.
    let pid = env.broker_pid().expect("a broker is running");
    let out = env.installed(&["uninstall"]);
    assert_ok(&out, "occ uninstall");
    let u = text(&out.stdout);
    assert!(u.contains("the audit log is kept"), "{u}");
    assert!(!alive(pid), "the broker was stopped");
    let after = tree(&env.home);
    let mut extra: Vec<&PathBuf> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    extra.sort();
    let want: Vec<PathBuf> = [
        ".openclaw",
        ".openclaw/security",
        ".openclaw/security/audit-head.json",
        ".openclaw/security/privileged-audit.jsonl",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(extra, want.iter().collect::<Vec<_>>(), "left behind");
    for (p, v) in &before {
        assert_eq!(after.get(p), Some(v), "{} changed", p.display());
    }
    // The kept log still verifies.
    let verify = Command::new(env.stage.join("occ"))
        .args(["audit", "verify", "--log"])
        .arg(env.home.join(".openclaw/security/privileged-audit.jsonl"))
        .output()
        .unwrap();
    assert_ok(&verify, "occ audit verify");
}

fn occ_audit_sha(b: &[u8]) -> String {
    // sha256sum is in coreutils everywhere these tests run; it keeps the test crate lean.
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(b).unwrap();
    let out = c.wait_with_output().unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn install_twice_is_idempotent_and_dry_run_changes_nothing() {
    let env = Env::new(NO_SYSTEMD);
    let empty = tree(&env.home);
    let dry = env.install(&["--dry-run"]);
    assert_ok(&dry, "occ install --dry-run");
    let d = text(&dry.stdout);
    assert!(d.contains("nothing is changed"), "{d}");
    assert!(d.contains("copy") && d.contains("bin/sudo"), "{d}");
    assert_eq!(tree(&env.home), empty, "--dry-run changed files");
    assert!(env.broker_pid().is_none());

    assert_ok(&env.install(&[]), "first install");
    let pid = env.broker_pid().expect("broker started");
    let snap = |t: BTreeMap<PathBuf, (u32, Vec<u8>)>| {
        t.into_iter()
            .filter(|(p, _)| {
                let s = p.to_string_lossy();
                !s.starts_with(".openclaw/run/")
                    && !s.contains("audit")
                    && !s.ends_with("manifest.json")
            })
            .collect::<BTreeMap<_, _>>()
    };
    let first = snap(tree(&env.home));
    let m1: Value = serde_json::from_slice(
        &std::fs::read(env.occ_home().join("install-manifest.json")).unwrap(),
    )
    .unwrap();

    let again = env.install(&[]);
    assert_ok(&again, "second install");
    let a = text(&again.stdout);
    assert!(a.contains("nothing to change: already installed"), "{a}");
    assert_eq!(
        snap(tree(&env.home)),
        first,
        "a second install changed files"
    );
    assert_eq!(env.broker_pid(), Some(pid), "the running broker was kept");
    let mut m2: Value = serde_json::from_slice(
        &std::fs::read(env.occ_home().join("install-manifest.json")).unwrap(),
    )
    .unwrap();
    m2["installed_at"] = m1["installed_at"].clone();
    assert_eq!(m1, m2, "the manifest records the same things");

    // The installed occ re-installs itself (its shim is bin/sudo there): nothing changes.
    let own = env.installed(&["install"]);
    assert_ok(&own, "installed occ install");
    assert!(
        text(&own.stdout).contains("nothing to change"),
        "{}",
        text(&own.stdout)
    );
    assert_eq!(snap(tree(&env.home)), first);

    // A dry run on an installed home changes nothing either.
    let full = tree(&env.home);
    let dry = env.install(&["--dry-run"]);
    assert_ok(&dry, "dry run after install");
    assert!(
        text(&dry.stdout).contains("nothing to change"),
        "{}",
        text(&dry.stdout)
    );
    let now = tree(&env.home);
    assert_eq!(
        snap(now.clone()),
        snap(full),
        "dry run after install changed files"
    );

    // An edited policy file survives uninstall; the untouched ones go.
    let cp = env.occ_home().join("security/command-policy.json");
    std::fs::write(&cp, "{\"version\": 2, \"allow\": [\"/usr/bin/id\"]}\n").unwrap();
    let out = env.installed(&["uninstall", "--json"]);
    assert_ok(&out, "uninstall");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept: Vec<String> = v["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["path"].as_str().unwrap().to_string())
        .collect();
    assert!(kept.contains(&cp.display().to_string()), "{v}");
    assert!(cp.exists());
    assert!(!env.occ_home().join("security/broker.json").exists());
    assert!(!env.occ_home().join("bin").exists());
    assert!(!alive(pid));
    // Nothing to uninstall twice: a clear error naming the manifest.
    let twice = env.occ(&["uninstall"]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        text(&twice.stderr).contains("no install manifest"),
        "{}",
        text(&twice.stderr)
    );
}

/// Replaces the temp home in generated text so it can be compared with a golden copy.
fn golden(env: &Env, got: &str, name: &str) {
    let got = got.replace(&env.home.display().to_string(), "@HOME@");
    let file = repo_root().join("tests/golden/install").join(name);
    if std::env::var_os("OCC_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &got).unwrap();
    }
    let want = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (OCC_UPDATE_GOLDEN=1 writes it)", file.display()));
    assert_eq!(got, want, "{} differs from the golden copy", file.display());
}

/// The fake OpenClaw's config as JSON.
fn oc_config(env: &Env) -> Value {
    serde_json::from_slice(&std::fs::read(env.dir.path().join("oc/openclaw.json")).unwrap())
        .unwrap()
}

#[test]
fn path_injection_puts_the_shim_first_for_every_openclaw_agent_and_uninstall_keeps_user_entries() {
    let env = Env::new(FAKE_SYSTEMCTL);
    env.fake("openclaw", FAKE_OPENCLAW);
    let oc = env.dir.path().join("oc");
    std::fs::create_dir(&oc).unwrap();
    // A global list, an agent with its own list (which replaces the global one in OpenClaw),
    // and an agent that inherits.
    std::fs::write(
        oc.join("openclaw.json"),
        r#"{"tools": {"exec": {"pathPrepend": ["/opt/tools/bin"]}},
            "plugins": {"allow": ["github"]},
            "agents": {"entries": {"main": {"workspace": "/w"},
                                   "ops": {"tools": {"exec": {"pathPrepend": ["/usr/local/bin"]}}}}}}"#,
    )
    .unwrap();

    let out = env.install(&[]);
    assert_ok(&out, "occ install");
    let s = text(&out.stdout);
    let bin = env.occ_home().join("bin").display().to_string();
    let units = env.home.join(".config/systemd/user");

    let cfg = oc_config(&env);
    assert_eq!(
        cfg["tools"]["exec"]["pathPrepend"],
        serde_json::json!([bin, "/opt/tools/bin"])
    );
    assert_eq!(
        cfg["agents"]["entries"]["ops"]["tools"]["exec"]["pathPrepend"],
        serde_json::json!([bin, "/usr/local/bin"])
    );
    assert!(
        cfg["agents"]["entries"]["main"].get("tools").is_none(),
        "an agent that inherits gets no list of its own: {cfg}"
    );
    // occ's OpenClaw plugin (each exec command's session id): written, listed, enabled, and
    // added to the allowlist in force.
    let plugin = env.occ_home().join("share/openclaw-plugin/occ-exec-env");
    for f in ["package.json", "openclaw.plugin.json", "index.js"] {
        let m = std::fs::metadata(plugin.join(f)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o644, "{f}");
    }
    assert!(std::fs::read_to_string(plugin.join("index.js"))
        .unwrap()
        .contains("resolve_exec_env"));
    assert_eq!(
        cfg["plugins"]["load"]["paths"],
        serde_json::json!([plugin.display().to_string()])
    );
    assert_eq!(cfg["plugins"]["entries"]["occ-exec-env"]["enabled"], true);
    assert_eq!(
        cfg["plugins"]["allow"],
        serde_json::json!(["occ-exec-env", "github"])
    );
    assert!(s.contains("ok    session_id"), "{s}");
    // The broker unit, and no drop-in for the gateway (OpenClaw puts the login shell's PATH
    // before the gateway's, so a drop-in never held).
    let unit = std::fs::read_to_string(units.join("occ-broker.service")).unwrap();
    golden(&env, &unit, "occ-broker.service");
    assert!(!units.join("openclaw-gateway.service.d").exists());
    assert!(s.contains("ok    path_order"), "{s}");
    let m: Value = serde_json::from_slice(
        &std::fs::read(env.occ_home().join("install-manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["broker"]["how"], "systemd", "{m}");
    assert!(
        env.broker_pid().is_some_and(alive),
        "the unit's broker runs"
    );

    // Install again: nothing new written, the records kept.
    let again = env.install(&[]);
    assert_ok(&again, "second install");
    assert!(
        text(&again.stdout).contains("nothing to change"),
        "{}",
        text(&again.stdout)
    );
    let m2: Value = serde_json::from_slice(
        &std::fs::read(env.occ_home().join("install-manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["path"], m2["path"]);

    // The user then overrides an agent's list (bypassing occ), and adds an entry of their own.
    let set = |key: &str, v: &str| {
        let out = env
            .cmd(&env.fakes.join("openclaw"))
            .args(["config", "set", key, v, "--strict-json"])
            .output()
            .unwrap();
        assert_ok(&out, key);
    };
    set(
        "agents.entries.main.tools.exec.pathPrepend",
        r#"["/usr/local/bin"]"#,
    );
    let doc = env.installed(&["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&doc.stdout).unwrap();
    let po = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "path_order")
        .cloned()
        .unwrap();
    assert_eq!(po["status"], "fail", "{po}");
    assert!(
        po["detail"]
            .as_str()
            .unwrap()
            .contains("agents.entries.main.tools.exec.pathPrepend"),
        "{po}"
    );
    assert_eq!(doc.status.code(), Some(1));
    // Re-running install fixes it, keeping the agent's entry after ours.
    assert_ok(&env.install(&[]), "install after the override");
    assert_eq!(
        oc_config(&env)["agents"]["entries"]["main"]["tools"]["exec"]["pathPrepend"],
        serde_json::json!([bin, "/usr/local/bin"])
    );
    let doc = env.installed(&["doctor"]);
    assert!(
        text(&doc.stdout).contains("ok    path_order"),
        "{}",
        text(&doc.stdout)
    );
    set(
        "tools.exec.pathPrepend",
        &serde_json::json!([bin, "/opt/tools/bin", "/home/me/bin"]).to_string(),
    );

    let out = env.installed(&["uninstall"]);
    assert_ok(&out, "occ uninstall");
    let cfg = oc_config(&env);
    assert_eq!(
        cfg["tools"]["exec"]["pathPrepend"],
        serde_json::json!(["/opt/tools/bin", "/home/me/bin"]),
        "only occ's entry goes; the one added since install stays"
    );
    assert_eq!(
        cfg["agents"]["entries"]["ops"]["tools"]["exec"]["pathPrepend"],
        serde_json::json!(["/usr/local/bin"])
    );
    assert_eq!(
        cfg["agents"]["entries"]["main"]["tools"]["exec"]["pathPrepend"],
        serde_json::json!(["/usr/local/bin"])
    );
    assert!(!units.join("occ-broker.service").exists());
    assert!(
        !env.home.join(".config").exists(),
        "dirs occ created are gone"
    );
    // The plugin: its keys out, the allowlist as it was, its files gone.
    assert!(cfg["plugins"]["load"].get("paths").is_none(), "{cfg}");
    assert!(
        cfg["plugins"]["entries"].get("occ-exec-env").is_none(),
        "{cfg}"
    );
    assert_eq!(cfg["plugins"]["allow"], serde_json::json!(["github"]));
    assert!(!plugin.exists());
    let log = env.fake_log();
    assert!(
        log.contains("--user disable --now occ-broker.service"),
        "{log}"
    );
    assert!(env.broker_pid().is_none_or(|p| !alive(p)));

    // With no previous value and nothing added, uninstall unsets the key.
    std::fs::write(oc.join("openclaw.json"), "{}").unwrap();
    assert_ok(&env.install(&[]), "install without a previous value");
    assert_eq!(
        oc_config(&env)["tools"]["exec"]["pathPrepend"],
        serde_json::json!([bin])
    );
    assert_ok(&env.installed(&["uninstall"]), "uninstall");
    assert!(
        oc_config(&env)["tools"]["exec"]
            .get("pathPrepend")
            .is_none(),
        "key unset: {}",
        oc_config(&env)
    );
}

/// `occ doctor` reads OpenClaw's config as it is now, never the manifest: with the key unset
/// after install it fails path_order.
#[test]
fn doctor_fails_path_order_when_openclaws_key_was_unset_after_install() {
    let env = Env::new(NO_SYSTEMD);
    env.fake("openclaw", FAKE_OPENCLAW);
    std::fs::create_dir(env.dir.path().join("oc")).unwrap();
    assert_ok(&env.install(&[]), "occ install");
    let out = env
        .cmd(&env.fakes.join("openclaw"))
        .args(["config", "unset", "tools.exec.pathPrepend"])
        .output()
        .unwrap();
    assert_ok(&out, "unset");
    let doc = env.installed(&["doctor"]);
    let s = text(&doc.stdout);
    assert!(s.contains("FAIL  path_order"), "{s}");
    assert!(s.contains("tools.exec.pathPrepend): unset"), "{s}");
    assert_eq!(doc.status.code(), Some(1), "{s}");
    env.stop_broker();
}

#[test]
fn existing_non_occ_sudo_is_kept_with_a_backup_and_a_warning() {
    let env = Env::new(NO_SYSTEMD);
    let bin = env.occ_home().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let legacy = "#!/bin/sh\n# the original tool's bash shim\nexec /usr/bin/sudo \"$@\"\n";
    std::fs::write(bin.join("sudo"), legacy).unwrap();
    std::fs::set_permissions(bin.join("sudo"), std::fs::Permissions::from_mode(0o700)).unwrap();

    let out = env.install(&[]);
    assert_ok(&out, "occ install");
    let err = text(&out.stderr);
    assert!(
        err.contains("warning:")
            && err.contains("was not written by occ")
            && err.contains("sudo.pre-occ"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(bin.join("sudo.pre-occ")).unwrap(),
        legacy
    );
    assert_eq!(mode(&bin.join("sudo.pre-occ")), 0o700);
    assert_eq!(
        std::fs::read(bin.join("sudo")).unwrap(),
        std::fs::read(env.stage.join("occ-shim")).unwrap()
    );
    assert_eq!(mode(&bin), 0o700, "bin/ tightened");

    // A second install does not back the shim up again.
    let again = env.install(&[]);
    assert_ok(&again, "second install");
    assert!(!text(&again.stderr).contains("was not written by occ"));
    assert!(!bin.join("sudo.pre-occ.1").exists());

    assert_ok(&env.installed(&["uninstall"]), "uninstall");
    assert_eq!(
        std::fs::read_to_string(bin.join("sudo")).unwrap(),
        legacy,
        "restored"
    );
    assert!(!bin.join("sudo.pre-occ").exists());
    assert_eq!(mode(&bin), 0o755, "bin/ mode restored");
    assert!(!bin.join("occ").exists());
}

#[test]
fn read_only_home_is_a_clear_error_needs_root() {
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (read-only bind mount with unshare -m)");
        return;
    }
    let env = Env::new(NO_SYSTEMD);
    let h = env.home.display().to_string();
    let mut c = env.cmd(Path::new("unshare"));
    c.args([
        "-m",
        "sh",
        "-c",
        "mount --bind \"$1\" \"$1\" && mount -o remount,ro,bind \"$1\" \"$1\" && shift && exec \"$@\"",
        "sh",
        &h,
    ])
    .arg(env.stage.join("occ"))
    .args(["install", "--from"])
    .arg(&env.stage);
    let out = c.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout {} stderr {err}",
        text(&out.stdout)
    );
    assert!(
        err.contains(&format!("cannot create {h}/.openclaw"))
            && err.contains("Read-only file system"),
        "{err}"
    );
    assert!(!env.occ_home().exists());
}

#[test]
fn install_sh_without_cargo_as_root_and_system_mode_fail_clearly() {
    let env = Env::new(NO_SYSTEMD);
    let script = repo_root().join("install/install.sh");
    // A PATH holding only what install.sh needs besides cargo.
    let tools = env.dir.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    for t in [
        "sh", "id", "dirname", "uname", "cat", "sed", "grep", "printf",
    ] {
        if let Some(p) = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(t))
            .find(|p| p.exists())
        {
            std::os::unix::fs::symlink(p, tools.join(t)).unwrap();
        }
    }
    let run = |args: &[&str], root_ok: bool| {
        let mut c = env.cmd(&tools.join("sh"));
        c.arg(&script).args(args).env("PATH", &tools);
        if root_ok {
            c.env("ALLOW_ROOT", "1");
        }
        c.output().unwrap()
    };
    let out = run(&[], true);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cargo is not on PATH") && err.contains("rustup"),
        "{err}"
    );

    let out = run(&["--system"], true);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--system needs --agent USER and --approver"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["--agent", AGENT], true);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("go with --system"));

    if occ_tests::is_root() {
        let out = run(&[], false);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("refusing to run as root"),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(!env.occ_home().exists(), "nothing installed");
}

#[test]
fn install_sh_with_prebuilt_binaries_installs_and_its_dry_run_changes_nothing() {
    let env = Env::new(NO_SYSTEMD);
    let script = repo_root().join("install/install.sh");
    let run = |args: &[&str]| {
        let mut c = env.cmd(Path::new("sh"));
        c.arg(&script)
            .args(args)
            .arg("--bin-dir")
            .arg(&env.stage)
            .env("ALLOW_ROOT", "1");
        c.output().unwrap()
    };
    let before = tree(&env.home);
    let out = run(&["--dry-run"]);
    assert_ok(&out, "install.sh --dry-run");
    assert!(text(&out.stdout).contains("dry run: nothing was changed"));
    assert_eq!(tree(&env.home), before);

    let out = run(&[]);
    assert_ok(&out, "install.sh --bin-dir");
    let s = text(&out.stdout);
    assert!(
        s.contains("What next:") && s.contains("occ approve ID"),
        "{s}"
    );
    assert!(s.contains("privileged-audit.jsonl"), "{s}");
    assert!(env.occ_home().join("bin/sudo").is_file());
    // Idempotent.
    assert_ok(&run(&[]), "install.sh again");
    assert_ok(&env.installed(&["uninstall"]), "uninstall");
}

#[test]
fn doctor_warns_on_a_legacy_token_and_fails_on_tampering_and_loose_modes() {
    let env = Env::new(NO_SYSTEMD);
    assert_ok(&env.install(&[]), "occ install");
    let h = env.occ_home();

    // A private legacy env file with a plaintext token: a warning with the fix, not a failure.
    let envf = h.join("env");
    std::fs::write(&envf, "export OPENCLAW_APPROVAL_TOKEN=\"hunter2-token\"\n").unwrap();
    std::fs::set_permissions(&envf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.installed(&["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = |v: &Value, name: &str| -> Vec<Value> {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] == name)
            .cloned()
            .collect()
    };
    let legacy = check(&v, "legacy_token");
    assert_eq!(legacy[0]["status"], "warn", "{v}");
    assert!(legacy[0]["fix"].as_str().unwrap().contains("occ token set"));
    if occ_tests::is_root() {
        // Root passes sudo -n -l, so only warnings are left: exit 0.
        assert_eq!(out.status.code(), Some(0), "{v}");
    }

    // Loose modes, an edited audit log and a world-readable token file: failures, exit 1.
    std::fs::set_permissions(&envf, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(h.join("bin"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = h.join("security/privileged-audit.jsonl");
    let body = std::fs::read_to_string(&log).unwrap();
    assert!(!body.is_empty(), "the broker wrote its start event");
    std::fs::write(&log, body.replacen("broker_started", "broker_startex", 1)).unwrap();
    let out = env.installed(&["doctor"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let s = text(&out.stdout);
    for want in [
        "FAIL  files:",
        "chmod go-rwx",
        "FAIL  audit_log:",
        "FAIL  legacy_token:",
    ] {
        assert!(s.contains(want), "missing `{want}` in\n{s}");
    }
    std::fs::set_permissions(h.join("bin"), std::fs::Permissions::from_mode(0o700)).unwrap();
    env.stop_broker();
}

/// A user whose real sudo wants a password (occ-sysagent has no sudoers rules) hears so at
/// install, with the drop-in to add and what it costs, and "What next" does not claim the
/// agent's sudo is gated when `path_order` warned. Needs root (to become that user).
#[test]
fn install_says_when_the_real_sudo_needs_a_password_and_what_next_follows_the_checks_needs_root() {
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (to run as a user without sudo rights)");
        return;
    }
    let Some((uid, gid)) = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"occ-sysagent"))
                .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
        })
    }) else {
        occ_tests::skip("needs the occ-sysagent user (created by .ci/run)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let stage = dir.path().join("stage");
    std::fs::create_dir(&stage).unwrap();
    for b in ["occ", "occ-scan", "occ-shim"] {
        occ_tests::copy_exe(occ_tests::bin(b), stage.join(b));
    }
    let home = dir.path().join("h");
    std::fs::create_dir(&home).unwrap();
    chown_r(dir.path(), (uid, gid));
    let occ = |args: &[&str]| {
        Command::new(stage.join("occ"))
            .args(args)
            .uid(uid)
            .gid(gid)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env("OCC_HOME", home.join(".openclaw"))
            .env("LANG", "C")
            .current_dir(&home)
            .output()
            .unwrap()
    };
    let out = occ(&["install", "--from", stage.to_str().unwrap()]);
    let s = text(&out.stdout);
    let uninstall = occ(&["uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{s}{}", text(&out.stderr));
    assert!(
        s.contains("warn  sudo_n_l: occ-sysagent's real sudo asks for a password"),
        "{s}"
    );
    assert!(s.contains("What next:"), "{s}");
    assert!(
        s.contains("echo 'occ-sysagent ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx' > /etc/sudoers.d/occ-approved"),
        "{s}"
    );
    assert!(
        s.contains("bypassing occ") && s.contains("install.sh --system"),
        "{s}"
    );
    // PATH here lacks the shim's directory: path_order warns, so nothing claims it is gated.
    assert!(s.contains("warn  path_order"), "{s}");
    assert!(s.contains("The agent's sudo is NOT gated yet"), "{s}");
    assert!(!s.contains("now asks for approval"), "{s}");
    assert!(uninstall.status.success(), "{}", text(&uninstall.stderr));
}

/// A fake `crontab` keeping the user's crontab in `$FAKE_CRONTAB` (the machine's is never
/// touched), logging each call.
const FAKE_CRONTAB: &str = r#"#!/bin/sh
echo "crontab $*" >> "$FAKE_LOG"
t=$(dirname "$FAKE_LOG")/crontab.txt
case "$1" in
  -l) if [ -f "$t" ]; then cat "$t"; else echo "no crontab for $USER" >&2; exit 1; fi ;;
  -) cat > "$t" ;;
  -r) rm -f "$t" ;;
esac
"#;

/// A fake `systemctl` whose user manager accepts everything (after `occ install`, which
/// started the broker directly).
const OK_SYSTEMCTL: &str = "#!/bin/sh\necho \"systemctl $*\" >> \"$FAKE_LOG\"\nexit 0\n";

/// `occ uninstall` removes the occ-scan schedule of the home it uninstalls (the crontab line and
/// the systemd user timer `occ-scan schedule install` wrote), keeps every other crontab line,
/// and keeps a schedule of another home, saying which and why.
#[test]
fn uninstall_removes_this_homes_occ_scan_schedule_and_says_what_it_left() {
    let env = Env::new(NO_SYSTEMD);
    env.fake("crontab", FAKE_CRONTAB);
    assert_ok(&env.install(&[]), "occ install");
    env.fake("systemctl", OK_SYSTEMCTL);
    let tab = env.dir.path().join("crontab.txt");
    std::fs::write(&tab, "MAILTO=admin\n0 3 * * * /usr/local/bin/backup\n").unwrap();
    let scan = env.occ_home().join("bin/occ-scan");
    for backend in ["cron", "systemd"] {
        let out = env
            .cmd(&scan)
            .args([
                "schedule",
                "install",
                "--backend",
                backend,
                "--every",
                "15m",
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{backend}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let ours = std::fs::read_to_string(&tab).unwrap();
    let ours = ours
        .lines()
        .find(|l| l.contains("# occ-scan-cycle"))
        .unwrap()
        .to_string();
    assert!(
        ours.contains(&env.occ_home().display().to_string()),
        "{ours}"
    );
    let foreign = "*/5 * * * * OCC_HOME='/srv/other home' '/opt/other/occ-scan' cycle --quiet # occ-scan-cycle";
    std::fs::write(
        &tab,
        format!("MAILTO=admin\n0 3 * * * /usr/local/bin/backup\n{ours}\n{foreign}\n"),
    )
    .unwrap();
    let units = env.home.join(".config/systemd/user");
    assert!(units.join("occ-scan.timer").exists());

    let out = env.installed(&["uninstall", "--json"]);
    assert_ok(&out, "occ uninstall");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        std::fs::read_to_string(&tab).unwrap(),
        format!("MAILTO=admin\n0 3 * * * /usr/local/bin/backup\n{foreign}\n"),
        "{v}"
    );
    assert!(!units.join("occ-scan.timer").exists(), "{v}");
    assert!(!units.join("occ-scan.service").exists(), "{v}");
    assert!(
        env.fake_log()
            .contains("systemctl --user disable --now occ-scan.timer"),
        "{}",
        env.fake_log()
    );
    let reverted = v["reverted"].to_string();
    assert!(
        reverted.contains("occ-scan schedule: removed the crontab line")
            && reverted.contains("occ-scan schedule: stopped and disabled occ-scan.timer"),
        "{v}"
    );
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("/opt/other/occ-scan")
            && warnings.contains("stays: it does not run")
            && warnings.contains(&env.occ_home().display().to_string()),
        "{v}"
    );

    // The human form says the same, line by line.
    std::fs::write(&tab, format!("{ours}\n")).unwrap();
    env.fake("systemctl", NO_SYSTEMD);
    assert_ok(&env.install(&[]), "occ install again");
    let out = env.installed(&["uninstall"]);
    assert_ok(&out, "occ uninstall again");
    let o = text(&out.stdout);
    assert!(
        o.contains("reverted occ-scan schedule: removed the crontab line `"),
        "{o}"
    );
    assert!(
        !tab.exists(),
        "the crontab held only our line, so it is gone"
    );
}

/// `occ install` puts occ(8) with a page per subcommand, occ-scan(8) and occ-policy(5) under
/// `$OCC_HOME/share/man`, and the bash, zsh and fish completions where each shell looks for a
/// user's own; `man occ` finds and renders them (through MANPATH, and through PATH as man-db
/// derives it), bash loads the completion and completes subcommands, and `occ uninstall`
/// removes exactly those files, keeping a completion of the user's own beside them.
#[test]
fn install_puts_man_pages_and_completions_where_man_and_the_shells_look_and_uninstall_removes_them()
{
    let env = Env::new(NO_SYSTEMD);
    let bash_dir = env.home.join(".local/share/bash-completion/completions");
    std::fs::create_dir_all(&bash_dir).unwrap();
    let mine = bash_dir.join("mytool");
    std::fs::write(&mine, "complete -W 'a b' mytool\n").unwrap();

    let out = env.install(&[]);
    assert_ok(&out, "occ install");
    let man = env.occ_home().join("share/man");
    let files = [
        man.join("man8/occ.8"),
        man.join("man8/occ-approve.8"),
        man.join("man8/occ-audit-verify.8"),
        man.join("man8/occ-scan.8"),
        man.join("man8/occ-scan-cycle.8"),
        man.join("man5/occ-policy.5"),
        bash_dir.join("occ"),
        bash_dir.join("occ-scan"),
        env.home.join(".local/share/zsh/site-functions/_occ"),
        env.home.join(".local/share/zsh/site-functions/_occ-scan"),
        env.home.join(".config/fish/completions/occ.fish"),
        env.home.join(".config/fish/completions/occ-scan.fish"),
    ];
    for f in &files {
        assert!(
            f.is_file(),
            "{} missing after install:\n{}",
            f.display(),
            text(&out.stdout)
        );
    }
    let s = text(&out.stdout);
    assert!(
        s.contains("occ-policy.5") && s.contains("_occ, _occ-scan"),
        "{s}"
    );
    for hidden in [
        "occ-man.8",
        "occ-completions.8",
        "occ-agent-home.8",
        "occ-scan-man.8",
    ] {
        assert!(
            !man.join("man8").join(hidden).exists(),
            "{hidden} is a hidden subcommand"
        );
    }
    let zsh =
        std::fs::read_to_string(env.home.join(".local/share/zsh/site-functions/_occ")).unwrap();
    assert!(zsh.starts_with("#compdef occ"), "{zsh}");
    let fish = std::fs::read_to_string(env.home.join(".config/fish/completions/occ.fish")).unwrap();
    assert!(fish.contains("complete -c occ"), "{fish}");

    // `man occ` renders: through MANPATH, and with only $OCC_HOME/bin on PATH (man-db maps
    // DIR/bin to DIR/share/man), which is how the agent's user meets it.
    if Command::new("man").arg("--version").output().is_err() {
        occ_tests::skip("man is not installed (apt-get install man-db)");
    } else {
        for (section, page, want) in [
            ("8", "occ", "approvals"),
            ("8", "occ-audit-verify", "--witness"),
            ("8", "occ-scan", "baseline"),
            ("5", "occ-policy", "command-policy.json"),
        ] {
            let o = env
                .cmd(Path::new("man"))
                .env("MANPATH", &man)
                .env("MANWIDTH", "100")
                .args(["-P", "cat", section, page])
                .output()
                .unwrap();
            assert_ok(&o, &format!("man {section} {page}"));
            let page_text = text(&o.stdout);
            assert!(
                page_text.contains("NAME") && page_text.contains(want),
                "man {page}:\n{page_text}"
            );
        }
        let o = env
            .cmd(Path::new("man"))
            .args(["-w", "occ"])
            .output()
            .unwrap();
        assert_ok(&o, "man -w occ with $OCC_HOME/bin on PATH");
        assert_eq!(
            text(&o.stdout).trim(),
            man.join("man8/occ.8").display().to_string()
        );
    }

    // bash loads the completion and completes `occ appr` to the two subcommands.
    let o = env
        .cmd(Path::new("bash"))
        .arg("-c")
        .arg(
            r#"source "$1" && complete -p occ && COMP_WORDS=(occ appr) COMP_CWORD=1 && _occ occ appr occ && echo "got: ${COMPREPLY[*]}""#,
        )
        .arg("_")
        .arg(bash_dir.join("occ"))
        .output()
        .unwrap();
    assert_ok(&o, "bash: source the completion");
    let s = text(&o.stdout);
    assert!(
        s.contains("-F _occ") && s.contains("got: approvals approve"),
        "{s}"
    );

    // A second install changes none of them; uninstall removes exactly them.
    let again = env.install(&[]);
    assert_ok(&again, "second install");
    assert!(
        text(&again.stdout).contains("nothing to change"),
        "{}",
        text(&again.stdout)
    );
    let out = env.installed(&["uninstall"]);
    assert_ok(&out, "occ uninstall");
    for f in &files {
        assert!(!f.exists(), "{} left after uninstall", f.display());
    }
    assert!(!man.exists(), "the man directory occ made is gone");
    assert!(
        !env.home.join(".config").exists(),
        "~/.config, made by occ, is gone"
    );
    assert!(mine.is_file(), "the user's own completion was kept");
}

/// `occ doctor` verifies the whole chain: an edit in a rotated archive, with the current file
/// intact, fails `audit_log` and names the archive.
#[test]
fn doctor_fails_on_a_tampered_rotated_archive() {
    let env = Env::new(NO_SYSTEMD);
    assert_ok(&env.install(&[]), "occ install");
    let h = env.occ_home();
    env.stop_broker();
    assert_ok(&env.installed(&["audit", "rotate"]), "occ audit rotate");
    let archive = std::fs::read_dir(h.join("security"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("privileged-audit-") && name.ends_with(".jsonl")
        })
        .expect("the rotated archive");
    let doc = env.installed(&["doctor"]);
    assert!(
        text(&doc.stdout).contains("ok    audit_log:"),
        "{}",
        text(&doc.stdout)
    );
    // The next doctor resumes: the current file checked, the unchanged archive not again.
    let doc = env.installed(&["doctor"]);
    assert!(
        text(&doc.stdout).contains("1 archive(s) unchanged since the whole chain was verified"),
        "{}",
        text(&doc.stdout)
    );
    // An edit in place, its mtime set back as the owner can: the ctime moved, so the whole
    // chain is verified again and the break is found.
    let mtime = std::fs::metadata(&archive).unwrap().modified().unwrap();
    let body = std::fs::read_to_string(&archive).unwrap();
    std::fs::write(
        &archive,
        body.replacen("broker_started", "broker_startex", 1),
    )
    .unwrap();
    std::fs::File::options()
        .write(true)
        .open(&archive)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let doc = env.installed(&["doctor"]);
    assert_eq!(doc.status.code(), Some(1), "{}", text(&doc.stdout));
    let line = text(&doc.stdout)
        .lines()
        .find(|l| l.starts_with("FAIL  audit_log:"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no failing audit_log in\n{}", text(&doc.stdout)));
    assert!(
        line.contains(&archive.file_name().unwrap().to_string_lossy().into_owned()),
        "{line}"
    );
}
