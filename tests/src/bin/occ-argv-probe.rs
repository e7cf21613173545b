//! Test helper for the sudo differential test: prints, as one JSON object, what it was run
//! with: argv, its own executable, real and effective uid and gid, cwd, umask, the whole
//! environment, its session and process group, the descriptors it holds, its bounding and
//! ambient capability sets and no_new_privs. It reads only /proc/self; it changes nothing.
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

/// (pid, session id, process group) from /proc/self/stat (fields 1, 6 and 5).
fn stat_ids() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name is in parentheses and may hold spaces: split after its last ')'.
    let (head, rest) = stat.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest: state(3) ppid(4) pgrp(5) session(6) ...
    Some((pid, f.get(3)?.parse().ok()?, f.get(2)?.parse().ok()?))
}

/// The descriptors open in this process, but the one reading the list.
fn open_fds() -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut fds: Vec<(u64, String)> = dir
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            Some((fd, target))
        })
        .collect();
    fds.sort();
    fds.into_iter()
        .filter(|(_, target)| !target.starts_with("/proc/") || !target.ends_with("/fd"))
        .map(|(fd, _)| fd)
        .collect()
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
        "pid": stat_ids().map(|i| i.0),
        "sid": stat_ids().map(|i| i.1),
        "pgid": stat_ids().map(|i| i.2),
        "fds": open_fds(),
        "cap_bnd": status_field("CapBnd:"),
        "cap_amb": status_field("CapAmb:"),
        "no_new_privs": status_field("NoNewPrivs:"),
    });
    println!("{out}");
}
