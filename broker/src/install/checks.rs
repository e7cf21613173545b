//! The checks `occ install` prints after installing and `occ doctor` runs at any time. Each
//! yields one line: ok, warn or fail, with the fix. A missing OpenClaw gateway or CLI is a
//! warning, never a failure. Checks read and probe; they never change anything.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use occ_policy::file::{FileError, BROKER_CONFIG, COMMAND_POLICY, PROMPT_POLICY};
use occ_policy::openclaw::{self as oc, AgentPath};

use crate::install::manifest::{FileKind, Manifest};
use crate::install::{broker, pathinj, tool, unit};

mod audit;
mod sudo;
#[cfg(test)]
mod tests;
pub use audit::{audit_log, AUDIT_CHECKPOINT};
pub use sudo::{real_sudo, sudo_list, sudoers_template};

/// A check's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but something should be done.
    Warn,
    /// Broken: occ does not protect the agent's sudo, or cannot run what is approved.
    Fail,
}

/// One check's line.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Short stable name.
    pub name: &'static str,
    /// Result.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do, for warn and fail.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// The printed line: `ok    name: detail` (then `; fix: …`).
    pub fn line(&self) -> String {
        let tag = match self.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        match &self.fix {
            Some(f) => format!("{tag}  {}: {}; fix: {f}", self.name, self.detail),
            None => format!("{tag}  {}: {}", self.name, self.detail),
        }
    }
}

