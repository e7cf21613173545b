//! Exec: what happens once the stack allows a request. In user mode the gate composes the exact
//! real-sudo argv and grants it to the shim, after `exec_start` is durable, then records how the
//! run ended. It must never let anything run unrecorded. (System mode's executor, which runs the
//! command itself, belongs beside this one.)

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use occ_audit::Value;
use occ_policy::file::PolicyConfig;

use super::events::{int, s, strs, Event, Fields};
use super::refusal::Refusal;
use super::understand::Understood;
use super::Gate;
use crate::daemon::conn::{Conn, ExecOutcome};
use crate::session::{Grant, Scope};

impl Gate {
    /// Grants the approved request to the shim and records its outcome (user mode); the
    /// system broker runs it itself ([`super::spawn`]).
    pub(super) fn exec(
        &self,
        conn: &mut Conn,
        mut fields: Fields,
        u: &Understood,
        cfg: &PolicyConfig,
        taken: Option<Grant>,
    ) {
        let Some(r) = &u.eval.request else {
            let msg = "nothing to run";
            self.refuse(
                conn,
                fields,
                Event::PolicyBlock,
                Refusal::InternalError,
                msg,
            );
            return;
        };
        if self.layout.mode == crate::layout::Mode::System {
            self.run_approved(conn, fields, u, r, cfg);
            return;
        }
        if let Err(e) = check_real_sudo(&cfg.broker.real_sudo) {
            self.refuse(
                conn,
                fields,
                Event::PolicyBlock,
                Refusal::RealSudoUnsafe,
                &e,
            );
            return;
        }
        let non_interactive = !u.tty || r.sudo.non_interactive;
        // A `--session` grant outlives a failed run, so only a once-grant (or an approval
        // given just now) can be lost to a prompt: only then is the real sudo asked first,
        // which keeps a session's repeated runs free of the extra `sudo -l`.
        let spendable = !taken.as_ref().is_some_and(|g| g.scope == Scope::Session);
        if spendable && non_interactive && !r.sudo.stdin_password && !r.sudo.askpass {
            if let Err((detail, msg)) = will_run_without_password(&cfg.broker.real_sudo, r) {
                // Keep the approval: spending it on a prompt nobody can answer loses it.
                let kept = taken.as_ref().map(|g| g.scope == Scope::Once) == Some(true);
                if let Some(g) = taken {
                    self.store().put_back(g);
                    self.persist();
                }
                fields.insert("detail".into(), s(detail));
                fields.insert("grant_kept".into(), Value::Bool(kept));
                self.refuse(
                    conn,
                    fields,
                    Event::PolicyBlock,
                    Refusal::RealSudoNeedsPassword,
                    &msg,
                );
                return;
            }
        }
        let names: Vec<String> = r.preserved_env.iter().map(|(k, _)| k.clone()).collect();
        let mut argv = vec![cfg.broker.real_sudo.to_string_lossy().into_owned()];
        argv.extend(occ_policy::options::pass_on(&r.sudo, &names));
        if !u.tty && !r.sudo.non_interactive {
            argv.push("-n".into());
        }
        argv.push("--".into());
        argv.extend(r.argv.iter().cloned());
        fields.insert("sudo_argv".into(), strs(&argv));
        fields.insert("submit_argv".into(), strs(&u.raw_argv));
        // exec_start must be durable before the grant leaves the broker.
        if let Err(e) = self.audit_durable(Event::ExecStart, fields.clone()) {
            let msg = format!("refusing to run unrecorded: {e}");
            let _ = conn.refuse(&msg, Refusal::AuditFailed.code());
            return;
        }
        if conn
            .grant(argv.into_iter().map(String::into_bytes).collect())
            .is_err()
        {
            fields.insert(
                "detail".into(),
                s("the caller hung up before the grant arrived"),
            );
            let _ = self.audit(Event::ExecOutcomeUnknown, fields);
            return;
        }
        match conn.recv_exit_report() {
            ExecOutcome::Finished { report, relayed } => {
                fields.insert("exit_value".into(), int(report.exit_value));
                fields.insert("signal".into(), int(report.signal));
                fields.insert("run_time".into(), int(report.run_time_ms));
                fields.insert(
                    "signals_relayed".into(),
                    Value::Array(relayed.into_iter().map(int).collect()),
                );
                let _ = self.audit(Event::ExecFinish, fields);
            }
            ExecOutcome::Unknown { detail, relayed } => {
                fields.insert("detail".into(), s(detail));
                fields.insert(
                    "signals_relayed".into(),
                    Value::Array(relayed.into_iter().map(int).collect()),
                );
                let _ = self.audit(Event::ExecOutcomeUnknown, fields);
            }
        }
    }
}

/// Whether the real sudo will run `r` for us without a password: `sudo -n -l [-u U] [-g G]
/// -- ARGV` exits 0. `Err((detail, message))` names what sudo said and the sudoers line an
/// admin would add. It cannot tell a rule that still wants a password for this command when
/// another rule of the same user is NOPASSWD (sudo's `listpw=any`); that run still fails
/// with sudo's own "a password is required".
fn will_run_without_password(
    real: &Path,
    r: &occ_policy::decide::Request,
) -> Result<(), (String, String)> {
    let mut args: Vec<String> = vec!["-n".into(), "-l".into()];
    if let Some(u) = &r.sudo.user {
        args.push(format!("--user={u}"));
    }
    if let Some(g) = &r.sudo.group {
        args.push(format!("--group={g}"));
    }
    args.push("--".into());
    args.extend(r.argv.iter().cloned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = crate::install::tool::run(real, &argv, std::time::Duration::from_secs(10))
        .map_err(|e| (e.clone(), e))?;
    if ran.ok() {
        return Ok(());
    }
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::geteuid().to_string());
    let target = r.sudo.user.as_deref().unwrap_or("root");
    let cmd = r.argv.join(" ");
    let detail = format!("`{} {}`: {}", real.display(), args.join(" "), ran.why());
    let msg = format!(
        "approved, but the real sudo would ask {me} for a password to run {} as {target}, \
         so nothing ran and the approval is kept; an admin can allow it without a password \
         (a bypass of occ for that command; system mode needs none): \
         echo '{me} ALL=({target}) NOPASSWD: {cmd}' > /etc/sudoers.d/occ-approved, then retry",
        crate::escape::escape_text(&cmd),
        cmd = crate::escape::escape_text(&cmd),
    );
    Err((detail, msg))
}

/// The real sudo must be a root-owned regular file that only root can change.
pub fn check_real_sudo(path: &Path) -> Result<(), String> {
    let md = std::fs::metadata(path).map_err(|e| {
        format!(
            "broker.json real_sudo {}: {e}; install sudo or fix real_sudo",
            path.display()
        )
    })?;
    if !md.is_file() || md.uid() != 0 || md.mode() & 0o022 != 0 {
        return Err(format!(
            "broker.json real_sudo {} must be a root-owned file not writable by group or others; \
             fix: chown root {0} && chmod go-w {0}",
            path.display()
        ));
    }
    Ok(())
}
