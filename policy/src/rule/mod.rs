//! The rule language of `command-policy.json` and its index. A rule is split into words like a
//! shell would (quotes group, nothing expands); word 1 names the command, each later word
//! matches exactly one argument. Matching is argument by argument, never on a joined string.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use globset::{Glob, GlobBuilder, GlobMatcher};

use crate::resolve::ResolvedCommand;

mod identity;
mod opts;

pub use identity::secure_real_path;

/// Which list of `command-policy.json` a rule came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `allow`.
    Allow,
    /// `deny`.
    Deny,
    /// `allow_exact`.
    AllowExact,
    /// `deny_exact`.
    DenyExact,
}

impl ListKind {
    /// The JSON key.
    pub fn key(self) -> &'static str {
        match self {
            ListKind::Allow => "allow",
            ListKind::Deny => "deny",
            ListKind::AllowExact => "allow_exact",
            ListKind::DenyExact => "deny_exact",
        }
    }
    /// Whether the list denies.
    pub fn denies(self) -> bool {
        matches!(self, ListKind::Deny | ListKind::DenyExact)
    }
}

/// Where a rule lives: `allow[3]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleId {
    /// The list.
    pub list: ListKind,
    /// Index in the list.
    pub index: usize,
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.list.key(), self.index)
    }
}

/// A rule that cannot be compiled.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleError {
    /// Unbalanced quotes or a trailing backslash.
    #[error("{0}")]
    Split(String),
    /// An empty rule.
    #[error(
        "the rule is empty; write a command path or name, e.g. \"/usr/bin/systemctl status *\""
    )]
    Empty,
    /// `**` somewhere other than the last word.
    #[error("`**` may only be the last word (it matches all remaining arguments)")]
    RecursiveNotLast,
    /// A glob globset refuses.
    #[error("word {word:?} is not a valid glob: {detail}")]
    Glob {
        /// The word.
        word: String,
        /// globset's explanation.
        detail: String,
    },
    /// A command word that is neither absolute nor a bare name.
    #[error("command word {0:?} must be an absolute path (/usr/bin/x) or a bare name (x)")]
    RelativePath(String),
    /// An option group that cannot be read.
    #[error("option group {word:?}: {detail}")]
    OptionGroup {
        /// The alternative or group.
        word: String,
        /// What is wrong.
        detail: String,
    },
    /// An option group in an allow rule.
    #[error(
        "option groups like (-r|--recursive) match loosely and belong in deny rules only; \
         write allow rules argument by argument"
    )]
    OptionFormInAllow,
}

