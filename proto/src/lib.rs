//! The wire format shared by the shim and the broker: versioned, length-prefixed frames over a
//! Unix stream socket, plus fd passing. It must stay std + libc only, because the shim links it
//! statically and carries no other dependency.
//!
//! A frame is an 8-byte header — magic `0xCC`, version, frame type, a zero flags byte and the
//! payload length as a big-endian `u32` — followed by at most [`MAX_PAYLOAD`] bytes of payload.
//! Payload fields are fixed-width big-endian integers and `u32`-length-prefixed byte strings.
//! Decoding is strict: a bad magic, version, type, length, truncated field, invalid UTF-8 where
//! text is required, or trailing bytes are each a typed [`Error`], never a panic.
#![deny(unsafe_code)]

mod error;
mod frame;
mod stream;
// All FFI lives here; every unsafe block carries a SAFETY comment.
#[allow(unsafe_code)]
mod sys;
mod wire;

pub use error::{is_timeout, Error};
pub use frame::{
    ExitReport, Frame, FrameType, Output, Refuse, Request, MAX_ARGS, MAX_ENV, MAX_ENV_ENTRY,
};
pub use stream::{read_frame, read_frame_by, write_frame, write_frame_by, Received};
pub use wire::{decode, decode_header, decode_payload, encode};

/// First byte of every frame.
pub const MAGIC: u8 = 0xCC;
/// The protocol version this build speaks; any other is refused.
pub const VERSION: u8 = 1;
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 8;
/// Largest payload accepted or sent: 1 MiB.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Most file descriptors one frame may carry (the caller's stdin, stdout and stderr).
pub const MAX_FDS: usize = 3;
