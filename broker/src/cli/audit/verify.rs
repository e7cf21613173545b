//! `occ audit verify`: the whole chain, the seals, the rotation links and the head.

use std::io::{IsTerminal, Write};

use occ_audit::{Head, Report, SealKey, VerifyOptions};

use super::{msg, Failure, Res, VerifyArgs};
use crate::escape::escape_raw as escape;
use crate::paths;

fn read_key(a: &VerifyArgs) -> Result<Option<SealKey>, Failure> {
    if let Some(hex) = &a.key {
        return SealKey::from_hex(hex)
            .map(Some)
            .map_err(|e| msg(format!("--key: {e}")));
    }
    if let Some(f) = &a.key_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| msg(format!("--key-file {}: {e}", f.display())))?;
        return SealKey::from_hex(&text)
            .map(Some)
            .map_err(|e| msg(format!("--key-file {}: {e}", f.display())));
    }
    Ok(None)
}

/// What became of the seals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Seals {
    /// No record carries one.
    None,
    /// Checked against the key.
    Checked,
    /// Present, but no key was given: only their presence was checked.
    NotChecked,
}

impl Seals {
    pub(super) fn of(r: &Report, key_given: bool) -> Seals {
        match (r.sealed, key_given) {
            (false, _) => Seals::None,
            (true, true) => Seals::Checked,
            (true, false) => Seals::NotChecked,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Seals::None => "none",
            Seals::Checked => "checked",
            Seals::NotChecked => "not_checked",
        }
    }
}

pub(super) fn verify(a: VerifyArgs) -> Res {
    let key = read_key(&a)?;
    let key_given = key.is_some();
    let default_mode = a.files.is_empty();
    let files = if default_mode {
        vec![a.log.path()]
    } else {
        a.files.clone()
    };
    let head_path = match (&a.head, default_mode) {
        (Some(h), _) => Some(h.clone()),
        (None, true) => Some(paths::head_for(&files[0])),
        (None, false) => None,
    };
    let mut missing_head = None;
    let head = match &head_path {
        Some(p) => match Head::read(p)? {
            Some(h) => Some(h),
            None if a.head.is_some() => {
                return Err(msg(format!(
                    "--head {}: no such file. Fix: pass the audit-head.json occ wrote",
                    p.display()
                )))
            }
            None => {
                missing_head = Some(p.clone());
                None
            }
        },
        None => None,
    };
    for f in &files {
        if let Err(e) = std::fs::symlink_metadata(f) {
            return Err(msg(if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{}: no such file. Fix: check the path, or run `occ audit init` to create \
                     the log",
                    f.display()
                )
            } else {
                format!("{}: {e}", f.display())
            }));
        }
    }
    let total: u64 = occ_audit::history(&files[0])
        .map(|h| if default_mode { h.files } else { files.clone() })
        .unwrap_or_else(|_| files.clone())
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = (std::io::stderr().is_terminal() && total >= 64 << 20).then(|| {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "verifying {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let opts = VerifyOptions {
        key,
        head,
        ..VerifyOptions::default()
    };
    let mut progress = |n: u64| {
        if let Some(pb) = &bar {
            pb.set_position(n);
        }
    };
    // With no FILE, the whole history: every archive the rotation links lead back to.
    let mut report = if default_mode {
        occ_audit::verify_history(&files[0], opts, &mut progress)?
    } else {
        occ_audit::verify_files(&files, opts, &mut progress)?
    };
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    if let Some(p) = missing_head {
        if report.events > 0 {
            report.breaks_total += 1;
            report.breaks.push(occ_audit::Break {
                file: p.clone(),
                line: 0,
                seq: None,
                reason: occ_audit::Reason::BehindHeadCheckpoint,
                detail: format!(
                    "{} is missing, so a cut tail cannot be ruled out (occ writes it with every \
                     event)",
                    p.display()
                ),
            });
        }
    }
    let witnessed = match &a.witness {
        Some(w) => Some(witness::check(w, &report.files)?),
        None => None,
    };
    let mut out = std::io::stdout().lock();
    let seals = Seals::of(&report, key_given);
    if a.json {
        let mut v = report_json(&report);
        if let Some(o) = v.as_object_mut() {
            o.insert("seals".into(), seals.as_str().into());
            if let Some(w) = &witnessed {
                o.insert("witness".into(), w.json());
            }
        }
        writeln!(out, "{v}")?;
    } else {
        print_report(&mut out, &report)?;
        if seals == Seals::NotChecked {
            writeln!(
                out,
                "seals: not checked (no --key); pass --key or --key-file to check them"
            )?;
        } else if seals == Seals::Checked {
            writeln!(out, "seals: checked")?;
        }
        if let Some(w) = &witnessed {
            w.print(&mut out)?;
        }
    }
    let agrees = witnessed.as_ref().is_none_or(|w| w.findings.is_empty());
    Ok(if report.intact() && agrees { 0 } else { 1 })
}

