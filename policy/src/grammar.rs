//! sudo 1.9's command-line grammar: turns the words after `sudo` into a typed [`SudoRequest`].
//! It follows getopt_long's rules as sudo uses them (no permutation, unique long prefixes,
//! `NAME=value` between options) and reproduces sudo's own error text. It never looks at users,
//! files or policy: that is `resolve`'s and `options`' job.

use std::fmt;

/// What sudo would do with the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Run a command (`sudo CMD…`, also `-l CMD` is [`Action::List`] with a command).
    Run,
    /// `-s`: run the caller's shell, with the command if one is given.
    Shell,
    /// `-i`: run the target user's login shell, with the command if one is given.
    LoginShell,
    /// `-l` / `-ll`, optionally with a command to check.
    List,
    /// `-v`.
    Validate,
    /// `-k` on its own.
    ResetTimestamp,
    /// `-K`.
    RemoveTimestamp,
    /// `-h` / `--help`.
    Help,
    /// `-V`.
    Version,
    /// `-e` (sudoedit).
    Edit,
}

impl Action {
    /// The snake_case name used by `occ explain --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Run => "run",
            Action::Shell => "shell",
            Action::LoginShell => "login_shell",
            Action::List => "list",
            Action::Validate => "validate",
            Action::ResetTimestamp => "reset_timestamp",
            Action::RemoveTimestamp => "remove_timestamp",
            Action::Help => "help",
            Action::Version => "version",
            Action::Edit => "edit",
        }
    }
}

/// `-E` / `--preserve-env[=list]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum PreserveEnv {
    /// Neither option was given.
    #[default]
    No,
    /// `-E` or `--preserve-env`: the whole caller environment.
    All,
    /// `--preserve-env=A,B`: only these names (in order, repeated options concatenate).
    List(Vec<String>),
}

/// A parsed sudo command line. Every sudo 1.9 option has a field, so nothing is lost between
/// parsing and the per-option decision in `options`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SudoRequest {
    /// The action the options select.
    pub action: Option<Action>,
    /// `-u user` (a name or `#uid`), as typed.
    pub user: Option<String>,
    /// `-g group` (a name or `#gid`), as typed.
    pub group: Option<String>,
    /// `-D dir`, as typed.
    pub chdir: Option<String>,
    /// `NAME=value` words before the command, in order.
    pub env: Vec<(String, String)>,
    /// `-E` / `--preserve-env`.
    pub preserve_env: PreserveEnv,
    /// `-H`.
    pub set_home: bool,
    /// `-n`.
    pub non_interactive: bool,
    /// `-k` together with a command (or `-s`/`-i`): run after forgetting cached credentials.
    pub reset_timestamp: bool,
    /// `-S`.
    pub stdin_password: bool,
    /// `-A`.
    pub askpass: bool,
    /// `-p prompt`.
    pub prompt: Option<String>,
    /// `-B`.
    pub bell: bool,
    /// `-N`.
    pub no_update: bool,
    /// `-P`.
    pub preserve_groups: bool,
    /// `-b`.
    pub background: bool,
    /// `-C num`.
    pub close_from: Option<String>,
    /// `-R dir`.
    pub chroot: Option<String>,
    /// `-r role`.
    pub role: Option<String>,
    /// `-t type`.
    pub selinux_type: Option<String>,
    /// `-T timeout`.
    pub command_timeout: Option<String>,
    /// `-h host` / `--host=host`.
    pub host: Option<String>,
    /// `-U user`.
    pub other_user: Option<String>,
    /// `-ll`.
    pub long_list: bool,
    /// The command and its arguments exactly as typed (for `-e`, the files).
    pub command: Vec<String>,
}

impl SudoRequest {
    /// The action; a parsed request always has one.
    pub fn action(&self) -> Action {
        self.action.unwrap_or(Action::Run)
    }
}

/// sudo's usage text, as sudo 1.9.13 prints it on an 80-column terminal or a pipe.
pub const USAGE: &str = "\
usage: sudo -h | -K | -k | -V
usage: sudo -v [-ABkNnS] [-g group] [-h host] [-p prompt] [-u user]
usage: sudo -l [-ABkNnS] [-g group] [-h host] [-p prompt] [-U user] [-u user]
            [command [arg ...]]
