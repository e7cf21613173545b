//! Canonical JSON: the exact bytes Python's `json.dumps(v, sort_keys=True)` prints. It owns the
//! small [`Value`] type the writer serialises and the byte-level [`Checker`] the verifier runs on
//! every line. The checker must never build a tree or allocate per line: it walks the bytes once.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Deepest nesting the checker follows; deeper lines are reported instead of overflowing the
/// stack (Python's own decoder gives up at a similar depth).
pub const MAX_DEPTH: usize = 512;

/// A JSON value restricted to what the audit log may hold: integers only, never floats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Value>),
    /// Keys are kept sorted; UTF-8 byte order is code point order, which is Python's order.
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// The canonical bytes of this value (no trailing newline).
    pub fn to_canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_canonical(&mut out);
        out
    }

    /// Appends the canonical bytes of this value to `out`.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Str(s) => write_str(s, out),
            Value::Array(items) => {
                out.push(b'[');
                for (n, v) in items.iter().enumerate() {
                    if n > 0 {
                        out.extend_from_slice(b", ");
                    }
                    v.write_canonical(out);
                }
                out.push(b']');
            }
            Value::Object(map) => write_object(map.iter(), out),
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Writes `{"k": v, …}` for members already in sorted order.
pub fn write_object<'a>(members: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (n, (k, v)) in members.enumerate() {
        if n > 0 {
            out.extend_from_slice(b", ");
        }
        write_str(k, out);
        out.extend_from_slice(b": ");
        v.write_canonical(out);
    }
    out.push(b'}');
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i.into())
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::Int(i.into())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Null, Into::into)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_u16_escape(cu: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\\u");
    for shift in [12u32, 8, 4, 0] {
        out.push(HEX[((cu >> shift) & 0xf) as usize]);
    }
}

/// Writes a JSON string the way Python's `ensure_ascii=True` encoder does.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        let short = match b {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            _ => None,
        };
        if let Some(c) = short {
            out.push(b'\\');
            out.push(c);
            i += 1;
        } else if b < 0x80 {
            push_u16_escape(u32::from(b), out);
            i += 1;
        } else {
            // A non-ASCII character: decode it from the (valid) str and escape its UTF-16 units.
            let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
            let cp = ch as u32;
            if cp > 0xffff {
                let v = cp - 0x1_0000;
                push_u16_escape(0xd800 + (v >> 10), out);
                push_u16_escape(0xdc00 + (v & 0x3ff), out);
            } else {
                push_u16_escape(cp, out);
            }
            i += ch.len_utf8();
        }
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// A byte range `start..end` within one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// One top-level member of a line's object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The key's raw bytes between its quotes (still escaped).
    pub key: Span,
    /// The value's raw bytes.
    pub value: Span,
}

impl Member {
    /// From the key's opening quote to the value's last byte.
    pub fn whole(&self) -> Span {
        Span {
            start: self.key.start - 1,
            end: self.value.end,
        }
    }
}

/// Why a line is not a canonical record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// The bytes are not JSON at all (or not UTF-8).
    Invalid(String),
    /// Valid JSON, but not the canonical bytes. `members` were salvaged by the lenient parser.
    NotCanonical(String),
}

/// A top-level field value, read without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Null,
    /// The raw contents between the quotes (escapes not decoded).
    Str(&'a [u8]),
    /// The digits, with an optional leading `-`.
    Int(&'a [u8]),
    /// true, false, an array or an object.
    Other,
}

impl<'a> Field<'a> {
    /// Classifies raw value bytes.
    pub fn of(raw: &'a [u8]) -> Field<'a> {
        match raw.first() {
            Some(b'n') => Field::Null,
            Some(b'"') if raw.len() >= 2 => Field::Str(&raw[1..raw.len() - 1]),
            Some(b'-' | b'0'..=b'9') if raw.iter().skip(1).all(u8::is_ascii_digit) => {
                Field::Int(raw)
            }
            _ => Field::Other,
        }
    }

    /// The value as a u64 if it is a non-negative integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        let Field::Int(d) = self else { return None };
        if d.is_empty() || d.len() > 20 {
            return None;
        }
        d.iter().try_fold(0u64, |acc, &c| {
            let digit = c.checked_sub(b'0').filter(|v| *v < 10)?;
            acc.checked_mul(10)?.checked_add(u64::from(digit))
        })
    }
}

/// A line that passed the canonical check: its bytes and its top-level members in order.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub line: &'a [u8],
    pub members: &'a [Member],
}

