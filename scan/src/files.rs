//! The monitoring files (`approved_ports.json`, `egress_allowlist.json`): strict loading into
//! typed rules, where an unknown key or a wrong type is an error naming the file, rule and key;
//! and atomic 0600 writes (temp file, fsync, rename) for everything occ-scan writes.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use occ_base::atomic::{self, Options};
use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ScanError;
use crate::net::{self, Cidr};
use crate::sockets::Protocol;

/// A loaded rule file.
#[derive(Debug, Clone)]
pub struct RuleFile<T> {
    /// Where it was read from.
    pub path: PathBuf,
    /// Whether the file exists (a missing file means no rules).
    pub present: bool,
    /// The rules, in file order.
    pub rules: Vec<T>,
}

/// Where an approved listener may be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// `*`: any address.
    Any,
    /// Exactly this address (IPv4-mapped forms compare as IPv4).
    Addr(IpAddr),
}

impl Bind {
    /// Whether a listener on `addr` is covered.
    pub fn covers(&self, addr: IpAddr) -> bool {
        match self {
            Bind::Any => true,
            Bind::Addr(a) => net::canonical(*a) == net::canonical(addr),
        }
    }
}

impl Serialize for Bind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Bind::Any => s.serialize_str("*"),
            Bind::Addr(a) => s.serialize_str(&a.to_string()),
        }
    }
}

/// One `approved_ports.json` rule. `port`, `protocol`, `command`, `bind` (or `host`) and `exe`
/// are matched; `pid`, `user` and `comment` are informational.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovedPort {
    /// The port.
    pub port: u16,
    /// `tcp` (default) or `udp`.
    pub protocol: Protocol,
    /// The listener's bind address; `None` or `*` allow any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<Bind>,
    /// The comm name, compared case-insensitively; `None` (or `""`) allows any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The full executable path, compared exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Informational.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Value>,
    /// Informational (stale after a restart; never matched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<Value>,
    /// Informational.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

const PORT_KEYS: &str = "port, protocol, command, host, bind, exe, user, pid, comment";
const EGRESS_KEYS: &str = "protocol, port, command, exe, host, host_regex, cidr";

/// Longest accepted `host_regex` (it is compiled with a size limit as well).
pub const MAX_REGEX_LEN: usize = 1000;

/// One `egress_allowlist.json` rule. Every key present must match; a rule without `host`,
/// `host_regex` or `cidr` allows any remote address.
#[derive(Debug, Clone)]
pub struct EgressRule {
    /// `tcp` (default) or `udp`.
    pub protocol: Protocol,
    /// The remote port.
    pub port: Option<u16>,
    /// The comm name, compared case-insensitively.
    pub command: Option<String>,
    /// The full executable path, compared exactly.
    pub exe: Option<String>,
    /// A host name (or address) resolved at scan time; the remote must be one of its addresses.
    pub host: Option<String>,
    /// The pattern as written, and compiled anchored (`^(?:…)$`).
    pub host_regex: Option<(String, Regex)>,
    /// The remote must lie in this block.
    pub cidr: Option<Cidr>,
}

impl EgressRule {
    /// Whether the rule leaves the remote address unconstrained.
    pub fn any_host(&self) -> bool {
        self.host.is_none() && self.host_regex.is_none() && self.cidr.is_none()
    }
}

/// Loads `approved_ports.json`. A missing file is zero rules; anything malformed is an error.
pub fn load_approved_ports(path: &Path) -> Result<RuleFile<ApprovedPort>, ScanError> {
    load(path, |index, obj| {
        let ctx = Ctx { path, index };
        for key in obj.keys() {
            if !PORT_KEYS.split(", ").any(|k| k == key) {
                return Err(ScanError::UnknownKey {
                    path: path.to_path_buf(),
                    index,
                    key: key.clone(),
                    allowed: PORT_KEYS,
                });
            }
        }
        let port = match obj.get("port") {
            Some(v) => ctx.port(v, "port")?,
            None => return Err(ctx.invalid("port", "is required (1 to 65535)".to_owned())),
        };
        let host = ctx.bind(obj.get("host"), "host")?;
        let bind = ctx.bind(obj.get("bind"), "bind")?;
        let bind = match (host, bind) {
            (Some(h), Some(b)) if h != b => {
                return Err(ctx.invalid(
                    "bind",
                    "differs from \"host\" (host is read as bind); keep one of them".to_owned(),
                ))
            }
            (h, b) => b.or(h),
        };
        Ok(ApprovedPort {
            port,
            protocol: ctx.protocol(obj.get("protocol"))?,
            bind,
            command: ctx.opt_string(obj.get("command"), "command")?,
            exe: ctx.exe(obj.get("exe"))?,
            user: ctx.info(obj.get("user"), "user")?,
            pid: ctx.info(obj.get("pid"), "pid")?,
            comment: ctx.opt_string(obj.get("comment"), "comment")?,
        })
    })
}

