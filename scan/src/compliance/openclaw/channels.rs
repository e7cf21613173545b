//! OpenClaw's `channels` block as OpenClaw reads it: `channels.defaults` and
//! `channels.modelByChannel` are shared settings, not channels; every other object is a channel,
//! and each of its `accounts.<id>` is judged with what it inherits from the channel (the
//! account's keys over the channel's, whole values replaced, never deep-merged; Telegram keeps a
//! listed root `allowFrom` over an account's `"*"`; WhatsApp's named accounts inherit
//! `accounts.default` before the channel, Google Chat's after it). Pure: values in, scopes out.

use serde_json::{Map, Value};

/// Keys under `channels` that are shared settings, not channels.
pub const NOT_CHANNELS: &[&str] = &["defaults", "modelByChannel"];

/// Keys whose maps hold group chats (Telegram/WhatsApp/Signal `groups`, Discord `guilds`,
/// Slack and Mattermost `channels`, Matrix `rooms`, Microsoft Teams `teams`).
const GROUP_MAPS: &[&str] = &["groups", "guilds", "channels", "rooms", "teams"];

/// One thing that accepts messages: a channel without accounts, or one account of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `telegram`, or `telegram.accounts.work`.
    pub label: String,
    /// The effective DM policy (`pairing` when nothing sets one).
    pub dm_policy: String,
    /// Whether `dm_policy` was set (on the account, the channel, or a legacy `dm.policy`).
    pub dm_policy_set: bool,
    /// The effective `allowFrom` (or legacy `dm.allowFrom`), as strings.
    pub allow_from: Vec<String>,
    /// The effective group policy: the account's, the channel's, `channels.defaults.groupPolicy`,
    /// else `allowlist`.
    pub group_policy: String,
    /// The effective `groupAllowFrom`.
    pub group_allow_from: Vec<String>,
    /// Every explicit `requireMention` in the scope's group settings: (where, value).
    pub mentions: Vec<(String, bool)>,
    /// Group chats configured (entries of the group maps, `"*"` included).
    pub group_entries: Vec<String>,
}

impl Scope {
    /// Whether anyone may message the agent here: DMs `open`, or `"*"` in `allowFrom`.
    pub fn dms_open(&self) -> bool {
        self.dm_policy == "open" || self.allow_from.iter().any(|a| a.trim() == "*")
    }

    /// Whether any group, or any member of a group, may reach the agent.
    pub fn groups_open(&self) -> bool {
        self.group_policy == "open" || self.group_allow_from.iter().any(|a| a.trim() == "*")
    }

    /// Whether groups are turned off here.
    pub fn groups_disabled(&self) -> bool {
        self.group_policy == "disabled"
    }

    /// One line of evidence: `telegram.accounts.work: dmPolicy=open, allowFrom=["*"], groupPolicy=open`.
    pub fn describe(&self) -> String {
        let list = |l: &[String]| {
            if l.is_empty() {
                "none".to_string()
            } else {
                format!("[{}]", l.join(", "))
            }
        };
        let mut s = format!(
            "{}: dmPolicy={}{}, allowFrom={}, groupPolicy={}",
            self.label,
            self.dm_policy,
            if self.dm_policy_set { "" } else { " (default)" },
            list(&self.allow_from),
            self.group_policy
        );
        if !self.group_allow_from.is_empty() {
            s.push_str(&format!(
                ", groupAllowFrom={}",
                list(&self.group_allow_from)
            ));
        }
        s
    }
}

/// A channel and whether it is turned off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    /// The scopes of every enabled channel and account.
    pub scopes: Vec<Scope>,
    /// Channels and accounts with `enabled: false`, by label.
    pub disabled: Vec<String>,
    /// Open settings written on a channel's root that every account overrides: they still
    /// say what an account added later would get (as OpenClaw's own audit reports them).
    pub root_open: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn is_wildcard(v: &Value) -> bool {
    v.as_str().map(str::trim) == Some("*")
}

