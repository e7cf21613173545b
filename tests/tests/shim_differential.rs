//! Differential through the shim: for every invocation of the policy differential's table that
//! the real sudo runs, the agent's `$OCC_HOME/bin/sudo ARGS` (once approved) and
//! `/usr/bin/sudo ARGS` give the same stdout and exit code. Options occ refuses by design are
//! excluded. Needs root (to become the agent and to install the probe), the real sudo and the
//! `occ-agent` user.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::approval::{pending_id, ready, text, AgentHome};
use crate::sudo_differential::{table, Expect};

struct Probe {
    dir: PathBuf,
    abs: PathBuf,
    name: String,
    on_path: PathBuf,
    sudoers: PathBuf,
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = std::fs::remove_file(&self.on_path);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn install_probe() -> Probe {
    let pid = std::process::id();
    let src = PathBuf::from(env!("CARGO_BIN_EXE_occ-argv-probe"));
    let dir = PathBuf::from(format!("/usr/local/lib/occ-shimdiff-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let abs = dir.join("occ-argv-probe");
    let name = format!("occ-shimprobe-{pid}");
    let on_path = PathBuf::from("/usr/local/bin").join(&name);
    for dst in [&abs, &on_path] {
        occ_tests::copy_exe(&src, dst);
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // What an admin grants an agent in user mode, scoped to the probe: any target user and
    // group, NAME=value assignments (SETENV) and -D (runcwd).
    let sudoers = PathBuf::from(format!("/etc/sudoers.d/occ-shimdiff-{pid}"));
    let staged = dir.join("sudoers");
    std::fs::write(
        &staged,
        format!(
            "Defaults:occ-agent runcwd=*\nocc-agent ALL=(ALL:ALL) NOPASSWD:SETENV: {}, {}\n",
            abs.display(),
            on_path.display()
        ),
    )
    .unwrap();
    let ok = Command::new("visudo")
        .arg("-cqf")
        .arg(&staged)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "visudo rejected the probe drop-in");
    std::fs::copy(&staged, &sudoers).unwrap();
    std::fs::set_permissions(&sudoers, std::fs::Permissions::from_mode(0o440)).unwrap();
    Probe {
        dir,
        abs,
        name,
        on_path,
        sudoers,
    }
}

/// `/usr/bin/sudo ARGS` as the agent, with the same environment and cwd the shim gets.
fn real_sudo(h: &AgentHome, args: &[String]) -> Output {
    Command::new("/usr/bin/sudo")
        .args(args)
        .uid(h.uid)
        .gid(h.gid)
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", h.home.join("bin").display()),
        )
        .env("HOME", h.home.parent().unwrap())
        .env("OCC_HOME", &h.home)
        .env("OCC_MODE", "user")
        .env("LANG", "C")
        .current_dir(&h.home)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn parsed(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| Value::String(text(&out.stdout)))
}

#[test]
fn granted_commands_behave_as_under_the_real_sudo() {
    let Some(ids) = ready() else { return };
    let probe = install_probe();
    let h = AgentHome::new(ids);
    let p = probe.abs.display().to_string();
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (args, expect) in table(&p, &probe.name) {
        if !matches!(expect, Expect::Agree) {
            continue;
        }
        let strs: Vec<&str> = args.iter().map(String::as_str).collect();
        let first = h.sudo(&strs, &[]);
        let id = pending_id(&first);
        let ok = h.occ(&["approve", "--yes", &id]);
        assert!(ok.status.success(), "{args:?}: {}", text(&ok.stderr));
        let ours = h.sudo(&strs, &[]);
        let theirs = real_sudo(&h, &args);
        let (mut a, mut b) = (parsed(&ours), parsed(&theirs));
        // Which process it was (pid, session, group) differs run to run; the descriptors,
        // capabilities and no_new_privs it had must not.
        for v in [&mut a, &mut b] {
            if let Some(o) = v.as_object_mut() {
                for k in ["pid", "sid", "pgid"] {
                    o.remove(k);
                }
            }
        }
        // occ hands the real sudo the resolved absolute path, so argv[0] is absolute even when
        // the agent typed a bare name; everything else must be identical.
        let typed_abs = args.iter().any(|x| x == &p);
        if !typed_abs {
            for v in [&mut a, &mut b] {
                if let Some(argv) = v["argv"].as_array_mut() {
                    if !argv.is_empty() {
                        argv.remove(0);
                    }
                }
            }
        }
        if a != b || ours.status.code() != theirs.status.code() {
            mismatches.push(format!(
                "{args:?}:\n  occ  ({:?}) {a}\n  sudo ({:?}) {b}\n  occ stderr: {}",
                ours.status.code(),
                theirs.status.code(),
                text(&ours.stderr)
            ));
        }
        compared += 1;
    }
    assert!(compared >= 40, "only {compared} rows compared");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
