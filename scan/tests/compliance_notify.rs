//! `notify`: new, escalated and unchanged findings; a failing notifier leaves the state where
//! it was so the next run retries; refused notifiers (a shell, a symlinked interpreter, a
//! mismatched argv, the legacy comma allowlist); the notifier's environment is cleared.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use occ_scan::compliance::notify::{notify, NotifyOptions, NotifyState};
use serde_json::json;

use crate::compliance_support::{write, write_exe};

struct Setup {
    dir: tempfile::TempDir,
    opts: NotifyOptions,
    out: PathBuf,
}

fn summary(p: &Path, items: &[(&str, &str, &str)]) {
    let v: Vec<_> = items
        .iter()
        .map(|(id, st, risk)| json!({"check_id": id, "status": st, "risk": risk, "title": format!("title of {id}")}))
        .collect();
    write(p, &json!({"summary": {"violations": v}}).to_string());
}

/// A notifier script that appends its stdin (and its environment) to `out`, then exits `code`.
fn notifier(dir: &Path, name: &str, code: i32) -> PathBuf {
    let out = dir.join("delivered.txt");
    let p = dir.join(name);
    write_exe(
        &p,
        &format!(
            "#!/bin/sh\ncat >> '{o}'\necho '--' >> '{o}'\nenv > '{o}.env'\nexit {code}\n",
            o = out.display()
        ),
    );
    p
}

fn setup(code: i32) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let n = notifier(dir.path(), "notify-admin", code);
    let argv = json!([n.display().to_string(), "--channel", "ops"]).to_string();
    let opts = NotifyOptions {
        summary: dir.path().join("compliance-summary.json"),
        state: dir.path().join("state.json"),
        cmd: Some(argv.clone()),
        allowlist: Some(format!("[{argv}]")),
        allowlist_file: None,
        timeout: Duration::from_secs(5),
    };
    let out = dir.path().join("delivered.txt");
    Setup { dir, opts, out }
}

fn delivered(s: &Setup) -> String {
    std::fs::read_to_string(&s.out).unwrap_or_default()
}

fn state(s: &Setup) -> NotifyState {
    serde_json::from_slice(&std::fs::read(&s.opts.state).unwrap()).unwrap()
}

