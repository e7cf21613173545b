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

mod judge;
#[cfg(test)]
mod tests;

pub use judge::{judge, Area, Breach, Holds, Judgement};
