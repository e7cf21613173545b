//! A request as the approver sees it and the grant binds it: [`RequestInfo`], its view hash,
//! and the ids pending requests get.

use std::collections::BTreeMap;

use super::Digest;

/// What an approver sees about a pending request; everything is as the broker resolved it.
/// Everything that is part of the grant is here, so the approver's view (`crate::view`) can
/// show all of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestInfo {
    #[serde(with = "super::hex_digest")]
    pub digest: Digest,
    pub submituser: String,
    pub peer_uid: u32,
    pub peer_pid: i32,
    pub session_id: Option<String>,
    pub command: Vec<String>,
    pub runuser: String,
    pub rungroup: Option<String>,
    pub runcwd: String,
    pub env: BTreeMap<String, String>,
    pub reason: Option<String>,
    pub untrusted: bool,
    pub runs_arbitrary_code: bool,
    /// The risk flags set (`occ_policy::Flags::names`: `runs_arbitrary_code`, `writes_files`,
    /// `requester_writable_input`, `stdin_from_requester`, `untrusted`).
    #[serde(default)]
    pub flags: Vec<String>,
    /// The arguments naming a path the requester can change after approval.
    #[serde(default)]
    pub requester_writable: Vec<String>,
    /// System mode: the caller's variables the command will see (`env_keep`, bound into the
    /// digest); empty in user mode, where the real sudo's env_keep decides.
    #[serde(default)]
    pub kept_env: BTreeMap<String, String>,
    /// `-H`: HOME is the target's home directory.
    #[serde(default)]
    pub set_home: bool,
    /// `-P`: the requester's supplementary groups are kept.
    #[serde(default)]
    pub preserve_groups: bool,
    /// `-D DIR` as typed; the command runs in `runcwd`.
    #[serde(default)]
    pub chdir: Option<String>,
    /// `-E` / `--preserve-env`: the preserved variables and their values (bound into the grant).
    #[serde(default)]
    pub preserved_env: BTreeMap<String, String>,
    /// The argv each known wrapper really runs, outermost first.
    #[serde(default)]
    pub wraps: Vec<Vec<String>>,
    /// Where OpenClaw says the run came from (channel, sender, chat, agent, session key).
    #[serde(default)]
    pub source: Option<occ_policy::Source>,
}

impl RequestInfo {
    /// SHA-256 over what the approver is shown and approves: the command, who runs it where,
    /// with which environment and options, for whom and in which session. The broker computes
    /// it afresh for every live request, so it never trusts a stored view.
    pub fn view_hash(&self) -> Digest {
        use sha2::{Digest as _, Sha256};
        let shown = serde_json::json!([
            self.command,
            self.runuser,
            self.rungroup,
            self.runcwd,
            self.env,
            self.preserved_env,
            self.kept_env,
            self.set_home,
            self.preserve_groups,
            self.chdir,
            self.peer_uid,
            self.session_id,
            self.untrusted,
            self.source,
        ]);
        Sha256::digest(shown.to_string().as_bytes()).into()
    }
}

/// A fresh pending-request id: 8 characters of `[a-z0-9]` from the OS random source.
pub fn random_id() -> std::io::Result<String> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(8);
    while out.len() < 8 {
        let mut buf = [0u8; 16];
        getrandom::fill(&mut buf).map_err(std::io::Error::other)?;
        // Reject bytes >= 252 so every character is equally likely (252 = 7 * 36).
        for b in buf.into_iter().filter(|b| *b < 252) {
            if out.len() < 8 {
                out.push(char::from(ALPHABET[usize::from(b % 36)]));
            }
        }
    }
    Ok(out)
}
