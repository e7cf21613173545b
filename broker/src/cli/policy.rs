//! `occ policy check [--json]` validates every policy file and prints each problem;
//! `occ policy init [--force]` writes the shipped templates (0600, directories 0700, atomic),
//! never overwriting an existing file without `--force`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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
    },
}

/// Runs `occ policy`.
pub fn run(args: PolicyArgs) -> i32 {
    match args.command {
        PolicyCommand::Check { json } => check(json),
        PolicyCommand::Init { force } => init(force),
    }
}

fn check(as_json: bool) -> i32 {
    let dir = crate::paths::security_dir();
    let reader = nix::unistd::geteuid().as_raw();
    let result = file::load(&dir, reader, &|k| std::env::var(k).ok());
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

/// Writes `data` to `path` atomically: a 0600 temp file in the same directory, fsync, rename,
/// then fsync of the directory.
fn write_atomic(path: &Path, data: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("policy");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(data.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn init(force: bool) -> i32 {
    let dir = crate::paths::security_dir();
    if let Err(e) = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
    {
        eprintln!("occ policy init: cannot create {}: {e}", dir.display());
        return 2;
    }
    let mut skipped = false;
    for (name, text) in [
        (file::BROKER_CONFIG, templates::BROKER_CONFIG),
        (file::COMMAND_POLICY, templates::COMMAND_POLICY),
        (file::PROMPT_POLICY, templates::PROMPT_POLICY),
    ] {
        let path = dir.join(name);
        if path.symlink_metadata().is_ok() && !force {
            println!("{}: exists, not overwritten (use --force)", path.display());
            skipped = true;
            continue;
        }
        if let Err(e) = write_atomic(&path, text) {
            eprintln!("occ policy init: cannot write {}: {e}", path.display());
            return 2;
        }
        println!("{}: written (mode 0600)", path.display());
    }
    i32::from(skipped)
}
