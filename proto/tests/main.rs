//! occ-proto: round trips, strict refusal of bad bytes, and fd passing over a real socket pair.

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use occ_proto::{
    decode, encode, read_frame, write_frame, Error, ExitReport, Frame, Output, Refuse, Request,
    HEADER_LEN, MAGIC, MAX_PAYLOAD, VERSION,
};

fn sample_request() -> Request {
    Request {
        argv: vec![b"-n".to_vec(), b"ls".to_vec(), vec![0xff, b'\n', 0x1b]],
        cwd: b"/tmp/w\xc3".to_vec(),
        env: vec![
            (b"TERM".to_vec(), b"xterm".to_vec()),
            (b"OPENCLAW_PRIV_REASON".to_vec(), b"why \x1b[31m".to_vec()),
        ],
        isatty: [true, false, true],
        stdio_passed: [true, true, true],
        tty: Some(b"/dev/pts/3".to_vec()),
        winsize: Some((101, 37)),
    }
}

fn pending(id: &str) -> Frame {
    Frame::Pending {
        id: id.into(),
        expires_at: "2025-01-31T12:30:00Z".into(),
        untrusted: false,
    }
}

fn all_frames() -> Vec<Frame> {
    vec![
        Frame::Request(sample_request()),
        Frame::Request(Request::default()),
        // A size without a name, and a name without a size: each flag stands alone.
        Frame::Request(Request {
            tty: None,
            ..sample_request()
        }),
        Frame::Request(Request {
            winsize: None,
            ..sample_request()
        }),
        Frame::Pending {
            id: "ab12cd34".into(),
            expires_at: "2025-01-31T12:30:00Z".into(),
            untrusted: true,
        },
        Frame::Waiting {
            id: "zz99zz99".into(),
            wait_seconds: 120,
        },
        Frame::NeedTty,
        Frame::Grant {
            argv: vec![
                b"/usr/bin/sudo".to_vec(),
                b"--".to_vec(),
                b"/bin/true".to_vec(),
            ],
        },
        Frame::Refuse(Refuse {
            message: "no \u{202e} way".into(),
            reason_code: "policy_block".into(),
            exit_code: 1,
        }),
        Frame::Output(Output {
            stdout: b"usage\n".to_vec(),
            stderr: vec![],
            exit_code: 0,
        }),
        Frame::ExitReport(ExitReport {
            exit_value: -1,
            signal: 9,
            run_time_ms: u64::MAX,
        }),
        Frame::Signal { signo: 2 },
        Frame::Run,
        Frame::Stdio {
            passed: [true, false, true],
        },
        Frame::Exited(ExitReport {
            exit_value: -1,
            signal: 15,
            run_time_ms: 12,
        }),
        Frame::Admin {
            body: br#"{"op":"approvals"}"#.to_vec(),
        },
        Frame::AdminReply {
            ok: false,
            body: br#"{"error":"no such id"}"#.to_vec(),
        },
        Frame::AdminReplyPart {
            body: "[{\"id\":\"ab\u{e9}".as_bytes().to_vec(),
        },
    ]
}

#[test]
fn every_frame_round_trips() {
    for f in all_frames() {
        let bytes = encode(&f).expect("encode");
        assert_eq!(bytes[0], MAGIC);
        assert_eq!(bytes[1], VERSION);
        let (back, used) = decode(&bytes).expect("decode");
        assert_eq!(used, bytes.len());
        assert_eq!(back, f);
    }
}

#[test]
fn two_frames_back_to_back_decode_one_at_a_time() {
    let mut buf = encode(&Frame::Signal { signo: 15 }).unwrap();
    buf.extend(encode(&pending("x1")).unwrap());
    let (a, n) = decode(&buf).unwrap();
    assert_eq!(a, Frame::Signal { signo: 15 });
    let (b, m) = decode(&buf[n..]).unwrap();
    assert_eq!(b, pending("x1"));
    assert_eq!(n + m, buf.len());
}

