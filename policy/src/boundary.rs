//! System mode's boundary, judged one way for `occ doctor --system` and occ-scan's
//! `system_mode_boundary`: the agent has no sudo rights, is no approver, cannot write the
//! broker's files, and the process answering the broker's socket is root.
//!
//! [`gather`] reads files, the user database and one socket's peer credentials; it never runs
//! a program (the caller runs `sudo -l -U` and hands the output to [`parse_sudo_list`]) and
//! never changes anything. [`judge`] is pure.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};

use crate::file::{BrokerConfig, BROKER_CONFIG};

/// Where the system broker and its installed files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPaths {
    /// `/etc/occ`: its existence means system mode is installed.
    pub config_dir: PathBuf,
    /// `/var/lib/occ`.
    pub state_dir: PathBuf,
    /// `/var/log/occ`.
    pub log_dir: PathBuf,
    /// `/run/occ` (its sockets are 0666 by design).
    pub run_dir: PathBuf,
    /// `/run/occ/broker.sock`.
    pub socket: PathBuf,
    /// `/run/occ/broker.pid`.
    pub pid_file: PathBuf,
    /// Files and directories root runs or reads that must be root's alone when present: the
    /// binaries, the shim's directory and the service unit.
    pub installed: Vec<PathBuf>,
    /// `/etc/sudoers`.
    pub sudoers: PathBuf,
    /// `/etc/sudoers.d`.
    pub sudoers_dir: PathBuf,
}

impl SystemPaths {
    /// The real system's paths (DESIGN.md "System mode: paths and boundary").
    pub fn standard() -> SystemPaths {
        let run = PathBuf::from("/run/occ");
        SystemPaths {
            config_dir: PathBuf::from("/etc/occ"),
            state_dir: PathBuf::from("/var/lib/occ"),
            log_dir: PathBuf::from("/var/log/occ"),
            socket: run.join("broker.sock"),
            pid_file: run.join("broker.pid"),
            run_dir: run,
            installed: [
                "/usr/local/bin/occ",
                "/usr/local/bin/occ-scan",
                "/usr/local/lib/occ",
                "/etc/systemd/system/occ-broker.service",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            sudoers: PathBuf::from("/etc/sudoers"),
            sudoers_dir: PathBuf::from("/etc/sudoers.d"),
        }
    }

    /// The directories whose whole tree must be root's: config, state, log, run.
    pub fn trees(&self) -> [&Path; 4] {
        [
            &self.config_dir,
            &self.state_dir,
            &self.log_dir,
            &self.run_dir,
        ]
    }
}

/// What `sudo -l -U USER` said about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SudoSeen {
    /// The rules listed under "may run the following commands" (empty: not allowed to run
    /// sudo).
    Listed(Vec<String>),
    /// There is no sudo on this host.
    NotInstalled,
    /// It could not be listed (not root, sudo failed): why.
    Unknown(String),
}

/// Turns the output of `LC_ALL=C sudo -n -l -U USER` into the rules it lists. `code` is the
/// exit code (`None`: killed). Continuation lines (sudo wraps long rules) are joined.
pub fn parse_sudo_list(code: Option<i32>, stdout: &str, stderr: &str) -> SudoSeen {
    let mut rules: Vec<String> = Vec::new();
    let mut listing = false;
    let mut found_header = false;
    for line in stdout.lines() {
        if line.contains("may run the following commands") {
            listing = true;
            found_header = true;
            continue;
        }
        if !listing {
            continue;
        }
        if line.trim().is_empty() || !line.starts_with(' ') {
            listing = false;
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        match rules.last_mut() {
            // sudo indents a rule by 4 and its wrapped continuation by 8.
            Some(last) if indent > 4 => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => rules.push(line.trim().to_string()),
        }
    }
    if found_header {
        return SudoSeen::Listed(rules);
    }
    let all = format!("{stdout}\n{stderr}");
    if code == Some(0)
        && (all.contains("is not allowed to run sudo") || all.contains("may not run sudo"))
    {
        return SudoSeen::Listed(Vec::new());
    }
    let why = all
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_string();
    SudoSeen::Unknown(match code {
        Some(c) => format!("`sudo -l -U` exited {c}: {why}"),
        None => format!("`sudo -l -U` was killed or timed out: {why}"),
    })
}

/// One requester of the system broker: the user occ gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSeen {
    /// The user name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Every group it is in, by name: its primary group first, then the supplementary ones.
    pub groups: Vec<String>,
    /// Its sudo rights.
    pub sudo: SudoSeen,
    /// Lines of /etc/sudoers and /etc/sudoers.d that name the user or one of its groups
    /// (`FILE:LINE: TEXT`), to point the fix at.
    pub sudoers_lines: Vec<String>,
}

/// `requesters` and `approvers` from `/etc/occ/broker.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSeen {
    /// Who may request.
    pub requesters: Vec<String>,
    /// Who may approve.
    pub approvers: Vec<String>,
    /// Requester entries that name no user or group on this host.
    pub unknown: Vec<String>,
}

/// One path that someone other than root can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathProblem {
    /// The file or directory.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
    /// The command that fixes it.
    pub fix: String,
}

/// What the walk over the broker's files found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesSeen {
    /// Paths that are not root's alone.
    pub problems: Vec<PathProblem>,
    /// Paths that could not be inspected, with why.
    pub unchecked: Vec<String>,
    /// How many paths were inspected.
    pub checked: usize,
}

