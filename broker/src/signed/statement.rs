//! The approval statement: the fixed lines an approver signs with an SSH key. The broker
//! builds it from the pending request it holds, so a submitted statement counts only when it is
//! byte for byte the one the broker would build for that request and scope; any edit, another
//! request's statement or a stale one fails the comparison.

use std::time::{Duration, UNIX_EPOCH};

use crate::escape::{argv_list, escape_text};
use crate::session::Pending;

/// The format line every statement starts with.
pub const FORMAT: &str = "occ-approval-statement v1";

/// The longest `uses=N` a statement may ask for.
pub const MAX_USES: u32 = 1000;

/// What the signer decides: the scope of the approval, or a denial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// One run.
    Once,
    /// The task session, until its idle timeout.
    Session,
    /// A number of runs, a time, or both.
    Limited {
        uses: Option<u32>,
        for_secs: Option<u64>,
    },
    /// A denial.
    Deny,
}

impl Asked {
    /// The canonical text of the `scope:` line.
    pub fn text(&self) -> String {
        match self {
            Asked::Once => "once".into(),
            Asked::Session => "session".into(),
            Asked::Deny => "deny".into(),
            Asked::Limited { uses, for_secs } => {
                let mut parts = Vec::new();
                if let Some(n) = uses {
                    parts.push(format!("uses={n}"));
                }
                if let Some(s) = for_secs {
                    parts.push(format!(
                        "for={}",
                        crate::session::duration_text(s.saturating_mul(1000))
                    ));
                }
                parts.join(",")
            }
        }
    }

    /// Parses a `scope:` value; only the canonical spelling is accepted, so one decision has
    /// exactly one statement.
    pub fn parse(text: &str) -> Result<Asked, String> {
        let asked = match text {
            "once" => Asked::Once,
            "session" => Asked::Session,
            "deny" => Asked::Deny,
            _ => {
                let (mut uses, mut for_secs) = (None, None);
                for part in text.split(',') {
                    if let Some(n) = part.strip_prefix("uses=") {
                        let n: u32 = n
                            .parse()
                            .ok()
                            .filter(|n| (1..=MAX_USES).contains(n))
                            .ok_or_else(|| {
                                format!("scope {text:?}: uses= takes 1 to {MAX_USES}")
                            })?;
                        if uses.replace(n).is_some() {
                            return Err(format!("scope {text:?} names uses= twice"));
                        }
                    } else if let Some(d) = part.strip_prefix("for=") {
                        let secs = crate::session::parse_duration(d)
                            .map_err(|_| format!("scope {text:?}: for= takes 90s, 30m or 2h"))?
                            / 1000;
                        if for_secs.replace(secs).is_some() {
                            return Err(format!("scope {text:?} names for= twice"));
                        }
                    } else {
                        return Err(format!(
                            "scope {text:?} is not once, session, deny, uses=N, for=DURATION \
                             or uses=N,for=DURATION"
                        ));
                    }
                }
                Asked::Limited { uses, for_secs }
            }
        };
        if asked.text() != text {
            return Err(format!(
                "scope {text:?} is not written the canonical way ({:?})",
                asked.text()
            ));
        }
        Ok(asked)
    }
}

/// The statement for `p` on `host`, deciding `asked`. Its expiry is the request's: a signature
/// can never outlive what it approves.
pub fn build(p: &Pending, host: &str, asked: &Asked) -> String {
    let i = &p.info;
    let runas = match &i.rungroup {
        Some(g) => format!("{}:{}", escape_text(&i.runuser), escape_text(g)),
        None => escape_text(&i.runuser),
    };
    let flags = if i.flags.is_empty() {
        "-".to_string()
    } else {
        i.flags
            .iter()
            .map(|f| escape_text(f))
            .collect::<Vec<_>>()
            .join(",")
    };
    let expires = UNIX_EPOCH + Duration::from_millis(p.expires_ms);
    format!(
        "{FORMAT}\n\
         host: {host}\n\
         request: {id}\n\
         digest: {digest}\n\
         view: {view}\n\
         command: {command}\n\
         cwd: {cwd}\n\
         runas: {runas}\n\
         requester: {requester} (uid {uid})\n\
         session: {session}\n\
         flags: {flags}\n\
         scope: {scope}\n\
         expires: {expires}\n",
        host = escape_text(host),
        id = escape_text(&p.id),
        digest = occ_base::hex::encode(&i.digest),
        view = occ_base::hex::encode(&i.view_hash()),
        command = argv_list(&i.command),
        cwd = escape_text(&i.runcwd),
        requester = escape_text(&i.submituser),
        uid = i.peer_uid,
        session = escape_text(i.session_id.as_deref().unwrap_or("-")),
        scope = asked.text(),
        expires = humantime::format_rfc3339_seconds(expires),
    )
}

