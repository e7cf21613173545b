//! `occ audit verify|show|tail|init|rotate`: the admin's view of the hash-chained audit log.
//! Reading commands never write; every failure is a message naming the file and the fix, with
//! exit 2, and a broken chain is exit 1. Nothing here may panic on what a log file holds.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use occ_audit::canon::{self, Field, Member, Record};
use occ_audit::lines::{Line, LineReader};
use occ_audit::{AuditError, Head, Options, Report, SealKey, Value, VerifyOptions, Writer};

use crate::paths;

/// Arguments of `occ audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The `occ audit` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain, seals, rotation links and head checkpoint (exit 0 intact,
    /// 1 broken, 2 unreadable).
    Verify(VerifyArgs),
    /// Print events, one aligned line each (or JSONL with --json).
    Show(ShowArgs),
    /// Print the last events, and with -f keep printing new ones.
    Tail(TailArgs),
    /// Create the log with a log_initialized genesis event; --seal starts sealing.
    Init(InitArgs),
    /// Move the log to privileged-audit-<UTC time>.jsonl and start a linked new one.
    Rotate(RotateArgs),
}

/// `--log PATH`, shared by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct LogArg {
    /// The audit log (default: the system broker's /var/log/occ/privileged-audit.jsonl where
    /// system mode is installed and OCC_HOME is not set, else
    /// $OCC_HOME/security/privileged-audit.jsonl).
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,
}

impl LogArg {
    fn path(&self) -> PathBuf {
        self.log.clone().unwrap_or_else(|| {
            let own_home = std::env::var_os("OCC_HOME").is_some_and(|h| !h.is_empty());
            if !own_home && crate::layout::Layout::system_selected() {
                crate::layout::Layout::system().audit_log
            } else {
                paths::audit_log()
            }
        })
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The verification key k_0 (64 hex digits) printed by `occ audit init --seal`.
    #[arg(long, value_name = "HEX", conflicts_with = "key_file")]
    pub key: Option<String>,
    /// A file holding k_0 as hex.
    #[arg(long, value_name = "F")]
    pub key_file: Option<PathBuf>,
    /// A head checkpoint to check the last record against (default with no FILE: the log's
    /// own audit-head.json).
    #[arg(long, value_name = "F")]
    pub head: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArg,
    /// Log files to verify as one chain, oldest first (default: the log).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Print the matching lines as they are stored (JSONL).
    #[arg(long)]
    pub json: bool,
    /// Only events since a duration ago (10m, 2h, 1day) or an RFC 3339 time.
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// Only events of this event_type.
    #[arg(long, value_name = "T")]
    pub event_type: Option<String>,
    /// Only events whose session_id (or occ_session_id) is ID.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Only the newest N matching events.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub log: LogArg,
}

#[derive(Args, Debug)]
pub struct TailArgs {
    /// Keep printing events as they are appended (follows rotation).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the last events to print first.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
    pub lines: usize,
    /// Print lines as stored (JSONL).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArg,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Start sealing: print the verification key k_0 once, and seal every later event.
    #[arg(long)]
    pub seal: bool,
    /// Print one JSON object instead of text (with --seal it carries the key as `k0`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArg,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArg,
}

/// Runs `occ audit`; returns the exit code.
pub fn run(args: AuditArgs) -> i32 {
    let (name, res) = match args.command {
        AuditCommand::Verify(a) => ("verify", verify(a)),
        AuditCommand::Show(a) => ("show", show(a)),
        AuditCommand::Tail(a) => ("tail", tail(a)),
        AuditCommand::Init(a) => ("init", init(a)),
        AuditCommand::Rotate(a) => ("rotate", rotate(a)),
    };
    match res {
        Ok(code) => code,
        Err(Failure::Pipe) => 0,
        Err(Failure::Msg(m)) => {
            eprintln!("occ audit {name}: {m}");
            2
        }
    }
}

/// Why a command stopped early: a message (exit 2), or a closed stdout (exit quietly).
enum Failure {
    Msg(String),
    Pipe,
}

impl From<AuditError> for Failure {
    fn from(e: AuditError) -> Self {
        Failure::Msg(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Pipe
        } else {
            Failure::Msg(format!("cannot write output: {e}"))
        }
    }
}

type Res = Result<i32, Failure>;

fn msg(s: impl Into<String>) -> Failure {
    Failure::Msg(s.into())
}

// ---------------------------------------------------------------- verify

fn read_key(a: &VerifyArgs) -> Result<Option<SealKey>, Failure> {
    if let Some(hex) = &a.key {
        return SealKey::from_hex(hex)
            .map(Some)
            .map_err(|e| msg(format!("--key: {e}")));
    }
    if let Some(f) = &a.key_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| msg(format!("--key-file {}: {e}", f.display())))?;
        return SealKey::from_hex(&text)
            .map(Some)
            .map_err(|e| msg(format!("--key-file {}: {e}", f.display())));
    }
    Ok(None)
}

