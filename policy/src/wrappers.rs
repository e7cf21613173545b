//! Seeing through wrappers: commands whose job is to run another command (`env`, `nice`,
//! `ionice`, `nohup`, `timeout`, `stdbuf`, `chrt`, `taskset`, `setarch` and its aliases,
//! `setsid`, `flock`, `time`, `prlimit`, the dynamic loader run as a program, busybox applets).
//! For each, occ reads the wrapper's own options the way its getopt does, finds the wrapped argv
//! and resolves it, again and again while the wrapped command is itself a wrapper. Deny rules
//! then look at every level, and the approver sees them as `wraps`.
//!
//! What cannot be read with certainty is said so (`Unwrapped::unreadable`): an option the
//! wrapper does not have, a command string expanded at run time (`env -S '$X'`), a wrapped
//! command that does not resolve safely, assignments that load code (`env LD_PRELOAD=…`). The
//! request is then `runs_arbitrary_code`; a wrapper form is never passed as harmless unread.

use std::path::{Path, PathBuf};

use crate::resolve::{self, ResolvedCommand};
use crate::rule::split_words;

mod getopt;
use getopt::{getopt, has, Spec};

/// How deep wrappers are followed before the form counts as unreadable.
pub const MAX_DEPTH: usize = 8;

/// One wrapped command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    /// The argv that runs at this level; argv\[0\] is the resolved absolute path when it
    /// resolved, else the word as written.
    pub argv: Vec<String>,
    /// The resolved command, or a stand-in named as written when it did not resolve.
    pub command: ResolvedCommand,
    /// Whether `command` is a real, safely resolved file.
    pub resolved: bool,
    /// Whether this level is itself a wrapper occ read through.
    pub wrapper: bool,
}

/// What a request wraps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unwrapped {
    /// Every wrapped level, outermost first (the request itself is not in it).
    pub levels: Vec<Level>,
    /// Whether the request itself is a wrapper occ read through.
    pub outer_is_wrapper: bool,
    /// Why part of the chain could not be read with certainty, when it could not.
    pub unreadable: Option<String>,
}

impl Unwrapped {
    /// The argvs the approver is shown, outermost first.
    pub fn wraps(&self) -> Vec<Vec<String>> {
        self.levels.iter().map(|l| l.argv.clone()).collect()
    }
}

/// The wrappers occ reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Env,
    Nice,
    Ionice,
    Nohup,
    Timeout,
    Stdbuf,
    Chrt,
    Taskset,
    /// `setarch ARCH …`; `implied` when run as `linux64`, `i386`, … (no ARCH word).
    Setarch {
        implied: bool,
    },
    Setsid,
    Flock,
    Time,
    Prlimit,
    Loader,
    Busybox,
}

fn kind_of(name: &str) -> Option<Kind> {
    Some(match name {
        "env" => Kind::Env,
        "nice" => Kind::Nice,
        "ionice" => Kind::Ionice,
        "nohup" => Kind::Nohup,
        "timeout" => Kind::Timeout,
        "stdbuf" => Kind::Stdbuf,
        "chrt" => Kind::Chrt,
        "taskset" => Kind::Taskset,
        "setarch" => Kind::Setarch { implied: false },
        "linux32" | "linux64" | "i386" | "x86_64" | "i686" | "uname26" | "aarch64" | "arm64"
        | "armv7l" | "armv8l" | "ppc64" | "ppc64le" | "s390x" | "riscv64" => {
            Kind::Setarch { implied: true }
        }
        "setsid" => Kind::Setsid,
        "flock" => Kind::Flock,
        "time" => Kind::Time,
        "prlimit" => Kind::Prlimit,
        "busybox" => Kind::Busybox,
        n if is_loader_name(n) => Kind::Loader,
        _ => return None,
    })
}

/// `ld.so`, `ld-linux-x86-64.so.2`, `ld-linux.so.2`, `ld-linux-aarch64.so.1`, `ld64.so.2`,
/// `ld-musl-x86_64.so.1`.
fn is_loader_name(n: &str) -> bool {
    n == "ld.so" || ((n.starts_with("ld-") || n.starts_with("ld64.")) && n.contains(".so"))
}

/// Which wrapper a command is: its name as invoked first (`linux64` is setarch with an arch,
/// a busybox applet link is that applet), then its real file's name.
fn kind_of_command(cmd: &ResolvedCommand) -> Option<Kind> {
    if let Some(k) = kind_of(cmd.name()) {
        return Some(k);
    }
    if cmd.real_name() == "busybox" && cmd.name() != "busybox" {
        return None;
    }
    match kind_of(cmd.real_name()) {
        // `/usr/bin/x86_64` leads to setarch: the name carried the arch.
        Some(Kind::Setarch { .. }) if cmd.name() != "setarch" => {
            Some(Kind::Setarch { implied: true })
        }
        k => k,
    }
}

