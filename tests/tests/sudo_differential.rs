//! Differential test against the real sudo: for each invocation in the table, `occ explain
//! --json` must agree with what sudo actually ran (resolved argv, user, group, env
//! assignments, cwd), or, for errors, with sudo's exit status and first stderr line. Options
//! occ refuses by design are checked as refusals. Needs root and /usr/bin/sudo.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// What the row asserts.
pub(crate) enum Expect {
    /// sudo runs the probe; explain must agree on what ran.
    Agree,
    /// sudo refuses with exit 1; explain denies with the same first stderr line.
    SameError,
    /// occ refuses by design with this reason code (sudo's behaviour is not compared).
    Refused(&'static str),
    /// sudo answers itself with exit 0; the broker answers these (decision allow).
    Answered,
}

/// Files the test puts in place, removed on drop even when an assertion fails.
struct Setup {
    probe_dir: PathBuf,
    probe_abs: PathBuf,
    probe_name: String,
    on_path: PathBuf,
    sudoers: PathBuf,
    home: tempfile::TempDir,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = std::fs::remove_file(&self.on_path);
        let _ = std::fs::remove_dir_all(&self.probe_dir);
    }
}

fn install(src: &Path, dst: &Path) {
    occ_tests::copy_exe(src, dst);
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755)).expect("chmod probe");
}

fn setup() -> Setup {
    let pid = std::process::id();
    let probe = PathBuf::from(env!("CARGO_BIN_EXE_occ-argv-probe"));
    // occ only runs root-owned files in root-owned directories nobody else can write: a fresh
    // 0755 directory under /usr/local/lib, and a copy on secure_path for lookups by name.
    let probe_dir = PathBuf::from(format!("/usr/local/lib/occ-difftest-{pid}"));
    std::fs::create_dir_all(&probe_dir).expect("probe dir");
    std::fs::set_permissions(&probe_dir, std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    let probe_abs = probe_dir.join("occ-argv-probe");
    install(&probe, &probe_abs);
    let probe_name = format!("occ-probe-{pid}");
    let on_path = PathBuf::from("/usr/local/bin").join(&probe_name);
    install(&probe, &on_path);
    // `-D` needs sudoers' runcwd; a drop-in, checked with visudo first, removed on drop.
    let sudoers = PathBuf::from(format!("/etc/sudoers.d/occ-difftest-{pid}"));
    let staged = probe_dir.join("sudoers");
    std::fs::write(&staged, "Defaults runcwd=*\n").expect("stage sudoers");
    let ok = Command::new("visudo")
        .args(["-cqf"])
        .arg(&staged)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "visudo rejected the runcwd drop-in");
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o440))
        .expect("chmod sudoers");
    std::fs::copy(&staged, &sudoers).expect("install sudoers drop-in");
    std::fs::set_permissions(&sudoers, std::fs::Permissions::from_mode(0o440))
        .expect("chmod sudoers");
    let home = tempfile::tempdir().expect("OCC_HOME");
    Setup {
        probe_dir,
        probe_abs,
        probe_name,
        on_path,
        sudoers,
        home,
    }
}

/// Runs the real sudo (argv[0] "sudo", as an agent types it) under a 20 s `timeout`, so a
/// command that waits for a terminal cannot hang the suite.
fn run_sudo(args: &[String]) -> Output {
    Command::new("timeout")
        .args(["20", "sudo"])
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sudo")
}

fn run_explain(home: &Path, args: &[String]) -> Output {
    Command::new(occ_tests::bin("occ"))
        .args(["explain", "--json", "--"])
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("OCC_HOME", home)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run occ explain")
}

fn first_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

