//! `occ uninstall --system`: stops the service (or the broker started directly), has the
//! agent undo its own part, then removes exactly what `/var/lib/occ/install-manifest.json`
//! lists. It keeps the audit log (/var/log/occ) and every policy file edited since, and says
//! so; it never removes a path the manifest does not name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::{occ_bin, require_root};
use crate::install::manifest::{BrokerStart, Manifest};
use crate::install::{agent_home, broker, remove, tool};
use crate::layout::SYSTEM_LOG_DIR;

/// What `occ uninstall --system` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// What root removed, reverted, kept and warned about.
    #[serde(flatten)]
    pub root: remove::Report,
    /// What the agent's child undid in its home, one line each.
    pub agent_home: Vec<String>,
}

/// Runs the uninstall. `Err` when there is no usable manifest (or not root).
pub fn uninstall() -> Result<Report, String> {
    require_root(
        "occ uninstall --system",
        "it removes what occ install --system wrote",
    )?;
    let file = PathBuf::from(super::MANIFEST);
    let m = Manifest::load_as(&file, 0)?.ok_or_else(|| {
        format!(
            "no system install manifest at {}, so there is nothing occ knows it installed",
            file.display()
        )
    })?;
    let Some(sys) = m.system.clone() else {
        return Err(format!(
            "{} is not a system-mode manifest; use `occ uninstall` as the user instead",
            file.display()
        ));
    };
    let mut rep = Report::default();
    let r = &mut rep.root;
    let occ = occ_bin();
    let sc = tool::systemd_system();

    // 1. The service, then any broker still running from the installed binary.
    if let Some(BrokerStart::Systemd { unit }) = &m.broker {
        match &sc {
            Some(sc) => match broker::systemctl_system(sc, &["disable", "--now", unit]) {
                Ok(()) => r.reverted.push(format!("stopped and disabled {unit}")),
                Err(e) => r.warnings.push(e),
            },
            None => r.warnings.push(format!(
                "systemd does not run this host; run `systemctl disable --now {unit}` where it \
                 does"
            )),
        }
    }
    let pid_file = crate::daemon::files::RunPaths::system().pid;
    if let Some(pid) = broker::stop_at(&pid_file, &occ) {
        r.reverted.push(format!("stopped the broker (pid {pid})"));
    }

    // 2. The agent's part, undone as the agent, while the installed occ is still there.
    if let Some(home) = &sys.agent_home {
        match nix::unistd::User::from_name(&sys.agent) {
            Ok(Some(user)) => {
                let record = serde_json::to_vec(home).map_err(|e| e.to_string())?;
                match agent_home::run_as(&occ, &user, &["remove"], Some(&record)) {
                    Ok(out) => {
                        rep.agent_home
                            .extend(out.changes.iter().map(|l| crate::escape::escape_text(l)));
                        r.warnings.extend(out.warnings.iter().map(|w| {
                            format!("as {}: {}", sys.agent, crate::escape::escape_text(w))
                        }));
                    }
                    Err(e) => r.warnings.push(format!(
                        "{e}; remove {}/bin/sudo and occ's PATH entry by hand",
                        home.home.display()
                    )),
                }
            }
            _ => r.warnings.push(format!(
                "the agent {} is not a user here any more; nothing to undo in its home",
                sys.agent
            )),
        }
    }

    // 3. Root's own occ-scan schedule of the system occ-scan, before that binary goes.
    remove::remove_schedules(
        occ_scan::compliance::schedule::Only {
            homes: Vec::new(),
            exes: vec![Path::new(super::BIN_DIR).join("occ-scan")],
        },
        r,
    );

    // 4. Files, backups, run-time files and modes; the unit's manager reloads.
    if remove::revert(&m, r) {
        if let Some(sc) = &sc {
            match broker::systemctl_system(sc, &["daemon-reload"]) {
                Ok(()) => r.reverted.push("systemctl daemon-reload".into()),
                Err(e) => r.warnings.push(e),
            }
        }
    }

    // 5. Groups: a group occ made goes; users occ added to a group it found come out.
    for g in &sys.groups {
        let done = if g.created {
            run("groupdel", &[&g.group]).map(|()| format!("deleted group {}", g.group))
        } else {
            g.added
                .iter()
                .map(|u| {
                    run("gpasswd", &["-d", u, &g.group])
                        .map(|()| format!("took {u} out of group {}", g.group))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.join("; "))
        };
        match done {
            Ok(msg) if !msg.is_empty() => r.reverted.push(msg),
            Ok(_) => {}
            Err(e) => r.warnings.push(e),
        }
    }

    // 6. The manifest, then the directories occ made (deepest first), never the log.
    match std::fs::remove_file(&file) {
        Ok(()) => r.removed.push(file.clone()),
        Err(e) => r
            .warnings
            .push(format!("cannot remove {}: {e}", file.display())),
    }
    let log_dir = Path::new(SYSTEM_LOG_DIR);
    let mut dirs = m.clone();
    dirs.dirs.retain(|d| d != log_dir);
    remove::remove_dirs(&dirs, r);
    if log_dir.exists() {
        r.kept.push((
            log_dir.to_path_buf(),
            "the audit log is kept: privileged-audit.jsonl and the broker's log; remove it \
             yourself once it is archived"
                .into(),
        ));
    }
    Ok(rep)
}

fn run(name: &str, args: &[&str]) -> Result<(), String> {
    let prog = tool::which_in(name, occ_policy::file::DEFAULT_SECURE_PATH).ok_or_else(|| {
        format!(
            "{name} is not installed; run `{name} {}` by hand",
            args.join(" ")
        )
    })?;
    let ran = tool::run(&prog, args, Duration::from_secs(60))?;
    if ran.ok() {
        Ok(())
    } else {
        Err(format!(
            "`{name} {}` failed ({})",
            args.join(" "),
            ran.why()
        ))
    }
}
