//! Embeds every file under `web/dist` (made by `npm run build` in `web/`,
//! which `cargo xtask run` and `cargo xtask test` do first). Without a
//! build, the list is empty and the server shows how to make one.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// `web/dist` from this package, relative: cargo reads relative
/// `rerun-if-changed` paths against the package's directory, so a build
/// directory shared by several clones of the repository watches the dist of
/// the clone being built, not of the one built first.
const DIST: &str = "../../web/dist";

/// Left in `web/dist` by `CONCLAVE_WEB_TEST_HOOKS=1 npm run build`.
const TEST_HOOKS_MARK: &str = "/TEST-HOOKS";
/// Set to `1` to build a release binary around the test build anyway.
const ALLOW: &str = "CONCLAVE_ALLOW_TEST_HOOKS";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let dist = manifest.join(DIST);
    println!("cargo:rerun-if-changed={DIST}");
    let mut files = Vec::new();
    if dist.is_dir() {
        collect(&dist, &dist, &mut files);
    }
    // The browser tests' build exposes the meeting's internals on
    // `window.__conclave`; a release binary never serves it, unless the
    // build says so outright (the browser benchmark times a release server).
    println!("cargo:rerun-if-env-changed={ALLOW}");
    if files.iter().any(|(route, _)| route == TEST_HOOKS_MARK) {
        let allowed = std::env::var(ALLOW).as_deref() == Ok("1");
        if std::env::var("PROFILE").as_deref() == Ok("release") && !allowed {
            panic!("web/dist was built for the browser tests (with test hooks); run `cargo xtask web` first");
        }
        files.retain(|(route, _)| route != TEST_HOOKS_MARK);
    }
    files.sort();
    let mut out = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (route, path) in &files {
        println!("cargo:rerun-if-changed={DIST}{route}");
        writeln!(out, "    ({route:?}, include_bytes!({:?})),", path.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("files.rs");
    std::fs::write(dest, out).unwrap();
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let relative = dir.strip_prefix(root).unwrap().to_string_lossy().into_owned();
    println!("cargo:rerun-if-changed={DIST}/{relative}");
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let route = format!("/{}", path.strip_prefix(root).unwrap().to_string_lossy());
            files.push((route, path.canonicalize().unwrap()));
        }
    }
}