impl<'a> Record<'a> {
    /// The index of the top-level member named `key` (plain ASCII keys only).
    pub fn find(&self, key: &str) -> Option<usize> {
        let k = key.as_bytes();
        self.members
            .iter()
            .rposition(|m| &self.line[m.key.start..m.key.end] == k)
    }

    /// The raw bytes of the value named `key`.
    pub fn raw(&self, key: &str) -> Option<&'a [u8]> {
        let m = self.members.get(self.find(key)?)?;
        Some(&self.line[m.value.start..m.value.end])
    }

    /// The value named `key`, classified.
    pub fn field(&self, key: &str) -> Option<Field<'a>> {
        self.raw(key).map(Field::of)
    }

    /// Feeds `sink` the canonical bytes of this object with the members at `drop` removed,
    /// as a few slices of the line itself (no copy). `drop` must be sorted and in range.
    pub fn pieces_without(&self, drop: &[usize], mut sink: impl FnMut(&[u8])) {
        let line = self.line;
        let kept_first = (0..self.members.len()).find(|i| !drop.contains(i));
        let Some(first) = kept_first else {
            sink(b"{}");
            return;
        };
        // `{` then everything from the first kept member, skipping each later dropped member
        // together with the `, ` before it.
        let mut pos = self.members[first].whole().start;
        sink(b"{");
        for &d in drop.iter().filter(|&&d| d > first) {
            let cut = self.members[d].whole();
            sink(&line[pos..cut.start - 2]);
            pos = cut.end;
        }
        sink(&line[pos..]);
    }
}

/// The canonical bytes of a record without some members, as `open` then ranges of its line:
/// what [`Record::pieces_without`] feeds, kept to be fed later (the verifier's main thread
/// computes a seal from a line a worker thread parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pieces {
    /// `{`, or `{}` when every member was dropped.
    pub open: &'static [u8],
    spans: [Span; 3],
    n: usize,
}

impl Pieces {
    /// Feeds `sink` the bytes, taking the ranges from `line` (the record's line, or a buffer
    /// that holds it at the same offsets the ranges were taken at).
    pub fn feed(&self, line: &[u8], mut sink: impl FnMut(&[u8])) {
        sink(self.open);
        for s in &self.spans[..self.n] {
            sink(&line[s.start..s.end]);
        }
    }

    /// The same pieces for a line that sits at `base` in a larger buffer.
    pub fn shifted(mut self, base: usize) -> Pieces {
        for s in &mut self.spans[..self.n] {
            s.start += base;
            s.end += base;
        }
        self
    }
}

impl Record<'_> {
    /// [`pieces_without`](Self::pieces_without) as ranges of the line, for at most two dropped
    /// members (`drop` sorted and in range; further entries are ignored).
    pub fn spans_without(&self, drop: &[usize]) -> Pieces {
        let mut out = Pieces {
            open: b"{}",
            spans: [Span::default(); 3],
            n: 0,
        };
        let drop = &drop[..drop.len().min(2)];
        let Some(first) = (0..self.members.len()).find(|i| !drop.contains(i)) else {
            return out;
        };
        out.open = b"{";
        let mut pos = self.members[first].whole().start;
        for &d in drop.iter().filter(|&&d| d > first) {
            let cut = self.members[d].whole();
            out.spans[out.n] = Span {
                start: pos,
                end: cut.start - 2,
            };
            out.n += 1;
            pos = cut.end;
        }
        out.spans[out.n] = Span {
            start: pos,
            end: self.line.len(),
        };
        out.n += 1;
        out
    }
}

/// Reusable canonical-form checker. Keeps one member list between lines so checking a line
/// allocates nothing once warmed up.
#[derive(Debug, Default)]
pub struct Checker {
    members: Vec<Member>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks that `line` (without its newline) is exactly canonical JSON and returns its
    /// top-level members. On failure tells invalid JSON from valid-but-not-canonical.
    pub fn check<'s, 'a>(&'s mut self, line: &'a [u8]) -> Result<Record<'a>, LineError>
    where
        's: 'a,
    {
        self.members.clear();
        let mut p = Strict {
            b: line,
            i: 0,
            members: &mut self.members,
        };
        match p.value(0).and_then(|()| p.end()) {
            Ok(()) => Ok(Record {
                line,
                members: &self.members,
            }),
            Err(at) => {
                self.members.clear();
                match lenient(line, &mut self.members) {
                    Ok(()) => Err(LineError::NotCanonical(format!(
                        "byte {}: {}",
                        at.pos + 1,
                        at.what
                    ))),
                    Err(e) => {
                        self.members.clear();
                        Err(LineError::Invalid(e))
                    }
                }
            }
        }
    }

