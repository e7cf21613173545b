//! The approved command's environment, compared with what the real sudo gives the same user
//! for the same call.

use serde_json::Value;

use super::world::{self, World, TARGET};
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

/// What the real sudo keeps, under Debian's default sudoers, that the system broker does not
/// pass on, each with why. Everything else the approved command sees must be what sudo gives.
const ENV_DIFFERENCES: &[(&str, &str)] = &[
    (
        "DISPLAY",
        "points a root command at the requester's X server: a GUI run as root would take input \
         the agent can forge",
    ),
    (
        "XAUTHORITY",
        "a file the requester names and may have written, read by root (and the X cookie in it)",
    ),
    ("XAUTHORIZATION", "the X cookie, as XAUTHORITY"),
    (
        "KRB5CCNAME",
        "a credential cache the requester chooses, used by root's Kerberos clients",
    ),
    (
        "PS1",
        "shells expand prompt strings ($(...)), so the requester would choose code run as root",
    ),
    ("PS2", "as PS1"),
    (
        "HOSTNAME",
        "cosmetic; each variable the shim forwards is one more requester-chosen input to root's \
         command, and the shim forwards only what the grant binds (OPENCLAW_*, terminal, locale, \
         time zone)",
    ),
    ("LS_COLORS", "cosmetic, as HOSTNAME"),
    ("COLORS", "cosmetic, as HOSTNAME"),
    ("DPKG_COLORS", "cosmetic, as HOSTNAME"),
    ("XDG_CURRENT_DESKTOP", "cosmetic, as HOSTNAME"),
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
/// but for [`ENV_DIFFERENCES`], each with its reason, for root and for `-u`, with safe and
/// unsafe terminal, locale and time-zone values.
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
    /// (what, sudo options, the caller's variables)
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        ("root, safe values", &[], SAFE_ENV),
        ("root, unsafe values", &[], UNSAFE_ENV),
        ("root, a zone file path", &[], ZONE_PATH_ENV),
        ("-u, safe values", &["-u", TARGET], SAFE_ENV),
    ];
    for (what, opts, env) in cases {
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
        let occ: Value = serde_json::from_slice(&occ.stdout).unwrap();
        let mut sudo: Value = serde_json::from_slice(&sudo.stdout).unwrap();
        let sudo_env = sudo["env"].as_object_mut().unwrap();
        for (name, why) in ENV_DIFFERENCES {
            if env.iter().any(|(k, _)| k == name) {
                assert!(
                    sudo_env.remove(*name).is_some(),
                    "{what}: sudo no longer keeps {name}; drop it from ENV_DIFFERENCES"
                );
                assert!(
                    occ["env"].get(*name).is_none(),
                    "{what}: occ passes {name} ({why})"
                );
            }
        }
        assert_eq!(occ, sudo, "{what}");
    }
}
