//! What occ does with each sudo option (DESIGN.md "sudo options"): pass on, consume, answer
//! itself, or refuse. Pure: it looks only at the parsed request and `broker.json`.

use crate::file::{name_listed, BrokerConfig};
use crate::grammar::{Action, PreserveEnv, SudoRequest};

/// An option occ refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `option_not_supported`, `shell_denied` or `preserve_env_denied`.
    pub reason_code: &'static str,
    /// What to tell the requester (the shim prints `sudo: MESSAGE (occ: REASON_CODE)`).
    pub message: String,
}

fn unsupported(opt: &str, what: &str) -> Refusal {
    Refusal {
        reason_code: "option_not_supported",
        message: format!("{opt} ({what}) is not supported by occ"),
    }
}

/// Applies the per-option table. `caller_env_names` are the names the caller's environment
/// holds (what `-E` would preserve).
pub fn check(
    req: &SudoRequest,
    broker: &BrokerConfig,
    caller_env_names: &[String],
) -> Result<(), Refusal> {
    let refused: [(bool, &str, &str); 9] = [
        (req.background, "-b", "run in the background"),
        (req.action() == Action::Edit, "-e", "sudoedit"),
        (req.close_from.is_some(), "-C", "close file descriptors"),
        (req.command_timeout.is_some(), "-T", "command timeout"),
        (req.chroot.is_some(), "-R", "chroot"),
        (req.role.is_some(), "-r", "SELinux role"),
        (req.selinux_type.is_some(), "-t", "SELinux type"),
        (req.host.is_some(), "-h host", "remote host"),
        (
            req.other_user.is_some(),
            "-U",
            "list another user's privileges",
        ),
    ];
    if let Some((_, opt, what)) = refused.iter().find(|(on, _, _)| *on) {
        return Err(unsupported(opt, what));
    }
    if matches!(req.action(), Action::Shell | Action::LoginShell) && !broker.allow_shells {
        let opt = if req.action() == Action::Shell {
            "-s"
        } else {
            "-i"
        };
        return Err(Refusal {
            reason_code: "shell_denied",
            message: format!(
                "{opt} (run a shell) is refused: broker.json has \"allow_shells\": false"
            ),
        });
    }
    let wanted: Vec<&str> = match &req.preserve_env {
        PreserveEnv::No => Vec::new(),
        PreserveEnv::All => {
            if broker.allow_preserve_env.is_empty() {
                return Err(Refusal {
                    reason_code: "preserve_env_denied",
                    message: "-E (preserve the environment) is refused: broker.json's allow_preserve_env is empty".into(),
                });
            }
            caller_env_names.iter().map(String::as_str).collect()
        }
        PreserveEnv::List(l) => l.iter().map(String::as_str).collect(),
    };
    if let Some(bad) = wanted
        .iter()
        .find(|n| !name_listed(&broker.allow_preserve_env, n))
    {
        return Err(Refusal {
            reason_code: "preserve_env_denied",
            message: format!(
                "preserving {bad} is refused: it is not in broker.json's allow_preserve_env"
            ),
        });
    }
    Ok(())
}

/// The options to pass on to the real sudo in user mode, in a fixed order, ending before `--`
/// (the caller appends `--`, the resolved path and the arguments). `-n` is added by the
/// shim when there is no tty, not here.
pub fn pass_on(req: &SudoRequest, preserved_names: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    let mut push_val = |flag: &str, val: &Option<String>| {
        if let Some(x) = val {
            v.push(format!("{flag}{x}"));
        }
    };
    push_val("--user=", &req.user);
    push_val("--group=", &req.group);
    push_val("--chdir=", &req.chdir);
    push_val("--prompt=", &req.prompt);
    for (on, f) in [
        (req.set_home, "-H"),
        (req.non_interactive, "-n"),
        (req.reset_timestamp, "-k"),
        (req.stdin_password, "-S"),
        (req.askpass, "-A"),
        (req.bell, "-B"),
        (req.no_update, "-N"),
        (req.preserve_groups, "-P"),
    ] {
        if on {
            v.push(f.to_string());
        }
    }
    if !preserved_names.is_empty() {
        v.push(format!("--preserve-env={}", preserved_names.join(",")));
    }
    match req.action() {
        Action::Shell => v.push("-s".into()),
        Action::LoginShell => v.push("-i".into()),
        _ => {}
    }
    for (k, val) in &req.env {
        v.push(format!("{k}={val}"));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::parse;

    #[test]
    fn per_option_table() {
        let b = BrokerConfig::default();
        let env = vec!["HOME".to_string()];
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["true"], None),
            (
                &[
                    "-u", "nobody", "-g", "nogroup", "-D", "/", "-H", "A=1", "true",
                ],
                None,
            ),
            (&["-n", "-k", "true"], None),
            (&["-S", "true"], None),
            (&["-A", "true"], None),
            (&["-p", "pw:", "true"], None),
            (&["-B", "-N", "-P", "true"], None),
            (&["-b", "true"], Some("option_not_supported")),
            (&["-e", "/etc/hosts"], Some("option_not_supported")),
            (&["-C", "5", "true"], Some("option_not_supported")),
            (&["-T", "5", "true"], Some("option_not_supported")),
            (&["-R", "/", "true"], Some("option_not_supported")),
            (&["-r", "r", "true"], Some("option_not_supported")),
            (&["-t", "t", "true"], Some("option_not_supported")),
            (&["-h", "host", "-l"], Some("option_not_supported")),
            (&["-l", "-U", "root"], Some("option_not_supported")),
            (&["-s"], Some("shell_denied")),
            (&["-i", "true"], Some("shell_denied")),
            (&["-E", "true"], Some("preserve_env_denied")),
            (
                &["--preserve-env=HOME", "true"],
                Some("preserve_env_denied"),
            ),
        ];
        for (args, want) in cases {
            let r = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(
                check(&r, &b, &env).err().map(|x| x.reason_code),
                *want,
                "{args:?}"
            );
        }
    }

    #[test]
    fn broker_json_can_allow_shells_and_named_preserved_variables() {
        let b = BrokerConfig {
            allow_shells: true,
            allow_preserve_env: vec!["HOME".into(), "LC_*".into()],
            ..BrokerConfig::default()
        };
        let env = vec!["HOME".to_string(), "LC_ALL".to_string()];
        for args in [
            &["-s"][..],
            &["--preserve-env=HOME,LC_ALL", "true"],
            &["-E", "true"],
        ] {
            let r = parse(args).expect("parse");
            assert_eq!(check(&r, &b, &env), Ok(()), "{args:?}");
        }
        let r = parse(&["--preserve-env=PATH", "true"]).expect("parse");
        assert_eq!(
            check(&r, &b, &env).err().map(|x| x.reason_code),
            Some("preserve_env_denied")
        );
        let env_with_path = vec!["PATH".to_string()];
        let r = parse(&["-E", "true"]).expect("parse");
        assert!(
            check(&r, &b, &env_with_path).is_err(),
            "-E with an unlisted name"
        );
    }

    #[test]
    fn pass_on_keeps_what_the_grant_binds() {
        let r = parse(&["-nuroot", "-H", "A=1", "-D", "/tmp", "true"]).expect("parse");
        assert_eq!(
            pass_on(&r, &[]),
            ["--user=root", "--chdir=/tmp", "-H", "-n", "A=1"]
        );
    }
}
