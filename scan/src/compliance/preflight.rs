//! `occ-scan preflight`: can a cycle run here? Tools, paths, policy files (they must load as the
//! broker loads them, not merely exist) and permissions, in the seed's keys. It changes nothing.

use std::path::Path;

use serde_json::{json, Value};

use super::files::{self, PolicyFiles};
use super::util;
use crate::exec;
use crate::paths::Paths;

fn mode_entry(p: &Path) -> Value {
    match util::mode_of(p) {
        Ok(m) => json!({
            "path": p.display().to_string(),
            "mode": format!("0o{m:o}"),
            "hardened": m & 0o077 == 0,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({
            "path": p.display().to_string(),
            "mode": "missing",
            "hardened": Value::Null,
        }),
        Err(_) => json!({
            "path": p.display().to_string(),
            "mode": "unknown",
            "hardened": Value::Null,
        }),
    }
}

/// Runs preflight; returns the report and whether it passed.
pub fn preflight(paths: &Paths) -> (Value, bool) {
    let mut critical: Vec<&str> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let sec = paths.security();

    let openclaw = super::facts::find_openclaw(paths);
    if openclaw.is_none() {
        warnings.push("openclaw_not_found: update_hygiene will be not_assessed".into());
    }
    let mut discovery: Vec<String> = Vec::new();
    // Readable is enough: the first bytes, not the whole table (which is large on busy hosts).
    let proc_net_readable = std::fs::File::open("/proc/net/tcp")
        .and_then(|mut f| std::io::Read::read(&mut f, &mut [0u8; 64]))
        .is_ok_and(|n| n > 0);
    if proc_net_readable {
        discovery.push("/proc/net".into());
    }
    if let Some(l) = exec::find_program("lsof") {
        discovery.push(l.display().to_string());
    }
    if discovery.is_empty() {
        critical.push("no_port_discovery_tool");
    }

    // The policy files as the broker for this home loads them: schema, owner, mode, symlink.
    let policy = PolicyFiles::load(paths, paths.reader_uid());
    let require = std::env::var("OPENCLAW_REQUIRE_POLICY_FILES").as_deref() == Ok("1")
        || matches!(&policy.broker, Ok(Some(b)) if b.require_policy_files);
    let required = [
        "command-policy.json",
        "approved_ports.json",
        "egress_allowlist.json",
    ];
    let required_paths: Vec<String> = required
        .iter()
        .map(|n| paths.security_file(n).display().to_string())
        .collect();
    let missing_required: Vec<String> = required
        .iter()
        .map(|n| paths.security_file(n))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if require && !missing_required.is_empty() {
        critical.push("missing_required_policy_files");
    }
    // Every present policy file must load as the broker would load it.
    let mut invalid: Vec<Value> = policy
        .problems()
        .iter()
        .map(|e| json!(e.to_string()))
        .collect();
    let mut note = |r: Result<(), crate::error::ScanError>| {
        if let Err(e) = r {
            invalid.push(json!(e.to_string()));
        }
    };
    note(files::approved_ports(&paths.security_file("approved_ports.json")).map(|_| ()));
    note(files::egress_allowlist(&paths.security_file("egress_allowlist.json")).map(|_| ()));
    // OpenClaw's config, where occ-scan's environment says it is, with its includes.
    let instance = super::openclaw::instance::resolve(
        &super::openclaw::instance::own_env(),
        None,
        &paths.home,
        &std::env::current_dir().unwrap_or_else(|_| "/".into()),
    );
    let openclaw_json = instance
        .as_ref()
        .map_or_else(|_| paths.openclaw_json(), |i| i.config_path.clone());
    note(match &instance {
        Ok(i) => super::openclaw::config::read(&i.config_path, &i.include_roots).map(|_| ()),
        Err(e) => Err(crate::error::ScanError::Environment { message: e.clone() }),
    });
    if !invalid.is_empty() {
        critical.push("invalid_policy_files");
    }
    let optional = [
        openclaw_json.clone(),
        paths.home.join("env"),
        paths.security_file("prompt-policy.json"),
        paths.security_file("broker.json"),
        paths.install_manifest(),
    ];
    let missing_optional: Vec<String> = optional
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    // The assessments directory must be creatable or writable.
    let adir = paths.assessments();
    let writable = if adir.exists() {
        nix::unistd::access(&adir, nix::unistd::AccessFlags::W_OK).is_ok()
    } else {
        adir.ancestors()
            .find(|a| a.exists())
            .is_some_and(|a| nix::unistd::access(a, nix::unistd::AccessFlags::W_OK).is_ok())
    };
    if !writable {
        critical.push("assessments_dir_not_writable");
    }
    let shim = paths.shim();
    let ok = critical.is_empty();
    let report = json!({
        "status": if ok { "ok" } else { "fail" },
        "critical": critical,
        "warnings": warnings,
        "require_policy_files": require,
        "tools": {
            "openclaw": {"ok": openclaw.is_some(), "found": openclaw.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()},
            "python": {"ok": true, "found": [], "note": "occ-scan needs no Python"},
            "port_discovery": {"ok": !discovery.is_empty(), "found": discovery},
        },
        "paths": {
            "openclaw_dir": paths.home.display().to_string(),
            "security_dir": sec.display().to_string(),
            "assessments_dir": adir.display().to_string(),
            "runtime_hook": {"path": shim.display().to_string(), "installed": exec::is_executable_file(&shim)},
        },
        "policy_files": {
            "required": required_paths,
            "missing_required": missing_required,
            "invalid": invalid,
        },
        "optional_files": {"missing_optional": missing_optional},
        "permissions": {
            "env": mode_entry(&paths.home.join("env")),
            "openclaw_json": mode_entry(&openclaw_json),
            "openclaw_dir": mode_entry(&paths.home),
        },
        "next_steps": [
            "occ-scan baseline   # write approved_ports.json from what listens now, then prune it",
            "edit security/egress_allowlist.json with the destinations the agent needs",
            "occ-scan cycle      # preflight, ports, egress, assess, reports, notify",
            "occ-scan schedule install --every 15m",
        ],
    });
    (report, ok)
}