    /// After a `NotCanonical` result: the top-level members the lenient parser found, so the
    /// verifier can still follow the chain through a reformatted line.
    pub fn salvaged<'s, 'a>(&'s self, line: &'a [u8]) -> Record<'a>
    where
        's: 'a,
    {
        Record {
            line,
            members: &self.members,
        }
    }
}

struct Dev {
    pos: usize,
    what: &'static str,
}

struct Strict<'a, 'm> {
    b: &'a [u8],
    i: usize,
    members: &'m mut Vec<Member>,
}

#[cfg(any(not(target_arch = "x86_64"), test))]
const LO: u64 = 0x0101_0101_0101_0101;
#[cfg(any(not(target_arch = "x86_64"), test))]
const HI: u64 = 0x8080_8080_8080_8080;

#[cfg(not(target_arch = "x86_64"))]
use plain_prefix_portable as plain_prefix;

/// Marks (high bit per byte) the bytes of `x` that end a plain run: `"`, `\`, below 0x20, or
/// 0x7f and above. Borrows can mark bytes *after* a real one, never before, so the lowest
/// mark is exact.
#[cfg(any(not(target_arch = "x86_64"), test))]
#[inline]
fn specials(x: u64) -> u64 {
    let q = x ^ (LO * u64::from(b'"'));
    let bs = x ^ (LO * u64::from(b'\\'));
    let quote = q.wrapping_sub(LO) & !q & HI;
    let backslash = bs.wrapping_sub(LO) & !bs & HI;
    let control = x.wrapping_sub(LO * 0x20) & !x & HI;
    let high = (x.wrapping_add(LO) | x) & HI;
    quote | backslash | control | high
}

/// Length of the leading run of bytes a canonical string holds as they are (printable ASCII
/// other than `"` and `\\`). Sixteen bytes at a time with SSE2 (in every x86_64 CPU): one
/// compare per kind of special byte, a movemask, and the lowest marked byte ends the run. The
/// bytes past the last whole 16 go one at a time; `s` is the rest of the line, so that is only
/// its last few bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
fn plain_prefix(s: &[u8]) -> usize {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i, m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let is = |v: m128i, c: u8| cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(c as i8));
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 16) {
        let mut w = [0u8; 16];
        w.copy_from_slice(chunk);
        let v = m128i::from(w);
        // Signed: below 0x20, and 0x80 and above (negative), in one compare.
        let control_or_high = cmp_lt_mask_i8_m128i(v, set_splat_i8_m128i(0x20));
        let special = bitor_m128i(
            bitor_m128i(is(v, b'"'), is(v, b'\\')),
            bitor_m128i(control_or_high, is(v, 0x7f)),
        );
        let m = move_mask_i8_m128i(special);
        if m != 0 {
            return i + m.trailing_zeros() as usize;
        }
        i += 16;
    }
    i + plain_prefix_bytewise(&s[i..])
}

/// [`plain_prefix`] without SIMD: the first 16 bytes eight at a time (keys and most values end
/// there); past them, `memchr2` finds the next quote or backslash and one branch-free pass
/// checks the bytes before it.
#[cfg(any(not(target_arch = "x86_64"), test))]
#[inline]
fn plain_prefix_portable(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let m = specials(u64::from_le_bytes(w));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
        if i == 16 {
            return i + long_plain_prefix(&s[i..]);
        }
    }
    i + plain_prefix_bytewise(&s[i..])
}

fn plain_prefix_bytewise(s: &[u8]) -> usize {
    s.iter()
        .position(|&c| !(0x20..0x7f).contains(&c) || c == b'"' || c == b'\\')
        .unwrap_or(s.len())
}

#[cfg(any(not(target_arch = "x86_64"), test))]
fn long_plain_prefix(s: &[u8]) -> usize {
    let end = memchr::memchr2(b'"', b'\\', s).unwrap_or(s.len());
    let run = &s[..end];
    let odd = run
        .iter()
        .fold(0u8, |acc, &c| acc | u8::from(!(0x20..0x7f).contains(&c)));
    if odd == 0 {
        end
    } else {
        plain_prefix_bytewise(run)
    }
}

