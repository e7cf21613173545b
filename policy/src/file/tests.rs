//! The policy files' tables: templates, errors that name the key, legacy formats, tightening.
use super::*;

fn f() -> PathBuf {
    PathBuf::from("/x/broker.json")
}

#[test]
fn templates_parse_and_match_the_defaults() {
    let b = BrokerConfig::parse(&f(), templates::BROKER_CONFIG).expect("broker template");
    assert_eq!(b, BrokerConfig::default());
    let c =
        CommandPolicy::parse(Path::new("c"), templates::COMMAND_POLICY).expect("command template");
    assert!(c.allow.is_empty(), "the template pre-allows nothing");
    PromptPolicy::parse(Path::new("p"), templates::PROMPT_POLICY).expect("prompt template");
    assert!(CodeRunners::builtin().len() > 30);
}

#[test]
fn broker_errors_name_the_json_path() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"{"bogus": 1}"#, "bogus", "unknown field `bogus`"),
        (
            r#"{"session": {"idle": 1}}"#,
            "session.idle",
            "unknown field `idle`",
        ),
        (
            r#"{"approval": {"stack": ["grant:sufficient", "nope:required"]}}"#,
            "approval.stack[1]",
            "unknown module",
        ),
        (
            r#"{"approval": {"wait_seconds": "x"}}"#,
            "approval.wait_seconds",
            "invalid type",
        ),
        (r#"{"version": 2}"#, "version", "not supported"),
        (
            r#"{"approval": {"token_sha256": "abc"}}"#,
            "approval.token_sha256",
            "64 lowercase hex",
        ),
        (
            r#"{"allow_preserve_env": ["A=B"]}"#,
            "allow_preserve_env[0]",
            "not a variable name",
        ),
        (
            r#"{"audit": {"fsync": "sometimes"}}"#,
            "audit.fsync",
            "unknown variant",
        ),
        (
            r#"{"audit": {"forward": [{"type": "logsrvd", "address": "localhost"}]}}"#,
            "audit.forward[0].address",
            "not HOST:PORT",
        ),
        (
            r#"{"audit": {"forward": [{"type": "logsrvd", "address": "h:1", "tls": true}]}}"#,
            "audit.forward[0].tls",
            "not built into",
        ),
        (
            r#"{"audit": {"forward": [{"type": "logsrvd", "address": "h:1", "ca": "/x"}]}}"#,
            "audit.forward[0].ca",
            "only used with",
        ),
        (
            r#"{"audit": {"forward": [{"type": "syslog"}]}}"#,
            "audit.forward[0]",
            "exactly one of",
        ),
        (
            r#"{"audit": {"forward": [{"type": "syslog", "socket": "/dev/log", "address": "h:1"}]}}"#,
            "audit.forward[0]",
            "exactly one of",
        ),
        (
            r#"{"audit": {"forward": [{"type": "syslog", "socket": "dev/log"}]}}"#,
            "audit.forward[0].socket",
            "not an absolute path",
        ),
        (
            r#"{"audit": {"forward": [{"type": "syslog", "address": "h:514", "protocol": "sctp"}]}}"#,
            "audit.forward[0]",
            "unknown variant `sctp`",
        ),
        (
            r#"{"audit": {"forward": [{"type": "kafka", "address": "h:1"}]}}"#,
            "audit.forward[0].type",
            "unknown variant",
        ),
        (
            r#"{"audit": {"forward": [{"type": "logsrvd", "address": "h:1", "port": 2}]}}"#,
            "audit.forward[0]",
            "unknown field",
        ),
        (
            r#"{"audit": {"spool_max_events": 0}}"#,
            "audit.spool_max_events",
            "is 0",
        ),
    ];
    for (text, path, needle) in cases {
        match BrokerConfig::parse(&f(), text) {
            Err(FileError::Invalid {
                path: p,
                problem,
                fix,
                ..
            }) => {
                assert_eq!(&p, path, "{text}");
                assert!(problem.contains(needle), "{text}: {problem}");
                assert!(!fix.is_empty());
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn command_policy_errors_name_the_rule() {
    let text =
        r#"{"version": 2, "allow": ["ls", "ls ** x", "tail 'x"], "deny_exact": [["rel/x"]]}"#;
    let errs = CommandPolicy::parse(Path::new("c.json"), text).expect_err("bad rules");
    let paths: Vec<String> = errs
        .iter()
        .map(|e| match e {
            FileError::Invalid { path, .. } => path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(paths, ["allow[1]", "allow[2]", "deny_exact[0]"]);
    assert!(
        errs[0].to_string().starts_with("c.json: at allow[1]:"),
        "{}",
        errs[0]
    );
}

#[test]
fn legacy_regex_format_is_refused_with_the_glob_form() {
    let seed = r#"{"allow": ["^openclaw\\b", "^python3\\b"], "deny": ["\\brm\\s+-rf\\b", "\\bshutdown\\b", "\\breboot\\b"]}"#;
    let errs = CommandPolicy::parse(Path::new("c.json"), seed).expect_err("legacy");
    let msg = errs[0].to_string();
    assert!(matches!(errs[0], FileError::Legacy { .. }));
    assert!(msg.contains(r#""allow":["openclaw","python3"]"#), "{msg}");
    assert!(msg.contains(r#""rm -rf **""#), "{msg}");
    // Version 2 with a regex-looking rule is still the old format.
    let v2 = r#"{"version": 2, "allow": ["^ls$"]}"#;
    assert!(matches!(
        CommandPolicy::parse(Path::new("c"), v2).expect_err("regex")[0],
        FileError::Legacy { .. }
    ));
}

#[test]
fn env_can_only_tighten() {
    let mut b = BrokerConfig::default();
    b.tighten_from_env(&|k| (k.starts_with("OPENCLAW_REQUIRE")).then(|| "0".to_string()));
    assert!(!b.require_policy_files && !b.session.require_session_id);
    b.tighten_from_env(&|_| Some("1".to_string()));
    assert!(b.require_policy_files && b.session.require_session_id);
    b.tighten_from_env(&|_| Some("0".to_string()));
    assert!(
        b.require_policy_files && b.session.require_session_id,
        "never loosened"
    );
}

#[test]
fn one_file_loaders_check_before_reading_like_load() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().expect("tempdir");
    let uid = nix::unistd::geteuid().as_raw();
    let at = |name: &str, text: &str, mode: u32| {
        let p = d.path().join(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    };
    let b = d.path().join(BROKER_CONFIG);
    assert_eq!(BrokerConfig::load(&b, uid), Ok(None), "absent");
    let b = at(BROKER_CONFIG, "{}", 0o600);
    assert_eq!(
        BrokerConfig::load(&b, uid),
        Ok(Some(BrokerConfig::default()))
    );
    let b = at(BROKER_CONFIG, "{}", 0o666);
    assert!(matches!(
        BrokerConfig::load(&b, uid),
        Err(FileError::Unsafe { .. })
    ));
    let c = at(
        COMMAND_POLICY,
        r#"{"version": 2, "allow": ["ls", "tail 'x"]}"#,
        0o600,
    );
    let errs = CommandPolicy::load(&c, uid).expect_err("a bad rule");
    assert!(matches!(errs[..], [FileError::Invalid { .. }]), "{errs:?}");
    let c = at(COMMAND_POLICY, r#"{"version": 2, "allow": ["ls"]}"#, 0o660);
    let errs = CommandPolicy::load(&c, uid).expect_err("group-writable");
    assert!(matches!(errs[..], [FileError::Unsafe { .. }]), "{errs:?}");
    let p = at(PROMPT_POLICY, "", 0o600);
    assert!(matches!(
        PromptPolicy::load(&p, uid),
        Err(FileError::Invalid { .. })
    ));
    let p = at(
        PROMPT_POLICY,
        r#"{"require_confirmation_for_untrusted": false}"#,
        0o644,
    );
    let loaded = PromptPolicy::load(&p, uid)
        .expect("0644 is safe")
        .expect("present");
    assert!(!loaded.require_confirmation_for_untrusted);
}

#[test]
fn versioned_code_runner_names() {
    let cr = CodeRunners::builtin();
    for (name, want) in [
        ("python3.11", true),
        ("python3", true),
        ("perl5.36.0", true),
        ("bash", true),
        ("env", true),
        ("ls", false),
        ("systemctl", false),
        ("pythonista", false),
        ("3", false),
    ] {
        assert_eq!(cr.lists(name), want, "{name}");
    }
}