#[test]
fn every_cut_of_a_valid_frame_is_truncated() {
    for f in all_frames() {
        let bytes = encode(&f).unwrap();
        for cut in 0..bytes.len() {
            match decode(&bytes[..cut]) {
                Err(Error::Truncated { missing }) => assert!(missing > 0),
                other => panic!("cut at {cut} of {f:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn refuses_bad_magic_version_type_and_flags() {
    let good = encode(&Frame::Signal { signo: 1 }).unwrap();
    let mut b = good.clone();
    b[0] = b'G';
    assert!(matches!(decode(&b), Err(Error::BadMagic(b'G'))));
    let mut b = good.clone();
    b[1] = 2;
    assert!(matches!(decode(&b), Err(Error::BadVersion(2))));
    let mut b = good.clone();
    b[2] = 99;
    assert!(matches!(decode(&b), Err(Error::UnknownType(99))));
    let mut b = good.clone();
    b[3] = 1;
    assert!(matches!(decode(&b), Err(Error::BadFlags(1))));
    // Garbage is named as garbage even before a whole header arrived.
    assert!(matches!(
        decode(b"GET / HTTP/1.1"),
        Err(Error::BadMagic(b'G'))
    ));
    assert!(matches!(decode(b"G"), Err(Error::BadMagic(b'G'))));
}

#[test]
fn refuses_oversize_header_and_oversize_encode() {
    let mut h = vec![MAGIC, VERSION, 1, 0];
    h.extend(((MAX_PAYLOAD + 1) as u32).to_be_bytes());
    assert!(matches!(decode(&h), Err(Error::Oversize(n)) if n == MAX_PAYLOAD + 1));
    let big = Frame::Output(Output {
        stdout: vec![b'x'; MAX_PAYLOAD],
        stderr: vec![],
        exit_code: 0,
    });
    assert!(matches!(encode(&big), Err(Error::Oversize(_))));
    let just_fits = Frame::Output(Output {
        stdout: vec![b'x'; MAX_PAYLOAD - 12],
        stderr: vec![],
        exit_code: 0,
    });
    let bytes = encode(&just_fits).expect("exactly 1 MiB payload is allowed");
    assert_eq!(bytes.len(), HEADER_LEN + MAX_PAYLOAD);
}

#[test]
fn refuses_trailing_bytes_and_lying_lengths() {
    let mut b = encode(&Frame::Signal { signo: 2 }).unwrap();
    b.push(0);
    let len = (b.len() - HEADER_LEN) as u32;
    b[4..8].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(decode(&b), Err(Error::Malformed(_))));
    // A list count far beyond the payload must not allocate or panic.
    let mut p = vec![MAGIC, VERSION, 4, 0, 0, 0, 0, 4];
    p.extend(u32::MAX.to_be_bytes());
    assert!(matches!(decode(&p), Err(Error::Malformed(_))));
    // A field length beyond the payload.
    let mut p = vec![MAGIC, VERSION, 2, 0, 0, 0, 0, 6];
    p.extend(100u32.to_be_bytes());
    p.extend(b"ab");
    assert!(matches!(decode(&p), Err(Error::Malformed(_))));
}

#[test]
fn refuses_semantically_bad_fields() {
    let bad = [
        pending(""),
        pending("AB\x1b[2J"),
        Frame::Pending {
            id: "ab".into(),
            expires_at: "".into(),
            untrusted: false,
        },
        Frame::Pending {
            id: "ab".into(),
            expires_at: "12:30\x1b[2J".into(),
            untrusted: false,
        },
        Frame::Waiting {
            id: "a".repeat(33),
            wait_seconds: 1,
        },
        Frame::Grant { argv: vec![] },
        Frame::Grant {
            argv: vec![b"sudo".to_vec()],
        },
        Frame::Grant {
            argv: vec![b"/usr/bin/sudo".to_vec(), b"a\0b".to_vec()],
        },
        Frame::Refuse(Refuse {
            message: "m".into(),
            reason_code: "Bad Code".into(),
            exit_code: 1,
        }),
        Frame::Signal { signo: 0 },
        Frame::Signal { signo: 65 },
        Frame::ExitReport(ExitReport {
            exit_value: 0,
            signal: -1,
            run_time_ms: 0,
        }),
        Frame::Request(Request {
            env: vec![(b"A=B".to_vec(), b"c".to_vec())],
            ..Request::default()
        }),
        Frame::Request(Request {
            argv: vec![b"x\0".to_vec()],
            ..Request::default()
        }),
    ];
    for f in bad {
        assert!(
            matches!(encode(&f), Err(Error::Malformed(_))),
            "encoded {f:?}"
        );
    }
}

#[test]
fn refuses_invalid_utf8_in_text_fields() {
    let mut p = vec![MAGIC, VERSION, 5, 0];
    let mut body = Vec::new();
    body.extend(2u32.to_be_bytes());
    body.extend([0xff, 0xfe]);
    body.extend(1u32.to_be_bytes());
    body.extend(b"x");
    body.extend(1i32.to_be_bytes());
    p.extend((body.len() as u32).to_be_bytes());
    p.extend(body);
    assert!(matches!(decode(&p), Err(Error::Malformed(_))));
    // A part of a long admin answer cut inside a character is refused too.
    let mut p = vec![MAGIC, VERSION, 15, 0];
    let body = [&2u32.to_be_bytes()[..], &[b'a', 0xc3]].concat();
    p.extend((body.len() as u32).to_be_bytes());
    p.extend(body);
    assert!(matches!(decode(&p), Err(Error::Malformed(_))));
}

/// Small deterministic PRNG (xorshift64*): the proto crate takes no dependencies.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_bytes_never_panic_and_never_decode_to_garbage() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..20_000 {
        let len = (rng.next() % 96) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half the time start with a valid header prefix so the payload decoders get exercised.
        if i % 2 == 0 && buf.len() >= HEADER_LEN {
            buf[0] = MAGIC;
            buf[1] = VERSION;
            buf[2] = 1 + (rng.next() % 10) as u8;
            buf[3] = 0;
            let plen = (buf.len() - HEADER_LEN) as u32;
            buf[4..8].copy_from_slice(&plen.to_be_bytes());
        }
        if let Ok((f, used)) = decode(&buf) {
            // Whatever decodes must re-encode to the very same bytes.
            assert_eq!(encode(&f).unwrap(), buf[..used].to_vec());
        }
    }
}

#[test]
fn single_byte_mutations_of_valid_frames_never_panic() {
    let mut rng = Rng(42);
    for f in all_frames() {
        let bytes = encode(&f).unwrap();
        for _ in 0..2_000 {
            let mut b = bytes.clone();
            let at = (rng.next() as usize) % b.len();
            b[at] = rng.next() as u8;
            if let Ok((g, used)) = decode(&b) {
                assert_eq!(encode(&g).unwrap(), b[..used].to_vec());
            }
        }
    }
}

#[test]
fn frames_and_stdio_fds_cross_a_real_socket() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut file = tempfile_in_tmp();
    file.write_all(b"passed through SCM_RIGHTS").unwrap();
    let req = sample_request();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    write_frame(
        &a,
        &Frame::Request(req.clone()),
        &[file.as_fd(), stdout.as_fd(), stderr.as_fd()],
    )
    .unwrap();
    let got = read_frame(&b).unwrap();
    assert_eq!(got.frame, Frame::Request(req));
    assert_eq!(got.fds.len(), 3);
    // The first descriptor is the same open file: read it back from the start.
    let mut f2 = std::fs::File::from(got.fds.into_iter().next().unwrap());
    f2.rewind().unwrap();
    let mut s = String::new();
    f2.read_to_string(&mut s).unwrap();
    assert_eq!(s, "passed through SCM_RIGHTS");
    // Frames flow the other way too, and a clean close is Closed.
    write_frame(&b, &pending("abc"), &[]).unwrap();
    assert_eq!(read_frame(&a).unwrap().frame, pending("abc"));
    drop(b);
    assert!(matches!(read_frame(&a), Err(Error::Closed)));
}

