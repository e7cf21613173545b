//! `occ install`: copy the binaries, write missing policy templates, start the broker, put the
//! shim first in the agent's PATH, and record each change in the manifest. With `dry_run` it
//! describes every change and makes none. It never overwrites a file it did not write without
//! moving it aside first and saying so.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use occ_policy::openclaw as oc;
use serde::Serialize;

use crate::install::checks::{self, Check, Status};
use crate::install::manifest::{
    Backup, BrokerStart, FileKind, Manifest, ModeChange, PathInjection,
};
use crate::install::{broker, pathinj, tool, unit};

/// What to install from.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory holding `occ` and `occ-scan` (and `occ-shim` unless `shim` is given).
    pub from: PathBuf,
    /// The shim binary, when it is not `FROM/occ-shim`.
    pub shim: Option<PathBuf>,
    /// Describe, change nothing.
    pub dry_run: bool,
}

/// One change (made, or that would be made).
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// `mkdir`, `chmod`, `copy`, `backup`, `write`, `run`, `start`, `stop`, `config`.
    pub action: &'static str,
    /// The file, directory or command.
    pub target: String,
    /// More about it.
    pub detail: String,
}

/// What `occ install` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Changes, in order.
    pub changes: Vec<Change>,
    /// Things the admin should know (a file moved aside, a step that failed).
    pub warnings: Vec<String>,
    /// What the admin still has to do.
    pub next: Vec<String>,
    /// The checks after installing (empty on a dry run).
    pub checks: Vec<Check>,
    /// "What next", written from the checks' outcome (empty on a dry run).
    pub what_next: Vec<String>,
}

/// One install run: what it changed so far and the manifest that records it. System mode
/// (`crate::install::system`) drives the same steps.
pub(crate) struct Ctx {
    pub(crate) dry: bool,
    /// Directories a dry run would have created, so they are listed once.
    planned: Vec<PathBuf>,
    pub(crate) report: Report,
    pub(crate) manifest: Manifest,
}

impl Ctx {
    /// A run that adds to `manifest`.
    pub(crate) fn new(dry: bool, manifest: Manifest) -> Ctx {
        Ctx {
            dry,
            planned: Vec::new(),
            report: Report {
                dry_run: dry,
                ..Report::default()
            },
            manifest,
        }
    }

    pub(crate) fn change(
        &mut self,
        action: &'static str,
        target: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.report.changes.push(Change {
            action,
            target: target.into(),
            detail: detail.into(),
        });
    }

    /// Creates `dir` (0700) and any missing parent, recording each one created.
    pub(crate) fn mkdir(&mut self, dir: &Path) -> Result<(), String> {
        self.mkdir_mode(dir, 0o700)
    }