/// Whether `cmd` is one of the wrappers occ reads through.
pub fn is_wrapper(cmd: &ResolvedCommand) -> bool {
    kind_of_command(cmd).is_some()
}

/// What one wrapper wraps.
enum Inner {
    /// Nothing runs beyond the wrapper (it prints, or works on a pid).
    Nothing,
    /// This argv runs; bare names are looked up in `path` (`None`: secure_path), relative
    /// paths from `cwd` (`None`: the request's).
    Runs {
        argv: Vec<String>,
        path: Option<String>,
        cwd: Option<String>,
        /// Set when the wrapper's options load or run code of their own.
        loads_code: Option<String>,
        /// The loader runs files that need no execute bit, and names are files, not commands.
        loader: bool,
    },
}

fn runs(argv: &[String]) -> Inner {
    Inner::Runs {
        argv: argv.to_vec(),
        path: None,
        cwd: None,
        loads_code: None,
        loader: false,
    }
}

fn runs_or_nothing(argv: &[String]) -> Inner {
    if argv.is_empty() {
        Inner::Nothing
    } else {
        runs(argv)
    }
}

const HELP: &[&str] = &["help", "version"];

/// Assignments through which a wrapped command loads code it was not asked to run.
fn loads_code_var(name: &str) -> bool {
    name.starts_with("LD_")
        || name.starts_with("GCONV")
        || name.starts_with("MALLOC")
        || name.starts_with("GLIBC_TUNABLES")
        || name.contains("PATH")
        || name.contains("LIB")
        || name.contains("OPT")
        || matches!(
            name,
            "BASH_ENV"
                | "ENV"
                | "SHELLOPTS"
                | "BASHOPTS"
                | "PS4"
                | "IFS"
                | "PYTHONSTARTUP"
                | "PYTHONHOME"
                | "PERL5DB"
                | "RUBYOPT"
                | "NODE_OPTIONS"
                | "LUA_INIT"
                | "EDITOR"
                | "VISUAL"
                | "PAGER"
                | "MANPAGER"
                | "SYSTEMD_PAGER"
                | "GIT_PAGER"
                | "LESSOPEN"
                | "LESSCLOSE"
                | "HOSTALIASES"
        )
}

fn read_env(args: &[String], splits: usize) -> Result<Inner, String> {
    const SPEC: Spec = Spec {
        short_arg: "uCS",
        short_opt: "",
        short_flag: "i0v",
        long_arg: &["unset", "chdir", "split-string"],
        long_opt: &["block-signal", "default-signal", "ignore-signal"],
        long_flag: &[
            "ignore-environment",
            "null",
            "debug",
            "list-signal-handling",
            "help",
            "version",
        ],
    };
    let (opts, mut i) = getopt(args, &SPEC)?;
    if has(&opts, &["--help", "--version", "--list-signal-handling"]) {
        return Ok(Inner::Nothing);
    }
    if let Some((_, Some(s))) = opts
        .iter()
        .find(|(o, _)| o == "-S" || o == "--split-string")
    {
        // -S splits its string into words and reads them as if they were env's arguments.
        if splits >= 4 || s.contains(['$', '\\', '#', '`']) {
            return Err(format!(
                "env -S {s:?} is expanded at run time (variables, escapes or comments)"
            ));
        }
        let mut again: Vec<String> = opts
            .iter()
            .filter(|(o, _)| o != "-S" && o != "--split-string")
            .flat_map(|(o, v)| std::iter::once(o.clone()).chain(v.clone()))
            .collect();
        again.extend(split_words(s).map_err(|e| format!("env -S {s:?}: {e}"))?);
        again.extend(args[i..].iter().cloned());
        return read_env(&again, splits + 1);
    }
    if args.get(i).is_some_and(|a| a == "-") {
        i += 1;
    }
    let mut path = None;
    let mut loads_code = None;
    while let Some((name, value)) = args.get(i).and_then(|a| a.split_once('=')) {
        if name == "PATH" {
            if value.split(':').any(|d| !d.starts_with('/')) {
                return Err(format!("env PATH={value:?} searches relative directories"));
            }
            path = Some(value.to_string());
        } else if loads_code_var(name) {
            loads_code = Some(format!("env sets {name}, which can load other code"));
        }
        i += 1;
    }
    let cwd = opts
        .iter()
        .find(|(o, _)| o == "-C" || o == "--chdir")
        .and_then(|(_, v)| v.clone());
    let rest = &args[i..];
    if rest.is_empty() {
        return Ok(Inner::Nothing);
    }
    Ok(Inner::Runs {
        argv: rest.to_vec(),
        path,
        cwd,
        loads_code,
        loader: false,
    })
}

