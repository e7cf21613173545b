//! Builders for pure decisions: a resolved request without touching the file system.

use std::path::PathBuf;

use occ_policy::file::CommandPolicy;
use occ_policy::{Binding, PolicyConfig, Request, ResolvedCommand, SudoRequest, Target};

pub fn policy(json: &str) -> PolicyConfig {
    let commands = CommandPolicy::parse(std::path::Path::new("command-policy.json"), json)
        .unwrap_or_else(|e| panic!("{json}: {e:?}"));
    PolicyConfig {
        commands,
        ..PolicyConfig::default()
    }
}

/// A request for `path args…` as root, found on secure_path when `path`'s directory is a
/// usual bin directory; `real` is where its symlinks lead.
pub fn request(path: &str, real: &str, args: &[&str], session: Option<&str>) -> Request {
    let policy = PolicyConfig::default();
    let command = ResolvedCommand {
        path: PathBuf::from(path),
        real_path: PathBuf::from(real),
        dev: 64769,
        ino: 4242,
        via_secure_path: true,
    };
    let mut argv = vec![path.to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let runs_arbitrary_code =
        policy.code_runners.lists(command.name()) || policy.code_runners.lists(command.real_name());
    let binding = Binding {
        caller_uid: 1001,
        target_uid: 0,
        target_gid: 0,
        path: path.to_string(),
        dev: command.dev,
        ino: command.ino,
        argv: argv.clone(),
        cwd: "/".into(),
        env: vec![],
        preserved_env: vec![],
        session_id: session.map(str::to_string),
        flags: String::new(),
    };
    Request {
        sudo: SudoRequest::default(),
        target: Target {
            user: "root".into(),
            uid: 0,
            gid: 0,
            group: None,
            home: PathBuf::from("/root"),
            shell: PathBuf::from("/bin/sh"),
        },
        command,
        argv,
        cwd: PathBuf::from("/"),
        preserved_env: vec![],
        runs_arbitrary_code,
        unwrapped: Default::default(),
        flags: occ_policy::Flags {
            runs_arbitrary_code,
            ..Default::default()
        },
        requester_writable: vec![],
        session_id: session.map(str::to_string),
        untrusted: false,
        binding,
    }
}
