//! What an approval grants (`--once`, `--session`, `--for`/`--uses`), the votes a pending
//! request collects under `approval.quorum`, and the denials a requester is answered with
//! while the denied request's window lasts. Pure data and rules; the store applies them.

use super::{Digest, RequestInfo, Scope};

/// The terms of one approval: its scope, and for a limited grant how many runs and how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    pub scope: Scope,
    /// `--uses N`: runs the grant covers (limited grants only).
    #[serde(default)]
    pub uses: Option<u32>,
    /// `--for D`: how long the grant lives, in milliseconds (limited grants only).
    #[serde(default)]
    pub for_ms: Option<u64>,
}

impl Terms {
    /// `--once` or `--session`.
    pub fn of(scope: Scope) -> Terms {
        Terms {
            scope,
            uses: None,
            for_ms: None,
        }
    }

    /// The terms an approver asked for: `--uses`/`--for` make a limited grant and go with
    /// neither `--session` nor each other's zero.
    pub fn new(scope: Scope, uses: Option<u32>, for_ms: Option<u64>) -> Result<Terms, String> {
        if uses == Some(0) {
            return Err("--uses must be at least 1".into());
        }
        if for_ms == Some(0) {
            return Err("--for must be longer than 0".into());
        }
        let limited = uses.is_some() || for_ms.is_some();
        match (scope, limited) {
            (Scope::Session, true) => {
                Err("--for and --uses limit a grant; they do not go with --session".into())
            }
            (Scope::Limited, false) => Err("a limited grant needs --for, --uses or both".into()),
            (Scope::Once, true) | (Scope::Limited, true) => Ok(Terms {
                scope: Scope::Limited,
                uses,
                for_ms,
            }),
            (s, false) => Ok(Terms::of(s)),
        }
    }

    /// Whether the grant may cover more than one run.
    pub fn repeats(&self) -> bool {
        match self.scope {
            Scope::Once => false,
            Scope::Session => true,
            Scope::Limited => self.uses != Some(1),
        }
    }

    /// How the terms read in messages: `once`, `session`, `--uses 3 --for 30m`.
    pub fn describe(&self) -> String {
        match self.scope {
            Scope::Once | Scope::Session => self.scope.as_str().to_string(),
            Scope::Limited => {
                let mut parts = Vec::new();
                if let Some(n) = self.uses {
                    parts.push(format!("--uses {n}"));
                }
                if let Some(ms) = self.for_ms {
                    parts.push(format!("--for {}", duration_text(ms)));
                }
                parts.join(" ")
            }
        }
    }
}

/// A duration in the largest unit that divides it: `30m`, `2h`, `45s`.
pub fn duration_text(ms: u64) -> String {
    let secs = ms / 1000;
    if secs > 0 && secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs > 0 && secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Parses `--for`: a positive whole number with a unit, `s`, `m` or `h` (`90s`, `30m`, `2h`).
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad =
        || format!("--for {text:?}: write a whole number and a unit s, m or h, such as 30m or 2h");
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: u64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60).ok_or_else(bad)?,
        'h' => n.checked_mul(3600).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(format!("--for {text:?}: must be longer than 0"));
    }
    secs.checked_mul(1000).ok_or_else(bad)
}

/// Why this request must never run more than once on one approval, if it must not: what runs
/// can change after approval, it runs arbitrary code, or it comes from an untrusted source.
pub fn single_run_reason(info: &RequestInfo) -> Option<String> {
    let flagged = |f: &str| info.flags.iter().any(|x| x == f);
    if info.runs_arbitrary_code {
        Some("the command can run arbitrary code".to_string())
    } else if flagged("requester_writable_input") {
        Some(format!(
            "what runs can change after approval: the requester can write {}",
            info.requester_writable.join(", ")
        ))
    } else if flagged("stdin_from_requester") {
        Some(
            "what runs can change after approval: the requester supplies the content on stdin"
                .to_string(),
        )
    } else if info.untrusted {
        Some("the request comes from an untrusted source".to_string())
    } else {
        None
    }
}

/// One approver's vote on a pending request (`approval.quorum` above 1).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    pub uid: u32,
    pub name: String,
    pub at_ms: u64,
}

/// Who is deciding: their uid (distinct approvers are distinct uids) and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    pub uid: u32,
    pub name: String,
}

/// A denied request, remembered until the denied request would have expired: the same
/// request from the same caller is answered with the denial, not filed again.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Denial {
    #[serde(with = "super::hex_digest")]
    pub digest: Digest,
    #[serde(with = "super::hex_digest")]
    pub view: Digest,
    pub caller_uid: u32,
    pub request_id: String,
    pub note: Option<String>,
    pub until_ms: u64,
}

impl Denial {
    /// Whether `info` from `caller_uid` is the denied request, at `now_ms`.
    pub fn matches(&self, info: &RequestInfo, now_ms: u64) -> bool {
        self.until_ms > now_ms
            && self.digest == info.digest
            && self.caller_uid == info.peer_uid
            && self.view == info.view_hash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_s_m_h_and_refuse_the_rest() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        for bad in [
            "",
            "m",
            "30",
            "0m",
            "-1m",
            "1.5h",
            "30 m",
            "3d",
            "99999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(duration_text(1_800_000), "30m");
        assert_eq!(duration_text(7_200_000), "2h");
        assert_eq!(duration_text(90_000), "90s");
    }

    #[test]
    fn limits_make_a_limited_grant_and_never_go_with_session() {
        let t = Terms::new(Scope::Once, Some(3), Some(60_000)).unwrap();
        assert_eq!(t.scope, Scope::Limited);
        assert_eq!(t.describe(), "--uses 3 --for 1m");
        assert!(t.repeats());
        assert!(!Terms::new(Scope::Once, Some(1), None).unwrap().repeats());
        assert!(Terms::new(Scope::Once, Some(1), Some(1)).unwrap().scope == Scope::Limited);
        assert!(Terms::new(Scope::Session, Some(2), None).is_err());
        assert!(Terms::new(Scope::Once, Some(0), None).is_err());
        assert!(Terms::new(Scope::Limited, None, None).is_err());
        assert_eq!(
            Terms::new(Scope::Once, None, None),
            Ok(Terms::of(Scope::Once))
        );
    }
}
