//! Encoding and strict decoding of frames to and from bytes. Pure functions over buffers: no
//! I/O here, so the fuzz target and the tests can drive them directly.

use crate::error::Error;
use crate::frame::{
    valid_id, valid_reason_code, valid_time, ExitReport, Frame, FrameType, Output, Refuse, Request,
    MAX_ARGS, MAX_ENV, MAX_ENV_ENTRY,
};
use crate::{HEADER_LEN, MAGIC, MAX_PAYLOAD, VERSION};

/// Encodes a frame, header included. Fails with [`Error::Oversize`] past [`MAX_PAYLOAD`], and
/// with [`Error::Malformed`] for a frame the decoder would refuse (so nothing sent is unreadable).
pub fn encode(frame: &Frame) -> Result<Vec<u8>, Error> {
    let mut w = Writer {
        buf: vec![MAGIC, VERSION, frame.frame_type() as u8, 0, 0, 0, 0, 0],
    };
    match frame {
        Frame::Request(r) => {
            w.list(&r.argv, |w, a| w.bytes(a));
            w.bytes(&r.cwd);
            w.list(&r.env, |w, (k, v)| {
                w.bytes(k);
                w.bytes(v);
            });
            w.u8(bits(r.isatty));
            w.u8(bits(r.stdio_passed));
            // Bit 0: a terminal name follows; bit 1: its size follows.
            w.u8(u8::from(r.tty.is_some()) | u8::from(r.winsize.is_some()) << 1);
            if let Some(t) = &r.tty {
                w.bytes(t);
            }
            if let Some((columns, lines)) = r.winsize {
                w.u16(columns);
                w.u16(lines);
            }
        }
        Frame::Pending {
            id,
            expires_at,
            untrusted,
        } => {
            w.bytes(id.as_bytes());
            w.bytes(expires_at.as_bytes());
            w.u8(u8::from(*untrusted));
        }
        Frame::Waiting { id, wait_seconds } => {
            w.bytes(id.as_bytes());
            w.u32(*wait_seconds);
        }
        Frame::Grant { argv } => w.list(argv, |w, a| w.bytes(a)),
        Frame::Refuse(r) => {
            w.bytes(r.message.as_bytes());
            w.bytes(r.reason_code.as_bytes());
            w.i32(r.exit_code);
        }
        Frame::Output(o) => {
            w.bytes(&o.stdout);
            w.bytes(&o.stderr);
            w.i32(o.exit_code);
        }
        Frame::ExitReport(e) | Frame::Exited(e) => {
            w.i32(e.exit_value);
            w.i32(e.signal);
            w.u64(e.run_time_ms);
        }
        Frame::Run | Frame::NeedTty => {}
        Frame::Stdio { passed } => w.u8(bits(*passed)),
        Frame::Signal { signo } => w.i32(*signo),
        Frame::Admin { body } | Frame::AdminReplyPart { body } | Frame::AdminEvent { body } => {
            w.bytes(body)
        }
        Frame::AdminReply { ok, body } => {
            w.u8(u8::from(*ok));
            w.bytes(body);
        }
    }
    let len = w.buf.len() - HEADER_LEN;
    if len > MAX_PAYLOAD {
        return Err(Error::Oversize(len));
    }
    let len32 = u32::try_from(len).map_err(|_| Error::Oversize(len))?;
    w.buf[4..8].copy_from_slice(&len32.to_be_bytes());
    // Refuse to send what the peer would refuse to read.
    decode_payload(frame.frame_type(), &w.buf[HEADER_LEN..])?;
    Ok(w.buf)
}

/// Checks a header and returns the frame type and the payload length it announces.
pub fn decode_header(h: &[u8; HEADER_LEN]) -> Result<(FrameType, usize), Error> {
    if h[0] != MAGIC {
        return Err(Error::BadMagic(h[0]));
    }
    if h[1] != VERSION {
        return Err(Error::BadVersion(h[1]));
    }
    let kind = FrameType::from_byte(h[2]).ok_or(Error::UnknownType(h[2]))?;
    if h[3] != 0 {
        return Err(Error::BadFlags(h[3]));
    }
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(Error::Oversize(len));
    }
    Ok((kind, len))
}

