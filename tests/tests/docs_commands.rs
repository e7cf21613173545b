//! Every `occ` and `occ-scan` command shown in a code block of README.md or docs/*.md exists in
//! the CLI: each subcommand on its path answers `--help`, each flag it uses is one that
//! subcommand lists (with its value where it takes one), and, where nothing can swallow it,
//! the whole shown command line followed by `--help` parses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One command line shown in a code block.
#[derive(Debug)]
struct Shown {
    /// `README.md:123`.
    place: String,
    /// The command as typed, without its prompt.
    text: String,
}

/// The workspace root: one level above this crate's manifest.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// README.md and every docs/*.md, relative to the workspace root.
fn doc_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The command lines in the fenced code blocks of one markdown file. In `sh`/`bash` blocks
/// every line is a command; in `console`, `text` and untagged blocks only lines after a prompt
/// (`$ `, `# `, `(user)$ `). Heredoc bodies and other languages (json, ini, …) are skipped.
fn shown_commands(name: &str, markdown: &str) -> Vec<Shown> {
    let mut out = Vec::new();
    let mut lang: Option<String> = None;
    let mut heredoc: Option<String> = None;
    let mut pending: Option<(usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        let n = n + 1;
        if let Some(rest) = line.strip_prefix("```") {
            lang = match lang {
                Some(_) => None,
                None => Some(rest.trim().to_string()),
            };
            heredoc = None;
            pending = None;
            continue;
        }
        let Some(l) = lang.as_deref() else { continue };
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        let command = if let Some((start, mut text)) = pending.take() {
            text.push(' ');
            text.push_str(line.trim());
            Some((start, text))
        } else {
            match l {
                "sh" | "bash" | "shell" => {
                    let t = line.trim();
                    (!t.is_empty() && !t.starts_with('#')).then(|| (n, t.to_string()))
                }
                "console" | "text" | "" => prompt_command(line).map(|c| (n, c.to_string())),
                _ => None,
            }
        };
        let Some((start, text)) = command else {
            continue;
        };
        if let Some(joined) = text.strip_suffix('\\') {
            pending = Some((start, joined.trim_end().to_string()));
            continue;
        }
        heredoc = heredoc_end(&text);
        out.push(Shown {
            place: format!("{name}:{start}"),
            text,
        });
    }
    out
}

/// The command after a shell prompt: `$ cmd`, `# cmd`, `(user)$ cmd`, `(user)# cmd`.
fn prompt_command(line: &str) -> Option<&str> {
    let rest = match line.strip_prefix('(') {
        Some(r) => &r[r.find(')')? + 1..],
        None => line,
    };
    rest.strip_prefix("$ ")
        .or_else(|| rest.strip_prefix("# "))
        .map(str::trim)
}

/// The terminator of a heredoc the line opens (`<<'EOF'`, `<<EOF`, `<<-EOF`).
fn heredoc_end(text: &str) -> Option<String> {
    let at = text.find("<<")?;
    let word = text[at + 2..]
        .trim_start_matches('-')
        .split_whitespace()
        .next()?;
    let word = word.trim_matches(|c| c == '\'' || c == '"');
    (!word.is_empty()).then(|| word.to_string())
}

/// Shell tokens: words, and the operators that separate simple commands.
#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Sep,
}

/// Splits a command line as a shell would, far enough to find each simple command's words:
/// quotes and backslashes, `|`, `&&`, `||`, `;`, `&`, `(`, `)`, `$(`, redirections (dropped
/// with their target) and comments.
fn tokenize(text: &str) -> Vec<Tok> {
    /// The words so far and the one being read.
    #[derive(Default)]
    struct Lexer {
        toks: Vec<Tok>,
        word: String,
        in_word: bool,
        /// The next word is a redirection's target.
        drop_next: bool,
    }
    impl Lexer {
        fn finish(&mut self) {
            if self.in_word {
                let w = std::mem::take(&mut self.word);
                if self.drop_next {
                    self.drop_next = false;
                } else {
                    self.toks.push(Tok::Word(w));
                }
            }
            self.word.clear();
            self.in_word = false;
        }
        fn sep(&mut self) {
            self.finish();
            self.toks.push(Tok::Sep);
        }
    }
    let mut lx = Lexer::default();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                lx.in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    lx.word.push(q);
                }
            }
            '"' => {
                lx.in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                lx.word.push(e);
                            }
                        }
                        _ => lx.word.push(q),
                    }
                }
            }
            '\\' => {
                lx.in_word = true;
                if let Some(e) = chars.next() {
                    lx.word.push(e);
                }
            }
            '#' if !lx.in_word => break,
            c if c.is_whitespace() => lx.finish(),
            '$' if chars.peek() == Some(&'(') => {
                chars.next();
                lx.sep();
            }
            '|' | ';' | '&' | '(' | ')' => {
                while chars.peek().is_some_and(|n| matches!(n, '|' | '&')) {
                    chars.next();
                }
                lx.sep();
            }
            '<' | '>' => {
                // `2>`: the digits before are the descriptor, not a word.
                if lx.in_word && lx.word.chars().all(|d| d.is_ascii_digit()) {
                    lx.word.clear();
                    lx.in_word = false;
                }
                lx.finish();
                while chars.peek().is_some_and(|n| matches!(n, '<' | '>' | '&')) {
                    chars.next();
                }
                lx.drop_next = true;
            }
            _ => {
                lx.in_word = true;
                lx.word.push(c);
            }
        }
    }
    lx.finish();
    lx.toks
}

