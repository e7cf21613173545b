//! Grants: what a human approved, bound by digest to exactly what runs. The digest covers the
//! caller, the target, the resolved file (path, device, inode), argv, cwd, env and the session;
//! any change to any of them is a different request that needs its own approval.

use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// Everything a grant is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The requesting uid.
    pub caller_uid: u32,
    /// Target uid.
    pub target_uid: u32,
    /// Target gid.
    pub target_gid: u32,
    /// Resolved absolute path.
    pub path: String,
    /// Device of the resolved file.
    pub dev: u64,
    /// Inode of the resolved file.
    pub ino: u64,
    /// The full argv (argv\[0\] is the resolved path).
    pub argv: Vec<String>,
    /// The directory the command runs in.
    pub cwd: String,
    /// `NAME=value` assignments, in order.
    pub env: Vec<(String, String)>,
    /// Preserved variables with their values, in order.
    pub preserved_env: Vec<(String, String)>,
    /// The task session id.
    pub session_id: Option<String>,
    /// Options that change how the command runs but are not in the fields above
    /// (`-H`, `-P`, shell mode), as their letters.
    pub flags: String,
}

/// A SHA-256 grant digest.
pub type GrantDigest = [u8; 32];

/// Hex form of a digest.
pub fn hex(d: &GrantDigest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn field(h: &mut Sha256, tag: u8, bytes: &[u8]) {
    h.update([tag]);
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

impl Binding {
    /// SHA-256 over an unambiguous encoding: a domain tag, then every field as
    /// (tag byte, 8-byte big-endian length, bytes); lists carry their count first. No two
    /// different bindings encode to the same bytes.
    pub fn digest(&self) -> GrantDigest {
        let mut h = Sha256::new();
        h.update(b"occ-grant-v1\0");
        field(&mut h, 1, &self.caller_uid.to_be_bytes());
        field(&mut h, 2, &self.target_uid.to_be_bytes());
        field(&mut h, 3, &self.target_gid.to_be_bytes());
        field(&mut h, 4, self.path.as_bytes());
        field(&mut h, 5, &self.dev.to_be_bytes());
        field(&mut h, 6, &self.ino.to_be_bytes());
        field(&mut h, 7, &(self.argv.len() as u64).to_be_bytes());
        for a in &self.argv {
            field(&mut h, 8, a.as_bytes());
        }
        field(&mut h, 9, self.cwd.as_bytes());
        for (tag, list) in [(10u8, &self.env), (12u8, &self.preserved_env)] {
            field(&mut h, tag, &(list.len() as u64).to_be_bytes());
            for (k, v) in list {
                field(&mut h, tag + 1, k.as_bytes());
                field(&mut h, tag + 1, v.as_bytes());
            }
        }
        match &self.session_id {
            None => field(&mut h, 14, &[]),
            Some(s) => field(&mut h, 15, s.as_bytes()),
        }
        field(&mut h, 16, self.flags.as_bytes());
        h.finalize().into()
    }
}

/// How long a grant lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Consumed by one run (the default).
    Once,
    /// Until the session has been idle for `idle_timeout_minutes`.
    Session,
}

/// Why a session grant cannot be made.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantError {
    /// The command can run arbitrary code.
    #[error(
        "a --session grant cannot cover a command that runs arbitrary code; approve it with --once"
    )]
    RunsArbitraryCode,
    /// The request came from an untrusted source.
    #[error("a --session grant cannot cover an untrusted-source request; approve it with --once")]
    Untrusted,
    /// No session id to bind to.
    #[error("the request has no session id, so a --session grant has nothing to last for; approve it with --once")]
    NoSession,
}

/// A grant the broker holds in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The bound request's digest.
    pub digest: GrantDigest,
    /// Once or session.
    pub scope: Scope,
    /// The session a session grant belongs to.
    pub session_id: Option<String>,
    /// When it was made.
    pub created: SystemTime,
    /// Last use (session grants slide).
    pub last_used: SystemTime,
    /// Whether a once grant was already used.
    pub consumed: bool,
}

impl Grant {
    /// Makes a grant for an approved request. `--session` is refused for code-running or
    /// untrusted requests and for requests without a session id.
    pub fn new(
        binding: &Binding,
        scope: Scope,
        runs_arbitrary_code: bool,
        untrusted: bool,
        now: SystemTime,
    ) -> Result<Grant, GrantError> {
        if scope == Scope::Session {
            if runs_arbitrary_code {
                return Err(GrantError::RunsArbitraryCode);
            }
            if untrusted {
                return Err(GrantError::Untrusted);
            }
            if binding.session_id.is_none() {
                return Err(GrantError::NoSession);
            }
        }
        Ok(Grant {
            digest: binding.digest(),
            scope,
            session_id: binding.session_id.clone(),
            created: now,
            last_used: now,
            consumed: false,
        })
    }

