//! The `allowed_signers` file (OpenSSH's ALLOWED_SIGNERS format, see ssh-keygen(1)): who may
//! sign approvals. occ reads a strict subset and refuses the rest with the line number, so a
//! file it cannot fully understand never widens who may approve:
//!
//! - `principals [options] keytype base64 [comment]`; `#` comments and blank lines;
//! - principals are plain names (no `*`, `?` or `!` patterns); `alice@example.com` is the
//!   approver `alice` (the part before `@`);
//! - options: `namespaces="…"`, `valid-after="…"`, `valid-before="…"` (UTC times,
//!   `YYYYMMDD[HHMM[SS]]Z`); `cert-authority` is refused;
//! - only lines whose `namespaces` include `occ-approval` may sign approvals: a key listed for
//!   git commit signing does not become an approver by accident.

use std::io::Read as _;
use std::path::Path;

use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use super::NAMESPACE;

/// One line of the file.
#[derive(Clone, Debug)]
pub struct Entry {
    pub line: usize,
    pub principals: Vec<String>,
    pub namespaces: Option<Vec<String>>,
    pub valid_after: Option<u64>,
    pub valid_before: Option<u64>,
    pub key: KeyData,
}

impl Entry {
    /// Whether this line lets its key sign occ approvals at `now_secs`.
    pub fn signs_approvals_at(&self, now_secs: u64) -> bool {
        self.namespaces
            .as_ref()
            .is_some_and(|ns| ns.iter().any(|n| n == NAMESPACE))
            && self.valid_after.is_none_or(|t| now_secs >= t)
            && self.valid_before.is_none_or(|t| now_secs < t)
    }
}

/// The parsed file.
#[derive(Clone, Debug, Default)]
pub struct AllowedSigners {
    pub entries: Vec<Entry>,
}

/// The approver a principal names: the part before `@`.
pub fn approver_of(principal: &str) -> &str {
    principal.split('@').next().unwrap_or(principal)
}

impl AllowedSigners {
    /// Reads `path` through the trusted opener (owned by `trusted_uid` or root, not writable
    /// by group or others, no symlink). A missing file is `Ok(None)`.
    pub fn load(path: &Path, trusted_uid: u32) -> Result<Option<AllowedSigners>, String> {
        let Some(mut t) = occ_base::trusted::open(path, trusted_uid).map_err(|e| {
            format!("{e}; fix: make it a regular file owned by root (or this user), mode 0644")
        })?
        else {
            return Ok(None);
        };
        let mut text = String::new();
        t.file
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        AllowedSigners::parse(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of an allowed_signers file.
    pub fn parse(text: &str) -> Result<AllowedSigners, String> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            entries.push(parse_line(line, i + 1).map_err(|e| format!("line {}: {e}", i + 1))?);
        }
        Ok(AllowedSigners { entries })
    }

    /// The lines that let `key` sign approvals at `now_secs`.
    pub fn signers_of(&self, key: &KeyData, now_secs: u64) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| &e.key == key && e.signs_approvals_at(now_secs))
            .collect()
    }
}

/// Splits off the first whitespace-separated token, honouring double quotes inside it.
fn token(s: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Ok((&s[..i], s[i..].trim_start())),
            _ => {}
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    Ok((s, ""))
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-")
}

