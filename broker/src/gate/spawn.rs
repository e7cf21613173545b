//! The system broker's executor: once the stack allows a request, the broker runs the approved
//! file itself, by the descriptor opened and checked at resolution, as the target user, with an
//! environment built from scratch (sudo's `env_reset` set) and the caller's stdio, which the
//! shim sends only now. `exec_start` (with the pid) is durable before the command may exec; the
//! exit status is what the broker's own `waitpid` saw. It never runs the real sudo.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use occ_audit::Value;
use occ_policy::file::{name_listed, PolicyConfig};
use occ_proto::ExitReport;

use super::events::{int, s, strs, Event, Fields};
use super::refusal::Refusal;
use super::understand::Understood;
use super::Gate;
use crate::daemon::conn::{Conn, Supervise};
use crate::sys::{self, SpawnSpec};

/// How long a command whose shim hung up has between SIGHUP and SIGKILL.
pub const ABANDON_GRACE: Duration = Duration::from_secs(2);

/// Variables never passed to a command, whatever asked for them (sudo's bad-environment list
/// and the dynamic loader's): they change what the approved file does.
fn never_passed(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "BASH_ENV",
        "ENV",
        "IFS",
        "SHELLOPTS",
        "PS4",
        "GLOBIGNORE",
        "GCONV_PATH",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "RUBYLIB",
        "RUBYOPT",
        "NODE_OPTIONS",
        "JAVA_TOOL_OPTIONS",
    ];
    const PREFIX: &[&str] = &["LD_", "BASH_FUNC_", "MALLOC_", "DYLD_", "_RLD"];
    EXACT.contains(&name) || PREFIX.iter().any(|p| name.starts_with(p))
}

/// Whether a caller's value may reach the command: sudo's `env_check` rule for the terminal,
/// locale and time-zone variables (no `/` or `%` in the value; sudo's `tz_is_safe` for TZ),
/// and nothing from the never-passed list.
pub fn safe_value(name: &str, value: &str) -> bool {
    match name {
        "TZ" => safe_tz(value),
        "TERM" | "COLORTERM" | "LANG" | "LANGUAGE" | "LINGUAS" => !value.contains(['/', '%']),
        n if n.starts_with("LC_") => !value.contains(['/', '%']),
        n => !never_passed(n) && !kept_only_by_name(n),
    }
}

/// sudo's `tz_is_safe`: a path only inside the zone database, printable characters without
/// spaces, no `..` element, shorter than PATH_MAX.
fn safe_tz(value: &str) -> bool {
    const ZONEINFO: &str = "/usr/share/zoneinfo/";
    let tz = value.strip_prefix(':').unwrap_or(value);
    (!tz.starts_with('/') || tz.starts_with(ZONEINFO))
        && tz.bytes().all(|b| b.is_ascii_graphic())
        && !tz.split('/').any(|element| element == "..")
        && tz.len() < 4096
}

/// Variables that point a command at the caller's own session (an X display and its cookie, a
/// Kerberos ticket cache): never passed unless `env_keep` names them exactly, not by a pattern.
fn kept_only_by_name(name: &str) -> bool {
    matches!(name, "DISPLAY" | "XAUTHORITY" | "KRB5CCNAME")
}