/// Whether any check failed.
pub fn any_fail(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// OpenClaw's exec settings, read through the `openclaw` CLI on PATH; `None` when there is
/// no CLI.
pub fn openclaw_exec() -> Option<Result<pathinj::ExecView, String>> {
    tool::which("openclaw").map(|cli| pathinj::read_exec(&cli))
}

/// The pathPrepend part of [`openclaw_exec`].
pub fn paths_of(
    view: Option<&Result<pathinj::ExecView, String>>,
) -> Option<Result<Vec<AgentPath>, String>> {
    view.map(|r| r.as_ref().map(|v| v.paths.clone()).map_err(Clone::clone))
}

/// Whether OpenClaw gives each exec command a session id: its exec sets none of its own
/// (2026.9.6 sets `OPENCLAW_SHELL`, `OPENCLAW_GATEWAY_PORT`, `OPENCLAW_CLI`,
/// `OPENCLAW_PATH_BOOTSTRAPPED` and, from channels, `OPENCLAW_CHANNEL_CONTEXT`), so occ's
/// plugin (`plugin.rs`) must be written under `home` and loaded by OpenClaw's config. A
/// failure when `session.require_session_id` is on (every agent sudo would be refused), else
/// a warning. `None` without OpenClaw.
pub fn session_id(
    view: Option<&Result<pathinj::ExecView, String>>,
    home: &Path,
    require_session_id: bool,
) -> Option<Check> {
    let v = view?.as_ref().ok()?;
    let dir = super::plugin::dir(home);
    let mut problems = oc::plugin_problems(v.plugins.as_ref(), &dir.display().to_string());
    if !super::plugin::files_intact(home) {
        problems.push(format!(
            "the plugin's files in {} are missing or changed",
            dir.display()
        ));
    }
    if problems.is_empty() {
        return Some(Check::ok(
            "session_id",
            format!(
                "occ's OpenClaw plugin {} is wired: each exec command gets its session id \
                 (OPENCLAW_TASK_SESSION_ID) and channel",
                oc::PLUGIN_ID
            ),
        ));
    }
    let mut detail = format!(
        "OpenClaw gives exec commands no session id: {}",
        problems.join("; ")
    );
    let fix = "run `occ install` again (it writes, lists and enables the plugin), then check \
               `openclaw plugins inspect occ-exec-env --runtime`";
    Some(if require_session_id {
        detail.push_str(
            "; broker.json sets session.require_session_id, so every agent sudo is refused",
        );
        Check::fail("session_id", detail, fix)
    } else {
        detail.push_str("; --session grants cannot be told apart by session");
        Check::warn("session_id", detail, fix)
    })
}

/// OpenClaw's exec mode, agent by agent, and what it means for `sudo` under occ: only
/// `full` leaves occ the one gate. Warnings only; occ never changes the mode.
pub fn exec_mode(view: Option<&Result<pathinj::ExecView, String>>) -> Option<Check> {
    let v = view?.as_ref().ok()?;
    let conflicts: Vec<String> = v.modes.iter().filter_map(oc::mode_conflict).collect();
    Some(if conflicts.is_empty() {
        Check::ok(
            "openclaw_exec_mode",
            "OpenClaw's exec mode is full for every agent: OpenClaw asks no one, occ gates sudo",
        )
    } else {
        Check::warn(
            "openclaw_exec_mode",
            conflicts.join("; "),
            "change the mode as shown (occ changes nothing here), then run `occ doctor`",
        )
    })
}

/// `sudo` resolves to this home's shim for every OpenClaw agent: `HOME/bin` is first in each
/// agent's effective pathPrepend, as OpenClaw itself resolves its config (`agents`, from
/// [`openclaw_paths`]). Never judged from the manifest.
pub fn path_order(home: &Path, agents: Option<&Result<Vec<AgentPath>, String>>) -> Check {
    let bin = home.join("bin");
    let shim = bin.join("sudo");
    if !shim.exists() {
        return Check::fail(
            "path_order",
            format!("the shim {} is missing", shim.display()),
            "run `occ install`",
        );
    }
    let canon = |d: &str| std::fs::canonicalize(d).unwrap_or_else(|_| PathBuf::from(d));
    let bin_real = canon(&bin.display().to_string());
    let list =
        match agents {
            None => return shell_path_order(&bin, &shim),
            Some(Err(e)) => return Check::fail(
                "path_order",
                format!("cannot read OpenClaw's exec PATH settings: {e}"),
                "fix OpenClaw's config (`openclaw config validate`), then run `occ doctor` again",
            ),
            Some(Ok(list)) => list,
        };
    let mut bad = Vec::new();
    let mut fixes = Vec::new();
    for a in list {
        if a.dirs.first().map(|d| canon(d)) == Some(bin_real.clone()) {
            continue;
        }
        let searched = a.dirs.join(":");
        let sudo = tool::which_in("sudo", &searched)
            .map(|p| format!("sudo is {} there", p.display()))
            .unwrap_or_else(|| "no sudo there, so the login shell's PATH decides".into());
        bad.push(if a.set {
            format!(
                "{}: {} first ({sudo})",
                a.label(),
                a.dirs.first().map_or("nothing", String::as_str)
            )
        } else {
            format!("{}: unset", a.label())
        });
        fixes.push(pathinj::fix_command(&bin, a));
    }
    if bad.is_empty() {
        let keys: Vec<&str> = list.iter().map(|a| a.key.as_str()).collect();
        return Check::ok(
            "path_order",
            format!(
                "sudo resolves to the shim {} for every OpenClaw agent: {} is first in {}",
                shim.display(),
                bin.display(),
                keys.join(", ")
            ),
        );
    }
    Check::fail(
        "path_order",
        format!(
            "{} is not first in OpenClaw's exec PATH for {}",
            bin.display(),
            bad.join("; ")
        ),
        format!("run `occ install` again, or: {}", fixes.join("; ")),
    )
}

/// Without OpenClaw's CLI (occ used outside OpenClaw, or the CLI not on PATH): `sudo`
/// resolves to the shim in this shell's PATH, the environment the agent's commands start
/// with when the admin added occ's line by hand.
fn shell_path_order(bin: &Path, shim: &Path) -> Check {
    let path = std::env::var("PATH").unwrap_or_default();
    let source = "this shell's PATH (no openclaw CLI on PATH)";
    let same = |p: &Path| std::fs::canonicalize(p).ok() == std::fs::canonicalize(shim).ok();
    match tool::which_in("sudo", &path) {
        Some(p) if same(&p) => Check::ok(
            "path_order",
            format!("sudo resolves to the shim {} in {source}", p.display()),
        ),
        Some(p) if path.split(':').any(|d| Path::new(d) == bin) => Check::fail(
            "path_order",
            format!(
                "sudo resolves to {} before the shim in {source}",
                p.display()
            ),
            format!("put {} first: {}", bin.display(), pathinj::manual_line(bin)),
        ),
        found => Check::warn(
            "path_order",
            format!(
                "{} is not in {source}, so the agent's sudo is {} (not gated)",
                bin.display(),
                found.map_or("not found".into(), |p| p.display().to_string())
            ),
            format!(
                "run `occ install` where the openclaw CLI is on PATH (it sets {}), or add \
                 to the agent's environment: {}",
                oc::PATH_KEY,
                pathinj::manual_line(bin)
            ),
        ),
    }
}

/// The broker answers on its socket.
pub fn broker_reachable(home: &Path, manifest: Option<&Manifest>) -> Check {
    match broker::probe(home) {
        broker::Probe::Up { status } => {
            let pid = status
                .as_ref()
                .and_then(|s| s.get("pid").cloned())
                .or_else(|| {
                    crate::daemon::files::read_pid(&crate::daemon::files::RunPaths::new(home).pid)
                        .map(Value::from)
                });
            Check::ok(
                "broker",
                match pid {
                    Some(p) => format!("the broker answers (pid {p})"),
                    None => "the broker answers".into(),
                },
            )
        }
        broker::Probe::Down(why) => match manifest.and_then(|m| m.broker.as_ref()) {
            Some(crate::install::manifest::BrokerStart::Systemd { unit }) => Check::fail(
                "broker",
                format!("the broker does not answer ({why})"),
                format!("systemctl --user restart {unit}; journalctl --user -u {unit}"),
            ),
            _ => Check::warn(
                "broker",
                format!("the broker does not answer ({why}); the shim starts it on demand"),
                format!("start it now: {} broker", broker::occ_bin(home).display()),
            ),
        },
    }
}

fn mode_of(p: &Path) -> Option<std::fs::Metadata> {
    std::fs::symlink_metadata(p).ok()
}

/// Ownership and modes of the home, `bin/`, the binaries, `security/`, `run/` and the policy
/// files (judged by occ-policy exactly as the broker judges them, as this user).
pub fn files(home: &Path, manifest: Option<&Manifest>) -> Vec<Check> {
    let me = nix::unistd::geteuid().as_raw();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let dirs: [(&Path, u32); 4] = [
        (home, 0o022),
        (&home.join("bin"), 0o077),
        (&home.join("security"), 0o077),
        (&home.join("run"), 0o077),
    ];
    for (d, forbidden) in dirs {
        match mode_of(d) {
            None => problems.push((
                format!("{} is missing", d.display()),
                "run `occ install`".to_string(),
            )),
            Some(m) if !m.is_dir() => problems.push((
                format!("{} is not a directory", d.display()),
                "move it away and run `occ install`".to_string(),
            )),
            Some(m) if m.uid() != me => problems.push((
                format!("{} is owned by uid {}, not {me}", d.display(), m.uid()),
                format!("chown {me} {}", d.display()),
            )),
            Some(m) if m.mode() & forbidden != 0 => problems.push((
                format!("{} has mode {:o}", d.display(), m.mode() & 0o7777),
                format!(
                    "chmod go-{} {}",
                    if forbidden == 0o022 { "w" } else { "rwx" },
                    d.display()
                ),
            )),
            Some(_) => {}
        }
    }
    for (name, _) in crate::install::BINARIES {
        let f = home.join("bin").join(name);
        match mode_of(&f) {
            None => problems.push((
                format!("{} is missing", f.display()),
                "run `occ install`".into(),
            )),
            Some(m) if !m.is_file() => problems.push((
                format!("{} is not a regular file (a symlink?)", f.display()),
                "run `occ install`, which moves it aside".into(),
            )),
            Some(m) if m.uid() != me && m.uid() != 0 => problems.push((
                format!("{} is owned by uid {}", f.display(), m.uid()),
                format!("chown {me} {}", f.display()),
            )),
            Some(m) if m.mode() & 0o022 != 0 || m.mode() & 0o100 == 0 => problems.push((
                format!("{} has mode {:o}", f.display(), m.mode() & 0o7777),
                format!("chmod 755 {}", f.display()),
            )),
            Some(_) => {
                if let Some(rec) = manifest.and_then(|m| m.file(&f)) {
                    let now = std::fs::read(&f).map(|b| occ_audit::sha256_hex(&b)).ok();
                    if rec.kind == FileKind::Binary && now.as_deref() != Some(rec.sha256.as_str()) {
                        out.push(Check::warn(
                            "files",
                            format!(
                                "{} changed since `occ install` (sha256 differs)",
                                f.display()
                            ),
                            "run `occ install` again to put back the built binaries",
                        ));
                    }
                }
            }
        }
    }
    // The policy files through the broker's own checks before reading (occ-policy): a symlink,
    // another owner or a group- or world-writable mode makes the broker refuse every request.
    // What the files say is the policy check's to judge.
    for name in [BROKER_CONFIG, COMMAND_POLICY, PROMPT_POLICY] {
        let file = home.join("security").join(name);
        if let Err(e) = occ_policy::file::read_checked(&file, me) {
            problems.push(match e {
                FileError::Unsafe { problem, fix, .. } => {
                    (format!("{} {problem}", file.display()), fix)
                }
                FileError::Io { detail, fix, .. } => {
                    (format!("{}: cannot read: {detail}", file.display()), fix)
                }
                other => (
                    other.to_string(),
                    "`occ policy check` shows the problem".into(),
                ),
            });
        }
    }
    if problems.is_empty() {
        out.insert(
            0,
            Check::ok(
                "files",
                format!(
                    "{} and its bin/, security/, run/ have safe owners and modes",
                    home.display()
                ),
            ),
        );
    }
    for (what, fix) in problems {
        out.push(Check::fail("files", what, fix));
    }
    out
}

/// `audit.seal: true` in broker.json needs a sealed log, or the broker refuses every request.
pub fn audit_seal(security: &Path) -> Check {
    let uid = nix::unistd::geteuid().as_raw();
    let Ok(cfg) = occ_policy::file::load(security, uid, &|_| None) else {
        return Check::warn(
            "audit_seal",
            "not checked: the policy files do not load",
            "see the policy check",
        );
    };
    let key = security.join("audit-seal.key");
    let sealed = key.symlink_metadata().is_ok();
    match (cfg.broker.audit.seal, sealed) {
        (true, false) => Check::fail(
            "audit_seal",
            format!(
                "broker.json sets audit.seal but {} does not exist, so the broker refuses every \
                 request",
                key.display()
            ),
            "`occ audit init --seal` (keep the key it prints away from this host), or set \
             audit.seal to false",
        ),
        (_, true) => Check::ok(
            "audit_seal",
            format!("the log is sealed ({})", key.display()),
        ),
        (false, false) => Check::ok("audit_seal", "sealing is off (audit.seal is false)"),
    }
}

/// The policy files load as the broker would load them.
pub fn policy(security: &Path) -> Check {
    let uid = nix::unistd::geteuid().as_raw();
    match occ_policy::file::load_user(security, uid, &|_| None) {
        Ok(_) => Check::ok(
            "policy",
            format!("the policy files in {} parse", security.display()),
        ),
        Err(errs) => Check::fail(
            "policy",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" | "),
            "`occ policy check` shows each problem; `occ policy init` writes templates",
        ),
    }
}

