//! Where a request came from, as OpenClaw tells its exec commands: the channel message a run
//! started from (`OPENCLAW_CHANNEL_CONTEXT`, set by OpenClaw itself: `{"sender":{"id":…},
//! "chat":{"id":…}}`) and what occ's OpenClaw plugin adds (`OPENCLAW_MESSAGE_CHANNEL`,
//! `OPENCLAW_AGENT_ID`, `OPENCLAW_SESSION_KEY`). All of it is the requester's own environment:
//! the agent can change it, so it informs the approver and never grants anything. A context
//! occ cannot read still counts as a channel message (`from_channel`), so hiding the source
//! behind bad JSON never makes a request look local.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The variable OpenClaw sets on runs that start from a channel message.
pub const CHANNEL_CONTEXT: &str = "OPENCLAW_CHANNEL_CONTEXT";
/// The variables occ's OpenClaw plugin (`occ-exec-env`) sets on every exec command.
pub const MESSAGE_CHANNEL: &str = "OPENCLAW_MESSAGE_CHANNEL";
/// The OpenClaw agent id (plugin).
pub const AGENT_ID: &str = "OPENCLAW_AGENT_ID";
/// OpenClaw's session key, e.g. `agent:main:telegram:direct:123` (plugin).
pub const SESSION_KEY: &str = "OPENCLAW_SESSION_KEY";

/// OpenClaw's name for its own Control UI chat (`INTERNAL_MESSAGE_CHANNEL`): the gateway's
/// operator, behind the gateway's auth, not a channel anyone outside can write to.
pub const INTERNAL_CHANNEL: &str = "webchat";

/// The longest value kept of any one of these variables; longer ones are cut, marked `…`.
const MAX_VALUE: usize = 256;
/// The longest `OPENCLAW_CHANNEL_CONTEXT` parsed; a longer one is unreadable.
const MAX_CONTEXT: usize = 4096;

/// Where a request came from. Every field is optional: a run started from the CLI has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The message channel (`telegram`, `discord`, …), from the plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The sender's id on that channel (`OPENCLAW_CHANNEL_CONTEXT.sender.id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The chat's id (`OPENCLAW_CHANNEL_CONTEXT.chat.id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<String>,
    /// The OpenClaw agent id, from the plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// OpenClaw's session key, from the plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    /// Why `OPENCLAW_CHANNEL_CONTEXT` could not be read, when it was set but unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_error: Option<String>,
}

#[derive(Deserialize)]
struct Id {
    id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawContext {
    sender: Option<Id>,
    chat: Option<Id>,
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_VALUE {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_VALUE).collect();
    out.push('…');
    out
}

/// An id as OpenClaw writes it: a string (numbers are accepted and written in decimal).
fn id_text(id: Option<Id>) -> Result<Option<String>, String> {
    match id.and_then(|i| i.id) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(cut(&s))),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!(
            "an id is not a string: {}",
            cut(&other.to_string())
        )),
    }
}

impl Source {
    /// Reads the caller's variables. `None` when none of them is set (a run from the CLI,
    /// or no OpenClaw at all).
    pub fn from_env(env: &BTreeMap<String, String>) -> Option<Source> {
        let var = |k: &str| env.get(k).filter(|v| !v.is_empty()).map(|v| cut(v));
        let mut s = Source {
            channel: var(MESSAGE_CHANNEL),
            agent: var(AGENT_ID),
            session_key: var(SESSION_KEY),
            ..Source::default()
        };
        if let Some(raw) = env.get(CHANNEL_CONTEXT).filter(|v| !v.trim().is_empty()) {
            match Self::parse_context(raw) {
                Ok((sender, chat)) => {
                    s.sender = sender;
                    s.chat = chat;
                }
                Err(e) => s.context_error = Some(e),
            }
        }
        (s != Source::default()).then_some(s)
    }

    fn parse_context(raw: &str) -> Result<(Option<String>, Option<String>), String> {
        if raw.len() > MAX_CONTEXT {
            return Err(format!(
                "{CHANNEL_CONTEXT} is {} bytes, over {MAX_CONTEXT}",
                raw.len()
            ));
        }
        let c: RawContext = serde_json::from_str(raw)
            .map_err(|e| format!("{CHANNEL_CONTEXT} is not OpenClaw's JSON: {e}"))?;
        Ok((id_text(c.sender)?, id_text(c.chat)?))
    }

