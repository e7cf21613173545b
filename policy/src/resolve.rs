//! Resolution: which file a command name means (secure_path, absolute entries only), whether
//! that file is safe to run with privilege, and which user and group the request targets.
//! It reads file metadata and the user database; it never executes or opens the command.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};

use crate::grammar::SudoRequest;

/// A command found and checked: where it is and which file it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedCommand {
    /// The directory part canonicalised, the final name kept as found (so `/bin/python3`
    /// becomes `/usr/bin/python3` on merged-/usr systems, not `/usr/bin/python3.11`).
    pub path: PathBuf,
    /// The file every symlink leads to (`/usr/bin/python3.11`).
    pub real_path: PathBuf,
    /// Device of the real file, for binding grants.
    pub dev: u64,
    /// Inode of the real file, for binding grants.
    pub ino: u64,
    /// Whether the command was found through `secure_path` (bare-name rules only match then).
    pub via_secure_path: bool,
}

impl ResolvedCommand {
    /// Final component of [`ResolvedCommand::path`].
    pub fn name(&self) -> &str {
        file_name_str(&self.path)
    }
    /// Final component of [`ResolvedCommand::real_path`].
    pub fn real_name(&self) -> &str {
        file_name_str(&self.real_path)
    }
}

fn file_name_str(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// Why resolution failed. `Display` is the line sudo (or occ) prints.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// Nothing runnable by that name: sudo's own message.
    #[error("sudo: {name}: command not found")]
    NotFound {
        /// The name as typed.
        name: String,
    },
    /// Found, but the file or a directory above it could be changed by someone other than root.
    #[error("refusing {path}: {problem}; fix: {fix}")]
    Unsafe {
        /// The command path.
        path: PathBuf,
        /// What is wrong, naming the file or directory.
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
    /// `-u` names no user: sudo's own message.
    #[error("sudo: unknown user {user}")]
    UnknownUser {
        /// As typed (`nosuch`, `#99999`).
        user: String,
    },
    /// `-g` names no group: sudo's own message.
    #[error("sudo: unknown group {group}")]
    UnknownGroup {
        /// As typed.
        group: String,
    },
}

impl ResolveError {
    /// The reason code `occ explain` and the broker report.
    pub fn reason_code(&self) -> &'static str {
        match self {
            ResolveError::NotFound { .. } => "command_not_found",
            ResolveError::Unsafe { .. } => "command_unsafe",
            ResolveError::UnknownUser { .. } => "unknown_user",
            ResolveError::UnknownGroup { .. } => "unknown_group",
        }
    }
}

/// Whether sudo would consider `p` a command: a regular file (after symlinks) with an
/// execute bit.
fn is_runnable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Lexically joins `cwd` and a relative name (no `..` folding: canonicalisation does that).
fn absolute(cwd: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// Canonicalises the directory part and keeps the final name.
fn canon_dir_keep_name(p: &Path) -> Option<PathBuf> {
    let name = p.file_name()?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("/"),
    };
    Some(std::fs::canonicalize(parent).ok()?.join(name))
}

/// Checks one canonical directory and every directory above it: root-owned, not writable by
/// group or others.
fn check_dirs(cmd: &Path, dir: &Path) -> Result<(), ResolveError> {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        let m = std::fs::metadata(d).map_err(|e| ResolveError::Unsafe {
            path: cmd.to_path_buf(),
            problem: format!("cannot stat directory {}: {e}", d.display()),
            fix: format!("make {} a root-owned directory", d.display()),
        })?;
        check_owner_mode(cmd, d, &m, "directory")?;
        cur = d.parent();
    }
    Ok(())
}

fn check_owner_mode(
    cmd: &Path,
    p: &Path,
    m: &std::fs::Metadata,
    what: &str,
) -> Result<(), ResolveError> {
    if m.uid() != 0 {
        return Err(ResolveError::Unsafe {
            path: cmd.to_path_buf(),
            problem: format!(
                "{what} {} is owned by uid {}, not root",
                p.display(),
                m.uid()
            ),
            fix: format!("chown root {}", p.display()),
        });
    }
    if m.mode() & 0o022 != 0 {
        return Err(ResolveError::Unsafe {
            path: cmd.to_path_buf(),
            problem: format!(
                "{what} {} is writable by group or others (mode {:o})",
                p.display(),
                m.mode() & 0o7777
            ),
            fix: format!("chmod go-w {}", p.display()),
        });
    }
    Ok(())
}

