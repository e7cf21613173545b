//! What the verifier learns from one line alone: the canonical check, the chain hash
//! recomputed from the line's own bytes, and where the fields the link checks need sit. It runs
//! on the verifier's worker threads, so it must never depend on any other line (the links, seq,
//! seal ratchet and head are checked in order by `verify`).

use occ_base::hex;
use sha2::{Digest, Sha256};

use crate::canon::{Checker, Field, LineError, Pieces, Record, Span};
use crate::MAX_LINE;

/// One newline-terminated line, as a worker saw it. Spans are offsets in the batch buffer.
#[derive(Debug)]
pub(crate) enum Fact {
    /// Longer than `MAX_LINE`: skipped, never parsed.
    TooLong {
        len: u64,
    },
    /// Not JSON at all.
    Invalid(String),
    /// Valid JSON, but not its canonical bytes; the chain is still followed through it.
    NotCanonical {
        detail: String,
        seq: Option<u64>,
        /// The chain_hash string's 64 bytes, when they are lowercase hex digits.
        chain_hash: Option<Span>,
    },
    Canonical(Canonical),
}

/// A canonical record: everything the in-order checks need, without the line itself.
#[derive(Debug)]
pub(crate) struct Canonical {
    /// The whole line (without its newline).
    pub line: Span,
    pub seq: Option<u64>,
    /// The stored chain_hash's 64 bytes, when they are lowercase hex digits.
    pub chain_hash: Option<Span>,
    pub content: Content,
    pub prev_hash: PrevHash,
    /// Whether prev_hash names the line before, when that line is in the same batch and has
    /// a well-formed chain_hash (checked here, where both lines are still in this core's
    /// cache; the in-order thread checks the first line of a batch itself).
    pub links_back: bool,
    /// Boxed: most logs are unsealed, and a fact is kept small for the batch's sake.
    pub seal: Option<Box<Seal>>,
}

/// The stored chain hash against the line's own bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Content {
    /// Absent, or not 64 lowercase hex digits.
    NoHash,
    Matches,
    /// The hash of the line without chain_hash.
    Differs([u8; 32]),
}

/// The prev_hash member, as the link and genesis checks compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrevHash {
    Null,
    /// A string of exactly 64 bytes (compared with the previous chain_hash later).
    Str64(Span),
    /// Absent, or anything else.
    Other,
}

/// A seal member: the stored value and the bytes it must be the HMAC of. The HMAC itself is
/// computed in order, since its key ratchets once per sealed record.
#[derive(Debug)]
pub(crate) struct Seal {
    /// When it is 64 lowercase hex digits.
    pub stored: Option<Span>,
    /// The line without seal and chain_hash, at batch offsets.
    pub input: Pieces,
}

