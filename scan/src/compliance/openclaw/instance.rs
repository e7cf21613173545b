//! Which OpenClaw occ-scan judges: its config file and state directory, resolved as OpenClaw
//! resolves them (`OPENCLAW_CONFIG_PATH`, `OPENCLAW_STATE_DIR`, a profile's `~/.openclaw-NAME`,
//! `~` against `OPENCLAW_HOME` or `HOME`), from occ-scan's own environment or else the running
//! gateway's. Pure: it reads the variables it is given, never the file system.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The variables that select an OpenClaw instance, and those `~` and ports depend on.
pub const ENV_KEYS: &[&str] = &[
    "OPENCLAW_CONFIG_PATH",
    "OPENCLAW_STATE_DIR",
    "OPENCLAW_PROFILE",
    "OPENCLAW_HOME",
    "OPENCLAW_INCLUDE_ROOTS",
    "OPENCLAW_GATEWAY_PORT",
    "HOME",
];

/// The variables that select an instance (any one of them set makes a selection).
const SELECTORS: &[&str] = &[
    "OPENCLAW_CONFIG_PATH",
    "OPENCLAW_STATE_DIR",
    "OPENCLAW_PROFILE",
];

/// OpenClaw's default gateway port.
pub const DEFAULT_GATEWAY_PORT: u16 = 18789;

/// Variables by name, as read from an environment (only [`ENV_KEYS`] matter).
pub type EnvVars = BTreeMap<String, String>;

/// This process's values of [`ENV_KEYS`].
pub fn own_env() -> EnvVars {
    ENV_KEYS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

/// Where the selection came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Nothing selected an instance: OpenClaw's default state directory, `~/.openclaw`,
    /// which is also occ's home (`$OCC_HOME`).
    Default,
    /// occ-scan's own environment.
    OwnEnv,
    /// The running gateway's environment (`/proc/PID/environ`).
    Gateway(u32),
}

/// The OpenClaw instance occ-scan judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The active config file (`openclaw.json`).
    pub config_path: PathBuf,
    /// The state directory (sessions, credentials, the state database).
    pub state_dir: PathBuf,
    /// The profile, when one is selected (`--profile NAME` sets `OPENCLAW_PROFILE=NAME`).
    pub profile: Option<String>,
    /// OpenClaw's home (`OPENCLAW_HOME`, else `HOME`): where `openclaw backup create` falls
    /// back to writing archives.
    pub home: Option<PathBuf>,
    /// `OPENCLAW_INCLUDE_ROOTS`: directories `$include` may reach besides the config's own.
    pub include_roots: Vec<PathBuf>,
    /// `OPENCLAW_GATEWAY_PORT`, when set (it wins over `gateway.port`).
    pub env_gateway_port: Option<u16>,
    /// Where the selection came from.
    pub origin: Origin,
    /// The variables the `openclaw` CLI is run with so that it resolves this same instance
    /// (empty when nothing selected one: the CLI then resolves its default itself).
    pub cli_env: Vec<(String, String)>,
    /// The selecting variables as found, for the evidence (`OPENCLAW_PROFILE=work`).
    pub selected_by: Vec<String>,
}

impl Instance {
    /// The instance at OpenClaw's default state directory, which is occ's home.
    pub fn default_at(occ_home: &Path, home: Option<PathBuf>) -> Instance {
        Instance {
            config_path: occ_home.join("openclaw.json"),
            state_dir: occ_home.to_path_buf(),
            profile: None,
            home,
            include_roots: Vec::new(),
            env_gateway_port: None,
            origin: Origin::Default,
            cli_env: Vec::new(),
            selected_by: Vec::new(),
        }
    }

    /// One line for the evidence: which config, and what selected it.
    pub fn describe(&self) -> String {
        let how = match &self.origin {
            Origin::Default => "OpenClaw's default state directory, occ's home".to_string(),
            Origin::OwnEnv => format!("{} in occ-scan's environment", self.selected_by.join(", ")),
            Origin::Gateway(pid) => format!(
                "{} in the running gateway's environment (pid {pid})",
                self.selected_by.join(", ")
            ),
        };
        format!("OpenClaw config {} ({how})", self.config_path.display())
    }