/// Who answers the broker's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerSeen {
    /// A process accepted the connection; the kernel named it (SO_PEERCRED).
    Answers {
        /// Its pid.
        pid: i32,
        /// Its uid when it listened.
        uid: u32,
        /// Its real, effective, saved and file-system uids now (`/proc/PID/status`), when
        /// readable.
        proc_uids: Option<[u32; 4]>,
        /// The pid in `/run/occ/broker.pid`, when there is one.
        pid_file: Option<u32>,
    },
    /// Nothing accepted a connection: why.
    Silent(String),
}

/// Everything [`judge`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The paths the facts come from.
    pub paths: SystemPaths,
    /// Whether `/etc/occ` exists.
    pub installed: bool,
    /// `requesters` and `approvers`, or why broker.json could not be read.
    pub access: Result<AccessSeen, String>,
    /// The requesting users.
    pub agents: Vec<AgentSeen>,
    /// Ownership and modes of the broker's files.
    pub files: FilesSeen,
    /// The broker.
    pub broker: BrokerSeen,
}

/// Gathers the facts. `sudo_list(user)` runs `sudo -n -l -U user` (as root, `LC_ALL=C`) and
/// returns [`parse_sudo_list`] of its output; it is called once per requesting user.
pub fn gather(paths: &SystemPaths, sudo_list: &dyn Fn(&str) -> SudoSeen) -> Facts {
    let installed = std::fs::symlink_metadata(&paths.config_dir).is_ok();
    let access = read_access(&paths.config_dir);
    let mut agents = Vec::new();
    if let Ok(a) = &access {
        for user in expand_users(&a.requesters) {
            let groups = groups_of(&user);
            let sudo = sudo_list(&user.name);
            let sudoers_lines = sudoers_mentions(paths, &user.name, &groups);
            agents.push(AgentSeen {
                name: user.name,
                uid: user.uid.as_raw(),
                groups,
                sudo,
                sudoers_lines,
            });
        }
    }
    let agent_groups: Vec<String> = agents.iter().flat_map(|a| a.groups.clone()).collect();
    Facts {
        paths: paths.clone(),
        installed,
        access,
        agents,
        files: inspect_files(paths, &agent_groups),
        broker: see_broker(paths),
    }
}

/// broker.json's access lists. The text is read even when its owner or mode is wrong (the
/// files check reports that), so the approvers it names are still judged.
fn read_access(config_dir: &Path) -> Result<AccessSeen, String> {
    let file = config_dir.join(BROKER_CONFIG);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{} is missing, so no one may request or approve",
                file.display()
            ))
        }
        Err(e) => return Err(format!("{}: cannot read: {e}", file.display())),
    };
    let cfg = BrokerConfig::parse(&file, &text).map_err(|e| e.to_string())?;
    let unknown = cfg
        .requesters
        .iter()
        .filter(|e| match e.strip_prefix('%') {
            Some(g) => !matches!(Group::from_name(g), Ok(Some(_))),
            None => !matches!(User::from_name(e), Ok(Some(_))),
        })
        .cloned()
        .collect();
    Ok(AccessSeen {
        requesters: cfg.requesters,
        approvers: cfg.approvers,
        unknown,
    })
}

/// The users a requesters list names: users by name, and the members of each `%group` (its
/// member list and the users whose primary group it is, from /etc/passwd).
fn expand_users(list: &[String]) -> Vec<User> {
    let mut out: Vec<User> = Vec::new();
    let mut add = |u: User| {
        if !out.iter().any(|o| o.uid == u.uid) {
            out.push(u);
        }
    };
    for entry in list {
        match entry.strip_prefix('%') {
            None => {
                if let Ok(Some(u)) = User::from_name(entry) {
                    add(u);
                }
            }
            Some(g) => {
                let Ok(Some(group)) = Group::from_name(g) else {
                    continue;
                };
                for m in &group.mem {
                    if let Ok(Some(u)) = User::from_name(m) {
                        add(u);
                    }
                }
                for name in primary_members("/etc/passwd", group.gid) {
                    if let Ok(Some(u)) = User::from_name(&name) {
                        add(u);
                    }
                }
            }
        }
    }
    out
}

fn primary_members(passwd: &str, gid: Gid) -> Vec<String> {
    let text = std::fs::read_to_string(passwd).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(3)?.parse::<u32>().ok()? == gid.as_raw()).then(|| f[0].to_string())
        })
        .collect()
}