/// The caller's forwarded variables that broker.json's `env_keep` keeps (TERM, LANG and LC_*
/// by default), with safe values: what the command will see of the caller's environment,
/// bound into the grant's digest. The shim forwards only TERM, COLORTERM, NO_COLOR, LANG,
/// LANGUAGE, LINGUAS, LC_*, TZ, DISPLAY, XAUTHORITY, KRB5CCNAME and OPENCLAW_*, so `env_keep`
/// chooses among those.
pub fn kept_env(
    caller_env: &BTreeMap<String, String>,
    env_keep: &[String],
) -> BTreeMap<String, String> {
    caller_env
        .iter()
        .filter(|(k, v)| {
            if kept_only_by_name(k) {
                env_keep.iter().any(|p| p == *k)
            } else {
                name_listed(env_keep, k) && safe_value(k, v)
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The command's environment, built from scratch; returns it and the names it refused.
pub fn environment(
    u: &Understood,
    cfg: &PolicyConfig,
    caller: &occ_policy::Caller,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut dropped = Vec::new();
    let Some(r) = &u.eval.request else {
        return (Vec::new(), dropped);
    };
    let t = &r.target;
    env.insert("PATH".into(), cfg.broker.secure_path.clone());
    env.insert("HOME".into(), t.home.to_string_lossy().into_owned());
    env.insert("SHELL".into(), t.shell.to_string_lossy().into_owned());
    env.insert("USER".into(), t.user.clone());
    env.insert("LOGNAME".into(), t.user.clone());
    env.insert("MAIL".into(), format!("/var/mail/{}", t.user));
    for (k, v) in &u.info.kept_env {
        env.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in r.preserved_env.iter().chain(r.sudo.env.iter()) {
        env.insert(k.clone(), v.clone());
    }
    // As sudo: a command always has a TERM (POSIX), `unknown` when the caller's was not kept.
    env.entry("TERM".into()).or_insert_with(|| "unknown".into());
    env.insert("SUDO_COMMAND".into(), r.argv.join(" "));
    env.insert("SUDO_USER".into(), caller.user.clone());
    env.insert("SUDO_UID".into(), caller.uid.to_string());
    env.insert("SUDO_GID".into(), caller.gid.to_string());
    env.retain(|k, _| {
        let bad = never_passed(k) || (kept_only_by_name(k) && !u.info.kept_env.contains_key(k));
        if bad {
            dropped.push(k.clone());
        }
        !bad
    });
    (env.into_iter().collect(), dropped)
}

/// Opens the resolved file for exec by descriptor and checks it is the one resolution saw
/// (same device and inode). `Err` is the refusal and its message.
pub fn open_approved(r: &occ_policy::Request) -> Result<(OwnedFd, bool), (Refusal, String)> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt;
    let path = &r.command.real_path;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            (
                Refusal::Policy("command_not_found"),
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
    let md = f.metadata().map_err(|e| {
        (
            Refusal::InternalError,
            format!("cannot inspect {}: {e}", path.display()),
        )
    })?;
    if md.dev() != r.command.dev || md.ino() != r.command.ino || !md.is_file() {
        return Err((
            Refusal::Policy("command_changed"),
            format!(
                "{} changed while it was being resolved; run the request again",
                path.display()
            ),
        ));
    }
    let mut head = [0u8; 2];
    let script = matches!((&f).read(&mut head), Ok(2)) && head == *b"#!";
    Ok((OwnedFd::from(f), script))
}

impl Gate {
    /// Runs the approved request as the target user and reports how it ended.
    pub(super) fn run_approved(
        &self,
        conn: &mut Conn,
        mut fields: Fields,
        u: &Understood,
        r: &occ_policy::Request,
        cfg: &PolicyConfig,
    ) {
        let Some(exe) = &u.exe else {
            let msg = "the approved file was not opened at resolution";
            self.refuse(
                conn,
                fields,
                Event::PolicyBlock,
                Refusal::InternalError,
                msg,
            );
            return;
        };
        let caller = occ_policy::Caller::from_uid(conn.peer().uid);
        let (env, dropped) = environment(u, cfg, &caller);
        let spec = match self.spawn_spec(r, exe, &env) {
            Ok(spec) => spec,
            Err(e) => {
                self.refuse(conn, fields, Event::PolicyBlock, Refusal::InternalError, &e);
                return;
            }
        };
        // Only now does the caller's stdio come to the broker.
        let stdio = match conn.run_and_take_stdio() {
            Ok(s) => s,
            Err(e) => {
                fields.insert("detail".into(), s(e));
                fields.insert("started".into(), Value::Bool(false));
                let _ = self.audit(Event::ExecAbandoned, fields);
                return;
            }
        };
        let spec = match with_stdio(spec, stdio) {
            Ok(spec) => spec,
            Err(e) => {
                self.refuse(conn, fields, Event::PolicyBlock, Refusal::InternalError, &e);
                return;
            }
        };
        let mut child = match sys::spawn(&spec) {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("cannot start the command: {e}");
                self.refuse(
                    conn,
                    fields,
                    Event::PolicyBlock,
                    Refusal::InternalError,
                    &msg,
                );
                return;
            }
        };
        drop(spec);
        let run_id = crate::session::random_id().unwrap_or_else(|_| format!("pid{}", child.pid));
        fields.insert("run_id".into(), s(run_id));
        fields.insert("pid".into(), int(child.pid));
        fields.insert("submit_argv".into(), strs(&u.raw_argv));
        fields.insert(
            "runenv_names".into(),
            Value::Array(env.iter().map(|(k, _)| s(k.clone())).collect()),
        );
        fields.insert("env_dropped".into(), strs(&dropped));
        // exec_start must be durable before the command may exec; dropping `child` unreleased
        // makes it exit without running anything.
        if let Err(e) = self.audit_durable(Event::ExecStart, fields.clone()) {
            let pid = child.pid;
            drop(child);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            let msg = format!("refusing to run unrecorded: {e}");
            let _ = conn.refuse(&msg, Refusal::AuditFailed.code());
            return;
        }
        let started = Instant::now();
        if let Err(e) = child.release() {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child.pid), None);
            let msg = format!("the approved command could not start: {e}");
            fields.insert("detail".into(), s(msg.clone()));
            let _ = self.audit(Event::ExecFailed, fields);
            let _ = conn.refuse(&msg, Refusal::ExecFailed.code());
            return;
        }
        let mut relayed = Vec::new();
        let ended = loop {
            match conn.supervise(child.pidfd.as_fd()) {
                Supervise::Idle => {}
                Supervise::Signal(signo) => {
                    if child.signal_group(signo).is_ok() {
                        relayed.push(signo);
                    }
                }
                Supervise::Ended => match child.try_wait() {
                    Ok(Some(st)) => break Ok(st),
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => break Err(format!("waitpid: {e}")),
                },
                Supervise::ShimGone(detail) => {
                    let st = abandon(&child);
                    fields.insert("detail".into(), s(detail));
                    put_status(&mut fields, st, started, &relayed);
                    let _ = self.audit(Event::ExecAbandoned, fields);
                    return;
                }
                Supervise::Stopping => {
                    // The command goes on; the next start records it as
                    // exec_outcome_unknown, with whether it still runs.
                    let _ = conn.refuse_stopping();
                    return;
                }
            }
        };
        match ended {
            Ok(st) => {
                // The caller learns the status first; `exec_finish` is written right after and
                // made durable before this connection ends (as in user mode, where the shim
                // does not wait for it either).
                let run_time_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let _ = conn.exited(ExitReport {
                    exit_value: st.0,
                    signal: st.1,
                    run_time_ms,
                });
                put_status(&mut fields, Some(st), started, &relayed);
                let _ = self.audit(Event::ExecFinish, fields);
            }
            Err(detail) => {
                fields.insert("detail".into(), s(detail.clone()));
                let _ = self.audit(Event::ExecOutcomeUnknown, fields);
                let _ = conn.refuse(&detail, Refusal::InternalError.code());
            }
        }
    }

    /// Everything but the stdio, prepared before the caller's descriptors arrive.
    fn spawn_spec(
        &self,
        r: &occ_policy::Request,
        exe: &OwnedFd,
        env: &[(String, String)],
    ) -> Result<SpawnSpec, String> {
        let cstr = |what: &str, v: &str| {
            CString::new(v).map_err(|_| format!("the {what} contains a NUL byte"))
        };
        let argv = r
            .argv
            .iter()
            .map(|a| cstr("command line", a))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = env
            .iter()
            .map(|(k, v)| cstr("environment", &format!("{k}={v}")))
            .collect::<Result<Vec<_>, _>>()?;
        let cwd = cstr("directory", &r.cwd.to_string_lossy())?;
        let t = &r.target;
        let user = cstr("user name", &t.user)?;
        let groups = nix::unistd::getgrouplist(&user, nix::unistd::Gid::from_raw(t.gid))
            .map_err(|e| format!("cannot list the groups of {}: {e}", t.user))?
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        let devnull = || {
            std::fs::File::open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| format!("/dev/null: {e}"))
        };
        Ok(SpawnSpec {
            exe: exe
                .try_clone()
                .map_err(|e| format!("cannot duplicate the approved file's descriptor: {e}"))?,
            argv,
            envp,
            cwd,
            uid: t.uid,
            gid: t.gid,
            groups,
            stdio: [devnull()?, devnull()?, devnull()?],
            drop_privileges: t.uid != 0,
        })
    }
}

/// Puts the caller's stdio in place of `/dev/null` where it came.
fn with_stdio(mut spec: SpawnSpec, stdio: [Option<OwnedFd>; 3]) -> Result<SpawnSpec, String> {
    for (slot, fd) in spec.stdio.iter_mut().zip(stdio) {
        if let Some(fd) = fd {
            *slot = fd;
        }
    }
    Ok(spec)
}

/// The shim hung up: SIGHUP to the command's group, SIGKILL after [`ABANDON_GRACE`].
fn abandon(child: &sys::Spawned) -> Option<(i32, i32)> {
    let _ = child.signal_group(libc::SIGHUP);
    let deadline = Instant::now() + ABANDON_GRACE;
    // Checked once more after the deadline: a broker thread that slept past it (a loaded
    // machine) must not SIGKILL a command that already died of the SIGHUP.
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.signal_group(libc::SIGKILL);
    for _ in 0..100 {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn put_status(f: &mut Fields, st: Option<(i32, i32)>, started: Instant, relayed: &[i32]) {
    let (exit_value, signal) = match st {
        Some((e, sig)) => (int(e), int(sig)),
        None => (Value::Null, Value::Null),
    };
    f.insert("exit_value".into(), exit_value);
    f.insert("signal".into(), signal);
    f.insert("run_time".into(), int(started.elapsed().as_millis()));
    f.insert(
        "signals_relayed".into(),
        Value::Array(relayed.iter().map(|s| int(*s)).collect()),
    );
}

#[cfg(test)]
mod tests {
    use super::safe_value;

    /// One line per case: (name, value, passes), as sudo's env_check and tz_is_safe judge it
    /// (and the never-passed list, for the rest).
    const CASES: &[(&str, &str, bool)] = &[
        ("TERM", "xterm-256color", true),
        ("TERM", "../../tmp/term", false),
        ("TERM", "vt%d", false),
        ("COLORTERM", "truecolor", true),
        ("COLORTERM", "a/b", false),
        ("LANG", "C.UTF-8", true),
        ("LANG", "C%n", false),
        ("LANGUAGE", "en_US:en", true),
        ("LINGUAS", "%s", false),
        ("LC_ALL", "/tmp/locale", false),
        ("LC_TIME", "C", true),
        ("TZ", "Europe/Paris", true),
        ("TZ", "UTC", true),
        ("TZ", ":/usr/share/zoneinfo/UTC", true),
        ("TZ", "/usr/share/zoneinfo/Europe/Paris", true),
        ("TZ", "/tmp/tz", false),
        ("TZ", "/usr/share/zoneinfoX/UTC", false),
        ("TZ", ":/usr/share/zoneinfo/../../../tmp/tz", false),
        ("TZ", "../tz", false),
        ("TZ", "Europe/..", false),
        ("TZ", "Europe/..x", true),
        ("TZ", "UTC 0", false),
        ("TZ", "UTC\u{7f}", false),
        ("TZ", "Zoné", false),
        ("NO_COLOR", "1", true),
        ("DISPLAY", ":0", false),
        ("LD_PRELOAD", "/tmp/x.so", false),
    ];

    #[test]
    fn terminal_locale_and_time_zone_values_pass_as_sudo_judges_them() {
        for (name, value, passes) in CASES {
            assert_eq!(safe_value(name, value), *passes, "{name}={value:?}");
        }
        let long = "A".repeat(4096);
        assert!(!safe_value("TZ", &long), "PATH_MAX or longer");
        assert!(safe_value("TZ", &long[..4095]));
    }

    #[test]
    fn display_xauthority_and_krb5ccname_are_kept_only_when_env_keep_names_them() {
        use super::kept_env;
        let caller: std::collections::BTreeMap<String, String> = [
            ("DISPLAY", ":0"),
            ("XAUTHORITY", "/home/a/.Xauthority"),
            ("KRB5CCNAME", "FILE:/tmp/krb5cc_1001"),
            ("LANG", "C.UTF-8"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let keep = |names: &[&str]| -> Vec<String> {
            kept_env(
                &caller,
                &names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            )
            .into_keys()
            .collect()
        };
        // The default list and a pattern that would match them keep none of the three.
        assert_eq!(keep(&["TERM", "LANG", "LC_*"]), ["LANG"]);
        assert_eq!(keep(&["*"]), ["LANG"]);
        assert_eq!(keep(&["DISP*", "XAUTH*", "KRB5*"]), Vec::<String>::new());
        // Named exactly, each is kept.
        assert_eq!(
            keep(&["DISPLAY", "XAUTHORITY", "KRB5CCNAME"]),
            ["DISPLAY", "KRB5CCNAME", "XAUTHORITY"]
        );
    }
}
