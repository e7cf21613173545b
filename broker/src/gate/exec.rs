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

impl Gate {
    /// Grants the approved request to the shim and records its outcome (user mode); the
    /// system broker runs it itself ([`super::spawn`]).
    pub(super) fn exec(
        &self,
        conn: &mut Conn,
        mut fields: Fields,
        u: &Understood,
        cfg: &PolicyConfig,
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
