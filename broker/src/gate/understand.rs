//! Understanding a request: the raw frame becomes a policy evaluation and the
//! [`RequestInfo`] that approvers see and grants are keyed by. Requests the broker answers
//! itself (`-V`, `-h`, `-v`, `-k`, `-K`, `-l`) are answered here. Nothing here grants anything.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use occ_policy::{Action, Caller, Context, Evaluation, Flags};
use occ_proto::{Output, Request};

use super::events::{self, int, s, Event};
use super::refusal::Refusal;
use super::Gate;
use crate::daemon::conn::{Conn, PeerCred};
use crate::escape::escape_text;
use crate::layout::Mode;
use crate::session::{Digest, RequestInfo};

/// A request the gate has understood well enough to show an approver.
pub(super) struct Understood {
    pub eval: Evaluation,
    pub info: RequestInfo,
    pub raw_argv: Vec<String>,
    pub tty: bool,
    /// The caller's terminal (`/dev/pts/3`) and its size (columns, lines), as sudo logs them.
    pub ttyname: Option<String>,
    pub winsize: Option<(u16, u16)>,
    /// Where the caller was (sudo's `submitcwd`; `runcwd` differs with `-D` or `-i`).
    pub submitcwd: String,
    /// System mode: the approved file, opened and checked at resolution, and whether it is a
    /// `#!` script; or why it could not be opened.
    pub exe: Option<OwnedFd>,
    pub script: bool,
    pub exe_error: Option<(Refusal, String)>,
}

impl Understood {
    /// The fields every event about this request carries: the request as the broker resolved
    /// it, and the caller's terminal.
    pub fn fields(&self, peer: &PeerCred, id: Option<&str>) -> events::Fields {
        let mut f = events::request(peer, &self.info, id);
        events::terminal(&mut f, self.ttyname.as_deref(), self.winsize);
        f.insert("submitcwd".into(), events::s(self.submitcwd.clone()));
        f
    }
}

/// The broker's digest: the policy's grant digest, bound also to whether the request came
/// from an untrusted source, so a grant for a trusted request never covers an untrusted one;
/// to whether the requester can change what runs (`requester_writable_input`,
/// `stdin_from_requester`: these follow the file system and the caller's stdin, not the
/// argv, so a `--session` grant made while they were clear never covers a request that has
/// them); and (system mode) to the caller's variables the command will see.
pub fn broker_digest(
    policy_digest: &Digest,
    untrusted: bool,
    flags: &Flags,
    kept_env: &BTreeMap<String, String>,
) -> Digest {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(b"occ-broker-grant-v1");
    h.update(policy_digest);
    h.update([u8::from(untrusted)]);
    if flags.requester_writable_input || flags.stdin_from_requester {
        // Absent when both are clear, so those digests are unchanged.
        h.update(b"changeable");
        h.update([
            u8::from(flags.requester_writable_input),
            u8::from(flags.stdin_from_requester),
        ]);
    }
    if !kept_env.is_empty() {
        // Length-prefixed, so no two sets encode alike; absent in user mode, so user-mode
        // digests are unchanged.
        h.update(b"kept_env");
        for (k, v) in kept_env {
            for part in [k, v] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part.as_bytes());
            }
        }
    }
    h.finalize().into()
}

/// What approvers see of an evaluated request, and the digest its grant is keyed by. The one
/// place a [`RequestInfo`] is made from an evaluation: the gate and the containment tests
/// both go through it.
pub fn request_info(
    eval: &Evaluation,
    ctx: &Context,
    peer: &PeerCred,
    cwd: &str,
    reason: Option<String>,
    kept_env: BTreeMap<String, String>,
) -> RequestInfo {
    // The evaluation's verdict, which adds channel messages when prompt-policy.json says so;
    // the caller's own flag when the request never got that far.
    let untrusted = eval.request.as_ref().map_or(ctx.untrusted, |r| r.untrusted);
    let mut info = RequestInfo {
        submituser: ctx.caller.user.clone(),
        peer_uid: peer.uid,
        peer_pid: peer.pid,
        session_id: ctx.session_id.clone(),
        runuser: eval
            .target
            .as_ref()
            .map(|t| t.user.clone())
            .unwrap_or_else(|| "root".into()),
        runcwd: cwd.to_string(),
        reason,
        untrusted,
        source: ctx.source.clone(),
        ..RequestInfo::default()
    };
    if let Some(r) = &eval.request {
        // Everything the grant binds, so the approver sees all of it, with the risk flags and
        // what the command wraps.
        info.digest = broker_digest(&r.digest(), untrusted, &r.flags, &kept_env);
        info.command = r.argv.clone();
        info.runuser = r.target.user.clone();
        info.rungroup = r.target.group.clone();
        info.runcwd = r.cwd.to_string_lossy().into_owned();
        info.env = r.sudo.env.iter().cloned().collect();
        info.runs_arbitrary_code = r.runs_arbitrary_code;
        info.set_home = r.sudo.set_home;
        info.preserve_groups = r.sudo.preserve_groups;
        info.chdir = r.sudo.chdir.clone();
        info.preserved_env = r.preserved_env.iter().cloned().collect();
        info.flags = r.flags.names().into_iter().map(String::from).collect();
        info.requester_writable = r.requester_writable.clone();
        info.wraps = r.unwrapped.wraps();
    }
    info.kept_env = kept_env;
    info
}

