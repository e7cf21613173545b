//! Files and the host: private modes and owners for secrets, OpenClaw's config (and its
//! includes) and the policy files (judged as the broker judges them), no other privilege path
//! for the agent, backups (occ's and OpenClaw's own archives) and updates.

use std::path::Path;
use std::time::{Duration, SystemTime};

use occ_policy::FileError;

use super::ctx::{why_not_cli, Ctx};
use super::openclaw;
use super::verdict::Verdict;
use crate::compliance::openclaw::backups;
use crate::compliance::util;

pub(super) fn secrets_permissions_hardened(c: &Ctx) -> Verdict {
    use std::os::unix::fs::MetadataExt;
    let home = &c.paths.home;
    if let Err(e) = std::fs::metadata(home) {
        return Verdict::not_assessed(format!("{}: {e}", home.display()));
    }
    // OpenClaw's config and every file it includes (read for their names when the CLI
    // resolved the config); else the file where the instance says it is.
    let mut secrets = match (&c.openclaw, &c.host.openclaw_instance) {
        (Ok(Some(cfg)), Ok(i)) if cfg.from_cli => {
            crate::compliance::openclaw::config::read(&cfg.path, &i.include_roots)
                .ok()
                .flatten()
                .map_or_else(|| cfg.files.clone(), |r| r.files)
        }
        (Ok(Some(cfg)), _) => cfg.files.clone(),
        (_, instance) => vec![instance
            .as_ref()
            .map_or_else(|_| c.paths.openclaw_json(), |i| i.config_path.clone())],
    };
    secrets.extend([
        home.join("env"),
        c.paths.security_file("audit-seal.key"),
        c.paths.security_file("broker.json"),
    ]);
    let dirs = [home.clone(), c.paths.security(), home.join("credentials")];
    let mut bad_secret = Vec::new();
    let mut bad_dir = Vec::new();
    let mut ev = Vec::new();
    for (p, is_secret) in secrets
        .iter()
        .map(|p| (p, true))
        .chain(dirs.iter().map(|p| (p, false)))
    {
        let m = match std::fs::symlink_metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Verdict::not_assessed(format!("{}: {e}", p.display())),
        };
        let mode = m.mode() & 0o7777;
        ev.push(format!("{} mode {mode:o} uid {}", p.display(), m.uid()));
        let owner_ok = m.uid() == 0 || m.uid() == c.host.agent.uid;
        if mode & 0o002 != 0 || (is_secret && mode & 0o077 != 0) || !owner_ok {
            bad_secret.push(p.display().to_string());
        } else if mode & 0o077 != 0 {
            bad_dir.push(p.display().to_string());
        }
    }
    // The policy files as the broker opens them (occ-policy's checks on the open file): a
    // symlink, a foreign owner or a group- or world-writable mode lets someone else change what
    // the broker enforces, and the broker refuses every request until it is fixed.
    let refused: Vec<&FileError> = c
        .policy
        .problems()
        .into_iter()
        .filter(|e| matches!(e, FileError::Unsafe { .. }))
        .collect();
    for e in &refused {
        let p = e.file().display().to_string();
        if !bad_secret.contains(&p) {
            bad_secret.push(p);
        }
        ev.push(e.to_string());
    }
    if refused.is_empty() {
        ev.push(
            "the broker's checks before reading (owner, mode, no symlink) pass for broker.json, \
             command-policy.json and prompt-policy.json"
                .into(),
        );
    }
    // OpenClaw's own audit of its state directory, config, includes and credentials.
    let (oc_ev, oc_critical) = openclaw::file_findings(c);
    ev.extend(oc_ev);
    if let Some(ids) = oc_critical {
        bad_secret.push(format!(
            "OpenClaw's own files (openclaw security audit: {ids})"
        ));
    }
    if !bad_secret.is_empty() {
        return Verdict::violation(
            format!("exposed: {}", bad_secret.join(", ")),
            "other users can read or change secrets and configuration",
            "chmod 600 the files and 700 the directories, owned by the agent's user",
        )
        .evs(ev);
    }
    if !bad_dir.is_empty() {
        return Verdict::partial(
            format!(
                "directories open to group or others: {}",
                bad_dir.join(", ")
            ),
            "other users can list occ's files",
            "chmod 700 the directories",
        )
        .evs(ev);
    }
    Verdict::compliant("secrets and configuration are private to their owner").evs(ev)
}