    /// Creates `dir` and any missing parent with `mode`, recording each one created.
    pub(crate) fn mkdir_mode(&mut self, dir: &Path, mode: u32) -> Result<(), String> {
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if self.planned.iter().any(|p| p == d) {
                break;
            }
            match std::fs::symlink_metadata(d) {
                Ok(m) if m.is_dir() => break,
                Ok(_) => {
                    return Err(format!(
                    "{} exists and is not a directory; move it away and run `occ install` again",
                    d.display()
                ))
                }
                Err(_) => missing.push(d.to_path_buf()),
            }
            cur = d.parent();
        }
        for d in missing.into_iter().rev() {
            if !self.dry {
                std::fs::DirBuilder::new()
                    .mode(mode)
                    .create(&d)
                    .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
                // The umask may have taken bits away.
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| format!("cannot chmod {}: {e}", d.display()))?;
                self.manifest.add_dir(&d);
            }
            self.planned.push(d.clone());
            self.change("mkdir", d.display().to_string(), format!("mode {mode:04o}"));
        }
        Ok(())
    }

    /// Takes away the `forbidden` bits of an existing directory, recording its old mode.
    pub(crate) fn tighten(&mut self, dir: &Path, forbidden: u32) -> Result<(), String> {
        let Ok(m) = std::fs::symlink_metadata(dir) else {
            return Ok(());
        };
        let mode = m.mode() & 0o7777;
        if mode & forbidden == 0 {
            return Ok(());
        }
        let new = mode & !forbidden;
        if !self.dry {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(new))
                .map_err(|e| format!("cannot chmod {}: {e}", dir.display()))?;
            if !self.manifest.mode_changes.iter().any(|c| c.path == dir) {
                self.manifest.mode_changes.push(ModeChange {
                    path: dir.to_path_buf(),
                    before: mode,
                });
            }
        }
        self.change(
            "chmod",
            dir.display().to_string(),
            format!("{mode:o} -> {new:o}"),
        );
        Ok(())
    }

    /// Moves a file occ did not write out of the way, recording the backup.
    pub(crate) fn backup(&mut self, file: &Path) -> Result<PathBuf, String> {
        let mut b = PathBuf::from(format!("{}.pre-occ", file.display()));
        let mut n = 1;
        while std::fs::symlink_metadata(&b).is_ok() {
            b = PathBuf::from(format!("{}.pre-occ.{n}", file.display()));
            n += 1;
        }
        if !self.dry {
            std::fs::rename(file, &b)
                .map_err(|e| format!("cannot move {} to {}: {e}", file.display(), b.display()))?;
            self.manifest.backups.push(Backup {
                original: file.to_path_buf(),
                backup: b.clone(),
            });
        }
        self.change(
            "backup",
            file.display().to_string(),
            format!("moved to {}", b.display()),
        );
        self.report.warnings.push(format!(
            "{} was not written by occ; it is kept as {} (`occ uninstall` puts it back)",
            file.display(),
            b.display()
        ));
        Ok(b)
    }

    /// Writes `bytes` to `file` with `mode` unless it already holds them. A file occ did not
    /// write (or that changed since) is moved aside first. Returns whether it wrote.
    pub(crate) fn put(
        &mut self,
        file: &Path,
        bytes: &[u8],
        mode: u32,
        kind: FileKind,
    ) -> Result<bool, String> {
        let sha = occ_audit::sha256_hex(bytes);
        let existing = std::fs::symlink_metadata(file).ok();
        if let Some(m) = &existing {
            let same = m.is_file() && std::fs::read(file).map(|b| b == bytes).unwrap_or(false);
            if same {
                if !self.dry {
                    if m.mode() & 0o7777 != mode {
                        std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode))
                            .map_err(|e| format!("cannot chmod {}: {e}", file.display()))?;
                    }
                    self.manifest.add_file(file, kind, &sha);
                }
                return Ok(false);
            }
            let ours = m.is_file()
                && self.manifest.file(file).is_some_and(|rec| {
                    std::fs::read(file)
                        .map(|b| occ_audit::sha256_hex(&b) == rec.sha256)
                        .unwrap_or(false)
                });
            if !ours {
                self.backup(file)?;
            }
        }
        if !self.dry {
            crate::paths::write_private(file, bytes)?;
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("cannot chmod {}: {e}", file.display()))?;
            self.manifest.add_file(file, kind, &sha);
        }
        let what = if existing.is_some() {
            "replaced"
        } else {
            "new"
        };
        self.change(
            "copy",
            file.display().to_string(),
            format!(
                "{what}, mode {mode:o}, sha256 {}…",
                sha.get(..12).unwrap_or(&sha)
            ),
        );
        Ok(true)
    }

    pub(crate) fn save(&mut self, file: &Path) -> Result<(), String> {
        if self.dry {
            return Ok(());
        }
        self.manifest.installed_at = occ_audit::now_rfc3339();
        self.manifest.occ_version = env!("CARGO_PKG_VERSION").to_string();
        self.manifest.save(file)
    }
}

