//! `requester_writable_input`: which arguments name a path the requester could change after
//! approval: the file itself, or any directory above it, judged as the requester's uid and
//! groups by ownership and mode bits. It only stats paths and reads the user database; it
//! never opens or changes anything. ACLs are not read.

use std::ffi::CString;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use nix::unistd::{getgrouplist, Gid};

use crate::resolve::Caller;

/// At most this many candidate paths are checked per request: the work stays bounded
/// whatever the argv.
pub const MAX_PATHS_CHECKED: usize = 64;

/// Who could change a path: the requester's uid and every group it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    /// The requester's uid (root is never judged: it can change anything anyway).
    pub uid: u32,
    /// The primary gid and the supplementary groups from the user database.
    pub gids: Vec<u32>,
}

impl Requester {
    /// The caller's uid and groups (`getgrouplist`; the primary gid alone when the user
    /// database has no such user).
    pub fn of(caller: &Caller) -> Requester {
        let mut gids = vec![caller.gid];
        if let Ok(name) = CString::new(caller.user.as_str()) {
            if let Ok(list) = getgrouplist(&name, Gid::from_raw(caller.gid)) {
                gids.extend(list.into_iter().map(Gid::as_raw));
            }
        }
        gids.sort_unstable();
        gids.dedup();
        Requester {
            uid: caller.uid,
            gids,
        }
    }

    /// Whether the requester can change this inode's content or entries: it owns it (and so
    /// can chmod it), or a group or other write bit lets it.
    fn can_write(&self, m: &Metadata) -> bool {
        let mode = m.mode();
        m.uid() == self.uid
            || (mode & 0o020 != 0 && self.gids.contains(&m.gid()))
            || mode & 0o002 != 0
    }

    /// Whether the requester can replace or remove `child`, an entry of directory `parent`:
    /// `parent` is writable to it, and not sticky against it (`/tmp`).
    fn can_replace(&self, child: &Metadata, parent: &Metadata) -> bool {
        self.can_write(parent)
            && (parent.mode() & 0o1000 == 0 || child.uid() == self.uid || parent.uid() == self.uid)
    }
}

