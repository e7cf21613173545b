//! The agent's part of a system-mode install: its `~/.openclaw/bin/sudo` shim and its PATH,
//! made by the user-mode steps in a child `occ agent-home` that runs as the agent's uid and
//! gid. Root never writes in the agent's home: a link the agent planted there would turn a
//! root write into a write anywhere. Root only keeps the child's record, and hands it back to
//! another such child to undo it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::unistd::User;
use serde::{Deserialize, Serialize};

use crate::install::manifest::{FileKind, Manifest};
use crate::install::setup::{inject_path, Ctx};
use crate::install::{remove, tool};

/// What an `occ agent-home` child reports on stdout (one JSON object).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentOutput {
    /// One line per change made (`mkdir …`, `copy …`, `removed …`).
    pub changes: Vec<String>,
    /// Things the admin should know.
    pub warnings: Vec<String>,
    /// What the admin still has to do.
    pub next: Vec<String>,
    /// What was made (install only).
    pub manifest: Option<Manifest>,
}

/// The largest child report root reads (the agent controls the child's output).
const OUTPUT_LIMIT: usize = 1 << 20;

/// Child side, as the agent: makes `$OCC_HOME` and `bin/`, copies `shim` to `bin/sudo` and
/// puts `bin` first in the agent's PATH, adding to the `previous` record of an earlier run.
pub fn install(shim: &Path, previous: Option<Manifest>) -> Result<AgentOutput, String> {
    let home = crate::paths::occ_home();
    if !home.is_absolute() {
        return Err(format!("{} is not an absolute path", home.display()));
    }
    let user_manifest = crate::install::manifest_path();
    if user_manifest.exists() {
        return Err(format!(
            "occ is installed in user mode in {} ({} exists); run `occ uninstall` as this user \
             first, then install system mode again",
            home.display(),
            user_manifest.display()
        ));
    }
    let bytes = std::fs::read(shim).map_err(|e| format!("cannot read {}: {e}", shim.display()))?;
    let bin = home.join("bin");
    let mut cx = Ctx::new(false, previous.unwrap_or_else(|| Manifest::new(&home)));
    cx.mkdir(&home)?;
    cx.mkdir(&bin)?;
    cx.tighten(&home, 0o022)?;
    cx.tighten(&bin, 0o077)?;
    cx.put(&bin.join("sudo"), &bytes, 0o755, FileKind::Binary)?;
    inject_path(&mut cx, &home, tool::systemd_user().as_deref())?;
    let changes = cx
        .report
        .changes
        .iter()
        .map(|c| {
            if c.detail.is_empty() {
                format!("{:<7} {}", c.action, c.target)
            } else {
                format!("{:<7} {} ({})", c.action, c.target, c.detail)
            }
        })
        .collect();
    Ok(AgentOutput {
        changes,
        warnings: cx.report.warnings,
        next: cx.report.next,
        manifest: Some(cx.manifest),
    })
}

/// Child side, as the agent: undoes what `m` records.
pub fn remove(m: &Manifest) -> AgentOutput {
    let mut r = remove::Report::default();
    // The agent's occ-scan schedule, when it runs the system occ-scan or scans this home.
    let home = crate::paths::occ_home();
    remove::remove_schedules(
        occ_scan::compliance::schedule::Only {
            homes: vec![home.clone()],
            exes: vec![
                std::path::Path::new(crate::install::system::BIN_DIR).join("occ-scan"),
                home.join("bin/occ-scan"),
            ],
        },
        &mut r,
    );
    let reload = remove::revert(m, &mut r);
    if reload {
        if let Some(sc) = tool::systemd_user() {
            match crate::install::broker::systemctl(&sc, &["daemon-reload"]) {
                Ok(()) => r.reverted.push("systemctl --user daemon-reload".into()),
                Err(e) => r.warnings.push(e),
            }
        }
    }
    remove::remove_dirs(m, &mut r);
    let mut changes: Vec<String> = r.reverted.iter().map(|s| format!("reverted {s}")).collect();
    changes.extend(
        r.removed
            .iter()
            .map(|p| format!("removed  {}", p.display())),
    );
    changes.extend(
        r.kept
            .iter()
            .map(|(p, why)| format!("kept     {} ({why})", p.display())),
    );
    AgentOutput {
        changes,
        warnings: r.warnings,
        next: Vec::new(),
        manifest: None,
    }
}

/// The agent's `~/.openclaw`.
pub fn occ_home_of(user: &User) -> PathBuf {
    user.dir.join(".openclaw")
}

/// Root side: runs `occ agent-home ARGS` as `user`, with a fresh environment (HOME, USER,
/// LOGNAME, OCC_HOME, a PATH of the secure path and the user's own bin directories, and its
/// XDG_RUNTIME_DIR when its user manager runs) and `stdin` on its standard input. std's
/// `Command::uid` drops root's supplementary groups in the child before the exec.
pub fn run_as(
    occ: &Path,
    user: &User,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<AgentOutput, String> {
    let home = &user.dir;
    let path = format!(
        "{}:{}:{}",
        home.join(".local/bin").display(),
        home.join(".npm-global/bin").display(),
        occ_policy::file::DEFAULT_SECURE_PATH
    );
    let mut cmd = Command::new(occ);
    cmd.arg("agent-home")
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("OCC_HOME", occ_home_of(user))
        .env("OCC_MODE", "user")
        .env("PATH", path)
        .env("LANG", "C.UTF-8")
        .current_dir(if home.is_dir() {
            home.as_path()
        } else {
            Path::new("/")
        });
    let runtime = PathBuf::from(format!("/run/user/{}", user.uid));
    if runtime.is_dir() {
        cmd.env("XDG_RUNTIME_DIR", &runtime);
    }
    std::os::unix::process::CommandExt::uid(&mut cmd, user.uid.as_raw());
    std::os::unix::process::CommandExt::gid(&mut cmd, user.gid.as_raw());
    let ran = tool::run_cmd_input(
        &mut cmd,
        stdin.map(<[u8]>::to_vec),
        Duration::from_secs(180),
    )
    .map_err(|e| {
        format!(
            "cannot run {} agent-home as {}: {e}",
            occ.display(),
            user.name
        )
    })?;
    if ran.stdout.len() > OUTPUT_LIMIT {
        return Err(format!(
            "`occ agent-home` as {} printed more than {OUTPUT_LIMIT} bytes",
            user.name
        ));
    }
    let parsed: Result<AgentOutput, _> = serde_json::from_str(ran.stdout.trim());
    match parsed {
        Ok(out) if ran.ok() => Ok(out),
        _ => Err(format!(
            "`occ agent-home {}` as {} failed ({})",
            args.join(" "),
            user.name,
            crate::escape::escape_text(&ran.why())
        )),
    }
}