fn parse_line(line: &str, n: usize) -> Result<Entry, String> {
    let (principals, rest) = token(line)?;
    let principals: Vec<String> = principals
        .trim_matches('"')
        .split(',')
        .map(str::to_string)
        .collect();
    for p in &principals {
        if p.is_empty() || p.contains(['*', '?', '!']) {
            return Err(format!(
                "principal {p:?}: occ needs plain names (no patterns), one approver each"
            ));
        }
    }
    let (mut next, mut rest) = token(rest)?;
    let mut entry = Entry {
        line: n,
        principals,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key: KeyData::Ed25519(ssh_key::public::Ed25519PublicKey([0; 32])),
    };
    if !is_key_type(next) {
        for opt in split_options(next)? {
            let (name, value) = match opt.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(unquote(v)?)),
                None => (opt.to_ascii_lowercase(), None),
            };
            match (name.as_str(), value) {
                ("namespaces", Some(v)) => {
                    entry.namespaces = Some(v.split(',').map(str::to_string).collect())
                }
                ("valid-after", Some(v)) => entry.valid_after = Some(utc_time(&v)?),
                ("valid-before", Some(v)) => entry.valid_before = Some(utc_time(&v)?),
                ("cert-authority", _) => {
                    return Err("cert-authority lines are not supported by occ; list each \
                                approver's own key"
                        .into())
                }
                (other, _) => {
                    return Err(format!(
                        "option {other:?} is not understood by occ (namespaces, valid-after, \
                         valid-before)"
                    ))
                }
            }
        }
        (next, rest) = token(rest)?;
    }
    if !is_key_type(next) {
        return Err(format!("{next:?} is not an SSH key type (ssh-ed25519, …)"));
    }
    let (b64, _comment) = token(rest)?;
    let key = PublicKey::from_openssh(&format!("{next} {b64}"))
        .map_err(|e| format!("the {next} key does not parse ({e})"))?;
    entry.key = key.key_data().clone();
    Ok(entry)
}

/// Options are comma-separated; commas inside quotes belong to the value.
fn split_options(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    Ok(out)
}

fn unquote(v: &str) -> Result<String, String> {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => Ok(inner.to_string()),
        None if !v.contains('"') => Ok(v.to_string()),
        None => Err(format!("option value {v:?} is badly quoted")),
    }
}

/// `YYYYMMDD[HHMM[SS]]Z` as seconds since the epoch. Local times (no `Z`) are refused: the
/// broker's time zone is not the signer's.
fn utc_time(v: &str) -> Result<u64, String> {
    let digits = v.strip_suffix(['Z', 'z']).ok_or_else(|| {
        format!("time {v:?}: end it in Z (occ reads UTC times only, e.g. 20270101Z)")
    })?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(format!("time {v:?} is not YYYYMMDD[HHMM[SS]]Z"));
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).map_or(0, |d| d.parse().unwrap_or(0));
    let text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        num(0..4),
        num(4..6),
        num(6..8),
        num(8..10),
        num(10..12),
        num(12..14)
    );
    humantime::parse_rfc3339(&text)
        .map_err(|e| format!("time {v:?} is not a real time ({e})"))?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| format!("time {v:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBIgzKfMAnN2ObeUbSp8z6FdWeLiaBSPCOJj5HlktW34";

    #[test]
    fn reads_principals_namespaces_and_validity() {
        let text = format!(
            "# approvers\n\nalice@example.com namespaces=\"git,occ-approval\",valid-before=\"20300101Z\" {KEY} alice's laptop\n\
             bob {KEY}\n"
        );
        let a = AllowedSigners::parse(&text).unwrap();
        assert_eq!(a.entries.len(), 2);
        let e = &a.entries[0];
        assert_eq!(e.line, 3);
        assert_eq!(approver_of(&e.principals[0]), "alice");
        assert!(e.signs_approvals_at(1_800_000_000));
        assert!(!e.signs_approvals_at(1_900_000_000), "valid-before 2030");
        assert!(
            !a.entries[1].signs_approvals_at(0),
            "a key without namespaces=\"occ-approval\" signs no approvals"
        );
        assert_eq!(a.signers_of(&e.key, 1_800_000_000).len(), 1);
    }

    #[test]
    fn refuses_what_it_cannot_fully_read() {
        for (line, why) in [
            (format!("* namespaces=\"occ-approval\" {KEY}"), "patterns"),
            (format!("ca cert-authority {KEY}"), "cert-authority"),
            (
                format!("al namespaces=\"occ-approval\",no-touch-required {KEY}"),
                "not understood",
            ),
            (format!("al valid-after=\"20260101\" {KEY}"), "UTC"),
            (
                "al namespaces=\"occ-approval\" ssh-ed25519 AAAAnotakey".to_string(),
                "does not parse",
            ),
            (
                "al namespaces=\"occ-approval\" hello".to_string(),
                "not an SSH key type",
            ),
            (format!("al namespaces=\"occ-approval {KEY}"), "quote"),
        ] {
            let err = AllowedSigners::parse(&format!("\n{line}\n")).unwrap_err();
            assert!(err.starts_with("line 2: "), "{err}");
            assert!(err.contains(why), "{line}: {err}");
        }
    }
}