/// Resolves a command as sudo would with `secure_path`, then checks it is safe to run.
///
/// A name containing `/` is taken as given (relative to `cwd`); a bare name is looked up in
/// the absolute entries of `secure_path` only. The found file and every directory on the way
/// to it, through each symlink, must be root-owned and not writable by group or others.
pub fn resolve_command(
    name: &str,
    secure_path: &str,
    cwd: &Path,
) -> Result<ResolvedCommand, ResolveError> {
    let not_found = || ResolveError::NotFound {
        name: name.to_string(),
    };
    let (candidate, via_secure_path) = if name.contains('/') {
        let p = absolute(cwd, name);
        if !is_runnable(&p) {
            return Err(not_found());
        }
        (p, false)
    } else {
        if name.is_empty() || name == "." || name == ".." {
            return Err(not_found());
        }
        let found = secure_path
            .split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| Path::new(d).join(name))
            .find(|p| is_runnable(p));
        match found {
            Some(p) => (p, true),
            None => return Err(not_found()),
        }
    };
    let path = canon_dir_keep_name(&candidate).ok_or_else(not_found)?;
    // Walk the symlink chain by hand so every directory a link lives in is checked too.
    let mut cur = path.clone();
    let mut hops = 0;
    loop {
        let dir = cur.parent().unwrap_or(Path::new("/"));
        check_dirs(&path, dir)?;
        let lm = std::fs::symlink_metadata(&cur).map_err(|_| not_found())?;
        if !lm.file_type().is_symlink() {
            break;
        }
        hops += 1;
        if hops > 40 {
            return Err(ResolveError::Unsafe {
                path: path.clone(),
                problem: "too many levels of symbolic links".into(),
                fix: format!("point {} at a real file", path.display()),
            });
        }
        let target = std::fs::read_link(&cur).map_err(|_| not_found())?;
        let next = if target.is_absolute() {
            target
        } else {
            dir.join(target)
        };
        cur = canon_dir_keep_name(&normalize(&next)).ok_or_else(not_found)?;
    }
    let m = std::fs::metadata(&cur).map_err(|_| not_found())?;
    if !m.is_file() || m.permissions().mode() & 0o111 == 0 {
        return Err(not_found());
    }
    check_owner_mode(&path, &cur, &m, "file")?;
    Ok(ResolvedCommand {
        path,
        real_path: cur,
        dev: m.dev(),
        ino: m.ino(),
        via_secure_path,
    })
}

/// Drops `.` components so `dir/./x` keeps `x` as its final name.
fn normalize(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// The user on whose behalf occ is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Login name (or the uid in decimal when it has none).
    pub user: String,
    /// Real uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Login shell, used by `-s`.
    pub shell: PathBuf,
}

impl Caller {
    /// Looks a caller up by uid (as the broker learns it from SO_PEERCRED).
    pub fn from_uid(uid: u32) -> Caller {
        match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(u)) => Caller {
                user: u.name,
                uid,
                gid: u.gid.as_raw(),
                shell: u.shell,
            },
            _ => Caller {
                user: uid.to_string(),
                uid,
                gid: uid,
                shell: PathBuf::from("/bin/sh"),
            },
        }
    }
}

/// Whom the command runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Login name.
    pub user: String,
    /// uid.
    pub uid: u32,
    /// The gid the command gets: `-g`'s, else the user's primary group.
    pub gid: u32,
    /// The group name when `-g` was given.
    pub group: Option<String>,
    /// The target's home directory.
    pub home: PathBuf,
    /// The target's login shell (used by `-i`).
    pub shell: PathBuf,
}