fn read_nice(args: &[String]) -> Result<Inner, String> {
    const SPEC: Spec = Spec {
        short_arg: "n",
        short_opt: "",
        short_flag: "",
        long_arg: &["adjustment"],
        long_opt: &[],
        long_flag: HELP,
    };
    // The old form `nice -10 cmd` (and `--10`, `-+5`).
    let mut skip = 0;
    while let Some(a) = args.get(skip) {
        let digits = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix("-+"))
            .or_else(|| a.strip_prefix('-'));
        match digits {
            Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => skip += 1,
            _ => break,
        }
    }
    let (opts, i) = getopt(&args[skip..], &SPEC)?;
    if has(&opts, &["--help", "--version"]) {
        return Ok(Inner::Nothing);
    }
    Ok(runs_or_nothing(&args[skip + i..]))
}

fn read_with(
    args: &[String],
    spec: &Spec,
    no_command_with: &[&str],
    operands_first: usize,
) -> Result<Inner, String> {
    let (opts, i) = getopt(args, spec)?;
    if has(&opts, &["--help", "--version", "-h", "-V"]) || has(&opts, no_command_with) {
        return Ok(Inner::Nothing);
    }
    let rest = &args[i..];
    if rest.len() <= operands_first {
        return Ok(Inner::Nothing);
    }
    Ok(runs(&rest[operands_first..]))
}

fn read_chrt(args: &[String]) -> Result<Inner, String> {
    const SPEC: Spec = Spec {
        short_arg: "TPD",
        short_opt: "",
        short_flag: "abdefiompRrvhV",
        long_arg: &["sched-runtime", "sched-period", "sched-deadline"],
        long_opt: &[],
        long_flag: &[
            "all-tasks",
            "batch",
            "deadline",
            "ext",
            "fifo",
            "idle",
            "other",
            "max",
            "pid",
            "reset-on-fork",
            "rr",
            "verbose",
            "help",
            "version",
        ],
    };
    let (opts, i) = getopt(args, &SPEC)?;
    if has(
        &opts,
        &[
            "-p",
            "--pid",
            "-m",
            "--max",
            "-h",
            "-V",
            "--help",
            "--version",
        ],
    ) {
        return Ok(Inner::Nothing);
    }
    let mut rest = &args[i..];
    if rest
        .first()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        rest = &rest[1..];
    }
    Ok(runs_or_nothing(rest))
}

fn read_setarch(args: &[String], implied: bool) -> Result<Inner, String> {
    const SPEC: Spec = Spec {
        short_arg: "",
        short_opt: "",
        short_flag: "3BFILRSTZvhV",
        long_arg: &[],
        long_opt: &[],
        long_flag: &[
            "32bit",
            "fdpic-funcptrs",
            "short-inode",
            "addr-compat-layout",
            "addr-no-randomize",
            "whole-seconds",
            "sticky-timeouts",
            "read-implies-exec",
            "mmap-page-zero",
            "3gb",
            "4gb",
            "uname-2.6",
            "verbose",
            "list",
            "help",
            "version",
        ],
    };
    let args = if implied {
        args
    } else {
        match args.first() {
            None => return Ok(Inner::Nothing),
            Some(a) if a.starts_with('-') => {
                // `setarch --list`, `--help`: prints; any other option before ARCH is refused
                // by setarch itself.
                return Ok(Inner::Nothing);
            }
            Some(_) => &args[1..],
        }
    };
    let (opts, i) = getopt(args, &SPEC)?;
    if has(&opts, &["--list", "--help", "--version", "-h", "-V"]) {
        return Ok(Inner::Nothing);
    }
    let rest = &args[i..];
    if rest.is_empty() {
        // With no program, setarch runs /bin/sh.
        return Ok(runs(&["/bin/sh".to_string()]));
    }
    Ok(runs(rest))
}

