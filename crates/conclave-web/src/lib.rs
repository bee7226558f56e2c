//! The Conclave browser app as built into the binary: `(path, bytes)` for
//! every file of `web/dist`, `/index.html` among them once it is built.

include!(concat!(env!("OUT_DIR"), "/files.rs"));
