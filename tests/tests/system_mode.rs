//! System mode end to end, as root, with real users, real sockets and real processes: the agent
//! (`occ-sysagent`, no sudo rights) asks through its shim, another user approves on the admin
//! socket, and the root broker runs the approved file itself. Each test gets a fresh world
//! ([`world::World`]): the real /etc/occ, /run/occ, /var/lib/occ and /var/log/occ, so the tests
//! run one at a time.

mod boundary;
mod environment;
mod lifecycle;
mod quorum;
mod replays;
mod run;
mod signed;
pub(crate) mod world;
