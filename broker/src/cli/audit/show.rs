//! `occ audit show` and `occ audit tail`: events for a person, or as stored.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use occ_audit::canon::{self, Field, Member, Record};
use occ_audit::lines::{Line, LineReader};
use occ_audit::AuditError;

use super::{msg, Failure, Res, ShowArgs, TailArgs};

use crate::escape::escape_raw as escape;

const CHAIN_FIELDS: [&str; 6] = [
    "seq",
    "timestamp",
    "event_type",
    "prev_hash",
    "seal",
    "chain_hash",
];

/// A parsed line for display: its top-level members.
struct Shown<'a> {
    rec: Record<'a>,
}

impl<'a> Shown<'a> {
    fn parse(line: &'a [u8], members: &'a mut Vec<Member>) -> Option<Shown<'a>> {
        members.clear();
        canon::lenient(line, members).ok()?;
        if line.first() != Some(&b'{') {
            return None;
        }
        Some(Shown {
            rec: Record { line, members },
        })
    }

    fn string(&self, key: &str) -> Option<String> {
        match self.rec.field(key)? {
            Field::Str(s) => Some(canon::decode_str(s)),
            _ => None,
        }
    }

    fn line(&self) -> String {
        let seq = match self.rec.field("seq") {
            Some(Field::Int(d)) => escape(d),
            _ => "?".into(),
        };
        let ts = self.string("timestamp").unwrap_or_else(|| "?".into());
        let et = self.string("event_type").unwrap_or_else(|| "?".into());
        let mut rest = String::new();
        for m in self.rec.members {
            let key = &self.rec.line[m.key.start..m.key.end];
            if CHAIN_FIELDS.iter().any(|k| k.as_bytes() == key) {
                continue;
            }
            if !rest.is_empty() {
                rest.push(' ');
            }
            rest.push_str(&escape(&canon::decode_str(key).into_bytes()));
            rest.push('=');
            rest.push_str(&escape(&self.rec.line[m.value.start..m.value.end]));
        }
        format!(
            "{:>7}  {:<24}  {:<20}  {}",
            seq,
            escape(ts.as_bytes()),
            escape(et.as_bytes()),
            rest
        )
    }
}

fn parse_since(s: &str) -> Result<SystemTime, Failure> {
    if let Ok(d) = humantime::parse_duration(s) {
        return SystemTime::now()
            .checked_sub(d)
            .ok_or_else(|| msg(format!("--since {s}: too far back")));
    }
    humantime::parse_rfc3339_weak(s).map_err(|_| {
        msg(format!(
            "--since {s:?}: not a duration (10m, 2h, 3days) or an RFC 3339 time \
             (2026-01-31T12:00:00Z)"
        ))
    })
}

struct Filter {
    since: Option<SystemTime>,
    event_type: Option<String>,
    session: Option<String>,
}

impl Filter {
    fn keeps(&self, ev: &Shown<'_>) -> bool {
        if let Some(t) = &self.event_type {
            if ev.string("event_type").as_deref() != Some(t) {
                return false;
            }
        }
        if let Some(s) = &self.session {
            let a = ev.string("session_id");
            let b = ev.string("occ_session_id");
            if a.as_deref() != Some(s) && b.as_deref() != Some(s) {
                return false;
            }
        }
        if let Some(since) = self.since {
            let ts = ev
                .string("timestamp")
                .and_then(|t| humantime::parse_rfc3339(&t).ok());
            if ts.is_none_or(|t| t < since) {
                return false;
            }
        }
        true
    }
}

fn open_log(path: &Path) -> Result<std::fs::File, Failure> {
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

/// Formats one stored line for output; `None` (with a warning) when it is not a record.
fn render(line: &[u8], line_no: u64, json: bool, members: &mut Vec<Member>) -> Option<String> {
    let Some(ev) = Shown::parse(line, members) else {
        eprintln!("occ audit: line {line_no}: not a JSON record (run `occ audit verify`)");
        return None;
    };
    Some(if json { escape(line) } else { ev.line() })
}

pub(super) fn show(a: ShowArgs) -> Res {
    let path = a.log.path();
    let filter = Filter {
        since: a.since.as_deref().map(parse_since).transpose()?,
        event_type: a.event_type.clone(),
        session: a.session.clone(),
    };
    if a.limit == Some(0) {
        return Ok(0);
    }
    let file = open_log(&path)?;
    let mut reader = LineReader::new(file);
    let mut out = std::io::stdout().lock();
    let mut ring: VecDeque<String> = VecDeque::new();
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
                eprintln!("occ audit show: line {line_no}: {len} bytes, too long; skipped");
                continue;
            }
            Line::Torn { len } => {
                eprintln!("occ audit show: the log ends with {len} bytes of a torn record");
                continue;
            }
        };
        let keep = Shown::parse(bytes, &mut members).map(|ev| filter.keeps(&ev));
        match keep {
            Some(true) => {}
            Some(false) => continue,
            None => {
                eprintln!(
                    "occ audit show: line {line_no}: not a JSON record (run `occ audit verify`)"
                );
                continue;
            }
        }
        let Some(text) = render(bytes, line_no, a.json, &mut members) else {
            continue;
        };
        match a.limit {
            Some(n) => {
                if ring.len() == n {
                    ring.pop_front();
                }
                ring.push_back(text);
            }
            None => writeln!(out, "{text}")?,
        }
    }
    for t in ring {
        writeln!(out, "{t}")?;
    }
    Ok(0)
}

pub(super) fn tail(a: TailArgs) -> Res {
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
                if let Some(t) = render(b, n, a.json, &mut members) {
                    writeln!(out, "{t}")?;
                }
            }
        }
    }
    out.flush()?;
    if !a.follow {
        return Ok(0);
    }
    follow(&path, file, end, a.json, &mut out)
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
        json: bool,
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
                if let Some(t) = render(&self.pending[..p], self.line_no, json, members) {
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

fn follow(path: &Path, file: std::fs::File, offset: u64, json: bool, out: &mut impl Write) -> Res {
    let mut members = Vec::new();
    let mut ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
    let mut cur = Follow {
        file,
        offset,
        pending: Vec::new(),
        line_no: 0,
    };
    loop {
        cur.drain(path, json, &mut members, out)?;
        out.flush()?;
        std::thread::sleep(Duration::from_millis(200));
        // Rotated? Finish the old file first (a last append may have landed before the
        // rotation), then follow the new one from its start.
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if m.ino() != ino && m.file_type().is_file() {
                if let Ok(f) = occ_audit::open_for_reading(path) {
                    cur.drain(path, json, &mut members, out)?;
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