fn hex4_lower(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(..4)? {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = v << 4 | u32::from(d);
    }
    Some(v)
}

fn hex4_any(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(..4)? {
        v = v << 4 | (c as char).to_digit(16)?;
    }
    Some(v)
}

impl Strict<'_, '_> {
    fn dev(&self, what: &'static str) -> Dev {
        Dev { pos: self.i, what }
    }

    fn end(&self) -> Result<(), Dev> {
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(self.dev("unexpected bytes after the value"))
        }
    }

    fn lit(&mut self, word: &[u8]) -> Result<(), Dev> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.dev("not a literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), Dev> {
        if depth > MAX_DEPTH {
            return Err(self.dev("nested too deeply"));
        }
        match self.b.get(self.i) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.lit(b"true"),
            Some(b'f') => self.lit(b"false"),
            Some(b'n') => self.lit(b"null"),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            _ => Err(self.dev("expected a value")),
        }
    }

    fn integer(&mut self) -> Result<(), Dev> {
        let start = self.i;
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while matches!(self.b.get(self.i), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return Err(self.dev("expected a digit")),
        }
        if &self.b[start..self.i] == b"-0" {
            return Err(Dev {
                pos: start,
                what: "-0 is written 0",
            });
        }
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return Err(self.dev("floats are not allowed"));
        }
        Ok(())
    }

    /// A canonical string; returns whether it holds escapes (keys without escapes compare as
    /// plain bytes).
    fn string(&mut self) -> Result<bool, Dev> {
        let b = self.b;
        self.i += 1;
        let mut escaped = false;
        loop {
            self.i += plain_prefix(&b[self.i..]);
            match b.get(self.i) {
                None => return Err(self.dev("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(_) => return Err(self.dev("character that must be escaped")),
            }
        }
    }

    fn escape(&mut self) -> Result<(), Dev> {
        let b = self.b;
        match b.get(self.i + 1) {
            Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 2;
                Ok(())
            }
            Some(b'u') => {
                let cp = hex4_lower(&b[self.i + 2..])
                    .ok_or_else(|| self.dev("\\u needs four lowercase hex digits"))?;
                let needs = match cp {
                    0x08 | 0x09 | 0x0a | 0x0c | 0x0d => false,
                    0..=0x1f | 0x7f => true,
                    0x20..=0x7e => false,
                    _ => true,
                };
                if !needs {
                    return Err(self.dev("character escaped that must be written plainly"));
                }
                self.i += 6;
                if (0xd800..0xdc00).contains(&cp) && b[self.i..].starts_with(b"\\u") {
                    if let Some(lo) = hex4_any(&b[self.i + 2..]) {
                        if (0xdc00..0xe000).contains(&lo) {
                            if hex4_lower(&b[self.i + 2..]).is_none() {
                                return Err(self.dev("\\u needs four lowercase hex digits"));
                            }
                            self.i += 6;
                        }
                    }
                }
                Ok(())
            }
            _ => Err(self.dev("escape that Python does not write")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Dev> {
        self.i += 1;
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            match self.b.get(self.i) {
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b',') if self.b.get(self.i + 1) == Some(&b' ') => self.i += 2,
                _ => return Err(self.dev("expected \", \" or \"]\"")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), Dev> {
        self.i += 1;
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut prev: Option<(Span, bool)> = None;
        loop {
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.dev("expected a key"));
            }
            let key_start = self.i + 1;
            let escaped = self.string()?;
            let key = Span {
                start: key_start,
                end: self.i - 1,
            };
            if let Some((p, p_escaped)) = prev {
                let (a, b) = (&self.b[p.start..p.end], &self.b[key.start..key.end]);
                let order = if escaped || p_escaped {
                    key_cmp(a, b)
                } else {
                    short_cmp(a, b)
                };
                if order != Ordering::Less {
                    return Err(Dev {
                        pos: key_start - 1,
                        what: "keys not sorted, or a duplicate key",
                    });
                }
            }
            prev = Some((key, escaped));
            if !self.b[self.i..].starts_with(b": ") {
                return Err(self.dev("expected \": \""));
            }
            self.i += 2;
            let vstart = self.i;
            self.value(depth + 1)?;
            if depth == 0 {
                self.members.push(Member {
                    key,
                    value: Span {
                        start: vstart,
                        end: self.i,
                    },
                });
            }
            match self.b.get(self.i) {
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b',') if self.b.get(self.i + 1) == Some(&b' ') => self.i += 2,
                _ => return Err(self.dev("expected \", \" or \"}\"")),
            }
        }
    }
}

/// Byte order of two short keys. Keys differ within their first bytes, where a plain loop is
/// cheaper than a `memcmp` call.
#[inline]
fn short_cmp(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Compares two canonical (escaped) key strings by the code points they stand for, which is
/// the order Python's `sort_keys` uses.
pub fn key_cmp(a: &[u8], b: &[u8]) -> Ordering {
    if !a.contains(&b'\\') && !b.contains(&b'\\') {
        return a.cmp(b);
    }
    CodePoints { s: a, i: 0 }.cmp(CodePoints { s: b, i: 0 })
}

/// Code points of an escaped JSON string's contents (surrogate pairs joined, lone surrogates
/// kept as themselves, like Python).
pub struct CodePoints<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> CodePoints<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Self { s, i: 0 }
    }
}

