//! occ's audit log: canonical JSON lines, hash chain, seal, head checkpoint, rotation and a
//! streaming verifier. It must never rewrite or lose a complete record once written.