/// Every group `user` is in, by name (primary first).
pub fn groups_of(user: &User) -> Vec<String> {
    let gids = std::ffi::CString::new(user.name.as_bytes())
        .ok()
        .and_then(|n| nix::unistd::getgrouplist(&n, user.gid).ok())
        .unwrap_or_else(|| vec![user.gid]);
    let mut names: Vec<String> = Vec::new();
    for gid in std::iter::once(user.gid).chain(gids) {
        let name = match Group::from_gid(gid) {
            Ok(Some(g)) => g.name,
            _ => gid.to_string(),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The approvers entries that make `name` (in `groups`) an approver: its name, or `%group`
/// for one of its groups.
pub fn approver_entries<'a>(
    approvers: &'a [String],
    name: &str,
    groups: &[String],
) -> Vec<&'a str> {
    approvers
        .iter()
        .filter(|e| match e.strip_prefix('%') {
            Some(g) => groups.iter().any(|mine| mine == g),
            None => e.as_str() == name,
        })
        .map(String::as_str)
        .collect()
}

/// Non-comment lines of the sudoers files that name `user` or `%group` of its groups as a
/// word, so a fix can point at the file.
fn sudoers_mentions(paths: &SystemPaths, user: &str, groups: &[String]) -> Vec<String> {
    let mut files = vec![paths.sudoers.clone()];
    if let Ok(rd) = std::fs::read_dir(&paths.sudoers_dir) {
        let mut names: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            // sudo skips names with a dot or ending in `~` in an includedir.
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.contains('.') && !n.ends_with('~'))
            })
            .collect();
        names.sort();
        files.extend(names);
    }
    let mut words: Vec<String> = vec![user.to_string()];
    words.extend(groups.iter().map(|g| format!("%{g}")));
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let body = line.trim();
            if body.is_empty() || body.starts_with('#') && !body.starts_with("#include") {
                continue;
            }
            let names_it = body
                .split(|c: char| c.is_whitespace() || matches!(c, ',' | '=' | ':' | '(' | ')'))
                .any(|w| words.iter().any(|x| x == w));
            if names_it {
                out.push(format!("{}:{}: {body}", f.display(), i + 1));
            }
        }
    }
    out
}

/// At most this many paths are inspected per tree (a runaway tree is reported, not walked).
const WALK_LIMIT: usize = 20_000;

/// Walks the broker's trees and installed files: every path must be root's and not writable
/// by group or others (the sockets in the run directory excepted); the directories above
/// them must be root's, and writable neither by others nor by a group in `agent_groups`.
pub fn inspect_files(paths: &SystemPaths, agent_groups: &[String]) -> FilesSeen {
    let mut seen = FilesSeen::default();
    let mut ancestors: Vec<PathBuf> = Vec::new();
    let mut roots: Vec<&Path> = paths.trees().to_vec();
    roots.extend(paths.installed.iter().map(PathBuf::as_path));
    for root in &roots {
        let mut a = root.parent();
        while let Some(p) = a {
            if !p.as_os_str().is_empty() && !ancestors.iter().any(|x| x == p) {
                ancestors.push(p.to_path_buf());
            }
            a = p.parent();
        }
    }
    ancestors.sort();
    for a in &ancestors {
        // Followed: a symlinked ancestor (/var/run) is judged by what it leads to; the link
        // itself sits in a directory judged here too.
        match std::fs::metadata(a) {
            Ok(m) => {
                seen.checked += 1;
                judge_path(&mut seen, a, &m, &Rule::Ancestor { agent_groups });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => seen.unchecked.push(format!("{}: {e}", a.display())),
        }
    }
    for root in roots {
        walk(&mut seen, root, root == paths.run_dir);
    }
    seen
}

fn walk(seen: &mut FilesSeen, root: &Path, sockets_open: bool) {
    let mut stack = vec![root.to_path_buf()];
    let mut n = 0;
    while let Some(p) = stack.pop() {
        let m = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                seen.unchecked.push(format!("{}: {e}", p.display()));
                continue;
            }
        };
        n += 1;
        if n > WALK_LIMIT {
            seen.unchecked.push(format!(
                "{}: more than {WALK_LIMIT} entries; the rest were not inspected",
                root.display()
            ));
            return;
        }
        seen.checked += 1;
        let rule = if sockets_open && m.file_type().is_socket() {
            Rule::Socket
        } else {
            Rule::Strict
        };
        judge_path(seen, &p, &m, &rule);
        if m.file_type().is_symlink() {
            seen.problems.push(PathProblem {
                path: p.clone(),
                problem: "is a symbolic link (the broker's files are never links)".into(),
                fix: format!(
                    "rm {} (and put a root-owned file in its place)",
                    p.display()
                ),
            });
            continue;
        }
        if m.is_dir() {
            match std::fs::read_dir(&p) {
                Ok(rd) => {
                    let mut children: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                    children.sort();
                    children.reverse();
                    stack.extend(children);
                }
                Err(e) => seen
                    .unchecked
                    .push(format!("{}: cannot list: {e}", p.display())),
            }
        }
    }
}

/// How strictly one path is judged.
enum Rule<'a> {
    /// The broker's own files: root's, and writable by root alone.
    Strict,
    /// A socket in the run directory: 0666 by design (callers are told apart by the kernel).
    Socket,
    /// A directory above them: root's, and not writable by others or by a group an agent is
    /// in, unless sticky (then only an entry's owner can replace it). /var/log is group
    /// syslog's on some systems; that is a boundary problem only when an agent is in it.
    Ancestor {
        /// Every group an agent is in.
        agent_groups: &'a [String],
    },
}

