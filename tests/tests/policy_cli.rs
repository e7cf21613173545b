//! `occ explain` and `occ policy check|init` through the built binary.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn occ(home: &Path, args: &[&str]) -> Output {
    Command::new(occ_tests::bin("occ"))
        .args(args)
        .env_remove("OPENCLAW_REQUIRE_POLICY_FILES")
        .env_remove("OPENCLAW_REQUIRE_SESSION_ID")
        .env_remove("OPENCLAW_SESSION_ID")
        .env_remove("OPENCLAW_TASK_SESSION_ID")
        .env("OCC_HOME", home)
        .current_dir("/")
        .output()
        .expect("run occ")
}

fn explain_json(home: &Path, sudo_args: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["explain", "--json", "--"];
    args.extend_from_slice(sudo_args);
    let out = occ(home, &args);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{sudo_args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), v)
}

const KEYS: [&str; 14] = [
    "action",
    "command",
    "target_user",
    "target_uid",
    "target_group",
    "env",
    "preserve_env",
    "chdir",
    "non_interactive",
    "runs_arbitrary_code",
    "decision",
    "reason_code",
    "rule",
    "message",
];

#[test]
fn explain_prints_every_key_and_exits_by_decision() {
    let home = tempfile::tempdir().expect("home");
    let (code, v) = explain_json(
        home.path(),
        &["-n", "-u", "root", "FOO=1", "--", "sh", "-c", "id"],
    );
    assert_eq!(code, Some(0), "{v}");
    for k in KEYS {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    assert_eq!(v["action"], "run");
    assert_eq!(v["target_user"], "root");
    assert_eq!(v["target_uid"], 0);
    assert_eq!(v["target_group"], Value::Null);
    assert_eq!(v["env"]["FOO"], "1");
    assert_eq!(v["non_interactive"], true);
    assert_eq!(v["runs_arbitrary_code"], true, "sh is a code runner");
    assert_eq!(v["decision"], "approval_required");
    let cmd = v["command"].as_array().expect("command");
    assert!(
        cmd[0]
            .as_str()
            .is_some_and(|s| s.starts_with('/') && s.ends_with("/sh")),
        "{v}"
    );
    assert_eq!(cmd[1..], [Value::from("-c"), Value::from("id")]);

    let (code, v) = explain_json(home.path(), &["-Z"]);
    assert_eq!(
        (code, v["decision"].as_str(), v["reason_code"].as_str()),
        (Some(1), Some("deny"), Some("usage"))
    );
    assert_eq!(v["message"], "sudo: invalid option -- 'Z'");
    let (code, v) = explain_json(home.path(), &["occ-no-such-command"]);
    assert_eq!(
        (code, v["reason_code"].as_str()),
        (Some(1), Some("command_not_found"))
    );
    assert_eq!(v["message"], "sudo: occ-no-such-command: command not found");
    let (code, v) = explain_json(home.path(), &["-V"]);
    assert_eq!(
        (code, v["action"].as_str(), v["decision"].as_str()),
        (Some(0), Some("version"), Some("allow"))
    );
}

#[test]
fn explain_usage_errors_exit_2_and_text_is_readable() {
    let home = tempfile::tempdir().expect("home");
    assert_eq!(
        occ(home.path(), &["explain", "--bogus"]).status.code(),
        Some(2)
    );
    let out = occ(home.path(), &["explain", "--", "-u", "root", "true"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() >= 5, "{text}");
    assert!(
        text.contains("decision:") && text.contains("approval_required"),
        "{text}"
    );
}

#[test]
fn policy_rules_decide_in_explain() {
    let home = tempfile::tempdir().expect("home");
    let sec = home.path().join("security");
    std::fs::create_dir_all(&sec).expect("mkdir");
    let f = sec.join("command-policy.json");
    std::fs::write(
        &f,
        r#"{"version": 2, "allow": ["id", "ls -l *"], "deny": ["ls -l /root"]}"#,
    )
    .expect("write");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (code, v) = explain_json(home.path(), &["ls", "-l", "/root"]);
    assert_eq!(
        (code, v["reason_code"].as_str()),
        (Some(1), Some("policy_block")),
        "{v}"
    );
    assert_eq!(v["rule"], "deny[0]: ls -l /root");
    let (code, v) = explain_json(home.path(), &["ls", "-l", "/etc/x"]);
    assert_eq!(
        (code, v["reason_code"].as_str()),
        (Some(1), Some("not_in_allowlist")),
        "* never crosses /: {v}"
    );
    let (code, v) = explain_json(home.path(), &["ls", "-l", "etc"]);
    assert_eq!(
        (code, v["decision"].as_str()),
        (Some(0), Some("approval_required")),
        "{v}"
    );
    assert_eq!(v["rule"], "allow[1]: ls -l *");
    // A broken file is a deny, never an allow.
    std::fs::write(&f, r#"{"version": 2, "allow": ["id"], "typo": []}"#).expect("write");
    let (code, v) = explain_json(home.path(), &["id"]);
    assert_eq!(
        (code, v["reason_code"].as_str()),
        (Some(1), Some("policy_invalid")),
        "{v}"
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let (code, v) = explain_json(home.path(), &["id"]);
    assert_eq!(
        (code, v["reason_code"].as_str()),
        (Some(1), Some("policy_invalid")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("chmod 600")),
        "{v}"
    );
}

#[test]
fn required_policy_files_missing_is_a_deny() {
    let home = tempfile::tempdir().expect("home");
    let out = Command::new(occ_tests::bin("occ"))
        .args(["explain", "--json", "--", "true"])
        .env("OCC_HOME", home.path())
        .env("OPENCLAW_REQUIRE_POLICY_FILES", "1")
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (out.status.code(), v["reason_code"].as_str()),
        (Some(1), Some("policy_files_missing")),
        "{v}"
    );
}

#[test]
fn policy_init_writes_0600_and_never_overwrites_without_force() {
    let home = tempfile::tempdir().expect("home");
    let nested = home.path().join("fresh");
    let out = occ(&nested, &["policy", "init"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sec = nested.join("security");
    assert_eq!(std::fs::metadata(&sec).expect("dir").mode() & 0o777, 0o700);
    for name in ["broker.json", "command-policy.json", "prompt-policy.json"] {
        let m = std::fs::metadata(sec.join(name)).expect(name);
        assert_eq!(m.mode() & 0o777, 0o600, "{name}");
    }
    let f = sec.join("command-policy.json");
    std::fs::write(&f, r#"{"version": 2, "allow": ["id"]}"#).expect("edit");
    let out = occ(&nested, &["policy", "init"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "skipping existing files is reported"
    );
    assert!(
        std::fs::read_to_string(&f)
            .expect("read")
            .contains("\"id\""),
        "not overwritten"
    );
    assert_eq!(
        occ(&nested, &["policy", "init", "--force"]).status.code(),
        Some(0)
    );
    assert!(
        !std::fs::read_to_string(&f)
            .expect("read")
            .contains("\"id\""),
        "overwritten with --force"
    );
    let out = occ(&nested, &["policy", "check", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (out.status.code(), &v["ok"]),
        (Some(0), &Value::Bool(true)),
        "{v}"
    );
}

#[test]
fn policy_check_prints_every_problem() {
    let home = tempfile::tempdir().expect("home");
    let sec = home.path().join("security");
    std::fs::create_dir_all(&sec).expect("mkdir");
    for (name, text) in [
        (
            "command-policy.json",
            r#"{"allow": ["^openclaw\\b"], "deny": ["\\brm\\s+-rf\\b"]}"#,
        ),
        (
            "broker.json",
            r#"{"approval": {"stack": ["policy:requisite", "grant:often"]}}"#,
        ),
    ] {
        let p = sec.join(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let out = occ(home.path(), &["policy", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let problems = v["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 2, "{v}");
    let all: String = problems.iter().map(|p| p["message"].to_string()).collect();
    assert!(all.contains("approval.stack[1]"), "{all}");
    assert!(all.contains("rm -rf **"), "the glob form is shown: {all}");
    let text = occ(home.path(), &["policy", "check"]);
    assert_eq!(text.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&text.stdout)
            .matches("problem: ")
            .count(),
        2
    );
}

/// Several problems in each file: every one is reported, with file, JSON path, problem and fix,
/// and the exit is 1.
#[test]
fn policy_check_reports_every_problem_in_every_file() {
    let home = tempfile::tempdir().expect("home");
    let sec = home.path().join("security");
    std::fs::create_dir_all(&sec).expect("mkdir");
    let files = [
        (
            "command-policy.json",
            r#"{"version": 2, "allow": ["ls", "ls ** x", "tail 'x"], "deny_exact": [["rel/x"]]}"#,
            &["allow[1]", "allow[2]", "deny_exact[0]"][..],
        ),
        (
            "broker.json",
            r#"{"approval": {"stack": ["grant:often"]}, "session": {"colour": 1}, "limit": 2}"#,
            &["approval.stack[0]", "session.colour", "limit"][..],
        ),
        (
            "prompt-policy.json",
            r#"{"require_confirmation_for_untrusted": "yes", "extra": 1}"#,
            &["require_confirmation_for_untrusted", "extra"][..],
        ),
    ];
    for (name, text, _) in files {
        let p = sec.join(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let out = occ(home.path(), &["policy", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let problems = v["problems"].as_array().expect("problems");
    for (name, _, paths) in files {
        let got: Vec<&str> = problems
            .iter()
            .filter(|p| p["file"].as_str().is_some_and(|f| f.ends_with(name)))
            .map(|p| {
                assert!(
                    !p["problem"].as_str().unwrap_or("").is_empty()
                        && !p["fix"].as_str().unwrap_or("").is_empty(),
                    "{p}"
                );
                p["path"].as_str().expect("path")
            })
            .collect();
        let mut want = paths.to_vec();
        want.sort_unstable();
        let mut got_sorted = got.clone();
        got_sorted.sort_unstable();
        assert_eq!(got_sorted, want, "{name}: {v}");
    }
    assert_eq!(problems.len(), 8, "{v}");
    let text = occ(home.path(), &["policy", "check"]);
    assert_eq!(text.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(stdout.matches("problem: ").count(), 8, "{stdout}");
    assert!(
        stdout.contains("at session.colour") && stdout.contains("fix: "),
        "{stdout}"
    );
}

#[test]
fn policy_init_json_lists_written_and_kept_files() {
    let home = tempfile::tempdir().unwrap();
    let o = occ(home.path(), &["policy", "init", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    assert!(files.iter().all(|f| f["written"] == true));
    let o = occ(home.path(), &["policy", "init", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "existing files are kept without --force"
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["written"] == false));
}

/// `occ policy init`'s template, then `occ explain --json` as a new user runs it: one decision
/// for every spelling of the command and flags, through wrappers, which the answer names.
#[test]
fn explain_sees_every_spelling_and_wrapper_of_the_templates_denials() {
    let home = tempfile::tempdir().expect("home");
    let init = occ(home.path(), &["policy", "init"]);
    assert!(init.status.success(), "{init:?}");
    for line in [
        &["rm", "-rf", "/"][..],
        &["/usr/bin/rm", "-rf", "/"],
        &["/bin/rm", "-r", "-f", "/"],
        &["../../usr/bin/rm", "--recursive", "--force", "/"],
        &["rm", "-rf", "--no-preserve-root", "/"],
        &["setarch", "x86_64", "rm", "-Rf", "/"],
        &["env", "rm", "-fr", "/"],
        &["nice", "rm", "-rf", "/"],
        &["ld.so", "/usr/bin/rm", "-rf", "/"],
        &["timeout", "5", "chmod", "-R", "777", "/"],
        &["env", "-i", "dd", "if=/dev/zero", "of=/dev/sda"],
    ] {
        let (code, v) = explain_json(home.path(), line);
        assert_eq!(
            (code, v["reason_code"].as_str()),
            (Some(1), Some("policy_block")),
            "{line:?}: {v}"
        );
        let wraps = v["wraps"].as_array().expect("wraps is an array");
        let wrapped = !matches!(
            line[0],
            "rm" | "/usr/bin/rm" | "/bin/rm" | "../../usr/bin/rm"
        );
        assert_eq!(!wraps.is_empty(), wrapped, "{line:?}: {v}");
    }
    let (code, v) = explain_json(home.path(), &["nice", "-n", "5", "id", "-u"]);
    assert_eq!(code, Some(0), "{v}");
    let wraps = v["wraps"].as_array().expect("wraps");
    assert_eq!(wraps.len(), 1, "{v}");
    assert!(
        wraps[0][0].as_str().is_some_and(|s| s.ends_with("/id")) && wraps[0][1] == "-u",
        "{v}"
    );
    // A wrapper form occ cannot read runs arbitrary code, never harmless.
    let (_, v) = explain_json(home.path(), &["env", "LD_PRELOAD=/tmp/x.so", "id"]);
    assert_eq!(v["runs_arbitrary_code"], true, "{v}");
    let (_, v) = explain_json(home.path(), &["env", "-S", "$CMD"]);
    assert_eq!(v["runs_arbitrary_code"], true, "{v}");
}

/// Problems found after parsing come with the rest: each file a forwarder names that cannot be
/// read, and what a user-mode broker refuses (a quorum), next to another file's errors.
#[test]
fn policy_check_reports_named_files_and_user_mode_problems_alongside_the_others() {
    let home = tempfile::tempdir().expect("home");
    let sec = home.path().join("security");
    std::fs::create_dir_all(&sec).expect("mkdir");
    let files = [
        (
            "command-policy.json",
            r#"{"version": 2, "allow": ["ls ** x"]}"#,
        ),
        (
            "broker.json",
            r#"{"approval": {"quorum": 2}, "audit": {"forward": [
                {"type": "logsrvd", "address": "127.0.0.1:30344", "tls": true, "ca": "/nonexistent/ca.pem"},
                {"type": "logsrvd", "address": "127.0.0.1:30345", "tls": true, "ca": "/nonexistent/ca2.pem"}]}}"#,
        ),
    ];
    for (name, text) in files {
        let p = sec.join(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let out = occ(home.path(), &["policy", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut paths: Vec<&str> = v["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["path"].as_str().unwrap_or("-"))
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "allow[0]",
            "approval.quorum",
            "audit.forward[0].ca",
            "audit.forward[1].ca"
        ],
        "{v}"
    );
}
