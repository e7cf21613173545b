//! `occ audit show` and `occ audit tail`: events for a person, or as stored.

use std::collections::VecDeque;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use occ_audit::canon::Member;
use occ_audit::lines::{Line, LineReader};
use occ_audit::AuditError;

use super::{msg, Failure, FilterArgs, Res, ShowArgs, StatsArgs, TailArgs, WindowArgs};
use crate::escape::escape_text;

use super::format::{Output, Shown};
use super::when;

/// What `show` and `stats` keep.
struct Filter {
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    event_type: Option<String>,
    session: Option<String>,
    user: Option<String>,
    runuser: Option<String>,
    id: Option<String>,
    command: Option<globset::GlobMatcher>,
}

impl Filter {
    fn new(a: &WindowArgs, f: Option<&FilterArgs>) -> Result<Filter, Failure> {
        let now = SystemTime::now();
        let time = |flag: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| when::parse(s, now).ok_or_else(|| msg(when::unreadable(flag, s))))
                .transpose()
        };
        let command = f
            .and_then(|f| f.command.as_deref())
            .map(|g| {
                globset::GlobBuilder::new(g)
                    .literal_separator(false)
                    .build()
                    .map(|g| g.compile_matcher())
                    .map_err(|e| msg(format!("--command {g:?}: not a glob ({})", e.kind())))
            })
            .transpose()?;
        Ok(Filter {
            since: time("--since", &a.since)?,
            until: time("--until", &a.until)?,
            event_type: f.and_then(|f| f.event_type.clone()),
            session: f.and_then(|f| f.session.clone()),
            user: f.and_then(|f| f.user.clone()),
            runuser: f.and_then(|f| f.runuser.clone()),
            id: f.and_then(|f| f.id.clone()),
            command,
        })
    }

    fn keeps(&self, ev: &Shown<'_>) -> bool {
        let is = |key: &str, want: &Option<String>| {
            want.as_ref()
                .is_none_or(|w| ev.string(key).as_deref() == Some(w.as_str()))
        };
        if !is("event_type", &self.event_type)
            || !is("submituser", &self.user)
            || !is("runuser", &self.runuser)
            || !is("request_id", &self.id)
        {
            return false;
        }
        if let Some(s) = &self.session {
            let a = ev.string("session_id");
            let b = ev.string("occ_session_id");
            if a.as_deref() != Some(s) && b.as_deref() != Some(s) {
                return false;
            }
        }
        if let Some(g) = &self.command {
            // The whole command line, the command's path, or its file name.
            let Some(argv) = ev.argv() else { return false };
            let first = argv.first().cloned().unwrap_or_default();
            let name = first.rsplit('/').next().unwrap_or_default().to_owned();
            if ![argv.join(" "), first, name].iter().any(|c| g.is_match(c)) {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(ts) = ev
                .string("timestamp")
                .and_then(|t| humantime::parse_rfc3339(&t).ok())
            else {
                return false;
            };
            if self.since.is_some_and(|s| ts < s) || self.until.is_some_and(|u| ts >= u) {
                return false;
            }
        }
        true
    }
}

pub(super) fn open_log(path: &Path) -> Result<std::fs::File, Failure> {
    occ_audit::open_for_reading(path).map_err(|e| match &e {
        AuditError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            msg(format!(
                "{}: no such file. Fix: run `occ audit init`, or pass --log PATH",
                path.display()
            ))
        }
        _ => e.into(),
    })
}

/// Formats one stored line; `None` (with a warning) when it is not a record.
fn render(
    line: &[u8],
    line_no: u64,
    how: Output,
    colour: bool,
    members: &mut Vec<Member>,
) -> Option<String> {
    let Some(ev) = Shown::parse(line, members) else {
        eprintln!("occ audit: line {line_no}: not a JSON record (run `occ audit verify`)");
        return None;
    };
    Some(ev.render(line, how, colour))
}

