//! The browser's end-to-end encryption module: `conclave-e2ee-wasm` built
//! for wasm32 and bound for JavaScript into `web/src/e2ee/pkg`, which the
//! web app's media worker imports.
//!
//! The machine's rustup toolchain has no wasm32 standard library and cannot
//! fetch one, so the module is built with Debian's `rustc-web` and its
//! standard library's source (`rust-web-src`), compiling `std` for wasm32
//! itself (`-Zbuild-std`, allowed on a stable compiler by
//! `RUSTC_BOOTSTRAP`), and linked by the rustup toolchain's `rust-lld`.

use std::path::PathBuf;
use std::process::Command;

/// Must equal the `wasm-bindgen` version `conclave-e2ee-wasm` pins.
const WASM_BINDGEN: &str = "0.2.130";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";

pub fn build() -> Result<(), String> {
    super::ensure_debian_packages(&[
        (DEBIAN_RUSTC, "rustc-web"),
        (DEBIAN_CARGO, "cargo-web"),
        ("/usr/lib/rustlib/src/rust/library/std/Cargo.toml", "rust-web-src"),
    ])?;
    ensure_wasm_bindgen()?;
    let target = super::web::target_dir().join("wasm");
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().map_err(|e| e.to_string())?;
    let lld = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim())
        .join("lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld");
    if !lld.exists() {
        return Err(format!("no linker for wasm32 at {}", lld.display()));
    }
    eprintln!("xtask: building the browser's E2EE module (wasm32)");
    super::status(
        Command::new(DEBIAN_CARGO)
            .args(["build", "--quiet", "--release", "--package", "conclave-e2ee-wasm"])
            .args(["--target", "wasm32-unknown-unknown", "-Zbuild-std=std,panic_abort", "--target-dir"])
            .arg(&target)
            .env("RUSTC", DEBIAN_RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", &lld)
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO")
            .current_dir(super::web::root()),
    )?;
    let module = target.join("wasm32-unknown-unknown/release/conclave_e2ee_wasm.wasm");
    let out = super::web::root().join("web/src/e2ee/pkg");
    super::status(Command::new(wasm_bindgen()).args(["--target", "web", "--out-dir"]).arg(&out).arg(&module))
}

fn wasm_bindgen() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    home.join("bin/wasm-bindgen")
}

/// `wasm-bindgen` of exactly the version the module is built against.
fn ensure_wasm_bindgen() -> Result<(), String> {
    let version = Command::new(wasm_bindgen()).arg("--version").output();
    if version.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == format!("wasm-bindgen {WASM_BINDGEN}")) {
        return Ok(());
    }
    eprintln!("xtask: installing wasm-bindgen-cli {WASM_BINDGEN}");
    super::status(super::cargo().args(["install", "--quiet", &format!("wasm-bindgen-cli@{WASM_BINDGEN}")]))
}
