//! Loading the policy files from disk: the checks before reading, required files, and the
//! caller's tightening variables.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use occ_policy::file::{self, FileError};

fn write(dir: &Path, name: &str, text: &str, mode: u32) {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn missing_files_mean_defaults_unless_required() {
    let d = tempfile::tempdir().expect("tempdir");
    let cfg = file::load(d.path(), uid(), &no_env).expect("defaults");
    assert!(cfg.commands.allow.is_empty() && !cfg.broker.allow_shells);
    let errs = file::load(d.path(), uid(), &|k| {
        (k == "OPENCLAW_REQUIRE_POLICY_FILES").then(|| "1".into())
    })
    .expect_err("required by the caller's env");
    assert_eq!(errs.len(), 2);
    assert!(
        errs.iter()
            .all(|e| e.reason_code() == "policy_files_missing"),
        "{errs:?}"
    );
    write(
        d.path(),
        file::BROKER_CONFIG,
        r#"{"require_policy_files": true}"#,
        0o600,
    );
    assert!(file::load(d.path(), uid(), &no_env).is_err());
}

#[test]
fn caller_env_cannot_loosen_broker_json() {
    let d = tempfile::tempdir().expect("tempdir");
    write(
        d.path(),
        file::BROKER_CONFIG,
        r#"{"session": {"require_session_id": true}}"#,
        0o600,
    );
    let cfg = file::load(d.path(), uid(), &|_| Some("0".into())).expect("load");
    assert!(cfg.broker.session.require_session_id);
}

#[test]
fn group_or_world_writable_files_are_refused() {
    for mode in [0o620, 0o602, 0o666] {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), file::COMMAND_POLICY, r#"{"version": 2}"#, mode);
        let errs = file::load(d.path(), uid(), &no_env).expect_err("writable");
        let msg = errs[0].to_string();
        assert!(
            matches!(errs[0], FileError::Unsafe { .. }),
            "{mode:o}: {msg}"
        );
        assert!(msg.contains("chmod 600"), "{msg}");
        assert_eq!(errs[0].reason_code(), "policy_invalid");
    }
}

#[test]
fn symlinked_policy_files_are_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "real.json", r#"{"version": 2}"#, 0o600);
    std::os::unix::fs::symlink(
        d.path().join("real.json"),
        d.path().join(file::COMMAND_POLICY),
    )
    .expect("symlink");
    let errs = file::load(d.path(), uid(), &no_env).expect_err("symlink");
    assert!(errs[0].to_string().contains("is a symlink"), "{}", errs[0]);
}

#[test]
fn files_owned_by_someone_else_are_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    write(
        d.path(),
        file::PROMPT_POLICY,
        r#"{"require_confirmation_for_untrusted": true}"#,
        0o600,
    );
    // Read "as" a uid that neither owns the file nor is root; root owning it is accepted.
    let other = if uid() == 0 { 4242 } else { uid() + 1 };
    let owner = std::fs::metadata(d.path().join(file::PROMPT_POLICY))
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .expect("stat");
    let res = file::load(d.path(), other, &no_env);
    if owner == 0 {
        assert!(res.is_ok(), "root-owned files are trusted");
    } else {
        let errs = res.expect_err("foreign owner");
        assert!(
            errs[0].to_string().contains("is owned by uid"),
            "{}",
            errs[0]
        );
    }
}

#[test]
fn every_problem_is_reported_with_file_and_json_path() {
    let d = tempfile::tempdir().expect("tempdir");
    write(
        d.path(),
        file::BROKER_CONFIG,
        r#"{"approval": {"stack": ["grant:maybe"]}}"#,
        0o600,
    );
    write(
        d.path(),
        file::COMMAND_POLICY,
        r#"{"version": 2, "allow": ["ls", "ls **  -l"]}"#,
        0o600,
    );
    write(
        d.path(),
        file::PROMPT_POLICY,
        r#"{"require_confirmation": true}"#,
        0o600,
    );
    let errs = file::load(d.path(), uid(), &no_env).expect_err("three problems");
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 3, "{text:#?}");
    assert!(
        text[0].contains("broker.json: at approval.stack[0]: unknown control"),
        "{}",
        text[0]
    );
    assert!(
        text[1].contains("command-policy.json: at allow[1]:"),
        "{}",
        text[1]
    );
    assert!(
        text[2].contains("prompt-policy.json: at require_confirmation:"),
        "{}",
        text[2]
    );
    assert!(text.iter().all(|t| t.contains("fix:")), "{text:#?}");
}

#[test]
fn the_original_regex_template_is_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let seed = r#"{"allow": ["^openclaw\\b", "^python3\\b"], "deny": ["\\brm\\s+-rf\\b", "\\bshutdown\\b", "\\breboot\\b"], "allow_exact": [], "deny_exact": []}"#;
    write(d.path(), file::COMMAND_POLICY, seed, 0o600);
    let errs = file::load(d.path(), uid(), &no_env).expect_err("legacy");
    let msg = errs[0].to_string();
    assert!(msg.contains("regex format"), "{msg}");
    assert!(
        msg.contains(r#""deny":["rm -rf **","shutdown","reboot"]"#),
        "{msg}"
    );
}

/// The limits an admin gets without writing any (DESIGN: 64 request connections and 32 pending
/// requests per uid, 256 KiB per request, 16 admin connections per uid), from the default and
/// from a broker.json that names only another section.
#[test]
fn default_limits_are_the_documented_ones() {
    let want = (64, 32, 256 * 1024, 16);
    let of = |l: &occ_policy::file::LimitsConfig| {
        (
            l.connections_per_uid,
            l.pending_per_uid,
            l.request_bytes,
            l.admin_connections_per_uid,
        )
    };
    assert_eq!(of(&occ_policy::file::BrokerConfig::default().limits), want);
    let parsed = occ_policy::file::BrokerConfig::parse(
        std::path::Path::new("broker.json"),
        r#"{"approval": {"quorum": 1}}"#,
    )
    .unwrap();
    assert_eq!(of(&parsed.limits), want);
}