    /// The gateway's port when neither `OPENCLAW_GATEWAY_PORT` nor `gateway.port` sets one:
    /// 19001 for the `dev` profile (`--dev`), a port derived from any other profile's name,
    /// else 18789, as OpenClaw resolves it.
    pub fn default_gateway_port(&self) -> u16 {
        match self.profile.as_deref() {
            None => DEFAULT_GATEWAY_PORT,
            Some("dev") => 19001,
            Some(p) => profile_port(p),
        }
    }
}

/// OpenClaw's port for a named profile without a configured one: 20000 plus the 32-bit
/// FNV-1a hash of the name modulo 40000.
pub fn profile_port(profile: &str) -> u16 {
    let mut hash: u32 = 2_166_136_261;
    for b in profile.bytes() {
        hash = (hash ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    // 20000 + (< 40000) always fits in a u16.
    u16::try_from(20_000 + hash % 40_000).unwrap_or(DEFAULT_GATEWAY_PORT)
}

/// A profile name as OpenClaw accepts one: `^[a-z0-9][a-z0-9_-]{0,63}$`, any case.
fn valid_profile(p: &str) -> bool {
    let b = p.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

fn var<'e>(env: &'e EnvVars, key: &str) -> Option<&'e str> {
    env.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Whether `env` selects an instance.
pub fn selects(env: &EnvVars) -> bool {
    SELECTORS.iter().any(|k| var(env, k).is_some())
}

/// `.` and `..` taken out without touching the file system (as Node's `path.resolve`).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A user-supplied path as OpenClaw resolves it: `~` against `home`, then absolute against
/// `cwd`, then normalized.
fn user_path(raw: &str, home: Option<&Path>, cwd: &Path) -> Result<PathBuf, String> {
    let expanded = if raw == "~" || raw.starts_with("~/") {
        let home = home.ok_or_else(|| {
            format!("{raw} starts with ~ but neither OPENCLAW_HOME nor HOME is set")
        })?;
        home.join(raw.trim_start_matches('~').trim_start_matches('/'))
    } else {
        PathBuf::from(raw)
    };
    Ok(normalize(&cwd.join(expanded)))
}

/// Resolves the instance from occ-scan's own variables `own`, else the running gateway's
/// (`gateway`: its pid and variables), else OpenClaw's default at `occ_home`. `Err` names the
/// variable that cannot be used and how to fix it.
pub fn resolve(
    own: &EnvVars,
    gateway: Option<(u32, &EnvVars)>,
    occ_home: &Path,
    cwd: &Path,
) -> Result<Instance, String> {
    let (env, origin) = if selects(own) {
        (own, Origin::OwnEnv)
    } else if let Some((pid, g)) = gateway.filter(|(_, g)| selects(g)) {
        (g, Origin::Gateway(pid))
    } else {
        let home = var(own, "OPENCLAW_HOME")
            .or_else(|| var(own, "HOME"))
            .map(PathBuf::from);
        let mut i = Instance::default_at(occ_home, home);
        i.env_gateway_port = gateway_port_var(own)?;
        i.include_roots = include_roots(own, cwd)?;
        return Ok(i);
    };
    let whose = match origin {
        Origin::Gateway(pid) => format!(" in the gateway's environment (pid {pid})"),
        _ => String::new(),
    };
    let home = var(env, "OPENCLAW_HOME")
        .or_else(|| var(env, "HOME"))
        .map(PathBuf::from);
    let profile = match var(env, "OPENCLAW_PROFILE") {
        Some(p) if p.eq_ignore_ascii_case("default") => None,
        Some(p) if valid_profile(p) => Some(p.to_string()),
        Some(p) => {
            return Err(format!(
                "OPENCLAW_PROFILE={p:?}{whose} is not a profile name OpenClaw accepts (letters, \
                 digits, \"_\" and \"-\", up to 64, starting with a letter or digit); fix or \
                 unset it"
            ))
        }
        None => None,
    };
    let path_of = |key: &str| -> Result<Option<PathBuf>, String> {
        var(env, key)
            .map(|raw| {
                user_path(raw, home.as_deref(), cwd).map_err(|e| format!("{key}{whose}: {e}"))
            })
            .transpose()
    };
    let state_dir = match (path_of("OPENCLAW_STATE_DIR")?, &profile) {
        (Some(d), _) => d,
        (None, Some(p)) => home
            .as_deref()
            .ok_or_else(|| {
                format!("OPENCLAW_PROFILE={p}{whose} needs OPENCLAW_HOME or HOME to find ~/.openclaw-{p}")
            })?
            .join(format!(".openclaw-{p}")),
        (None, None) => home
            .as_deref()
            .ok_or_else(|| format!("OPENCLAW_CONFIG_PATH{whose} is set but neither OPENCLAW_HOME nor HOME is"))?
            .join(".openclaw"),
    };
    let config_path =
        path_of("OPENCLAW_CONFIG_PATH")?.unwrap_or_else(|| state_dir.join("openclaw.json"));
    let selected_by: Vec<String> = SELECTORS
        .iter()
        .filter_map(|k| var(env, k).map(|v| format!("{k}={v}")))
        .collect();
    let mut cli_env = vec![
        (
            "OPENCLAW_CONFIG_PATH".to_string(),
            config_path.display().to_string(),
        ),
        (
            "OPENCLAW_STATE_DIR".to_string(),
            state_dir.display().to_string(),
        ),
    ];
    if let Some(p) = &profile {
        cli_env.push(("OPENCLAW_PROFILE".into(), p.clone()));
    }
    Ok(Instance {
        config_path,
        state_dir,
        profile,
        home,
        include_roots: include_roots(env, cwd)?,
        env_gateway_port: gateway_port_var(env)?,
        origin,
        cli_env,
        selected_by,
    })
}

fn gateway_port_var(env: &EnvVars) -> Result<Option<u16>, String> {
    var(env, "OPENCLAW_GATEWAY_PORT")
        .map(|p| {
            p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("OPENCLAW_GATEWAY_PORT={p:?} is not a port (1-65535); fix or unset it")
            })
        })
        .transpose()
}

