//! Connecting to the broker, and starting `$OCC_HOME/bin/occ broker` on demand when none
//! answers. The shim waits at most [`START_WAIT`] for it; it never runs anything else instead.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::home::Home;
use crate::sys::{self, LockState};

/// How long a shim waits for a broker it started (or saw starting) to answer.
pub const START_WAIT: Duration = Duration::from_secs(2);

/// PATH for the daemon when the caller has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Connects to the broker by `deadline`, starting one first when nobody listens (user mode
/// only). A broker that stopped accepting (a full listen backlog) is never waited on past the
/// deadline, and is never mistaken for an absent one: no second broker is started beside it.
pub fn connect(home: &Home, deadline: Instant) -> Result<UnixStream, String> {
    match sys::connect_unix(&home.socket, deadline) {
        Ok(s) => return Ok(s),
        Err(e) if !home.system && nobody_listens(&e) => {}
        Err(e) => return Err(cannot_connect(home, &e)),
    }
    let mut spawned = start_broker(home)?;
    let started = Instant::now();
    let give_up = deadline.min(started + START_WAIT);
    let mut pause = Duration::from_millis(2);
    loop {
        match sys::connect_unix(&home.socket, deadline) {
            Ok(s) => return Ok(s),
            Err(e) if nobody_listens(&e) && Instant::now() < give_up => {
                // The lock was held by a broker that was exiting (it removes its socket and
                // pid file just before it lets go of the lock): once the lock is free and no
                // one listens, start one ourselves.
                if !spawned {
                    spawned = start_broker(home)?;
                }
                std::thread::sleep(pause.min(give_up.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) if nobody_listens(&e) => {
                return Err(format!(
                    "started {} broker but nothing answered on {} within {:.1} s (see {})",
                    home.home.join("bin/occ").display(),
                    home.socket.display(),
                    give_up.saturating_duration_since(started).as_secs_f32(),
                    home.run_dir().join("broker.log").display()
                ))
            }
            Err(e) => return Err(cannot_connect(home, &e)),
        }
    }
}

/// The refusal detail for a failed connect.
fn cannot_connect(home: &Home, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::TimedOut {
        return format!(
            "{} accepted no connection within {} s (the broker is stopped or flooded)",
            home.socket.display(),
            crate::ANSWER_BOUND.as_secs()
        );
    }
    format!("cannot connect to {}: {e}", home.socket.display())
}

/// No socket file, or a stale one nobody accepts on.
fn nobody_listens(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Starts the daemon unless another shim's broker already holds the lock (then we only wait).
/// Starts a broker unless one holds the lock (starting, running or exiting); `Ok(true)` when
/// this call started one.
fn start_broker(home: &Home) -> Result<bool, String> {
    let occ = home.home.join("bin").join("occ");
    let executable = std::fs::metadata(&occ)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if !executable {
        return Err(format!(
            "no broker is listening on {} and {} is missing, so none can be started",
            home.socket.display(),
            occ.display()
        ));
    }
    let run = home.run_dir();
    if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&run) {
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(format!("cannot create {}: {e}", run.display()));
        }
    }
    let lock = cstring(&run.join("broker.lock"))?;
    match sys::probe_lock(&lock) {
        Ok(LockState::Held) => return Ok(false),
        Ok(LockState::Free) => {}
        Err(e) => {
            return Err(format!(
                "cannot check {}: {e}",
                run.join("broker.lock").display()
            ))
        }
    }
    let argv = [cstring(&occ)?, CString::from(c"broker")];
    let env = daemon_env(home)?;
    let log = cstring(&run.join("broker.log"))?;
    sys::spawn_daemon(&argv, &env, &log)
        .map(|()| true)
        .map_err(|e| format!("cannot start {} broker: {e}", occ.display()))
}

/// The daemon's environment: only PATH, HOME, LANG and OCC_HOME.
fn daemon_env(home: &Home) -> Result<Vec<CString>, String> {
    let mut env = Vec::new();
    let path = std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.into());
    env.push(assignment(b"PATH", path.as_bytes())?);
    for name in ["HOME", "LANG"] {
        if let Some(v) = std::env::var_os(name) {
            env.push(assignment(name.as_bytes(), v.as_bytes())?);
        }
    }
    env.push(assignment(b"OCC_HOME", home.home.as_os_str().as_bytes())?);
    Ok(env)
}

fn assignment(name: &[u8], value: &[u8]) -> Result<CString, String> {
    let mut b = name.to_vec();
    b.push(b'=');
    b.extend_from_slice(value);
    CString::new(b).map_err(|_| "an environment value contains a NUL byte".to_string())
}

fn cstring(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| format!("{} contains a NUL byte", p.display()))
}
