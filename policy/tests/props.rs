//! Property tests: grammar round trips, no input panics, and deny always beats allow.

use std::collections::BTreeMap;
use std::path::PathBuf;

use occ_policy::grammar::{self, render};
use occ_policy::rule::{ListKind, Rule, RuleId};
use occ_policy::{
    decide, Action, Caller, Context, Decision, PolicyConfig, PreserveEnv, SudoRequest,
};
use proptest::prelude::*;

use crate::support::{policy, request};

const ACTIONS: [Action; 10] = [
    Action::Run,
    Action::Shell,
    Action::LoginShell,
    Action::List,
    Action::Validate,
    Action::ResetTimestamp,
    Action::RemoveTimestamp,
    Action::Help,
    Action::Version,
    Action::Edit,
];

fn value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_./#:@=-]{1,8}"
}

fn maybe(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(s)
}

/// Clears what sudo would reject for the action, so every model is a valid request.
fn fix_up(mut r: SudoRequest) -> SudoRequest {
    let a = r.action();
    let runs = matches!(a, Action::Run | Action::Shell | Action::LoginShell);
    if !runs {
        r.background = false;
        r.set_home = false;
        r.preserve_groups = false;
        if r.preserve_env == PreserveEnv::All {
            r.preserve_env = PreserveEnv::No;
        }
    }
    if a == Action::LoginShell && r.preserve_env == PreserveEnv::All {
        r.preserve_env = PreserveEnv::No;
    }
    match a {
        Action::Run | Action::Edit if r.command.is_empty() => r.command.push("cmd".into()),
        Action::Validate
        | Action::ResetTimestamp
        | Action::RemoveTimestamp
        | Action::Help
        | Action::Version => r.command.clear(),
        _ => {}
    }
    if matches!(
        a,
        Action::ResetTimestamp | Action::RemoveTimestamp | Action::Help | Action::Version
    ) {
        r.non_interactive = false;
        r.reset_timestamp = false;
        r.user = None;
        r.group = None;
    }
    if matches!(a, Action::ResetTimestamp | Action::RemoveTimestamp) || r.reset_timestamp {
        r.no_update = false;
    }
    if a == Action::List && r.command.is_empty() {
        r.user = None;
        r.group = None;
    }
    if a == Action::Edit {
        r.env.clear();
        r.preserve_env = PreserveEnv::No;
    }
    if a != Action::List {
        r.other_user = None;
        r.long_list = false;
    }
    if r.askpass {
        r.stdin_password = false;
    }
    r
}

fn request_model() -> impl Strategy<Value = SudoRequest> {
    let ids = (
        maybe(value()),
        maybe(value()),
        maybe(value()),
        maybe(value()),
    );
    let env = proptest::collection::vec(("[A-Za-z_][A-Za-z0-9_]{0,5}", "[ -~]{0,6}"), 0..3);
    let pe = prop_oneof![
        Just(PreserveEnv::No),
        Just(PreserveEnv::All),
        proptest::collection::vec("[A-Z_]{1,5}", 0..3).prop_map(PreserveEnv::List),
    ];
    let flags = proptest::array::uniform10(any::<bool>());
    let more = (
        maybe("[ -~]{0,5}"),
        proptest::option::of((3u32..100_000).prop_map(|n| n.to_string())),
        maybe(value()),
        maybe(value()),
        maybe("[ -~]{0,4}"),
        maybe(value()),
        maybe(value()),
    );
    let cmd = proptest::collection::vec("[ -~]{0,6}", 0..4);
    (0..ACTIONS.len(), ids, env, pe, flags, more, cmd).prop_map(
        |(
            ai,
            (user, group, chdir, chroot),
            env,
            preserve_env,
            f,
            (prompt, close_from, role, selinux_type, command_timeout, host, other_user),
            command,
        )| {
            fix_up(SudoRequest {
                action: Some(ACTIONS[ai]),
                user,
                group,
                chdir,
                env,
                preserve_env,
                set_home: f[0],
                non_interactive: f[1],
                reset_timestamp: f[2],
                stdin_password: f[3],
                askpass: f[4],
                prompt,
                bell: f[5],
                no_update: f[6],
                preserve_groups: f[7],
                background: f[8],
                close_from,
                chroot,
                role,
                selinux_type,
                command_timeout,
                host,
                other_user,
                long_list: f[9],
                command,
            })
        },
    )
}