pub(super) fn alternate_privilege_paths_restricted(c: &Ctx) -> Verdict {
    let uid = match &c.host.gateway {
        Some(g) => match g.uid {
            Some(u) => u,
            None => {
                return Verdict::not_assessed(format!(
                    "cannot read the uid of the OpenClaw gateway (pid {}) from /proc",
                    g.pid
                ))
            }
        },
        None => c.host.agent.uid,
    };
    let mut ev = vec![format!(
        "agent uid {uid}, groups: {}",
        if c.host.agent.groups.is_empty() {
            "-".into()
        } else {
            c.host.agent.groups.join(", ")
        }
    )];
    let tools: Vec<String> = c
        .host
        .priv_tools
        .iter()
        .filter(|t| t.setuid_root)
        .map(|t| t.path.display().to_string())
        .collect();
    ev.push(format!(
        "setuid-root privilege tools: {}",
        if tools.is_empty() {
            "none".into()
        } else {
            tools.join(", ")
        }
    ));
    if uid == 0 {
        return Verdict::violation(
            "the agent runs as root",
            "every privilege is available without occ",
            "run the agent as an unprivileged user",
        )
        .evs(ev);
    }
    let admin: Vec<&String> = c
        .host
        .agent
        .groups
        .iter()
        .filter(|g| matches!(g.as_str(), "sudo" | "wheel" | "admin" | "root"))
        .collect();
    if !admin.is_empty() {
        return Verdict::violation(
            format!("the agent's user is in {:?}", admin),
            "the agent can call the real sudo directly and bypass occ",
            "remove the agent's user from sudo/wheel/admin (system mode)",
        )
        .evs(ev);
    }
    if !tools.is_empty() {
        return Verdict::partial(
            "password-guarded setuid tools are reachable",
            "su/doas/pkexec offer a path to root outside occ if a password leaks",
            "remove or restrict su, doas and pkexec for the agent's user",
        )
        .evs(ev);
    }
    Verdict::compliant("no other privilege path is available to the agent").evs(ev)
}

fn newest_backup(dir: &Path, depth: u8) -> std::io::Result<(u32, Option<SystemTime>)> {
    let mut count = 0;
    let mut newest: Option<SystemTime> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let m = entry.metadata()?;
        if m.is_dir() && depth > 0 {
            let (n, t) = newest_backup(&entry.path(), depth - 1)?;
            count += n;
            newest = newest.max(t);
        } else if m.is_file() && m.len() > 0 {
            count += 1;
            newest = newest.max(m.modified().ok());
        }
    }
    Ok((count, newest))
}

/// The newest backup found, and where it was found.
struct Found {
    path: std::path::PathBuf,
    at: SystemTime,
    how: String,
}

/// OpenClaw's own record of its newest successful backup (`openclaw status --json`), when it
/// still exists on disk.
fn recorded(c: &Ctx, ev: &mut Vec<String>) -> Option<Found> {
    let rec = match c.host.openclaw.as_ref().and_then(|o| o.backups.as_ref()) {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            ev.push(format!("OpenClaw's backup record not read ({e})"));
            return None;
        }
        None => {
            ev.push(format!(
                "OpenClaw's backup record not read ({})",
                why_not_cli(c.host)
            ));
            return None;
        }
    };
    if let Some(l) = rec.latest.as_ref().filter(|l| l.status != "ok") {
        let newer = rec
            .latest_ok
            .as_ref()
            .is_none_or(|ok| l.created_at > ok.created_at);
        if newer {
            ev.push(format!(
                "OpenClaw's newest backup attempt failed ({}): {}",
                util::rfc3339(l.time()),
                l.error.as_deref().unwrap_or("no reason recorded")
            ));
        }
    }
    let Some(ok) = &rec.latest_ok else {
        ev.push("OpenClaw records no successful backup".into());
        return None;
    };
    let Some(path) = ok.archive_path.as_deref().map(std::path::PathBuf::from) else {
        ev.push("OpenClaw's newest backup record names no path".into());
        return None;
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() || m.len() > 0 => Some(Found {
            how: format!(
                "OpenClaw's backup record ({} backup)",
                ok.kind.as_deref().unwrap_or("archive")
            ),
            path,
            at: ok.time(),
        }),
        Ok(_) => {
            ev.push(format!(
                "OpenClaw's recorded backup {} is empty",
                path.display()
            ));
            None
        }
        Err(e) => {
            ev.push(format!(
                "OpenClaw's recorded backup {} is gone: {e}",
                path.display()
            ));
            None
        }
    }
}

