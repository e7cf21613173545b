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
        Env::with(systemd_works, true)
    }

    /// Fakes in `fakebin` (a `crontab` only when `crontab`), and a `tools` directory with only
    /// what the fakes need: PATH is those two, so the machine's own crontab is never found.
    fn with(systemd_works: bool, crontab: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fakebin");
        let tools = dir.path().join("tools");
        std::fs::create_dir_all(&tools).unwrap();
        for t in ["sh", "cat", "rm", "touch"] {
            let real = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(t))
                .find(|p| p.exists())
                .unwrap();
            std::os::unix::fs::symlink(real, tools.join(t)).unwrap();
        }
        let log = dir.path().join("calls.log");
        let tab = dir.path().join("crontab.txt");
        write_exe(
            &fake.join("systemctl"),
            &format!(
                "#!/bin/sh\necho \"systemctl $*\" >> '{}'\nif [ \"$2\" = show-environment ]; then exit {}; fi\nif [ \"$2\" = enable ] && [ -f '{d}/fail-enable' ]; then echo 'Failed to enable unit: Unit occ-scan.timer not found.' >&2; exit 1; fi\nif [ \"$2\" = enable ]; then touch '{d}/timer-active'; fi\nif [ \"$2\" = disable ]; then rm -f '{d}/timer-active'; fi\nif [ \"$2\" = is-active ]; then if [ -f '{d}/timer-active' ]; then echo active; exit 0; fi; echo inactive; exit 3; fi\nexit 0\n",
                log.display(),
                if systemd_works { 0 } else { 1 },
                d = dir.path().display()
            ),
        );
        if crontab {
            write_exe(
                &fake.join("crontab"),
                &format!(
                    "#!/bin/sh\necho \"crontab $*\" >> '{l}'\ncase \"$1\" in\n-l) if [ -f '{t}' ]; then cat '{t}'; else echo 'no crontab for agent' >&2; exit 1; fi;;\n-) cat > '{t}';;\n-r) rm -f '{t}';;\nesac\n",
                    l = log.display(),
                    t = tab.display()
                ),
            );
        }
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

    /// `occ-scan [--json] schedule ARGS` (install gets `--exe`): exit code, stdout, stderr.
    fn raw(&self, json: bool, args: &[&str]) -> (i32, String, String) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_occ-scan"));
        if json {
            c.arg("--json");
        }
        c.arg("schedule").args(args);
        if args.first() == Some(&"install") {
            c.args(["--exe", EXE]);
        }
        let out = c
            .env_clear()
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.dir.path().join("fakebin").display(),
                    self.dir.path().join("tools").display()
                ),
            )
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("OCC_HOME", self.home())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn run(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let (code, stdout, stderr) = self.raw(true, args);
        let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        (code, v)
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

    let (code, v) = e.run(&["status"]);
    assert_eq!(v["installed"], true);
    assert_eq!(v["backend"], "systemd");
    assert_eq!(v["running"], true, "{v}");
    assert_eq!(code, 0, "{v}");
    assert!(e
        .calls()
        .contains("systemctl --user is-active occ-scan.timer"));

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
    let (code, v) = e.run(&["status"]);
    assert_eq!(v["installed"], false);
    assert_eq!(code, 1, "nothing scheduled is not a clean status: {v}");
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
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("`systemctl --user enable --now occ-scan.timer` exited with status 1: Failed to enable unit: Unit occ-scan.timer not found."),
        "{v}"
    );
    assert!(!err.contains("Some("), "{err}");
    let units = e.dir.path().join("config/systemd/user");
    assert!(!units.join("occ-scan.service").exists());
    assert!(!units.join("occ-scan.timer").exists());
}