usage: sudo [-ABbEHkNnPS] [-r role] [-t type] [-C num] [-D directory] [-g
            group] [-h host] [-p prompt] [-R directory] [-T timeout] [-u user]
            [VAR=value] [-i | -s] [command [arg ...]]
usage: sudo -e [-ABkNnS] [-r role] [-t type] [-C num] [-D directory] [-g group]
            [-h host] [-p prompt] [-R directory] [-T timeout] [-u user] file ...
";

/// A command line sudo itself rejects. sudo prints [`UsageError::stderr_text`] and exits 1.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct UsageError {
    /// sudo's warning line without the trailing newline (`sudo: invalid option -- 'Z'`), or
    /// `None` when sudo prints only the usage text.
    pub message: Option<String>,
}

impl UsageError {
    fn bare() -> Self {
        UsageError { message: None }
    }
    fn msg(m: impl Into<String>) -> Self {
        UsageError {
            message: Some(format!("sudo: {}", m.into())),
        }
    }
    /// The first line sudo writes to stderr.
    pub fn first_line(&self) -> &str {
        match &self.message {
            Some(m) => m,
            None => USAGE.lines().next().unwrap_or("usage: sudo"),
        }
    }
    /// Everything sudo writes to stderr for this error.
    pub fn stderr_text(&self) -> String {
        match &self.message {
            Some(m) => format!("{m}\n{USAGE}"),
            None => USAGE.to_string(),
        }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.first_line())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HasArg {
    No,
    Required,
    Optional,
}

/// Short options sudo's getopt string knows. `a` and `c` are in sudo's option string but
/// compiled out on Linux, so they parse and then fail with the bare usage text.
fn short_kind(c: char) -> Option<HasArg> {
    Some(match c {
        'A' | 'B' | 'b' | 'E' | 'e' | 'H' | 'i' | 'K' | 'k' | 'l' | 'N' | 'n' | 'P' | 'S' | 's'
        | 'V' | 'v' => HasArg::No,
        'a' | 'C' | 'c' | 'D' | 'g' | 'p' | 'R' | 'r' | 'T' | 't' | 'U' | 'u' => HasArg::Required,
        'h' => HasArg::Optional,
        _ => return None,
    })
}

/// Long options in sudo's table order (the order matters for the ambiguity message).
/// `'\u{100}'` stands for sudo's `--host`, which has no short form.
const LONG: &[(&str, HasArg, char)] = &[
    ("background", HasArg::No, 'b'),
    ("preserve-env", HasArg::Optional, 'E'),
    ("edit", HasArg::No, 'e'),
    ("set-home", HasArg::No, 'H'),
    ("login", HasArg::No, 'i'),
    ("remove-timestamp", HasArg::No, 'K'),
    ("list", HasArg::No, 'l'),
    ("preserve-groups", HasArg::No, 'P'),
    ("shell", HasArg::No, 's'),
    ("other-user", HasArg::Required, 'U'),
    ("validate", HasArg::No, 'v'),
    ("askpass", HasArg::No, 'A'),
    ("auth-type", HasArg::Required, 'a'),
    ("bell", HasArg::No, 'B'),
    ("close-from", HasArg::Required, 'C'),
    ("login-class", HasArg::Required, 'c'),
    ("chdir", HasArg::Required, 'D'),
    ("group", HasArg::Required, 'g'),
    ("help", HasArg::No, 'h'),
    ("host", HasArg::Required, HOST),
    ("reset-timestamp", HasArg::No, 'k'),
    ("no-update", HasArg::No, 'N'),
    ("non-interactive", HasArg::No, 'n'),
    ("prompt", HasArg::Required, 'p'),
    ("chroot", HasArg::Required, 'R'),
    ("role", HasArg::Required, 'r'),
    ("stdin", HasArg::No, 'S'),
    ("command-timeout", HasArg::Required, 'T'),
    ("type", HasArg::Required, 't'),
    ("user", HasArg::Required, 'u'),
    ("version", HasArg::No, 'V'),
];
const HOST: char = '\u{100}';

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Run,
    Edit,
    Validate,
    Invalidate,
    Kill,
    Version,
    Help,
    List,
}