/// Runs the install. `Err` is a runtime error that stopped it (exit 2); failed checks are in
/// the report.
pub fn install(opts: &Options) -> Result<Report, String> {
    let home = crate::paths::occ_home();
    if !home.is_absolute() {
        return Err(format!(
            "OCC_HOME {} is not an absolute path; set OCC_HOME or HOME",
            home.display()
        ));
    }
    let bin = home.join("bin");
    let security = home.join("security");
    let run = home.join("run");
    let manifest_file = crate::install::manifest_path();

    // Read every source first: a missing binary stops the install before anything changes.
    let mut sources = Vec::new();
    // Re-running the installed `occ install` takes the shim from its installed name.
    let from_installed = std::fs::canonicalize(&opts.from).ok() == std::fs::canonicalize(&bin).ok();
    for (name, built) in crate::install::BINARIES {
        let src = match (&opts.shim, name) {
            (Some(s), "sudo") => s.clone(),
            _ if from_installed => opts.from.join(name),
            _ => opts.from.join(built),
        };
        let bytes = std::fs::read(&src).map_err(|e| {
            format!(
                "cannot read {}: {e}; build it first (cargo build --release --workspace) or pass --from DIR",
                src.display()
            )
        })?;
        sources.push((name, src, bytes));
    }

    let manifest = Manifest::load(&manifest_file)?.unwrap_or_else(|| Manifest::new(&home));
    let had_manifest = manifest_file.exists();
    let mut cx = Ctx::new(opts.dry_run, manifest);

    for d in [&home, &bin, &security, &run] {
        cx.mkdir(d)?;
    }
    cx.tighten(&home, 0o022)?;
    for d in [&bin, &security, &run] {
        cx.tighten(d, 0o077)?;
    }

    let mut replaced = false;
    for (name, src, bytes) in &sources {
        let dst = bin.join(name);
        let existed = dst.exists();
        let wrote = cx.put(&dst, bytes, 0o755, FileKind::Binary)?;
        replaced |= wrote && existed;
        if wrote {
            if let Some(c) = cx.report.changes.last_mut() {
                c.detail = format!("{}, from {}", c.detail, src.display());
            }
        }
    }

    // Manual pages and completions, from the occ-scan just installed (a dry run: its source).
    let occ_scan = sources
        .iter()
        .find(|s| s.0 == "occ-scan")
        .map(|s| {
            if cx.dry {
                s.1.clone()
            } else {
                bin.join("occ-scan")
            }
        })
        .unwrap_or_else(|| bin.join("occ-scan"));
    let notes = crate::install::docs::install(
        &mut cx,
        &crate::install::docs::Targets::user(&home),
        &occ_scan,
    );
    cx.report.next.extend(notes);

    use occ_policy::file::{templates, BROKER_CONFIG, COMMAND_POLICY, PROMPT_POLICY};
    for (name, text) in [
        (COMMAND_POLICY, templates::COMMAND_POLICY),
        (PROMPT_POLICY, templates::PROMPT_POLICY),
        (BROKER_CONFIG, templates::BROKER_CONFIG),
    ] {
        let f = security.join(name);
        if std::fs::symlink_metadata(&f).is_ok() {
            continue; // never overwrite a policy file
        }
        if !cx.dry {
            crate::paths::write_private(&f, text.as_bytes())?;
            cx.manifest.add_file(
                &f,
                FileKind::Policy,
                &occ_audit::sha256_hex(text.as_bytes()),
            );
        }
        cx.change(
            "write",
            f.display().to_string(),
            "policy template, mode 600",
        );
    }
    if !cx.dry {
        let rp = crate::daemon::files::RunPaths::new(&home);
        for p in [
            rp.socket,
            rp.pid,
            rp.lock,
            rp.log,
            security.join("root-session-state.json"),
        ] {
            cx.manifest.add_runtime(&p);
        }
    }
    cx.save(&manifest_file)?;

    let sc = tool::systemd_user();
    // Save what was done even when a step fails, so `occ uninstall` can still undo it.
    let started = start_broker(&mut cx, &home, sc.as_deref(), replaced);
    cx.save(&manifest_file)?;
    started?;
    let injected = inject_path(&mut cx, &home, sc.as_deref());
    cx.save(&manifest_file)?;
    injected?;
    if !had_manifest {
        cx.change(
            "write",
            manifest_file.display().to_string(),
            "install manifest, mode 600",
        );
    }
    if !cx.dry {
        let loaded = occ_policy::file::load(&security, nix::unistd::geteuid().as_raw(), &|_| None);
        let require_session_id = loaded
            .as_ref()
            .is_ok_and(|c| c.broker.session.require_session_id);
        let real = loaded
            .map(|c| c.broker.real_sudo)
            .unwrap_or_else(|_| PathBuf::from("/usr/bin/sudo"));
        let real_check = checks::real_sudo(&real);
        let real_ok = real_check.status != Status::Fail;
        let view = checks::openclaw_exec();
        cx.report.checks = vec![
            checks::path_order(&home, checks::paths_of(view.as_ref()).as_ref()),
            checks::broker_reachable(&home, Some(&cx.manifest)),
            checks::policy(&security),
            real_check,
        ];
        if real_ok {
            cx.report.checks.push(checks::sudo_list(&real));
        }
        cx.report.checks.extend(checks::exec_mode(view.as_ref()));
        cx.report
            .checks
            .extend(checks::session_id(view.as_ref(), &home, require_session_id));
        cx.report.what_next = what_next(&cx.report.checks, &home);
    }
    Ok(cx.report)
}