/// A timer whose unit files are there but which is not active is reported as not running,
/// with the fix, and a non-zero exit.
#[test]
fn status_of_an_inactive_timer_is_not_running_with_the_fix() {
    let e = Env::new(true);
    assert_eq!(e.run(&["install"]).0, 0);
    std::fs::remove_file(e.dir.path().join("timer-active")).unwrap();
    let (code, v) = e.run(&["status"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["installed"], true);
    assert_eq!(v["running"], false);
    let p = v["problems"].to_string();
    assert!(
        p.contains("occ-scan.timer is installed but not active (inactive)")
            && p.contains("systemctl --user enable --now occ-scan.timer"),
        "{p}"
    );
    let (code, out, err) = e.raw(false, &["status"]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("schedule status: systemd schedule installed but NOT running"),
        "{out}"
    );
    assert!(err.contains("not active"), "{err}");
}

/// A crontab line with no cron daemon is installed but not running (exit 1, the fix named);
/// once a process named `cron` runs, status is clean. The daemon is recognised by its process
/// name in /proc, so a copy of `sleep` named `cron` stands in for it.
#[test]
fn cron_status_checks_that_a_cron_daemon_runs() {
    let e = Env::new(false);
    let (code, v) = e.run(&["install", "--every", "5m"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["backend"], "cron");
    let real = occ_scan::compliance::schedule::cron_daemon(Path::new("/proc"));
    if let Some((pid, name)) = &real {
        eprintln!("a real cron daemon runs here ({name}, pid {pid}): the not-running half is covered by the unit test");
    } else {
        assert_eq!(v["running"], false, "{v}");
        let (code, v) = e.run(&["status"]);
        assert_eq!(code, 1, "{v}");
        assert_eq!(v["installed"], true);
        assert_eq!(v["running"], false);
        let p = v["problems"].to_string();
        assert!(
            p.contains("no cron daemon runs")
                && p.contains("apt-get install cron")
                && p.contains("--backend systemd"),
            "{p}"
        );
    }
    let cron = e.dir.path().join("cron");
    let sleep = ["/usr/bin/sleep", "/bin/sleep"]
        .iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    std::fs::copy(sleep, &cron).unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let daemon = Kill(Command::new(&cron).arg("60").spawn().unwrap());
    let pid = daemon.0.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "cron\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the stand-in never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (code, v) = e.run(&["status"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["running"], true, "{v}");
    assert!(
        v["notes"].to_string().contains("the cron daemon runs"),
        "{v}"
    );
    drop(daemon);
}

/// Without systemd and without crontab, install says so and names both fixes.
#[test]
fn no_crontab_is_a_clear_error_naming_the_fix() {
    let e = Env::with(false, false);
    let (code, v) = e.run(&["install"]);
    assert_eq!(code, 2, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("`crontab` is not installed")
            && err.contains("apt-get install cron")
            && err.contains("--backend systemd"),
        "{err}"
    );
    assert!(!err.contains("cannot start"), "{err}");
    let (code, v) = e.run(&["install", "--backend", "cron"]);
    assert_eq!(code, 2, "{v}");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("apt-get install cron"));
    assert!(!e.home().exists() || std::fs::read_dir(e.home()).unwrap().count() == 0);
}

/// `remove` says what it removed; with nothing installed it says there was nothing to remove.
/// Neither prints "not installed" as its verdict.
#[test]
fn remove_says_what_it_removed() {
    let e = Env::new(false);
    assert_eq!(e.raw(false, &["install"]).0, 0);
    let (code, out, err) = e.raw(false, &["remove"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("schedule remove: removed the cron schedule\n"),
        "{out}"
    );
    assert!(out.contains("done: removed the crontab line"), "{out}");
    assert!(!out.contains("not installed"), "{out}");
    let (code, out, _) = e.raw(false, &["remove"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("schedule remove: nothing to remove, no occ-scan schedule was installed"),
        "{out}"
    );
}

/// Each action takes only its own flags: clap refuses the others (usage error, exit 2) and
/// nothing runs.
#[test]
fn flags_of_another_action_are_refused() {
    let e = Env::new(true);
    for args in [
        &["status", "--every", "1h"][..],
        &["status", "--backend", "cron"],
        &["remove", "--every", "15m"],
        &["remove", "--exe", "/usr/bin/true"],
    ] {
        let (code, out, err) = e.raw(false, args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(err.contains("unexpected argument"), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    assert!(e.calls().is_empty(), "{}", e.calls());
}