// Mode flags, as sudo keeps them; checked against the mode's valid set at the end.
const F_BACKGROUND: u32 = 1;
const F_SHELL: u32 = 2;
const F_LOGIN_SHELL: u32 = 4;
const F_RESET_HOME: u32 = 8;
const F_PRESERVE_GROUPS: u32 = 16;
const F_PRESERVE_ENV: u32 = 32;
const F_NONINTERACTIVE: u32 = 64;
const F_LONG_LIST: u32 = 128;
const DEFAULT_VALID: u32 = F_BACKGROUND
    | F_PRESERVE_ENV
    | F_RESET_HOME
    | F_LOGIN_SHELL
    | F_NONINTERACTIVE
    | F_PRESERVE_GROUPS
    | F_SHELL;

struct State {
    req: SudoRequest,
    mode: Mode,
    flags: u32,
    valid: u32,
    ignore_ticket: bool,
    update_ticket_off: bool,
}

/// Whether a word is a `NAME=value` assignment in sudo's sense: it contains `=` and does not
/// start with `/` or `=`.
pub fn is_env_assignment(word: &str) -> bool {
    !word.starts_with('/') && !word.starts_with('=') && word.contains('=')
}

const EXCL: &str = "Only one of the -e, -h, -i, -K, -l, -s, -v or -V options may be specified";
const EXCL_TICKET: &str = "Only one of the -K, -k or -N options may be specified";

impl State {
    fn set_mode(&mut self, m: Mode, valid: u32) -> Result<(), UsageError> {
        if self.mode != Mode::None && self.mode != m {
            return Err(UsageError::msg(EXCL));
        }
        self.mode = m;
        self.valid = valid;
        Ok(())
    }

    fn once(slot: &mut Option<String>, v: &str, allow_empty: bool) -> Result<(), UsageError> {
        if (!allow_empty && v.is_empty()) || slot.is_some() {
            return Err(UsageError::bare());
        }
        *slot = Some(v.to_string());
        Ok(())
    }