/// The fields a submitted statement names, read before it is compared with the one the broker
/// builds (to know which request and scope to build it for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub request: String,
    pub asked: Asked,
    pub expires_ms: u64,
}

/// Reads the request id, scope and expiry a statement names.
pub fn named(statement: &str) -> Result<Named, String> {
    let mut lines = statement.lines();
    if lines.next() != Some(FORMAT) {
        return Err(format!(
            "not an occ approval statement: the first line must be {FORMAT:?}"
        ));
    }
    let field = |key: &str| {
        statement
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
            .ok_or_else(|| format!("the statement has no {key}: line"))
    };
    let expires = field("expires")?;
    let expires_ms = humantime::parse_rfc3339(expires)
        .map_err(|e| format!("the statement's expires: line is not a time ({e})"))?
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the statement expires before 1970".to_string())?
        .as_millis() as u64;
    Ok(Named {
        request: field("request")?.to_string(),
        asked: Asked::parse(field("scope")?)?,
        expires_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::RequestInfo;

    fn pending() -> Pending {
        Pending {
            id: "ab12cd34".into(),
            info: RequestInfo {
                digest: [7; 32],
                submituser: "agent".into(),
                peer_uid: 1001,
                command: vec![
                    "/usr/bin/systemctl".into(),
                    "restart".into(),
                    "nginx".into(),
                ],
                runuser: "root".into(),
                runcwd: "/srv".into(),
                flags: vec!["writes_files".into()],
                ..RequestInfo::default()
            },
            created_ms: 0,
            expires_ms: 1_800_000,
            votes: Vec::new(),
            terms: None,
        }
    }

    #[test]
    fn statement_names_request_digest_command_scope_and_expiry() {
        let s = build(
            &pending(),
            "web-1",
            &Asked::Limited {
                uses: Some(3),
                for_secs: Some(1800),
            },
        );
        assert!(s.starts_with("occ-approval-statement v1\nhost: web-1\nrequest: ab12cd34\n"));
        assert!(s.contains(&format!("digest: {}\n", "07".repeat(32))));
        assert!(s.contains("command: [\"/usr/bin/systemctl\", \"restart\", \"nginx\"]\n"));
        assert!(s.contains("runas: root\n"));
        assert!(s.contains("requester: agent (uid 1001)\n"));
        assert!(s.contains("flags: writes_files\n"));
        assert!(s.contains("scope: uses=3,for=30m\n"));
        assert!(s.ends_with("expires: 1970-01-01T00:30:00Z\n"));
        let n = named(&s).unwrap();
        assert_eq!(n.request, "ab12cd34");
        assert_eq!(n.expires_ms, 1_800_000);
        assert_eq!(
            n.asked,
            Asked::Limited {
                uses: Some(3),
                for_secs: Some(1800)
            }
        );
    }

    #[test]
    fn requester_text_cannot_add_lines() {
        let mut p = pending();
        p.info.command.push("x\nscope: session".into());
        p.info.runcwd = "/tmp\nrequest: other".into();
        let s = build(&p, "h", &Asked::Once);
        assert_eq!(s.lines().count(), 13, "{s}");
        assert_eq!(named(&s).unwrap().asked, Asked::Once);
        assert_eq!(named(&s).unwrap().request, "ab12cd34");
    }

    #[test]
    fn scopes_parse_only_canonically() {
        for ok in [
            "once",
            "session",
            "deny",
            "uses=2",
            "for=90s",
            "uses=1,for=2h",
        ] {
            assert_eq!(Asked::parse(ok).unwrap().text(), ok);
        }
        for bad in [
            "",
            "Once",
            "for=60m",
            "for=120s",
            "for=30m,uses=2",
            "uses=0",
            "uses=1001",
            "uses=2,uses=3",
            "for=0m",
            "for=5d",
            "forever",
            "once,session",
        ] {
            assert!(Asked::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn a_foreign_text_is_not_a_statement() {
        assert!(named("hello\nrequest: x\n").is_err());
        let s = build(&pending(), "h", &Asked::Once).replace("scope: once", "scope: forever");
        assert!(named(&s).is_err());
    }
}
