//! The `sudo` shim. It does no parsing and no user lookups: it forwards the request to the
//! broker and relays the outcome. It never falls back to the real sudo.

fn main() {
    eprintln!(
        "sudo: occ broker unavailable: the broker is not built yet (occ: broker_unavailable)"
    );
    std::process::exit(1);
}
