//! `occ uninstall`: stop the broker occ started, revert the PATH injections, and remove exactly
//! what the manifest lists. It keeps the audit log and every policy file the admin changed,
//! and says so. It never removes a path the manifest does not name.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use occ_policy::openclaw as oc;
use serde::Serialize;

use occ_scan::compliance::schedule::{self, Backend, Only, RemoveOptions};

use crate::install::manifest::{BrokerStart, FileKind, Manifest, PathInjection};
use crate::install::{broker, pathinj, tool};

/// What `occ uninstall` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Paths removed.
    pub removed: Vec<PathBuf>,
    /// Other changes (broker stopped, backups restored, PATH reverted).
    pub reverted: Vec<String>,
    /// Paths kept, each with why.
    pub kept: Vec<(PathBuf, String)>,
    /// Steps that did not work, with what to do by hand.
    pub warnings: Vec<String>,
}

/// Runs the uninstall. `Err` when there is no usable manifest.
pub fn uninstall() -> Result<Report, String> {
    let home = crate::paths::occ_home();
    let file = crate::install::manifest_path();
    let m = Manifest::load(&file)?.ok_or_else(|| {
        format!(
            "no install manifest at {}, so there is nothing occ knows it installed; \
             set OCC_HOME to the home you installed into",
            file.display()
        )
    })?;
    let mut r = Report::default();
    let occ = broker::occ_bin(&home);
    let sc = tool::systemd_user();

    // 1. The broker.
    if let Some(BrokerStart::Systemd { unit }) = &m.broker {
        match &sc {
            Some(sc) => match broker::systemctl(sc, &["disable", "--now", unit]) {
                Ok(()) => r.reverted.push(format!("stopped and disabled {unit}")),
                Err(e) => r.warnings.push(e),
            },
            None => r.warnings.push(format!(
                "systemctl --user is not reachable; run `systemctl --user disable --now {unit}` \
                 in the user's session"
            )),
        }
    }
    if let Some(pid) = broker::stop(&home, &occ) {
        r.reverted.push(format!("stopped the broker (pid {pid})"));
    }

    // 2. The occ-scan schedule of this home, before the occ-scan it runs goes.
    remove_schedules(
        Only {
            homes: vec![home.clone()],
            exes: vec![home.join("bin/occ-scan")],
        },
        &mut r,
    );

    let reload = revert(&m, &mut r);
    if reload {
        if let Some(sc) = &sc {
            match broker::systemctl(sc, &["daemon-reload"]) {
                Ok(()) => r.reverted.push("systemctl --user daemon-reload".into()),
                Err(e) => r.warnings.push(e),
            }
        }
    }
    match std::fs::remove_file(&file) {
        Ok(()) => r.removed.push(file.clone()),
        Err(e) => r
            .warnings
            .push(format!("cannot remove {}: {e}", file.display())),
    }
    remove_dirs(&m, &mut r);
    let log = crate::paths::audit_log();
    if log.exists() {
        r.kept.push((log, "the audit log is kept".into()));
    }
    Ok(r)
}

/// Removes this user's occ-scan schedules that `only` names (crontab line, systemd user timer,
/// launchd agent: whatever `occ-scan schedule install` wrote), with occ-scan's own remover.
/// What went is in `reverted`; a schedule left because it runs another home or occ-scan, and
/// any step that failed, is a warning saying why and what to do.
pub fn remove_schedules(only: Only, r: &mut Report) {
    let out = schedule::remove(&RemoveOptions {
        backend: Backend::Auto,
        only: Some(only),
        timeout: std::time::Duration::from_secs(15),
    });
    r.reverted
        .extend(out.done.iter().map(|d| format!("occ-scan schedule: {d}")));
    r.warnings.extend(
        out.kept
            .iter()
            .chain(&out.problems)
            .map(|k| format!("occ-scan schedule: {k}")),
    );
}

