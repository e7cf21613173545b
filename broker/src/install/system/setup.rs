//! `occ install --system`: root-owned binaries in /usr/local, /etc/occ with templates that
//! pre-allow nothing and a broker.json naming the agent and its approvers, the approvers
//! group when asked, the agent's shim and PATH (made as the agent), and the root service: a
//! systemd system unit, or the broker started directly where there is no systemd. It refuses
//! an agent that is root or would be its own approver, and records every change first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::{Group, User};

use super::{checks, occ_bin, require_root, shim, unit_file, APPROVERS_GROUP, BIN_DIR, LIB_DIR};
use crate::install::agent_home;
use crate::install::manifest::{BrokerStart, FileKind, GroupChange, Manifest, SystemRecord};
use crate::install::setup::{Ctx, Report};
use crate::install::{broker, tool, unit};
use crate::layout::{SYSTEM_CONFIG_DIR, SYSTEM_LOG_DIR, SYSTEM_RUN_DIR, SYSTEM_STATE_DIR};

/// The system broker's state file (`gate::system::STATE_FILE`, private to the gate).
const STATE_FILE: &str = "state.json";

/// What to install.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory holding the built `occ`, `occ-scan` and `occ-shim`.
    pub from: PathBuf,
    /// The shim, when it is not `FROM/occ-shim`.
    pub shim: Option<PathBuf>,
    /// The agent's user: the one requester.
    pub agent: String,
    /// The approver: a user, or `%group`.
    pub approver: String,
    /// Create the `occ-approvers` group, put `approver` (a user) in it, and name the group.
    pub create_group: bool,
}

/// The agent and the approvers entry, checked against each other.
struct Access {
    agent: User,
    /// The entry broker.json's approvers gets.
    approvers: Vec<String>,
    /// The approver user to add to the group (`--create-approvers-group`).
    add_to_group: Option<String>,
}

fn check_access(o: &Options) -> Result<Access, String> {
    let agent = match User::from_name(&o.agent) {
        Ok(Some(u)) => u,
        _ => {
            return Err(format!(
                "--agent {}: no such user; create the agent's user first (useradd \
                 --create-home {})",
                o.agent, o.agent
            ))
        }
    };
    if agent.uid.is_root() {
        return Err(format!(
            "--agent {}: the agent's user is root (uid 0), so nothing occ does can limit it; \
             run the agent as an unprivileged user and install for that user",
            o.agent
        ));
    }
    let agent_groups = occ_policy::boundary::groups_of(&agent);
    match o.approver.strip_prefix('%') {
        Some(g) => {
            if o.create_group {
                return Err(format!(
                    "--create-approvers-group makes the group {APPROVERS_GROUP} and adds one \
                     user to it; pass --approver USER (not {})",
                    o.approver
                ));
            }
            if !matches!(Group::from_name(g), Ok(Some(_))) {
                return Err(format!(
                    "--approver {}: no such group; create it (groupadd {g}) and add the \
                     approvers, or pass --create-approvers-group with --approver USER",
                    o.approver
                ));
            }
            if agent_groups.iter().any(|mine| mine == g) {
                return Err(format!(
                    "--approver {}: the agent {} is in group {g}, so it would approve its own \
                     requests; name a group the agent is not in (gpasswd -d {} {g})",
                    o.approver, o.agent, o.agent
                ));
            }
            Ok(Access {
                agent,
                approvers: vec![o.approver.clone()],
                add_to_group: None,
            })
        }
        None => {
            let approver = match User::from_name(&o.approver) {
                Ok(Some(u)) => u,
                _ => {
                    return Err(format!(
                        "--approver {}: no such user; name the person who approves (a user \
                         other than the agent), or a %group",
                        o.approver
                    ))
                }
            };
            if approver.uid == agent.uid {
                return Err(format!(
                    "--approver {} is the agent's own user (uid {}): the agent would approve \
                     its own requests; name another user",
                    o.approver, agent.uid
                ));
            }
            if !o.create_group {
                return Ok(Access {
                    agent,
                    approvers: vec![o.approver.clone()],
                    add_to_group: None,
                });
            }
            if agent_groups.iter().any(|g| g == APPROVERS_GROUP) {
                return Err(format!(
                    "the agent {} is already in group {APPROVERS_GROUP}; take it out first \
                     (gpasswd -d {} {APPROVERS_GROUP})",
                    o.agent, o.agent
                ));
            }
            Ok(Access {
                agent,
                approvers: vec![format!("%{APPROVERS_GROUP}")],
                add_to_group: Some(o.approver.clone()),
            })
        }
    }
}

