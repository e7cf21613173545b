//! Witness checks: the local chain compared with a copy of its events held elsewhere (a
//! sudo_logsrvd JSON event log, or a syslog file with occ's structured data). It owns which
//! events each forwarder carries, so the broker's forwarders and this check agree. It only
//! reads; it never trusts the local log to say what the witness should hold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::canon::{self, Field, Record};
use crate::error::{AuditError, Result};
use crate::lines::{Line, LineReader};

/// What sudo_logsrvd receives for one occ event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogsrvdMessage {
    /// `AcceptMessage`: occ let the command run.
    Accept,
    /// `AcceptMessage` then `ExitMessage`: how the run ended (sudo_logsrvd records an exit only
    /// inside a session it accepted).
    AcceptExit,
    /// `RejectMessage`: occ refused.
    Reject,
}

/// The sudo_logsrvd message for an occ event type, or `None` when sudo's log has no record of
/// its kind (approvals, config, broker lifecycle: those reach syslog only).
pub fn logsrvd_message(event_type: &str) -> Option<LogsrvdMessage> {
    Some(match event_type {
        "exec_start" => LogsrvdMessage::Accept,
        "exec_finish" | "exec_failed" | "exec_outcome_unknown" | "exec_abandoned" => {
            LogsrvdMessage::AcceptExit
        }
        "policy_block"
        | "session_missing"
        | "approval_denied"
        | "approval_expired"
        | "untrusted_source_block"
        | "token_failed" => LogsrvdMessage::Reject,
        _ => return None,
    })
}

/// The SD-ID of occ's structured data in syslog messages (32473 is the enterprise number RFC
/// 5612 reserves for documentation and private use).
pub const SD_ID: &str = "occ@32473";

/// Whether the broker's forwarders send events of this type at all. The log's own
/// bookkeeping (`log_initialized`, `log_rotated`, `log_recovered`, `rotated_broken_log`) is
/// written by `occ audit` or the writer itself, never offered to a forwarder.
pub fn forwarded(event_type: &str) -> bool {
    !matches!(
        event_type,
        "log_initialized" | "log_rotated" | "log_recovered" | "rotated_broken_log"
    )
}

/// Which kind of copy a witness file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WitnessKind {
    /// sudo_logsrvd's JSON event log (`log_type = logfile`, `log_format = json`): holds occ's
    /// command events (accepts, rejects, exits) only.
    Logsrvd,
    /// Syslog lines with occ's structured data: every event the broker writes.
    Syslog,
}

impl WitnessKind {
    /// The name `occ audit verify --witness` prints.
    pub fn name(self) -> &'static str {
        match self {
            WitnessKind::Logsrvd => "sudo_logsrvd JSON event log",
            WitnessKind::Syslog => "syslog with occ structured data",
        }
    }

    /// Whether a local event of this type should be in a witness of this kind.
    pub fn carries(self, event_type: &str) -> bool {
        forwarded(event_type)
            && (self == WitnessKind::Syslog || logsrvd_message(event_type).is_some())
    }
}

/// One occ event as the witness holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessEvent {
    pub seq: u64,
    pub chain_hash: String,
    pub event_type: String,
    /// Where in the witness: `record N` (logsrvd) or `line N` (syslog).
    pub at: String,
}

/// A witness file, read.
#[derive(Clone, Debug)]
pub struct Witness {
    pub kind: WitnessKind,
    pub events: Vec<WitnessEvent>,
}

/// One local event, as the comparison needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalEvent {
    pub seq: u64,
    pub chain_hash: String,
    pub event_type: String,
}

/// How the local log and the witness disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WitnessReason {
    /// The witness holds this seq with another chain_hash (or another event).
    WitnessMismatch,
    /// A local event the witness should hold but does not.
    MissingFromWitness,
    /// A witness event the local log does not have: what a rewrite or truncation leaves.
    MissingLocally,
}

impl WitnessReason {
    /// The reason code.
    pub fn as_str(self) -> &'static str {
        match self {
            WitnessReason::WitnessMismatch => "witness_mismatch",
            WitnessReason::MissingFromWitness => "missing_from_witness",
            WitnessReason::MissingLocally => "missing_locally",
        }
    }
}

/// One disagreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub reason: WitnessReason,
    pub seq: u64,
    pub event_type: String,
    pub local_chain_hash: Option<String>,
    pub witness_chain_hash: Option<String>,
    /// Where in the witness, when it holds the event.
    pub witness_at: Option<String>,
}