/// What an account sees: `account` over `base` (`base` without `accounts`), keys replaced
/// whole. `single` (the channel has one account) lets an empty `groups: {}` inherit the
/// channel's groups; `keep_listed_root` is Telegram's rule that a listed root `allowFrom`
/// wins over an account's `"*"`.
pub fn merge_account(
    base: &Map<String, Value>,
    account: &Map<String, Value>,
    single: bool,
    keep_listed_root: bool,
) -> Map<String, Value> {
    let mut merged: Map<String, Value> = base
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "accounts" | "defaultAccount"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in account {
        merged.insert(k.clone(), v.clone());
    }
    if single
        && account
            .get("groups")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    {
        match base.get("groups") {
            Some(g) => merged.insert("groups".into(), g.clone()),
            None => merged.remove("groups"),
        };
    }
    if keep_listed_root {
        if let (Some(Value::Array(root)), Some(Value::Array(acct))) =
            (base.get("allowFrom"), account.get("allowFrom"))
        {
            let listed = root
                .iter()
                .any(|e| !is_wildcard(e) && !e.as_str().is_some_and(|s| s.trim().is_empty()));
            if listed && acct.iter().any(is_wildcard) {
                let rest: Vec<Value> = acct.iter().filter(|e| !is_wildcard(e)).cloned().collect();
                merged.insert(
                    "allowFrom".into(),
                    Value::Array(if rest.is_empty() { root.clone() } else { rest }),
                );
            }
        }
    }
    merged
}

fn enabled(v: &Map<String, Value>) -> bool {
    v.get("enabled").and_then(Value::as_bool) != Some(false)
}

/// Every explicit `requireMention` in `v` (the scope's settings, accounts left out), with its
/// place: a group entry, a `"*"` default, a topic, or the channel itself.
fn mentions(label: &str, v: &Map<String, Value>, out: &mut Vec<(String, bool)>) {
    fn walk(path: &str, v: &Value, out: &mut Vec<(String, bool)>) {
        let Value::Object(m) = v else { return };
        for (k, x) in m {
            if k == "accounts" {
                continue;
            }
            if k == "requireMention" {
                if let Some(b) = x.as_bool() {
                    out.push((path.to_string(), b));
                }
            } else if x.is_object() {
                walk(&format!("{path}.{k}"), x, out);
            }
        }
    }
    walk(label, &Value::Object(v.clone()), out);
}

fn scope(label: String, v: &Map<String, Value>, default_group_policy: Option<&str>) -> Scope {
    let dm = v.get("dm").and_then(Value::as_object);
    let dm_policy = v
        .get("dmPolicy")
        .and_then(Value::as_str)
        .or_else(|| dm.and_then(|d| d.get("policy")).and_then(Value::as_str));
    let allow_from = match v.get("allowFrom") {
        Some(a) => strings(Some(a)),
        None => strings(dm.and_then(|d| d.get("allowFrom"))),
    };
    let group_policy = v
        .get("groupPolicy")
        .and_then(Value::as_str)
        .or(default_group_policy)
        .unwrap_or("allowlist");
    let mut found = Vec::new();
    mentions(&label, v, &mut found);
    let group_entries = GROUP_MAPS
        .iter()
        .filter_map(|k| v.get(*k).and_then(Value::as_object).map(|m| (k, m)))
        .flat_map(|(k, m)| {
            m.keys()
                .map(|g| format!("{label}.{k}.{g}"))
                .collect::<Vec<_>>()
        })
        .collect();
    Scope {
        label,
        dm_policy: dm_policy.unwrap_or("pairing").to_string(),
        dm_policy_set: dm_policy.is_some(),
        allow_from,
        group_policy: group_policy.to_string(),
        group_allow_from: strings(v.get("groupAllowFrom")),
        mentions: found,
        group_entries,
    }
}