/// `--witness`: the chain against a copy held elsewhere.
mod witness {
    use std::io::Write;
    use std::path::{Path, PathBuf};

    use occ_audit::witness::{self as w, Finding, WitnessKind};

    use super::{escape, msg, Failure};

    pub(super) struct Checked {
        file: PathBuf,
        kind: WitnessKind,
        events: usize,
        pub(super) findings: Vec<Finding>,
    }

    pub(super) fn check(file: &Path, local_files: &[PathBuf]) -> Result<Checked, Failure> {
        let witness = w::read_witness(file).map_err(|e| msg(format!("--witness: {e}")))?;
        let local = w::local_events(local_files)?;
        Ok(Checked {
            file: file.to_path_buf(),
            kind: witness.kind,
            events: witness.events.len(),
            findings: w::compare(&witness, &local),
        })
    }

    fn short(h: &Option<String>) -> String {
        h.as_deref()
            .map(|h| format!("{}...", escape(h.get(..12).unwrap_or(h).as_bytes())))
            .unwrap_or_else(|| "-".into())
    }

    impl Checked {
        pub(super) fn json(&self) -> serde_json::Value {
            let findings: Vec<serde_json::Value> = self
                .findings
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "reason": f.reason.as_str(),
                        "seq": f.seq,
                        "event_type": f.event_type,
                        "local_chain_hash": f.local_chain_hash,
                        "witness_chain_hash": f.witness_chain_hash,
                        "witness_at": f.witness_at,
                    })
                })
                .collect();
            serde_json::json!({
                "file": self.file.display().to_string(),
                "kind": self.kind.name(),
                "events": self.events,
                "agrees": self.findings.is_empty(),
                "findings": findings,
            })
        }

        pub(super) fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
            for f in &self.findings {
                let at = f
                    .witness_at
                    .as_deref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "witness: seq {} {}: {}: local {}, witness {}{at}",
                    f.seq,
                    escape(f.event_type.as_bytes()),
                    f.reason.as_str(),
                    short(&f.local_chain_hash),
                    short(&f.witness_chain_hash),
                )?;
            }
            let name = escape(self.file.as_os_str().as_encoded_bytes());
            if self.findings.is_empty() {
                writeln!(
                    out,
                    "witness: agrees ({} events in {name}, a {})",
                    self.events,
                    self.kind.name()
                )
            } else {
                writeln!(
                    out,
                    "witness: DISAGREES: {} finding{} against {name} ({} events, a {})",
                    self.findings.len(),
                    if self.findings.len() == 1 { "" } else { "s" },
                    self.events,
                    self.kind.name()
                )
            }
        }
    }
}

pub(super) fn report_json(r: &Report) -> serde_json::Value {
    let breaks: Vec<serde_json::Value> = r
        .breaks
        .iter()
        .map(|b| {
            serde_json::json!({
                "file": b.file.display().to_string(),
                "line": b.line,
                "seq": b.seq,
                "reason": b.reason.as_str(),
                "detail": b.detail,
            })
        })
        .collect();
    let mut v = serde_json::json!({
        "intact": r.intact(),
        "files": r.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "events": r.events,
        "first_timestamp": r.first_timestamp,
        "last_timestamp": r.last_timestamp,
        "breaks": breaks,
    });
    let omitted = r.breaks_total - r.breaks.len() as u64;
    if omitted > 0 {
        if let Some(o) = v.as_object_mut() {
            o.insert("breaks_omitted".into(), omitted.into());
        }
    }
    v
}

fn print_report(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    for b in &r.breaks {
        let seq = b.seq.map_or("-".to_owned(), |s| s.to_string());
        writeln!(
            out,
            "{}:{}: seq {}: {}: {}",
            b.file.display(),
            b.line,
            seq,
            b.reason,
            escape(b.detail.as_bytes())
        )?;
    }
    let omitted = r.breaks_total - r.breaks.len() as u64;
    if omitted > 0 {
        writeln!(out, "… and {omitted} more breaks")?;
    }
    let nfiles = r.files.len();
    let span = match (&r.first_timestamp, &r.last_timestamp) {
        (Some(f), Some(l)) => format!(", {} to {}", escape(f.as_bytes()), escape(l.as_bytes())),
        _ => String::new(),
    };
    let plural = |n: u64, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if r.intact() {
        writeln!(
            out,
            "intact: {} in {}{span}",
            plural(r.events, "event"),
            plural(nfiles as u64, "file")
        )?;
    } else {
        writeln!(
            out,
            "BROKEN: {} in {} ({}{span})",
            plural(r.breaks_total, "break"),
            plural(nfiles as u64, "file"),
            plural(r.events, "event")
        )?;
    }
    for f in &r.files {
        writeln!(out, "  read {}", escape(f.as_os_str().as_encoded_bytes()))?;
    }
    Ok(())
}