impl Iterator for CodePoints<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        let s = self.s;
        let c = *s.get(self.i)?;
        if c != b'\\' {
            // Raw bytes (non-ASCII only appears in non-canonical lines): decode UTF-8.
            if c < 0x80 {
                self.i += 1;
                return Some(u32::from(c));
            }
            let len = match c {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            let end = (self.i + len).min(s.len());
            let ch = std::str::from_utf8(&s[self.i..end])
                .ok()
                .and_then(|t| t.chars().next())
                .map_or(0xfffd, |ch| ch as u32);
            self.i = end;
            return Some(ch);
        }
        let e = *s.get(self.i + 1)?;
        self.i += 2;
        let cp = match e {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => 0x0a,
            b'r' => 0x0d,
            b't' => 0x09,
            b'u' => {
                let hi = hex4_any(s.get(self.i..)?)?;
                self.i += 4;
                if (0xd800..0xdc00).contains(&hi) && s[self.i..].starts_with(b"\\u") {
                    if let Some(lo) = hex4_any(&s[self.i + 2..]) {
                        if (0xdc00..0xe000).contains(&lo) {
                            self.i += 6;
                            return Some(0x1_0000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
                        }
                    }
                }
                hi
            }
            other => u32::from(other),
        };
        Some(cp)
    }
}

/// Decodes a JSON string's raw contents (between the quotes) into a Rust string; lone
/// surrogates become U+FFFD.
pub fn decode_str(raw: &[u8]) -> String {
    CodePoints::new(raw)
        .map(|c| char::from_u32(c).unwrap_or('\u{fffd}'))
        .collect()
}

/// Validates any RFC 8259 JSON text (whitespace allowed, floats allowed, duplicates allowed)
/// and records the top-level members of an object. Used only on the slow path, to tell
/// "not canonical" from "not JSON".
pub fn lenient(line: &[u8], members: &mut Vec<Member>) -> Result<(), String> {
    if let Err(e) = std::str::from_utf8(line) {
        return Err(format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1));
    }
    let mut p = Lenient { b: line, i: 0 };
    p.ws();
    p.value(0, Some(members))?;
    p.ws();
    if p.i != line.len() {
        return Err(p.err("unexpected bytes after the value"));
    }
    Ok(())
}

struct Lenient<'a> {
    b: &'a [u8],
    i: usize,
}