fn read_flock(args: &[String]) -> Result<Inner, String> {
    const SPEC: Spec = Spec {
        short_arg: "wEc",
        short_opt: "",
        short_flag: "sexnoFuvhV",
        long_arg: &["timeout", "conflict-exit-code", "command"],
        long_opt: &[],
        long_flag: &[
            "shared",
            "exclusive",
            "unlock",
            "nonblock",
            "nb",
            "close",
            "no-fork",
            "verbose",
            "help",
            "version",
        ],
    };
    let (mut opts, i) = getopt(args, &SPEC)?;
    if has(&opts, &["-h", "-V", "--help", "--version"]) {
        return Ok(Inner::Nothing);
    }
    let rest = &args[i..];
    let Some((_file, after)) = rest.split_first() else {
        return Ok(Inner::Nothing);
    };
    // `flock FILE -c CMD` (the option after the file) as well as `flock -c CMD FILE`.
    let (more, j) = getopt(after, &SPEC)?;
    opts.extend(more);
    if let Some((_, Some(cmd))) = opts.iter().find(|(o, _)| o == "-c" || o == "--command") {
        return Ok(runs(&["/bin/sh".into(), "-c".into(), cmd.clone()]));
    }
    Ok(runs_or_nothing(&after[j..]))
}

fn read_prlimit(args: &[String]) -> Result<Inner, String> {
    const RESOURCES: &[&str] = &[
        "core",
        "data",
        "nice",
        "fsize",
        "sigpending",
        "memlock",
        "rss",
        "nofile",
        "msgqueue",
        "rtprio",
        "stack",
        "cpu",
        "nproc",
        "as",
        "locks",
        "rttime",
    ];
    const SPEC: Spec = Spec {
        short_arg: "po",
        short_opt: "cdefilmnqrstuvxy",
        short_flag: "hV",
        long_arg: &["pid", "output"],
        long_opt: RESOURCES,
        long_flag: &["noheadings", "raw", "verbose", "help", "version"],
    };
    read_with(args, &SPEC, &["-p", "--pid"], 0)
}

fn read_loader(args: &[String]) -> Result<Inner, String> {
    const SPEC: Spec = Spec {
        short_arg: "",
        short_opt: "",
        short_flag: "",
        long_arg: &[
            "library-path",
            "inhibit-rpath",
            "audit",
            "preload",
            "argv0",
            "glibc-hwcaps-prepend",
            "glibc-hwcaps-mask",
        ],
        long_opt: &[],
        long_flag: &[
            "list",
            "verify",
            "inhibit-cache",
            "list-tunables",
            "list-diagnostics",
            "help",
            "version",
        ],
    };
    let (opts, i) = getopt(args, &SPEC)?;
    if has(
        &opts,
        &[
            "--help",
            "--version",
            "--list-tunables",
            "--list-diagnostics",
        ],
    ) {
        return Ok(Inner::Nothing);
    }
    let loads_code = opts
        .iter()
        .find(|(o, _)| matches!(o.as_str(), "--library-path" | "--audit" | "--preload"))
        .map(|(o, _)| format!("the loader's {o} loads libraries of the caller's choosing"));
    let rest = &args[i..];
    if rest.is_empty() {
        return Ok(Inner::Nothing);
    }
    Ok(Inner::Runs {
        argv: rest.to_vec(),
        path: None,
        cwd: None,
        loads_code,
        loader: true,
    })
}