    /// Applies one option; `arg` is its value when it takes one.
    fn apply(&mut self, c: char, arg: Option<&str>) -> Result<(), UsageError> {
        let r = &mut self.req;
        let val = || arg.unwrap_or_default();
        match c {
            'A' => r.askpass = true,
            'b' => {
                r.background = true;
                self.flags |= F_BACKGROUND;
            }
            'B' => r.bell = true,
            'C' => {
                // Like sudo's strtonum: leading white space and a `+` sign are accepted.
                let n = val().trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
                let ok = n
                    .parse::<i64>()
                    .is_ok_and(|n| (3..=i64::from(i32::MAX)).contains(&n));
                if !ok {
                    return Err(UsageError::msg(
                        "the argument to -C must be a number greater than or equal to 3",
                    ));
                }
                Self::once(&mut r.close_from, val(), false)?;
            }
            'D' => Self::once(&mut r.chdir, val(), false)?,
            'E' => match arg {
                None => {
                    if r.preserve_env == PreserveEnv::No {
                        r.preserve_env = PreserveEnv::All;
                    }
                    self.flags |= F_PRESERVE_ENV;
                }
                Some(list) => {
                    let mut names = Vec::new();
                    for name in list.split(',').filter(|n| !n.is_empty()) {
                        if name.contains('=') {
                            return Err(UsageError::msg(format!(
                                "invalid environment variable name: {name}"
                            )));
                        }
                        names.push(name.to_string());
                    }
                    match &mut r.preserve_env {
                        PreserveEnv::List(l) => l.extend(names),
                        p @ PreserveEnv::No => *p = PreserveEnv::List(names),
                        // -E already preserves everything; the list adds nothing.
                        PreserveEnv::All => {}
                    }
                }
            },
            'e' => self.set_mode(Mode::Edit, F_NONINTERACTIVE)?,
            'g' => Self::once(&mut r.group, val(), false)?,
            'H' => {
                r.set_home = true;
                self.flags |= F_RESET_HOME;
            }
            'h' => self.set_mode(Mode::Help, 0)?,
            HOST => Self::once(&mut r.host, val(), false)?,
            'i' => self.flags |= F_LOGIN_SHELL,
            'K' => {
                self.set_mode(Mode::Kill, 0)?;
                self.ticket()?;
            }
            'k' => self.ticket()?,
            'l' => {
                if self.mode == Mode::List {
                    self.flags |= F_LONG_LIST;
                } else if self.mode != Mode::None {
                    return Err(UsageError::msg(EXCL));
                }
                self.mode = Mode::List;
                self.valid = F_NONINTERACTIVE | F_LONG_LIST;
            }
            'N' => {
                if self.ignore_ticket {
                    return Err(UsageError::msg(EXCL_TICKET));
                }
                self.update_ticket_off = true;
                r.no_update = true;
            }
            'n' => {
                r.non_interactive = true;
                self.flags |= F_NONINTERACTIVE;
            }
            'P' => {
                r.preserve_groups = true;
                self.flags |= F_PRESERVE_GROUPS;
            }
            'p' => Self::once(&mut r.prompt, val(), true)?,
            'R' => Self::once(&mut r.chroot, val(), false)?,
            'r' => Self::once(&mut r.role, val(), false)?,
            't' => Self::once(&mut r.selinux_type, val(), false)?,
            'T' => Self::once(&mut r.command_timeout, val(), true)?,
            'S' => r.stdin_password = true,
            's' => self.flags |= F_SHELL,
            'U' => Self::once(&mut r.other_user, val(), false)?,
            'u' => Self::once(&mut r.user, val(), false)?,
            'v' => self.set_mode(Mode::Validate, F_NONINTERACTIVE)?,
            'V' => self.set_mode(Mode::Version, 0)?,
            // -a and -c: known to getopt, compiled out of sudo on Linux.
            _ => return Err(UsageError::bare()),
        }
        Ok(())
    }

    fn ticket(&mut self) -> Result<(), UsageError> {
        if self.update_ticket_off {
            return Err(UsageError::msg(EXCL_TICKET));
        }
        self.ignore_ticket = true;
        Ok(())
    }
}