/// broker.json's template with the requesters and approvers set.
pub fn broker_json(agent: &str, approvers: &[String]) -> Result<String, String> {
    use occ_policy::file::templates::BROKER_CONFIG;
    let list = |v: &[String]| serde_json::to_string(v).map_err(|e| e.to_string());
    let empty = "  \"requesters\": [],\n  \"approvers\": []\n";
    if !BROKER_CONFIG.contains(empty) {
        return Err("the broker.json template has no empty requesters and approvers".into());
    }
    let text = BROKER_CONFIG.replace(
        empty,
        &format!(
            "  \"requesters\": {},\n  \"approvers\": {}\n",
            list(&[agent.to_string()])?,
            list(approvers)?
        ),
    );
    // What is written must load as the broker loads it.
    let cfg = occ_policy::file::BrokerConfig::parse(Path::new("broker.json"), &text)
        .map_err(|e| e.to_string())?;
    if cfg.requesters != [agent] || cfg.approvers != approvers {
        return Err("broker.json did not render the requesters and approvers given".into());
    }
    Ok(text)
}

/// Runs the install. `Err` stops it (exit 2) with everything done so far in the manifest;
/// failed checks are in the report (exit 1).
pub fn install(o: &Options) -> Result<Report, String> {
    require_root(
        "occ install --system",
        "it writes /etc/occ, /usr/local and the service",
    )?;
    let access = check_access(o)?;
    let agent = &access.agent;

    // Every source is read before anything changes.
    let shim_src = o.shim.clone().unwrap_or_else(|| o.from.join("occ-shim"));
    let mut sources = Vec::new();
    for (dst, src) in [
        (occ_bin(), o.from.join("occ")),
        (Path::new(BIN_DIR).join("occ-scan"), o.from.join("occ-scan")),
        (shim(), shim_src),
    ] {
        let bytes = std::fs::read(&src).map_err(|e| {
            format!(
                "cannot read {}: {e}; build with cargo build --release -p occ-broker -p \
                 occ-scan -p occ-shim, or pass --from DIR",
                src.display()
            )
        })?;
        sources.push((dst, src, bytes));
    }
    let agent_manifest = agent_home::occ_home_of(agent).join("install-manifest.json");
    if std::fs::symlink_metadata(&agent_manifest).is_ok() {
        return Err(format!(
            "occ is installed in user mode for {} ({} exists); run `occ uninstall` as {} first",
            agent.name,
            agent_manifest.display(),
            agent.name
        ));
    }

    let manifest_file = PathBuf::from(super::MANIFEST);
    let had_manifest = manifest_file.exists();
    let manifest = match Manifest::load_as(&manifest_file, 0)? {
        Some(m) => {
            let same = m.system.as_ref().is_some_and(|s| s.agent == agent.name);
            if !same {
                return Err(format!(
                    "{} records an install for another agent ({}); run `occ uninstall \
                     --system` first",
                    manifest_file.display(),
                    m.system
                        .as_ref()
                        .map(|s| s.agent.as_str())
                        .unwrap_or("user mode?")
                ));
            }
            m
        }
        None => {
            let mut m = Manifest::new(Path::new("/"));
            m.system = Some(SystemRecord {
                agent: agent.name.clone(),
                approvers: access.approvers.clone(),
                groups: Vec::new(),
                agent_home: None,
            });
            m
        }
    };
    let mut cx = Ctx::new(false, manifest);

    // Directories: state first, since the manifest lives there.
    cx.mkdir_mode(Path::new(SYSTEM_STATE_DIR), 0o700)?;
    for d in [SYSTEM_CONFIG_DIR, SYSTEM_LOG_DIR] {
        cx.mkdir_mode(Path::new(d), 0o700)?;
    }
    for d in [SYSTEM_STATE_DIR, SYSTEM_CONFIG_DIR, SYSTEM_LOG_DIR] {
        cx.tighten(Path::new(d), 0o077)?;
    }
    cx.save(&manifest_file)?;
    let result = install_steps(o, &access, &mut cx, sources);
    cx.save(&manifest_file)?;
    result?;
    if !had_manifest {
        cx.change(
            "write",
            manifest_file.display().to_string(),
            "install manifest, mode 600",
        );
    }
    cx.report.checks = checks::run();
    Ok(cx.report)
}

