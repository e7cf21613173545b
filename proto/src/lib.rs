//! The wire format shared by the shim and the broker: versioned, length-prefixed frames over a
//! Unix stream socket, plus fd passing. It must stay std + libc only, because the shim links it
//! statically and carries no other dependency.
