//! Evidence about the host that is not in occ's own files: the OpenClaw gateway process and its
//! real environment, which OpenClaw instance is judged, the agent user's uid and groups, setuid
//! privilege tools, the openclaw CLI and what it answers (asked through `openclaw::cli`), the
//! broker's answer, and the port and egress scan reports. Probes record what they could not see
//! instead of guessing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::model::NetReport;
use super::openclaw::backups::Record as BackupRecord;
use super::openclaw::cli::{Cli, CliConfig};
use super::openclaw::instance::{self, EnvVars, Instance};
use super::openclaw::security_audit::SecurityAudit;
use crate::exec;
use crate::paths::Paths;

/// The OpenClaw gateway process as found in /proc.
#[derive(Debug, Clone)]
pub struct GatewayProc {
    /// Its pid.
    pub pid: u32,
    /// Its real uid, when readable.
    pub uid: Option<u32>,
    /// comm.
    pub comm: String,
    /// PATH from `/proc/<pid>/environ`: `Ok(None)` when unset, `Err` when unreadable.
    pub path_env: Result<Option<String>, String>,
    /// The variables that say which OpenClaw it runs (`OPENCLAW_CONFIG_PATH`,
    /// `OPENCLAW_STATE_DIR`, `OPENCLAW_PROFILE`, `OPENCLAW_GATEWAY_PORT`, `HOME`, …), from the
    /// same environ (empty when unreadable).
    pub env: EnvVars,
}

/// Whether a process looks like the OpenClaw gateway: comm `openclaw-gatewa[y]`, or argv with
/// an `openclaw` program followed by a `gateway` argument.
pub fn is_gateway(comm: &str, argv: &[String]) -> bool {
    if comm.starts_with("openclaw-gatew") {
        return true;
    }
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    if argv.first().is_some_and(|a| base(a) == "openclaw-gateway") {
        return true;
    }
    let Some(i) = argv.iter().take(3).position(|a| {
        let b = base(a);
        b == "openclaw" || b == "openclaw.mjs" || a.contains("/openclaw/")
    }) else {
        return false;
    };
    argv.iter().skip(i + 1).take(3).any(|a| a == "gateway")
}

/// Reads one process's gateway facts.
pub fn read_proc(proc_root: &Path, pid: u32) -> Option<GatewayProc> {
    let dir = proc_root.join(pid.to_string());
    let comm = std::fs::read_to_string(dir.join("comm"))
        .ok()?
        .trim_end()
        .to_string();
    let uid = std::fs::read_to_string(dir.join("status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|u| u.parse().ok())
        });
    let environ = std::fs::read(dir.join("environ"));
    let var = |bytes: &[u8], key: &str| {
        bytes
            .split(|b| *b == 0)
            .find_map(|kv| kv.strip_prefix(key.as_bytes())?.strip_prefix(b"="))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let env: EnvVars = match &environ {
        Ok(bytes) => instance::ENV_KEYS
            .iter()
            .filter_map(|k| var(bytes, k).map(|v| (k.to_string(), v)))
            .collect(),
        Err(_) => EnvVars::new(),
    };
    let path_env = match &environ {
        Ok(bytes) => Ok(var(bytes, "PATH")),
        Err(e) => Err(format!(
            "cannot read /proc/{pid}/environ: {e} (run occ-scan as the gateway's user or root)"
        )),
    };
    Some(GatewayProc {
        pid,
        uid,
        comm,
        path_env,
        env,
    })
}

/// Finds the OpenClaw gateway among the processes in `proc_root`.
pub fn find_gateway(proc_root: &Path) -> Option<GatewayProc> {
    let me = std::process::id();
    let rd = std::fs::read_dir(proc_root).ok()?;
    let mut pids: Vec<u32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|p| *p != me)
        .collect();
    pids.sort_unstable();
    pids.into_iter().find_map(|pid| {
        let dir = proc_root.join(pid.to_string());
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        let comm = comm.trim_end();
        // Only the gateway's own name or a JavaScript runtime can be it; skip the cmdline
        // read for everything else (this walk runs on every cycle).
        if !(comm.starts_with("openclaw") || matches!(comm, "node" | "nodejs" | "bun" | "deno")) {
            return None;
        }
        let argv: Vec<String> = std::fs::read(dir.join("cmdline"))
            .ok()?
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if is_gateway(comm, &argv) {
            read_proc(proc_root, pid)
        } else {
            None
        }
    })
}

/// A setuid privilege tool found on the standard system directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivTool {
    /// Its path.
    pub path: PathBuf,
    /// Whether it is setuid root (it can raise privilege).
    pub setuid_root: bool,
}

