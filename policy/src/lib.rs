//! occ's policy engine: sudo's command-line grammar, the policy files, safe command resolution
//! and the pure decision function. It never executes anything.
#![forbid(unsafe_code)]
