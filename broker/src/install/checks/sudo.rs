//! The real sudo in user mode: the binary broker.json names, and whether the agent's rules
//! let it run approved commands without a password.

use super::*;

/// The real sudo broker.json names is root-owned, not group/other-writable, and setuid.
pub fn real_sudo(real: &Path) -> Check {
    if !real.is_absolute() {
        return Check::fail(
            "real_sudo",
            format!("real_sudo {} is not an absolute path", real.display()),
            "set \"real_sudo\": \"/usr/bin/sudo\" in broker.json",
        );
    }
    let resolved = match std::fs::canonicalize(real) {
        Ok(r) => r,
        Err(e) => {
            return Check::fail(
                "real_sudo",
                format!("{}: {e}", real.display()),
                "install sudo (apt-get install sudo), or set real_sudo in broker.json",
            )
        }
    };
    let m = match std::fs::metadata(&resolved) {
        Ok(m) => m,
        Err(e) => {
            return Check::fail(
                "real_sudo",
                format!("{}: {e}", resolved.display()),
                "install sudo",
            )
        }
    };
    if !m.is_file() || m.uid() != 0 {
        return Check::fail(
            "real_sudo",
            format!(
                "{} is not a root-owned regular file (uid {})",
                resolved.display(),
                m.uid()
            ),
            "reinstall sudo from the distribution",
        );
    }
    if m.mode() & 0o022 != 0 {
        return Check::fail(
            "real_sudo",
            format!(
                "{} is writable by group or others (mode {:o})",
                resolved.display(),
                m.mode() & 0o7777
            ),
            format!("chmod go-w {}", resolved.display()),
        );
    }
    if m.mode() & 0o4000 == 0 {
        return Check::warn(
            "real_sudo",
            format!(
                "{} has no setuid bit, so approved commands cannot gain root",
                resolved.display()
            ),
            "reinstall sudo from the distribution",
        );
    }
    Check::ok(
        "real_sudo",
        format!(
            "{} is root-owned, setuid and not writable by others",
            resolved.display()
        ),
    )
}

/// The sudoers drop-in an admin adds so `user`'s real sudo runs one approved command without
/// a password, as a template (the command is an example), with what it costs.
pub fn sudoers_template(user: &str) -> Vec<String> {
    vec![
        format!("echo '{user} ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx' > /etc/sudoers.d/occ-approved"),
        format!("chmod 0440 /etc/sudoers.d/occ-approved && visudo -cf /etc/sudoers.d/occ-approved"),
    ]
}

/// `REAL_SUDO -n -l` works for this (the agent's) user: in user mode an approved command runs
/// through the real sudo with `-n`, so without NOPASSWD rules nothing approved can run.
pub fn sudo_list(real: &Path) -> Check {
    let ran = match tool::run(real, &["-n", "-l"], Duration::from_secs(10)) {
        Ok(r) => r,
        Err(e) => return Check::fail("sudo_n_l", e, "install sudo"),
    };
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::geteuid().to_string());
    if ran.ok() {
        return Check::ok(
            "sudo_n_l",
            format!(
                "`{} -n -l` works for {user}: approved commands its sudoers rules allow without \
                 a password can run (others are refused with real_sudo_needs_password, and the \
                 approval is kept)",
                real.display()
            ),
        );
    }
    let text = format!("{}{}", ran.stderr, ran.stdout).to_lowercase();
    let template = sudoers_template(&user).join("; ");
    if text.contains("password is required") {
        Check::warn(
            "sudo_n_l",
            format!(
                "{user}'s real sudo asks for a password, so no approved command can run: occ \
                 runs it with `sudo -n` after a human approves"
            ),
            format!(
                "as root, allow each command you will approve without a password (occ still \
                 asks a human first), e.g. {template}; each such rule also lets the agent run \
                 that command with {} directly, bypassing occ (system mode needs no such rule: \
                 install.sh --system)",
                real.display()
            ),
        )
    } else {
        Check::fail(
            "sudo_n_l",
            format!(
                "`{} -n -l` fails for {user} ({})",
                real.display(),
                ran.why()
            ),
            format!(
                "as root, give {user} NOPASSWD rules for the commands you will approve, e.g. \
                 {template}; or use system mode (install.sh --system)"
            ),
        )
    }
}