/// The standard system directories searched for su, doas, pkexec and the real sudo.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Finds su, doas, pkexec, sudo and run0 in `dirs`, deduplicated by real path.
pub fn find_priv_tools(dirs: &[PathBuf]) -> Vec<PrivTool> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for d in dirs {
        for name in ["su", "doas", "pkexec", "sudo", "run0"] {
            let p = d.join(name);
            let Ok(real) = std::fs::canonicalize(&p) else {
                continue;
            };
            if !seen.insert(real.clone()) {
                continue;
            }
            if let Ok(m) = std::fs::metadata(&real) {
                if m.is_file() {
                    out.push(PrivTool {
                        path: p,
                        setuid_root: m.uid() == 0 && m.mode() & 0o4000 != 0,
                    });
                }
            }
        }
    }
    out
}

/// The installed openclaw CLI, and what it answered. Each answer is `None` when not asked
/// (the CLI does not report its version), `Err` when the CLI failed.
#[derive(Debug, Clone)]
pub struct OpenClawCli {
    /// Where it is.
    pub path: PathBuf,
    /// `openclaw --version` output, or why it failed.
    pub version: Result<String, String>,
    /// When the resolved file was last modified.
    pub modified: Option<SystemTime>,
    /// The exec PATH settings as the CLI resolves OpenClaw's config (profiles,
    /// `OPENCLAW_CONFIG_PATH`, `$include`).
    pub exec_path: Option<Result<ExecPathConfig, String>>,
    /// `openclaw config file` and `config get channels|gateway --json`.
    pub config: Option<Result<CliConfig, String>>,
    /// `openclaw security audit --json`.
    pub security_audit: Option<Result<SecurityAudit, String>>,
    /// The backup record in `openclaw status --json`.
    pub backups: Option<Result<BackupRecord, String>>,
}

impl OpenClawCli {
    /// A CLI found at `path` that has not been asked anything yet.
    pub fn unasked(path: PathBuf, version: Result<String, String>) -> OpenClawCli {
        OpenClawCli {
            path,
            version,
            modified: None,
            exec_path: None,
            config: None,
            security_audit: None,
            backups: None,
        }
    }
}

/// `openclaw config get tools.exec.pathPrepend` and `agents.entries`, each `None` when unset.
#[derive(Debug, Clone, Default)]
pub struct ExecPathConfig {
    /// The global `tools.exec.pathPrepend`.
    pub global: Option<Value>,
    /// `agents.entries` (agents may set their own pathPrepend, which replaces the global one).
    pub entries: Option<Value>,
}

/// Reads the exec PATH settings through the CLI.
pub fn probe_exec_path(cli: &Cli) -> Result<ExecPathConfig, String> {
    use occ_policy::openclaw as oc;
    Ok(ExecPathConfig {
        global: cli.get(oc::PATH_KEY)?,
        entries: cli.get(oc::AGENTS_KEY)?,
    })
}

/// Finds the openclaw CLI: `openclaw-bin-path.txt`, PATH, then the usual install paths.
pub fn find_openclaw(paths: &Paths) -> Option<PathBuf> {
    if let Ok(s) = std::fs::read_to_string(paths.home.join("openclaw-bin-path.txt")) {
        let p = PathBuf::from(s.trim());
        if p.is_absolute() && exec::is_executable_file(&p) {
            return Some(p);
        }
    }
    if let Some(p) = exec::which("openclaw") {
        return Some(p);
    }
    let home = crate::paths::user_home();
    ["/opt/homebrew/bin/openclaw", "/usr/local/bin/openclaw"]
        .iter()
        .map(PathBuf::from)
        .chain(home.map(|h| h.join(".npm-global/bin/openclaw")))
        .find(|p| exec::is_executable_file(p))
}