impl Lenient<'_> {
    fn err(&self, what: &str) -> String {
        if self.i >= self.b.len() {
            format!("unexpected end of line: {what}")
        } else {
            format!("byte {}: {what}", self.i + 1)
        }
    }

    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize, mut top: Option<&mut Vec<Member>>) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected a key"));
                    }
                    let ks = self.i + 1;
                    self.string()?;
                    let key = Span {
                        start: ks,
                        end: self.i - 1,
                    };
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.i += 1;
                    self.ws();
                    let vs = self.i;
                    self.value(depth + 1, None)?;
                    if let Some(m) = top.as_deref_mut() {
                        m.push(Member {
                            key,
                            value: Span {
                                start: vs,
                                end: self.i,
                            },
                        });
                    }
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.value(depth + 1, None)?;
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => self.string(),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a JSON value")),
        }
    }

    fn word(&mut self, w: &[u8]) -> Result<(), String> {
        if self.b[self.i..].starts_with(w) {
            self.i += w.len();
            Ok(())
        } else {
            Err(self.err("expected a JSON value"))
        }
    }

    fn digits(&mut self) -> usize {
        let s = self.i;
        while matches!(self.b.get(self.i), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - s
    }

    fn number(&mut self) -> Result<(), String> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after '.'"));
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected an exponent"));
            }
        }
        Ok(())
    }

    fn string(&mut self) -> Result<(), String> {
        self.i += 1;
        loop {
            match self.b.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => match self.b.get(self.i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                    Some(b'u') => {
                        if hex4_any(self.b.get(self.i + 2..).unwrap_or_default()).is_none() {
                            return Err(self.err("bad \\u escape"));
                        }
                        self.i += 6;
                    }
                    _ => return Err(self.err("bad escape")),
                },
                Some(&c) if c < 0x20 => return Err(self.err("raw control character in string")),
                Some(_) => self.i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str) -> Result<(), LineError> {
        Checker::new().check(line.as_bytes()).map(|_| ())
    }

    macro_rules! table {
        ($($name:ident: $line:expr => $want:pat,)*) => {$(
            #[test]
            fn $name() {
                let got = check($line);
                assert!(matches!(got, $want), "{:?} gave {:?}", $line, got);
            }
        )*};
    }

    table! {
        canonical_object: r#"{"a": 1, "b": [true, false, null], "c": {}}"# => Ok(()),
        big_int_is_canonical: r#"{"n": 123456789012345678901234567890}"# => Ok(()),
        negative_zero_not_canonical: r#"{"n": -0}"# => Err(LineError::NotCanonical(_)),
        float_not_canonical: r#"{"n": 1.5}"# => Err(LineError::NotCanonical(_)),
        compact_separators_not_canonical: r#"{"a":1}"# => Err(LineError::NotCanonical(_)),
        unsorted_not_canonical: r#"{"b": 1, "a": 2}"# => Err(LineError::NotCanonical(_)),
        duplicate_not_canonical: r#"{"a": 1, "a": 1}"# => Err(LineError::NotCanonical(_)),
        uppercase_hex_not_canonical: r#"{"a": "\u00E9"}"# => Err(LineError::NotCanonical(_)),
        needless_escape_not_canonical: r#"{"a": "\u0041"}"# => Err(LineError::NotCanonical(_)),
        slash_escape_not_canonical: r#"{"a": "\/"}"# => Err(LineError::NotCanonical(_)),
        raw_utf8_not_canonical: "{\"a\": \"\u{e9}\"}" => Err(LineError::NotCanonical(_)),
        raw_del_not_canonical: "{\"a\": \"\u{7f}\"}" => Err(LineError::NotCanonical(_)),
        lone_surrogate_canonical: r#"{"a": "\ud800"}"# => Ok(()),
        pair_canonical: r#"{"a": "\ud83d\ude00"}"# => Ok(()),
        raw_control_invalid: "{\"a\": \"\u{1}\"}" => Err(LineError::Invalid(_)),
        truncated_invalid: r#"{"a": 1"# => Err(LineError::Invalid(_)),
        garbage_invalid: "\u{0}\u{1}xyz" => Err(LineError::Invalid(_)),
        empty_invalid: "" => Err(LineError::Invalid(_)),
        trailing_invalid: r#"{"a": 1}x"# => Err(LineError::Invalid(_)),
        nan_invalid: r#"{"a": NaN}"# => Err(LineError::Invalid(_)),
    }

    type RunFinder = fn(&[u8]) -> usize;

    /// The run finder in use (SSE2 on x86_64) and the portable one, which must agree.
    const PREFIXES: [(&str, RunFinder); 2] = [
        ("plain_prefix", plain_prefix),
        ("plain_prefix_portable", plain_prefix_portable),
    ];

    #[test]
    fn plain_prefix_stops_at_every_special_byte() {
        for (name, plain_prefix) in PREFIXES {
            stops_at_every_special_byte(name, plain_prefix);
        }
    }

    fn stops_at_every_special_byte(name: &str, plain_prefix: RunFinder) {
        for special in
            (0u8..=255).filter(|c| !(0x20..0x7f).contains(c) || *c == b'"' || *c == b'\\')
        {
            for at in 0..20 {
                let mut s = vec![b'a'; 24];
                s[at] = special;
                assert_eq!(plain_prefix(&s), at, "{name}: byte {special:#x} at {at}");
            }
        }
        assert_eq!(plain_prefix(&[b'~'; 19]), 19, "{name}");
        assert_eq!(plain_prefix(&[b' '; 33]), 33, "{name}");
    }

    #[test]
    fn plain_prefix_finds_the_first_special_byte_in_long_runs() {
        for (name, plain_prefix) in PREFIXES {
            first_special_byte_in_long_runs(name, plain_prefix);
        }
    }

    fn first_special_byte_in_long_runs(name: &str, plain_prefix: RunFinder) {
        let specials: Vec<u8> = (0u8..=255)
            .filter(|c| !(0x20..0x7f).contains(c) || *c == b'"' || *c == b'\\')
            .collect();
        for len in [16, 17, 40, 64, 200] {
            assert_eq!(plain_prefix(&vec![b'~'; len]), len, "{name}");
            for at in 0..len {
                for &first in &specials {
                    // The first special byte ends the run, whatever follows it: a quote or
                    // backslash after a control byte, or a control byte after a quote.
                    for second in [b'"', b'\\', 0x01, 0xc3] {
                        let mut s = vec![b'a'; len + 3];
                        s[at] = first;
                        s[(at + 1 + at % 3).min(len + 2)] = second;
                        assert_eq!(
                            plain_prefix(&s),
                            at,
                            "{name}: {first:#x} at {at}, len {len}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn as_u64_takes_only_non_negative_integers_that_fit() {
        for (raw, want) in [
            ("0", Some(0)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("-1", None),
            ("123456789012345678901234", None),
        ] {
            assert_eq!(Field::of(raw.as_bytes()).as_u64(), want, "{raw}");
        }
        assert_eq!(Field::of(b"null").as_u64(), None);
    }

    #[test]
    fn invalid_utf8_is_invalid_json() {
        let got = Checker::new().check(b"{\"a\": \"\xff\"}").map(|_| ());
        assert!(
            matches!(got, Err(LineError::Invalid(ref d)) if d.contains("UTF-8")),
            "{got:?}"
        );
    }

    #[test]
    fn deep_nesting_is_reported_not_overflowed() {
        let s = "[".repeat(100_000);
        assert!(matches!(check(&s), Err(LineError::Invalid(_))));
    }

    #[test]
    fn keys_sort_by_code_point_not_by_escaped_bytes() {
        // 'a' (0x61) sorts before U+00E9 although '\\' (0x5c) < 'a'.
        assert!(check(r#"{"a": 1, "\u00e9": 2}"#).is_ok());
        assert!(check(r#"{"\u00e9": 2, "a": 1}"#).is_err());
        // U+FFFF sorts before U+1F600 (a surrogate pair).
        assert!(check(r#"{"\uffff": 1, "\ud83d\ude00": 2}"#).is_ok());
    }

    #[test]
    fn pieces_without_removes_members_textually() {
        let v = Value::Object(
            [("a", 1), ("b", 2), ("c", 3)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::Int(v)))
                .collect(),
        );
        let line = v.to_canonical();
        let mut c = Checker::new();
        let r = c.check(&line).expect("canonical");
        for (drop, want) in [
            (vec![0], r#"{"b": 2, "c": 3}"#),
            (vec![1], r#"{"a": 1, "c": 3}"#),
            (vec![2], r#"{"a": 1, "b": 2}"#),
            (vec![0, 1], r#"{"c": 3}"#),
            (vec![0, 2], r#"{"b": 2}"#),
            (vec![1, 2], r#"{"a": 1}"#),
            (vec![0, 1, 2], r#"{}"#),
        ] {
            let mut out = Vec::new();
            r.pieces_without(&drop, |p| out.extend_from_slice(p));
            assert_eq!(String::from_utf8_lossy(&out), want, "drop {drop:?}");
            if drop.len() <= 2 {
                // The same bytes as ranges, also from a buffer the line sits inside.
                let mut spans = Vec::new();
                r.spans_without(&drop)
                    .feed(&line, |p| spans.extend_from_slice(p));
                assert_eq!(String::from_utf8_lossy(&spans), want, "spans drop {drop:?}");
                let mut buf = b"xx\n".to_vec();
                buf.extend_from_slice(&line);
                let mut shifted = Vec::new();
                let p = r.spans_without(&drop).shifted(3);
                p.feed(&buf, |p| shifted.extend_from_slice(p));
                assert_eq!(shifted, spans, "shifted drop {drop:?}");
            }
        }
    }
}
