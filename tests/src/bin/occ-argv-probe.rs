//! Test helper for the sudo differential test: prints, as one JSON object, what it was run
//! with: argv, its own executable, real and effective uid and gid, cwd and the whole
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
        "env": env,
    });
    println!("{out}");
}