/// Parses the words after `sudo` (argv without argv\[0\]) exactly as sudo 1.9.13 does.
///
/// On success the request has an action and, for run/shell/list/edit, the command words.
/// `-h` alone yields [`Action::Help`] (sudo prints help and exits 0).
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<SudoRequest, UsageError> {
    let args: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
    let mut st = State {
        req: SudoRequest::default(),
        mode: Mode::None,
        flags: 0,
        valid: DEFAULT_VALID,
        ignore_ticket: false,
        update_ticket_off: false,
    };
    let mut i = 0usize;
    while let Some(&word) = args.get(i) {
        if word == "--" {
            // getopt consumes `--` and stops; assignments after it are the command.
            i += 1;
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            i += 1;
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let exact = LONG.iter().find(|(n, _, _)| *n == name);
            let opt = match exact {
                Some(o) => *o,
                None => {
                    let cands: Vec<_> = LONG
                        .iter()
                        .filter(|(n, _, _)| n.starts_with(name))
                        .collect();
                    match cands.as_slice() {
                        [] => {
                            return Err(UsageError::msg(format!("unrecognized option '--{long}'")))
                        }
                        [one] => **one,
                        many => {
                            let first = many[0];
                            if many.iter().all(|o| o.1 == first.1 && o.2 == first.2) {
                                *first
                            } else {
                                let list: Vec<String> =
                                    many.iter().map(|o| format!(" '--{}'", o.0)).collect();
                                return Err(UsageError::msg(format!(
                                    "option '--{name}' is ambiguous; possibilities:{}",
                                    list.concat()
                                )));
                            }
                        }
                    }
                }
            };
            let (full, has, c) = opt;
            let arg = match (has, inline) {
                (HasArg::No, Some(_)) => {
                    return Err(UsageError::msg(format!(
                        "option '--{full}' doesn't allow an argument"
                    )))
                }
                (HasArg::No, None) => None,
                (HasArg::Optional, v) => v,
                (HasArg::Required, Some(v)) => Some(v),
                (HasArg::Required, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(*v)
                    }
                    None => {
                        return Err(UsageError::msg(format!(
                            "option '--{full}' requires an argument"
                        )))
                    }
                },
            };
            st.apply(c, arg)?;
            continue;
        }
        if word.len() > 1 && word.starts_with('-') {
            i += 1;
            let body = &word[1..];
            for (pos, c) in body.char_indices() {
                let rest = &body[pos + c.len_utf8()..];
                match short_kind(c) {
                    None => return Err(UsageError::msg(format!("invalid option -- '{c}'"))),
                    Some(HasArg::No) => st.apply(c, None)?,
                    Some(HasArg::Required) => {
                        let v = if !rest.is_empty() {
                            rest
                        } else if let Some(v) = args.get(i) {
                            i += 1;
                            v
                        } else {
                            return Err(UsageError::msg(format!(
                                "option requires an argument -- '{c}'"
                            )));
                        };
                        st.apply(c, Some(v))?;
                        break;
                    }
                    Some(HasArg::Optional) => {
                        // -h: `-hhost` names a host; `-h host` does too when `-h` stood
                        // alone and the next word is neither an option nor an assignment.
                        if !rest.is_empty() {
                            st.apply(HOST, Some(rest))?;
                        } else if word == "-h"
                            && args
                                .get(i)
                                .is_some_and(|n| !n.starts_with('-') && !is_env_assignment(n))
                        {
                            let host = args[i];
                            i += 1;
                            if st.req.host.is_some() {
                                return Err(UsageError::bare());
                            }
                            st.req.host = Some(host.to_string());
                        } else {
                            st.apply('h', None)?;
                        }
                        break;
                    }
                }
            }
            continue;
        }
        // An operand: an assignment unless the previous word was `--` (sudo checks the word
        // before, so `-u -- A=1` also ends assignments), else the command starts here.
        let after_dashdash = i > 0 && args[i - 1] == "--";
        if !after_dashdash && is_env_assignment(word) {
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            st.req.env.push((k.to_string(), v.to_string()));
            i += 1;
            continue;
        }
        break;
    }
    let rest: Vec<String> = args[i.min(args.len())..]
        .iter()
        .map(|s| s.to_string())
        .collect();
    finish(st, rest)
}

