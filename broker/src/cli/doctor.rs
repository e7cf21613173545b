//! `occ doctor`: runs every install check at any time, one line each (ok, warn, fail with the
//! fix). Warnings alone exit 0; any failure exits 1. It changes nothing.

use clap::Args;
use serde_json::json;

use crate::install::checks;
use crate::install::manifest::Manifest;
use crate::install::tool;

/// Arguments of `occ doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Check system mode (as root): the agent has no sudo rights and is no approver, the
    /// broker's files are root's, and the broker answering /run/occ/broker.sock is root.
    #[arg(long)]
    pub system: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs the checks and prints them.
pub fn run(a: DoctorArgs) -> i32 {
    if a.system {
        if let Err(e) = crate::install::system::require_root(
            "occ doctor --system",
            "it reads /etc/occ and lists the agent's sudo rights with sudo -l -U",
        ) {
            if a.json {
                println!("{}", json!({ "error": e }));
            }
            eprintln!("occ doctor --system: {e}");
            return 2;
        }
        let list = crate::install::system::checks::run();
        return print(&list, a.json, json!("/"), "occ doctor --system");
    }
    let home = crate::paths::occ_home();
    let security = crate::paths::security_dir();
    let mut list = Vec::new();
    let manifest = match Manifest::load(&crate::install::manifest_path()) {
        Ok(m) => m,
        Err(e) => {
            list.push(checks::Check {
                name: "manifest",
                status: checks::Status::Fail,
                detail: e,
                fix: Some("run `occ install` again".into()),
            });
            None
        }
    };
    let sc = tool::systemd_user();
    // The PATH every agent gets, as OpenClaw itself resolves its config; never the manifest.
    let view = checks::openclaw_exec();
    list.push(checks::path_order(
        &home,
        checks::paths_of(view.as_ref()).as_ref(),
    ));
    list.extend(checks::exec_mode(view.as_ref()));
    list.push(checks::openclaw(sc.as_deref()));
    list.push(checks::broker_reachable(&home, manifest.as_ref()));
    list.extend(checks::files(&home, manifest.as_ref()));
    list.push(checks::shim_static(&home));
    let loaded = occ_policy::file::load(&security, nix::unistd::geteuid().as_raw(), &|_| None);
    let require_session_id = loaded
        .as_ref()
        .is_ok_and(|c| c.broker.session.require_session_id);
    list.extend(checks::session_id(view.as_ref(), &home, require_session_id));
    let real = loaded
        .map(|c| c.broker.real_sudo)
        .unwrap_or_else(|_| std::path::PathBuf::from("/usr/bin/sudo"));
    let real_check = checks::real_sudo(&real);
    let real_ok = real_check.status != checks::Status::Fail;
    list.push(real_check);
    if real_ok {
        list.push(checks::sudo_list(&real));
    }
    list.push(checks::audit_log(
        &security,
        &home.join("run").join(checks::AUDIT_CHECKPOINT),
    ));
    list.push(checks::audit_seal(&security));
    list.push(checks::policy(&security));
    list.push(checks::allowed_signers(&security));
    list.push(checks::legacy_token(&home));

    print(&list, a.json, json!(home), "occ doctor")
}

fn print(list: &[checks::Check], as_json: bool, home: serde_json::Value, title: &str) -> i32 {
    let failed = checks::any_fail(list);
    if as_json {
        println!("{}", json!({"home": home, "ok": !failed, "checks": list}));
    } else {
        for c in list {
            println!("{}", c.line());
        }
        let warns = list
            .iter()
            .filter(|c| c.status == checks::Status::Warn)
            .count();
        let fails = list
            .iter()
            .filter(|c| c.status == checks::Status::Fail)
            .count();
        println!(
            "{title}: {} checks, {warns} warning(s), {fails} failure(s)",
            list.len()
        );
    }
    i32::from(failed)
}