type Sources = Vec<(PathBuf, PathBuf, Vec<u8>)>;

fn install_steps(
    o: &Options,
    access: &Access,
    cx: &mut Ctx,
    sources: Sources,
) -> Result<(), String> {
    let agent = &access.agent;
    // Binaries, root's: anything root runs must be writable by root alone.
    cx.mkdir_mode(Path::new(BIN_DIR), 0o755)?;
    cx.mkdir_mode(Path::new(LIB_DIR), 0o755)?;
    let mut replaced = false;
    for (dst, src, bytes) in &sources {
        let existed = dst.exists();
        let wrote = cx.put(dst, bytes, 0o755, FileKind::Binary)?;
        replaced |= wrote && existed;
        if wrote {
            if let Some(c) = cx.report.changes.last_mut() {
                c.detail = format!("{}, from {}", c.detail, src.display());
            }
        }
    }
    // Manual pages and completions under /usr/local/share, from the installed occ-scan
    // (root's, so root runs nothing the agent could have written).
    crate::install::docs::install(
        cx,
        &crate::install::docs::Targets::system(),
        &Path::new(BIN_DIR).join("occ-scan"),
    );

    // Policy: nothing pre-allowed; the agent may ask, the approvers decide.
    use occ_policy::file::{templates, BROKER_CONFIG, COMMAND_POLICY, PROMPT_POLICY};
    let broker_text = broker_json(&agent.name, &access.approvers)?;
    for (name, text) in [
        (COMMAND_POLICY, templates::COMMAND_POLICY.to_string()),
        (PROMPT_POLICY, templates::PROMPT_POLICY.to_string()),
        (BROKER_CONFIG, broker_text),
    ] {
        let f = Path::new(SYSTEM_CONFIG_DIR).join(name);
        let now = std::fs::read(&f).ok();
        let ours_unchanged = match (&now, cx.manifest.file(&f)) {
            (Some(b), Some(rec)) => occ_audit::sha256_hex(b) == rec.sha256,
            _ => false,
        };
        if now.is_some() && !ours_unchanged {
            // Never replace a policy file occ did not write, or one the admin edited.
            cx.report.warnings.push(format!(
                "{} exists and is not the one occ wrote; it is kept as it is",
                f.display()
            ));
            if name == BROKER_CONFIG {
                warn_on_kept_access(cx, &f, &agent.name, &access.approvers);
            }
            continue;
        }
        if cx.put(&f, text.as_bytes(), 0o600, FileKind::Policy)? {
            if let Some(c) = cx.report.changes.last_mut() {
                c.action = "write";
                c.detail = "mode 600".into();
            }
        }
    }
    if let Some(s) = cx.manifest.system.as_mut() {
        s.approvers = access.approvers.clone();
    }
    let run_dir_existed = Path::new(SYSTEM_RUN_DIR).exists();
    let rp = crate::daemon::files::RunPaths::system();
    let mut runtime = vec![rp.socket, rp.pid, rp.lock];
    runtime.extend(rp.admin);
    runtime.push(Path::new(SYSTEM_STATE_DIR).join(STATE_FILE));
    for p in runtime {
        cx.manifest.add_runtime(&p);
    }

    // The approvers group.
    if let Some(user) = &access.add_to_group {
        approvers_group(cx, user)?;
    }

    // The agent's shim and PATH, made as the agent.
    let previous = cx
        .manifest
        .system
        .as_ref()
        .and_then(|s| s.agent_home.as_ref())
        .map(|m| serde_json::to_vec(m).unwrap_or_default())
        .unwrap_or_default();
    let shim_arg = super::shim().display().to_string();
    let out = agent_home::run_as(
        &occ_bin(),
        agent,
        &["install", "--shim", &shim_arg],
        Some(&previous),
    )?;
    for line in &out.changes {
        cx.change(
            "agent",
            format!("as {}: {}", agent.name, crate::escape::escape_text(line)),
            "",
        );
    }
    for w in &out.warnings {
        cx.report.warnings.push(format!(
            "as {}: {}",
            agent.name,
            crate::escape::escape_text(w)
        ));
    }
    for n in &out.next {
        cx.report.next.push(format!(
            "for {}: {}",
            agent.name,
            crate::escape::escape_text(n)
        ));
    }
    if let (Some(s), Some(m)) = (cx.manifest.system.as_mut(), out.manifest) {
        s.agent_home = Some(Box::new(m));
    }

    // The service.
    start_broker(cx, replaced)?;
    if !run_dir_existed && Path::new(SYSTEM_RUN_DIR).is_dir() {
        cx.manifest.add_dir(Path::new(SYSTEM_RUN_DIR));
    }
    let approver_note = match &access.add_to_group {
        Some(u) => format!("{u} (group {APPROVERS_GROUP})"),
        None => o.approver.clone(),
    };
    cx.report.next.push(format!(
        "as {approver_note}: `occ approvals` lists what {} asks for, `occ approve ID` runs it",
        agent.name
    ));
    Ok(())
}

