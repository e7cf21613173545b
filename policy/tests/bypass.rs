//! Regression tests for wrapper bypasses seen in agent tools (OpenClaw #23276, PR #57871,
//! PR #93362 and the `time` advisory): allowing a wrapper must never let another command
//! through without its own approval.

use occ_policy::{decide, Decision};

use crate::support::{policy, request};

/// The policy's half of containment: both requests are flagged as running arbitrary code (so
/// the broker's grant store refuses a `--session` grant for either) and their grant digests
/// differ (so a grant for one never covers the other). The store's half runs the same wrappers
/// through the broker's own path in `broker/src/gate/containment.rs`.
fn assert_wrapper_is_contained(approved: &occ_policy::Request, other: &occ_policy::Request) {
    assert!(
        approved.runs_arbitrary_code,
        "{:?} must be flagged",
        approved.argv
    );
    assert!(
        other.runs_arbitrary_code,
        "{:?} must be flagged",
        other.argv
    );
    assert_ne!(
        approved.digest(),
        other.digest(),
        "{:?} and {:?} share a grant digest",
        other.argv,
        approved.argv
    );
}

#[test]
fn rejects_zsh_lc_wrapper_bypass() {
    // Allowing `/bin/zsh -lc 'systemctl status nginx'` allows exactly that string.
    let p = policy(r#"{"version": 2, "allow": ["/bin/zsh -lc 'systemctl status nginx'"]}"#);
    let ok = request(
        "/bin/zsh",
        "/usr/bin/zsh",
        &["-lc", "systemctl status nginx"],
        Some("s"),
    );
    let evil = request(
        "/bin/zsh",
        "/usr/bin/zsh",
        &["-lc", "systemctl status nginx; rm -rf /"],
        Some("s"),
    );
    assert_eq!(decide(&ok, &p).decision, Decision::ApprovalRequired);
    let d = decide(&evil, &p);
    assert_eq!(
        (d.decision, d.reason_code),
        (Decision::Deny, "not_in_allowlist")
    );
    assert_wrapper_is_contained(&ok, &evil);
}

#[test]
fn rejects_env_wrapper_bypass() {
    let a = request("/usr/bin/env", "/usr/bin/env", &["X=1", "true"], Some("s"));
    let b = request(
        "/usr/bin/env",
        "/usr/bin/env",
        &["X=1", "rm", "-rf", "/"],
        Some("s"),
    );
    assert_wrapper_is_contained(&a, &b);
    let p = policy(r#"{"version": 2, "allow": ["env"], "deny": ["rm -rf **"]}"#);
    let d = decide(&b, &p);
    assert_eq!(
        (d.decision, d.reason_code),
        (Decision::Deny, "policy_block"),
        "{d:?}"
    );
}

#[test]
fn rejects_flock_wrapper_bypass() {
    let a = request(
        "/usr/bin/flock",
        "/usr/bin/flock",
        &["/run/x.lock", "true"],
        Some("s"),
    );
    let b = request(
        "/usr/bin/flock",
        "/usr/bin/flock",
        &["/run/x.lock", "sh", "-c", "id"],
        Some("s"),
    );
    assert_wrapper_is_contained(&a, &b);
    let p = policy(r#"{"version": 2, "deny": ["sh"]}"#);
    assert_eq!(decide(&b, &p).reason_code, "policy_block");
}

#[test]
fn rejects_time_wrapper_bypass() {
    let a = request("/usr/bin/time", "/usr/bin/time", &["true"], Some("s"));
    let b = request(
        "/usr/bin/time",
        "/usr/bin/time",
        &["/usr/bin/passwd", "root"],
        Some("s"),
    );
    assert_wrapper_is_contained(&a, &b);
    let p = policy(r#"{"version": 2, "allow": ["time true"], "deny": ["passwd"]}"#);
    assert_eq!(decide(&b, &p).reason_code, "policy_block");
}

#[test]
fn rejects_xargs_wrapper_bypass() {
    let a = request("/usr/bin/xargs", "/usr/bin/xargs", &["echo"], Some("s"));
    let b = request("/usr/bin/xargs", "/usr/bin/xargs", &["rm", "-f"], Some("s"));
    assert_wrapper_is_contained(&a, &b);
    let p = policy(r#"{"version": 2, "allow": ["xargs echo"]}"#);
    assert_eq!(decide(&b, &p).reason_code, "not_in_allowlist");
}

#[test]
fn rejects_sh_c_positional_carrier_bypass() {
    // `sh -c '$0 "$@"' CMD ARGS…` runs CMD: the carrier string is harmless, the payload is not.
    let a = request(
        "/bin/sh",
        "/usr/bin/dash",
        &["-c", "$0 \"$@\"", "true"],
        Some("s"),
    );
    let b = request(
        "/bin/sh",
        "/usr/bin/dash",
        &["-c", "$0 \"$@\"", "rm", "-rf", "/"],
        Some("s"),
    );
    assert_wrapper_is_contained(&a, &b);
    let p = policy(r#"{"version": 2, "allow": ["/bin/sh -c * **"], "deny": ["rm -rf /"]}"#);
    let d = decide(&b, &p);
    assert_eq!(
        (d.decision, d.reason_code),
        (Decision::Deny, "policy_block")
    );
    let inline = request(
        "/bin/sh",
        "/usr/bin/dash",
        &["-c", "echo hi; rm -rf /"],
        Some("s"),
    );
    assert_eq!(decide(&inline, &p).reason_code, "policy_block");
}

#[test]
fn rejects_versioned_python_bypass() {
    // python3 is a symlink to python3.11; both names are code runners, argv matched literally.
    let a = request(
        "/usr/bin/python3",
        "/usr/bin/python3.11",
        &["-c", "print(1)"],
        Some("s"),
    );
    let b = request(
        "/usr/bin/python3.11",
        "/usr/bin/python3.11",
        &["-c", "import os; os.system('id')"],
        Some("s"),
    );
    assert_wrapper_is_contained(&a, &b);
    let p = policy(r#"{"version": 2, "allow": ["python3 -c print(1)"]}"#);
    assert_eq!(decide(&b, &p).reason_code, "not_in_allowlist");
    assert_eq!(decide(&a, &p).decision, Decision::ApprovalRequired);
}

#[test]
fn plain_commands_are_not_flagged_and_each_argv_is_its_own_request() {
    // systemctl is a code runner since code-runners.json version 2 (its pager); hostname is
    // not.
    let a = request(
        "/usr/bin/hostname",
        "/usr/bin/hostname",
        &["-s", "web1"],
        Some("s"),
    );
    assert!(!a.runs_arbitrary_code);
    let p = policy(r#"{"version": 2}"#);
    assert_eq!(decide(&a, &p).decision, Decision::ApprovalRequired);
    let b = request(
        "/usr/bin/hostname",
        "/usr/bin/hostname",
        &["-s", "web2"],
        Some("s"),
    );
    assert_ne!(a.digest(), b.digest());
}

/// `-s` runs `$SHELL` when the caller set it (as sudo does), else the caller's login shell; the
/// shell that will run is what the policy judges and the approver sees.
#[test]
fn sudo_s_runs_the_callers_shell_variable_as_sudo_does() {
    use occ_policy::{Caller, Context, PolicyConfig};
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    let mut cfg = PolicyConfig::default();
    cfg.broker.allow_shells = true;
    let cfg = Ok(cfg);
    let caller = Caller {
        user: "agent".into(),
        uid: 0,
        gid: 0,
        shell: PathBuf::from("/bin/sh"),
    };
    let run = |env: &[(&str, &str)]| {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ctx = Context::new(caller.clone(), PathBuf::from("/"), env);
        let words: Vec<String> = ["-s", "id"].iter().map(|s| s.to_string()).collect();
        let ev = occ_policy::evaluate(&words, &ctx, &cfg);
        let r = ev.request.unwrap_or_else(|| panic!("{:?}", ev.outcome));
        (r.argv, r.runs_arbitrary_code)
    };
    // The shell's path as resolved (on a merged-/usr host /bin/bash is /usr/bin/bash).
    let name = |argv: &[String]| {
        let p = std::path::Path::new(&argv[0]);
        assert!(p.is_absolute(), "{argv:?}");
        (
            p.file_name().unwrap().to_string_lossy().into_owned(),
            argv[1..].to_vec(),
        )
    };
    let (argv, code) = run(&[("SHELL", "/bin/bash")]);
    assert_eq!(name(&argv), ("bash".into(), vec!["-c".into(), "id".into()]));
    assert!(code, "a shell runs arbitrary code");
    assert_eq!(name(&run(&[]).0).0, "sh", "no $SHELL: the login shell");
    assert_eq!(
        name(&run(&[("SHELL", "")]).0).0,
        "sh",
        "an empty $SHELL is unset"
    );
}
