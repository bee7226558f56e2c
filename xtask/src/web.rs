//! The browser app's chores: installing its npm packages, building it into
//! `web/dist` (which the binary embeds), and running its Playwright tests in
//! Debian's Chromium against the real server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace this run is for. `cargo run` names the package's directory
/// at run time; the compile-time one is only a fallback, since a build
/// reused from another clone of the repository (a shared target directory)
/// would point there.
pub fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let manifest = manifest.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    Path::new(&manifest).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn web() -> PathBuf {
    root().join("web")
}

/// The generated protocol types checked (a stale file fails here, saying
/// how to fix it, rather than as type errors), the E2EE module (wasm), then
/// `npm install` when the installed packages are missing or older than the
/// lock file, then `npm run build`. (Not `npm ci`: npm 11 leaves other
/// platforms' optional packages out of the lock file and then refuses it.)
/// `test_hooks` builds the browser tests' variant, with `window.__conclave`.
pub fn build(test_hooks: bool) -> Result<(), String> {
    super::codegen::run(&["--check"])?;
    super::wasm::build()?;
    let web = web();
    install_packages(&web, "the web app's")?;
    let mut npm = Command::new("npm");
    npm.args(["run", "--silent", "build"]).current_dir(&web);
    npm.env("CONCLAVE_WEB_TEST_HOOKS", if test_hooks { "1" } else { "0" });
    super::status(&mut npm)
}

/// `npm install` in `dir` when its installed packages are missing or older
/// than its lock file.
pub fn install_packages(dir: &std::path::Path, whose: &str) -> Result<(), String> {
    let installed = dir.join("node_modules/.package-lock.json");
    let stale = match (std::fs::metadata(&installed), std::fs::metadata(dir.join("package-lock.json"))) {
        (Ok(i), Ok(l)) => i.modified().ok() < l.modified().ok(),
        _ => true,
    };
    if stale {
        eprintln!("xtask: installing {whose} npm packages");
        super::status(Command::new("npm").args(["install", "--no-audit", "--no-fund"]).current_dir(dir))?;
    }
    Ok(())
}

/// The debug `conclave` binary `cargo test` built.
pub fn debug_binary() -> PathBuf {
    target_dir().join("debug/conclave")
}

/// Where cargo builds, as cargo itself says (`CARGO_TARGET_DIR`, a
/// `build.target-dir` in any cargo configuration, or `./target`).
pub fn target_dir() -> PathBuf {
    let metadata = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .output();
    let json = metadata.map(|m| String::from_utf8_lossy(&m.stdout).into_owned()).unwrap_or_default();
    const KEY: &str = "\"target_directory\":\"";
    json.find(KEY)
        .and_then(|at| json[at + KEY.len()..].split('"').next().map(PathBuf::from))
        .unwrap_or_else(|| root().join("target"))
}

/// The web client's tests, each a Node script printing one `test result:`
/// line: the first runs the client's logic without a browser, the rest
/// drive Chromium against the debug server.
const BROWSER_TESTS: &[&str] = &[
    "unit/playout.test.mjs",
    "e2e/setup.test.mjs",
    "e2e/meeting.test.mjs",
    "e2e/network.test.mjs",
    "e2e/passkeys.test.mjs",
    "e2e/sso.test.mjs",
    "e2e/messaging.test.mjs",
];

/// Runs the browser tests one after another, echoing their output into `tally`.
pub fn test(tally: &mut impl FnMut(&str)) -> Result<bool, String> {
    let mut passed = true;
    for script in BROWSER_TESTS {
        let mut child = Command::new("node")
            .arg(script)
            .current_dir(web())
            .env("CONCLAVE_BIN", debug_binary())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the browser test {script}: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            tally(&line);
        }
        passed &= child.wait().map_err(|e| format!("browser test {script}: {e}"))?.success();
    }
    Ok(passed)
}