/// Decodes one whole frame from the start of `buf`; returns it and the bytes it used.
/// A buffer that ends early gives [`Error::Truncated`].
pub fn decode(buf: &[u8]) -> Result<(Frame, usize), Error> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        // Check what we have of the header first, so garbage is named as garbage.
        if let Some(&b) = buf.first() {
            if b != MAGIC {
                return Err(Error::BadMagic(b));
            }
        }
        if let Some(&v) = buf.get(1) {
            if v != VERSION {
                return Err(Error::BadVersion(v));
            }
        }
        return Err(Error::Truncated {
            missing: HEADER_LEN - buf.len(),
        });
    };
    let mut h = [0u8; HEADER_LEN];
    h.copy_from_slice(head);
    let (kind, len) = decode_header(&h)?;
    let rest = &buf[HEADER_LEN..];
    let Some(payload) = rest.get(..len) else {
        return Err(Error::Truncated {
            missing: len - rest.len(),
        });
    };
    Ok((decode_payload(kind, payload)?, HEADER_LEN + len))
}

/// Decodes a payload of the given type; every byte must be used.
pub fn decode_payload(kind: FrameType, payload: &[u8]) -> Result<Frame, Error> {
    if payload.len() > MAX_PAYLOAD {
        return Err(Error::Oversize(payload.len()));
    }
    let mut r = Reader { buf: payload };
    let frame = match kind {
        FrameType::Request => {
            let argv = r.list(MAX_ARGS, "too many arguments", |r| r.c_bytes("argv"))?;
            let cwd = r.c_bytes("cwd")?;
            let env = r.list(MAX_ENV, "too many environment entries", |r| {
                let k = r.c_bytes("environment name")?;
                let v = r.c_bytes("environment value")?;
                if k.is_empty() || k.contains(&b'=') {
                    return Err(Error::Malformed("bad environment name"));
                }
                if k.len() + v.len() > MAX_ENV_ENTRY {
                    return Err(Error::Malformed("environment entry too long"));
                }
                Ok((k, v))
            })?;
            let isatty = unbits(r.u8()?, "isatty flags")?;
            let stdio_passed = unbits(r.u8()?, "stdio flags")?;
            let present = r.u8()?;
            if present > 0b11 {
                return Err(Error::Malformed("tty presence flag"));
            }
            let tty = match present & 1 {
                0 => None,
                _ => Some(r.c_bytes("tty name")?),
            };
            let winsize = match present & 2 {
                0 => None,
                _ => Some((r.u16()?, r.u16()?)),
            };
            Frame::Request(Request {
                argv,
                cwd,
                env,
                isatty,
                stdio_passed,
                tty,
                winsize,
            })
        }
        FrameType::Pending | FrameType::Waiting => {
            let id = r.string("pending id")?;
            if !valid_id(&id) {
                return Err(Error::Malformed("pending id is not [a-z0-9]{1,32}"));
            }
            if kind == FrameType::Pending {
                let expires_at = r.string("expiry time")?;
                if !valid_time(&expires_at) {
                    return Err(Error::Malformed("expiry time is not [0-9A-Za-z:.+-]{1,40}"));
                }
                let untrusted = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(Error::Malformed("untrusted flag")),
                };
                Frame::Pending {
                    id,
                    expires_at,
                    untrusted,
                }
            } else {
                let wait_seconds = r.u32()?;
                Frame::Waiting { id, wait_seconds }
            }
        }
        FrameType::Grant => {
            let argv = r.list(MAX_ARGS, "too many arguments", |r| r.c_bytes("grant argv"))?;
            match argv.first() {
                Some(p) if p.first() == Some(&b'/') => {}
                _ => {
                    return Err(Error::Malformed(
                        "grant argv must start with an absolute program path",
                    ))
                }
            }
            Frame::Grant { argv }
        }
        FrameType::Refuse => {
            let message = r.string("refusal message")?;
            let reason_code = r.string("reason code")?;
            if !valid_reason_code(&reason_code) {
                return Err(Error::Malformed("reason code is not [a-z0-9_]{1,64}"));
            }
            let exit_code = r.i32()?;
            Frame::Refuse(Refuse {
                message,
                reason_code,
                exit_code,
            })
        }
        FrameType::Output => Frame::Output(Output {
            stdout: r.bytes()?.to_vec(),
            stderr: r.bytes()?.to_vec(),
            exit_code: r.i32()?,
        }),
        FrameType::ExitReport | FrameType::Exited => {
            let exit_value = r.i32()?;
            let signal = r.i32()?;
            let run_time_ms = r.u64()?;
            if !(0..=64).contains(&signal) {
                return Err(Error::Malformed("exit report signal out of range"));
            }
            let report = ExitReport {
                exit_value,
                signal,
                run_time_ms,
            };
            if kind == FrameType::Exited {
                Frame::Exited(report)
            } else {
                Frame::ExitReport(report)
            }
        }
        FrameType::Run => Frame::Run,
        FrameType::NeedTty => Frame::NeedTty,
        FrameType::Stdio => Frame::Stdio {
            passed: unbits(r.u8()?, "stdio flags")?,
        },
        FrameType::Signal => {
            let signo = r.i32()?;
            if !(1..=64).contains(&signo) {
                return Err(Error::Malformed("signal number out of range"));
            }
            Frame::Signal { signo }
        }
        FrameType::Admin => {
            let body = r.bytes()?.to_vec();
            if std::str::from_utf8(&body).is_err() {
                return Err(Error::Malformed("admin request is not UTF-8"));
            }
            Frame::Admin { body }
        }
        FrameType::AdminReply => {
            let ok = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(Error::Malformed("admin reply status flag")),
            };
            let body = r.bytes()?.to_vec();
            if std::str::from_utf8(&body).is_err() {
                return Err(Error::Malformed("admin reply is not UTF-8"));
            }
            Frame::AdminReply { ok, body }
        }
        FrameType::AdminReplyPart => {
            let body = r.bytes()?.to_vec();
            if std::str::from_utf8(&body).is_err() {
                return Err(Error::Malformed("admin reply part is not UTF-8"));
            }
            Frame::AdminReplyPart { body }
        }
        FrameType::AdminEvent => {
            let body = r.bytes()?.to_vec();
            if std::str::from_utf8(&body).is_err() {
                return Err(Error::Malformed("admin event is not UTF-8"));
            }
            Frame::AdminEvent { body }
        }
    };
    if !r.buf.is_empty() {
        return Err(Error::Malformed("trailing bytes after the last field"));
    }
    Ok(frame)
}