    /// Whether the grant can still be used at `now`.
    pub fn is_live(&self, now: SystemTime, idle_timeout: Duration) -> bool {
        match self.scope {
            Scope::Once => !self.consumed,
            Scope::Session => now
                .duration_since(self.last_used)
                .map(|idle| idle < idle_timeout)
                // A clock that went backwards does not keep a grant alive forever.
                .unwrap_or(false),
        }
    }

    /// Whether this grant covers a request with `digest` at `now`. A grant never covers a
    /// code-running or untrusted request for more than one run.
    pub fn covers(
        &self,
        digest: &GrantDigest,
        runs_arbitrary_code: bool,
        untrusted: bool,
        now: SystemTime,
        idle_timeout: Duration,
    ) -> bool {
        if &self.digest != digest || !self.is_live(now, idle_timeout) {
            return false;
        }
        match self.scope {
            Scope::Once => true,
            Scope::Session => !runs_arbitrary_code && !untrusted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b() -> Binding {
        Binding {
            caller_uid: 1001,
            target_uid: 0,
            target_gid: 0,
            path: "/usr/bin/systemctl".into(),
            dev: 2049,
            ino: 77,
            argv: vec![
                "/usr/bin/systemctl".into(),
                "restart".into(),
                "nginx".into(),
            ],
            cwd: "/".into(),
            env: vec![],
            preserved_env: vec![],
            session_id: Some("s1".into()),
            flags: String::new(),
        }
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = b().digest();
        type Mutation = Box<dyn Fn(&mut Binding)>;
        let mutations: Vec<Mutation> = vec![
            Box::new(|x| x.caller_uid = 1002),
            Box::new(|x| x.target_uid = 1),
            Box::new(|x| x.target_gid = 1),
            Box::new(|x| x.path = "/usr/bin/systemct1".into()),
            Box::new(|x| x.dev = 1),
            Box::new(|x| x.ino = 78),
            Box::new(|x| x.argv[2] = "sshd".into()),
            Box::new(|x| x.argv = vec!["/usr/bin/systemctl".into(), "restart nginx".into()]),
            Box::new(|x| x.cwd = "/tmp".into()),
            Box::new(|x| x.env = vec![("A".into(), "1".into())]),
            Box::new(|x| x.preserved_env = vec![("A".into(), "1".into())]),
            Box::new(|x| x.session_id = None),
            Box::new(|x| x.session_id = Some("s2".into())),
            Box::new(|x| x.flags = "H".into()),
        ];
        for (i, m) in mutations.iter().enumerate() {
            let mut x = b();
            m(&mut x);
            assert_ne!(x.digest(), base, "mutation {i}");
        }
        // Moving a byte between adjacent fields changes the digest too.
        let mut x = b();
        x.env = vec![("AB".into(), "".into())];
        let mut y = b();
        y.env = vec![("A".into(), "B".into())];
        assert_ne!(x.digest(), y.digest());
    }

    #[test]
    fn session_grants_are_refused_for_code_runners_untrusted_and_sessionless() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            Grant::new(&b(), Scope::Session, true, false, now),
            Err(GrantError::RunsArbitraryCode)
        );
        assert_eq!(
            Grant::new(&b(), Scope::Session, false, true, now),
            Err(GrantError::Untrusted)
        );
        let mut nb = b();
        nb.session_id = None;
        assert_eq!(
            Grant::new(&nb, Scope::Session, false, false, now),
            Err(GrantError::NoSession)
        );
        let g = Grant::new(&b(), Scope::Session, false, false, now).expect("session");
        let idle = Duration::from_secs(60);
        assert!(g.covers(
            &b().digest(),
            false,
            false,
            now + Duration::from_secs(59),
            idle
        ));
        assert!(!g.covers(
            &b().digest(),
            false,
            false,
            now + Duration::from_secs(60),
            idle
        ));
        assert!(!g.covers(&b().digest(), true, false, now, idle));
        assert!(!g.covers(
            &b().digest(),
            false,
            false,
            now - Duration::from_secs(1),
            idle
        ));
    }
}