/// "What next" after a user-mode install, true to the checks: the agent's sudo is said to ask
/// for approval only when `path_order` passed, and approved runs are said to work only when
/// the real sudo runs something without a password.
pub fn what_next(list: &[Check], home: &Path) -> Vec<String> {
    let status = |name: &str| list.iter().find(|c| c.name == name).map(|c| c.status);
    let occ = home.join("bin/occ");
    let mut v = Vec::new();
    if status("path_order") == Some(Status::Ok) {
        v.push(format!(
            "The agent's sudo now asks for approval. When it prints \"occ approve ID\", approve \
             it with `{0} approvals` and `{0} approve ID`.",
            occ.display()
        ));
    } else {
        v.push(format!(
            "The agent's sudo is NOT gated yet: fix path_order above, then check with `{} \
             doctor`. Until then the agent's `sudo` is the real one.",
            occ.display()
        ));
    }
    let real_sudo = list.iter().find(|c| c.name == "real_sudo");
    match status("sudo_n_l") {
        // The real sudo itself is unusable: say that, not what its rules would allow.
        _ if real_sudo.is_some_and(|c| c.status == Status::Fail) => {
            let c = real_sudo.expect("checked above");
            v.push(format!(
                "No approved command can run yet: the real sudo is not usable ({}){}",
                c.detail,
                c.fix
                    .as_deref()
                    .map(|f| format!("; fix: {f}"))
                    .unwrap_or_default()
            ));
        }
        Some(Status::Ok) => v.push(
            "Approved commands run through the real sudo with -n: only those its sudoers \
             rules allow without a password (`sudo -n -l` lists them); any other is refused \
             with real_sudo_needs_password and its approval kept."
                .into(),
        ),
        _ => {
            let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| nix::unistd::geteuid().to_string());
            v.push(format!(
                "No approved command can run yet: {user}'s real sudo asks for a password. As \
                 root, add a NOPASSWD rule for each command you will approve, e.g."
            ));
            for l in checks::sudoers_template(&user) {
                v.push(format!("    {l}"));
            }
            v.push(
                "  Each such rule also lets the agent run that command with the real sudo \
                 directly, bypassing occ. System mode (install.sh --system) needs none."
                    .into(),
            );
        }
    }
    v.push(format!(
        "Check the setup at any time: `{} doctor`; run a host scan: `{} --help`.",
        occ.display(),
        home.join("bin/occ-scan").display()
    ));
    v.push(format!(
        "The audit log is {}; verify it with `{} audit verify`.",
        home.join("security/privileged-audit.jsonl").display(),
        occ.display()
    ));
    v.push(format!(
        "Remove everything occ installed (keeps the audit log): `{} uninstall`.",
        occ.display()
    ));
    v
}

fn start_broker(
    cx: &mut Ctx,
    home: &Path,
    sc: Option<&Path>,
    replaced: bool,
) -> Result<(), String> {
    let occ = broker::occ_bin(home);
    let running = broker::running_pid(home, &occ);
    if let Some(sc) = sc {
        let unit_file = unit::user_unit_dir().join(unit::BROKER_UNIT);
        let text = unit::broker_unit(home, &occ)?;
        if let Some(dir) = unit_file.parent() {
            cx.mkdir(dir)?;
        }
        let unit_changed = cx.put(&unit_file, text.as_bytes(), 0o644, FileKind::Unit)?;
        let was_systemd = matches!(cx.manifest.broker, Some(BrokerStart::Systemd { .. }));
        let sc_s = sc.display().to_string();
        if was_systemd && running.is_some() && !unit_changed && !replaced {
            return Ok(()); // already running from the same unit and binaries
        }
        if cx.dry {
            cx.change("run", format!("{sc_s} --user daemon-reload"), "");
            cx.change(
                "run",
                format!("{sc_s} --user enable --now {}", unit::BROKER_UNIT),
                "start the broker",
            );
            return Ok(());
        }
        if unit_changed {
            broker::systemctl(sc, &["daemon-reload"])?;
            cx.change("run", format!("{sc_s} --user daemon-reload"), "");
        }
        if running.is_some() && !was_systemd {
            // A broker the shim started on demand holds the lock; hand over to the unit.
            if let Some(pid) = broker::stop(home, &occ) {
                cx.change(
                    "stop",
                    format!("pid {pid}"),
                    "broker started outside systemd",
                );
            }
        }
        cx.manifest.broker = Some(BrokerStart::Systemd {
            unit: unit::BROKER_UNIT.into(),
        });
        broker::systemctl(sc, &["enable", "--now", unit::BROKER_UNIT])?;
        cx.change(
            "run",
            format!("{sc_s} --user enable --now {}", unit::BROKER_UNIT),
            "",
        );
        if (replaced || unit_changed) && was_systemd {
            broker::systemctl(sc, &["restart", unit::BROKER_UNIT])?;
            cx.change(
                "run",
                format!("{sc_s} --user restart {}", unit::BROKER_UNIT),
                "new binaries",
            );
        }
        if let Err(e) = broker::wait_up(home, std::time::Duration::from_secs(5)) {
            cx.report.warnings.push(e);
        }
        return Ok(());
    }
    if cx.dry {
        if let (Some(pid), true) = (running, replaced) {
            cx.change("stop", format!("pid {pid}"), "restart on the new binaries");
        }
        if running.is_none() || replaced {
            cx.change(
                "start",
                format!("{} broker", occ.display()),
                "no systemd user manager",
            );
        }
        return Ok(());
    }
    if cx.manifest.broker.is_none() {
        cx.manifest.broker = Some(BrokerStart::Spawned);
    }
    match running {
        Some(_) if !replaced => return Ok(()),
        Some(_) => {
            if let Some(pid) = broker::stop(home, &occ) {
                cx.change("stop", format!("pid {pid}"), "restart on the new binaries");
            }
        }
        None => {}
    }
    match broker::spawn(home, &occ) {
        Ok(()) => {
            let pid =
                crate::daemon::files::read_pid(&crate::daemon::files::RunPaths::new(home).pid);
            cx.change(
                "start",
                format!("{} broker", occ.display()),
                pid.map(|p| format!("pid {p}; no systemd user manager"))
                    .unwrap_or_default(),
            );
        }
        Err(e) => cx.report.warnings.push(e),
    }
    Ok(())
}