/// The signers of signed approvals: a file that does not read is a failure (no signature
/// could be checked), and so is `approval.require_signature` with nobody allowed to sign.
pub fn allowed_signers(config_dir: &Path) -> Check {
    use crate::signed::{AllowedSigners, ALLOWED_SIGNERS, NAMESPACE};
    let uid = nix::unistd::geteuid().as_raw();
    let path = config_dir.join(ALLOWED_SIGNERS);
    let required = occ_policy::file::load(config_dir, uid, &|_| None)
        .is_ok_and(|c| c.broker.approval.require_signature);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let fix_add = format!(
        "add each approver's key: `NAME namespaces=\"{NAMESPACE}\" ssh-ed25519 AAAA…` in {}",
        path.display()
    );
    match AllowedSigners::load(&path, uid) {
        Err(e) => Check::fail(
            "allowed_signers",
            e,
            "fix the line named, or remove the file",
        ),
        Ok(None) if required => Check::fail(
            "allowed_signers",
            format!(
                "approval.require_signature is true but {} does not exist: nobody can approve",
                path.display()
            ),
            fix_add,
        ),
        Ok(None) => Check::ok(
            "allowed_signers",
            "no allowed_signers: signed approvals are off",
        ),
        Ok(Some(a)) => {
            let signers = a
                .entries
                .iter()
                .filter(|e| e.signs_approvals_at(now))
                .count();
            if signers == 0 && required {
                Check::fail(
                    "allowed_signers",
                    format!(
                        "approval.require_signature is true but no key in {} may sign \
                         approvals now: nobody can approve",
                        path.display()
                    ),
                    fix_add,
                )
            } else if signers == 0 {
                Check::warn(
                    "allowed_signers",
                    format!(
                        "no key in {} may sign approvals (none has namespaces=\"{NAMESPACE}\" \
                         and is valid now)",
                        path.display()
                    ),
                    fix_add,
                )
            } else {
                Check::ok(
                    "allowed_signers",
                    format!("{signers} key(s) in {} may sign approvals", path.display()),
                )
            }
        }
    }
}