impl Gate {
    pub(super) fn understand(
        &self,
        peer: &PeerCred,
        req: &Request,
    ) -> Result<Understood, (Refusal, String)> {
        let text = |b: &[u8], what: &str| {
            String::from_utf8(b.to_vec()).map_err(|_| {
                (
                    Refusal::MalformedRequest,
                    format!("the {what} is not valid UTF-8"),
                )
            })
        };
        let raw_argv = req
            .argv
            .iter()
            .map(|a| text(a, "command line"))
            .collect::<Result<Vec<_>, _>>()?;
        let cwd = text(&req.cwd, "working directory")?;
        let mut env = BTreeMap::new();
        for (k, v) in &req.env {
            env.insert(text(k, "environment")?, text(v, "environment")?);
        }
        let caller = Caller::from_uid(peer.uid);
        // The shim's isatty of its stdin: a writer fed from a pipe writes what the requester
        // sends (stdin_from_requester).
        let ctx =
            Context::new(caller, PathBuf::from(&cwd), env.clone()).with_stdin_tty(req.isatty[0]);
        let policy = self.policy(&|k| env.get(k).cloned());
        if let Ok(cfg) = &policy {
            self.follow_audit_config(cfg);
        }
        let eval = occ_policy::evaluate(&raw_argv, &ctx, &policy);
        let reason = env
            .get("OPENCLAW_PRIV_REASON")
            .filter(|r| !r.is_empty())
            .cloned();
        let system = self.layout.mode == Mode::System;
        let kept_env = match (&policy, system) {
            (Ok(cfg), true) => super::spawn::kept_env(&env, &cfg.broker.env_keep),
            _ => BTreeMap::new(),
        };
        let info = request_info(&eval, &ctx, peer, &cwd, reason, kept_env);
        let (mut exe, mut script, mut exe_error) = (None, false, None);
        if let (true, Some(r)) = (system, &eval.request) {
            match super::spawn::open_approved(r) {
                Ok((fd, is_script)) => {
                    exe = Some(fd);
                    script = is_script;
                }
                Err(e) => exe_error = Some(e),
            }
        }
        Ok(Understood {
            eval,
            info,
            raw_argv,
            tty: req.isatty.iter().any(|t| *t),
            ttyname: req
                .tty
                .as_ref()
                .map(|t| String::from_utf8_lossy(t).into_owned()),
            winsize: req.winsize,
            submitcwd: String::from_utf8_lossy(&req.cwd).into_owned(),
            exe,
            script,
            exe_error,
        })
    }

    /// Answers what sudo answers without running anything: version, help, validate, `-k`/`-K`
    /// and `-l`.
    pub(super) fn answer_by_broker(&self, conn: &mut Conn, peer: &PeerCred, u: &Understood) {
        let Some(sudo) = &u.eval.sudo else { return };
        let real_sudo = match self.layout.mode {
            Mode::System => "none: the occ system broker runs approved commands itself".into(),
            Mode::User => self
                .policy(&|_| None)
                .map(|c| c.broker.real_sudo)
                .unwrap_or_else(|_| PathBuf::from("/usr/bin/sudo"))
                .display()
                .to_string(),
        };
        let (stdout, code) = match sudo.action() {
            Action::Version => (
                format!(
                    "occ sudo shim {} (the privilege gate for AI agents)\nreal sudo: {}\n",
                    env!("CARGO_PKG_VERSION"),
                    real_sudo
                ),
                0,
            ),
            Action::Help => (
                format!(
                    "occ {}: sudo requests from this agent go through occ's approval broker.\n\
                     usage: sudo [-nHk] [-u user] [-g group] [-D directory] [VAR=value] [--] command [arg ...]\n\
                     A human approves each request with `occ approve ID`; `occ explain -- ARGS` shows why.\n\
                     real sudo: {}\n",
                    env!("CARGO_PKG_VERSION"),
                    real_sudo
                ),
                0,
            ),
            Action::Validate => (
                "occ approves each command separately; there is no cached credential to validate.\n"
                    .to_string(),
                0,
            ),
            Action::ResetTimestamp | Action::RemoveTimestamp => {
                let n = self.store().drop_caller(peer.uid);
                let mut f = events::peer(peer);
                f.insert("grants".into(), int(n));
                f.insert("scope".into(), s("caller"));
                if let Err(e) = self.audit(Event::GrantsDropped, f) {
                    let _ = conn.refuse(&e, Refusal::AuditFailed.code());
                    return;
                }
                (String::new(), 0)
            }
            Action::List => (self.list_text(peer), 0),
            _ => (String::new(), 1),
        };
        let _ = conn.output(Output {
            stdout: stdout.into_bytes(),
            stderr: Vec::new(),
            exit_code: code,
        });
    }

