//! Risk flags: what an approver is warned of about one request (DESIGN.md "Risk flags"), and
//! the catalogue flags of one command level (name, real file, other names for the same file,
//! argv). It only stats files and reads directories of `secure_path`; it never runs anything,
//! and it never clears a flag the catalogue sets.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};

use crate::file::{CodeRunners, Listed};
use crate::resolve::ResolvedCommand;

/// The flags of one request, in the order [`Flags::names`] lists them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// A shell escape, hook, pager, loader or interpreter (the catalogue), or `-s`/`-i`.
    pub runs_arbitrary_code: bool,
    /// Writes files named in argv or read from stdin.
    pub writes_files: bool,
    /// An argument names a path the requester can change (listed in `requester_writable`).
    pub requester_writable_input: bool,
    /// The command writes files and its stdin is not a terminal: the requester supplies the
    /// content.
    pub stdin_from_requester: bool,
    /// `OPENCLAW_UNTRUSTED_SOURCE=1`.
    pub untrusted: bool,
}

impl Flags {
    /// The names of the flags that are set, in declaration order (`occ explain --json`
    /// `"flags"`, the approver's view, audit events).
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.runs_arbitrary_code, "runs_arbitrary_code"),
            (self.writes_files, "writes_files"),
            (self.requester_writable_input, "requester_writable_input"),
            (self.stdin_from_requester, "stdin_from_requester"),
            (self.untrusted, "untrusted"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    /// Whether a grant for this request may outlive one run as far as these flags go: not
    /// when what runs can change after approval (or runs arbitrary code, or is untrusted).
    pub fn allows_session_grant(&self) -> bool {
        !(self.runs_arbitrary_code
            || self.requester_writable_input
            || self.stdin_from_requester
            || self.untrusted)
    }
}

// ---------------------------------------------------------------------------------------------
// Commands that write files only with certain options

/// One command whose writing depends on its arguments. Short options match anywhere in a
/// cluster (`-sSLo`), which errs towards flagging.
struct WritesWhen {
    name: &'static str,
    long: &'static [&'static str],
    short: &'static [char],
    /// getopt_long: a long option may be abbreviated (`--in-pl`). curl takes none, and a
    /// prefix match there would mistake `--cookie` for `--cookie-jar`.
    abbrev: bool,
    /// A `w`/`W` in a non-option argument may be a script's write command (sed).
    script_write: bool,
}

/// The argv-aware rows; every other listed writer always writes.
const WRITES_WHEN: &[WritesWhen] = &[
    WritesWhen {
        name: "curl",
        long: &[
            "--output",
            "--remote-name",
            "--remote-name-all",
            "--upload-file",
            "--dump-header",
            "--cookie-jar",
            "--trace",
            "--trace-ascii",
            "--stderr",
            "--libcurl",
            "--config",
            "--etag-save",
            "--hsts",
            "--alt-svc",
        ],
        short: &['o', 'O', 'T', 'D', 'c', 'K'],
        abbrev: false,
        script_write: false,
    },
    WritesWhen {
        name: "sed",
        long: &["--in-place", "--file"],
        short: &['i', 'f'],
        abbrev: true,
        script_write: true,
    },
    WritesWhen {
        name: "sort",
        long: &["--output"],
        short: &['o'],
        abbrev: true,
        script_write: false,
    },
];

fn writes_when(name: &str) -> Option<&'static WritesWhen> {
    WRITES_WHEN.iter().find(|w| w.name == name)
}

impl WritesWhen {
    fn writes(&self, args: &[String]) -> bool {
        let mut options = true;
        for a in args {
            if options && a == "--" {
                options = false;
                continue;
            }
            if options && a.starts_with("--") {
                let opt = a.split('=').next().unwrap_or(a);
                let hit = |l: &&str| match self.abbrev {
                    true => opt.len() > 2 && l.starts_with(opt),
                    false => *l == opt,
                };
                if self.long.iter().any(hit) {
                    return true;
                }
            } else if options && a.starts_with('-') && a.len() > 1 {
                if a[1..].chars().any(|c| self.short.contains(&c)) {
                    return true;
                }
            } else if self.script_write && a.contains(['w', 'W']) {
                return true;
            }
        }
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Other names for the listed files

/// What the catalogue says of one file (by device and inode), over all its names in
/// `secure_path`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct AliasEntry {
    listed: Listed,
    /// A name with an argv-aware row ([`WRITES_WHEN`]) leads here.
    writes_when: Option<&'static str>,
}

type AliasMap = HashMap<(u64, u64), AliasEntry>;

/// The alias map of one catalogue, built on first use for one `secure_path` and shared by
/// the catalogue's clones (the builtin catalogue is one per process, so a broker builds it
/// once, not per request). It is rebuilt after [`ALIAS_MAP_TTL`], so a package upgrade that
/// adds or repoints a name is seen within that time.
#[derive(Clone, Debug, Default)]
pub(crate) struct AliasCache(Arc<Mutex<Option<BuiltFor>>>);

/// How long an alias map is trusted before it is read again from `secure_path`.
pub const ALIAS_MAP_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// An alias map, the `secure_path` it was built for, and when.
type BuiltFor = (String, Arc<AliasMap>, std::time::Instant);

impl AliasCache {
    fn get(&self, runners: &CodeRunners, secure_path: &str) -> Arc<AliasMap> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((sp, map, at)) = slot.as_ref() {
            if sp == secure_path && at.elapsed() < ALIAS_MAP_TTL {
                return map.clone();
            }
        }
        let map = Arc::new(build_aliases(runners, secure_path));
        *slot = Some((
            secure_path.to_string(),
            map.clone(),
            std::time::Instant::now(),
        ));
        map
    }
}