/// A plaintext token from the original tool.
pub fn legacy_token(home: &Path) -> Check {
    let env_file = home.join("env");
    let text = std::fs::read_to_string(&env_file).unwrap_or_default();
    let in_file = text.lines().any(|l| {
        let l = l.trim();
        l.strip_prefix("export ")
            .unwrap_or(l)
            .starts_with("OPENCLAW_APPROVAL_TOKEN=")
    });
    let loose = mode_of(&env_file).is_some_and(|m| m.mode() & 0o077 != 0);
    match crate::legacy::find(home) {
        _ if in_file && loose => Check::fail(
            "legacy_token",
            format!(
                "{} holds a plaintext OPENCLAW_APPROVAL_TOKEN and others can read it",
                env_file.display()
            ),
            format!(
                "run `occ token set`, then delete the OPENCLAW_APPROVAL_TOKEN line from {}",
                env_file.display()
            ),
        ),
        Some((crate::legacy::Source::Environment, _)) => Check::warn(
            "legacy_token",
            "OPENCLAW_APPROVAL_TOKEN is set in the environment (plaintext)",
            "run `occ token set`, then unset OPENCLAW_APPROVAL_TOKEN",
        ),
        Some((crate::legacy::Source::EnvFile, _)) => Check::warn(
            "legacy_token",
            format!(
                "{} holds a plaintext OPENCLAW_APPROVAL_TOKEN",
                env_file.display()
            ),
            format!(
                "run `occ token set`, then delete the line from {}",
                env_file.display()
            ),
        ),
        None => Check::ok("legacy_token", "no plaintext approval token"),
    }
}