fn warn_on_kept_access(cx: &mut Ctx, f: &Path, agent: &str, approvers: &[String]) {
    let text = std::fs::read_to_string(f).unwrap_or_default();
    match occ_policy::file::BrokerConfig::parse(f, &text) {
        Ok(cfg) => {
            if !cfg.requesters.iter().any(|r| r == agent) || cfg.approvers != approvers {
                cx.report.warnings.push(format!(
                    "{} names requesters {:?} and approvers {:?}, not [{agent:?}] and {:?}; \
                     edit it if that is not what you want",
                    f.display(),
                    cfg.requesters,
                    cfg.approvers,
                    approvers
                ));
            }
        }
        Err(e) => cx.report.warnings.push(e.to_string()),
    }
}

fn approvers_group(cx: &mut Ctx, user: &str) -> Result<(), String> {
    let tool_path = |name: &str| {
        tool::which_in(name, occ_policy::file::DEFAULT_SECURE_PATH)
            .ok_or_else(|| format!("{name} is not installed (it is in the passwd package)"))
    };
    let run = |prog: &Path, args: &[&str]| -> Result<(), String> {
        let ran = tool::run(prog, args, Duration::from_secs(60))?;
        if ran.ok() {
            Ok(())
        } else {
            Err(format!(
                "`{} {}` failed ({})",
                prog.display(),
                args.join(" "),
                ran.why()
            ))
        }
    };
    let exists = matches!(Group::from_name(APPROVERS_GROUP), Ok(Some(_)));
    let known = cx
        .manifest
        .system
        .as_ref()
        .is_some_and(|s| s.groups.iter().any(|g| g.group == APPROVERS_GROUP));
    if !exists {
        run(&tool_path("groupadd")?, &["--system", APPROVERS_GROUP])?;
        cx.change("run", format!("groupadd --system {APPROVERS_GROUP}"), "");
    }
    if let Some(s) = cx.manifest.system.as_mut() {
        if !known {
            s.groups.push(GroupChange {
                group: APPROVERS_GROUP.into(),
                created: !exists,
                added: Vec::new(),
            });
        }
    }
    let member = Group::from_name(APPROVERS_GROUP)
        .ok()
        .flatten()
        .is_some_and(|g| g.mem.iter().any(|m| m == user));
    if !member {
        run(&tool_path("gpasswd")?, &["-a", user, APPROVERS_GROUP])?;
        cx.change("run", format!("gpasswd -a {user} {APPROVERS_GROUP}"), "");
        if let Some(g) = cx
            .manifest
            .system
            .as_mut()
            .and_then(|s| s.groups.iter_mut().find(|g| g.group == APPROVERS_GROUP))
        {
            if !g.added.iter().any(|a| a == user) {
                g.added.push(user.to_string());
            }
        }
        cx.report.next.push(format!(
            "{user} is in group {APPROVERS_GROUP} from their next login on"
        ));
    }
    Ok(())
}

