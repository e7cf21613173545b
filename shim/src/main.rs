//! `sudo` (occ-shim): thin entry point over the library. It never falls back to the real sudo.

fn main() {
    std::process::exit(occ_shim::main());
}