/// Puts `HOME/bin` first in every OpenClaw agent's pathPrepend (the global key, and each
/// agent's own list, keeping their entries after it), read and written through the
/// `openclaw` CLI, then installs occ's OpenClaw plugin (`plugin.rs`: each exec command's
/// session id); records each key in `cx`. Without the CLI it changes nothing and says what
/// to do.
pub(crate) fn inject_path(cx: &mut Ctx, home: &Path, sc: Option<&Path>) -> Result<(), String> {
    let bin = home.join("bin");
    let b = bin.display().to_string();
    let Some(cli) = tool::which("openclaw") else {
        let line = pathinj::manual_line(&bin);
        let unit_note = if sc.is_some_and(pathinj::gateway_loaded) {
            format!(" (the {} unit exists)", unit::GATEWAY_UNIT)
        } else {
            String::new()
        };
        cx.report.next.push(format!(
            "no `openclaw` CLI on PATH{unit_note}: put it on PATH and run `occ install` again, \
             so occ puts {b} first in {} and in every agent's own list (the gateway's own \
             environment does not hold: OpenClaw puts the login shell's PATH before it). \
             Without OpenClaw, add this line to the environment the agent's commands start \
             with: {line}",
            oc::PATH_KEY
        ));
        if !cx.dry
            && !cx
                .manifest
                .path
                .iter()
                .any(|p| matches!(p, PathInjection::Manual { .. }))
        {
            cx.manifest.path.push(PathInjection::Manual { line });
        }
        return Ok(());
    };
    for a in pathinj::agent_paths(&cli)? {
        if let Some(id) = a.agent.as_deref().filter(|id| !oc::plain_id(id)) {
            cx.report.warnings.push(format!(
                "OpenClaw agent {id:?} sets its own {} but its id cannot be written as a \
                 config path; put {b} first in its list by hand",
                oc::PATH_KEY
            ));
            continue;
        }
        let current = a.set.then(|| {
            serde_json::Value::Array(
                a.dirs
                    .iter()
                    .cloned()
                    .map(serde_json::Value::String)
                    .collect(),
            )
        });
        let value = oc::with_first(&b, current.as_ref());
        if current.as_ref() != Some(&value) {
            if !cx.dry {
                pathinj::openclaw_set(&cli, &a.key, &value)?;
            }
            cx.change(
                "config",
                format!("openclaw config set {} '{value}'", a.key),
                match &a.agent {
                    Some(id) => format!("agent {id} sets its own list"),
                    None => String::new(),
                },
            );
        }
        record_openclaw_list(cx, &a.key, current, value);
    }
    super::plugin::install(cx, home, &cli)
}

/// Records that occ set the OpenClaw list `key` to `value` (occ's entry first), keeping the
/// value it had before occ first touched it (`previous`), so uninstall takes out only occ's
/// entry. Nothing is recorded in a dry run.
pub(crate) fn record_openclaw_list(
    cx: &mut Ctx,
    key: &str,
    previous: Option<serde_json::Value>,
    value: serde_json::Value,
) {
    if cx.dry {
        return;
    }
    let recorded = cx.manifest.path.iter_mut().find_map(|p| match p {
        PathInjection::OpenclawConfig {
            key: k, value: v, ..
        } if k == key => Some(v),
        _ => None,
    });
    match recorded {
        Some(v) => *v = value,
        None => cx.manifest.path.push(PathInjection::OpenclawConfig {
            key: key.to_string(),
            previous,
            value,
        }),
    }
}