/// Each `occ` or `occ-scan` invocation in a command line: the program's name and its
/// arguments. Leading `NAME=value` assignments and `time`/`exec` are skipped; the program may be
/// given by path (`~/.openclaw/bin/occ`).
fn invocations(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut simple: Vec<String> = Vec::new();
    let mut flush = |simple: &mut Vec<String>| {
        let mut words = simple.drain(..).skip_while(|w| {
            w == "time"
                || w == "exec"
                || w.split_once('=').is_some_and(|(name, _)| {
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
        });
        if let Some(program) = words.next() {
            let base = program.rsplit('/').next().unwrap_or(&program).to_string();
            if base == "occ" || base == "occ-scan" {
                out.push((base, words.collect()));
            }
        }
    };
    for tok in tokenize(text) {
        match tok {
            Tok::Word(w) => simple.push(w),
            Tok::Sep => flush(&mut simple),
        }
    }
    flush(&mut simple);
    out
}

/// One option a subcommand's `--help` lists.
#[derive(Debug, Clone)]
struct Opt {
    short: Option<char>,
    long: Option<String>,
    /// Takes a value as the next argument (`--log <LOG>`); `--x[=<V>]` takes one only after `=`.
    takes_value: bool,
}

/// What one `PROGRAM PATH… --help` says.
#[derive(Debug, Clone)]
struct Help {
    /// Visible subcommands (the "Commands:" section).
    commands: Vec<String>,
    options: Vec<Opt>,
    /// A positional that takes the rest of the line (`[SUDO-ARGS]...`, `-- <COMMAND>...`).
    var_args: bool,
    /// A subcommand is required (`<COMMAND>` in the usage).
    needs_command: bool,
}

fn parse_help(text: &str) -> Help {
    let mut commands = Vec::new();
    let mut options = Vec::new();
    let mut var_args = false;
    let mut needs_command = false;
    let mut section = "";
    for line in text.lines() {
        if let Some(usage) = line.strip_prefix("Usage: ") {
            var_args = usage.contains("...");
            needs_command = usage.contains("<COMMAND>");
            continue;
        }
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line;
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let entry = line.trim_start();
        if section == "Commands:" && indent == 2 {
            if let Some(name) = entry.split_whitespace().next() {
                commands.push(name.trim_end_matches(',').to_string());
            }
        }
        if indent <= 6 && entry.starts_with('-') {
            // The entry itself ends where its description starts (two spaces), if on one line.
            let head = entry.split("  ").next().unwrap_or(entry);
            let mut opt = Opt {
                short: None,
                long: None,
                takes_value: false,
            };
            for part in head.split(", ") {
                let name = part.split([' ', '[', '=', '<']).next().unwrap_or("");
                if let Some(l) = name.strip_prefix("--") {
                    opt.long = Some(l.to_string());
                } else if let Some(s) = name.strip_prefix('-') {
                    opt.short = s.chars().next();
                }
                if part.contains(" <") {
                    opt.takes_value = true;
                }
            }
            options.push(opt);
        }
    }
    Help {
        commands,
        options,
        var_args,
        needs_command,
    }
}

/// Runs `PROGRAM ARGS…` with a throwaway home, in user mode, killed after 20 s; returns the exit
/// code and stdout.
fn run_cli(program: &str, args: &[String], home: &Path) -> (Option<i32>, String, String) {
    let mut child = Command::new(occ_tests::bin(program))
        .args(args)
        .env("HOME", home)
        .env("OCC_HOME", home.join(".openclaw"))
        .env("OCC_MODE", "user")
        .env("NO_COLOR", "1")
        .env_remove("PAGER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks shown commands against the built binaries, asking each subcommand's `--help` once.
struct Checker {
    home: tempfile::TempDir,
    helps: HashMap<(String, Vec<String>), Option<Help>>,
}

impl Checker {
    fn new() -> Self {
        Checker {
            home: tempfile::tempdir().unwrap(),
            helps: HashMap::new(),
        }
    }

    /// `PROGRAM PATH… --help`, when it exits 0 and its usage names exactly that path.
    fn help(&mut self, program: &str, path: &[String]) -> Option<Help> {
        let key = (program.to_string(), path.to_vec());
        if let Some(h) = self.helps.get(&key) {
            return h.clone();
        }
        let mut args = path.to_vec();
        args.push("--help".into());
        let (code, stdout, _) = run_cli(program, &args, self.home.path());
        let want = std::iter::once(program.to_string())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let usage_ok = stdout.lines().any(|l| {
            l.strip_prefix("Usage: ")
                .is_some_and(|u| u == want || u.starts_with(&format!("{want} ")))
        });
        let help = (code == Some(0) && usage_ok).then(|| parse_help(&stdout));
        self.helps.insert(key, help.clone());
        help
    }

    /// Every problem with one invocation, each naming the subcommand and the word.
    fn check(&mut self, program: &str, args: &[String]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut path: Vec<String> = Vec::new();
        let shown = |path: &[String]| {
            std::iter::once(program.to_string())
                .chain(path.iter().cloned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let Some(mut help) = self.help(program, &path) else {
            return vec![format!("`{program} --help` does not work")];
        };
        let mut seen_positional = false;
        let mut swallowed = false;
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a == "--" {
                swallowed = true;
                break;
            }
            if seen_positional && help.var_args {
                swallowed = true;
                break;
            }
            if let Some(long) = a.strip_prefix("--") {
                let (name, has_value) = match long.split_once('=') {
                    Some((n, _)) => (n, true),
                    None => (long, false),
                };
                match help
                    .options
                    .iter()
                    .find(|o| o.long.as_deref() == Some(name))
                {
                    None => problems.push(format!(
                        "`{}` has no flag --{name} (see `{} --help`)",
                        shown(&path),
                        shown(&path)
                    )),
                    Some(o) if o.takes_value && !has_value => i += 1,
                    Some(_) => {}
                }
            } else if a.len() > 1 && a.starts_with('-') {
                for (k, c) in a[1..].char_indices() {
                    match help.options.iter().find(|o| o.short == Some(c)) {
                        None => {
                            problems.push(format!(
                                "`{}` has no flag -{c} (in `{a}`; see `{} --help`)",
                                shown(&path),
                                shown(&path)
                            ));
                            break;
                        }
                        Some(o) if o.takes_value => {
                            if k + c.len_utf8() == a.len() - 1 {
                                i += 1;
                            }
                            break;
                        }
                        Some(_) => {}
                    }
                }
            } else if !help.commands.is_empty() && !seen_positional {
                let mut next = path.clone();
                next.push(a.clone());
                match self.help(program, &next) {
                    Some(h) => {
                        path = next;
                        help = h;
                    }
                    None => {
                        problems.push(format!(
                            "`{}` has no subcommand {a:?} (it has: {})",
                            shown(&path),
                            help.commands.join(", ")
                        ));
                        return problems;
                    }
                }
            } else {
                seen_positional = true;
            }
            i += 1;
        }
        swallowed |= seen_positional && help.var_args;
        if help.needs_command {
            problems.push(format!(
                "`{}` needs a subcommand (one of: {})",
                shown(&path),
                help.commands.join(", ")
            ));
        }
        // The whole line, then --help: clap checks every flag and value up to it and stops
        // there, running nothing. Only where no positional takes the rest of the line.
        if problems.is_empty() && !swallowed {
            let mut all = args.to_vec();
            all.push("--help".into());
            let (code, stdout, stderr) = run_cli(program, &all, self.home.path());
            if code != Some(0) || !stdout.contains("Usage: ") {
                problems.push(format!(
                    "`{program} {} --help` does not parse (exit {code:?}): {}",
                    args.join(" "),
                    stderr.lines().next().unwrap_or("")
                ));
            }
        }
        problems
    }
}

/// Checks every invocation of `occ`/`occ-scan` in the given markdown texts; returns the number
/// checked per program and every problem, each with its file and line.
fn check_docs(
    checker: &mut Checker,
    docs: &[(String, String)],
) -> (HashMap<String, usize>, Vec<String>) {
    let mut counts = HashMap::new();
    let mut problems = Vec::new();
    for (name, text) in docs {
        for shown in shown_commands(name, text) {
            for (program, args) in invocations(&shown.text) {
                *counts.entry(program.clone()).or_insert(0) += 1;
                for p in checker.check(&program, &args) {
                    problems.push(format!("{}: {}\n    shown: {}", shown.place, p, shown.text));
                }
            }
        }
    }
    (counts, problems)
}

#[test]
fn every_command_shown_in_the_readme_and_docs_exists_in_the_cli() {
    let root = workspace_root();
    let docs: Vec<(String, String)> = doc_files()
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(&root).unwrap().display().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    assert!(
        docs.len() >= 7,
        "README.md and the six docs/ pages, found {:?}",
        docs.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    let mut checker = Checker::new();
    let (counts, problems) = check_docs(&mut checker, &docs);
    // The reader must find the commands it is checking: the docs show about a hundred.
    let occ = counts.get("occ").copied().unwrap_or(0);
    let scan = counts.get("occ-scan").copied().unwrap_or(0);
    assert!(
        occ >= 60 && scan >= 15,
        "found only {occ} occ and {scan} occ-scan commands in the docs' code blocks"
    );
    assert!(
        problems.is_empty(),
        "{} command(s) shown in the docs do not exist in the CLI:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn a_made_up_subcommand_or_flag_in_the_docs_is_reported() {
    let doc = "\
Text.

```console
$ occ audit verify --json
intact: 1 event
$ occ frobnicate --now
$ OCC_HOME=/tmp/x occ audit verify --no-such-flag
$ occ audit show -o verbose -Q
(occ-approver)$ occ approve abc --session
# occ doctor --system
$ occ-scan schedule install --every 15m --bogus
$ occ-scan schedule instal
$ occ audit
```

```sh
occ-scan ports                 # a comment --not-a-flag
occ policy check --strict-ish  # a made-up flag
```

```json
{\"occ frobnicate\": 1}
```
";
    let mut checker = Checker::new();
    let (counts, problems) = check_docs(&mut checker, &[("x.md".into(), doc.into())]);
    assert_eq!(counts.get("occ"), Some(&8), "{problems:#?}");
    assert_eq!(counts.get("occ-scan"), Some(&3), "{problems:#?}");
    let wanted = [
        ("x.md:6:", "no subcommand \"frobnicate\""),
        ("x.md:7:", "no flag --no-such-flag"),
        ("x.md:8:", "no flag -Q"),
        ("x.md:11:", "no flag --bogus"),
        ("x.md:12:", "no subcommand \"instal\""),
        ("x.md:13:", "needs a subcommand"),
        ("x.md:18:", "no flag --strict-ish"),
    ];
    for (place, what) in wanted {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(place) && p.contains(what)),
            "expected {place} {what} among {problems:#?}"
        );
    }
    assert_eq!(problems.len(), wanted.len(), "{problems:#?}");
}

#[test]
fn the_shell_reader_finds_each_invocation_and_drops_the_rest() {
    let got = invocations(
        "printf '%s\\n' \"$T\" | OCC_HOME=/x occ token set 2>&1 < /dev/null && ~/.openclaw/bin/occ doctor # occ gone",
    );
    assert_eq!(
        got,
        vec![
            (
                "occ".to_string(),
                vec!["token".to_string(), "set".to_string()]
            ),
            ("occ".to_string(), vec!["doctor".to_string()]),
        ]
    );
    let got = invocations("id=$(occ approvals --json | python3 -c 'x') ; occ-scan cycle -q");
    assert_eq!(
        got,
        vec![
            (
                "occ".to_string(),
                vec!["approvals".to_string(), "--json".to_string()]
            ),
            (
                "occ-scan".to_string(),
                vec!["cycle".to_string(), "-q".to_string()]
            ),
        ]
    );
    assert_eq!(prompt_command("(occ-sysagent)$ sudo id"), Some("sudo id"));
    assert_eq!(prompt_command("#fujp3ypd  occ-sysagent → root"), None);
    let shown = shown_commands(
        "y.md",
        "```sh\npython3 - f <<'EOF'\nocc audit verify\nEOF\nocc audit stats\n```\n",
    );
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert_eq!(shown[1].place, "y.md:5");
}
