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
fn an_argon2id_token_alone_parses() {
    let t = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
    let text = format!(r#"{{"approval": {{"token_argon2id": "{t}"}}}}"#);
    let b = BrokerConfig::parse(&f(), &text).expect("argon2id token");
    assert_eq!(b.approval.token_argon2id.as_deref(), Some(t));
    assert_eq!(b.approval.token_sha256, None);
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
            r#"{"approval": {"token_argon2id": "$argon2i$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"}}"#,
            "approval.token_argon2id",
            "not an argon2id PHC string",
        ),
        (
            r#"{"approval": {"token_argon2id": "4d0f0b"}}"#,
            "approval.token_argon2id",
            "not an argon2id PHC string",
        ),
        (
            r#"{"approval": {"token_sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "token_argon2id": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"}}"#,
            "approval.token_argon2id",
            "together with approval.token_sha256",
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
            "audit.forward[0].ca",
            "is missing",
        ),
        (
            r#"{"audit": {"forward": [{"type": "logsrvd", "address": "h:1", "tls": true,
                "ca": "/c", "cert": "/x"}]}}"#,
            "audit.forward[0].key",
            "needs its private key",
        ),
        (
            r#"{"audit": {"forward": [{"type": "logsrvd", "address": "h:1", "tls": true,
                "ca": "/c", "key": "/k"}]}}"#,
            "audit.forward[0].cert",
            "only used with a client certificate",
        ),
        (
            r#"{"audit": {"forward": [{"type": "logsrvd", "address": "h:1", "tls": true,
                "ca": "ca.pem"}]}}"#,
            "audit.forward[0].ca",
            "not an absolute path",
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
        // Since version 2 (GTFOBins: shell through its pager; review): a code runner.
        ("systemctl", true),
        ("pythonista", false),
        ("3", false),
    ] {
        assert_eq!(cr.lists(name), want, "{name}");
    }
}

#[test]
fn shipped_catalogue_parses_strictly_and_names_its_source() {
    let cr = CodeRunners::parse(
        Path::new("references/code-runners.json"),
        templates::CODE_RUNNERS,
    )
    .expect("the shipped catalogue parses");
    assert_eq!(cr, CodeRunners::builtin());
    assert!(cr.len() > 300, "{} names", cr.len());
    let src = cr.source().expect("a source");
    assert!(src.catalogue.starts_with("GTFOBins"), "{}", src.catalogue);
    assert_eq!(src.commit.len(), 40);
    for f in ["shell", "command", "library-load", "file-write"] {
        assert!(src.functions.iter().any(|x| x == f), "{f}");
    }
}