/// Reads one wrapper's command line (`args` = argv without argv\[0\]).
fn read(kind: Kind, args: &[String]) -> Result<Inner, String> {
    const HELP_ONLY: Spec = Spec {
        short_arg: "",
        short_opt: "",
        short_flag: "",
        long_arg: &[],
        long_opt: &[],
        long_flag: HELP,
    };
    match kind {
        Kind::Env => read_env(args, 0),
        Kind::Nice => read_nice(args),
        Kind::Nohup => read_with(args, &HELP_ONLY, &[], 0),
        Kind::Ionice => read_with(
            args,
            &Spec {
                short_arg: "cnpPu",
                short_opt: "",
                short_flag: "thV",
                long_arg: &["class", "classdata", "pid", "pgid", "uid"],
                long_opt: &[],
                long_flag: &["ignore", "help", "version"],
            },
            &["-p", "-P", "-u", "--pid", "--pgid", "--uid"],
            0,
        ),
        Kind::Timeout => read_with(
            args,
            &Spec {
                short_arg: "ks",
                short_opt: "",
                short_flag: "fpv",
                long_arg: &["kill-after", "signal"],
                long_opt: &[],
                long_flag: &[
                    "foreground",
                    "preserve-status",
                    "verbose",
                    "help",
                    "version",
                ],
            },
            &[],
            1,
        ),
        Kind::Stdbuf => read_with(
            args,
            &Spec {
                short_arg: "ioe",
                short_opt: "",
                short_flag: "",
                long_arg: &["input", "output", "error"],
                long_opt: &[],
                long_flag: HELP,
            },
            &[],
            0,
        ),
        Kind::Chrt => read_chrt(args),
        Kind::Taskset => read_with(
            args,
            &Spec {
                short_arg: "",
                short_opt: "",
                short_flag: "acphV",
                long_arg: &[],
                long_opt: &[],
                long_flag: &["all-tasks", "cpu-list", "pid", "help", "version"],
            },
            &["-p", "--pid"],
            1,
        ),
        Kind::Setarch { implied } => read_setarch(args, implied),
        Kind::Setsid => read_with(
            args,
            &Spec {
                short_arg: "",
                short_opt: "",
                short_flag: "cfwhV",
                long_arg: &[],
                long_opt: &[],
                long_flag: &["ctty", "fork", "wait", "help", "version"],
            },
            &[],
            0,
        ),
        Kind::Flock => read_flock(args),
        Kind::Time => read_with(
            args,
            &Spec {
                short_arg: "fo",
                short_opt: "",
                short_flag: "apqvV",
                long_arg: &["format", "output"],
                long_opt: &[],
                long_flag: &[
                    "append",
                    "portability",
                    "quiet",
                    "verbose",
                    "help",
                    "version",
                ],
            },
            &[],
            0,
        ),
        Kind::Prlimit => read_prlimit(args),
        Kind::Loader => read_loader(args),
        Kind::Busybox => Ok(match args.first() {
            None => Inner::Nothing,
            Some(a) if a.starts_with('-') => Inner::Nothing,
            // The applet is named, not looked up: `busybox rm …` runs busybox's own rm.
            Some(_) => runs(args),
        }),
    }
}

/// A stand-in for a word that did not resolve: deny rules still see its name.
fn unresolved(word: &str) -> ResolvedCommand {
    ResolvedCommand {
        path: PathBuf::from(word),
        real_path: PathBuf::from(word),
        dev: 0,
        ino: 0,
        via_secure_path: false,
    }
}

/// Follows `command` (argv without argv\[0\] in `args`) through every wrapper it is.
/// Bare names are looked up as sudo would, in `secure_path`; relative paths from `cwd`.
pub fn unwrap(
    command: &ResolvedCommand,
    args: &[String],
    cwd: &Path,
    secure_path: &str,
) -> Unwrapped {
    let mut out = Unwrapped::default();
    let mut kind = kind_of_command(command);
    out.outer_is_wrapper = kind.is_some();
    let mut args = args.to_vec();
    let mut cwd = cwd.to_path_buf();
    let mut name = command.name().to_string();
    while let Some(k) = kind {
        if out.levels.len() >= MAX_DEPTH {
            out.unreadable = Some(format!("more than {MAX_DEPTH} wrappers deep"));
            break;
        }
        let inner = match read(k, &args) {
            Ok(i) => i,
            Err(why) => {
                out.unreadable = Some(format!("{name}: cannot read {why}"));
                break;
            }
        };
        let Inner::Runs {
            argv,
            path,
            cwd: chdir,
            loads_code,
            loader,
        } = inner
        else {
            break;
        };
        if let Some(why) = loads_code {
            out.unreadable.get_or_insert(why);
        }
        if let Some(d) = chdir {
            cwd = cwd.join(d);
        }
        let word = &argv[0];
        let busybox_applet = k == Kind::Busybox;
        let resolved = if busybox_applet {
            None
        } else if loader && !word.contains('/') {
            // The loader takes a file, not a command name: `ld.so rm` opens ./rm.
            resolve::resolve_command(&format!("./{word}"), "", &cwd).ok()
        } else {
            resolve::resolve_command(word, path.as_deref().unwrap_or(secure_path), &cwd).ok()
        };
        let (cmd, is_resolved) = match resolved {
            Some(c) => (c, true),
            None => (unresolved(word), false),
        };
        if !is_resolved && !busybox_applet {
            out.unreadable.get_or_insert_with(|| {
                format!("{name} runs {word:?}, which does not resolve to a safe command")
            });
        }
        let mut level_argv = argv.clone();
        if is_resolved {
            level_argv[0] = cmd.path.to_string_lossy().into_owned();
        }
        kind = if busybox_applet {
            kind_of(word).filter(|k| *k != Kind::Busybox)
        } else {
            kind_of_command(&cmd)
        };
        name = cmd.name().to_string();
        args = argv[1..].to_vec();
        out.levels.push(Level {
            argv: level_argv,
            command: cmd,
            resolved: is_resolved,
            wrapper: kind.is_some(),
        });
    }
    out
}

#[cfg(test)]
mod tests;