/// Colour on a terminal, unless NO_COLOR is set (to anything) or TERM is dumb.
fn colour_wanted() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// Where `show` writes: a pager (`$PAGER`, else `less` with `LESS=FRSXMK` unless LESS is
/// set) when stdout is a terminal, else stdout itself.
enum Sink {
    Stdout(std::io::StdoutLock<'static>),
    Pager(std::process::Child, std::process::ChildStdin),
}

impl Sink {
    fn open(no_pager: bool) -> Sink {
        let stdout = || Sink::Stdout(std::io::stdout().lock());
        if no_pager || !std::io::stdout().is_terminal() {
            return stdout();
        }
        let pager = std::env::var("PAGER")
            .ok()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| "less".into());
        if pager == "cat" {
            return stdout();
        }
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("exec {pager}"))
            .stdin(std::process::Stdio::piped());
        if std::env::var_os("LESS").is_none() {
            cmd.env("LESS", "FRSXMK");
        }
        match cmd.spawn() {
            Ok(mut child) => match child.stdin.take() {
                Some(input) => Sink::Pager(child, input),
                None => stdout(),
            },
            Err(_) => stdout(),
        }
    }

    fn finish(self) -> Res {
        match self {
            Sink::Stdout(mut out) => {
                out.flush()?;
            }
            Sink::Pager(mut child, input) => {
                drop(input);
                let _ = child.wait();
            }
        }
        Ok(0)
    }
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(o) => o.write(b),
            Sink::Pager(_, i) => i.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(o) => o.flush(),
            Sink::Pager(_, i) => i.flush(),
        }
    }
}

/// Calls `each` with every record of the log that `filter` keeps, oldest first.
fn each_kept(
    path: &Path,
    filter: &Filter,
    mut each: impl FnMut(&[u8], u64, &Shown<'_>) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let file = open_log(path)?;
    let mut reader = LineReader::new(file);
    let mut members = Vec::new();
    let mut line_no = 0u64;
    while let Some(line) = reader
        .next_line()
        .map_err(|e| msg(format!("{}: {e}", path.display())))?
    {
        line_no += 1;
        let bytes = match line {
            Line::Complete(b) => b,
            Line::TooLong { len } => {
                eprintln!("occ audit: line {line_no}: {len} bytes, too long; skipped");
                continue;
            }
            Line::Torn { len } => {
                eprintln!("occ audit: the log ends with {len} bytes of a torn record");
                continue;
            }
        };
        let Some(ev) = Shown::parse(bytes, &mut members) else {
            eprintln!("occ audit: line {line_no}: not a JSON record (run `occ audit verify`)");
            continue;
        };
        if filter.keeps(&ev) {
            each(bytes, line_no, &ev)?;
        }
    }
    Ok(())
}

pub(super) fn show(a: ShowArgs) -> Res {
    let path = a.log.path();
    let filter = Filter::new(&a.window, Some(&a.filter))?;
    let how = if a.json { Output::Json } else { a.output };
    if a.limit == Some(0) {
        return Ok(0);
    }
    let colour = colour_wanted() && how != Output::Json;
    let mut ring: VecDeque<String> = VecDeque::new();
    let mut out = Sink::open(a.no_pager);
    let res = each_kept(&path, &filter, |bytes, _, ev| {
        let text = ev.render(bytes, how, colour);
        match a.limit {
            Some(n) => {
                if ring.len() == n {
                    ring.pop_front();
                }
                ring.push_back(text);
            }
            None => writeln!(out, "{text}")?,
        }
        Ok(())
    });
    match res {
        Err(Failure::Pipe) => return Ok(0),
        r => r?,
    }
    for t in ring {
        match writeln!(out, "{t}") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
            r => r?,
        }
    }
    out.finish()
}

/// What an event says about how a request ended, for `stats`.
fn outcome_of(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "approval_granted" => "approved",
        "approval_denied" => "denied",
        "approval_expired" => "expired",
        "policy_block" | "untrusted_source_block" | "session_missing" | "self_approval_refused" => {
            "refused"
        }
        "exec_finish" => "ran",
        "exec_failed" | "exec_abandoned" | "exec_outcome_unknown" => "run_failed",
        _ => return None,
    })
}

pub(super) fn stats(a: StatsArgs) -> Res {
    use std::collections::BTreeMap;
    let path = a.log.path();
    let filter = Filter::new(&a.window, None)?;
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_user: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_outcome: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut total = 0u64;
    let (mut first, mut last) = (None::<String>, None::<String>);
    each_kept(&path, &filter, |_, _, ev| {
        total += 1;
        let et = ev.string("event_type").unwrap_or_else(|| "?".into());
        if let Some(o) = outcome_of(&et) {
            *by_outcome.entry(o).or_default() += 1;
        }
        *by_type.entry(et).or_default() += 1;
        if let Some(u) = ev.string("submituser") {
            *by_user.entry(u).or_default() += 1;
        }
        let ts = ev.string("timestamp");
        if first.is_none() {
            first.clone_from(&ts);
        }
        last = ts;
        Ok(())
    })?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({
            "events": total,
            "first_timestamp": first,
            "last_timestamp": last,
            "by_event_type": by_type,
            "by_user": by_user,
            "by_outcome": by_outcome,
        });
        writeln!(out, "{v}")?;
        return Ok(0);
    }
    let span = match (&first, &last) {
        (Some(f), Some(l)) => format!(", {} to {}", escape_text(f), escape_text(l)),
        _ => String::new(),
    };
    writeln!(out, "{total} events{span}")?;
    for (title, rows) in [
        (
            "by outcome",
            by_outcome
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect::<Vec<_>>(),
        ),
        (
            "by user",
            by_user.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        ),
        (
            "by event type",
            by_type.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        ),
    ] {
        writeln!(out, "{title}:")?;
        let mut rows = rows;
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (k, n) in rows {
            writeln!(out, "  {n:>8}  {}", escape_text(&k))?;
        }
    }
    Ok(0)
}

