//! Test helper for the sudo differential test: prints, as one JSON object, what it was run
//! with: argv, its own executable, real and effective uid and gid, cwd, umask and the whole
//! environment. It reads only /proc/self; it changes nothing.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

fn status_ids(key: &str) -> Vec<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(key)).map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// One `/proc/self/status` field's value, as written there (`Umask:\t0022` gives "0022").
fn status_field(key: &str) -> Option<String> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

fn main() {
    let uids = status_ids("Uid:");
    let gids = status_ids("Gid:");
    let env: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let out = serde_json::json!({
        "argv": std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "exe": std::fs::read_link("/proc/self/exe").ok().map(|p| p.to_string_lossy().into_owned()),
        "uid": uids.first(),
        "euid": uids.get(1),
        "gid": gids.first(),
        "egid": gids.get(1),
        "cwd": std::env::current_dir().ok().map(|p| p.to_string_lossy().into_owned()),
        "umask": status_field("Umask:"),
        "env": env,
    });
    println!("{out}");
}