/// One line per malformed catalogue: the key the error names and a word of its problem.
#[test]
fn malformed_catalogues_are_refused_naming_the_key() {
    let src = r#""source": {"catalogue": "c", "commit": "0123456789abcdef0123456789abcdef01234567", "retrieved": "2026-01-01", "functions": ["shell"]}, "local_additions": "x""#;
    let body = |rest: &str| format!(r#"{{"version": 2, {src}, {rest}}}"#);
    let ok = body(r#""runs_arbitrary_code": {"a": ["sh"]}, "writes_files": {"b": ["tee"]}"#);
    CodeRunners::parse(Path::new("cr.json"), &ok).expect("a minimal catalogue parses");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            r#"{"version": 1, "categories": {"shells": ["sh"]}}"#.into(),
            "version",
            "version 1 is not supported",
        ),
        (
            body(r#""runs_arbitrary_code": {}, "writes_files": {}, "bogus": 1"#),
            "bogus",
            "unknown field",
        ),
        (
            body(r#""runs_arbitrary_code": {"a": ["/bin/sh"]}, "writes_files": {}"#),
            "runs_arbitrary_code.a[0]",
            "not a file name",
        ),
        (
            body(r#""runs_arbitrary_code": {}, "writes_files": {"w": ["ok", ""]}"#),
            "writes_files.w[1]",
            "not a file name",
        ),
        (
            body(
                r#""runs_arbitrary_code": {}, "writes_files": {}, "patterns": {"runs_arbitrary_code": ["gcc-[" ]}"#,
            ),
            "patterns.runs_arbitrary_code[0]",
            "gcc-[",
        ),
        (
            body(
                r#""runs_arbitrary_code": {}, "writes_files": {}, "patterns": {"writes_files": ["a/b"]}"#,
            ),
            "patterns.writes_files[0]",
            "without '/'",
        ),
        (
            body(r#""runs_arbitrary_code": {}, "writes_files": {}, "patterns": {"other": []}"#),
            "patterns.other",
            "unknown field",
        ),
        (
            body(r#""writes_files": {}"#),
            ".",
            "missing field `runs_arbitrary_code`",
        ),
        (
            ok.replace("0123456789abcdef0123456789abcdef01234567", "abc"),
            "source.commit",
            "not a git commit",
        ),
    ];
    for (text, path, needle) in cases {
        match CodeRunners::parse(Path::new("/x/code-runners.json"), &text) {
            Err(FileError::Invalid {
                file,
                path: p,
                problem,
                ..
            }) => {
                assert_eq!(file, Path::new("/x/code-runners.json"));
                assert_eq!(p, path, "{text}");
                assert!(problem.contains(needle), "{problem} lacks {needle}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

/// serde stops at the first bad key; `parse_all` names every one, type errors and checks alike.
#[test]
fn broker_config_reports_every_problem_not_the_first() {
    let text = r#"{
        "version": 3,
        "secure_path": 7,
        "approval": {"stack": ["grant:often"], "channels": []},
        "session": {"idle_timeout_minutes": "soon", "colour": 1},
        "limits": {"pending_per_uid": 0},
        "colour": "blue",
        "env_keep": ["A=B"]
    }"#;
    let errs = BrokerConfig::parse_all(&f(), text).expect_err("many problems");
    let paths: Vec<&str> = errs
        .iter()
        .map(|e| match e {
            FileError::Invalid { path, fix, .. } => {
                assert!(!fix.is_empty(), "{e}");
                path.as_str()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    // Type errors first (the checks need a typed value); each bad key once.
    for want in [
        "secure_path",
        "approval.stack[0]",
        "session.idle_timeout_minutes",
        "session.colour",
        "colour",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    assert_eq!(
        paths.len(),
        5,
        "only type errors until they are fixed: {paths:?}"
    );
    // With the types right, every check speaks at once.
    let text = r#"{"version": 3, "real_sudo": "sudo", "approval": {"channels": []},
        "limits": {"pending_per_uid": 0}, "env_keep": ["A=B"]}"#;
    let errs = BrokerConfig::parse_all(&f(), text).expect_err("many problems");
    let paths: Vec<String> = errs
        .iter()
        .map(|e| match e {
            FileError::Invalid { path, .. } => path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        paths,
        [
            "version",
            "real_sudo",
            "approval.channels",
            "limits.pending_per_uid",
            "env_keep[0]"
        ]
    );
}

#[test]
fn prompt_policy_reports_every_unknown_key() {
    let text = r#"{"require_confirmation_for_untrusted": "yes", "a": 1, "b": 2}"#;
    let errs = PromptPolicy::parse_all(Path::new("p"), text).expect_err("three problems");
    assert_eq!(errs.len(), 3, "{errs:?}");
}

#[test]
fn tls_files_are_checked_when_broker_json_loads_naming_the_key() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().expect("tempdir");
    let uid = nix::unistd::geteuid().as_raw();
    let sec = d.path().join("security");
    std::fs::create_dir(&sec).expect("mkdir");
    let put = |name: &str, mode: u32| {
        let p = d.path().join(name);
        std::fs::write(&p, "-----BEGIN CERTIFICATE-----\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    };
    let ca = put("ca.pem", 0o644);
    let cert = put("client.pem", 0o644);
    let dir = d.path().display();
    let config = |key: &str| {
        let b = sec.join(BROKER_CONFIG);
        std::fs::write(
            &b,
            format!(
                r#"{{"audit": {{"forward": [{{"type": "logsrvd", "address": "127.0.0.1:1",
                    "tls": true, "ca": "{dir}/ca.pem", "cert": "{dir}/client.pem",
                    "key": "{dir}/{key}"}}]}}}}"#
            ),
        )
        .expect("write");
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        b
    };
    // Each problem: (key file name, its mode or None for absent, the key named, the problem).
    let cases: &[(&str, Option<u32>, &str, &str, &str)] = &[
        ("k1.pem", None, ".key", "does not exist", "put the PEM file"),
        (
            "k2.pem",
            Some(0o640),
            ".key",
            "readable by group or others",
            "chmod 600",
        ),
        (
            "k3.pem",
            Some(0o604),
            ".key",
            "readable by group or others",
            "chmod 600",
        ),
        (
            "k4.pem",
            Some(0o622),
            ".key",
            "writable by group or others",
            "chmod go-w",
        ),
    ];
    for &(name, mode, at, problem, fix) in cases {
        if let Some(m) = mode {
            put(name, m);
        }
        let b = config(name);
        for got in [
            BrokerConfig::load(&b, uid).map(|_| ()),
            load(&sec, uid, &|_| None)
                .map(|_| ())
                .map_err(|e| e[0].clone()),
        ] {
            match got {
                Err(FileError::Invalid {
                    path,
                    problem: p,
                    fix: f,
                    ..
                }) => {
                    assert_eq!(path, format!("audit.forward[0]{at}"), "{name}");
                    assert!(p.contains(problem), "{name}: {p}");
                    assert!(f.contains(fix), "{name}: {f}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    // An owner-only key loads; then the CA goes missing and the CA is named.
    put("ok.pem", 0o600);
    let b = config("ok.pem");
    assert!(BrokerConfig::load(&b, uid).expect("loads").is_some());
    std::fs::remove_file(&ca).expect("rm");
    match BrokerConfig::load(&b, uid) {
        Err(FileError::Invalid { path, problem, .. }) => {
            assert_eq!(path, "audit.forward[0].ca");
            assert!(problem.contains("ca.pem does not exist"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    drop(cert);
}

#[test]
fn a_user_mode_load_refuses_a_quorum_a_system_load_accepts() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().expect("tempdir");
    let uid = nix::unistd::geteuid().as_raw();
    let b = d.path().join(BROKER_CONFIG);
    std::fs::write(&b, r#"{"approval": {"quorum": 2}}"#).expect("write");
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(
        load(d.path(), uid, &|_| None).is_ok(),
        "valid for a system broker"
    );
    let errs = load_user(d.path(), uid, &|_| None).expect_err("a user-mode quorum");
    assert_eq!(errs.len(), 1, "{errs:?}");
    let msg = errs[0].to_string();
    assert!(
        msg.contains("approval.quorum") && msg.contains("system mode"),
        "{msg}"
    );
    std::fs::write(&b, r#"{"approval": {"quorum": 1}}"#).expect("write");
    assert!(load_user(d.path(), uid, &|_| None).is_ok());
}