fn start_broker(cx: &mut Ctx, replaced: bool) -> Result<(), String> {
    let occ = occ_bin();
    let pid_file = crate::daemon::files::RunPaths::system().pid;
    if let Some(sc) = tool::systemd_system() {
        let sc_s = sc.display().to_string();
        let text = unit::system_broker_unit(&occ)?;
        let unit_changed = cx.put(&unit_file(), text.as_bytes(), 0o644, FileKind::Unit)?;
        if unit_changed {
            broker::systemctl_system(&sc, &["daemon-reload"])?;
            cx.change("run", format!("{sc_s} daemon-reload"), "");
        }
        let was_systemd = matches!(cx.manifest.broker, Some(BrokerStart::Systemd { .. }));
        if !was_systemd {
            // A broker started directly holds the lock; hand over to the unit.
            if let Some(pid) = broker::stop_at(&pid_file, &occ) {
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
        broker::systemctl_system(&sc, &["enable", "--now", unit::BROKER_UNIT])?;
        cx.change(
            "run",
            format!("{sc_s} enable --now {}", unit::BROKER_UNIT),
            "",
        );
        if (replaced || unit_changed) && was_systemd {
            broker::systemctl_system(&sc, &["restart", unit::BROKER_UNIT])?;
            cx.change(
                "run",
                format!("{sc_s} restart {}", unit::BROKER_UNIT),
                "new binaries",
            );
        }
        if let Err(e) = super::wait_up(Duration::from_secs(5)) {
            cx.report.warnings.push(e);
        }
        return Ok(());
    }
    if cx.manifest.broker.is_none() {
        cx.manifest.broker = Some(BrokerStart::Spawned);
    }
    let note = "no systemd: started directly; it will not come back after a reboot";
    match broker::running_pid_at(&pid_file, &occ) {
        Some(_) if !replaced => {
            cx.report.next.push(format!(
                "{note} (run `{} broker --system` as root after a reboot)",
                occ.display()
            ));
            return Ok(());
        }
        Some(_) => {
            if let Some(pid) = broker::stop_at(&pid_file, &occ) {
                cx.change("stop", format!("pid {pid}"), "restart on the new binaries");
            }
        }
        None => {
            // A system broker run from another binary holds the lock; say so, stop nothing.
            if let Some(pid) =
                crate::daemon::files::read_pid(&pid_file).filter(|p| broker::alive(*p))
            {
                let exe = broker::exe_of(pid)
                    .map(|e| e.display().to_string())
                    .unwrap_or_else(|| "?".into());
                cx.report.warnings.push(format!(
                    "a system broker from {exe} is running (pid {pid}), not {}; stop it \
                     (kill {pid}) and run `{} broker --system`",
                    occ.display(),
                    occ.display()
                ));
                return Ok(());
            }
        }
    }
    let mut cmd = std::process::Command::new(&occ);
    cmd.args(["broker", "--system"])
        .env_clear()
        .env("PATH", occ_policy::file::DEFAULT_SECURE_PATH)
        .env("LANG", "C.UTF-8")
        .current_dir("/");
    let ran = tool::run_cmd(&mut cmd, Duration::from_secs(15))
        .map_err(|e| format!("cannot run {} broker --system: {e}", occ.display()))?;
    if !ran.ok() {
        return Err(format!(
            "`{} broker --system` failed ({}); see /var/log/occ/broker.log",
            occ.display(),
            ran.why()
        ));
    }
    let pid = super::wait_up(Duration::from_secs(5))?;
    cx.change(
        "start",
        format!("{} broker --system", occ.display()),
        format!("pid {pid}; {note}"),
    );
    cx.report.next.push(format!(
        "{note} (run `{} broker --system` as root after a reboot)",
        occ.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_json_names_the_agent_and_approvers_and_loads() {
        let text = broker_json("agent-x", &["%ops".into()]).unwrap();
        let cfg = occ_policy::file::BrokerConfig::parse(Path::new("b"), &text).unwrap();
        assert_eq!(cfg.requesters, ["agent-x"]);
        assert_eq!(cfg.approvers, ["%ops"]);
        // Everything else is the template's.
        let tpl = occ_policy::file::BrokerConfig::parse(
            Path::new("t"),
            occ_policy::file::templates::BROKER_CONFIG,
        )
        .unwrap();
        assert_eq!(cfg.approval.stack, tpl.approval.stack);
        // Names are JSON-quoted, never spliced.
        let odd = broker_json("a\"b", &["c\\d".into()]).unwrap();
        let cfg = occ_policy::file::BrokerConfig::parse(Path::new("b"), &odd).unwrap();
        assert_eq!(cfg.requesters, ["a\"b"]);
        assert_eq!(cfg.approvers, ["c\\d"]);
    }

    #[test]
    fn the_command_policy_template_pre_allows_nothing() {
        let p = occ_policy::file::CommandPolicy::parse(
            Path::new("c"),
            occ_policy::file::templates::COMMAND_POLICY,
        )
        .unwrap();
        assert_eq!(p.allow.len(), 0, "every command needs approval");
        assert!(!p.deny.is_empty());
    }
}