/// Splits a rule into words as a POSIX shell would, without any expansion: single quotes keep
/// everything literally, double quotes allow `\"`, `\\`, `\$` and `` \` `` escapes, and a
/// backslash outside quotes escapes the next character. `""` is one empty word.
pub fn split_words(s: &str) -> Result<Vec<String>, RuleError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(RuleError::Split("unterminated single quote".into())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => cur.push(ch),
                            Some('\n') => {}
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => {
                                return Err(RuleError::Split("unterminated double quote".into()))
                            }
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(RuleError::Split("unterminated double quote".into())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match it.next() {
                    Some(ch) => cur.push(ch),
                    None => return Err(RuleError::Split("trailing backslash".into())),
                }
            }
            ch => {
                in_word = true;
                cur.push(ch);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// A glob checked when the policy loads and compiled on first use: a 50,000-rule policy loads
/// without compiling tens of thousands of regexes, and a decision compiles only the few
/// candidates the index hands it (once; later decisions reuse them).
#[derive(Clone, Debug)]
struct LazyGlob {
    glob: Glob,
    matcher: OnceLock<GlobMatcher>,
}

impl LazyGlob {
    fn is_match(&self, s: &str) -> bool {
        self.matcher
            .get_or_init(|| self.glob.compile_matcher())
            .is_match(s)
    }
    fn pattern(&self) -> &str {
        self.glob.glob()
    }
}

fn glob(word: &str) -> Result<LazyGlob, RuleError> {
    GlobBuilder::new(word)
        .literal_separator(true)
        .case_insensitive(false)
        .backslash_escape(true)
        .build()
        .map(|glob: Glob| LazyGlob {
            glob,
            matcher: OnceLock::new(),
        })
        .map_err(|e| RuleError::Glob {
            word: word.to_string(),
            detail: e.kind().to_string(),
        })
}

/// One argument matcher. Literal words compare as strings; only words with glob syntax pay for
/// a compiled glob.
#[derive(Clone, Debug)]
enum ArgWord {
    Literal(String),
    Glob(LazyGlob),
}

impl ArgWord {
    fn new(w: &str) -> Result<Self, RuleError> {
        if w == "**" {
            return Err(RuleError::RecursiveNotLast);
        }
        if has_glob_meta(w) {
            Ok(ArgWord::Glob(glob(w)?))
        } else {
            Ok(ArgWord::Literal(w.to_string()))
        }
    }
    fn matches(&self, arg: &str) -> bool {
        match self {
            ArgWord::Literal(l) => l == arg,
            ArgWord::Glob(g) => g.is_match(arg),
        }
    }
}

/// What the arguments of a command must look like.
#[derive(Clone, Debug)]
enum Args {
    /// A one-word rule: any arguments.
    Any,
    /// `cmd ""`: no arguments.
    None,
    /// One matcher per argument; `rest` when the rule ended in `**`.
    Words { words: Vec<ArgWord>, rest: bool },
    /// An `*_exact` rule: these arguments, literally.
    Exact(Vec<String>),
    /// A deny rule with option groups: every spelling of the same flags (`rule/opts.rs`).
    Options(opts::OptionForm),
}

impl Args {
    fn matches(&self, args: &[String]) -> bool {
        match self {
            Args::Any => true,
            Args::None => args.is_empty(),
            Args::Exact(want) => want.as_slice() == args,
            Args::Options(form) => form.matches(args),
            Args::Words { words, rest } => {
                if args.len() < words.len() || (!rest && args.len() != words.len()) {
                    return false;
                }
                words.iter().zip(args).all(|(w, a)| w.matches(a))
            }
        }
    }
}

/// What word 1 of a rule names.
#[derive(Clone, Debug)]
enum CmdWord {
    /// An absolute path without glob syntax.
    Path(String),
    /// An absolute path glob (`/opt/*/bin/tool`).
    PathGlob(LazyGlob),
    /// A bare name: matches the file name of a command found on secure_path.
    Name(String),
    /// A bare-name glob (`python3*`).
    NameGlob(LazyGlob),
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Where it is in the file.
    pub id: RuleId,
    /// The rule as written (for `*_exact`, the argv as JSON).
    pub text: String,
    cmd: CmdWord,
    args: Args,
}

impl Rule {
    /// Compiles an `allow`/`deny` rule string.
    pub fn parse(id: RuleId, text: &str) -> Result<Rule, RuleError> {
        let words = split_words(text)?;
        let (first, rest) = words.split_first().ok_or(RuleError::Empty)?;
        let cmd = cmd_word(first)?;
        let args = match rest {
            [] => Args::Any,
            [only] if only.is_empty() => Args::None,
            _ if rest.iter().any(|w| opts::is_group(w)) => {
                if !id.list.denies() {
                    return Err(RuleError::OptionFormInAllow);
                }
                Args::Options(opts::OptionForm::compile(rest)?)
            }
            _ => {
                let (last, init) = rest.split_last().ok_or(RuleError::Empty)?;
                let rest_all = last == "**";
                let mut words = init
                    .iter()
                    .map(|w| ArgWord::new(w))
                    .collect::<Result<Vec<_>, _>>()?;
                if !rest_all {
                    words.push(ArgWord::new(last)?);
                }
                Args::Words {
                    words,
                    rest: rest_all,
                }
            }
        };
        Ok(Rule {
            id,
            text: text.to_string(),
            cmd,
            args,
        })
    }

    /// Compiles an `allow_exact`/`deny_exact` argv: argv\[0\] as in a rule's first word (no
    /// globs), the rest compared literally.
    pub fn exact(id: RuleId, argv: &[String]) -> Result<Rule, RuleError> {
        let (first, rest) = argv.split_first().ok_or(RuleError::Empty)?;
        let cmd = if first.starts_with('/') {
            CmdWord::Path(first.clone())
        } else if first.contains('/') || first.is_empty() {
            return Err(RuleError::RelativePath(first.clone()));
        } else {
            CmdWord::Name(first.clone())
        };
        Ok(Rule {
            id,
            text: serde_json::to_string(argv).unwrap_or_default(),
            cmd,
            args: Args::Exact(rest.to_vec()),
        })
    }

    /// Whether this rule matches a resolved command and its arguments (argv without
    /// argv\[0\]); bare names mean what `secure_path` finds.
    pub fn matches(&self, cmd: &ResolvedCommand, args: &[String], secure_path: &str) -> bool {
        self.matches_command(cmd, secure_path, false) && self.args.matches(args)
    }

    /// Whether word 1 means the request's command. The match is on the resolved file: a bare
    /// name matches when `secure_path` finds that same file for it (however the request spelled
    /// the command), a path when it leads to that file. Deny rules also match a bare name on the
    /// command's own file name wherever it lives (`/tmp/rm`, and the unresolved inner words
    /// deny rules look at); allow rules never trust a name outside `secure_path`.
    /// `same_file` is the index's answer, when it already knows this rule means this file.
    fn matches_command(&self, cmd: &ResolvedCommand, secure_path: &str, same_file: bool) -> bool {
        let path = cmd.path.to_str().unwrap_or("");
        let real = cmd.real_path.to_str().unwrap_or("");
        let denies = self.id.list.denies();
        let means_this_file = |name: &str| {
            identity::secure_real_path(name, secure_path).is_some_and(|r| r == cmd.real_path)
        };
        match &self.cmd {
            CmdWord::Path(p) => {
                same_file
                    || p == path
                    || p == real
                    || identity::runnable_real_path(Path::new(p))
                        .is_some_and(|r| r == cmd.real_path)
            }
            CmdWord::PathGlob(g) => g.is_match(path) || g.is_match(real),
            CmdWord::Name(n) => {
                let named = n == cmd.name() || n == cmd.real_name();
                same_file || (named && (denies || cmd.via_secure_path)) || means_this_file(n)
            }
            CmdWord::NameGlob(g) => [cmd.name(), cmd.real_name()]
                .into_iter()
                .any(|n| g.is_match(n) && (denies || cmd.via_secure_path || means_this_file(n))),
        }
    }
}

fn cmd_word(first: &str) -> Result<CmdWord, RuleError> {
    if first.starts_with('/') {
        if has_glob_meta(first) {
            Ok(CmdWord::PathGlob(glob(first)?))
        } else {
            Ok(CmdWord::Path(first.to_string()))
        }
    } else if first.contains('/') || first.is_empty() {
        Err(RuleError::RelativePath(first.to_string()))
    } else if first == "**" {
        Err(RuleError::Glob {
            word: first.into(),
            detail: "a command word cannot be `**`".into(),
        })
    } else if has_glob_meta(first) {
        Ok(CmdWord::NameGlob(glob(first)?))
    } else {
        Ok(CmdWord::Name(first.to_string()))
    }
}

/// The literal directory part of a path glob, up to the first component with glob syntax:
/// `/opt/*/bin/x` → `/opt`. Every path the glob can match lies under it, because `*` never
/// crosses `/`... and `**` only ever adds components below it.
fn literal_dir_prefix(pattern: &str) -> String {
    let mut prefix = String::new();
    for comp in pattern.split('/').skip(1) {
        if has_glob_meta(comp) {
            break;
        }
        prefix.push('/');
        prefix.push_str(comp);
    }
    // The last literal component may be the file name itself; the bucket key is a directory.
    if !has_glob_meta(pattern) {
        return prefix;
    }
    if prefix.is_empty() {
        "/".into()
    } else {
        prefix
    }
}

/// Rules of one kind (allow-side or deny-side), indexed by command so a decision looks at
/// the few rules that can match instead of all of them.
#[derive(Clone, Debug, Default)]
pub struct RuleIndex {
    rules: Vec<Rule>,
    by_path: HashMap<String, Vec<u32>>,
    by_name: HashMap<String, Vec<u32>>,
    /// Path globs, bucketed by their literal directory prefix.
    by_glob_dir: HashMap<String, Vec<u32>>,
    name_globs: Vec<u32>,
    /// The file each name and path rule means, built on the first decision and shared by
    /// every copy of this index (the system broker hands each request a copy).
    by_real_file: std::sync::Arc<OnceLock<RealFiles>>,
}

/// [`identity::by_real_file`] for one `secure_path`.
#[derive(Debug)]
struct RealFiles {
    secure_path: String,
    rules: HashMap<PathBuf, Vec<u32>>,
}

impl RuleIndex {
    /// Adds a compiled rule.
    pub fn push(&mut self, rule: Rule) {
        let n = self.rules.len() as u32;
        match &rule.cmd {
            CmdWord::Path(p) => self.by_path.entry(p.clone()).or_default().push(n),
            CmdWord::Name(s) => self.by_name.entry(s.clone()).or_default().push(n),
            CmdWord::PathGlob(g) => self
                .by_glob_dir
                .entry(literal_dir_prefix(g.pattern()))
                .or_default()
                .push(n),
            CmdWord::NameGlob(_) => self.name_globs.push(n),
        }
        self.rules.push(rule);
        self.by_real_file = Default::default();
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// All rules in insertion order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule (lowest list position) matching the command and arguments; bare names
    /// mean what `secure_path` finds.
    pub fn first_match(
        &self,
        cmd: &ResolvedCommand,
        args: &[String],
        secure_path: &str,
    ) -> Option<&Rule> {
        let mut best: Option<u32> = None;
        let mut consider_as = |ids: &[u32], same_file: bool| {
            for &i in ids {
                if best.is_some_and(|b| b <= i) {
                    continue;
                }
                let rule = &self.rules[i as usize];
                if rule.matches_command(cmd, secure_path, same_file) && rule.args.matches(args) {
                    best = Some(i);
                }
            }
        };
        let fresh;
        let real_files = match self.by_real_file.get_or_init(|| RealFiles {
            secure_path: secure_path.to_string(),
            rules: identity::by_real_file(&self.rules, secure_path),
        }) {
            r if r.secure_path == secure_path => &r.rules,
            _ => {
                fresh = identity::by_real_file(&self.rules, secure_path);
                &fresh
            }
        };
        if let Some(ids) = real_files.get(&cmd.real_path) {
            consider_as(ids, true);
        }
        let mut consider = |ids: &[u32]| consider_as(ids, false);
        for p in [&cmd.path, &cmd.real_path] {
            if let Some(ids) = p.to_str().and_then(|s| self.by_path.get(s)) {
                consider(ids);
            }
            let mut dir = Some(p.as_path());
            while let Some(d) = dir {
                if let Some(ids) = d.to_str().and_then(|s| self.by_glob_dir.get(s)) {
                    consider(ids);
                }
                dir = d.parent();
            }
        }
        for n in [cmd.name(), cmd.real_name()] {
            if let Some(ids) = self.by_name.get(n) {
                consider(ids);
            }
        }
        consider(&self.name_globs);
        best.map(|i| &self.rules[i as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const SP: &str = "/usr/bin:/bin";

    fn cmd(path: &str, real: &str, via: bool) -> ResolvedCommand {
        ResolvedCommand {
            path: PathBuf::from(path),
            real_path: PathBuf::from(real),
            dev: 1,
            ino: 2,
            via_secure_path: via,
        }
    }

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn split_table() {
        let cases: &[(&str, &[&str])] = &[
            ("a b  c", &["a", "b", "c"]),
            ("a 'b c'", &["a", "b c"]),
            ("a \"b \\\"c\\\"\"", &["a", "b \"c\""]),
            ("cmd \"\"", &["cmd", ""]),
            ("a\\ b", &["a b"]),
            ("a '$HOME' `x`", &["a", "$HOME", "`x`"]),
            ("x'y'\"z\"", &["xyz"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_words(input).expect(input), argv(want), "{input}");
        }
        for bad in ["a 'b", "a \"b", "a\\"] {
            assert!(split_words(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn glob_semantics_table() {
        let id = RuleId {
            list: ListKind::Allow,
            index: 0,
        };
        let ls = cmd("/usr/bin/ls", "/usr/bin/ls", true);
        // (rule, args, matches)
        let cases: &[(&str, &[&str], bool)] = &[
            ("ls", &[], true),
            ("ls", &["-l", "/etc"], true),
            ("ls \"\"", &[], true),
            ("ls \"\"", &["-l"], false),
            ("ls *", &["/etc"], false),
            ("ls *", &["etc"], true),
            ("ls *", &[], false),
            ("ls /etc/*", &["/etc/passwd"], true),
            ("ls /etc/*", &["/etc/ssh/sshd_config"], false),
            ("ls -l **", &["-l"], true),
            ("ls -l **", &["-l", "a", "b/c"], true),
            ("ls -l **", &["-a"], false),
            ("ls -l", &["-l", "x"], false),
            ("ls 'a b'", &["a b"], true),
            ("ls a b", &["a b"], false),
            ("ls a *", &["a b"], false),
            ("ls * *", &["a\nb"], false),
            ("ls 'a\\*'", &["a*"], true),
            ("ls 'a\\*'", &["ab"], false),
            ("ls a\\*", &["ab"], true),
            ("LS", &[], false),
            ("ls -L", &["-l"], false),
            ("/usr/bin/ls", &[], true),
            ("/usr/bin/*", &["x"], true),
            ("/usr/*", &[], false),
            ("/usr/**/ls", &[], true),
            ("l?", &[], true),
            // The same file on a merged-/usr system: one decision whatever the spelling.
            ("/bin/ls", &[], true),
            ("/usr/sbin/ls", &[], false),
        ];
        for (rule, args, want) in cases {
            let r = Rule::parse(id, rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
            assert_eq!(r.matches(&ls, &argv(args), SP), *want, "{rule} vs {args:?}");
        }
    }

    #[test]
    fn readme_examples_hold() {
        let id = RuleId {
            list: ListKind::Allow,
            index: 0,
        };
        let cases: &[(&str, &str, &[&str], bool)] = &[
            ("uptime \"\"", "/usr/bin/uptime", &[], true),
            ("uptime \"\"", "/usr/bin/uptime", &["-p"], false),
            (
                "systemctl status *",
                "/usr/bin/systemctl",
                &["status", "nginx.service"],
                true,
            ),
            (
                "systemctl status *",
                "/usr/bin/systemctl",
                &["status", "/etc/nginx"],
                false,
            ),
            (
                "systemctl status *",
                "/usr/bin/systemctl",
                &["status", "a", "b"],
                false,
            ),
            (
                "journalctl -u * **",
                "/usr/bin/journalctl",
                &["-u", "nginx"],
                true,
            ),
            (
                "journalctl -u * **",
                "/usr/bin/journalctl",
                &["-u", "nginx", "--since", "today"],
                true,
            ),
            (
                "journalctl -u * **",
                "/usr/bin/journalctl",
                &["--since", "today"],
                false,
            ),
            ("/usr/bin/*", "/usr/bin/x11/foo", &[], false),
            ("/opt/**/bin/tool", "/opt/a/b/bin/tool", &[], true),
            ("printf '\\*'", "/usr/bin/printf", &["*"], true),
            ("printf '\\*'", "/usr/bin/printf", &["x"], false),
            ("ls a b", "/usr/bin/ls", &["a\nb"], false),
        ];
        for (rule, path, args, want) in cases {
            let r = Rule::parse(id, rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
            let c = cmd(path, path, true);
            assert_eq!(
                r.matches(&c, &argv(args), SP),
                *want,
                "{rule} vs {path} {args:?}"
            );
        }
    }

    #[test]
    fn double_star_only_as_last_word() {
        let id = RuleId {
            list: ListKind::Deny,
            index: 4,
        };
        assert_eq!(
            Rule::parse(id, "ls ** -l").expect_err("not last"),
            RuleError::RecursiveNotLast
        );
        assert_eq!(
            Rule::parse(id, "ls ** **").expect_err("not last"),
            RuleError::RecursiveNotLast
        );
        assert!(Rule::parse(id, "ls **").is_ok());
    }

    #[test]
    fn allow_names_trust_secure_path_and_deny_names_match_anywhere() {
        let allow = RuleId {
            list: ListKind::Allow,
            index: 0,
        };
        let deny = RuleId {
            list: ListKind::Deny,
            index: 0,
        };
        let r = Rule::parse(allow, "ls").expect("rule");
        assert!(!r.matches(&cmd("/opt/x/ls", "/opt/x/ls", false), &[], SP));
        assert!(r.matches(&cmd("/usr/bin/ls", "/usr/bin/ls", true), &[], SP));
        let py = Rule::parse(allow, "python3").expect("rule");
        assert!(py.matches(
            &cmd("/usr/bin/python3", "/usr/bin/python3.11", true),
            &[],
            SP
        ));
        let d = Rule::parse(deny, "ls").expect("rule");
        assert!(d.matches(&cmd("/opt/x/ls", "/opt/x/ls", false), &[], SP));
        let g = Rule::parse(deny, "mkfs.*").expect("rule");
        assert!(g.matches(&cmd("/tmp/mkfs.ext4", "/tmp/mkfs.ext4", false), &[], SP));
        let g = Rule::parse(allow, "mkfs.*").expect("rule");
        assert!(!g.matches(&cmd("/tmp/mkfs.ext4", "/tmp/mkfs.ext4", false), &[], SP));
    }

    #[test]
    fn option_groups_are_for_deny_rules() {
        let allow = RuleId {
            list: ListKind::Allow,
            index: 0,
        };
        assert_eq!(
            Rule::parse(allow, "rm (-r) /").expect_err("allow"),
            RuleError::OptionFormInAllow
        );
        let deny = RuleId {
            list: ListKind::Deny,
            index: 0,
        };
        let r = Rule::parse(deny, "rm (-r|-R|--recursive) /*").expect("deny");
        let rm = cmd("/usr/bin/rm", "/usr/bin/rm", true);
        assert!(r.matches(&rm, &argv(&["-f", "--recursive", "/"]), SP));
        assert!(!r.matches(&rm, &argv(&["-f", "/"]), SP));
    }

    #[test]
    fn index_returns_the_first_rule_in_file_order() {
        let mut idx = RuleIndex::default();
        let rules = ["/usr/bin/*", "ls -l", "/usr/bin/ls", "l*"];
        for (i, r) in rules.iter().enumerate() {
            idx.push(
                Rule::parse(
                    RuleId {
                        list: ListKind::Allow,
                        index: i,
                    },
                    r,
                )
                .expect("rule"),
            );
        }
        let ls = cmd("/usr/bin/ls", "/usr/bin/ls", true);
        assert_eq!(
            idx.first_match(&ls, &argv(&["-l"]), SP).map(|r| r.id.index),
            Some(0)
        );
        let other = cmd("/opt/ls", "/opt/ls", false);
        assert!(idx.first_match(&other, &[], SP).is_none());
        assert_eq!(literal_dir_prefix("/opt/*/bin/x"), "/opt");
        assert_eq!(literal_dir_prefix("/*"), "/");
    }
}