/// Runs `openclaw --version` with a timeout and stats the resolved file; when it answers, asks
/// it about `instance` (exec PATH, config, security audit, backups) at once, each on its own
/// thread with its own deadline.
pub fn probe_openclaw(
    path: PathBuf,
    timeout: Duration,
    instance: &Result<Instance, String>,
) -> OpenClawCli {
    let mut c = Command::new(&path);
    c.arg("--version");
    if let Ok(i) = instance {
        for (k, v) in &i.cli_env {
            c.env(k, v);
        }
    }
    let version = match exec::run(c, None, timeout) {
        Ok(o) if o.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if v.is_empty() {
                Err("`openclaw --version` printed nothing".into())
            } else {
                Ok(v.lines().next().unwrap_or_default().to_string())
            }
        }
        Ok(o) if o.timed_out => Err(format!("`openclaw --version` timed out after {timeout:?}")),
        Ok(o) => Err(format!(
            "`openclaw --version` exited {:?}: {}",
            o.code,
            o.stderr_text()
        )),
        Err(e) => Err(e.to_string()),
    };
    let modified = std::fs::canonicalize(&path)
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok();
    let mut out = OpenClawCli::unasked(path, version);
    out.modified = modified;
    if out.version.is_err() {
        return out;
    }
    let instance = match instance {
        Ok(i) => i,
        Err(e) => {
            out.exec_path = Some(Err(e.clone()));
            out.config = Some(Err(e.clone()));
            out.security_audit = Some(Err(e.clone()));
            out.backups = Some(Err(e.clone()));
            return out;
        }
    };
    let cli = Cli {
        path: &out.path,
        instance,
    };
    let (exec_path, config, audit, backups) = std::thread::scope(|s| {
        let exec_path = s.spawn(|| probe_exec_path(&cli));
        let config = s.spawn(|| cli.config());
        let audit = s.spawn(|| cli.security_audit());
        let backups = s.spawn(|| cli.backups());
        let joined = |what: &str| format!("the thread asking the openclaw CLI for {what} panicked");
        (
            exec_path
                .join()
                .unwrap_or_else(|_| Err(joined("the exec PATH"))),
            config.join().unwrap_or_else(|_| Err(joined("its config"))),
            audit
                .join()
                .unwrap_or_else(|_| Err(joined("its security audit"))),
            backups
                .join()
                .unwrap_or_else(|_| Err(joined("its backups"))),
        )
    });
    out.exec_path = Some(exec_path);
    out.config = Some(config);
    out.security_audit = Some(audit);
    out.backups = Some(backups);
    out
}

/// What the broker said to `occ status --json`.
#[derive(Debug, Clone)]
pub enum BrokerProbe {
    /// No `occ` binary to ask.
    NoClient(String),
    /// `occ status` is not in this build of occ.
    Unsupported(String),
    /// The broker answered; its JSON.
    Up(Value),
    /// The broker did not answer; why.
    Down(String),
}

/// Finds `occ`: `$OCC_HOME/bin/occ`, else beside this executable.
pub fn find_occ(paths: &Paths) -> Option<PathBuf> {
    let installed = paths.home.join("bin").join("occ");
    if exec::is_executable_file(&installed) {
        return Some(installed);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("occ")))
        .filter(|p| exec::is_executable_file(p))
}

/// Asks the broker for its status through `occ status --json`.
pub fn probe_broker(paths: &Paths, timeout: Duration) -> BrokerProbe {
    let Some(occ) = find_occ(paths) else {
        return BrokerProbe::NoClient(format!(
            "no occ binary at {} or beside occ-scan",
            paths.home.join("bin/occ").display()
        ));
    };
    let mut c = Command::new(&occ);
    c.args(["status", "--json"]).env("OCC_HOME", &paths.home);
    match exec::run(c, None, timeout) {
        Err(e) => BrokerProbe::Down(e.to_string()),
        Ok(o) if o.timed_out => {
            BrokerProbe::Down(format!("`occ status` timed out after {timeout:?}"))
        }
        Ok(o) => {
            let err = o.stderr_text();
            if o.code == Some(2)
                && (err.contains("unrecognized subcommand") || err.contains("invalid subcommand"))
            {
                return BrokerProbe::Unsupported(format!(
                    "{} has no `status` subcommand yet",
                    occ.display()
                ));
            }
            match serde_json::from_slice::<Value>(&o.stdout) {
                Ok(v) if o.code == Some(0) => {
                    let up = v.get("broker").and_then(Value::as_str) != Some("down")
                        && v.get("running")
                            .or_else(|| v.get("up"))
                            .and_then(Value::as_bool)
                            .unwrap_or(true);
                    if up {
                        BrokerProbe::Up(v)
                    } else {
                        BrokerProbe::Down(format!(
                            "`occ status` says the broker is not running: {v}"
                        ))
                    }
                }
                parsed => {
                    // `occ status --json` prints {"broker":"down","error":…} and exits 1.
                    let said = parsed
                        .ok()
                        .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from));
                    let why = match said {
                        Some(s) => s,
                        None if err.is_empty() => "no message".into(),
                        None => err,
                    };
                    BrokerProbe::Down(format!("`occ status --json` exited {:?}: {why}", o.code))
                }
            }
        }
    }
}

/// The agent user as seen by this process.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Effective uid.
    pub uid: u32,
    /// Names of its groups.
    pub groups: Vec<String>,
}