/// The arguments (absolute paths, as the command will see them from `cwd`) that name a path
/// the requester can change, or one under a directory it can change. A root requester gets
/// none.
///
/// Candidates: absolute paths; words containing `/`; words that exist relative to `cwd`; the
/// value of `--opt=VALUE` and `key=VALUE` (dd's `of=`); `file://` URLs; the path glued to a
/// short option (`-o/tmp/x`); and the same within an argument holding several words
/// (`sh -c '…'`). A path that does not exist is judged by its nearest existing ancestor: if
/// the requester can create it, it can decide its content.
pub fn requester_writable(args: &[String], cwd: &Path, who: &Requester) -> Vec<String> {
    if who.uid == 0 {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    let mut checked = 0usize;
    for arg in args {
        let words: Vec<&str> = if arg.contains(char::is_whitespace) {
            arg.split_whitespace().collect()
        } else {
            vec![arg.as_str()]
        };
        for word in words {
            for path in candidates(word, cwd) {
                if checked >= MAX_PATHS_CHECKED {
                    return out;
                }
                checked += 1;
                let shown = path.to_string_lossy().into_owned();
                if !out.contains(&shown) && changeable(&path, who, 0) {
                    out.push(shown);
                }
            }
        }
    }
    out
}

/// The paths one word may name.
fn candidates(word: &str, cwd: &Path) -> Vec<PathBuf> {
    let word = word
        .trim_start_matches(['<', '>', '|', '&', ';', '(', '\'', '"', '`'])
        .trim_end_matches([';', ')', '&', '|', '\'', '"', '`']);
    if word.is_empty() {
        return Vec::new();
    }
    let exists = |w: &str| std::fs::symlink_metadata(join(cwd, w)).is_ok();
    if word.starts_with('/') || exists(word) {
        return vec![join(cwd, word)];
    }
    if let Some((scheme, rest)) = word.split_once("://") {
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        {
            if !scheme.eq_ignore_ascii_case("file") {
                return Vec::new();
            }
            // file:///p and file://localhost/p name /p.
            return rest
                .find('/')
                .map(|i| vec![PathBuf::from(&rest[i..])])
                .unwrap_or_default();
        }
    }
    if let Some((key, value)) = word.split_once('=') {
        if !key.contains('/') {
            if !value.is_empty() && (value.contains('/') || exists(value)) {
                return vec![join(cwd, value)];
            }
            return Vec::new();
        }
    }
    if word.starts_with('-') {
        return word
            .find('/')
            .map(|i| vec![PathBuf::from(&word[i..])])
            .unwrap_or_default();
    }
    if word.contains('/') {
        return vec![join(cwd, word)];
    }
    Vec::new()
}

/// `cwd` joined with a relative word, `.` dropped (`..` kept: the kernel walks it).
fn join(cwd: &Path, word: &str) -> PathBuf {
    let p = Path::new(word);
    let full = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    full.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// How many symlinks [`changeable`] follows by hand (dangling ones included).
const MAX_LINKS: usize = 8;

/// Whether the requester can change what `path` names: the inode itself, its creation when
/// it does not exist, or any entry on the way to it (through symlinks too, dangling or not).
fn changeable(path: &Path, who: &Requester, links: usize) -> bool {
    // The nearest existing path, lexically.
    let mut existing = path.to_path_buf();
    let mut missing = false;
    let lm = loop {
        match std::fs::symlink_metadata(&existing) {
            Ok(m) => break m,
            Err(_) => {
                missing = true;
                match existing.parent() {
                    Some(p) => existing = p.to_path_buf(),
                    None => return false,
                }
            }
        }
    };
    if lm.file_type().is_symlink() && links < MAX_LINKS {
        if let Ok(target) = std::fs::read_link(&existing) {
            let dir = existing.parent().unwrap_or(Path::new("/"));
            let mut next = dir.join(target);
            if missing {
                if let Ok(rest) = path.strip_prefix(&existing) {
                    next = next.join(rest);
                }
            }
            if changeable(&next, who, links + 1) {
                return true;
            }
        }
    }
    // The inode at the end: writable content, or (missing) a directory it can create in.
    if let Ok(m) = std::fs::metadata(&existing) {
        let device = m.file_type().is_char_device() || m.file_type().is_block_device();
        let inode = if missing { m.is_dir() } else { !device };
        if inode && who.can_write(&m) {
            return true;
        }
    }
    // Every entry on the way, as written and as resolved.
    let mut chains = vec![existing.clone()];
    if let Some(r) = std::fs::canonicalize(&existing)
        .ok()
        .filter(|r| *r != existing)
    {
        chains.push(r);
    }
    chains.iter().any(|p| entry_replaceable(p, who))
}

/// Whether any component of `path` (which exists) sits in a directory that lets the
/// requester replace it.
fn entry_replaceable(path: &Path, who: &Requester) -> bool {
    let mut child = path;
    while let Some(parent) = child.parent() {
        let (Ok(cm), Ok(pm)) = (std::fs::symlink_metadata(child), std::fs::metadata(parent)) else {
            return false;
        };
        if who.can_replace(&cm, &pm) {
            return true;
        }
        child = parent;
    }
    false
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn nobody() -> Option<Requester> {
        let u = nix::unistd::User::from_name("nobody").ok().flatten()?;
        Some(Requester::of(&Caller {
            user: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            shell: u.shell,
        }))
    }

    fn mode(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    }

    fn skip_unless_root(name: &str) -> bool {
        if nix::unistd::geteuid().is_root() {
            return false;
        }
        assert!(
            std::env::var("OCC_REQUIRE_FULL_TESTS").as_deref() != Ok("1"),
            "SKIP not allowed under OCC_REQUIRE_FULL_TESTS=1: {name} needs root"
        );
        eprintln!("SKIP: needs root ({name})");
        true
    }

    /// One line per case: the argument, the cwd under the test directory, whether `nobody`
    /// could change what it names.
    #[test]
    fn requester_writable_table_needs_root() {
        if skip_unless_root("requester_writable_table_needs_root") {
            return;
        }
        let who = nobody().expect("a nobody user");
        let d = tempfile::tempdir().expect("tempdir");
        let b = d.path();
        mode(b, 0o755);
        let mk = |p: &str, m: u32| {
            let p = b.join(p);
            std::fs::create_dir_all(&p).expect("mkdir");
            mode(&p, m);
        };
        let file = |p: &str, m: u32| {
            let p = b.join(p);
            std::fs::write(&p, "x").expect("write");
            mode(&p, m);
        };
        mk("open", 0o777);
        mk("closed", 0o755);
        mk("sticky", 0o1777);
        mk("grp", 0o770);
        mk("grp_ro", 0o750);
        file("closed/f", 0o644);
        file("closed/world", 0o666);
        file("sticky/g", 0o644);
        file("closed/mine", 0o600);
        std::os::unix::fs::chown(b.join("closed/mine"), Some(who.uid), None).expect("chown");
        std::os::unix::fs::chown(b.join("grp"), None, Some(who.gids[0])).expect("chgrp");
        std::os::unix::fs::chown(b.join("grp_ro"), None, Some(who.gids[0])).expect("chgrp");
        std::fs::write(b.join("open/y"), "y").expect("write");
        symlink(b.join("open/t"), b.join("closed/link")).expect("symlink");
        let p = |s: &str| b.join(s).to_string_lossy().into_owned();
        let cases: Vec<(String, &str, Option<String>)> = vec![
            (p("closed/f"), "", None),
            (p("closed/world"), "", Some(p("closed/world"))),
            (p("closed/mine"), "", Some(p("closed/mine"))),
            (p("closed/new"), "", None),
            (p("open"), "", Some(p("open"))),
            (p("open/new/deeper"), "", Some(p("open/new/deeper"))),
            (p("sticky/g"), "", None),
            (p("sticky/new"), "", Some(p("sticky/new"))),
            (p("grp/x"), "", Some(p("grp/x"))),
            (p("grp_ro/x"), "", None),
            (p("closed/link"), "", Some(p("closed/link"))),
            ("y".into(), "open", Some(p("open/y"))),
            ("./z".into(), "open", Some(p("open/z"))),
            ("z".into(), "open", None),
            ("f".into(), "closed", None),
            (format!("of={}", p("open/img")), "", Some(p("open/img"))),
            (format!("--output={}", p("open/o")), "", Some(p("open/o"))),
            (format!("-o{}", p("open/o2")), "", Some(p("open/o2"))),
            (format!("file://{}", p("open/u")), "", Some(p("open/u"))),
            ("https://example.org/a/b".into(), "open", None),
            ("/dev/null".into(), "", None),
            (
                format!("cat {} > /dev/null", p("open/y")),
                "",
                Some(p("open/y")),
            ),
            (format!("cat {}", p("closed/f")), "", None),
        ];
        for (arg, cwd, want) in cases {
            let got = requester_writable(std::slice::from_ref(&arg), &b.join(cwd), &who);
            assert_eq!(
                got,
                want.into_iter().collect::<Vec<_>>(),
                "{arg} in {cwd:?}"
            );
        }
        // Root as the requester: nothing is flagged.
        let root = Requester::of(&Caller::from_uid(0));
        assert!(requester_writable(&[p("open"), p("closed/mine")], b, &root).is_empty());
        // The work is bounded.
        let many: Vec<String> = (0..200).map(|i| p(&format!("open/{i}"))).collect();
        assert_eq!(requester_writable(&many, b, &who).len(), MAX_PATHS_CHECKED);
    }

    #[test]
    fn requester_groups_include_the_primary_gid() {
        let r = Requester::of(&Caller::from_uid(0));
        assert!(r.gids.contains(&0));
        let r = Requester::of(&Caller {
            user: "no-such-user-occ".into(),
            uid: 4242,
            gid: 4243,
            shell: PathBuf::from("/bin/sh"),
        });
        assert_eq!(r.gids, vec![4243]);
    }
}