fn bits(b: [bool; 3]) -> u8 {
    u8::from(b[0]) | (u8::from(b[1]) << 1) | (u8::from(b[2]) << 2)
}

fn unbits(v: u8, what: &'static str) -> Result<[bool; 3], Error> {
    if v & !0b111 != 0 {
        return Err(Error::Malformed(what));
    }
    Ok([v & 1 != 0, v & 2 != 0, v & 4 != 0])
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn len(&mut self, n: usize) {
        // Lengths past u32 cannot fit a frame anyway; saturate so encode() reports Oversize.
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.buf.extend_from_slice(b);
    }
    fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.len(items.len());
        for it in items {
            each(self, it);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.buf.len() < n {
            return Err(Error::Malformed("field runs past the end of the frame"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, Error> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// Bytes bound for exec or a path: NUL would truncate them silently, so it is refused.
    fn c_bytes(&mut self, what: &'static str) -> Result<Vec<u8>, Error> {
        let b = self.bytes()?;
        if b.contains(&0) {
            return Err(Error::Malformed(match what {
                "argv" | "grant argv" => "NUL byte in an argument",
                "cwd" => "NUL byte in cwd",
                "tty name" => "NUL byte in tty name",
                _ => "NUL byte in environment",
            }));
        }
        Ok(b.to_vec())
    }
    fn string(&mut self, what: &'static str) -> Result<String, Error> {
        let b = self.bytes()?;
        let s = std::str::from_utf8(b).map_err(|_| Error::Malformed(what))?;
        Ok(s.to_owned())
    }
    fn list<T>(
        &mut self,
        max: usize,
        too_many: &'static str,
        mut each: impl FnMut(&mut Self) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Error::Malformed(too_many));
        }
        // Every item takes at least 4 bytes: don't let a count reserve more than the frame holds.
        if n > self.buf.len() / 4 {
            return Err(Error::Malformed(
                "list count runs past the end of the frame",
            ));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(each(self)?);
        }
        Ok(out)
    }
}