/// Loads `egress_allowlist.json`. A missing file is zero rules; anything malformed is an error.
pub fn load_egress_allowlist(path: &Path) -> Result<RuleFile<EgressRule>, ScanError> {
    load(path, |index, obj| {
        let ctx = Ctx { path, index };
        for key in obj.keys() {
            if !EGRESS_KEYS.split(", ").any(|k| k == key) {
                return Err(ScanError::UnknownKey {
                    path: path.to_path_buf(),
                    index,
                    key: key.clone(),
                    allowed: EGRESS_KEYS,
                });
            }
        }
        let port = obj.get("port").map(|v| ctx.port(v, "port")).transpose()?;
        let host = ctx.opt_string(obj.get("host"), "host")?;
        let host_regex = match ctx.opt_string(obj.get("host_regex"), "host_regex")? {
            None => None,
            Some(p) => Some(ctx.regex(p)?),
        };
        let cidr = match ctx.opt_string(obj.get("cidr"), "cidr")? {
            None => None,
            Some(c) => Some(c.parse::<Cidr>().map_err(|e| ctx.invalid("cidr", e))?),
        };
        Ok(EgressRule {
            protocol: ctx.protocol(obj.get("protocol"))?,
            port,
            command: ctx.opt_string(obj.get("command"), "command")?,
            exe: ctx.exe(obj.get("exe"))?,
            host,
            host_regex,
            cidr,
        })
    })
}

fn load<T>(
    path: &Path,
    mut rule: impl FnMut(usize, &Map<String, Value>) -> Result<T, ScanError>,
) -> Result<RuleFile<T>, ScanError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(RuleFile {
                path: path.to_path_buf(),
                present: false,
                rules: Vec::new(),
            })
        }
        Err(source) => {
            return Err(ScanError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| ScanError::Json {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let Value::Array(items) = value else {
        return Err(ScanError::NotArray {
            path: path.to_path_buf(),
            found: json_type(&value),
        });
    };
    let mut rules = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(ScanError::RuleNotObject {
                path: path.to_path_buf(),
                index,
                found: json_type(item),
            });
        };
        rules.push(rule(index, obj)?);
    }
    Ok(RuleFile {
        path: path.to_path_buf(),
        present: true,
        rules,
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Ctx<'a> {
    path: &'a Path,
    index: usize,
}

impl Ctx<'_> {
    fn invalid(&self, key: &'static str, problem: String) -> ScanError {
        ScanError::InvalidValue {
            path: self.path.to_path_buf(),
            index: self.index,
            key,
            problem,
        }
    }

    /// An integer 1–65535, or a string holding one (the seed wrote both).
    fn port(&self, v: &Value, key: &'static str) -> Result<u16, ScanError> {
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        n.and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n != 0)
            .ok_or_else(|| {
                self.invalid(
                    key,
                    format!("{v} is not a port; write an integer from 1 to 65535"),
                )
            })
    }

    fn protocol(&self, v: Option<&Value>) -> Result<Protocol, ScanError> {
        match v {
            None | Some(Value::Null) => Ok(Protocol::Tcp),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("tcp") => Ok(Protocol::Tcp),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("udp") => Ok(Protocol::Udp),
            Some(other) => Err(self.invalid(
                "protocol",
                format!("{other} is not a protocol; write \"tcp\" or \"udp\""),
            )),
        }
    }

    /// A string; `""` and `null` mean "not set".
    fn opt_string(
        &self,
        v: Option<&Value>,
        key: &'static str,
    ) -> Result<Option<String>, ScanError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => {
                Err(self.invalid(key, format!("must be a string, found {}", json_type(other))))
            }
        }
    }

    fn exe(&self, v: Option<&Value>) -> Result<Option<String>, ScanError> {
        let exe = self.opt_string(v, "exe")?;
        if let Some(e) = &exe {
            if !e.starts_with('/') {
                return Err(self.invalid(
                    "exe",
                    format!("\"{e}\" is not absolute; write the full path, e.g. \"/usr/bin/node\""),
                ));
            }
        }
        Ok(exe)
    }

    fn bind(&self, v: Option<&Value>, key: &'static str) -> Result<Option<Bind>, ScanError> {
        let Some(s) = self.opt_string(v, key)? else {
            return Ok(None);
        };
        let s = s.trim();
        if s == "*" {
            return Ok(Some(Bind::Any));
        }
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        bare.parse::<IpAddr>()
            .map(|a| Some(Bind::Addr(a)))
            .map_err(|_| {
                self.invalid(
                    key,
                    format!(
                    "\"{s}\" is not an address; write an IP such as \"127.0.0.1\" or \"::\", or \
                     \"*\" for any"
                ),
                )
            })
    }

    /// `user` and `pid` are informational: a string, a number or null.
    fn info(&self, v: Option<&Value>, key: &'static str) -> Result<Option<Value>, ScanError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v @ (Value::String(_) | Value::Number(_))) => Ok(Some(v.clone())),
            Some(other) => Err(self.invalid(
                key,
                format!("must be a string or a number, found {}", json_type(other)),
            )),
        }
    }

    fn regex(&self, pattern: String) -> Result<(String, Regex), ScanError> {
        if pattern.len() > MAX_REGEX_LEN {
            return Err(self.invalid(
                "host_regex",
                format!("is longer than {MAX_REGEX_LEN} characters; split it into several rules"),
            ));
        }
        let re = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                self.invalid(
                    "host_regex",
                    format!("is not a valid regex ({e}); it is matched anchored, as ^(?:…)$"),
                )
            })?;
        Ok((pattern, re))
    }
}