/// The field's bytes when they are exactly 64 lowercase hex digits.
pub(crate) fn lower_hex64(h: &[u8]) -> Option<[u8; 64]> {
    let arr: [u8; 64] = h.try_into().ok()?;
    let bad = arr.iter().fold(0u8, |acc, &c| {
        acc | u8::from(!(c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
    });
    (bad == 0).then_some(arr)
}

pub(crate) fn hash_field(f: Option<Field<'_>>) -> Option<[u8; 64]> {
    match f {
        Some(Field::Str(h)) => lower_hex64(h),
        _ => None,
    }
}

/// Positions of the top-level members verify needs, found in one pass.
#[derive(Default)]
struct Index {
    seq: Option<usize>,
    timestamp: Option<usize>,
    chain_hash: Option<usize>,
    prev_hash: Option<usize>,
    seal: Option<usize>,
}

impl Index {
    fn of(rec: &Record<'_>) -> Index {
        let mut ix = Index::default();
        for (i, m) in rec.members.iter().enumerate() {
            let k = &rec.line[m.key.start..m.key.end];
            // Dispatch on length first so each comparison is a fixed-size one.
            let slot = match k {
                [b's', b'e', b'q'] => &mut ix.seq,
                [b's', b'e', b'a', b'l'] => &mut ix.seal,
                [b't', b'i', b'm', b'e', b's', b't', b'a', b'm', b'p'] => &mut ix.timestamp,
                [b'p', b'r', b'e', b'v', b'_', b'h', b'a', b's', b'h'] => &mut ix.prev_hash,
                [b'c', b'h', b'a', b'i', b'n', b'_', b'h', b'a', b's', b'h'] => &mut ix.chain_hash,
                _ => continue,
            };
            *slot = Some(i);
        }
        ix
    }
}

/// What a batch's lines give: one fact per line, in order, and the timestamps of its first
/// and last records that carry one (string contents, at batch offsets).
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub lines: Vec<Fact>,
    pub first_timestamp: Option<Span>,
    pub last_timestamp: Option<Span>,
}

impl Facts {
    pub fn clear(&mut self) {
        self.lines.clear();
        self.first_timestamp = None;
        self.last_timestamp = None;
    }
}

/// Examines every line of `batch` (whole lines, each ending with `\n`) into `out`, in order.
pub(crate) fn examine_batch(checker: &mut Checker, batch: &[u8], out: &mut Facts) {
    let mut start = 0;
    // The chain_hash of the line before, when it has a well-formed one.
    let mut before: Option<Span> = None;
    for nl in memchr::memchr_iter(b'\n', batch) {
        let line = &batch[start..nl];
        let (mut fact, timestamp) = if line.len() > MAX_LINE {
            let len = line.len() as u64;
            (Fact::TooLong { len }, None)
        } else {
            examine(checker, line, start)
        };
        if timestamp.is_some() {
            out.first_timestamp = out.first_timestamp.or(timestamp);
            out.last_timestamp = timestamp;
        }
        before = match &mut fact {
            Fact::Canonical(c) => {
                let at = |s: Span| &batch[s.start..s.end];
                c.links_back = match (c.prev_hash, before) {
                    (PrevHash::Str64(p), Some(h)) => at(p) == at(h),
                    _ => false,
                };
                c.chain_hash
            }
            Fact::NotCanonical { chain_hash, .. } => *chain_hash,
            Fact::TooLong { .. } | Fact::Invalid(_) => None,
        };
        out.lines.push(fact);
        start = nl + 1;
    }
}

/// Examines one line that sits at `base` in its batch; also gives its timestamp's span when it
/// is a canonical record with a string timestamp.
fn examine(checker: &mut Checker, line: &[u8], base: usize) -> (Fact, Option<Span>) {
    let fact = match checker.check(line) {
        Ok(rec) => {
            let (c, timestamp) = canonical(&rec, base);
            return (Fact::Canonical(c), timestamp);
        }
        Err(LineError::Invalid(d)) => Fact::Invalid(d),
        Err(LineError::NotCanonical(detail)) => {
            let rec = checker.salvaged(line);
            let chain_hash = rec.find("chain_hash").and_then(|i| {
                let v = rec.members[i].value;
                match Field::of(&line[v.start..v.end]) {
                    Field::Str(h) if lower_hex64(h).is_some() => Some(inner(v, base)),
                    _ => None,
                }
            });
            Fact::NotCanonical {
                detail,
                seq: rec.field("seq").and_then(|f| f.as_u64()),
                chain_hash,
            }
        }
    };
    (fact, None)
}

/// A string value's contents (without its quotes), at batch offsets.
fn inner(v: Span, base: usize) -> Span {
    Span {
        start: base + v.start + 1,
        end: base + v.end - 1,
    }
}

fn canonical(rec: &Record<'_>, base: usize) -> (Canonical, Option<Span>) {
    let ix = Index::of(rec);
    let raw = |i: Option<usize>| {
        i.map(|i| {
            let m = rec.members[i];
            (m.value, Field::of(&rec.line[m.value.start..m.value.end]))
        })
    };
    let seq = raw(ix.seq).and_then(|(_, f)| f.as_u64());
    let timestamp = match raw(ix.timestamp) {
        // The string's contents, without its quotes.
        Some((v, Field::Str(_))) => Some(inner(v, base)),
        _ => None,
    };
    // A string value's contents, at batch offsets, when it is 64 lowercase hex digits.
    let hex64 = |i: Option<usize>| match raw(i) {
        Some((v, Field::Str(h))) if lower_hex64(h).is_some() => Some(inner(v, base)),
        _ => None,
    };
    let chain_hash = hex64(ix.chain_hash);
    let content = match (ix.chain_hash, chain_hash) {
        (Some(i), Some(want)) => {
            let mut h = Sha256::new();
            rec.pieces_without(&[i], |p| h.update(p));
            let got: [u8; 32] = h.finalize().into();
            let want = &rec.line[want.start - base..want.end - base];
            if hex::encode32(&got)[..] == *want {
                Content::Matches
            } else {
                Content::Differs(got)
            }
        }
        _ => Content::NoHash,
    };
    let prev_hash = match raw(ix.prev_hash) {
        Some((_, Field::Null)) => PrevHash::Null,
        Some((v, Field::Str(s))) if s.len() == 64 => PrevHash::Str64(inner(v, base)),
        _ => PrevHash::Other,
    };
    let seal = ix.seal.map(|si| {
        let mut drop = [si, ix.chain_hash.unwrap_or(usize::MAX)];
        drop.sort_unstable();
        let drop: &[usize] = if drop[1] == usize::MAX {
            &drop[..1]
        } else {
            &drop
        };
        Box::new(Seal {
            stored: hex64(Some(si)),
            input: rec.spans_without(drop).shifted(base),
        })
    });
    let c = Canonical {
        line: Span {
            start: base,
            end: base + rec.line.len(),
        },
        seq,
        chain_hash,
        content,
        prev_hash,
        links_back: false,
        seal,
    };
    (c, timestamp)
}