fn verify(a: VerifyArgs) -> Res {
    let key = read_key(&a)?;
    let default_mode = a.files.is_empty();
    let files = if default_mode {
        vec![a.log.path()]
    } else {
        a.files.clone()
    };
    let head_path = match (&a.head, default_mode) {
        (Some(h), _) => Some(h.clone()),
        (None, true) => Some(paths::head_for(&files[0])),
        (None, false) => None,
    };
    let mut missing_head = None;
    let head = match &head_path {
        Some(p) => match Head::read(p)? {
            Some(h) => Some(h),
            None if a.head.is_some() => {
                return Err(msg(format!(
                    "--head {}: no such file. Fix: pass the audit-head.json occ wrote",
                    p.display()
                )))
            }
            None => {
                missing_head = Some(p.clone());
                None
            }
        },
        None => None,
    };
    for f in &files {
        if let Err(e) = std::fs::symlink_metadata(f) {
            return Err(msg(if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{}: no such file. Fix: check the path, or run `occ audit init` to create \
                     the log",
                    f.display()
                )
            } else {
                format!("{}: {e}", f.display())
            }));
        }
    }
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = (std::io::stderr().is_terminal() && total >= 64 << 20).then(|| {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "verifying {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let opts = VerifyOptions {
        key,
        head,
        ..VerifyOptions::default()
    };
    let mut progress = |n: u64| {
        if let Some(pb) = &bar {
            pb.set_position(n);
        }
    };
    let mut report = occ_audit::verify_files(&files, opts, &mut progress)?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    if let Some(p) = missing_head {
        if report.events > 0 {
            report.breaks_total += 1;
            report.breaks.push(occ_audit::Break {
                file: p.clone(),
                line: 0,
                seq: None,
                reason: occ_audit::Reason::BehindHeadCheckpoint,
                detail: format!(
                    "{} is missing, so a cut tail cannot be ruled out (occ writes it with every \
                     event)",
                    p.display()
                ),
            });
        }
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", report_json(&report))?;
    } else {
        print_report(&mut out, &report)?;
    }
    Ok(if report.intact() { 0 } else { 1 })
}

fn report_json(r: &Report) -> serde_json::Value {
    let breaks: Vec<serde_json::Value> = r
        .breaks
        .iter()
        .map(|b| {
            serde_json::json!({
                "file": b.file.display().to_string(),
                "line": b.line,
                "seq": b.seq,
                "reason": b.reason.as_str(),
                "detail": b.detail,
            })
        })
        .collect();
    let mut v = serde_json::json!({
        "intact": r.intact(),
        "files": r.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "events": r.events,
        "first_timestamp": r.first_timestamp,
        "last_timestamp": r.last_timestamp,
        "breaks": breaks,
    });
    let omitted = r.breaks_total - r.breaks.len() as u64;
    if omitted > 0 {
        if let Some(o) = v.as_object_mut() {
            o.insert("breaks_omitted".into(), omitted.into());
        }
    }
    v
}