pub(crate) fn table(p: &str, a: &str) -> Vec<(Vec<String>, Expect)> {
    use Expect::*;
    let rows: Vec<(Vec<&str>, Expect)> = vec![
        (vec![p], Agree),
        (vec![p, "a", "b"], Agree),
        (vec![a, "-l"], Agree),
        (vec![a, "a b", "c"], Agree),
        (vec!["-u", "nobody", p], Agree),
        (vec!["-u", "#65534", p], Agree),
        (vec!["-u#65534", p], Agree),
        (vec!["--user=nobody", p], Agree),
        (vec!["--user", "nobody", p], Agree),
        (vec!["--us=nobody", p], Agree),
        (vec!["-u", "occ-agent", p, "x"], Agree),
        (vec!["-nu", "nobody", p], Agree),
        (vec!["-nuroot", p], Agree),
        (vec!["-nu#65534", p], Agree),
        (vec!["-g", "nogroup", p], Agree),
        (vec!["-g", "#65534", p], Agree),
        (vec!["-u", "nobody", "-g", "root", p], Agree),
        (vec!["--group=daemon", p], Agree),
        (vec!["-u", "occ-agent", "-g", "occ-agent", p], Agree),
        (vec!["-g", "occ-agent", "-u", "occ-agent", p], Agree),
        (vec!["-D", "/tmp", p], Agree),
        (vec!["--chdir=/usr", p], Agree),
        (vec!["-D/etc", p], Agree),
        (vec!["-u", "nobody", "-D", "/", p], Agree),
        (vec!["-D", "/tmp", "-u", "nobody", a], Agree),
        (vec!["-H", p], Agree),
        (vec!["-H", "-u", "nobody", p], Agree),
        (vec!["--set-home", p], Agree),
        (vec!["OCCT_A=1", p], Agree),
        (
            vec!["OCCT_A=1", "-u", "nobody", "OCCT_B=two words", p],
            Agree,
        ),
        (vec!["OCCT_A=", p], Agree),
        (vec!["OCCT_A=x=y", p], Agree),
        (vec!["OCCT_A=1", "OCCT_A=2", p], Agree),
        (vec!["-u", "nobody", "-H", "OCCT_H=1", p, "arg"], Agree),
        (vec!["--", p, "-u", "root"], Agree),
        (vec!["-n", "--", p], Agree),
        (vec!["OCCT_A=1", "--", p, "OCCT_B=2"], Agree),
        (vec![p, "--", "-x"], Agree),
        (vec![p, "OCCT_Z=1"], Agree),
        (vec!["-nH", p], Agree),
        (vec!["-Hn", "-u", "nobody", p, "-n"], Agree),
        (vec!["--non-interactive", p], Agree),
        (vec!["--non", p], Agree),
        (vec!["-k", p], Agree),
        (vec!["-S", p], Agree),
        (vec!["-A", p], Agree),
        (vec!["-p", "pw:", p], Agree),
        (vec!["-B", p], Agree),
        (vec!["-N", p], Agree),
        (vec!["-P", p], Agree),
        (vec!["-Z"], SameError),
        (vec!["-u"], SameError),
        (vec!["--user"], SameError),
        (vec!["-u", "occ-no-such-user", p], SameError),
        (vec!["-g", "occ-no-such-group", p], SameError),
        (vec!["-u", "#99999", p], SameError),
        (vec!["--xyz", p], SameError),
        (vec!["--p", p], SameError),
        (vec!["occ-no-such-command-x"], SameError),
        (vec!["/nonexistent/cmd"], SameError),
        (vec!["=x"], SameError),
        (vec!["--", "-u", "root", p], SameError),
        (vec!["-i", "-s"], SameError),
        (vec!["-A", "-S", p], SameError),
        (vec!["-C", "2", p], SameError),
        (vec![], SameError),
        (vec!["-H"], SameError),
        (vec!["-U", "root", p], SameError),
        (vec!["-N", "-k", p], SameError),
        (vec!["--list=x"], SameError),
        (vec!["-v", p], SameError),
        (vec!["--preserve-env=A=1", p], SameError),
        (vec!["-u", "", p], SameError),
        (vec!["-lh"], SameError),
        (vec!["-E", "-i", p], SameError),
        (vec!["-b", p], Refused("option_not_supported")),
        (vec!["-s"], Refused("shell_denied")),
        (vec!["-i", p], Refused("shell_denied")),
        (vec!["-E", p], Refused("preserve_env_denied")),
        (
            vec!["--preserve-env=HOME", p],
            Refused("preserve_env_denied"),
        ),
        (vec!["-C", "5", p], Refused("option_not_supported")),
        (vec!["-T", "5", p], Refused("option_not_supported")),
        (vec!["-R", "/", p], Refused("option_not_supported")),
        (vec!["-e", "/etc/hosts"], Refused("option_not_supported")),
        (vec!["-h", "host", "-l"], Refused("option_not_supported")),
        (vec!["-r", "role", p], Refused("option_not_supported")),
        (vec!["-t", "type", p], Refused("option_not_supported")),
        (vec!["-l"], Answered),
        (vec!["-v"], Answered),
        (vec!["-k"], Answered),
        (vec!["-K"], Answered),
        (vec!["-V"], Answered),
        (vec!["-h"], Answered),
    ];
    rows.into_iter()
        .map(|(v, e)| (v.into_iter().map(str::to_string).collect(), e))
        .collect()
}

