//! `cargo xtask <task>`: Conclave's build chores, in Rust so they run the
//! same everywhere cargo does.
//!
//! - `run [ARGS...]`: build and start the server with its embedded defaults
//!   (one SQLite file under ./conclave-data, one node); extra arguments go to
//!   `conclave serve`.
//! - `test`: make sure the services the tests need are up (starting the local
//!   PostgreSQL cluster if it is down, failing loudly if it cannot be
//!   reached), build the web app, run every test of the workspace, then the
//!   browser tests in Chromium.
//! - `web`: build the browser app alone (its E2EE wasm module, then Vite).
//! - `codegen [--check]`: write the web app's TypeScript types from the wire
//!   types of conclave-proto (`web/src/generated/protocol.ts`); with
//!   `--check`, fail if that file is stale instead (the workspace's tests
//!   check it too).
//! - `tidy`: check that ARCHITECTURE.md's paths exist, that every JSON
//!   example of `docs/protocol.md` is the message it illustrates, and that
//!   the production binary has no test hooks (the workspace's tests run it).

mod codegen;
mod tidy;
mod wasm;
mod web;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const POSTGRES: &str = "127.0.0.1:5432";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("web") => web::build(args[1..].iter().any(|a| a == "--test-hooks")),
        Some("codegen") => codegen::run(&args[1..]),
        Some("tidy") => tidy::run(),
        _ => {
            eprintln!(
                "usage: cargo xtask run [serve options...] | cargo xtask test [cargo test options...] | cargo xtask web [--test-hooks] \
                 | cargo xtask codegen [--check] | cargo xtask tidy"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn status(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = command.status().map_err(|e| format!("cannot start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed with {status}"))
    }
}

fn run(serve_args: &[String]) -> Result<(), String> {
    ensure_debian_packages(&[("pkg-config", "pkg-config"), ("/usr/include/openssl/ssl.h", "libssl-dev")])?;
    web::build(false)?;
    status(cargo().args(["run", "--release", "--package", "conclave", "--", "serve"]).args(serve_args))
}

fn test(cargo_args: &[String]) -> Result<(), String> {
    ensure_postgres()?;
    ensure_debian_packages(&[
        ("turnserver", "coturn"),
        ("pkg-config", "pkg-config"),
        ("/usr/include/openssl/ssl.h", "libssl-dev"),
        ("/usr/bin/chromium", "chromium"),
        // Reactions and screenshots show emoji, not empty boxes.
        ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", "fonts-noto-color-emoji"),
    ])?;
    ensure_python_package("moto.server", "moto[server]==5.2.1")?;
    ensure_python_package("aiosmtpd", "aiosmtpd==1.4.6")?;
    // An independent SCIM 2.0 conformance checker, and the HTTP client it runs on
    // (its libraries pinned first, so a new release cannot change the checks).
    ensure_python_package("scim2_models", "scim2-models==0.12.3")?;
    ensure_python_package("scim2_client", "scim2-client==0.13.2")?;
    ensure_python_package("scim2_tester", "scim2-tester==0.5.2")?;
    ensure_python_package("httpx2", "httpx2==2.16.2")?;
    // Calendar invitations are read back as a calendar would.
    ensure_python_package("icalendar", "icalendar==7.3.2")?;
    // The OpenID provider the sign-in tests (API and browser) run on loopback.
    web::install_packages(&web::root().join("crates/conclave-server/tests/oidc"), "the test OpenID provider's")?;
    web::build(true)?;
    let mut command = cargo();
    command.args(["test", "--workspace", "--no-fail-fast"]).args(cargo_args).stdout(Stdio::piped());
    if std::env::var_os("CONCLAVE_TEST_POSTGRES_URL").is_none() {
        command.env("CONCLAVE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test");
    }
    let mut child = command.spawn().map_err(|e| format!("cannot start cargo test: {e}"))?;
    // Echo cargo's output as it comes and add up every binary's results,
    // so the run ends with one line that totals the whole suite.
    let mut totals = Tally::default();
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
        totals.add(&line);
    }
    let exit = child.wait().map_err(|e| format!("cargo test: {e}"))?;
    // The browser tests drive the binary `cargo test` just built.
    let browser_ok = web::test(&mut |line| totals.add(line))?;
    println!();
    println!("conclave: {} passed, {} failed", totals.passed, totals.failed);
    if exit.success() && browser_ok && totals.failed == 0 {
        Ok(())
    } else {
        Err(format!("the test suite failed ({exit})"))
    }
}

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    /// Reads `test result: ok. 12 passed; 0 failed; ...` lines.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else { return };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(kind), Some(count)) = (words.next(), words.next()) else { continue };
            let Ok(count) = count.parse::<u64>() else { continue };
            match kind {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                _ => {}
            }
        }
    }
}

fn reachable(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("a socket address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Installs the Debian packages whose command (or file) is missing: coturn
/// for the TURN relay test, OpenSSL's headers for str0m's DTLS and SRTP.
fn ensure_debian_packages(needs: &[(&str, &str)]) -> Result<(), String> {
    let present = |what: &str| {
        if what.starts_with('/') {
            std::path::Path::new(what).exists()
        } else {
            Command::new("sh")
                .args(["-c", &format!("command -v {what}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        }
    };
    let missing: Vec<&str> = needs.iter().filter(|(what, _)| !present(what)).map(|(_, package)| *package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {} from Debian's packages", missing.join(", "));
    let sudo = if Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0")) {
        vec![]
    } else {
        vec!["sudo"]
    };
    let apt = |args: &[&str]| {
        let mut command = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive").status().is_ok_and(|s| s.success())
    };
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(&missing);
    let installed = apt(&install) || (apt(&["update", "-q"]) && apt(&install));
    if !installed {
        return Err(format!("could not install {} (apt-get install {})", missing.join(", "), missing.join(" ")));
    }
    Ok(())
}

/// Installs a package from PyPI when its module does not import: moto's
/// S3-compatible server and aiosmtpd's SMTP server, which the file storage
/// and email tests run on loopback.
fn ensure_python_package(module: &str, requirement: &str) -> Result<(), String> {
    let imports = |module: &str| {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if imports(module) {
        return Ok(());
    }
    eprintln!("xtask: installing {requirement} from PyPI");
    status(Command::new("python3").args(["-m", "pip", "install", "--quiet", requirement]))?;
    if imports(module) {
        Ok(())
    } else {
        Err(format!("{requirement} installed, but python3 cannot import {module}"))
    }
}

/// PostgreSQL on 127.0.0.1:5432, started from its Debian cluster when down.
fn ensure_postgres() -> Result<(), String> {
    if reachable(POSTGRES) {
        return Ok(());
    }
    eprintln!("xtask: PostgreSQL is not answering on {POSTGRES}; starting the local cluster");
    let versions = std::fs::read_dir("/etc/postgresql").map_err(|_| {
        format!("PostgreSQL is down and not installed here (no /etc/postgresql); the tests need it on {POSTGRES}")
    })?;
    for version in versions.flatten() {
        let version = version.file_name().to_string_lossy().into_owned();
        let _ = Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &version, "main", "start"]).status();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reachable(POSTGRES) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("PostgreSQL did not come up on {POSTGRES}: the PostgreSQL tests cannot run"))
}