fn judge_path(seen: &mut FilesSeen, p: &Path, m: &std::fs::Metadata, rule: &Rule) {
    if m.uid() != 0 {
        seen.problems.push(PathProblem {
            path: p.to_path_buf(),
            problem: format!("is owned by {}, not root", user_label(m.uid())),
            fix: format!("chown root:root {}", p.display()),
        });
    }
    if m.file_type().is_symlink() {
        return;
    }
    let group = group_label(m.gid());
    let writable = match rule {
        Rule::Strict => m.mode() & 0o022,
        Rule::Socket => 0,
        Rule::Ancestor { .. } if m.mode() & 0o1000 != 0 => 0,
        Rule::Ancestor { agent_groups } => {
            let by_agent_group = agent_groups.contains(&group);
            (m.mode() & 0o002) | if by_agent_group { m.mode() & 0o020 } else { 0 }
        }
    };
    if writable != 0 {
        let who = match writable {
            0o020 => format!("group {group}"),
            0o002 => "others".to_string(),
            _ => format!("group {group} and others"),
        };
        seen.problems.push(PathProblem {
            path: p.to_path_buf(),
            problem: format!("is writable by {who} (mode {:o})", m.mode() & 0o7777),
            fix: format!("chmod go-w {}", p.display()),
        });
    }
}

fn user_label(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("{} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

fn group_label(gid: u32) -> String {
    match Group::from_gid(Gid::from_raw(gid)) {
        Ok(Some(g)) => g.name,
        _ => format!("gid {gid}"),
    }
}

/// Connects to the broker's socket and asks the kernel who listens on it (SO_PEERCRED), then
/// reads that process's uids from `/proc` and the pid file. The connection is closed at once;
/// the broker logs it at debug level and audits nothing.
pub fn see_broker(paths: &SystemPaths) -> BrokerSeen {
    use nix::sys::socket::{connect, getsockopt, socket, sockopt, AddressFamily};
    use nix::sys::socket::{SockFlag, SockType, UnixAddr};
    let pid_file = std::fs::read_to_string(&paths.pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let addr = match UnixAddr::new(&paths.socket) {
        Ok(a) => a,
        Err(e) => return BrokerSeen::Silent(format!("{}: {e}", paths.socket.display())),
    };
    let fd = match socket(
        AddressFamily::Unix,
        SockType::Stream,
        // Non-blocking: a broker that stopped accepting makes connect fail, not hang.
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    ) {
        Ok(fd) => fd,
        Err(e) => return BrokerSeen::Silent(format!("cannot create a socket: {e}")),
    };
    if let Err(e) = connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
        let why = match e {
            nix::errno::Errno::ENOENT => "no such socket".to_string(),
            nix::errno::Errno::ECONNREFUSED => "connection refused (a stale socket)".into(),
            nix::errno::Errno::EAGAIN => "the broker does not accept connections".into(),
            e => e.desc().to_string(),
        };
        return BrokerSeen::Silent(format!("{}: {why}", paths.socket.display()));
    }
    let cred = match getsockopt(&fd, sockopt::PeerCredentials) {
        Ok(c) => c,
        Err(e) => return BrokerSeen::Silent(format!("SO_PEERCRED failed: {e}")),
    };
    BrokerSeen::Answers {
        pid: cred.pid(),
        uid: cred.uid(),
        proc_uids: proc_uids(cred.pid()),
        pid_file,
    }
}

fn proc_uids(pid: i32) -> Option<[u32; 4]> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let v: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    v.try_into().ok()
}

/// The parts of the boundary, each judged on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Area {
    /// System mode is installed (`/etc/occ`).
    Installed,
    /// broker.json names requesters and approvers.
    Access,
    /// No requester has sudo rights.
    AgentSudo,
    /// No requester is an approver.
    AgentApprover,
    /// The broker's files are root's alone.
    Files,
    /// The broker answering the socket is root.
    Broker,
}

impl Area {
    /// The stable name doctor and scan print.
    pub fn name(self) -> &'static str {
        match self {
            Area::Installed => "system_installed",
            Area::Access => "system_access",
            Area::AgentSudo => "agent_sudo",
            Area::AgentApprover => "agent_approver",
            Area::Files => "system_files",
            Area::Broker => "system_broker",
        }
    }
}

/// One way the boundary does not hold, naming the file, user or rule and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// What was found.
    pub problem: String,
    /// What to do.
    pub fix: String,
}

/// How one area stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// It holds: what was seen.
    Yes(String),
    /// It does not.
    No(Vec<Breach>),
    /// It could not be judged: why.
    Unknown(String),
}

/// One area's judgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Which area.
    pub area: Area,
    /// How it stands.
    pub holds: Holds,
}