/// Reverts what `m` records, except the broker, the manifest file and the directories: PATH
/// injections (newest first), files occ wrote (a policy file edited since is kept), backups
/// put back, run-time files and directory modes. Returns whether a unit file went, so the
/// caller reloads its systemd manager.
pub fn revert(m: &Manifest, r: &mut Report) -> bool {
    // PATH injections, newest first.
    let mut reload = false;
    for inj in m.path.iter().rev() {
        match inj {
            PathInjection::OpenclawConfig {
                key,
                previous,
                value,
            } => revert_openclaw(key, previous.is_some(), value, r),
            PathInjection::OpenclawOwned { key } => unset_openclaw(key, r),
            PathInjection::SystemdDropIn { .. } => reload = true,
            PathInjection::Manual { line } => r.reverted.push(format!(
                "if you added `{line}` to the agent's environment, remove it"
            )),
        }
    }

    // Files occ wrote.
    for f in m.files.iter().rev() {
        let Ok(md) = std::fs::symlink_metadata(&f.path) else {
            continue;
        };
        let now = std::fs::read(&f.path)
            .map(|b| occ_audit::sha256_hex(&b))
            .ok();
        let changed = !md.is_file() || now.as_deref() != Some(f.sha256.as_str());
        if f.kind == FileKind::Policy && changed {
            r.kept
                .push((f.path.clone(), "policy file edited since install".into()));
            continue;
        }
        if f.kind == FileKind::Unit {
            reload = true;
        }
        match std::fs::remove_file(&f.path) {
            Ok(()) => {
                if changed {
                    r.warnings.push(format!(
                        "{} had changed since install; removed anyway",
                        f.path.display()
                    ));
                }
                r.removed.push(f.path.clone());
            }
            Err(e) => r
                .warnings
                .push(format!("cannot remove {}: {e}", f.path.display())),
        }
    }

    // Files moved aside go back.
    for b in m.backups.iter().rev() {
        if std::fs::symlink_metadata(&b.original).is_ok() {
            r.warnings.push(format!(
                "{} exists again, so its backup {} stays where it is",
                b.original.display(),
                b.backup.display()
            ));
            continue;
        }
        match std::fs::rename(&b.backup, &b.original) {
            Ok(()) => r.reverted.push(format!(
                "restored {} from {}",
                b.original.display(),
                b.backup.display()
            )),
            Err(e) => r
                .warnings
                .push(format!("cannot restore {}: {e}", b.original.display())),
        }
    }

    // Broker run-time files (never the audit log).
    for p in &m.runtime {
        if std::fs::remove_file(p).is_ok() {
            r.removed.push(p.clone());
        }
    }

    // Directory modes.
    for c in &m.mode_changes {
        if let Err(e) = std::fs::set_permissions(&c.path, std::fs::Permissions::from_mode(c.before))
        {
            r.warnings.push(format!(
                "cannot restore the mode of {}: {e}",
                c.path.display()
            ));
        } else {
            r.reverted.push(format!(
                "mode of {} back to {:o}",
                c.path.display(),
                c.before
            ));
        }
    }
    reload
}

/// Takes occ's entry (the first of what it set, `value`) out of OpenClaw's `key` as it is
/// now, keeping every other entry, including ones added since install; the key goes only
/// when nothing else is left and it was unset before occ (`was_set`).
fn revert_openclaw(key: &str, was_set: bool, value: &serde_json::Value, r: &mut Report) {
    let Some(entry) = value.get(0).and_then(serde_json::Value::as_str) else {
        r.warnings.push(format!(
            "the manifest's record of {key} names no occ entry ({value}); check it by hand: \
             openclaw config get {key}"
        ));
        return;
    };
    let Some(cli) = tool::which("openclaw") else {
        r.warnings.push(format!(
            "the openclaw CLI is not on PATH; take {entry} out of {key} by hand \
             (`openclaw config get {key}`, then `openclaw config set {key} '<the rest>' \
             --strict-json`, or `openclaw config unset {key}` when nothing else is left)"
        ));
        return;
    };
    let current = match pathinj::openclaw_get(&cli, key) {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(e) => {
            r.warnings
                .push(format!("{e}; take {entry} out of {key} by hand"));
            return;
        }
    };
    let done = match oc::without(entry, &current, was_set) {
        None => pathinj::openclaw_unset(&cli, key)
            .map(|()| format!("unset openclaw {key} (it held only {entry})")),
        Some(rest) if rest != current => pathinj::openclaw_set(&cli, key, &rest)
            .map(|()| format!("removed {entry} from openclaw {key}, kept {rest}")),
        Some(_) => return,
    };
    match done {
        Ok(msg) => r.reverted.push(msg),
        Err(e) => r.warnings.push(e),
    }
}

/// Unsets an OpenClaw key occ owns whole.
fn unset_openclaw(key: &str, r: &mut Report) {
    let Some(cli) = tool::which("openclaw") else {
        r.warnings.push(format!(
            "the openclaw CLI is not on PATH; remove {key} by hand (`openclaw config unset {key}`)"
        ));
        return;
    };
    match pathinj::openclaw_get(&cli, key) {
        Ok(None) => {}
        Ok(Some(_)) => match pathinj::openclaw_unset(&cli, key) {
            Ok(()) => r.reverted.push(format!("unset openclaw {key}")),
            Err(e) => r.warnings.push(e),
        },
        Err(e) => r.warnings.push(format!("{e}; remove {key} by hand")),
    }
}

/// Removes the directories `m` records, deepest first, when empty; a directory that is not
/// is kept and listed.
pub fn remove_dirs(m: &Manifest, r: &mut Report) {
    for d in m.dirs.iter().rev() {
        if std::fs::remove_dir(d).is_ok() {
            r.removed.push(d.clone());
        } else if d.exists() {
            r.kept
                .push((d.clone(), format!("not empty: {}", listing(d))));
        }
    }
}

fn listing(d: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(d)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(", ")
}
