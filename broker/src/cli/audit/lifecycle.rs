//! `occ audit init` and `occ audit rotate`.

use std::collections::BTreeMap;
use std::io::Write;

use occ_audit::{Head, Options, Value, VerifyOptions, Writer};

use super::{msg, InitArgs, Res, RotateArgs};
use crate::paths;

fn init_fields(sealed: bool) -> BTreeMap<String, Value> {
    let mut f = BTreeMap::new();
    f.insert(
        "occ_version".to_owned(),
        Value::from(env!("CARGO_PKG_VERSION")),
    );
    f.insert("sealed".to_owned(), Value::Bool(sealed));
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.as_raw().to_string(), |u| u.name);
    f.insert("submituser".to_owned(), Value::Str(name));
    f.insert("submituid".to_owned(), Value::Int(i64::from(uid.as_raw())));
    f
}

pub(super) fn init(a: InitArgs) -> Res {
    let path = a.log.path();
    let mut w = Writer::open(&path, Options::default())?;
    let mut out = std::io::stdout().lock();
    if a.seal {
        let (k0, ev) = w.start_sealing("log_initialized", init_fields(true))?;
        eprintln!(
            "occ audit init: sealing {} from seq {}. Store this verification key k_0 away \
             from this host; it is shown only once. Verify with `occ audit verify --key-file \
             FILE`.",
            path.display(),
            ev.seq
        );
        if a.json {
            let v = serde_json::json!({"log": path.display().to_string(), "sealed_from_seq": ev.seq, "k0": k0.to_hex()});
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{}", k0.to_hex())?;
        }
        return Ok(0);
    }
    if let Some(seq) = w.last_seq()? {
        if a.json {
            let v = serde_json::json!({"log": path.display().to_string(), "initialised": false, "events": seq + 1});
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{} is already initialised ({} events); nothing to do",
                path.display(),
                seq + 1
            )?;
        }
        return Ok(0);
    }
    let ev = w.append("log_initialized", init_fields(false))?;
    if a.json {
        let v = serde_json::json!({"log": path.display().to_string(), "initialised": true, "seq": ev.seq, "chain_hash": ev.chain_hash});
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "initialised {} (seq {}, chain_hash {})",
            path.display(),
            ev.seq,
            ev.chain_hash
        )?;
    }
    Ok(0)
}

pub(super) fn rotate(a: RotateArgs) -> Res {
    let path = a.log.path();
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(msg(format!(
            "{}: no such file. Fix: run `occ audit init` first",
            path.display()
        )));
    }
    // Rotating a broken log would bury the break in an archive: verify the whole chain first.
    let head = Head::read(&paths::head_for(&path))?;
    let opts = VerifyOptions {
        head,
        ..VerifyOptions::default()
    };
    let report = occ_audit::verify_history(&path, opts, &mut |_| {})?;
    if !report.intact() && !a.force {
        let first = report
            .breaks
            .first()
            .map(|b| format!("{}:{}: {}", b.file.display(), b.line, b.reason))
            .unwrap_or_default();
        eprintln!(
            "occ audit rotate: {} is broken ({} break(s), first {first}); not rotated. Run \
             `occ audit verify` to see every break; `occ audit rotate --force` rotates anyway \
             and records rotated_broken_log",
            path.display(),
            report.breaks_total
        );
        return Ok(1);
    }
    let mut w = Writer::open(&path, Options::default())?;
    let r = w.rotate()?;
    if !report.intact() {
        let mut f = BTreeMap::new();
        f.insert(
            "archive".to_owned(),
            Value::Str(r.archive.display().to_string()),
        );
        f.insert("breaks".to_owned(), Value::Int(report.breaks_total as i64));
        if let Some(b) = report.breaks.first() {
            f.insert(
                "first_break_reason".to_owned(),
                Value::from(b.reason.as_str()),
            );
            f.insert(
                "first_break_file".to_owned(),
                Value::Str(b.file.display().to_string()),
            );
            f.insert("first_break_line".to_owned(), Value::Int(b.line as i64));
        }
        w.append("rotated_broken_log", f)?;
    }
    if a.json {
        let v = serde_json::json!({
            "log": path.display().to_string(),
            "archive": r.archive.display().to_string(),
            "genesis_seq": r.genesis.seq,
            "was_broken": !report.intact(),
        });
        writeln!(std::io::stdout().lock(), "{v}")?;
        return Ok(0);
    }
    writeln!(
        std::io::stdout().lock(),
        "rotated: {} -> {}; {} continues at seq {}",
        path.display(),
        r.archive.display(),
        path.display(),
        r.genesis.seq
    )?;
    Ok(0)
}