/// Judges the facts, one judgement per area, in [`Area`] order. When system mode is not
/// installed that is the only judgement.
pub fn judge(f: &Facts) -> Vec<Judgement> {
    let cfg = f.paths.config_dir.display();
    if !f.installed {
        return vec![Judgement {
            area: Area::Installed,
            holds: Holds::No(vec![Breach {
                problem: format!("system mode is not installed ({cfg} is missing)"),
                fix: "sudo ./install/install.sh --system --agent USER --approver USER".into(),
            }]),
        }];
    }
    let mut out = vec![Judgement {
        area: Area::Installed,
        holds: Holds::Yes(format!("{cfg} exists")),
    }];
    let broker_json = f.paths.config_dir.join(BROKER_CONFIG);
    let reload = "then reload the broker: systemctl reload occ-broker, or kill -HUP $(cat /run/occ/broker.pid)";
    let access = match &f.access {
        Err(e) => Holds::No(vec![Breach {
            problem: e.clone(),
            fix: format!(
                "restore {} (root-owned, mode 600) with requesters and approvers; `occ install \
                 --system` writes it",
                broker_json.display()
            ),
        }]),
        Ok(a) if a.requesters.is_empty() => Holds::Unknown(format!(
            "{} names no requesters, so no agent can use the system broker and there is no \
             agent to judge",
            broker_json.display()
        )),
        Ok(a) if a.approvers.is_empty() => Holds::Unknown(format!(
            "{} names no approvers: only root can approve",
            broker_json.display()
        )),
        Ok(a) => {
            let mut s = format!("requesters {:?}, approvers {:?}", a.requesters, a.approvers);
            if !a.unknown.is_empty() {
                s.push_str(&format!(" ({:?} name no user or group here)", a.unknown));
            }
            Holds::Yes(s)
        }
    };
    out.push(Judgement {
        area: Area::Access,
        holds: access,
    });
    let Ok(access) = &f.access else {
        for area in [Area::AgentSudo, Area::AgentApprover] {
            out.push(Judgement {
                area,
                holds: Holds::Unknown(
                    "broker.json could not be read, so the agents are unknown".into(),
                ),
            });
        }
        out.push(files_judgement(f));
        out.push(broker_judgement(f));
        return out;
    };
    let names: Vec<&str> = f.agents.iter().map(|a| a.name.as_str()).collect();

    // The agents' sudo rights.
    let mut breaches = Vec::new();
    let mut unknown = Vec::new();
    let mut none_sudo = false;
    for a in &f.agents {
        if a.uid == 0 {
            breaches.push(Breach {
                problem: format!("the requester {} is root", a.name),
                fix: format!(
                    "run the agent as an unprivileged user and list that user in {}'s \
                     requesters instead",
                    broker_json.display()
                ),
            });
            continue;
        }
        match &a.sudo {
            SudoSeen::Listed(rules) if !rules.is_empty() => {
                let lines = if a.sudoers_lines.is_empty() {
                    String::new()
                } else {
                    format!(" (named in {})", a.sudoers_lines.join("; "))
                };
                breaches.push(Breach {
                    problem: format!(
                        "`sudo -l -U {}` says it may run: {}{lines}",
                        a.name,
                        rules.join(" | ")
                    ),
                    fix: format!(
                        "remove every sudoers rule that gives {} (or a group it is in) sudo \
                         rights with visudo, until `sudo -l -U {}` says it is not allowed to run \
                         sudo; it asks occ instead",
                        a.name, a.name
                    ),
                });
            }
            SudoSeen::Listed(_) => {}
            SudoSeen::NotInstalled => none_sudo = true,
            SudoSeen::Unknown(why) => unknown.push(format!("{}: {why}", a.name)),
        }
    }
    out.push(Judgement {
        area: Area::AgentSudo,
        holds: if !breaches.is_empty() {
            Holds::No(breaches)
        } else if !unknown.is_empty() {
            Holds::Unknown(format!(
                "cannot list the agents' sudo rights ({}); run as root",
                unknown.join("; ")
            ))
        } else if f.agents.is_empty() {
            Holds::Unknown("no requester is a user on this host".into())
        } else if none_sudo {
            Holds::Yes(format!(
                "no sudo on this host, so {names:?} have no sudo rights"
            ))
        } else {
            Holds::Yes(format!("`sudo -l -U` lists no rules for {names:?}"))
        },
    });

    // The agents as approvers.
    let mut breaches = Vec::new();
    for a in &f.agents {
        for entry in approver_entries(&access.approvers, &a.name, &a.groups) {
            let primary = a.groups.first().map(String::as_str);
            let fix = match entry.strip_prefix('%') {
                Some(g) if Some(g) == primary => format!(
                    "remove \"{entry}\" from approvers in {} ({g} is {}'s primary group); \
                     {reload}",
                    broker_json.display(),
                    a.name
                ),
                Some(g) => format!(
                    "take {} out of group {g} (gpasswd -d {} {g}), or remove \"{entry}\" from \
                     approvers in {}; {reload}",
                    a.name,
                    a.name,
                    broker_json.display()
                ),
                None => format!(
                    "remove \"{entry}\" from approvers in {}; {reload}",
                    broker_json.display()
                ),
            };
            let how = if entry.starts_with('%') {
                format!("through its group (approvers entry \"{entry}\")")
            } else {
                format!("by name (approvers entry \"{entry}\")")
            };
            breaches.push(Breach {
                problem: format!(
                    "the requester {} is also an approver {how}; approvers must be people \
                     other than the agent",
                    a.name
                ),
                fix,
            });
        }
    }
    out.push(Judgement {
        area: Area::AgentApprover,
        holds: if !breaches.is_empty() {
            Holds::No(breaches)
        } else if f.agents.is_empty() {
            Holds::Unknown("no requester is a user on this host".into())
        } else {
            Holds::Yes(format!(
                "no requester of {names:?} is among the approvers {:?}",
                access.approvers
            ))
        },
    });
    out.push(files_judgement(f));
    out.push(broker_judgement(f));
    out
}

fn files_judgement(f: &Facts) -> Judgement {
    let files = &f.files;
    let holds = if !files.problems.is_empty() {
        Holds::No(
            files
                .problems
                .iter()
                .map(|p| Breach {
                    problem: format!("{} {}", p.path.display(), p.problem),
                    fix: p.fix.clone(),
                })
                .collect(),
        )
    } else if !files.unchecked.is_empty() {
        Holds::Unknown(format!(
            "cannot inspect {}; run as root",
            files.unchecked.join("; ")
        ))
    } else {
        let trees: Vec<String> = f
            .paths
            .trees()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Holds::Yes(format!(
            "{} paths under {}, the installed binaries and the directories above them are \
             root's and not writable by group or others",
            files.checked,
            trees.join(", ")
        ))
    };
    Judgement {
        area: Area::Files,
        holds,
    }
}