/// The shim is statically linked (no ELF interpreter), so the agent's environment cannot
/// inject a library into it.
pub fn shim_static(home: &Path) -> Check {
    let shim = home.join("bin").join("sudo");
    match std::fs::read(&shim) {
        Ok(bytes) => match elf_has_interp(&bytes) {
            Some(false) => Check::ok(
                "shim_static",
                format!("{} is statically linked", shim.display()),
            ),
            Some(true) => Check::warn(
                "shim_static",
                format!(
                    "{} is dynamically linked (LD_PRELOAD from the agent's environment applies)",
                    shim.display()
                ),
                "reinstall with ./install/install.sh, which builds the static shim",
            ),
            None => Check::warn(
                "shim_static",
                format!("{} is not a 64-bit ELF file", shim.display()),
                "run `occ install`",
            ),
        },
        Err(e) => Check::fail(
            "shim_static",
            format!("{}: {e}", shim.display()),
            "run `occ install`",
        ),
    }
}

/// Whether a 64-bit little-endian ELF image has a PT_INTERP program header.
pub fn elf_has_interp(b: &[u8]) -> Option<bool> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(u64::from_le_bytes)
    };
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let o = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let ty = b
            .get(o..o + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(u32::from_le_bytes)?;
        if ty == 3 {
            return Some(true);
        }
    }
    Some(false)
}

/// Whether OpenClaw is here at all (CLI on PATH, gateway user unit): warnings only.
pub fn openclaw(sc: Option<&Path>) -> Check {
    let cli = tool::which("openclaw");
    let gw = sc.is_some_and(pathinj::gateway_loaded);
    match (cli, gw) {
        (Some(c), true) => Check::ok("openclaw", format!("OpenClaw CLI {} and the {} unit found", c.display(), unit::GATEWAY_UNIT)),
        (Some(c), false) => Check::ok("openclaw", format!("OpenClaw CLI {} found (no gateway user unit)", c.display())),
        (None, true) => Check::warn(
            "openclaw",
            format!("no openclaw CLI on PATH (the {} unit exists)", unit::GATEWAY_UNIT),
            "put the openclaw CLI on PATH and re-run `occ install` so tools.exec.pathPrepend is set",
        ),
        (None, false) => Check::warn(
            "openclaw",
            "no OpenClaw CLI on PATH and no openclaw-gateway user unit",
            "install OpenClaw, then re-run `occ install`; until then set the agent's PATH by hand",
        ),
    }
}