fn check_agree(sudo: &Output, occ: &Output, j: &Value) -> Result<(), String> {
    if !sudo.status.success() {
        return Err(format!(
            "sudo failed: {}",
            String::from_utf8_lossy(&sudo.stderr)
        ));
    }
    let probe: Value = serde_json::from_slice(&sudo.stdout).map_err(|e| {
        format!(
            "probe output {:?}: {e}",
            String::from_utf8_lossy(&sudo.stdout)
        )
    })?;
    if occ.status.code() != Some(0) || j["decision"] != "approval_required" {
        return Err(format!("explain did not pass it on to approval: {j}"));
    }
    let cmd = j["command"].as_array().ok_or("explain has no command")?;
    if cmd.first() != Some(&probe["exe"]) {
        return Err(format!(
            "argv[0]: explain {:?}, sudo ran {}",
            cmd.first(),
            probe["exe"]
        ));
    }
    let sudo_args = probe["argv"]
        .as_array()
        .map(|a| &a[1..])
        .unwrap_or_default();
    if &cmd[1..] != sudo_args {
        return Err(format!(
            "arguments: explain {:?}, sudo ran {sudo_args:?}",
            &cmd[1..]
        ));
    }
    for (k, jk) in [("uid", "target_uid"), ("gid", "target_gid"), ("cwd", "cwd")] {
        if probe[k] != j[jk] {
            return Err(format!("{k}: explain {}, sudo ran {}", j[jk], probe[k]));
        }
    }
    if probe["env"]["USER"] != j["target_user"] {
        return Err(format!(
            "user: explain {}, sudo ran {}",
            j["target_user"], probe["env"]["USER"]
        ));
    }
    let want_env = j["env"].as_object().ok_or("env is not an object")?;
    for (k, v) in want_env {
        if &probe["env"][k] != v {
            return Err(format!(
                "env {k}: explain {v}, sudo set {}",
                probe["env"][k]
            ));
        }
    }
    let probe_env = probe["env"].as_object().ok_or("probe env")?;
    for k in probe_env.keys().filter(|k| k.starts_with("OCCT_")) {
        if !want_env.contains_key(k) {
            return Err(format!("sudo set {k}, explain does not list it"));
        }
    }
    Ok(())
}

#[test]
fn explain_agrees_with_real_sudo_needs_root_and_sudo() {
    if !occ_tests::is_root() || !Path::new("/usr/bin/sudo").exists() {
        occ_tests::skip("needs root and sudo");
        return;
    }
    let s = setup();
    let abs = s.probe_abs.to_string_lossy().into_owned();
    let rows = table(&s.probe_name, &abs);
    assert!(rows.len() >= 60, "the table has {} rows", rows.len());
    let mut failures = Vec::new();
    for (args, expect) in &rows {
        let occ = run_explain(s.home.path(), args);
        // Refusals by design are checked as refusals: sudo is not run for them (`-e` would
        // open an editor).
        let sudo = match expect {
            Expect::Refused(_) => None,
            _ => Some(run_sudo(args)),
        };
        let j: Value = match serde_json::from_slice(&occ.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!(
                    "{args:?}: explain printed no JSON ({e}): {}",
                    String::from_utf8_lossy(&occ.stderr)
                ));
                continue;
            }
        };
        let res = match expect {
            Expect::Agree => sudo
                .as_ref()
                .map_or(Err("sudo did not run".into()), |o| check_agree(o, &occ, &j)),
            Expect::SameError => {
                let Some(sudo) = sudo.as_ref() else { continue };
                let want = first_line(&sudo.stderr);
                if sudo.status.code() != Some(1) {
                    Err(format!("sudo exited {:?}, expected 1", sudo.status.code()))
                } else if occ.status.code() != Some(1) || j["decision"] != "deny" {
                    Err(format!("explain did not deny: {j}"))
                } else if j["message"] != want.as_str() {
                    Err(format!(
                        "first line: sudo {want:?}, explain {}",
                        j["message"]
                    ))
                } else {
                    Ok(())
                }
            }
            Expect::Refused(code) => {
                if occ.status.code() == Some(1)
                    && j["decision"] == "deny"
                    && j["reason_code"] == *code
                {
                    Ok(())
                } else {
                    Err(format!("expected refusal {code}: {j}"))
                }
            }
            Expect::Answered => {
                if sudo.as_ref().and_then(|o| o.status.code()) != Some(0) {
                    Err("sudo did not exit 0".to_string())
                } else if occ.status.code() == Some(0) && j["reason_code"] == "answered_by_broker" {
                    Ok(())
                } else {
                    Err(format!("expected the broker to answer: {j}"))
                }
            }
        };
        if let Err(e) = res {
            failures.push(format!("sudo {args:?}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows disagree:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