/// Reads a witness file: sudo_logsrvd's JSON event log when it starts with `{`, otherwise
/// syslog lines, of which those carrying `[occ@32473 …]` count.
pub fn read_witness(path: &Path) -> Result<Witness> {
    let bytes = std::fs::read(path).map_err(|e| AuditError::io(path, "read", e))?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let records = logsrvd_records(&bytes).map_err(|e| AuditError::Witness {
            path: path.to_path_buf(),
            detail: format!("not a sudo_logsrvd JSON event log: {e}"),
        })?;
        let events = records
            .into_iter()
            .enumerate()
            .filter(|(_, (kind, _))| kind == "accept" || kind == "reject")
            .filter_map(|(n, (_, rec))| {
                Some(WitnessEvent {
                    seq: rec.get("occ_seq")?.as_u64()?,
                    chain_hash: rec.get("occ_chain_hash")?.as_str()?.to_string(),
                    event_type: rec
                        .get("occ_event")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string(),
                    at: format!("record {}", n + 1),
                })
            })
            .collect();
        return Ok(Witness {
            kind: WitnessKind::Logsrvd,
            events,
        });
    }
    let text = String::from_utf8_lossy(&bytes);
    let events = text
        .lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let p = sd_params(line)?;
            let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            Some(WitnessEvent {
                seq: get("seq")?.parse().ok()?,
                chain_hash: get("chain_hash")?,
                event_type: get("event_type").unwrap_or_default(),
                at: format!("line {}", n + 1),
            })
        })
        .collect();
    Ok(Witness {
        kind: WitnessKind::Syslog,
        events,
    })
}

/// One record of sudo_logsrvd's JSON event log: its kind (`accept`, `reject`, `exit`, `alert`)
/// and its fields.
pub type LogsrvdRecord = (String, serde_json::Map<String, serde_json::Value>);

/// The top-level members of sudo_logsrvd's JSON log in file order. The log is one object whose
/// keys repeat (`"accept"`, `"exit"`, …), so it is read member by member, never into a map.
pub fn logsrvd_records(bytes: &[u8]) -> std::result::Result<Vec<LogsrvdRecord>, String> {
    use serde::de::{Deserializer, MapAccess, Visitor};
    struct Members;
    type Rec = LogsrvdRecord;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<Rec>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of event records")
        }
        fn visit_map<A: MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Vec<Rec>, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                if let serde_json::Value::Object(o) = v {
                    out.push((k, o));
                }
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let out = (&mut de)
        .deserialize_map(Members)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(out)
}