pub(super) fn backup_configured(c: &Ctx) -> Verdict {
    let mut ev = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    let mut found: Vec<Found> = recorded(c, &mut ev).into_iter().collect();
    // OpenClaw's archives by name, where `openclaw backup create` writes without --output.
    let home = c
        .host
        .openclaw_instance
        .as_ref()
        .ok()
        .and_then(|i| i.home.clone());
    match home.as_deref().map(backups::default_dirs) {
        Some(dirs) => match backups::newest_archive(&dirs) {
            Ok(Some(a)) => found.push(Found {
                how: "an OpenClaw archive found by its name".into(),
                path: a.path,
                at: a.modified,
            }),
            Ok(None) => ev.push(format!(
                "no *{} in {}",
                backups::ARCHIVE_SUFFIX,
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(e) => unreadable.push(e),
        },
        None => ev.push("OpenClaw's home is unknown (no HOME): archives not looked for".into()),
    }
    // occ's own backups directory.
    for d in ["backups", "backup"].iter().map(|d| c.paths.home.join(d)) {
        if !d.exists() {
            continue;
        }
        match newest_backup(&d, 2) {
            Ok((n, Some(t))) if n > 0 => found.push(Found {
                how: format!("{n} non-empty file(s) in occ's {}", d.display()),
                path: d.clone(),
                at: t,
            }),
            Ok(_) => ev.push(format!("{} holds no non-empty file", d.display())),
            Err(e) => unreadable.push(format!("{}: {e}", d.display())),
        }
    }
    let Some(newest) = found.into_iter().max_by_key(|f| f.at) else {
        if let Some(e) = unreadable.first() {
            return Verdict::not_assessed(e.clone()).evs(ev);
        }
        return Verdict::violation(
            "no backup found",
            "neither OpenClaw's state nor occ's configuration and audit log can be restored",
            "run `openclaw backup create --output ~/Backups --verify` (outside the state \
             directory) regularly, or schedule `openclaw backup enable`; keep copies of \
             OCC_HOME too",
        )
        .evs(ev);
    };
    let age_days = c
        .now
        .duration_since(newest.at)
        .unwrap_or_default()
        .as_secs()
        / 86_400;
    ev.insert(
        0,
        format!(
            "newest: {}, {age_days} day(s) old ({}), from {}",
            newest.path.display(),
            util::rfc3339(newest.at),
            newest.how
        ),
    );
    ev.extend(unreadable);
    if age_days > 7 {
        return Verdict::partial(
            format!("newest backup is {age_days} days old"),
            "backups are stale",
            "schedule a backup at least weekly (`openclaw backup enable`)",
        )
        .evs(ev);
    }
    Verdict::compliant("a recent backup exists").evs(ev)
}

pub(super) fn update_hygiene(c: &Ctx) -> Verdict {
    let Some(cli) = &c.host.openclaw else {
        return Verdict::not_assessed(
            "the openclaw CLI was not found (openclaw-bin-path.txt, PATH, usual install paths)",
        );
    };
    let version = match &cli.version {
        Ok(v) => v.clone(),
        Err(e) => {
            return Verdict::violation(
                format!("{} does not report its version", cli.path.display()),
                "the OpenClaw install is broken or unknown",
                "reinstall OpenClaw from its package",
            )
            .ev(e.clone())
        }
    };
    let Some(modified) = cli.modified else {
        return Verdict::not_assessed(format!("cannot stat {}", cli.path.display()));
    };
    let age = c.now.duration_since(modified).unwrap_or_default().as_secs() / 86_400;
    let ev = format!(
        "{} reports {version}; installed {age} day(s) ago",
        cli.path.display()
    );
    if age > 180 {
        return Verdict::violation(
            format!("OpenClaw {version} was installed {age} days ago"),
            "security fixes from the last half year are missing",
            "update OpenClaw to the current release",
        )
        .ev(ev);
    }
    if age > 90 {
        return Verdict::partial(
            format!("OpenClaw {version} was installed {age} days ago"),
            "the install is more than 90 days old",
            "update OpenClaw to the current release",
        )
        .ev(ev);
    }
    Verdict::compliant(format!("OpenClaw {version}, updated {age} day(s) ago")).ev(ev)
}

/// A helper for tests and reports: how long ago `t` was, in whole days.
pub fn age_days(now: SystemTime, t: SystemTime) -> u64 {
    now.duration_since(t).unwrap_or(Duration::ZERO).as_secs() / 86_400
}