/// The scopes of `channels` (the value of the `channels` key).
pub fn read(channels: &Value) -> Channels {
    let mut out = Channels {
        scopes: Vec::new(),
        disabled: Vec::new(),
        root_open: Vec::new(),
    };
    let Some(all) = channels.as_object() else {
        return out;
    };
    let default_group_policy = all
        .get("defaults")
        .and_then(|d| d.get("groupPolicy"))
        .and_then(Value::as_str);
    for (name, ch) in all {
        if NOT_CHANNELS.contains(&name.as_str()) {
            continue;
        }
        let Some(root) = ch.as_object() else { continue };
        if !enabled(root) {
            out.disabled.push(name.clone());
            continue;
        }
        let accounts: Vec<(&String, &Map<String, Value>)> = root
            .get("accounts")
            .and_then(Value::as_object)
            .map(|a| {
                a.iter()
                    .filter_map(|(id, v)| v.as_object().map(|v| (id, v)))
                    .collect()
            })
            .unwrap_or_default();
        if accounts.is_empty() {
            out.scopes
                .push(scope(name.clone(), root, default_group_policy));
            continue;
        }
        // The root is the base every account inherits; an open setting there is reported
        // even when each account overrides it.
        let base_scope = scope(name.clone(), root, default_group_policy);
        if root.contains_key("dmPolicy") && base_scope.dm_policy == "open" {
            out.root_open.push(format!("{name}: dmPolicy=open"));
        }
        if root.get("groupPolicy").and_then(Value::as_str) == Some("open") {
            out.root_open.push(format!("{name}: groupPolicy=open"));
        }
        let single = accounts.len() == 1;
        let shared_default = accounts
            .iter()
            .find(|(id, _)| id.as_str() == "default")
            .map(|(_, v)| {
                let mut d = (*v).clone();
                d.remove("enabled");
                d
            });
        for (id, acct) in &accounts {
            let label = format!("{name}.accounts.{id}");
            let base = match (name.as_str(), &shared_default) {
                // WhatsApp: a named account inherits accounts.default, then the channel.
                ("whatsapp", Some(d)) if id.as_str() != "default" => {
                    merge_account(root, d, false, false)
                }
                // Google Chat: accounts.default's shared settings rank below the channel's.
                ("googlechat", Some(d)) if id.as_str() != "default" => {
                    let mut m = d.clone();
                    m.extend(root.iter().map(|(k, v)| (k.clone(), v.clone())));
                    m
                }
                _ => root.clone(),
            };
            let merged = merge_account(&base, acct, single, name == "telegram");
            if !enabled(&merged) || !enabled(acct) {
                out.disabled.push(label);
                continue;
            }
            out.scopes.push(scope(label, &merged, default_group_policy));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn by_label<'c>(c: &'c Channels, l: &str) -> &'c Scope {
        c.scopes
            .iter()
            .find(|s| s.label == l)
            .unwrap_or_else(|| panic!("no {l} in {:?}", c.scopes))
    }

    #[test]
    fn defaults_and_model_overrides_are_not_channels() {
        // channels.defaults and channels.modelByChannel as OpenClaw's docs show them.
        let c = read(&json!({
            "defaults": {"groupPolicy": "open", "heartbeatVisibility": {"showOk": false}},
            "modelByChannel": {"telegram": {"-1001234567890": "openai/gpt-5.4-mini"}},
            "telegram": {"enabled": true, "dmPolicy": "allowlist", "allowFrom": ["123"]}
        }));
        assert_eq!(c.scopes.len(), 1, "{:?}", c.scopes);
        // The shared default applies where the channel sets no group policy.
        assert_eq!(c.scopes[0].group_policy, "open");
        assert!(c.scopes[0].groups_open());
    }

    #[test]
    fn accounts_inherit_their_channel_and_override_it() {
        // The risky shape from issue 17: per-account open DMs under a restrictive channel.
        let c = read(&json!({
            "telegram": {
                "dmPolicy": "pairing",
                "accounts": {
                    "work": {"botToken": "x", "dmPolicy": "open", "allowFrom": ["*"],
                             "groupPolicy": "open", "groups": {"-1001234567890": {}}},
                    "home": {"botToken": "y"},
                    "old": {"enabled": false, "dmPolicy": "open"}
                }
            }
        }));
        let work = by_label(&c, "telegram.accounts.work");
        assert!(work.dms_open() && work.groups_open());
        assert_eq!(
            work.describe(),
            "telegram.accounts.work: dmPolicy=open, allowFrom=[*], groupPolicy=open"
        );
        assert_eq!(
            work.group_entries,
            ["telegram.accounts.work.groups.-1001234567890"]
        );
        let home = by_label(&c, "telegram.accounts.home");
        assert_eq!(
            (home.dm_policy.as_str(), home.dm_policy_set),
            ("pairing", true)
        );
        assert!(!home.dms_open());
        assert_eq!(c.disabled, ["telegram.accounts.old"]);
        assert!(!c.scopes.iter().any(|s| s.label == "telegram"));
    }

    #[test]
    fn telegram_keeps_a_listed_root_allowlist_over_an_account_wildcard() {
        // OpenClaw's docs: a restrictive top-level allowFrom is a safety boundary.
        let cfg = json!({"telegram": {"allowFrom": ["42"],
            "accounts": {"a": {"allowFrom": ["*"]}, "b": {"allowFrom": ["*", "7"]}}}});
        let c = read(&cfg);
        assert_eq!(by_label(&c, "telegram.accounts.a").allow_from, ["42"]);
        assert_eq!(by_label(&c, "telegram.accounts.b").allow_from, ["7"]);
        // Elsewhere the account's "*" stands.
        let mut other = cfg.clone();
        other["discord"] = other["telegram"].take();
        let c = read(&other);
        assert!(by_label(&c, "discord.accounts.a").dms_open());
    }

    #[test]
    fn groups_replace_whole_and_an_empty_map_inherits_only_with_one_account() {
        let one = json!({"telegram": {"groups": {"-1": {"requireMention": false}},
            "accounts": {"a": {"groups": {}}}}});
        assert_eq!(
            by_label(&read(&one), "telegram.accounts.a").mentions,
            [("telegram.accounts.a.groups.-1".to_string(), false)]
        );
        let two = json!({"telegram": {"groups": {"-1": {"requireMention": false}},
            "accounts": {"a": {"groups": {}}, "b": {"groups": {"-2": {"requireMention": true}}}}}});
        let c = read(&two);
        assert!(by_label(&c, "telegram.accounts.a").mentions.is_empty());
        assert_eq!(
            by_label(&c, "telegram.accounts.b").mentions,
            [("telegram.accounts.b.groups.-2".to_string(), true)]
        );
    }

    #[test]
    fn whatsapp_and_googlechat_shared_default_accounts() {
        let c = read(&json!({
            "whatsapp": {"dmPolicy": "pairing", "accounts": {
                "default": {"dmPolicy": "open", "allowFrom": ["*"]},
                "biz": {}}},
            "googlechat": {"dmPolicy": "allowlist", "allowFrom": ["users/1"], "accounts": {
                "default": {"dmPolicy": "open"},
                "team": {}}}
        }));
        // WhatsApp: the named account inherits accounts.default before the channel.
        assert!(by_label(&c, "whatsapp.accounts.biz").dms_open());
        // Google Chat: the channel ranks above accounts.default.
        assert_eq!(
            by_label(&c, "googlechat.accounts.team").dm_policy,
            "allowlist"
        );
    }

    #[test]
    fn legacy_dm_block_and_mentions_everywhere() {
        let c = read(&json!({
            "slack": {"dm": {"policy": "open", "allowFrom": ["*"]},
                      "channels": {"C1": {"requireMention": true}, "C2": {"requireMention": false}}},
            "msteams": {"requireMention": false, "teams": {"T": {"channels": {"c": {"requireMention": true}}}}},
            "discord": {"guilds": {"g": {"requireMention": true, "channels": {"x": {"requireMention": false}}}}}
        }));
        assert!(by_label(&c, "slack").dms_open());
        assert_eq!(
            by_label(&c, "slack").mentions,
            [
                ("slack.channels.C1".to_string(), true),
                ("slack.channels.C2".to_string(), false)
            ]
        );
        assert!(by_label(&c, "msteams")
            .mentions
            .contains(&("msteams".to_string(), false)));
        assert!(by_label(&c, "discord")
            .mentions
            .contains(&("discord.guilds.g.channels.x".to_string(), false)));
    }

    #[test]
    fn open_roots_under_overriding_accounts_are_reported() {
        let c = read(
            &json!({"telegram": {"dmPolicy": "open", "groupPolicy": "open",
            "accounts": {"a": {"dmPolicy": "allowlist", "allowFrom": ["1"], "groupPolicy": "allowlist"}}}}),
        );
        assert!(!c.scopes[0].dms_open());
        assert_eq!(
            c.root_open,
            ["telegram: dmPolicy=open", "telegram: groupPolicy=open"]
        );
        // A disabled channel is not judged.
        let c = read(&json!({"irc": {"enabled": false, "dmPolicy": "open"}}));
        assert!(c.scopes.is_empty());
        assert_eq!(c.disabled, ["irc"]);
    }
}