    fn list_text(&self, peer: &PeerCred) -> String {
        let user = Caller::from_uid(peer.uid).user;
        match self.policy(&|_| None) {
            Err(errs) => format!(
                "occ: the policy cannot be read, so nothing may be run: {}\n",
                errs.first().map(|e| e.to_string()).unwrap_or_default()
            ),
            Ok(cfg) => {
                let mut out = format!(
                    "User {user} may request the following through occ; every run needs a human's \
                     approval (`occ approve ID`) or a live grant:\n"
                );
                if cfg.commands.allow.is_empty() {
                    out.push_str("    any command not denied by command-policy.json\n");
                } else {
                    for r in cfg.commands.allow.rules() {
                        out.push_str(&format!("    {}\n", escape_text(&r.text)));
                    }
                }
                for r in cfg.commands.deny.rules() {
                    out.push_str(&format!("    !{}\n", escape_text(&r.text)));
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grant made while the requester could not change what runs never covers a request
    /// where it can; digests without those flags are what they were before them.
    #[test]
    fn digest_binds_the_flags_that_follow_files_and_stdin() {
        let d = [7u8; 32];
        let none = BTreeMap::new();
        let clear = broker_digest(&d, false, &Flags::default(), &none);
        let writer = Flags {
            writes_files: true,
            runs_arbitrary_code: true,
            ..Flags::default()
        };
        assert_eq!(
            broker_digest(&d, false, &writer, &none),
            clear,
            "argv-fixed flags leave the digest alone"
        );
        let piped = Flags {
            stdin_from_requester: true,
            ..writer
        };
        let writable = Flags {
            requester_writable_input: true,
            ..writer
        };
        let both = Flags {
            requester_writable_input: true,
            ..piped
        };
        let all = [
            clear,
            broker_digest(&d, false, &piped, &none),
            broker_digest(&d, false, &writable, &none),
            broker_digest(&d, false, &both, &none),
        ];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j], "{i} vs {j}");
            }
        }
    }

    use occ_policy::PolicyConfig;

    /// `sudo WORDS…` from the current user with `OPENCLAW_X=v` in its environment.
    fn info(words: &[&str]) -> RequestInfo {
        let uid = nix::unistd::geteuid().as_raw();
        let env = BTreeMap::from([("OPENCLAW_X".to_string(), "v".to_string())]);
        let ctx = Context::new(Caller::from_uid(uid), PathBuf::from("/"), env);
        let mut cfg = PolicyConfig::default();
        cfg.broker.allow_preserve_env = vec!["OPENCLAW_X".into()];
        let eval = occ_policy::evaluate(words, &ctx, &Ok(cfg));
        assert!(eval.request.is_some(), "{words:?}: {:?}", eval.outcome);
        let peer = PeerCred {
            pid: 1,
            uid,
            gid: 0,
        };
        request_info(&eval, &ctx, &peer, "/", None, BTreeMap::new())
    }

    #[test]
    fn the_approvers_view_carries_every_part_of_the_grant() {
        let full = [
            "-g",
            "root",
            "-H",
            "-P",
            "-D",
            "/tmp",
            "--preserve-env=OPENCLAW_X",
            "A=1",
            "/usr/bin/id",
        ];
        let i = info(&full);
        assert_eq!(i.rungroup.as_deref(), Some("root"));
        assert!(i.set_home && i.preserve_groups);
        assert_eq!(i.chdir.as_deref(), Some("/tmp"));
        assert_eq!(i.runcwd, "/tmp");
        assert_eq!(i.env, BTreeMap::from([("A".into(), "1".into())]));
        assert_eq!(
            i.preserved_env,
            BTreeMap::from([("OPENCLAW_X".into(), "v".into())])
        );
        // Each shown part is also bound: dropping one gives another grant digest.
        for drop in ["-H", "-P", "A=1", "--preserve-env=OPENCLAW_X"] {
            let fewer: Vec<&str> = full.iter().copied().filter(|w| *w != drop).collect();
            let other = info(&fewer);
            assert_ne!(other.digest, i.digest, "without {drop}");
        }
        let plain = info(&["/usr/bin/id"]);
        assert!(!plain.set_home && !plain.preserve_groups && plain.chdir.is_none());
        assert!(plain.preserved_env.is_empty() && plain.rungroup.is_none());
    }
}