/// Every file in an absolute `secure_path` directory whose name the catalogue lists (by
/// name, versioned name or pattern), keyed by the device and inode it leads to: a
/// symlink (`ex` → `/etc/alternatives/ex` → `vim.basic`) or hard link to a listed file
/// shares its flags.
fn build_aliases(runners: &CodeRunners, secure_path: &str) -> AliasMap {
    let mut map = AliasMap::new();
    let mut seen_dirs = Vec::new();
    for dir in secure_path.split(':').filter(|d| d.starts_with('/')) {
        // /bin and /usr/bin are one directory on merged-/usr systems: read it once.
        let Ok(real_dir) = std::fs::canonicalize(dir) else {
            continue;
        };
        if seen_dirs.contains(&real_dir) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&real_dir) else {
            continue;
        };
        seen_dirs.push(real_dir);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let listed = runners.classify(name);
            let when = writes_when(name).map(|w| w.name);
            if !(listed.runs_arbitrary_code || listed.writes_files || when.is_some()) {
                continue;
            }
            let Ok(m) = std::fs::metadata(entry.path()) else {
                continue;
            };
            if !m.is_file() {
                continue;
            }
            let e = map.entry((m.dev(), m.ino())).or_default();
            e.listed = e.listed.or(Listed {
                runs_arbitrary_code: listed.runs_arbitrary_code,
                // An argv-aware writer writes only as its row says.
                writes_files: listed.writes_files && when.is_none(),
            });
            e.writes_when = e.writes_when.or(when);
        }
    }
    map
}

// ---------------------------------------------------------------------------------------------
// One command level

/// The catalogue flags of ONE command level, `(runs_arbitrary_code, writes_files)`: the
/// command `cmd` run with `args` (its arguments, without argv\[0\]). A caller that sees
/// through wrappers (`env rm …`) calls this once per level and ORs the results.
///
/// Matched on the resolved name and the real file name (versioned names too), and on every
/// other name `secure_path` has for the same file (device and inode). Writers with a row in
/// the argv table (`curl -o`, `sed -i`, `sort -o`) write only as their arguments say;
/// every other listed writer always writes.
pub fn command_flags(
    cmd: &ResolvedCommand,
    args: &[String],
    runners: &CodeRunners,
    secure_path: &str,
) -> (bool, bool) {
    let mut code = false;
    let mut writes = false;
    let mut argv_rows: Vec<&'static WritesWhen> = Vec::new();
    for name in [cmd.name(), cmd.real_name()] {
        let listed = runners.classify(name);
        code |= listed.runs_arbitrary_code;
        match writes_when(name) {
            Some(row) => argv_rows.push(row),
            None => writes |= listed.writes_files,
        }
    }
    let aliases = runners.aliases.get(runners, secure_path);
    if let Some(e) = aliases.get(&(cmd.dev, cmd.ino)) {
        code |= e.listed.runs_arbitrary_code;
        writes |= e.listed.writes_files;
        argv_rows.extend(e.writes_when.and_then(writes_when));
    }
    writes |= argv_rows.iter().any(|row| row.writes(args));
    (code, writes)
}

