//! `occ audit approvals [--verify]`: one line per decision in the log (`approval_granted`,
//! `approval_denied`, and each `approval_vote` of a quorum, whose signatures are stored only
//! there), and with `--verify` every signed one re-checked: the SSHSIG over the
//! recorded statement, in namespace `occ-approval`, by a key `allowed_signers` lets sign at
//! the time of the event, for the principal and request the event names. The same check can
//! be made with stock `ssh-keygen -Y verify` on the statement and signature cut from the log.

use std::path::PathBuf;

use clap::Args;
use occ_audit::lines::{Line, LineReader};
use serde_json::{json, Value};

use super::{msg, show, LogArg, Res};
use crate::escape::escape_text;
use crate::signed::{self, AllowedSigners};

#[derive(Args, Debug)]
pub struct ApprovalsArgs {
    /// Re-check every signed approval, quorum vote and denial against allowed_signers (exit 1
    /// if one fails).
    #[arg(long)]
    pub verify: bool,
    /// The allowed_signers file to check against (default: the broker's: /etc/occ in system
    /// mode, else $OCC_HOME/security).
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// One JSON object per decision, one per line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArg,
}

/// The result of re-checking one decision.
fn check(ev: &Value, signers: Option<&AllowedSigners>) -> (&'static str, String) {
    let (Some(statement), Some(signature)) = (ev["statement"].as_str(), ev["signature"].as_str())
    else {
        return ("unsigned", String::new());
    };
    let Some(signers) = signers else {
        return ("signed", String::new());
    };
    let when = ev["timestamp"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let who = match signed::verify(signers, statement.as_bytes(), signature, when) {
        Ok(who) => who,
        Err(e) => return ("FAILED", e.to_string()),
    };
    if ev["signer_principal"].as_str() != Some(who.principal.as_str()) {
        return (
            "FAILED",
            format!(
                "the event names signer {:?}, the key belongs to {:?}",
                ev["signer_principal"], who.principal
            ),
        );
    }
    match signed::statement::named(statement) {
        Ok(n) if Some(n.request.as_str()) == ev["request_id"].as_str() => {
            ("verified", who.fingerprint)
        }
        Ok(_) => ("FAILED", "the statement names another request".into()),
        Err(e) => ("FAILED", e),
    }
}

pub(super) fn approvals(a: ApprovalsArgs) -> Res {
    let signers = if a.verify {
        let path = a.allowed_signers.clone().unwrap_or_else(|| {
            let own_home = std::env::var_os("OCC_HOME").is_some_and(|h| !h.is_empty());
            if !own_home && crate::layout::Layout::system_selected() {
                crate::layout::Layout::system().config_dir
            } else {
                crate::paths::security_dir()
            }
            .join(signed::ALLOWED_SIGNERS)
        });
        let uid = nix::unistd::geteuid().as_raw();
        match AllowedSigners::load(&path, uid).map_err(msg)? {
            Some(s) => Some(s),
            None => {
                return Err(msg(format!(
                    "{}: no such file; pass --allowed-signers FILE",
                    path.display()
                )))
            }
        }
    } else {
        None
    };
    let path = a.log.path();
    let mut reader = LineReader::new(show::open_log(&path)?);
    let (mut failed, mut out) = (0usize, std::io::stdout().lock());
    while let Some(line) = reader
        .next_line()
        .map_err(|e| msg(format!("{}: {e}", path.display())))?
    {
        let Line::Complete(bytes) = line else {
            continue;
        };
        let Ok(ev) = serde_json::from_slice::<Value>(bytes) else {
            continue;
        };
        let decision = match ev["event_type"].as_str() {
            Some("approval_granted") => ev["grant_scope"].as_str().unwrap_or("once"),
            Some("approval_denied") => "denied",
            Some("approval_vote") => "vote",
            _ => continue,
        };
        let (result, detail) = check(&ev, signers.as_ref());
        failed += usize::from(result == "FAILED");
        let text = |k: &str| ev[k].as_str().unwrap_or("-").to_string();
        let line = if a.json {
            json!({
                "timestamp": ev["timestamp"],
                "request_id": ev["request_id"],
                "decision": decision,
                "approver": ev["approver"],
                "signer_principal": ev["signer_principal"],
                "signer_fingerprint": ev["signer_fingerprint"],
                "result": result,
                "detail": detail,
            })
            .to_string()
        } else {
            format!(
                "{}  #{}  {}  {}  {}{}",
                text("timestamp"),
                escape_text(&text("request_id")),
                decision,
                escape_text(&text("approver")),
                result,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", escape_text(&detail))
                }
            )
        };
        use std::io::Write as _;
        writeln!(out, "{line}")?;
    }
    if failed > 0 {
        eprintln!("occ audit approvals: {failed} signed decision(s) did not verify");
        return Ok(1);
    }
    Ok(0)
}