fn print_report(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    for b in &r.breaks {
        let seq = b.seq.map_or("-".to_owned(), |s| s.to_string());
        writeln!(
            out,
            "{}:{}: seq {}: {}: {}",
            b.file.display(),
            b.line,
            seq,
            b.reason,
            escape(b.detail.as_bytes())
        )?;
    }
    let omitted = r.breaks_total - r.breaks.len() as u64;
    if omitted > 0 {
        writeln!(out, "… and {omitted} more breaks")?;
    }
    let nfiles = r.files.len();
    let span = match (&r.first_timestamp, &r.last_timestamp) {
        (Some(f), Some(l)) => format!(", {} to {}", escape(f.as_bytes()), escape(l.as_bytes())),
        _ => String::new(),
    };
    let plural = |n: u64, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if r.intact() {
        writeln!(
            out,
            "intact: {} in {}{span}",
            plural(r.events, "event"),
            plural(nfiles as u64, "file")
        )
    } else {
        writeln!(
            out,
            "BROKEN: {} in {} ({}{span})",
            plural(r.breaks_total, "break"),
            plural(nfiles as u64, "file"),
            plural(r.events, "event")
        )
    }
}

// ---------------------------------------------------------------- show / tail

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

fn show(a: ShowArgs) -> Res {
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

fn tail(a: TailArgs) -> Res {
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

// ---------------------------------------------------------------- init / rotate

fn init_fields(sealed: bool) -> BTreeMap<String, Value> {
    let mut f = BTreeMap::new();
    f.insert(
        "occ_version".to_owned(),
        Value::from(env!("CARGO_PKG_VERSION")),
    );
    f.insert("sealed".to_owned(), Value::Bool(sealed));
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.as_raw().to_string(), |u| u.name);
    f.insert("submituser".to_owned(), Value::Str(name));
    f.insert("submituid".to_owned(), Value::Int(i64::from(uid.as_raw())));
    f
}

fn init(a: InitArgs) -> Res {
    let path = a.log.path();
    let mut w = Writer::open(&path, Options::default())?;
    let mut out = std::io::stdout().lock();
    if a.seal {
        let (k0, ev) = w.start_sealing("log_initialized", init_fields(true))?;
        eprintln!(
            "occ audit init: sealing {} from seq {}. Store this verification key k_0 away \
             from this host; it is shown only once. Verify with `occ audit verify --key-file \
             FILE`.",
            path.display(),
            ev.seq
        );
        if a.json {
            let v = serde_json::json!({"log": path.display().to_string(), "sealed_from_seq": ev.seq, "k0": k0.to_hex()});
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{}", k0.to_hex())?;
        }
        return Ok(0);
    }
    if let Some(seq) = w.last_seq()? {
        if a.json {
            let v = serde_json::json!({"log": path.display().to_string(), "initialised": false, "events": seq + 1});
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{} is already initialised ({} events); nothing to do",
                path.display(),
                seq + 1
            )?;
        }
        return Ok(0);
    }
    let ev = w.append("log_initialized", init_fields(false))?;
    if a.json {
        let v = serde_json::json!({"log": path.display().to_string(), "initialised": true, "seq": ev.seq, "chain_hash": ev.chain_hash});
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "initialised {} (seq {}, chain_hash {})",
            path.display(),
            ev.seq,
            ev.chain_hash
        )?;
    }
    Ok(0)
}

fn rotate(a: RotateArgs) -> Res {
    let path = a.log.path();
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(msg(format!(
            "{}: no such file. Fix: run `occ audit init` first",
            path.display()
        )));
    }
    let mut w = Writer::open(&path, Options::default())?;
    let r = w.rotate()?;
    if a.json {
        let v = serde_json::json!({
            "log": path.display().to_string(),
            "archive": r.archive.display().to_string(),
            "genesis_seq": r.genesis.seq,
        });
        writeln!(std::io::stdout().lock(), "{v}")?;
        return Ok(0);
    }
    writeln!(
        std::io::stdout().lock(),
        "rotated: {} -> {}; {} continues at seq {}",
        path.display(),
        r.archive.display(),
        path.display(),
        r.genesis.seq
    )?;
    Ok(0)
}