fn parse_hash_id(spec: &str) -> Option<u32> {
    let digits = spec.strip_prefix('#')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // (uid_t)-1 means "no change" to the kernel; sudo refuses it too.
    digits.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

/// Looks a user up by name or `#uid`.
pub fn lookup_user(spec: &str) -> Result<User, ResolveError> {
    let unknown = || ResolveError::UnknownUser {
        user: spec.to_string(),
    };
    let found = match parse_hash_id(spec) {
        Some(uid) => User::from_uid(Uid::from_raw(uid)),
        None if spec.starts_with('#') => return Err(unknown()),
        None => User::from_name(spec),
    };
    found.ok().flatten().ok_or_else(unknown)
}

/// Looks a group up by name or `#gid`.
pub fn lookup_group(spec: &str) -> Result<Group, ResolveError> {
    let unknown = || ResolveError::UnknownGroup {
        group: spec.to_string(),
    };
    let found = match parse_hash_id(spec) {
        Some(gid) => Group::from_gid(Gid::from_raw(gid)),
        None if spec.starts_with('#') => return Err(unknown()),
        None => Group::from_name(spec),
    };
    found.ok().flatten().ok_or_else(unknown)
}

/// The target of a request: `-u`'s user, else the caller when only `-g` is given (as sudo
/// does), else root; the group is `-g`'s, else the user's primary group.
pub fn resolve_target(req: &SudoRequest, caller: &Caller) -> Result<Target, ResolveError> {
    let user = match (&req.user, &req.group) {
        (Some(u), _) => lookup_user(u)?,
        (None, Some(_)) => {
            lookup_user(&caller.user).or_else(|_| lookup_user(&format!("#{}", caller.uid)))?
        }
        (None, None) => lookup_user("root")?,
    };
    let (gid, group) = match &req.group {
        Some(g) => {
            let g = lookup_group(g)?;
            (g.gid.as_raw(), Some(g.name))
        }
        None => (user.gid.as_raw(), None),
    };
    Ok(Target {
        user: user.name,
        uid: user.uid.as_raw(),
        gid,
        group,
        home: user.dir,
        shell: user.shell,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_on_secure_path_and_keeps_its_name() {
        let r = resolve_command("sh", "relative:/usr/bin:/bin", Path::new("/")).expect("sh");
        assert_eq!(r.name(), "sh");
        assert!(r.path.is_absolute());
        assert!(r.via_secure_path);
        assert!(r.ino > 0);
    }

    #[test]
    fn relative_secure_path_entries_are_ignored() {
        let cwd = std::env::temp_dir();
        let e = resolve_command("sh", ".:bin:usr/bin", &cwd).expect_err("relative only");
        assert_eq!(e.to_string(), "sudo: sh: command not found");
    }

    #[test]
    fn missing_command_uses_sudos_message() {
        let e = resolve_command("no-such-cmd-occ", "/usr/bin:/bin", Path::new("/"))
            .expect_err("missing");
        assert_eq!(e.to_string(), "sudo: no-such-cmd-occ: command not found");
        assert_eq!(e.reason_code(), "command_not_found");
        let e = resolve_command("/tmp", "/usr/bin", Path::new("/")).expect_err("dir");
        assert_eq!(e.to_string(), "sudo: /tmp: command not found");
    }

    #[test]
    fn hash_ids_parse_like_sudo() {
        for (spec, want) in [
            ("#0", Some(0)),
            ("#65534", Some(65534)),
            ("#-1", None),
            ("#4294967295", None),
            ("#", None),
            ("#1a", None),
            ("root", None),
        ] {
            assert_eq!(parse_hash_id(spec), want, "{spec}");
        }
    }

    #[test]
    fn unknown_users_and_groups_use_sudos_message() {
        let e = lookup_user("no-such-user-occ").expect_err("user");
        assert_eq!(e.to_string(), "sudo: unknown user no-such-user-occ");
        let e = lookup_user("#-1").expect_err("user");
        assert_eq!(e.to_string(), "sudo: unknown user #-1");
        let e = lookup_group("no-such-group-occ").expect_err("group");
        assert_eq!(e.to_string(), "sudo: unknown group no-such-group-occ");
    }

    #[test]
    fn default_target_is_root_and_group_only_keeps_the_caller() {
        let caller = Caller::from_uid(0);
        let req = crate::grammar::parse(&["true"]).expect("parse");
        let t = resolve_target(&req, &caller).expect("root");
        assert_eq!((t.user.as_str(), t.uid, t.group), ("root", 0, None));
        let req = crate::grammar::parse(&["-g", "#0", "true"]).expect("parse");
        let t = resolve_target(&req, &caller).expect("group");
        assert_eq!(t.user, caller.user);
        assert_eq!(t.gid, 0);
    }
}
