//! `schedule install|remove|status` through the real binary, with fake `systemctl`, `crontab`
//! and `launchctl` first on PATH (the machine's crontab is never touched), compared with
//! golden copies of the unit, timer, crontab line and plist. Paths contain a space, a quote
//! and a `%` to prove the quoting (`@TMP@` stands for the test's temporary directory).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::compliance_support::{write, write_exe};

const EXE: &str = "/opt/occ tools/bin/occ-scan";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(systemd_works: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fakebin");
        let log = dir.path().join("calls.log");
        let tab = dir.path().join("crontab.txt");
        write_exe(
            &fake.join("systemctl"),
            &format!(
                "#!/bin/sh\necho \"systemctl $*\" >> '{}'\nif [ \"$2\" = show-environment ]; then exit {}; fi\nif [ \"$2\" = enable ] && [ -f '{d}/fail-enable' ]; then echo 'Failed to enable unit' >&2; exit 1; fi\nexit 0\n",
                log.display(),
                if systemd_works { 0 } else { 1 },
                d = dir.path().display()
            ),
        );
        write_exe(
            &fake.join("crontab"),
            &format!(
                "#!/bin/sh\necho \"crontab $*\" >> '{l}'\ncase \"$1\" in\n-l) if [ -f '{t}' ]; then cat '{t}'; else echo 'no crontab for agent' >&2; exit 1; fi;;\n-) cat > '{t}';;\n-r) rm -f '{t}';;\nesac\n",
                l = log.display(),
                t = tab.display()
            ),
        );
        write_exe(
            &fake.join("launchctl"),
            &format!(
                "#!/bin/sh\necho \"launchctl $*\" >> '{}'\nexit 0\n",
                log.display()
            ),
        );
        Env { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("occ home's 100%")
    }

    fn run(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let out = Command::new(env!("CARGO_BIN_EXE_occ-scan"))
            .arg("--json")
            .arg("schedule")
            .args(args)
            .args(["--exe", EXE])
            .env_clear()
            .env(
                "PATH",
                format!(
                    "{}:/usr/bin:/bin",
                    self.dir.path().join("fakebin").display()
                ),
            )
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("OCC_HOME", self.home())
            .output()
            .unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
    }

    fn crontab(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("crontab.txt")).ok()
    }

    fn generic(&self, text: &str) -> String {
        text.replace(&self.dir.path().display().to_string(), "@TMP@")
    }
}

fn golden(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("OCC_UPDATE_GOLDEN").is_some() {
        return std::fs::read_to_string(&p).unwrap_or_default();
    }
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn check_golden(name: &str, got: &str) {
    if std::env::var_os("OCC_UPDATE_GOLDEN").is_some() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        write(&p, got);
    }
    assert_eq!(got, golden(name), "golden file {name} differs");
}

#[test]
fn systemd_timer_install_status_remove() {
    let e = Env::new(true);
    let (code, v) = e.run(&["install", "--every", "15m"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["backend"], "systemd");
    let units = e.dir.path().join("config/systemd/user");
    let service = std::fs::read_to_string(units.join("occ-scan.service")).unwrap();
    let timer = std::fs::read_to_string(units.join("occ-scan.timer")).unwrap();
    check_golden("occ-scan.service", &e.generic(&service));
    check_golden("occ-scan.timer", &timer);
    let calls = e.calls();
    assert!(calls.contains("systemctl --user daemon-reload"), "{calls}");
    assert!(
        calls.contains("systemctl --user enable --now occ-scan.timer"),
        "{calls}"
    );
    assert!(e.crontab().is_none(), "systemd install touched the crontab");

    let (_, v) = e.run(&["status"]);
    assert_eq!(v["installed"], true);
    assert_eq!(v["backend"], "systemd");

    let (code, v) = e.run(&["remove"]);
    assert_eq!(code, 0, "{v}");
    assert!(!units.join("occ-scan.service").exists());
    assert!(!units.join("occ-scan.timer").exists());
    assert!(e
        .calls()
        .contains("systemctl --user disable --now occ-scan.timer"));
    assert_eq!(
        std::fs::read_dir(&units).unwrap().count(),
        0,
        "removal left files"
    );
    let (_, v) = e.run(&["status"]);
    assert_eq!(v["installed"], false);
}

#[test]
fn cron_line_when_systemd_is_unavailable_keeps_other_lines() {
    let e = Env::new(false);
    write(
        &e.dir.path().join("crontab.txt"),
        "MAILTO=admin\n0 3 * * * /usr/local/bin/backup # nightly\n",
    );
    let (code, v) = e.run(&["install", "--every", "10m"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["backend"], "cron");
    let tab = e.crontab().unwrap();
    assert!(tab.starts_with("MAILTO=admin\n0 3 * * * /usr/local/bin/backup # nightly\n"));
    let ours: Vec<&str> = tab
        .lines()
        .filter(|l| l.contains("occ-scan-cycle"))
        .collect();
    assert_eq!(ours.len(), 1);
    check_golden("crontab.txt", &format!("{}\n", e.generic(ours[0])));
    // Installing twice replaces the line, never duplicates it.
    e.run(&["install", "--every", "10m"]);
    assert_eq!(e.crontab().unwrap().matches("occ-scan-cycle").count(), 1);
    let (code, _) = e.run(&["remove"]);
    assert_eq!(code, 0);
    assert_eq!(
        e.crontab().unwrap(),
        "MAILTO=admin\n0 3 * * * /usr/local/bin/backup # nightly\n"
    );
}

#[test]
fn cron_remove_of_the_only_line_removes_the_crontab() {
    let e = Env::new(false);
    e.run(&["install", "--backend", "cron"]);
    assert!(e.crontab().is_some());
    e.run(&["remove", "--backend", "cron"]);
    assert!(e.crontab().is_none(), "an empty crontab was left behind");
    assert!(e.calls().contains("crontab -r"));
}

#[test]
fn launchd_plist_golden_untested_on_real_macos() {
    let e = Env::new(false);
    let (code, v) = e.run(&["install", "--backend", "launchd", "--every", "30m"]);
    assert_eq!(code, 0, "{v}");
    let p = e
        .dir
        .path()
        .join("Library/LaunchAgents/dev.occ.occ-scan.plist");
    let plist = std::fs::read_to_string(&p).unwrap();
    check_golden("occ-scan.plist", &e.generic(&plist));
    assert!(e.calls().contains("launchctl bootstrap gui/"));
    e.run(&["remove", "--backend", "launchd"]);
    assert!(!p.exists());
}

#[test]
fn bad_interval_is_a_usage_error() {
    let e = Env::new(true);
    let (code, v) = e.run(&["install", "--every", "7m"]);
    assert_eq!(code, 2);
    assert!(v["error"].as_str().unwrap().contains("7m"));
    assert!(e.calls().is_empty() || !e.calls().contains("enable"));
}

#[test]
fn failed_enable_leaves_no_unit_files() {
    let e = Env::new(true);
    write(&e.dir.path().join("fail-enable"), "");
    let (code, v) = e.run(&["install"]);
    assert_eq!(code, 2, "{v}");
    assert!(v["error"].as_str().unwrap().contains("enable"), "{v}");
    let units = e.dir.path().join("config/systemd/user");
    assert!(!units.join("occ-scan.service").exists());
    assert!(!units.join("occ-scan.timer").exists());
}