fn finish(mut st: State, rest: Vec<String>) -> Result<SudoRequest, UsageError> {
    let argc = rest.len();
    if st.mode == Mode::None {
        if st.ignore_ticket && argc == 0 && st.flags & (F_SHELL | F_LOGIN_SHELL) == 0 {
            st.mode = Mode::Invalidate;
            st.ignore_ticket = false;
            st.valid = 0;
        } else {
            st.mode = Mode::Run;
        }
    }
    if st.flags & F_LOGIN_SHELL != 0 {
        if st.flags & F_SHELL != 0 {
            return Err(UsageError::msg(
                "you may not specify both the -i and -s options",
            ));
        }
        if st.flags & F_PRESERVE_ENV != 0 {
            return Err(UsageError::msg(
                "you may not specify both the -i and -E options",
            ));
        }
    }
    let shellish = st.flags & (F_SHELL | F_LOGIN_SHELL) != 0;
    let mut flags = st.flags;
    if flags & F_LOGIN_SHELL != 0 {
        flags |= F_SHELL;
    }
    if flags & st.valid != flags {
        return Err(UsageError::bare());
    }
    if st.mode == Mode::Edit && !st.req.env.is_empty() {
        return Err(UsageError::msg(
            "you may not specify environment variables in edit mode",
        ));
    }
    let runs_or_checks = matches!(
        st.mode,
        Mode::Edit | Mode::Run | Mode::List | Mode::Validate
    );
    if (st.req.user.is_some() || st.req.group.is_some())
        && !(runs_or_checks && (st.mode != Mode::List || argc > 0))
    {
        return Err(UsageError::bare());
    }
    if st.req.other_user.is_some() && st.mode != Mode::List {
        return Err(UsageError::msg(
            "the -U option may only be used with the -l option",
        ));
    }
    if st.req.stdin_password && st.req.askpass {
        return Err(UsageError::msg(
            "the -A and -S options may not be used together",
        ));
    }
    if (argc == 0 && st.mode == Mode::Edit)
        || (argc > 0 && !matches!(st.mode, Mode::Run | Mode::Edit | Mode::List))
    {
        return Err(UsageError::bare());
    }
    // No command and no -s/-i: sudo's implied shell, which the sudoers plugin answers with
    // the usage text (shell_noargs is off by default).
    // With -h host the plugin complains about the host first; occ refuses -h host anyway.
    if argc == 0 && st.mode == Mode::Run && !shellish && st.req.host.is_none() {
        return Err(UsageError::bare());
    }
    st.req.long_list = flags & F_LONG_LIST != 0;
    st.req.reset_timestamp = st.ignore_ticket && st.mode != Mode::Kill;
    st.req.action = Some(match st.mode {
        Mode::Run if st.flags & F_LOGIN_SHELL != 0 => Action::LoginShell,
        Mode::Run if st.flags & F_SHELL != 0 => Action::Shell,
        Mode::Run | Mode::None => Action::Run,
        Mode::Edit => Action::Edit,
        Mode::Validate => Action::Validate,
        Mode::Invalidate => Action::ResetTimestamp,
        Mode::Kill => Action::RemoveTimestamp,
        Mode::Version => Action::Version,
        Mode::Help => Action::Help,
        Mode::List => Action::List,
    });
    st.req.command = rest;
    Ok(st.req)
}

/// Escapes a command for `shell -c` the way sudo does for `-s`/`-i`: every character other
/// than ASCII letters, digits, `_`, `-` and `$` gets a backslash, words joined by spaces.
pub fn shell_command_string(words: &[String]) -> String {
    let mut out = String::new();
    for (n, w) in words.iter().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        for ch in w.chars() {
            if !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '$') {
                out.push('\\');
            }
            out.push(ch);
        }
    }
    out
}