#[test]
fn large_frame_crosses_a_socket_in_pieces() {
    let (a, b) = UnixStream::pair().unwrap();
    let f = Frame::Output(Output {
        stdout: vec![7u8; MAX_PAYLOAD - 12],
        stderr: vec![],
        exit_code: 3,
    });
    let f2 = f.clone();
    let t = std::thread::spawn(move || write_frame(&a, &f2, &[]).unwrap());
    assert_eq!(read_frame(&b).unwrap().frame, f);
    t.join().unwrap();
}

#[test]
fn fds_on_a_frame_that_must_not_carry_them_are_refused() {
    let (a, b) = UnixStream::pair().unwrap();
    let file = tempfile_in_tmp();
    write_frame(&a, &Frame::Signal { signo: 2 }, &[file.as_fd()]).unwrap();
    assert!(matches!(
        read_frame(&b),
        Err(Error::UnexpectedFds {
            expected: 0,
            got: 1
        })
    ));
    // A request that declares three but brings one.
    let (a, b) = UnixStream::pair().unwrap();
    write_frame(&a, &Frame::Request(sample_request()), &[file.as_fd()]).unwrap();
    assert!(matches!(
        read_frame(&b),
        Err(Error::UnexpectedFds {
            expected: 3,
            got: 1
        })
    ));
}

#[test]
fn half_sent_frame_then_hangup_is_truncated_and_silence_times_out() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let bytes = encode(&Frame::Request(sample_request())).unwrap();
    a.write_all(&bytes[..bytes.len() / 2]).unwrap();
    drop(a);
    assert!(matches!(read_frame(&b), Err(Error::Truncated { .. })));

    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(&bytes[..3]).unwrap();
    b.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    match read_frame(&b) {
        Err(e @ Error::Io(_)) => assert_eq!(e.kind(), "timeout"),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn oversize_header_on_a_socket_is_refused_before_reading_the_body() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let mut h = vec![MAGIC, VERSION, 1, 0];
    h.extend(u32::MAX.to_be_bytes());
    a.write_all(&h).unwrap();
    // No body follows: the reader must not wait for 4 GiB.
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(read_frame(&b), Err(Error::Oversize(_))));
}

fn tempfile_in_tmp() -> std::fs::File {
    let path = std::env::temp_dir().join(format!(
        "occ-proto-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let _ = std::fs::remove_file(&path);
    f
}

#[test]
fn a_tty_presence_flag_past_name_and_size_is_refused() {
    let mut bytes = encode(&Frame::Request(Request::default())).unwrap();
    // The last payload byte of an empty request is the terminal presence flags.
    let last = bytes.len() - 1;
    assert_eq!(bytes[last], 0);
    bytes[last] = 0b100;
    assert!(matches!(
        decode(&bytes),
        Err(Error::Malformed("tty presence flag"))
    ));
}
