//! `occ grants` and `occ revoke`, and what `occ approve` shows and asks before it approves:
//! the request as the broker holds it (the one renderer, [`PendingView::text`]) and the
//! `Approve? [y/N]` question on a terminal. Nothing here decides; the broker does.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use serde_json::Value;

use super::admin::{call, finish};
use crate::escape::escape_text;
use crate::gate::admin::AdminRequest;
use crate::view::{GrantView, PendingView};

/// `occ grants`.
#[derive(clap::Args, Debug)]
pub struct GrantsArgs {
    /// Print a JSON array instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `occ revoke`.
#[derive(clap::Args, Debug)]
pub struct RevokeArgs {
    /// The id of the request the grant was approved for (`ID` or `#ID`, from `occ grants`).
    #[arg(required_unless_present_any = ["session", "all"], conflicts_with_all = ["session", "all"])]
    pub id: Option<String>,
    /// End every grant of this task session.
    #[arg(long, conflicts_with = "all")]
    pub session: Option<String>,
    /// End every grant.
    #[arg(long)]
    pub all: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A request id as typed: `ID` or `#ID` as `occ approvals` prints it.
pub fn plain_id(typed: &str) -> String {
    typed.strip_prefix('#').unwrap_or(typed).to_string()
}

/// The pending request `id` as the broker shows it now. `Err` is the exit code and message.
pub fn shown_request(id: &str) -> Result<PendingView, (i32, String)> {
    let v = match call(&AdminRequest::Approvals) {
        Ok((true, v)) => v,
        Ok((false, v)) => {
            let msg = v["error"].as_str().unwrap_or("refused").to_string();
            return Err((1, msg));
        }
        Err(e) => return Err((2, e)),
    };
    let items: Vec<PendingView> = serde_json::from_value(v).map_err(|e| {
        (
            2,
            format!(
                "the broker's list has something this occ cannot show ({e}); use the occ that \
                 matches the running broker"
            ),
        )
    })?;
    items.into_iter().find(|p| p.id == id).ok_or_else(|| {
        (
            1,
            format!(
                "no pending request with id {:?}: list them with `occ approvals` (live grants: \
                 `occ grants`)",
                escape_text(id)
            ),
        )
    })
}

/// Asks `question` on the terminal and reads the answer: `Ok(true)` only for y or yes.
/// Without a terminal there is no one to ask: `Err` says to pass `--yes` to `action`.
pub fn confirm(question: &str, action: &str) -> Result<bool, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(format!(
            "stdin is not a terminal, so no one can answer {:?}; read the request \
             above, then pass --yes to {action} as shown",
            question.trim_end()
        ));
    }
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{question}");
    let _ = out.flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Runs `occ grants`.
pub fn grants(a: GrantsArgs) -> i32 {
    super::admin::print_list(
        &AdminRequest::Grants,
        a.json,
        "grants",
        "no live grants",
        GrantView::text,
    )
}

/// Runs `occ revoke`.
pub fn revoke(a: RevokeArgs) -> i32 {
    let req = AdminRequest::Revoke {
        id: a.id.as_deref().map(plain_id),
        session: a.session,
        all: a.all,
    };
    finish(a.json, call(&req), |v: &Value| {
        let ids: Vec<String> = v["revoked"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .map(|x| format!("#{}", escape_text(x)))
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() {
            "no grants to revoke\n".into()
        } else {
            format!("revoked {} grant(s): {}\n", ids.len(), ids.join(" "))
        }
    })
}
