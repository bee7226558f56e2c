// What the browser tests share: the conclave binary started on a fresh
// SQLite directory, Chromium with fake devices, polling, screenshots, and
// reading a page's media statistics through the test build's hooks.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.CONCLAVE_BIN;
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const PASSWORD = "correct horse battery staple";
export const TIMEOUT = 20_000;

if (!BIN) throw new Error("set CONCLAVE_BIN to the conclave binary");

/// A directory for one test's screenshots, emptied first, and a function
/// that takes them in order.
export function screenshots(name) {
  const dir = join(here, "..", "test-results", name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let step = 0;
  const shot = async (page, what) => {
    step += 1;
    await page.screenshot({ path: join(dir, `${String(step).padStart(2, "0")}-${what}.png`) });
  };
  return { dir, shot };
}

/// A TCP port free on loopback just now (the system picks it).
export async function freePort() {
  const probe = createServer();
  await new Promise((resolve, reject) => probe.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/// Starts `conclave serve` on a fresh SQLite directory with `args` added,
/// its organisation "Example" and owner host@example.org made first unless
/// `bootstrap` is false; resolves to its URL, what it printed, and a way to
/// stop it. With `hostName` ("localhost"), the server is reached by that
/// name rather than by address, on a port chosen here (its public URL must
/// name it): what passkeys need, since browsers refuse an IP address as the
/// site a passkey belongs to.
export async function startServer(args = [], { bootstrap = true, hostName = null } = {}) {
  const data = mkdtempSync(join(tmpdir(), "conclave-e2e-"));
  if (bootstrap) {
    execFileSync(BIN, ["admin", "--data-dir", data, "bootstrap", "--email", "host@example.org", "--password", PASSWORD, "--org", "Example"], { stdio: "ignore" });
  }
  let listen = ["--listen", "127.0.0.1:0"];
  if (hostName) {
    const port = await freePort();
    listen = ["--listen", `127.0.0.1:${port}`, "--public-url", `http://${hostName}:${port}`];
  }
  const server = spawn(BIN, ["serve", "--data-dir", data, ...listen, ...args], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, CONCLAVE_LOG: process.env.CONCLAVE_LOG ?? "warn" } });
  let out = "";
  const url = await new Promise((resolve, reject) => {
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/running at (http:\/\/\S+)/);
      if (m && /Media \(UDP\) at/.test(out)) resolve(m[1]);
    });
    server.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  // The rest of the banner (media addresses) comes in the same write or just after.
  await new Promise((r) => setTimeout(r, 200));
  return { url, printed: () => out, stop: () => { server.kill(); rmSync(data, { recursive: true, force: true }); } };
}

/// Signs `email` in on `page` through the sign-in form, then opens the
/// messages page.
export async function signInToMessages(page, url, email) {
  await page.goto(url);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Messages" }).click();
  await page.getByRole("navigation", { name: "Conversations" }).waitFor({ timeout: TIMEOUT });
}

/// Chromium with fake camera and microphone, as the tests run it, with any
/// further command-line `args` a test needs.
export function launchBrowser({ args = [] } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      // Three fake cameras, so a test can switch between them (the second
      // is a depth camera, Y16, which no video encoder takes; the third
      // sends MJPEG, as most USB webcams do).
      "--use-fake-device-for-media-stream=device-count=3",
      "--use-fake-ui-for-media-stream",
      "--auto-accept-this-tab-capture",
      "--auto-select-desktop-capture-source=Entire screen",
      "--autoplay-policy=no-user-gesture-required",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...args,
    ],
  });
}

export async function poll(what, fn, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/// Inbound statistics of a page, by the participant and source each track is from.
export async function inbound(page) {
  return page.evaluate(async () => {
    const hook = window.__conclave;
    if (!hook) return [];
    const tracks = hook.tracks();
    const stats = await hook.stats();
    const codecs = new Map(stats.filter((s) => s.type === "codec").map((s) => [s.id, s.mimeType]));
    return stats
      .filter((s) => s.type === "inbound-rtp")
      .map((s) => {
        const t = tracks.find((x) => x.mid === s.mid);
        return { participantId: t?.participantId, source: t?.source, kind: s.kind, framesDecoded: s.framesDecoded ?? 0, bytesReceived: s.bytesReceived ?? 0, codec: codecs.get(s.codecId), frameWidth: s.frameWidth };
      });
  });
}

export const sum = (rows, who, source, field) => rows.filter((r) => r.participantId === who && r.source === source).reduce((a, r) => a + r[field], 0);

export async function myId(page) {
  return page.evaluate(() => window.__conclave?.state().me);
}

/// Resolves once `page` has decoded `frames` more of `from`'s `source`
/// frames, on its peer connection of the moment: a new connection, or a new
/// m-line for a new track, counts from zero.
export async function moving(what, page, from, source = "camera", timeout = TIMEOUT, frames = 10) {
  const decoded = async () => sum(await inbound(page), from, source, "framesDecoded");
  let reference = await decoded();
  return poll(what, async () => {
    const now = await decoded();
    if (now < reference) reference = now;
    return now >= reference + frames;
  }, timeout);
}

/// The spatial layer follows the tile: `viewer` pins a tile other than
/// `name`'s, which makes `from`'s camera a thumbnail there, sent at a lower
/// layer than `reference` (who sees it whole) receives; `whileSmall` runs
/// then (a screenshot). Unpinned, `viewer` gets it whole again. Returns the
/// two widths.
export async function layerFollowsTile({ viewer, reference, from, name, whileSmall = async () => undefined }) {
  const width = async (page) => Math.max(0, ...(await inbound(page))
    .filter((r) => r.participantId === from && r.source === "camera").map((r) => r.frameWidth ?? 0));
  await viewer.getByRole("button", { name: new RegExp(`^Pin (?!${name})`) }).first().click();
  const widths = await poll(`${name}'s thumbnail at a lower layer than the whole picture`, async () => {
    const [thumbnail, whole] = [await width(viewer), await width(reference)];
    return thumbnail > 0 && thumbnail < whole && { thumbnail, whole };
  }, 40_000);
  await whileSmall();
  await viewer.getByRole("button", { name: /^Unpin / }).first().click();
  await poll(`${name}'s camera whole again once unpinned`, async () => {
    const [back, whole] = [await width(viewer), await width(reference)];
    return back > widths.thumbnail && back === whole;
  }, 40_000);
  return widths;
}

/// Runs one browser test's scenario and prints the one `test result:` line
/// the suite tallies (a failure also sets the exit code); `cleanup` closes
/// what the test opened, whatever happened.
export async function runScenario(scenario, cleanup) {
  try {
    await scenario();
    console.log("test result: ok. 1 passed; 0 failed; 0 ignored");
  } catch (err) {
    console.error(err);
    console.log("test result: FAILED. 0 passed; 1 failed; 0 ignored");
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/// Fails when axe-core finds a serious or critical accessibility violation
/// on `page` as it is now.
export async function auditAccessibility(page, what) {
  // Evaluated through the browser's debugging protocol: the page's own CSP
  // refuses inline scripts, as it should.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`), [], `accessibility of ${what}`);
}
