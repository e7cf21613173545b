//! The grant binding: what a human approves, bound by digest to exactly what runs. The digest
//! covers the caller, the target, the resolved file (path, device, inode), argv, cwd, env and
//! the session; any change to any of them is a different request that needs its own approval.
//! Grants themselves (scope, expiry, use) live in one place only: the broker's `session` store,
//! keyed by this digest.

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
    occ_base::hex::encode(d)
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
}
