//! A one-line progress bar on stderr for long admin work, drawn only when
//! stderr is a terminal so logs and pipes stay clean.

use std::io::{IsTerminal, Write};

pub struct Progress {
    label: &'static str,
    enabled: bool,
    bytes: bool,
}

impl Progress {
    pub fn new(label: &'static str) -> Self {
        Self { label, enabled: std::io::stderr().is_terminal(), bytes: false }
    }

    /// A bar counting bytes, shown in MiB.
    pub fn bytes(label: &'static str) -> Self {
        Self { bytes: true, ..Self::new(label) }
    }

    pub fn update(&self, done: i64, total: i64) {
        if !self.enabled {
            return;
        }
        let total = total.max(1);
        let width = 30;
        let filled = ((done.min(total) * width) / total) as usize;
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width as usize - filled));
        if self.bytes {
            let mib = |n: i64| n as f64 / (1 << 20) as f64;
            eprint!("\r{} [{bar}] {:.1}/{:.1} MiB", self.label, mib(done), mib(total));
        } else {
            eprint!("\r{} [{bar}] {done}/{total}", self.label);
        }
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}