impl Agent {
    /// This process's uid and group names.
    pub fn current() -> Agent {
        let uid = nix::unistd::geteuid().as_raw();
        let mut gids = nix::unistd::getgroups().unwrap_or_default();
        gids.push(nix::unistd::getegid());
        let mut groups: Vec<String> = gids
            .into_iter()
            .filter_map(|g| {
                nix::unistd::Group::from_gid(g)
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .collect();
        groups.sort();
        groups.dedup();
        Agent { uid, groups }
    }
}

/// System mode's boundary on the real host, gathered by `occ_policy::boundary` as `occ doctor
/// --system` gathers it. Listing another user's sudo rights needs root; as anyone else sudo is
/// not run at all (it could prompt).
pub fn probe_system(timeout: Duration) -> occ_policy::boundary::Facts {
    use occ_policy::boundary::{self, SudoSeen, SystemPaths};
    let sudo_list = |user: &str| -> SudoSeen {
        if !nix::unistd::geteuid().is_root() {
            return SudoSeen::Unknown("listing another user's sudo rights needs root".into());
        }
        let secure = occ_policy::file::DEFAULT_SECURE_PATH;
        let Some(sudo) = exec::which_in("sudo", std::ffi::OsStr::new(secure)) else {
            return SudoSeen::NotInstalled;
        };
        let mut cmd = Command::new(&sudo);
        cmd.args(["-n", "-l", "-U", user])
            .env_clear()
            .env("PATH", secure)
            .env("LC_ALL", "C");
        match exec::run(cmd, None, timeout) {
            Ok(o) => boundary::parse_sudo_list(
                if o.timed_out { None } else { o.code },
                &String::from_utf8_lossy(&o.stdout),
                &String::from_utf8_lossy(&o.stderr),
            ),
            Err(e) => SudoSeen::Unknown(e.to_string()),
        }
    };
    boundary::gather(&SystemPaths::standard(), &sudo_list)
}

/// Everything the checks need besides occ's own files.
#[derive(Debug, Clone)]
pub struct Host {
    /// The agent user (this process, unless the gateway's uid is known).
    pub agent: Agent,
    /// The gateway process, when found.
    pub gateway: Option<GatewayProc>,
    /// Setuid tools on the system directories.
    pub priv_tools: Vec<PrivTool>,
    /// Which OpenClaw is judged (its config file and state directory), or why that cannot be
    /// told.
    pub openclaw_instance: Result<Instance, String>,
    /// The openclaw CLI, when found (and not skipped).
    pub openclaw: Option<OpenClawCli>,
    /// The broker's answer.
    pub broker: BrokerProbe,
    /// The port scan.
    pub ports: NetReport,
    /// The egress scan.
    pub egress: NetReport,
    /// This process's PATH (fallback when the gateway is not running).
    pub own_path: Option<String>,
    /// System mode's boundary, as `occ doctor --system` sees it.
    pub system: occ_policy::boundary::Facts,
}

/// Options for [`Host::probe`].
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Use this pid as the gateway instead of searching /proc.
    pub gateway_pid: Option<u32>,
    /// Timeout for each child process.
    pub child_timeout: Duration,
    /// Skip the openclaw CLI (it can be slow).
    pub skip_openclaw: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            gateway_pid: None,
            child_timeout: Duration::from_secs(5),
            skip_openclaw: false,
        }
    }
}

impl Host {
    /// Probes the real host. `ports` and `egress` come from the caller (the cycle's scans or
    /// saved reports).
    pub fn probe(paths: &Paths, opts: &ProbeOptions, ports: NetReport, egress: NetReport) -> Host {
        let proc_root = Path::new("/proc");
        let gateway = match opts.gateway_pid {
            Some(pid) => read_proc(proc_root, pid),
            None => find_gateway(proc_root),
        };
        let dirs: Vec<PathBuf> = SYSTEM_DIRS.iter().map(PathBuf::from).collect();
        let openclaw_instance = instance::resolve(
            &instance::own_env(),
            gateway.as_ref().map(|g| (g.pid, &g.env)),
            &paths.home,
            &std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        );
        let openclaw = if opts.skip_openclaw {
            None
        } else {
            find_openclaw(paths).map(|p| probe_openclaw(p, opts.child_timeout, &openclaw_instance))
        };
        Host {
            agent: Agent::current(),
            gateway,
            openclaw_instance,
            priv_tools: find_priv_tools(&dirs),
            openclaw,
            broker: probe_broker(paths, opts.child_timeout),
            ports,
            egress,
            own_path: std::env::var("PATH").ok(),
            system: probe_system(opts.child_timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_matching() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(is_gateway("openclaw-gatewa", &[]));
        assert!(is_gateway(
            "node",
            &v(&[
                "node",
                "/usr/lib/node_modules/openclaw/dist/index.js",
                "gateway"
            ])
        ));
        assert!(is_gateway(
            "node",
            &v(&["/usr/bin/openclaw", "gateway", "run"])
        ));
        assert!(!is_gateway("cargo", &v(&["cargo", "test", "gateway"])));
        assert!(!is_gateway("bash", &v(&["bash"])));
    }
}
