//! The opt-in `tty` channel: a y/N prompt (and the token, without echo) on the requester's own
//! terminal, for a human sitting at it. Off by default, because the agent can type into its
//! pty; it never offers untrusted requests. It only reads answers; the approval goes through
//! the same path as `occ approve`.

use std::time::Duration;

use crate::daemon::conn::Conn;

/// The opt-in `tty` channel: a prompt on the caller's own terminal, for a human sitting at it.
/// It runs inside the connection's wait loop, beside the queue; whichever decides first wins.
pub(super) struct TtyPrompt {
    input: std::os::fd::OwnedFd,
    out: std::fs::File,
    line: Vec<u8>,
    /// The answer "y" was given and the token is being read (echo off).
    reading_token: Option<nix::sys::termios::Termios>,
}

/// What the person at the terminal said.
pub(super) enum TtyAnswer {
    Yes { token: Option<String> },
    No,
}

impl TtyPrompt {
    /// Asks the shim for its terminal (only now, and only the descriptors that are terminals)
    /// and shows `prompt` on it. `None` when stdin is not a terminal or the shim sent nothing.
    pub(super) fn open(conn: &mut Conn, prompt: &str) -> Option<TtyPrompt> {
        use std::io::Write as _;
        if let Err(e) = conn.ask_tty() {
            tracing::warn!("terminal prompt not offered: {e}");
            return None;
        }
        let input = conn.caller_stdio(0)?.try_clone_to_owned().ok()?;
        // The prompt goes to the first terminal among stderr, stdout and stdin itself.
        let output = [2, 1, 0]
            .into_iter()
            .find_map(|n| conn.caller_stdio(n))?
            .try_clone_to_owned()
            .ok()?;
        if nix::sys::termios::tcgetattr(&input).is_err() {
            return None; // not a terminal
        }
        let mut out = std::fs::File::from(output);
        let _ = write!(out, "{prompt}");
        let _ = out.flush();
        Some(TtyPrompt {
            input,
            out,
            line: Vec::new(),
            reading_token: None,
        })
    }

    /// Waits up to `slice` for input; returns an answer once a whole line (or two, with a
    /// token) has been typed.
    pub(super) fn step(&mut self, slice: Duration, token_set: bool) -> Option<TtyAnswer> {
        use nix::sys::termios::{self, LocalFlags, SetArg};
        use std::io::{Read as _, Write as _};
        use std::os::fd::AsFd;
        match crate::sys::poll2(self.input.as_fd(), None, Some(slice)) {
            Ok([r, _]) if r.readable => {}
            _ => return None,
        }
        let mut buf = [0u8; 256];
        let n = std::fs::File::from(self.input.try_clone().ok()?)
            .read(&mut buf)
            .ok()?;
        if n == 0 {
            return Some(TtyAnswer::No);
        }
        self.line.extend_from_slice(&buf[..n]);
        if !self.line.contains(&b'\n') && self.line.len() < 4096 {
            return None;
        }
        let text = String::from_utf8_lossy(&self.line).trim().to_string();
        self.line.clear();
        if let Some(saved) = self.reading_token.take() {
            let _ = termios::tcsetattr(self.input.as_fd(), SetArg::TCSANOW, &saved);
            let _ = writeln!(self.out);
            return Some(TtyAnswer::Yes { token: Some(text) });
        }
        if !matches!(text.as_str(), "y" | "Y" | "yes" | "Yes" | "YES") {
            return Some(TtyAnswer::No);
        }
        if !token_set {
            return Some(TtyAnswer::Yes { token: None });
        }
        let saved = termios::tcgetattr(self.input.as_fd()).ok()?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = termios::tcsetattr(self.input.as_fd(), SetArg::TCSANOW, &quiet);
        self.reading_token = Some(saved);
        let _ = write!(self.out, "occ approval token: ");
        let _ = self.out.flush();
        None
    }
}

impl TtyPrompt {
    /// Tells the person at the terminal something, on its own line.
    pub(super) fn say(&mut self, line: &str) {
        use std::io::Write as _;
        let _ = writeln!(self.out, "{line}");
    }
}

impl Drop for TtyPrompt {
    fn drop(&mut self) {
        if let Some(saved) = self.reading_token.take() {
            let _ = nix::sys::termios::tcsetattr(
                &self.input,
                nix::sys::termios::SetArg::TCSANOW,
                &saved,
            );
        }
    }
}