fn include_roots(env: &EnvVars, cwd: &Path) -> Result<Vec<PathBuf>, String> {
    let home = var(env, "OPENCLAW_HOME")
        .or_else(|| var(env, "HOME"))
        .map(PathBuf::from);
    let mut out: Vec<PathBuf> = Vec::new();
    for entry in var(env, "OPENCLAW_INCLUDE_ROOTS")
        .unwrap_or_default()
        .split(':')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let p = user_path(entry, home.as_deref(), cwd)
            .map_err(|e| format!("OPENCLAW_INCLUDE_ROOTS: {e}"))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvVars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const OCC: &str = "/home/a/.openclaw";

    fn at(own: &EnvVars, gw: Option<(u32, &EnvVars)>) -> Result<Instance, String> {
        resolve(own, gw, Path::new(OCC), Path::new("/work"))
    }

    #[test]
    fn nothing_selected_is_occs_home() {
        let i = at(&env(&[("HOME", "/home/a")]), None).unwrap();
        assert_eq!(i.origin, Origin::Default);
        assert_eq!(i.config_path, Path::new("/home/a/.openclaw/openclaw.json"));
        assert!(i.cli_env.is_empty());
        assert_eq!(i.default_gateway_port(), 18789);
    }

    #[test]
    fn config_path_state_dir_and_profile_as_openclaw_resolves_them() {
        // --profile work: ~/.openclaw-work, the config inside it.
        let i = at(
            &env(&[("HOME", "/home/a"), ("OPENCLAW_PROFILE", "work")]),
            None,
        )
        .unwrap();
        assert_eq!(i.state_dir, Path::new("/home/a/.openclaw-work"));
        assert_eq!(
            i.config_path,
            Path::new("/home/a/.openclaw-work/openclaw.json")
        );
        assert_eq!(i.origin, Origin::OwnEnv);
        assert!(i
            .cli_env
            .contains(&("OPENCLAW_STATE_DIR".into(), "/home/a/.openclaw-work".into())));
        // OPENCLAW_HOME moves ~ and the profile directory with it.
        let i = at(
            &env(&[
                ("HOME", "/home/a"),
                ("OPENCLAW_HOME", "/srv/oc"),
                ("OPENCLAW_PROFILE", "work"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(i.state_dir, Path::new("/srv/oc/.openclaw-work"));
        // An explicit state dir and config path win; ~ and relative paths resolve.
        let i = at(
            &env(&[
                ("HOME", "/home/a"),
                ("OPENCLAW_STATE_DIR", "~/state/../st"),
                ("OPENCLAW_CONFIG_PATH", "conf/a.json"),
                ("OPENCLAW_PROFILE", "work"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(i.state_dir, Path::new("/home/a/st"));
        assert_eq!(i.config_path, Path::new("/work/conf/a.json"));
        assert!(
            i.describe().contains("OPENCLAW_CONFIG_PATH=conf/a.json"),
            "{}",
            i.describe()
        );
        // "default" is no profile.
        let i = at(
            &env(&[("HOME", "/h"), ("OPENCLAW_PROFILE", "Default")]),
            None,
        )
        .unwrap();
        assert_eq!(i.profile, None);
        assert_eq!(i.config_path, Path::new("/h/.openclaw/openclaw.json"));
    }

    #[test]
    fn the_gateways_environment_counts_only_when_ours_selects_nothing() {
        let gw = env(&[
            ("HOME", "/home/a"),
            ("OPENCLAW_PROFILE", "ops"),
            ("OPENCLAW_STATE_DIR", "/home/a/.openclaw-ops"),
            (
                "OPENCLAW_CONFIG_PATH",
                "/home/a/.openclaw-ops/openclaw.json",
            ),
            ("OPENCLAW_GATEWAY_PORT", "19789"),
        ]);
        let i = at(&env(&[("HOME", "/home/a")]), Some((42, &gw))).unwrap();
        assert_eq!(i.origin, Origin::Gateway(42));
        assert_eq!(
            i.config_path,
            Path::new("/home/a/.openclaw-ops/openclaw.json")
        );
        assert_eq!(i.env_gateway_port, Some(19789));
        assert!(i.describe().contains("pid 42"), "{}", i.describe());
        let own = env(&[
            ("HOME", "/home/a"),
            ("OPENCLAW_CONFIG_PATH", "/etc/oc.json"),
        ]);
        let i = at(&own, Some((42, &gw))).unwrap();
        assert_eq!(i.origin, Origin::OwnEnv);
        assert_eq!(i.config_path, Path::new("/etc/oc.json"));
        // A gateway with nothing selected leaves the default.
        let plain = env(&[("HOME", "/home/a"), ("PATH", "/usr/bin")]);
        assert_eq!(
            at(&env(&[]), Some((7, &plain))).unwrap().origin,
            Origin::Default
        );
    }

    #[test]
    fn bad_variables_are_refused_by_name() {
        let e = at(&env(&[("HOME", "/h"), ("OPENCLAW_PROFILE", "../x")]), None).unwrap_err();
        assert!(e.contains("OPENCLAW_PROFILE"), "{e}");
        let e = at(
            &env(&[
                ("HOME", "/h"),
                ("OPENCLAW_STATE_DIR", "/s"),
                ("OPENCLAW_GATEWAY_PORT", "http"),
            ]),
            None,
        )
        .unwrap_err();
        assert!(e.contains("OPENCLAW_GATEWAY_PORT"), "{e}");
        let e = at(&env(&[("OPENCLAW_STATE_DIR", "~/s")]), None).unwrap_err();
        assert!(
            e.contains("OPENCLAW_STATE_DIR") && e.contains("HOME"),
            "{e}"
        );
    }

    #[test]
    fn profile_ports_match_openclaw() {
        // The values OpenClaw 2026.9.6's own resolveGatewayPort returns for these profiles.
        let i = |p: &str| Instance {
            profile: Some(p.into()),
            ..Instance::default_at(Path::new("/x"), None)
        };
        assert_eq!(i("dev").default_gateway_port(), 19001);
        assert_eq!(i("work").default_gateway_port(), 41984);
        assert_eq!(profile_port("rescue"), 23532);
        assert_eq!(profile_port("ops"), 55291);
    }
}