/// Writes `bytes` to `path` atomically: a 0600 temp file in the same directory, fsync, rename,
/// then fsync of the directory. Missing parent directories are created 0700.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ScanError> {
    atomic::write_private(path, bytes, Options::durable().create_parents()).map_err(|e| {
        ScanError::Write {
            path: path.to_path_buf(),
            source: e.into_source(),
        }
    })
}

/// Writes JSON (2-space indent, trailing newline) atomically with mode 0600.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ScanError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| ScanError::Write {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("rules.json");
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn approved_ports_accepts_the_seed_and_new_keys() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            r#"[{"port": 18789, "protocol": "TCP", "command": "node", "host": "127.0.0.1",
                 "user": "alice", "pid": 4242, "comment": "gateway"},
                {"port": "53", "protocol": "udp", "bind": "*", "exe": "/usr/sbin/dnsmasq"},
                {"port": 22, "command": ""}]"#,
        );
        let f = load_approved_ports(&p).unwrap();
        assert!(f.present);
        assert_eq!(f.rules.len(), 3);
        assert_eq!(f.rules[0].protocol, Protocol::Tcp);
        assert_eq!(
            f.rules[0].bind,
            Some(Bind::Addr("127.0.0.1".parse().unwrap()))
        );
        assert_eq!(f.rules[1].port, 53);
        assert_eq!(f.rules[1].protocol, Protocol::Udp);
        assert_eq!(f.rules[1].bind, Some(Bind::Any));
        assert_eq!(f.rules[2].command, None);
    }

    #[test]
    fn approved_ports_errors_name_file_rule_and_key() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            (r#"[{"port": 22, "prot": "tcp"}]"#, "unknown key \"prot\""),
            (r#"[{"protocol": "tcp"}]"#, "\"port\": is required"),
            (r#"[{"port": null}]"#, "is not a port"),
            (r#"[{"port": "ssh"}]"#, "is not a port"),
            (r#"[{"port": 70000}]"#, "is not a port"),
            (r#"[{"port": 22, "protocol": "sctp"}]"#, "\"protocol\""),
            (
                r#"[{"port": 22, "bind": "localhost"}]"#,
                "is not an address",
            ),
            (
                r#"[{"port": 22, "host": "127.0.0.1", "bind": "::1"}]"#,
                "differs from \"host\"",
            ),
            (r#"[{"port": 22, "exe": "node"}]"#, "is not absolute"),
            (r#"[{"port": 22, "user": ["a"]}]"#, "\"user\""),
            (r#"[22]"#, "rule 0 must be a JSON object"),
            (r#"{"port": 22}"#, "top level must be a JSON array"),
            (r#"[{"port": 22},"#, "not valid JSON"),
        ];
        for (text, want) in cases {
            let p = write(d.path(), text);
            let e = load_approved_ports(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains("rules.json"), "{text}: {e}");
        }
    }

    #[test]
    fn missing_file_is_zero_rules_not_an_error() {
        let d = tempfile::tempdir().unwrap();
        let f = load_egress_allowlist(&d.path().join("nope.json")).unwrap();
        assert!(!f.present);
        assert!(f.rules.is_empty());
    }

    #[test]
    fn egress_rules_parse_and_regexes_are_anchored() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            r#"[{"protocol": "tcp", "port": 443, "host_regex": "api\\.openai\\.com"},
                {"cidr": "10.0.0.0/8", "command": "curl", "exe": "/usr/bin/curl"},
                {"host": "example.org", "protocol": "udp", "port": 53},
                {}]"#,
        );
        let f = load_egress_allowlist(&p).unwrap();
        assert_eq!(f.rules.len(), 4);
        let (_, re) = f.rules[0].host_regex.as_ref().unwrap();
        assert!(re.is_match("api.openai.com"));
        assert!(!re.is_match("evil-api.openai.com.attacker.net"));
        assert!(!re.is_match("xapi.openai.com"));
        assert!(f.rules[3].any_host());
        assert!(!f.rules[1].any_host());
    }

    #[test]
    fn egress_errors_name_the_key() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            (r#"[{"hosts": "x"}]"#, "unknown key \"hosts\""),
            (
                r#"[{"host_regex": "("}]"#,
                "\"host_regex\": is not a valid regex",
            ),
            (r#"[{"cidr": "10.0.0.0/40"}]"#, "\"cidr\""),
            (r#"[{"port": "https"}]"#, "\"port\""),
            (r#"[{"port": 443, "bind": "*"}]"#, "unknown key \"bind\""),
        ];
        for (text, want) in cases {
            let p = write(d.path(), text);
            let e = load_egress_allowlist(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn write_atomic_makes_0600_and_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/out.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(d.path().join("a"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let leftovers: Vec<_> = fs::read_dir(d.path().join("a/b")).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }
}
