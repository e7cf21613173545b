use super::*;

#[test]
fn elf_interp_is_found_and_garbage_is_not_elf() {
    // The test binary itself is dynamically linked by cargo's default gnu target.
    let me = std::fs::read("/proc/self/exe").unwrap();
    assert_eq!(elf_has_interp(&me), Some(true));
    assert_eq!(elf_has_interp(b"#!/bin/sh\necho not elf\n"), None);
    let mut cut = me[..64].to_vec();
    cut[0x38] = 0xff; // many program headers, none present: no panic
    assert_eq!(elf_has_interp(&cut), None);
}

#[test]
fn audit_seal_fails_when_broker_json_asks_for_an_unsealed_log() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let sec = d.path().join("security");
    std::fs::create_dir(&sec).unwrap();
    std::fs::set_permissions(&sec, std::fs::Permissions::from_mode(0o700)).unwrap();
    let write = |name: &str, text: &str| {
        let p = sec.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    assert_eq!(
        audit_seal(&sec).status,
        Status::Ok,
        "no broker.json: sealing off"
    );
    write("broker.json", r#"{"audit": {"seal": true}}"#);
    let c = audit_seal(&sec);
    assert_eq!(c.status, Status::Fail, "{}", c.line());
    assert!(c.line().contains("occ audit init --seal"), "{}", c.line());
    write("audit-seal.key", "00");
    assert_eq!(audit_seal(&sec).status, Status::Ok);
}

#[test]
fn files_fails_on_a_policy_file_the_broker_refuses() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let sec = d.path().join("security");
    std::fs::create_dir(&sec).unwrap();
    let policy = sec.join(COMMAND_POLICY);
    std::fs::write(&policy, r#"{"version": 2}"#).unwrap();
    let naming = |mode: u32| {
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(mode)).unwrap();
        files(d.path(), None)
            .into_iter()
            .filter(|c| c.status == Status::Fail && c.detail.contains(COMMAND_POLICY))
            .map(|c| c.line())
            .collect::<Vec<_>>()
    };
    assert_eq!(naming(0o600), Vec::<String>::new(), "0600 is safe");
    assert_eq!(naming(0o644), Vec::<String>::new(), "0644 is safe");
    for mode in [0o666, 0o660, 0o602] {
        let lines = naming(mode);
        assert_eq!(lines.len(), 1, "{mode:o}: {lines:?}");
        assert!(
            lines[0].contains("writable by group or others") && lines[0].contains("chmod 600"),
            "{}",
            lines[0]
        );
    }
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o600)).unwrap();
    let real = sec.join("real.json");
    std::fs::rename(&policy, &real).unwrap();
    std::os::unix::fs::symlink(&real, &policy).unwrap();
    let c = files(d.path(), None);
    assert!(
        c.iter().any(|c| c.status == Status::Fail
            && c.detail.contains(COMMAND_POLICY)
            && c.detail.contains("is a symlink")),
        "{c:?}"
    );
}

#[test]
fn session_id_follows_the_plugin_and_fails_only_when_required() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path();
    let dir = super::super::plugin::dir(home);
    let view = |plugins: Option<serde_json::Value>| {
        Ok(pathinj::ExecView {
            paths: oc::effective(None, None),
            modes: oc::modes(None, None),
            plugins,
        })
    };
    // OpenClaw without the plugin.
    let c = session_id(Some(&view(None)), home, true).unwrap();
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail.contains("every agent sudo is refused"),
        "{}",
        c.detail
    );
    assert!(
        c.detail.contains("plugins.load.paths does not list"),
        "{}",
        c.detail
    );
    let c = session_id(Some(&view(None)), home, false).unwrap();
    assert_eq!(c.status, Status::Warn);
    // Listed and enabled, but the files are missing.
    let wired = serde_json::json!({
        "load": {"paths": [dir.display().to_string()]},
        "entries": {"occ-exec-env": {"enabled": true}}
    });
    let c = session_id(Some(&view(Some(wired.clone()))), home, false).unwrap();
    assert_eq!(c.status, Status::Warn);
    assert!(c.detail.contains("missing or changed"), "{}", c.detail);
    // The shipped files in place: ok.
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in super::super::plugin::FILES {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let c = session_id(Some(&view(Some(wired.clone()))), home, true).unwrap();
    assert_eq!(c.status, Status::Ok, "{}", c.detail);
    // A changed file is not the shipped plugin.
    std::fs::write(dir.join("index.js"), "export default {}").unwrap();
    let c = session_id(Some(&view(Some(wired))), home, false).unwrap();
    assert_eq!(c.status, Status::Warn);
    assert!(
        session_id(None, home, true).is_none(),
        "no OpenClaw, no claim about it"
    );
}

#[test]
fn lines_name_the_status_and_the_fix() {
    assert_eq!(Check::ok("x", "fine").line(), "ok    x: fine");
    assert_eq!(
        Check::fail("x", "broken", "do y").line(),
        "FAIL  x: broken; fix: do y"
    );
    assert!(any_fail(&[
        Check::warn("a", "b", "c"),
        Check::fail("d", "e", "f")
    ]));
    assert!(!any_fail(&[Check::warn("a", "b", "c")]));
}

/// "What next" says what the checks found: an unusable real sudo is named as such (with its
/// fix), never as a password prompt, and sudoers lines are offered only when sudo asks for one.
#[test]
fn what_next_names_an_unusable_real_sudo_not_a_password() {
    let home = std::path::Path::new("/home/a/.openclaw");
    let broken = [
        Check::ok("path_order", "shim first"),
        Check::fail(
            "real_sudo",
            "/opt/sudo is not setuid root",
            "set real_sudo to /usr/bin/sudo",
        ),
    ];
    let text = crate::install::setup::what_next(&broken, home).join("\n");
    assert!(
        text.contains("the real sudo is not usable (/opt/sudo is not setuid root); fix: set real_sudo to /usr/bin/sudo"),
        "{text}"
    );
    assert!(!text.contains("asks for a password"), "{text}");
    assert!(!text.contains("NOPASSWD"), "{text}");
    let password = [
        Check::ok("path_order", "shim first"),
        Check::ok("real_sudo", "/usr/bin/sudo is setuid root"),
        Check::fail("sudo_n_l", "a password is required", "add a rule"),
    ];
    let text = crate::install::setup::what_next(&password, home).join("\n");
    assert!(text.contains("asks for a password"), "{text}");
}
