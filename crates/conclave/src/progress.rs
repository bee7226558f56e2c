//! A one-line progress bar on stderr for long admin work, drawn only when
//! stderr is a terminal so logs and pipes stay clean.

use std::io::{IsTerminal, Write};

pub struct Progress {
    label: &'static str,
    enabled: bool,
}

impl Progress {
    pub fn new(label: &'static str) -> Self {
        Self { label, enabled: std::io::stderr().is_terminal() }
    }

    pub fn update(&self, done: i64, total: i64) {
        if !self.enabled {
            return;
        }
        let total = total.max(1);
        let width = 30;
        let filled = ((done.min(total) * width) / total) as usize;
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width as usize - filled));
        eprint!("\r{} [{bar}] {done}/{total}", self.label);
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}