#[test]
fn new_then_unchanged_then_escalated() {
    let s = setup(0);
    summary(
        &s.opts.summary,
        &[
            ("backup_configured", "partial", "low"),
            ("command_policy_enforced", "violation", "high"),
        ],
    );
    let o = notify(&s.opts, SystemTime::now()).unwrap();
    assert_eq!(o.status, "sent");
    assert_eq!(o.new, vec!["backup_configured", "command_policy_enforced"]);
    assert!(o.state_advanced);
    let text = delivered(&s);
    assert!(
        text.contains(
            "- backup_configured: partial (risk low)\n    control:  title of backup_configured\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("- command_policy_enforced: violation (risk high)\n"),
        "{text}"
    );
    // Delivered: notify did its job (the failing checks are assess's exit code).
    assert_eq!(o.exit_code(), 0);
    assert_eq!(
        o.headline(),
        format!(
            "notify: delivered 2 new or escalated findings to {}",
            s.dir.path().join("notify-admin").display()
        )
    );

    // Unchanged: nothing sent.
    std::fs::remove_file(&s.out).unwrap();
    let o = notify(&s.opts, SystemTime::now()).unwrap();
    assert_eq!(o.status, "nothing_new");
    assert!(!s.out.exists(), "notifier ran for unchanged findings");
    assert_eq!(o.exit_code(), 0);
    assert!(o.headline().contains("nothing new"), "{}", o.headline());

    // Escalated: exactly that one line.
    summary(
        &s.opts.summary,
        &[
            ("backup_configured", "violation", "low"),
            ("command_policy_enforced", "violation", "high"),
        ],
    );
    let o = notify(&s.opts, SystemTime::now()).unwrap();
    assert_eq!(o.new, vec!["backup_configured"]);
    let text = delivered(&s);
    assert_eq!(text.matches("\n- ").count(), 1, "{text}");

    // Downgrade is not news, but it is remembered: a later re-escalation is news again.
    summary(&s.opts.summary, &[("backup_configured", "partial", "low")]);
    let o = notify(&s.opts, SystemTime::now()).unwrap();
    assert_eq!(o.status, "nothing_new");
    assert_eq!(state(&s).violations.len(), 1);
}

#[test]
fn failing_notifier_keeps_state_and_retries() {
    let s = setup(3);
    summary(
        &s.opts.summary,
        &[("backup_configured", "violation", "low")],
    );
    let o = notify(&s.opts, SystemTime::now()).unwrap();
    assert_eq!(o.status, "failed");
    assert!(!o.state_advanced);
    assert_eq!(o.exit_code(), 2);
    assert!(
        o.error.as_deref().unwrap_or_default().contains("exited 3"),
        "{o:?}"
    );
    // The line says what happened and what to do about it.
    let line = o.headline();
    assert!(
        line.starts_with("notify: failed: ") && line.contains("; fix: run the notifier by hand"),
        "{line}"
    );
    let st = state(&s);
    assert!(
        st.violations.is_empty(),
        "state advanced after a failed delivery"
    );
    assert_eq!(st.failed_attempts, 1);
    // Still new on the next run (retry), reported again.
    let o = notify(&s.opts, SystemTime::now()).unwrap();
    assert_eq!(o.new, vec!["backup_configured"]);
    assert_eq!(o.failed_attempts, 2);
    // Fix the notifier: delivered, state advances.
    notifier(s.dir.path(), "notify-admin", 0);
    let o = notify(&s.opts, SystemTime::now()).unwrap();
    assert_eq!(o.status, "sent");
    assert_eq!(state(&s).violations.len(), 1);
    assert_eq!(state(&s).failed_attempts, 0);
}

#[test]
fn hanging_notifier_is_killed_and_retried() {
    let mut s = setup(0);
    let p = s.dir.path().join("slow-notifier");
    write_exe(&p, "#!/bin/sh\nsleep 30\n");
    let argv = json!([p.display().to_string()]).to_string();
    s.opts.cmd = Some(argv.clone());
    s.opts.allowlist = Some(format!("[{argv}]"));
    s.opts.timeout = Duration::from_millis(300);
    summary(
        &s.opts.summary,
        &[("backup_configured", "violation", "low")],
    );
    let t = std::time::Instant::now();
    let o = notify(&s.opts, SystemTime::now()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(o.status, "failed");
    assert!(o.error.unwrap_or_default().contains("timed out"));
    assert!(state(&s).violations.is_empty());
}

#[test]
fn notifier_environment_is_cleared() {
    std::env::set_var("OCC_NOTIFY_TEST_LEAK", "BASH_ENV-like");
    let s = setup(0);
    summary(
        &s.opts.summary,
        &[("backup_configured", "violation", "low")],
    );
    notify(&s.opts, SystemTime::now()).unwrap();
    let env = std::fs::read_to_string(s.out.with_extension("txt.env")).unwrap();
    assert!(!env.contains("OCC_NOTIFY_TEST_LEAK"), "{env}");
    assert!(env.contains("PATH=/usr/local/bin:/usr/bin:/bin"), "{env}");
}

fn refused(s: &Setup, cmd: &str, allow: &str) -> String {
    let mut opts = s.opts.clone();
    opts.cmd = Some(cmd.to_string());
    opts.allowlist = Some(allow.to_string());
    let o = notify(&opts, SystemTime::now()).unwrap();
    assert_eq!(o.status, "refused", "{cmd} was not refused: {o:?}");
    assert!(!o.state_advanced);
    assert_eq!(o.exit_code(), 2);
    o.error.unwrap_or_default()
}

#[test]
fn refuses_shells_interpreters_and_mismatched_argv() {
    let s = setup(0);
    summary(
        &s.opts.summary,
        &[("backup_configured", "violation", "low")],
    );
    // A shell, exactly allowlisted: still refused (it would run the message as commands).
    let e = refused(&s, r#"["/bin/sh"]"#, r#"[["/bin/sh"]]"#);
    assert!(e.contains("shell or interpreter"), "{e}");
    // A symlink with an innocent name pointing at bash: judged by its target.
    let link = s.dir.path().join("notifier");
    std::os::unix::fs::symlink("/bin/bash", &link).unwrap();
    let cmd = json!([link.display().to_string()]).to_string();
    let e = refused(&s, &cmd, &format!("[{cmd}]"));
    assert!(e.contains("shell or interpreter"), "{e}");
    // A versioned interpreter name.
    let py = s.dir.path().join("python3.11");
    write_exe(&py, "#!/bin/false\n");
    let cmd = json!([py.display().to_string(), "-c", "1"]).to_string();
    refused(&s, &cmd, &format!("[{cmd}]"));
    // awk runs code through system().
    refused(
        &s,
        r#"["/usr/bin/awk", "{system($0)}"]"#,
        r#"[["/usr/bin/awk", "{system($0)}"]]"#,
    );
    // Mismatched argv: the allowlist holds the program with other arguments.
    let n = s.dir.path().join("notify-admin");
    let cmd = json!([n.display().to_string(), "--channel", "everyone"]).to_string();
    let allow = json!([[n.display().to_string(), "--channel", "ops"]]).to_string();
    let e = refused(&s, &cmd, &allow);
    assert!(e.contains("not in"), "{e}");
    // The legacy comma allowlist approved any arguments; it is refused now.
    let e = refused(&s, &format!("{} -a", n.display()), &n.display().to_string());
    assert!(e.contains("JSON array"), "{e}");
    // Relative path, and no allowlist at all.
    refused(&s, r#"["notify-admin"]"#, r#"[["notify-admin"]]"#);
    let mut opts = s.opts.clone();
    opts.allowlist = None;
    assert_eq!(notify(&opts, SystemTime::now()).unwrap().status, "refused");
    assert!(!s.out.exists(), "a refused notifier ran");
}

#[test]
fn reads_the_nested_summary_and_prints_without_a_notifier() {
    // The seed read a top-level `violations` key and so never fired (B5).
    let s = setup(0);
    let mut opts = s.opts.clone();
    opts.cmd = None;
    // The title states the control's goal; the observed state and the fix say what is wrong.
    write(
        &opts.summary,
        &json!({"summary": {"violations": [{
            "check_id": "backup_configured", "status": "violation", "risk": "medium",
            "title": "Recent backups exist",
            "observed_state": "no backup newer than 7 days under /var/backups",
            "mitigation": "schedule a backup of ~/.openclaw"
        }]}})
        .to_string(),
    );
    let o = notify(&opts, SystemTime::now()).unwrap();
    assert_eq!(o.status, "printed");
    assert_eq!(o.exit_code(), 0);
    let m = o.message.clone().unwrap();
    assert!(
        m.ends_with(
            "- backup_configured: violation (risk medium)\n    control:  Recent backups exist\n    observed: no backup newer than 7 days under /var/backups\n    fix:      schedule a backup of ~/.openclaw\n"
        ),
        "{m}"
    );
    assert!(
        o.headline().contains("no notifier is configured"),
        "{}",
        o.headline()
    );
    // A summary without summary.violations is an error, not "nothing new".
    write(&opts.summary, r#"{"violations": []}"#);
    assert!(notify(&opts, SystemTime::now()).is_err());
}

/// `occ-scan notify` through the binary, with `$OCC_HOME/security/notify.json`.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        summary(
            &dir.path().join("home/assessments/compliance-summary.json"),
            &[
                ("backup_configured", "violation", "medium"),
                ("gateway_loopback_only", "partial", "high"),
            ],
        );
        Cli { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A notifier that appends its stdin to `NAME.out`.
    fn notifier(&self, name: &str) -> (PathBuf, PathBuf) {
        let out = self.dir.path().join(format!("{name}.out"));
        let p = self.dir.path().join(name);
        write_exe(&p, &format!("#!/bin/sh\ncat >> '{}'\n", out.display()));
        (p, out)
    }

    fn config(&self, v: &serde_json::Value, mode: u32) -> PathBuf {
        let p = self.home().join("security/notify.json");
        write(&p, &v.to_string());
        crate::compliance_support::chmod(&p, mode);
        p
    }

    fn run(&self, json: bool, env: &[(&str, String)]) -> (i32, String, String) {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_occ-scan"));
        if json {
            c.arg("--json");
        }
        let out = c
            .arg("notify")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("OCC_HOME", self.home())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn env_notifier(p: &Path) -> Vec<(&'static str, String)> {
    let argv = json!([p.display().to_string()]).to_string();
    vec![
        ("OPENCLAW_VIOLATION_NOTIFY_CMD", argv.clone()),
        ("OPENCLAW_VIOLATION_NOTIFY_ALLOWLIST", format!("[{argv}]")),
    ]
}

/// The environment still sets the notifier; notify says what it delivered and exits 0, then
/// says there is nothing new (exit 0 again).
#[test]
fn cli_env_notifier_delivers_and_says_so() {
    let c = Cli::new();
    let (n, out) = c.notifier("from-env");
    let (code, stdout, stderr) = c.run(false, &env_notifier(&n));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "notify: delivered 2 new or escalated findings to {}\n",
            n.display()
        )
    );
    assert!(std::fs::read_to_string(&out).unwrap().contains(
        "- backup_configured: violation (risk medium)\n    control:  title of backup_configured\n"
    ));
    let (code, stdout, _) = c.run(false, &env_notifier(&n));
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("notify: nothing new to deliver (2 failing check(s)"),
        "{stdout}"
    );
}

/// security/notify.json wins over the environment, key by key; its allowlist rules are the
/// same (an argv not listed exactly is refused, exit 2, and nothing runs); its state key moves
/// the state file.
#[test]
fn cli_config_file_wins_over_the_environment() {
    let c = Cli::new();
    let (env_n, env_out) = c.notifier("from-env");
    let (file_n, file_out) = c.notifier("from-file");
    let argv = json!([file_n.display().to_string(), "--tag", "occ"]);
    let state = c.dir.path().join("elsewhere/state.json");
    c.config(
        &json!({"command": argv, "allowlist": [argv], "state": state, "timeout_secs": 5}),
        0o600,
    );
    let (code, stdout, stderr) = c.run(true, &env_notifier(&env_n));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["status"], "sent", "{v}");
    assert_eq!(v["notifier"], argv);
    assert_eq!(v["sources"]["command"], "file");
    assert_eq!(v["sources"]["allowlist"], "file");
    assert!(file_out.exists(), "the file's notifier ran");
    assert!(!env_out.exists(), "the environment's notifier ran");
    assert!(state.exists(), "the file's state path was used");
    assert!(!c
        .home()
        .join("security/violation-notify-state.json")
        .exists());

    // Only the command in the file: the environment's allowlist does not list it: refused.
    let c = Cli::new();
    let (file_n, file_out) = c.notifier("from-file");
    c.config(&json!({"command": [file_n.display().to_string()]}), 0o600);
    let (code, stdout, stderr) = c.run(false, &env_notifier(&env_n));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("notify: refused") && stderr.contains("is not in"),
        "{stderr}"
    );
    assert!(
        !file_out.exists() && !env_out.exists(),
        "a refused notifier ran"
    );

    // The file's allowlist wins and does not list the environment's command: the refusal
    // names the file, not the environment variable.
    let c = Cli::new();
    let (other, other_out) = c.notifier("other");
    c.config(
        &json!({"allowlist": [[other.display().to_string()]]}),
        0o600,
    );
    let (code, stdout, stderr) = c.run(false, &env_notifier(&env_n));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("is not in the allowlist in") && stderr.contains("notify.json"),
        "{stderr}"
    );
    assert!(!stderr.contains("is not in OPENCLAW_VIOLATION"), "{stderr}");
    assert!(!env_out.exists() && !other_out.exists());
}

/// notify.json goes through occ's trusted-file opener: writable by others, it is refused with
/// the file and the fix named, and nothing is delivered. An unknown key is refused too.
#[test]
fn cli_config_file_writable_by_others_or_with_unknown_keys_is_refused() {
    let c = Cli::new();
    let (n, out) = c.notifier("from-file");
    let argv = json!([n.display().to_string()]);
    let p = c.config(&json!({"command": argv, "allowlist": [argv]}), 0o666);
    let (code, stdout, stderr) = c.run(false, &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains(&p.display().to_string())
            && stderr.contains("writable by group or others")
            && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!out.exists());
    c.config(&json!({"command": argv, "allowlists": [argv]}), 0o600);
    let (code, _, stderr) = c.run(false, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown field `allowlists`"), "{stderr}");
    assert!(!out.exists());
}
