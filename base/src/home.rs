//! The one home resolver: where the user's home directory is.

use std::path::PathBuf;

/// The user's home directory: `$HOME` when set and non-empty, else this user's entry in the
/// password database.
pub fn user_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
}