    /// Whether the run started from a channel message: OpenClaw set a sender or chat, the
    /// plugin named a channel other than OpenClaw's own Control UI chat ([`INTERNAL_CHANNEL`]),
    /// or the context was set but unreadable.
    pub fn from_channel(&self) -> bool {
        self.sender.is_some()
            || self.chat.is_some()
            || self
                .channel
                .as_deref()
                .is_some_and(|c| c != INTERNAL_CHANNEL)
            || self.context_error.is_some()
    }

    /// One line for the approver, unescaped (the caller escapes it): `telegram, sender 42,
    /// chat -100, agent main, session agent:main:…`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match (&self.channel, self.sender.is_some() || self.chat.is_some()) {
            (Some(c), _) => parts.push(c.clone()),
            (None, true) => parts.push("a channel message".to_string()),
            (None, false) => {}
        }
        for (label, v) in [
            ("sender", &self.sender),
            ("chat", &self.chat),
            ("agent", &self.agent),
            ("session", &self.session_key),
        ] {
            if let Some(v) = v {
                parts.push(format!("{label} {v}"));
            }
        }
        if let Some(e) = &self.context_error {
            parts.push(format!("unreadable channel context ({e})"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nothing_set_is_no_source() {
        assert_eq!(Source::from_env(&env(&[("OPENCLAW_SHELL", "exec")])), None);
        assert_eq!(Source::from_env(&env(&[(CHANNEL_CONTEXT, "  ")])), None);
    }

    #[test]
    fn openclaws_own_shape_is_read() {
        // As OpenClaw 2026.9.6's exec writes it (buildChannelContextEnv), with the plugin's.
        let s = Source::from_env(&env(&[
            (
                CHANNEL_CONTEXT,
                r#"{"sender":{"id":"8123456789"},"chat":{"id":"-1001234567890"}}"#,
            ),
            (MESSAGE_CHANNEL, "telegram"),
            (AGENT_ID, "main"),
            (SESSION_KEY, "agent:main:telegram:group:-1001234567890"),
        ]))
        .unwrap();
        assert_eq!(s.sender.as_deref(), Some("8123456789"));
        assert_eq!(s.chat.as_deref(), Some("-1001234567890"));
        assert!(s.from_channel());
        assert_eq!(
            s.describe(),
            "telegram, sender 8123456789, chat -1001234567890, agent main, \
             session agent:main:telegram:group:-1001234567890"
        );
    }

    #[test]
    fn sender_only_and_numbers() {
        let s = Source::from_env(&env(&[(CHANNEL_CONTEXT, r#"{"sender":{"id":42}}"#)])).unwrap();
        assert_eq!(s.sender.as_deref(), Some("42"));
        assert_eq!(s.chat, None);
        assert_eq!(s.describe(), "a channel message, sender 42");
    }

    #[test]
    fn plugin_only_from_the_cli_is_not_a_channel() {
        let s = Source::from_env(&env(&[
            (AGENT_ID, "main"),
            (SESSION_KEY, "agent:main:main"),
        ]))
        .unwrap();
        assert!(!s.from_channel());
        assert_eq!(s.describe(), "agent main, session agent:main:main");
    }

    #[test]
    fn the_control_ui_chat_is_not_a_channel() {
        let s = Source::from_env(&env(&[(MESSAGE_CHANNEL, "webchat")])).unwrap();
        assert!(!s.from_channel());
        let s = Source::from_env(&env(&[(MESSAGE_CHANNEL, "discord")])).unwrap();
        assert!(s.from_channel());
    }

    #[test]
    fn unreadable_context_still_counts_as_a_channel() {
        for raw in [
            "not json",
            r#"{"sender":{"id":{"nested":1}}}"#,
            r#"["sender"]"#,
        ] {
            let s = Source::from_env(&env(&[(CHANNEL_CONTEXT, raw)])).unwrap();
            assert!(s.from_channel(), "{raw}");
            assert!(s.context_error.is_some(), "{raw}");
            assert!(s.describe().contains("unreadable channel context"), "{raw}");
        }
        let big = format!(r#"{{"sender":{{"id":"{}"}}}}"#, "x".repeat(MAX_CONTEXT));
        let s = Source::from_env(&env(&[(CHANNEL_CONTEXT, &big)])).unwrap();
        assert!(s.context_error.unwrap().contains("over 4096"));
    }

    #[test]
    fn long_values_are_cut() {
        let long = "a".repeat(1000);
        let s = Source::from_env(&env(&[(MESSAGE_CHANNEL, &long)])).unwrap();
        let c = s.channel.unwrap();
        assert_eq!(c.chars().count(), MAX_VALUE + 1);
        assert!(c.ends_with('…'));
    }
}
