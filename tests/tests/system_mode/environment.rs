//! The approved command's environment, compared with what the real sudo gives the same user
//! for the same call.

use serde_json::{json, Value};

use super::world::{self, wait_count, World, TARGET};
use crate::approval::{pending_id, text};

/// A sudoers drop-in for one test, checked with `visudo -c`, removed when dropped.
struct SudoersDropIn(std::path::PathBuf);

impl SudoersDropIn {
    fn new(name: &str, line: &str) -> SudoersDropIn {
        let path = std::path::Path::new("/etc/sudoers.d").join(name);
        world::write_root_file(&path, line.as_bytes(), 0o440);
        let d = SudoersDropIn(path);
        let check = std::process::Command::new("/usr/sbin/visudo")
            .arg("-cf")
            .arg(&d.0)
            .output()
            .unwrap();
        assert!(check.status.success(), "{}", text(&check.stderr));
        d
    }
}

impl Drop for SudoersDropIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Who keeps a variable the other does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keeps {
    Sudo,
    Occ,
}

/// One table of differences: (variable, who keeps it, why the other does not).
type Differences = &'static [(&'static str, Keeps, &'static str)];

/// What the real sudo keeps under Debian's default sudoers (its env_keep list) that the system
/// broker never passes on, each with why. Everything else the approved command sees must be
/// what sudo gives.
const ENV_DIFFERENCES: Differences = &[
    (
        "DISPLAY",
        Keeps::Sudo,
        "points a root command at the requester's X server: a GUI run as root would take input \
         the agent can forge (kept only when broker.json's env_keep names it exactly)",
    ),
    (
        "XAUTHORITY",
        Keeps::Sudo,
        "a file the requester names and may have written, read by root (and the X cookie in it)",
    ),
    ("XAUTHORIZATION", Keeps::Sudo, "the X cookie, as XAUTHORITY"),
    (
        "KRB5CCNAME",
        Keeps::Sudo,
        "a credential cache the requester chooses, used by root's Kerberos clients",
    ),
    (
        "PS1",
        Keeps::Sudo,
        "shells expand prompt strings ($(...)), so the requester would choose code run as root",
    ),
    ("PS2", Keeps::Sudo, "as PS1"),
    (
        "HOSTNAME",
        Keeps::Sudo,
        "cosmetic; each variable the shim forwards is one more requester-chosen input to root's \
         command, and it forwards only what env_keep may keep (OPENCLAW_*, terminal, locale, \
         time zone, NO_COLOR, and DISPLAY, XAUTHORITY and KRB5CCNAME for an env_keep that names \
         them)",
    ),
    ("LS_COLORS", Keeps::Sudo, "cosmetic, as HOSTNAME"),
    ("COLORS", Keeps::Sudo, "cosmetic, as HOSTNAME"),
    ("DPKG_COLORS", Keeps::Sudo, "cosmetic, as HOSTNAME"),
    ("XDG_CURRENT_DESKTOP", Keeps::Sudo, "cosmetic, as HOSTNAME"),
];

/// What occ's default `env_keep` (DESIGN.md: TERM, LANG, LC_*, COLORTERM, NO_COLOR) does
/// differently from sudo's default checked set, each with why.
const DEFAULT_ENV_KEEP_DIFFERENCES: Differences = &[
    (
        "LANGUAGE",
        Keeps::Sudo,
        "not in occ's default env_keep; an admin who wants it adds it to broker.json's env_keep",
    ),
    ("LINGUAS", Keeps::Sudo, "as LANGUAGE"),
    ("TZ", Keeps::Sudo, "as LANGUAGE"),
    (
        "NO_COLOR",
        Keeps::Occ,
        "in occ's default env_keep (it can only turn colour off); not in sudo's",
    ),
];

/// broker.json's `env_keep` set to sudo's default checked set (`sudo -V`: "Environment
/// variables to check for safety"), as an admin who wants sudo's behaviour sets it.
const SUDO_ENV_CHECK: &[&str] = &[
    "TERM",
    "COLORTERM",
    "LANG",
    "LANGUAGE",
    "LINGUAS",
    "LC_*",
    "TZ",
];

/// The caller's variables: sudo's checked set (terminal, locale, time zone) with safe values,
/// its default env_keep set, and some that neither passes.
const SAFE_ENV: &[(&str, &str)] = &[
    ("TERM", "xterm-256color"),
    ("LANG", "C.UTF-8"),
    ("LC_ALL", "C.UTF-8"),
    ("LC_TIME", "C"),
    ("LANGUAGE", "en_US:en"),
    ("LINGUAS", "en"),
    ("COLORTERM", "truecolor"),
    ("TZ", "Europe/Paris"),
    ("DISPLAY", ":0"),
    ("XAUTHORITY", "/tmp/occ-agent-xauth"),
    ("XAUTHORIZATION", "MIT-MAGIC-COOKIE-1"),
    ("KRB5CCNAME", "FILE:/tmp/occ-agent-krb5cc"),
    ("PS1", "$(id)# "),
    ("PS2", "> "),
    ("HOSTNAME", "agent-box"),
    ("LS_COLORS", "di=01;34"),
    ("COLORS", "/etc/DIR_COLORS"),
    ("DPKG_COLORS", "always"),
    ("XDG_CURRENT_DESKTOP", "GNOME"),
    ("NO_COLOR", "1"),
    ("FOO", "bar"),
    ("PYTHONPATH", "/tmp"),
    ("BASH_ENV", "/tmp/occ-agent-rc"),
    ("OPENCLAW_TASK_SESSION_ID", "s1"),
];