/// Renders a request back into canonical sudo words (long options with `=`, one word per
/// option). `parse(&render(r)) == r` for every request `parse` can return.
pub fn render(r: &SudoRequest) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let mut opt = |name: &str, val: &Option<String>| {
        if let Some(x) = val {
            v.push(format!("--{name}={x}"));
        }
    };
    opt("user", &r.user);
    opt("group", &r.group);
    opt("chdir", &r.chdir);
    opt("prompt", &r.prompt);
    opt("close-from", &r.close_from);
    opt("chroot", &r.chroot);
    opt("role", &r.role);
    opt("type", &r.selinux_type);
    opt("command-timeout", &r.command_timeout);
    if r.host.as_deref() != Some("") {
        opt("host", &r.host);
    }
    opt("other-user", &r.other_user);
    if r.host.as_deref() == Some("") {
        // `--host=` refuses an empty value; a separate word after a lone `-h` does not.
        v.extend(["-h".to_string(), String::new()]);
    }
    let flag = |v: &mut Vec<String>, on: bool, s: &str| {
        if on {
            v.push(s.to_string());
        }
    };
    flag(&mut v, r.set_home, "-H");
    flag(&mut v, r.non_interactive, "-n");
    flag(&mut v, r.stdin_password, "-S");
    flag(&mut v, r.askpass, "-A");
    flag(&mut v, r.bell, "-B");
    flag(&mut v, r.no_update, "-N");
    flag(&mut v, r.preserve_groups, "-P");
    flag(&mut v, r.background, "-b");
    match &r.preserve_env {
        PreserveEnv::No => {}
        PreserveEnv::All => v.push("-E".into()),
        PreserveEnv::List(l) => v.push(format!("--preserve-env={}", l.join(","))),
    }
    match r.action() {
        Action::Run => {}
        Action::Shell => v.push("-s".into()),
        Action::LoginShell => v.push("-i".into()),
        Action::List => v.push(if r.long_list { "-ll" } else { "-l" }.into()),
        Action::Validate => v.push("-v".into()),
        Action::ResetTimestamp => v.push("-k".into()),
        Action::RemoveTimestamp => v.push("-K".into()),
        Action::Help => v.push("--help".into()),
        Action::Version => v.push("-V".into()),
        Action::Edit => v.push("-e".into()),
    }
    if r.reset_timestamp && r.action() != Action::ResetTimestamp {
        v.push("-k".into());
    }
    for (k, val) in &r.env {
        v.push(format!("{k}={val}"));
    }
    if !r.command.is_empty() {
        v.push("--".into());
        v.extend(r.command.iter().cloned());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<SudoRequest, UsageError> {
        let words: Vec<&str> = if s.is_empty() {
            vec![]
        } else {
            s.split(' ').collect()
        };
        parse(&words)
    }

    macro_rules! ok_table {
        ($($name:ident: $args:expr => |$r:ident| $check:expr;)*) => {$(
            #[test]
            fn $name() {
                let $r = p($args).unwrap_or_else(|e| panic!("{}: {e}", $args));
                assert!($check, "{}: {:?}", $args, $r);
            }
        )*};
    }

    ok_table! {
        nu_combined: "-nuroot true" => |r| r.non_interactive && r.user.as_deref() == Some("root") && r.command == ["true"];
        u_hash_attached: "-u#65534 id" => |r| r.user.as_deref() == Some("#65534");
        long_eq: "--user=nobody id" => |r| r.user.as_deref() == Some("nobody");
        long_space: "--user nobody id" => |r| r.user.as_deref() == Some("nobody");
        long_prefix: "--us=nobody id" => |r| r.user.as_deref() == Some("nobody");
        operand_stops: "ls -l" => |r| r.command == ["ls", "-l"] && r.action() == Action::Run;
        dashdash: "-- -u root true" => |r| r.command == ["-u", "root", "true"];
        env_between: "A=1 -u nobody B=2 env" => |r| r.env == [("A".into(), "1".into()), ("B".into(), "2".into())] && r.user.as_deref() == Some("nobody");
        env_not_after_dashdash: "A=1 -- B=2 env" => |r| r.command == ["B=2", "env"] && r.env.len() == 1;
        env_slash_is_command: "/x=y" => |r| r.command == ["/x=y"];
        env_eq_first_is_command: "=x" => |r| r.command == ["=x"];
        value_dashdash_ends_env: "-u -- A=1 env" => |r| r.user.as_deref() == Some("--") && r.command == ["A=1", "env"];
        u_takes_dash_word: "-u -n true" => |r| r.user.as_deref() == Some("-n") && !r.non_interactive;
        help_alone: "-h" => |r| r.action() == Action::Help;
        help_twice: "-h -h" => |r| r.action() == Action::Help;
        host_attached_list: "-hfoo -l" => |r| r.host.as_deref() == Some("foo") && r.action() == Action::List;
        host_separate: "-h x -l" => |r| r.host.as_deref() == Some("x");
        host_run: "-h true" => |r| r.host.as_deref() == Some("true") && r.action() == Action::Run && r.command.is_empty();
        k_alone: "-k" => |r| r.action() == Action::ResetTimestamp;
        k_cmd: "-k true" => |r| r.action() == Action::Run && r.reset_timestamp;
        big_k: "-K" => |r| r.action() == Action::RemoveTimestamp;
        ll: "-ll" => |r| r.action() == Action::List && r.long_list;
        l_cmd: "-l true" => |r| r.action() == Action::List && r.command == ["true"];
        shell: "-s" => |r| r.action() == Action::Shell;
        login: "-i true" => |r| r.action() == Action::LoginShell && r.command == ["true"];
        preserve_list: "--preserve-env=A,,B true" => |r| r.preserve_env == PreserveEnv::List(vec!["A".into(), "B".into()]);
        preserve_all: "-E true" => |r| r.preserve_env == PreserveEnv::All;
        preserve_no_space_value: "--preserve-env A true" => |r| r.preserve_env == PreserveEnv::All && r.command == ["A", "true"];
        close_from: "-C 3 true" => |r| r.close_from.as_deref() == Some("3");
        chdir: "-D /tmp pwd" => |r| r.chdir.as_deref() == Some("/tmp");
        chdir_long: "--chdir /tmp pwd" => |r| r.chdir.as_deref() == Some("/tmp");
        validate_n: "-v -n" => |r| r.action() == Action::Validate;
        edit: "-e f" => |r| r.action() == Action::Edit && r.command == ["f"];
        lone_dash_is_command: "-" => |r| r.command == ["-"];
        empty_prompt_ok: "-p  true" => |r| r.prompt.as_deref() == Some("");
        non_long_prefix: "--non true" => |r| r.non_interactive;
        other_user_list: "-lU root" => |r| r.other_user.as_deref() == Some("root");
        digits_assign: "1A=b env" => |r| r.env == [("1A".into(), "b".into())];
    }

    macro_rules! err_table {
        ($($name:ident: $args:expr => $first:expr;)*) => {$(
            #[test]
            fn $name() {
                let e = p($args).expect_err($args);
                assert_eq!(e.first_line(), $first, "{}", $args);
            }
        )*};
    }

    const U: &str = "usage: sudo -h | -K | -k | -V";
    err_table! {
        invalid_z: "-Z" => "sudo: invalid option -- 'Z'";
        missing_u: "-u" => "sudo: option requires an argument -- 'u'";
        missing_long: "--user" => "sudo: option '--user' requires an argument";
        unknown_long: "--xyz=1 true" => "sudo: unrecognized option '--xyz=1'";
        ambiguous: "--p true" => "sudo: option '--p' is ambiguous; possibilities: '--preserve-env' '--preserve-groups' '--prompt'";
        no_arg_allowed: "--list=x" => "sudo: option '--list' doesn't allow an argument";
        i_and_s: "-i -s" => "sudo: you may not specify both the -i and -s options";
        i_and_e: "-E -i true" => "sudo: you may not specify both the -i and -E options";
        c_small: "-C 2 true" => "sudo: the argument to -C must be a number greater than or equal to 3";
        a_and_s: "-A -S true" => "sudo: the -A and -S options may not be used together";
        excl: "-h -l" => "sudo: Only one of the -e, -h, -i, -K, -l, -s, -v or -V options may be specified";
        excl_ticket: "-N -k true" => "sudo: Only one of the -K, -k or -N options may be specified";
        u_without_l: "-U root true" => "sudo: the -U option may only be used with the -l option";
        bad_env_name: "--preserve-env=A=1 true" => "sudo: invalid environment variable name: A=1";
        edit_env: "-e A=1 f" => "sudo: you may not specify environment variables in edit mode";
        nothing: "" => U;
        only_dashdash: "--" => U;
        only_h_flag: "-H" => U;
        k_with_n: "-K -n" => U;
        v_with_cmd: "-v true" => U;
        dup_user: "-u root -u root true" => U;
        empty_user: "-u  true" => U;
        auth_type_compiled_out: "-a x true" => U;
        nh_is_help_with_flags: "-nh" => U;
        version_with_n: "-nV" => U;
        list_with_b: "-l -b" => U;
        edit_with_e_flag: "-e -E f" => U;
        only_assignment: "FOO=1" => U;
        u_with_k_alone: "-k -u root" => U;
    }

    #[test]
    fn usage_text_is_what_sudo_prints_after_the_message() {
        let e = p("-Z").expect_err("invalid");
        let text = e.stderr_text();
        assert!(text.starts_with("sudo: invalid option -- 'Z'\nusage: sudo -h | -K | -k | -V\n"));
        assert!(text.ends_with("[-T timeout] [-u user] file ...\n"));
    }

    #[test]
    fn shell_escape_matches_sudo() {
        let w = vec!["echo".to_string(), "a b$c".to_string(), "x;y".to_string()];
        assert_eq!(shell_command_string(&w), "echo a\\ b$c x\\;y");
    }
}
