//! `occ policy check [--json]` validates every policy file and prints each problem;
//! `occ policy init [--force]` writes the shipped templates (0600, directories 0700, atomic),
//! never overwriting an existing file without `--force`.

use std::path::PathBuf;

use occ_policy::file::{self, templates};
use serde_json::json;

/// Arguments of `occ policy`.
#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// `occ policy` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate broker.json, command-policy.json and prompt-policy.json; print every problem.
    Check {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write the templates into $OCC_HOME/security (mode 0600).
    Init {
        /// Overwrite files that already exist.
        #[arg(long)]
        force: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `occ policy`.
pub fn run(args: PolicyArgs) -> i32 {
    match args.command {
        PolicyCommand::Check { json } => check(json),
        PolicyCommand::Init { force, json } => init(force, json),
    }
}

fn check(as_json: bool) -> i32 {
    let dir = crate::paths::security_dir();
    let reader = nix::unistd::geteuid().as_raw();
    let result = file::load_user(&dir, reader, &|k| std::env::var(k).ok());
    let files: Vec<(PathBuf, bool)> = [
        file::BROKER_CONFIG,
        file::COMMAND_POLICY,
        file::PROMPT_POLICY,
    ]
    .iter()
    .map(|n| {
        let p = dir.join(n);
        let present = p.symlink_metadata().is_ok();
        (p, present)
    })
    .collect();
    let problems = result.as_ref().err().cloned().unwrap_or_default();
    if as_json {
        let out = json!({
            "ok": problems.is_empty(),
            "dir": dir.to_string_lossy(),
            "files": files.iter().map(|(p, present)| json!({
                "file": p.to_string_lossy(),
                "present": present,
            })).collect::<Vec<_>>(),
            "problems": problems.iter().map(|e| json!({
                "file": e.file().to_string_lossy(),
                "reason_code": e.reason_code(),
                "path": parts(e).0,
                "problem": parts(e).1,
                "fix": parts(e).2,
                "message": e.to_string(),
            })).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        for (p, present) in &files {
            let state = if !present {
                "missing (built-in defaults apply unless policy files are required)"
            } else if problems.iter().any(|e| e.file() == p) {
                "PROBLEM"
            } else {
                "ok"
            };
            println!("{}: {state}", p.display());
        }
        for e in &problems {
            println!("problem: {e}");
        }
        if let Ok(cfg) = &result {
            println!(
                "ok: {} allow and {} deny rules; every run still needs approval or a live grant",
                cfg.commands.allow.len(),
                cfg.commands.deny.len()
            );
        }
    }
    i32::from(!problems.is_empty())
}

/// The JSON path, the problem and the fix of one problem (`.` for the whole file).
fn parts(e: &file::FileError) -> (String, String, String) {
    use file::FileError as E;
    match e {
        E::Invalid {
            path, problem, fix, ..
        } => (path.clone(), problem.clone(), fix.clone()),
        E::Io { detail, fix, .. } => (".".into(), format!("cannot read: {detail}"), fix.clone()),
        E::Unsafe { problem, fix, .. } => (".".into(), problem.clone(), fix.clone()),
        E::Legacy {
            why, suggestion, ..
        } => (
            ".".into(),
            format!("the original tool's regex format ({why})"),
            format!("rewrite it as version 2 glob rules, e.g. {suggestion}"),
        ),
        E::Missing { .. } => (
            ".".into(),
            "missing, and policy files are required".into(),
            "run `occ policy init` or write the file".into(),
        ),
        // FileError is non_exhaustive: a new kind still says what it is.
        other => (".".into(), other.to_string(), String::new()),
    }
}

fn init(force: bool, as_json: bool) -> i32 {
    let dir = crate::paths::security_dir();
    let mut skipped = false;
    let mut results = Vec::new();
    for (name, text) in [
        (file::BROKER_CONFIG, templates::BROKER_CONFIG),
        (file::COMMAND_POLICY, templates::COMMAND_POLICY),
        (file::PROMPT_POLICY, templates::PROMPT_POLICY),
    ] {
        let path = dir.join(name);
        if path.symlink_metadata().is_ok() && !force {
            if !as_json {
                println!("{}: exists, not overwritten (use --force)", path.display());
            }
            results.push(json!({"file": path.to_string_lossy(), "written": false}));
            skipped = true;
            continue;
        }
        // 0600 file in a 0700 directory, written to a temp file, fsynced and renamed.
        if let Err(e) = crate::paths::write_private(&path, text.as_bytes()) {
            eprintln!("occ policy init: {e}");
            return 2;
        }
        if !as_json {
            println!("{}: written (mode 0600)", path.display());
        }
        results.push(json!({"file": path.to_string_lossy(), "written": true}));
    }
    if as_json {
        println!(
            "{}",
            json!({"dir": dir.to_string_lossy(), "files": results})
        );
    }
    i32::from(skipped)
}