/// How many files the alias map of `runners` holds for `secure_path` (building it if
/// needed), for `occ doctor`-style reports and the cost measurement in the tests.
pub fn alias_count(runners: &CodeRunners, secure_path: &str) -> usize {
    runners.aliases.get(runners, secure_path).len()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::path::Path;

    use super::*;

    /// A command as `resolve` would describe `dir/name`, with the inode it leads to.
    fn cmd(dir: &Path, name: &str) -> ResolvedCommand {
        let path = dir.join(name);
        let real_path = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let (dev, ino) = std::fs::metadata(&path)
            .map(|m| (m.dev(), m.ino()))
            .unwrap_or((0, 0));
        ResolvedCommand {
            path,
            real_path,
            dev,
            ino,
            via_secure_path: true,
        }
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn exe(p: &Path) {
        std::fs::write(p, "#!/bin/true\n").expect("write");
    }

    #[test]
    fn names_follow_declaration_order() {
        let all = Flags {
            runs_arbitrary_code: true,
            writes_files: true,
            requester_writable_input: true,
            stdin_from_requester: true,
            untrusted: true,
        };
        assert_eq!(
            all.names(),
            [
                "runs_arbitrary_code",
                "writes_files",
                "requester_writable_input",
                "stdin_from_requester",
                "untrusted"
            ]
        );
        let some = Flags {
            writes_files: true,
            stdin_from_requester: true,
            ..Flags::default()
        };
        assert_eq!(some.names(), ["writes_files", "stdin_from_requester"]);
        assert!(Flags::default().names().is_empty());
        assert!(Flags::default().allows_session_grant());
        let writes = Flags {
            writes_files: true,
            ..Flags::default()
        };
        assert!(
            writes.allows_session_grant(),
            "writing alone keeps sessions"
        );
        assert!(!some.allows_session_grant());
    }

    /// Every name review found missing, and the compilers by any version or prefix.
    #[test]
    fn review_holes_are_flagged_runs_arbitrary_code() {
        let cr = CodeRunners::builtin();
        for name in [
            "ex",
            "rvim",
            "vim.basic",
            "editor",
            "sensible-editor",
            "setarch",
            "linux64",
            "linux32",
            "ld.so",
            "ld-linux-x86-64.so.2",
            "run-parts",
            "logsave",
            "x86_64-linux-gnu-gcc-12",
            "aarch64-linux-gnu-gcc",
            "gcc",
            "gcc-12",
            "g++",
            "g++-12",
            "c++",
            "cc",
            "clang-16",
            "perf",
            "systemctl",
            "journalctl",
            "dmesg",
            "busctl",
            "service",
            "mount",
            "ip",
            "sort",
            "split",
            "sqlite3",
            "perldoc",
            "cpan",
            "openssl",
            // Kept from version 1.
            "sh",
            "python3.11",
            "env",
            "nice",
            "find",
            "git",
            "tar",
            "apt-get",
            "visudo",
        ] {
            assert!(cr.lists(name), "{name} must be flagged runs_arbitrary_code");
        }
        for name in ["ls", "cat", "true", "id", "tee", "chmod", "gccx"] {
            assert!(!cr.lists(name), "{name} runs no code of its own");
        }
    }

    #[test]
    fn writers_are_listed() {
        let cr = CodeRunners::builtin();
        for name in [
            "tee", "dd", "cp", "mv", "install", "chmod", "chown", "chgrp", "setcap", "truncate",
            "ln", "rsync", "wget", "curl", "sed", "tar", "unzip", "patch",
        ] {
            assert!(cr.writes(name), "{name} must be listed under writes_files");
        }
        for name in ["ls", "cat", "id", "true", "systemd-cat"] {
            assert!(!cr.writes(name), "{name} writes no files");
        }
    }

    /// One line per case: command name, its arguments, whether it writes files.
    #[test]
    fn writes_files_reads_argv_where_it_must() {
        let cr = CodeRunners::builtin();
        // An empty secure_path directory: no aliases, only names and argv decide.
        let empty = tempfile::tempdir().expect("tempdir");
        let sp = empty.path().to_string_lossy().into_owned();
        for (name, a, want) in [
            ("curl", &["https://example.org/"][..], false),
            ("curl", &["-o", "/etc/x", "https://e/"], true),
            ("curl", &["-sSLo", "/etc/x", "https://e/"], true),
            ("curl", &["--output", "/etc/x", "https://e/"], true),
            ("curl", &["-O", "https://e/x"], true),
            ("curl", &["--remote-name", "https://e/x"], true),
            ("curl", &["-T", "/tmp/a", "file:///etc/x"], true),
            ("curl", &["-K", "/tmp/cfg"], true),
            ("curl", &["--cookie", "a=b", "https://e/"], false),
            ("curl", &["-sSL", "https://e/"], false),
            ("curl", &["--", "-o"], false),
            ("wget", &["https://e/"], true),
            ("sed", &["-n", "1p", "/etc/hosts"], false),
            ("sed", &["-i", "s/a/b/", "/etc/hosts"], true),
            ("sed", &["--in-place=.bak", "s/a/b/", "/etc/x"], true),
            ("sed", &["--in-pl", "s/a/b/", "/etc/x"], true),
            ("sed", &["-ni", "s/a/b/", "/etc/x"], true),
            ("sed", &["s/a/b/w /etc/x", "/etc/hosts"], true),
            ("sed", &["-f", "/tmp/script", "/etc/hosts"], true),
            ("sort", &["-n", "/etc/hosts"], false),
            ("sort", &["-o", "/etc/x", "/etc/hosts"], true),
            ("sort", &["--output=/etc/x", "/etc/hosts"], true),
            ("sort", &["-no/etc/x", "/etc/hosts"], true),
            ("tee", &["/etc/x"], true),
            ("dd", &["of=/etc/x"], true),
            ("cp", &["a", "b"], true),
            ("chmod", &["600", "/etc/x"], true),
            ("cat", &["/etc/hosts"], false),
            ("ls", &["-o"], false),
        ] {
            let c = cmd(empty.path(), name);
            let (_, writes) = command_flags(&c, &args(a), &cr, &sp);
            assert_eq!(writes, want, "{name} {a:?}");
        }
    }

    /// A name that leads to the same file as a listed one inherits its flags: by symlink
    /// (`ex` → `vim.basic`), by hard link, and through an argv-aware writer.
    #[test]
    fn other_names_for_a_listed_file_inherit_its_flags() {
        let cr = CodeRunners::builtin();
        let d = tempfile::tempdir().expect("tempdir");
        let bin = d.path().join("bin");
        let alt = d.path().join("alternatives");
        std::fs::create_dir_all(&bin).expect("bin");
        std::fs::create_dir_all(&alt).expect("alt");
        // An unlisted real name, reached from a listed one through two links, as Debian's
        // alternatives do: bin/vi -> alternatives/vi -> bin/vimish.
        exe(&bin.join("vimish"));
        symlink(bin.join("vimish"), alt.join("vi")).expect("link");
        symlink(alt.join("vi"), bin.join("vi")).expect("link");
        // Another unlisted name for it, by hard link.
        std::fs::hard_link(bin.join("vimish"), bin.join("myedit")).expect("hard link");
        // An argv-aware writer under an unlisted real name, and another name for it.
        exe(&bin.join("fetcher"));
        symlink(bin.join("fetcher"), bin.join("curl")).expect("link");
        // A file nothing listed leads to.
        exe(&bin.join("plain"));
        let sp = format!("relative:{}", bin.display());
        let flags = |name: &str, a: &[&str]| command_flags(&cmd(&bin, name), &args(a), &cr, &sp);

        assert_eq!(flags("vimish", &[]), (true, true), "vi's file is vi");
        assert_eq!(
            flags("myedit", &[]),
            (true, true),
            "a hard link to vi's file"
        );
        // curl is also a code runner (GTFOBins: library-load); its writing follows argv.
        assert_eq!(flags("fetcher", &["https://e/"]), (true, false));
        assert_eq!(
            flags("fetcher", &["-o", "/etc/x", "https://e/"]),
            (true, true)
        );
        assert_eq!(flags("plain", &["/etc/x"]), (false, false));
        assert!(alias_count(&cr, &sp) >= 2);

        // Without the listed name, nothing is inherited: the test can fail.
        let other = tempfile::tempdir().expect("tempdir");
        let sp2 = other.path().to_string_lossy().into_owned();
        let c = cmd(&bin, "myedit");
        assert_eq!(command_flags(&c, &[], &cr, &sp2), (false, false));
    }

    /// On this host: `ex`, `vi`, `view` and `editor` lead to one editor when installed.
    #[test]
    fn host_editor_names_are_flagged_when_present() {
        let cr = CodeRunners::builtin();
        let sp = crate::file::DEFAULT_SECURE_PATH;
        for name in [
            "ex",
            "vi",
            "view",
            "editor",
            "vim.basic",
            "rvim",
            "setarch",
            "ld.so",
        ] {
            match crate::resolve::resolve_command(name, sp, Path::new("/")) {
                Ok(c) => {
                    let (code, _) = command_flags(&c, &[], &cr, sp);
                    assert!(
                        code,
                        "{name} ({}) must run arbitrary code",
                        c.real_path.display()
                    );
                }
                Err(_) => eprintln!("note: {name} is not installed here"),
            }
        }
    }

    /// The alias map reads each secure_path directory once; building it must stay cheap.
    #[test]
    fn alias_map_is_built_once_and_cheaply() {
        let cr = CodeRunners::builtin();
        let sp = crate::file::DEFAULT_SECURE_PATH;
        let t = std::time::Instant::now();
        let n = alias_count(&cr, sp);
        let first = t.elapsed();
        let t = std::time::Instant::now();
        let again = alias_count(&cr.clone(), sp);
        let cached = t.elapsed();
        eprintln!("alias map: {n} files in {first:?}; cached lookup {cached:?}");
        assert_eq!(n, again);
        assert!(first < std::time::Duration::from_secs(2), "{first:?}");
    }
}