/// The checked set with values sudo refuses (`/`, `%`, a time zone outside the zone database
/// or with a `..` element), and a time zone path it accepts.
const UNSAFE_ENV: &[(&str, &str)] = &[
    ("TERM", "../../tmp/term"),
    ("LANG", "C%n"),
    ("LC_ALL", "/tmp/locale"),
    ("LC_CTYPE", "C.UTF-8"),
    ("LANGUAGE", "en/../x"),
    ("LINGUAS", "%s"),
    ("COLORTERM", "a/b"),
    ("TZ", ":/usr/share/zoneinfo/../../../tmp/tz"),
];

const ZONE_PATH_ENV: &[(&str, &str)] = &[("TZ", ":/usr/share/zoneinfo/UTC"), ("TERM", "vt100")];

/// The approved command sees what `/usr/bin/sudo` gives the same user for the same call under
/// a default sudoers (env_reset, secure_path): the same argv, uid, gid, cwd and environment,
/// but for [`ENV_DIFFERENCES`] (and, with occ's default env_keep,
/// [`DEFAULT_ENV_KEEP_DIFFERENCES`]), each with its reason; for root and for `-u`, with safe
/// and unsafe terminal, locale and time-zone values.
#[test]
fn system_command_environment_matches_the_real_sudo_but_for_documented_differences() {
    let Some(w) = World::started(&["/usr/bin/sudo", "/usr/sbin/visudo"]) else {
        return;
    };
    let probe = world::install_root_exe(occ_tests::bin("occ-argv-probe"), "argv-probe");
    let probe = probe.to_str().unwrap();
    // The comparison user is a requester too, so both calls come from the same user.
    let _sudoers = SudoersDropIn::new(
        "occ-systests-probe",
        &format!("{} ALL=(ALL) NOPASSWD: {probe}\n", world::OTHER),
    );
    /// (what, broker.json's env_keep (None: the default), sudo options, the caller's
    /// variables, the tables of differences that apply)
    type Case<'a> = (
        &'a str,
        Option<&'a [&'a str]>,
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
        &'a [Differences],
    );
    const NONE: &[Differences] = &[];
    let both = &[ENV_DIFFERENCES, DEFAULT_ENV_KEEP_DIFFERENCES];
    let sudo_keep = Some(SUDO_ENV_CHECK);
    let cases: &[Case] = &[
        ("default env_keep, safe values", None, &[], SAFE_ENV, both),
        (
            "default env_keep, unsafe values",
            None,
            &[],
            UNSAFE_ENV,
            NONE,
        ),
        (
            "sudo's env_keep, safe values",
            sudo_keep,
            &[],
            SAFE_ENV,
            &[ENV_DIFFERENCES],
        ),
        (
            "sudo's env_keep, unsafe values",
            sudo_keep,
            &[],
            UNSAFE_ENV,
            NONE,
        ),
        (
            "sudo's env_keep, a zone path",
            sudo_keep,
            &[],
            ZONE_PATH_ENV,
            NONE,
        ),
        (
            "sudo's env_keep, -u",
            sudo_keep,
            &["-u", TARGET],
            SAFE_ENV,
            &[ENV_DIFFERENCES],
        ),
    ];
    let mut env_keep: Option<&[&str]> = None;
    let mut loads = 1;
    for (what, keep, opts, env, tables) in cases {
        if *keep != env_keep {
            let mut b = world::default_broker_json();
            if let Some(k) = keep {
                b["env_keep"] = json!(k);
            }
            w.write_broker_json(&b);
            w.hup();
            loads += 1;
            wait_count("config_loaded", loads);
            env_keep = *keep;
        }
        let mut args = vec!["-n"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[probe, "one", "two words", ""]);
        let id = pending_id(&w.sudo(&w.other, &args, env));
        w.approve(&id, &[]);
        let occ = w.sudo(&w.other, &args, env);
        assert!(occ.status.success(), "{what}: {}", text(&occ.stderr));
        let sudo = w
            .as_user(&w.other, "/usr/bin/sudo")
            .args(&args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(sudo.status.success(), "{what}: {}", text(&sudo.stderr));
        let mut occ: Value = serde_json::from_slice(&occ.stdout).unwrap();
        let mut sudo: Value = serde_json::from_slice(&sudo.stdout).unwrap();
        for (name, keeps, why) in tables.iter().copied().flatten() {
            if !env.iter().any(|(k, _)| k == name) {
                continue;
            }
            let (keeper, other) = match keeps {
                Keeps::Sudo => (&mut sudo, &occ),
                Keeps::Occ => (&mut occ, &sudo),
            };
            assert!(
                keeper["env"]
                    .as_object_mut()
                    .unwrap()
                    .remove(*name)
                    .is_some(),
                "{what}: {keeps:?} no longer keeps {name}; drop it from the table"
            );
            assert!(other["env"].get(*name).is_none(), "{what}: {name}: {why}");
        }
        // Which process it was differs run to run; and, on purpose, the system broker gives
        // each command a session of its own (sudo without a pty keeps the caller's) and, for a
        // target other than root, an empty bounding set and no_new_privs (sudo keeps the
        // bounding set): run.rs checks those. This test is about everything else.
        for v in [&mut occ, &mut sudo] {
            if let Some(o) = v.as_object_mut() {
                for k in ["pid", "sid", "pgid", "cap_bnd", "no_new_privs"] {
                    o.remove(k);
                }
            }
        }
        assert_eq!(occ, sudo, "{what}");
    }
}