fn broker_judgement(f: &Facts) -> Judgement {
    let sock = f.paths.socket.display();
    let start = "systemctl restart occ-broker, or where there is no systemd: occ broker --system";
    let holds = match &f.broker {
        BrokerSeen::Silent(why) => Holds::No(vec![Breach {
            problem: format!("nothing answers on {sock} ({why})"),
            fix: format!("start the root service: {start}; see /var/log/occ/broker.log or journalctl -u occ-broker"),
        }]),
        BrokerSeen::Answers {
            pid,
            uid,
            proc_uids,
            pid_file,
        } => {
            let mut b = Vec::new();
            let now_root = proc_uids.is_none_or(|u| u.iter().all(|x| *x == 0));
            if *uid != 0 || !now_root {
                let ids = proc_uids
                    .map(|u| format!(", uids now {u:?}"))
                    .unwrap_or_default();
                b.push(Breach {
                    problem: format!(
                        "the process answering {sock} (pid {pid}) is not root: it listened as {}{ids}",
                        user_label(*uid)
                    ),
                    fix: format!("stop it (kill {pid}) and start the root service: {start}"),
                });
            }
            match pid_file {
                Some(p) if i64::from(*p) != i64::from(*pid) && *pid > 0 => b.push(Breach {
                    problem: format!(
                        "{} names pid {p}, but {sock} is answered by pid {pid}",
                        f.paths.pid_file.display()
                    ),
                    fix: format!("find out what runs as pid {pid} and {p}, stop both, then: {start}"),
                }),
                _ => {}
            }
            if b.is_empty() {
                Holds::Yes(format!("the broker answering {sock} is root (pid {pid})"))
            } else {
                Holds::No(b)
            }
        }
    };
    Judgement {
        area: Area::Broker,
        holds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Matching Defaults entries for a on vm:\n    env_reset, mail_badpass,\n    secure_path=/usr/local/sbin\\:/usr/bin\n\n";

    #[test]
    fn sudo_listings_parse() {
        type Case = (Option<i32>, &'static str, &'static str, SudoSeen);
        let wrapped = "User a may run the following commands on vm:\n    (ALL) NOPASSWD: /usr/bin/id, /bin/sh,\n        /usr/bin/cat\n    (root) /usr/bin/true\n";
        let cases: Vec<Case> = vec![
            (
                Some(0),
                "User a is not allowed to run sudo on vm.\n",
                "",
                SudoSeen::Listed(vec![]),
            ),
            (
                Some(0),
                "Sorry, user a may not run sudo on vm.\n",
                "",
                SudoSeen::Listed(vec![]),
            ),
            (
                Some(0),
                wrapped,
                "",
                SudoSeen::Listed(vec![
                    "(ALL) NOPASSWD: /usr/bin/id, /bin/sh, /usr/bin/cat".into(),
                    "(root) /usr/bin/true".into(),
                ]),
            ),
            (
                Some(1),
                "",
                "sudo: unknown user a\n",
                SudoSeen::Unknown("`sudo -l -U` exited 1: sudo: unknown user a".into()),
            ),
            (
                None,
                "",
                "",
                SudoSeen::Unknown("`sudo -l -U` was killed or timed out: no output".into()),
            ),
        ];
        for (code, out, err, want) in cases {
            assert_eq!(parse_sudo_list(code, out, err), want, "{out}{err}");
        }
        // With the Defaults block before it (what sudo prints first).
        assert_eq!(
            parse_sudo_list(
                Some(0),
                &format!(
                    "{HEADER}User a may run the following commands on vm:\n    (ALL : ALL) ALL\n"
                ),
                ""
            ),
            SudoSeen::Listed(vec!["(ALL : ALL) ALL".into()])
        );
    }

    #[test]
    fn approvers_match_by_name_and_group() {
        let list: Vec<String> = ["alice", "%ops", "%wheel"].map(String::from).to_vec();
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(approver_entries(&list, "alice", &g(&["alice"])), ["alice"]);
        assert_eq!(
            approver_entries(&list, "bob", &g(&["bob", "ops"])),
            ["%ops"]
        );
        assert!(approver_entries(&list, "bob", &g(&["bob", "opsx"])).is_empty());
        assert!(
            approver_entries(&list, "ops", &g(&["ops2"])).is_empty(),
            "a user named like a group"
        );
    }

    fn facts(dir: &Path) -> Facts {
        let mut paths = SystemPaths::standard();
        paths.config_dir = dir.join("etc");
        paths.socket = dir.join("none.sock");
        paths.pid_file = dir.join("none.pid");
        Facts {
            paths,
            installed: true,
            access: Ok(AccessSeen {
                requesters: vec!["agent".into()],
                approvers: vec!["alice".into(), "%ops".into()],
                unknown: vec![],
            }),
            agents: vec![AgentSeen {
                name: "agent".into(),
                uid: 1500,
                groups: vec!["agent".into()],
                sudo: SudoSeen::Listed(vec![]),
                sudoers_lines: vec![],
            }],
            files: FilesSeen {
                problems: vec![],
                unchecked: vec![],
                checked: 9,
            },
            broker: BrokerSeen::Answers {
                pid: 42,
                uid: 0,
                proc_uids: Some([0; 4]),
                pid_file: Some(42),
            },
        }
    }

    fn holds(f: &Facts, area: Area) -> Holds {
        judge(f)
            .into_iter()
            .find(|j| j.area == area)
            .unwrap_or_else(|| panic!("no {area:?}"))
            .holds
    }

    fn breach_text(h: &Holds) -> String {
        match h {
            Holds::No(b) => b
                .iter()
                .map(|b| format!("{} / {}", b.problem, b.fix))
                .collect::<Vec<_>>()
                .join("\n"),
            other => panic!("expected a breach, got {other:?}"),
        }
    }

    #[test]
    fn a_sound_system_holds_in_every_area() {
        let d = Path::new("/nonexistent-occ");
        for j in judge(&facts(d)) {
            assert!(matches!(j.holds, Holds::Yes(_)), "{j:?}");
        }
    }

    /// Each breach the doctor must fail on, one line each: what is changed, the area, and
    /// words the message must carry.
    #[test]
    fn every_breach_names_what_is_wrong_and_the_fix() {
        type Change = fn(&mut Facts);
        let cases: &[(&str, Change, Area, &[&str])] = &[
            (
                "sudo rule",
                |f| {
                    f.agents[0].sudo = SudoSeen::Listed(vec!["(ALL) NOPASSWD: ALL".into()]);
                    f.agents[0].sudoers_lines =
                        vec!["/etc/sudoers.d/x:1: agent ALL=(ALL) NOPASSWD: ALL".into()];
                },
                Area::AgentSudo,
                &["(ALL) NOPASSWD: ALL", "/etc/sudoers.d/x:1", "visudo"],
            ),
            (
                "agent is root",
                |f| f.agents[0].uid = 0,
                Area::AgentSudo,
                &["is root", "unprivileged"],
            ),
            (
                "approver by name",
                |f| {
                    if let Ok(a) = f.access.as_mut() {
                        a.approvers.push("agent".into());
                    }
                },
                Area::AgentApprover,
                &["agent", "by name", "remove \"agent\""],
            ),
            (
                "approver by group",
                |f| f.agents[0].groups.push("ops".into()),
                Area::AgentApprover,
                &["%ops", "gpasswd -d agent ops"],
            ),
            (
                "approver by primary group",
                |f| f.agents[0].groups = vec!["ops".into()],
                Area::AgentApprover,
                &["%ops", "primary group", "remove \"%ops\""],
            ),
            (
                "file owned by the agent",
                |f| {
                    f.files.problems.push(PathProblem {
                        path: "/etc/occ/broker.json".into(),
                        problem: "is owned by agent (uid 1500), not root".into(),
                        fix: "chown root:root /etc/occ/broker.json".into(),
                    })
                },
                Area::Files,
                &["/etc/occ/broker.json", "chown root:root"],
            ),
            (
                "nothing answers",
                |f| f.broker = BrokerSeen::Silent("no such socket".into()),
                Area::Broker,
                &[
                    "nothing answers",
                    "no such socket",
                    "systemctl restart occ-broker",
                ],
            ),
            (
                "broker not root",
                |f| {
                    f.broker = BrokerSeen::Answers {
                        pid: 42,
                        uid: 1500,
                        proc_uids: Some([1500; 4]),
                        pid_file: Some(42),
                    }
                },
                Area::Broker,
                &["not root", "kill 42"],
            ),
            (
                "broker dropped root after listening",
                |f| {
                    f.broker = BrokerSeen::Answers {
                        pid: 42,
                        uid: 0,
                        proc_uids: Some([0, 1500, 0, 1500]),
                        pid_file: Some(42),
                    }
                },
                Area::Broker,
                &["not root", "uids now"],
            ),
            (
                "pid file names another process",
                |f| {
                    f.broker = BrokerSeen::Answers {
                        pid: 42,
                        uid: 0,
                        proc_uids: Some([0; 4]),
                        pid_file: Some(43),
                    }
                },
                Area::Broker,
                &["names pid 43", "pid 42"],
            ),
            (
                "broker.json unreadable",
                |f| f.access = Err("/etc/occ/broker.json: bad".into()),
                Area::Access,
                &["broker.json: bad", "occ install"],
            ),
        ];
        let d = Path::new("/nonexistent-occ");
        for (name, change, area, words) in cases {
            let mut f = facts(d);
            change(&mut f);
            let text = breach_text(&holds(&f, *area));
            for w in *words {
                assert!(text.contains(w), "{name}: `{w}` missing from {text}");
            }
            // Only that area breaks.
            for j in judge(&f) {
                if j.area != *area {
                    assert!(!matches!(j.holds, Holds::No(_)), "{name}: {j:?}");
                }
            }
        }
    }

    #[test]
    fn not_installed_is_the_only_judgement_and_unknowns_are_not_passes() {
        let d = Path::new("/nonexistent-occ");
        let mut f = facts(d);
        f.installed = false;
        let j = judge(&f);
        assert_eq!(j.len(), 1);
        assert!(breach_text(&j[0].holds).contains("install.sh --system"));

        let mut f = facts(d);
        f.agents[0].sudo = SudoSeen::Unknown("needs root".into());
        assert!(
            matches!(holds(&f, Area::AgentSudo), Holds::Unknown(w) if w.contains("needs root"))
        );
        let mut f = facts(d);
        f.files.unchecked.push("/etc/occ: Permission denied".into());
        assert!(matches!(holds(&f, Area::Files), Holds::Unknown(_)));
        let mut f = facts(d);
        f.agents.clear();
        assert!(matches!(holds(&f, Area::AgentApprover), Holds::Unknown(_)));
    }

    #[test]
    fn a_file_walk_finds_foreign_owners_loose_modes_and_links() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let mut paths = SystemPaths::standard();
        let root = d.path().join("etc-occ");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("ok.json"), "{}").unwrap();
        std::fs::write(root.join("loose.json"), "{}").unwrap();
        std::fs::set_permissions(
            root.join("loose.json"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        paths.config_dir = root.clone();
        paths.state_dir = d.path().join("missing-state");
        paths.log_dir = d.path().join("missing-log");
        paths.run_dir = d.path().join("missing-run");
        paths.installed = vec![];
        let seen = inspect_files(&paths, &[]);
        let text: Vec<String> = seen
            .problems
            .iter()
            .map(|p| format!("{} {}", p.path.display(), p.problem))
            .collect();
        let me = nix::unistd::geteuid().as_raw();
        assert!(
            text.iter()
                .any(|t| t.contains("loose.json is writable by group")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("link is a symbolic link")),
            "{text:?}"
        );
        // The temp dir's parents (/tmp is sticky and root's) pass; the tree is ours.
        if me == 0 {
            assert!(!text.iter().any(|t| t.contains("ok.json")), "{text:?}");
        } else {
            assert!(
                text.iter().any(|t| t.contains("ok.json is owned by")),
                "{text:?}"
            );
        }
        assert!(seen.checked >= 4, "{seen:?}");
    }

    /// A directory above the broker's trees that a group can write is a problem only when an
    /// agent is in that group; one anyone can write is a problem unless sticky.
    #[test]
    fn ancestors_are_judged_against_the_agents_groups() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let anc = d.path().join("anc");
        let root = anc.join("etc-occ");
        std::fs::create_dir_all(&root).unwrap();
        let mut paths = SystemPaths::standard();
        paths.config_dir = root;
        paths.state_dir = d.path().join("missing-state");
        paths.log_dir = d.path().join("missing-log");
        paths.run_dir = d.path().join("missing-run");
        paths.installed = vec![];
        let gid = std::fs::metadata(&anc).unwrap().gid();
        let group = group_label(gid);
        let about_anc = |agent_groups: &[String]| -> Vec<String> {
            inspect_files(&paths, agent_groups)
                .problems
                .into_iter()
                .filter(|p| p.path == anc && p.problem.contains("writable"))
                .map(|p| p.problem)
                .collect()
        };
        let set = |mode: u32| {
            std::fs::set_permissions(&anc, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(0o775);
        assert!(about_anc(&[]).is_empty(), "no agent in group {group}");
        let hit = about_anc(std::slice::from_ref(&group));
        assert_eq!(hit.len(), 1, "{hit:?}");
        assert!(
            hit[0].contains(&format!("writable by group {group}")),
            "{hit:?}"
        );
        set(0o757);
        assert!(about_anc(&[])[0].contains("writable by others"));
        set(0o1777);
        assert!(about_anc(&[group]).is_empty(), "sticky");
    }

    #[test]
    fn sudoers_lines_naming_the_user_or_its_groups_are_found() {
        let d = tempfile::tempdir().unwrap();
        let mut paths = SystemPaths::standard();
        paths.sudoers = d.path().join("sudoers");
        paths.sudoers_dir = d.path().join("sudoers.d");
        std::fs::create_dir(&paths.sudoers_dir).unwrap();
        std::fs::write(
            &paths.sudoers,
            "# agent is fine\nroot ALL=(ALL) ALL\n%ops ALL=(ALL) ALL\n",
        )
        .unwrap();
        std::fs::write(
            paths.sudoers_dir.join("x"),
            "agent ALL=(ALL) NOPASSWD: /usr/bin/id\nagentx ALL=(ALL) ALL\n",
        )
        .unwrap();
        std::fs::write(
            paths.sudoers_dir.join("skipped.bak"),
            "agent ALL=(ALL) ALL\n",
        )
        .unwrap();
        let got = sudoers_mentions(&paths, "agent", &["agent".into(), "ops".into()]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with("sudoers:3: %ops ALL=(ALL) ALL"), "{got:?}");
        assert!(got[1].contains("sudoers.d/x:1: agent ALL"), "{got:?}");
    }

    #[test]
    fn a_missing_socket_is_silent() {
        let d = tempfile::tempdir().unwrap();
        let mut paths = SystemPaths::standard();
        paths.socket = d.path().join("broker.sock");
        paths.pid_file = d.path().join("broker.pid");
        assert!(
            matches!(see_broker(&paths), BrokerSeen::Silent(w) if w.contains("no such socket"))
        );
        // A listener of ours: the kernel names this process and uid.
        let _l = std::os::unix::net::UnixListener::bind(&paths.socket).unwrap();
        match see_broker(&paths) {
            BrokerSeen::Answers { pid, uid, .. } => {
                assert_eq!(pid, std::process::id() as i32);
                assert_eq!(uid, nix::unistd::geteuid().as_raw());
            }
            other => panic!("{other:?}"),
        }
    }
}