fn noisy_word() -> impl Strategy<Value = String> {
    prop_oneof![
        "-[a-zA-Z#=]{0,4}",
        "--[a-z-]{0,12}(=[a-z,=]{0,3})?",
        "[A-Za-z=/]{1,3}=[a-z]{0,3}",
        "\\PC{0,6}",
        Just("--".to_string()),
        Just("-h".to_string()),
        Just("#65534".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn grammar_round_trips(model in request_model()) {
        let words = render(&model);
        let parsed = grammar::parse(&words);
        prop_assert_eq!(parsed.as_ref(), Ok(&model), "words: {:?}", words);
    }

    #[test]
    fn no_input_panics(words in proptest::collection::vec(noisy_word(), 0..8)) {
        if let Ok(r) = grammar::parse(&words) {
            // A parsed request renders to words that parse to the same request.
            prop_assert_eq!(grammar::parse(&render(&r)), Ok(r));
        }
        let ctx = Context::new(Caller::from_uid(0), PathBuf::from("/"), BTreeMap::new());
        let ev = occ_policy::evaluate(&words, &ctx, &Ok(PolicyConfig::default()));
        let _ = occ_policy::explain::to_json(&ev);
    }
}

// Commands that run no other code: for code runners deny rules also look inside the argv,
// which the bypass tests cover (systemctl and ip became code runners in code-runners.json
// version 2).
const CMDS: [&str; 4] = [
    "/usr/bin/ls",
    "/usr/bin/cat",
    "/usr/bin/hostname",
    "/usr/sbin/useradd",
];
const FIRST: [&str; 8] = [
    "ls",
    "cat",
    "/usr/bin/ls",
    "/usr/bin/*",
    "hostname",
    "*",
    "/usr/sbin/useradd",
    "c?t",
];
const LATER: [&str; 8] = ["a", "b", "*", "-l", "**", "\"\"", "/etc/*", "'x y'"];
const ARGS: [&str; 6] = ["a", "b", "-l", "/etc/x", "x y", ""];

fn rule_text() -> impl Strategy<Value = String> {
    (
        0..FIRST.len(),
        proptest::collection::vec(0..LATER.len(), 0..3),
    )
        .prop_map(|(f, l)| {
            let mut s = FIRST[f].to_string();
            for i in l {
                s.push(' ');
                s.push_str(LATER[i]);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn deny_always_beats_allow(
        cmd in 0..CMDS.len(),
        args in proptest::collection::vec(0..ARGS.len(), 0..3),
        allow in proptest::collection::vec(rule_text(), 0..4),
        deny in proptest::collection::vec(rule_text(), 0..3),
    ) {
        let compiles = |t: &String| Rule::parse(RuleId { list: ListKind::Allow, index: 0 }, t).is_ok();
        let allow: Vec<String> = allow.into_iter().filter(compiles).collect();
        let deny: Vec<String> = deny.into_iter().filter(compiles).collect();
        let args: Vec<&str> = args.into_iter().map(|i| ARGS[i]).collect();
        let req = request(CMDS[cmd], CMDS[cmd], &args, Some("s"));
        let p = policy(&serde_json::json!({"version": 2, "allow": allow, "deny": deny}).to_string());
        let argv_rest = &req.argv[1..];
        let matches = |rules: &[String]| rules.iter().any(|t| {
            Rule::parse(RuleId { list: ListKind::Deny, index: 0 }, t)
                .map(|r| r.matches(&req.command, argv_rest, occ_policy::file::DEFAULT_SECURE_PATH))
                .unwrap_or(false)
        });
        let d = decide(&req, &p);
        if matches(&deny) {
            prop_assert_eq!((d.decision, d.reason_code), (Decision::Deny, "policy_block"));
        } else if !allow.is_empty() && !matches(&allow) {
            prop_assert_eq!((d.decision, d.reason_code), (Decision::Deny, "not_in_allowlist"));
        } else {
            prop_assert_eq!(d.decision, Decision::ApprovalRequired, "on to the approval stack");
        }
    }
}