/// The parameters of occ's SD-ELEMENT in a syslog line, unescaped; `None` when the line has
/// none. Whatever a receiver put before the message (its own timestamp, host) is skipped.
fn sd_params(line: &str) -> Option<Vec<(String, String)>> {
    let start = line.find(&format!("[{SD_ID} "))? + SD_ID.len() + 2;
    let mut out = Vec::new();
    let mut rest = line[start..].chars().peekable();
    loop {
        while rest.peek() == Some(&' ') {
            rest.next();
        }
        match rest.peek() {
            Some(']') | None => return Some(out),
            _ => {}
        }
        let name: String = rest.by_ref().take_while(|&c| c != '=').collect();
        if rest.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match rest.next()? {
                '\\' => value.push(rest.next()?),
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((name, value));
    }
}

/// The local events of `files` (oldest first): seq, chain_hash and event_type of each line that
/// has them. Lines that do not parse are the verifier's business, not the witness's.
pub fn local_events(files: &[PathBuf]) -> Result<Vec<LocalEvent>> {
    let mut out = Vec::new();
    for path in files {
        let mut reader = LineReader::new(crate::verify::open_for_reading(path)?);
        let mut members = Vec::new();
        while let Some(line) = reader
            .next_line()
            .map_err(|e| AuditError::io(path, "read", e))?
        {
            let Line::Complete(bytes) = line else {
                continue;
            };
            members.clear();
            if canon::lenient(bytes, &mut members).is_err() {
                continue;
            }
            let rec = Record {
                line: bytes,
                members: &members,
            };
            let (Some(seq), Some(Field::Str(h))) = (
                rec.field("seq").and_then(|f| f.as_u64()),
                rec.field("chain_hash"),
            ) else {
                continue;
            };
            let event_type = match rec.field("event_type") {
                Some(Field::Str(t)) => canon::decode_str(t),
                _ => String::new(),
            };
            out.push(LocalEvent {
                seq,
                chain_hash: canon::decode_str(h),
                event_type,
            });
        }
    }
    Ok(out)
}

/// Compares the local events with the witness. Local events before the witness's first seq
/// are not expected in it (forwarding began later); after that, every local event the
/// witness's kind carries must be there with the same chain_hash, and every witness event
/// must be in the local log. Findings come in seq order.
pub fn compare(witness: &Witness, local: &[LocalEvent]) -> Vec<Finding> {
    let mut held: BTreeMap<u64, Vec<&WitnessEvent>> = BTreeMap::new();
    for w in &witness.events {
        let v = held.entry(w.seq).or_default();
        if !v.iter().any(|x| x.chain_hash == w.chain_hash) {
            v.push(w);
        }
    }
    let from = held.keys().next().copied().unwrap_or(0);
    let mut findings = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in local {
        seen.insert(l.seq);
        match held.get(&l.seq) {
            Some(ws) => {
                for w in ws.iter().filter(|w| w.chain_hash != l.chain_hash) {
                    findings.push(Finding {
                        reason: WitnessReason::WitnessMismatch,
                        seq: l.seq,
                        event_type: l.event_type.clone(),
                        local_chain_hash: Some(l.chain_hash.clone()),
                        witness_chain_hash: Some(w.chain_hash.clone()),
                        witness_at: Some(w.at.clone()),
                    });
                }
            }
            None if l.seq >= from && witness.kind.carries(&l.event_type) => {
                findings.push(Finding {
                    reason: WitnessReason::MissingFromWitness,
                    seq: l.seq,
                    event_type: l.event_type.clone(),
                    local_chain_hash: Some(l.chain_hash.clone()),
                    witness_chain_hash: None,
                    witness_at: None,
                });
            }
            None => {}
        }
    }
    for (seq, ws) in &held {
        if seen.contains(seq) {
            continue;
        }
        for w in ws {
            findings.push(Finding {
                reason: WitnessReason::MissingLocally,
                seq: *seq,
                event_type: w.event_type.clone(),
                local_chain_hash: None,
                witness_chain_hash: Some(w.chain_hash.clone()),
                witness_at: Some(w.at.clone()),
            });
        }
    }
    findings.sort_by_key(|f| f.seq);
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(seq: u64, h: &str, t: &str) -> LocalEvent {
        LocalEvent {
            seq,
            chain_hash: h.into(),
            event_type: t.into(),
        }
    }

    fn held(kind: WitnessKind, evs: &[(u64, &str, &str)]) -> Witness {
        Witness {
            kind,
            events: evs
                .iter()
                .enumerate()
                .map(|(n, (s, h, t))| WitnessEvent {
                    seq: *s,
                    chain_hash: h.to_string(),
                    event_type: t.to_string(),
                    at: format!("line {}", n + 1),
                })
                .collect(),
        }
    }

    fn reasons(f: &[Finding]) -> Vec<(WitnessReason, u64)> {
        f.iter().map(|f| (f.reason, f.seq)).collect()
    }

    #[test]
    fn agreeing_copies_have_no_findings_and_early_events_are_not_expected() {
        let w = held(
            WitnessKind::Syslog,
            &[(2, "b", "request_received"), (3, "c", "exec_start")],
        );
        let l = [
            local(0, "z", "log_initialized"),
            local(1, "a", "broker_started"),
            local(2, "b", "request_received"),
            local(3, "c", "exec_start"),
        ];
        assert!(compare(&w, &l).is_empty());
    }

    #[test]
    fn rewrite_shows_as_mismatch_missing_locally_and_missing_from_witness() {
        use WitnessReason::*;
        let w = held(
            WitnessKind::Syslog,
            &[(1, "a", "x"), (2, "b", "y"), (3, "c", "z")],
        );
        // seq 2 re-hashed, seq 3 dropped, seq 4 never forwarded.
        let l = [local(1, "a", "x"), local(2, "B", "y"), local(4, "d", "w")];
        assert_eq!(
            reasons(&compare(&w, &l)),
            [
                (WitnessMismatch, 2),
                (MissingLocally, 3),
                (MissingFromWitness, 4)
            ]
        );
    }

    #[test]
    fn logsrvd_witness_expects_command_events_only() {
        use WitnessReason::*;
        let w = held(WitnessKind::Logsrvd, &[(1, "a", "exec_start")]);
        let l = [
            local(1, "a", "exec_start"),
            local(2, "b", "approval_granted"),
            local(3, "c", "policy_block"),
        ];
        assert_eq!(reasons(&compare(&w, &l)), [(MissingFromWitness, 3)]);
    }

    #[test]
    fn syslog_structured_data_is_found_behind_a_receivers_prefix() {
        let line = r#"Dec  6 23:02:34 vm occ[12]: <85>1 2026-11-22T23:07:56.874Z vm occ 12 exec_start [occ@32473 seq="12" event_type="exec_start" chain_hash="ab" submituser="a\"b\]c"] {}"#;
        let p = sd_params(line).unwrap();
        assert_eq!(p[0], ("seq".into(), "12".into()));
        assert_eq!(p[3], ("submituser".into(), "a\"b]c".into()));
        assert!(sd_params("no structured data here").is_none());
    }

    #[test]
    fn logsrvd_log_keeps_repeated_keys_in_order() {
        let text = br#"{
            "accept": {"occ_seq": 4, "occ_chain_hash": "d", "occ_event": "exec_start"},
            "accept": {"occ_seq": 6, "occ_chain_hash": "f", "occ_event": "exec_finish"},
            "exit": {"exit_value": 0},
            "reject": {"occ_seq": 7, "occ_chain_hash": "g", "occ_event": "policy_block"}
        }"#;
        let recs = logsrvd_records(text).unwrap();
        let kinds: Vec<&str> = recs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["accept", "accept", "exit", "reject"]);
        assert!(logsrvd_records(b"{\"accept\": ").is_err());
    }
}
