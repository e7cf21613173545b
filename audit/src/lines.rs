//! Streaming line reader for logs of any size: fixed buffer, lines capped at
//! [`MAX_LINE`](crate::MAX_LINE). It must never hold more than one buffer of a file in memory,
//! whatever the file holds (a 100 MB line, binary garbage, no newline at all).

use std::io::{self, Read};

use crate::MAX_LINE;

const BUF: usize = 4 << 20;

/// One line as the reader saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A newline-terminated line, without its newline.
    Complete(&'a [u8]),
    /// A newline-terminated line longer than `MAX_LINE` bytes; its bytes were skipped.
    TooLong { len: u64 },
    /// Bytes at the end of the input with no newline after them.
    Torn { len: u64 },
}

/// Reads lines from `R` with a fixed 4 MiB buffer.
pub struct LineReader<R> {
    r: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes consumed so far (the offset of the next line).
    pub offset: u64,
    /// Bytes read from the source so far (for progress).
    pub read_bytes: u64,
}

impl<R: Read> LineReader<R> {
    pub fn new(r: R) -> Self {
        LineReader {
            r,
            buf: vec![0; BUF],
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
            read_bytes: 0,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end < self.buf.len() {
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.end += n;
                    self.read_bytes += n as u64;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next line, or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        let mut searched = 0;
        loop {
            let window = &self.buf[self.start + searched..self.end];
            if let Some(pos) = memchr::memchr(b'\n', window) {
                let s = self.start;
                let e = self.start + searched + pos;
                self.start = e + 1;
                self.offset += (e + 1 - s) as u64;
                return Ok(Some(Line::Complete(&self.buf[s..e])));
            }
            searched = self.end - self.start;
            if searched > MAX_LINE {
                return self.skip_long().map(Some);
            }
            if self.eof {
                if searched == 0 {
                    return Ok(None);
                }
                let len = searched as u64;
                self.offset += len;
                self.start = self.end;
                return Ok(Some(Line::Torn { len }));
            }
            self.fill()?;
        }
    }

    /// Skips the rest of an over-long line, counting its bytes.
    fn skip_long(&mut self) -> io::Result<Line<'static>> {
        let mut len: u64 = 0;
        loop {
            let window = &self.buf[self.start..self.end];
            if let Some(pos) = memchr::memchr(b'\n', window) {
                len += pos as u64;
                self.start += pos + 1;
                self.offset += len + 1;
                return Ok(Line::TooLong { len });
            }
            len += window.len() as u64;
            self.start = self.end;
            if self.eof {
                self.offset += len;
                return Ok(Line::Torn { len });
            }
            self.fill()?;
        }
    }
}

/// The length of `file`'s newline-terminated part: the offset just after its last `\n`
/// (0 when there is none).
pub fn complete_len(file: &std::fs::File, len: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 << 10];
    let mut hi = len;
    while hi > 0 {
        let lo = hi.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(hi - lo) as usize];
        file.read_exact_at(chunk, lo)?;
        if let Some(p) = memchr::memrchr(b'\n', chunk) {
            return Ok(lo + p as u64 + 1);
        }
        hi = lo;
    }
    Ok(0)
}

/// The offset at which the last `n` newline-terminated lines of `file` (of length `len`)
/// begin; a torn tail after them is not counted. Reads backwards in 64 KiB chunks.
pub fn last_lines_offset(file: &std::fs::File, len: u64, n: usize) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 << 10];
    let mut hi = len;
    let mut seen = 0usize;
    let mut first = true;
    while hi > 0 {
        let lo = hi.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(hi - lo) as usize];
        file.read_exact_at(chunk, lo)?;
        let mut end = chunk.len();
        if first {
            // The newline that ends the last line is not a line start.
            first = false;
            if let Some(p) = memchr::memrchr(b'\n', chunk) {
                end = p;
            } else {
                hi = lo;
                continue;
            }
        }
        while let Some(p) = memchr::memrchr(b'\n', &chunk[..end]) {
            seen += 1;
            if seen == n {
                return Ok(lo + p as u64 + 1);
            }
            end = p;
        }
        hi = lo;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<String> {
        let mut r = LineReader::new(input);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().expect("read") {
            out.push(match l {
                Line::Complete(b) => format!("C:{}", String::from_utf8_lossy(b)),
                Line::TooLong { len } => format!("L:{len}"),
                Line::Torn { len } => format!("T:{len}"),
            });
        }
        out
    }

    #[test]
    fn last_lines_offset_counts_from_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        std::fs::write(&p, b"a\nbb\nccc\ntorn").expect("write");
        let f = std::fs::File::open(&p).expect("open");
        let len = f.metadata().expect("stat").len();
        assert_eq!(last_lines_offset(&f, len, 1).expect("read"), 5);
        assert_eq!(last_lines_offset(&f, len, 2).expect("read"), 2);
        assert_eq!(last_lines_offset(&f, len, 3).expect("read"), 0);
        assert_eq!(last_lines_offset(&f, len, 9).expect("read"), 0);
    }

    #[test]
    fn splits_lines_and_reports_torn_tail() {
        assert_eq!(all(b"a\nbc\n\nd"), ["C:a", "C:bc", "C:", "T:1"]);
        assert!(all(b"").is_empty());
    }

    #[test]
    fn over_long_lines_are_skipped_not_buffered() {
        let mut v = vec![b'x'; MAX_LINE * 9];
        v.extend_from_slice(b"\nok\n");
        v.extend(std::iter::repeat_n(b'y', MAX_LINE + 10));
        assert_eq!(
            all(&v),
            [
                format!("L:{}", MAX_LINE * 9),
                "C:ok".into(),
                format!("T:{}", MAX_LINE + 10)
            ]
        );
    }
}