pub(super) fn tail(a: TailArgs) -> Res {
    let how = if a.json { Output::Json } else { a.output };
    let style = (how, colour_wanted() && how != Output::Json);
    let path = a.log.path();
    let mut file = open_log(&path)?;
    let len = file
        .metadata()
        .map_err(|e| msg(format!("{}: {e}", path.display())))?
        .len();
    let end = occ_audit::lines::complete_len(&file, len)
        .map_err(|e| msg(format!("{}: {e}", path.display())))?;
    let start = occ_audit::lines::last_lines_offset(&file, end, a.lines)
        .map_err(|e| msg(format!("{}: {e}", path.display())))?;
    let mut out = std::io::stdout().lock();
    let mut members = Vec::new();
    if a.lines > 0 {
        file.seek(SeekFrom::Start(start))
            .map_err(|e| msg(format!("{}: {e}", path.display())))?;
        let mut reader = LineReader::new((&file).take(end - start));
        let mut n = 0u64;
        while let Some(line) = reader
            .next_line()
            .map_err(|e| msg(format!("{}: {e}", path.display())))?
        {
            n += 1;
            if let Line::Complete(b) = line {
                if let Some(t) = render(b, n, style.0, style.1, &mut members) {
                    writeln!(out, "{t}")?;
                }
            }
        }
    }
    out.flush()?;
    if !a.follow {
        return Ok(0);
    }
    follow(&path, file, end, style, &mut out)
}

/// What `tail -f` keeps between polls of one file.
struct Follow {
    file: std::fs::File,
    offset: u64,
    pending: Vec<u8>,
    line_no: u64,
}

impl Follow {
    /// Prints every complete line appended since the last call.
    fn drain(
        &mut self,
        path: &Path,
        style: (Output, bool),
        members: &mut Vec<Member>,
        out: &mut impl Write,
    ) -> Res {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let len = self.file.metadata().map(|m| m.len()).unwrap_or(self.offset);
            if len < self.offset {
                eprintln!(
                    "occ audit tail: {} got shorter (a torn record was cut off); following from its end",
                    path.display()
                );
                self.offset = len;
                self.pending.clear();
            }
            if len == self.offset {
                return Ok(0);
            }
            self.file.seek(SeekFrom::Start(self.offset))?;
            let n = self.file.read(&mut buf)?;
            if n == 0 {
                return Ok(0);
            }
            self.offset += n as u64;
            self.pending.extend_from_slice(&buf[..n]);
            while let Some(p) = self.pending.iter().position(|&c| c == b'\n') {
                self.line_no += 1;
                if let Some(t) = render(&self.pending[..p], self.line_no, style.0, style.1, members)
                {
                    writeln!(out, "{t}")?;
                }
                self.pending.drain(..=p);
            }
            if self.pending.len() > occ_audit::MAX_LINE {
                eprintln!("occ audit tail: skipping an over-long line");
                self.pending.clear();
            }
        }
    }
}

fn follow(
    path: &Path,
    file: std::fs::File,
    offset: u64,
    style: (Output, bool),
    out: &mut impl Write,
) -> Res {
    let mut members = Vec::new();
    let mut ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
    let mut cur = Follow {
        file,
        offset,
        pending: Vec::new(),
        line_no: 0,
    };
    loop {
        cur.drain(path, style, &mut members, out)?;
        out.flush()?;
        std::thread::sleep(Duration::from_millis(200));
        // Rotated? Finish the old file first (a last append may have landed before the
        // rotation), then follow the new one from its start.
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if m.ino() != ino && m.file_type().is_file() {
                if let Ok(f) = occ_audit::open_for_reading(path) {
                    cur.drain(path, style, &mut members, out)?;
                    cur = Follow {
                        file: f,
                        offset: 0,
                        pending: Vec::new(),
                        line_no: 0,
                    };
                    ino = m.ino();
                }
            }
        }
    }
}
