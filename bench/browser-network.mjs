// Media on bad networks as Chromium itself sees it: a host and a guest in
// real Chromium (fake camera and microphone, the app's own simulcast
// camera) whose media reaches the server through `conclave impair` on
// 127.0.0.2, one network per meeting, then a 5 s outage. Kept from
// Chromium's own statistics: `freezeCount` and `totalFreezesDuration` of
// each received video, the audio's concealed samples, the mean delay its
// jitter buffer held video for, and after the outage how long until each
// side decodes again.
//
//   CONCLAVE_BIN=… node bench/browser-network.mjs [SECONDS] [LEVELS]
//
// LEVELS is `loss/jitter,…` (default `0/0,2/50,5/200,10/200`); a level
// ending in `/browser` leaves the video's hold to Chromium alone, without
// the app's cover for retransmissions (src/playout.ts). Prints one
// JSON line `{"rows": [...]}` for bench/bad-network.sh. The served app must
// be built with test hooks (the statistics are read through them). With
// CONCLAVE_FREEZE_LOG=1 it also prints each freeze as it ends, with the
// time of day to set beside the server's log (CONCLAVE_LOG=conclave_sfu=debug
// tells when the SFU judged a packet lost, and whether it came after all),
// and what each page's encoder sent.
//
// A level ending in `/janus` is the same two people meeting through Janus's
// VideoRoom instead (bench/janus-meeting.mjs), and the outage is then
// measured through Janus as well. That needs the Janus to use:
//   JANUS_URL    its HTTP API (`http://127.0.0.1:18188/janus`)
//   JANUS_MEDIA  the address its media ports are on, and their range
//                (`192.0.2.10:20000-20031`); Janus advertises them on
//                127.0.0.2 (bench/sfus.sh's `janus_configure DIR 127.0.0.2
//                RANGE`), where `conclave impair --ports` relays each.

import { spawn } from "node:child_process";
import { BIN, PASSWORD, TIMEOUT, launchBrowser, poll, startServer } from "../web/e2e/harness.mjs";
import { blankPage, janusMeeting } from "./janus-meeting.mjs";

const SECONDS = Number(process.argv[2] ?? 20);
const LEVELS = (process.argv[3] ?? "0/0,2/50,5/200,10/200").split(",").map((l) => {
  const [loss, jitter, variant] = l.split("/");
  if (![undefined, "browser", "janus"].includes(variant)) throw new Error(`a level ends in /browser or /janus, not /${variant}`);
  return {
    loss: Number(loss),
    jitter: Number(jitter),
    ...(variant === "browser" ? { browser_hold: true } : {}),
    ...(variant === "janus" ? { server: "janus" } : {}),
  };
});
const JANUS = LEVELS.some((l) => l.server === "janus") ? janusMedia() : null;

/// Where the Janus of the `/janus` levels is, from the environment.
function janusMedia() {
  const url = process.env.JANUS_URL;
  const media = process.env.JANUS_MEDIA?.match(/^(.+):(\d+)-(\d+)$/);
  if (!url || !media) throw new Error("the /janus levels need JANUS_URL and JANUS_MEDIA (address:first-last)");
  const [, address, first, last] = media;
  return { url, address, first: Number(first), ports: Number(last) - Number(first) + 1 };
}
const OUTAGE_S = 5;
/// Time for each meeting to settle (bandwidth estimates ramp up, simulcast
/// layers chosen) before it is measured.
const SETTLE_MS = 8000;

/// The relays running now: stopped however the run ends, so that none
/// holds its ports into the next run.
const relays = new Set();
process.on("exit", () => relays.forEach((relay) => relay.kill()));

/// `conclave impair` in front of the media port (or Janus's range of
/// them), with this network; the same seed for every level, so each
/// differs only in its parameters.
async function impair(udp, { loss, jitter, server }) {
  const args = ["impair"];
  if (server === "janus") {
    args.push("--listen", `127.0.0.2:${JANUS.first}`, "--upstream", `${JANUS.address}:${JANUS.first}`);
    args.push("--ports", String(JANUS.ports));
  } else {
    const port = udp.split(":")[1];
    args.push("--listen", `127.0.0.2:${port}`, "--upstream", `127.0.0.1:${port}`);
  }
  args.push("--delay", "20", "--loss", String(loss), "--jitter", String(jitter), "--seed", "7");
  const proxy = spawn(BIN, args, { stdio: ["ignore", "pipe", "inherit"] });
  relays.add(proxy);
  proxy.on("exit", () => relays.delete(proxy));
  await new Promise((resolve, reject) => {
    proxy.stdout.on("data", (chunk) => String(chunk).includes("impairing") && resolve());
    proxy.on("exit", (code) => reject(new Error(`the proxy exited with ${code}`)));
  });
  return {
    toggle: () => proxy.kill("SIGUSR1"),
    stop: () => new Promise((resolve) => {
      proxy.removeAllListeners("exit");
      relays.delete(proxy);
      proxy.on("exit", resolve);
      proxy.kill();
    }),
  };
}

/// The counters of what a page receives, added over its videos and its audio.
async function received(page) {
  return page.evaluate(async () => {
    const stats = await window.__conclave.stats();
    const rows = stats.filter((s) => s.type === "inbound-rtp");
    const add = (kind, field) => rows.filter((s) => s.kind === kind).reduce((a, s) => a + (s[field] ?? 0), 0);
    return {
      at: performance.now(),
      generation: window.__conclave.mediaGeneration(),
      videos: rows.filter((s) => s.kind === "video" && (s.framesDecoded ?? 0) > 0).length,
      // The picture received now: the tallest video's height.
      height: rows.filter((s) => s.kind === "video").reduce((a, s) => Math.max(a, s.frameHeight ?? 0), 0),
      framesDecoded: add("video", "framesDecoded"),
      freezeCount: add("video", "freezeCount"),
      frozenSeconds: add("video", "totalFreezesDuration"),
      lost: add("video", "packetsLost"),
      packets: add("video", "packetsReceived"),
      nacks: add("video", "nackCount"),
      plis: add("video", "pliCount"),
      keyframes: add("video", "keyFramesDecoded"),
      repaired: add("video", "retransmittedPacketsReceived"),
      bufferedSeconds: add("video", "jitterBufferDelay"),
      buffered: add("video", "jitterBufferEmittedCount"),
      concealed: add("audio", "concealedSamples"),
      samples: add("audio", "totalSamplesReceived"),
    };
  });
}

let meetings = 0;

/// A meeting of two on the network of the moment: the host starts it
/// (without end-to-end encryption, to leave the two cores to the codecs),
/// the guest is admitted; resolves once each decodes the other.
async function meeting(browser, url, { browserHold = false } = {}) {
  const contexts = [];
  const open = async () => {
    const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1024, height: 700 } });
    if (browserHold) await context.addInitScript(() => { window.__conclaveBrowserPlayout = true; });
    contexts.push(context);
    return context.newPage();
  };
  const host = await open();
  await host.goto(url);
  await host.getByLabel("Email").fill("host@example.org");
  await host.getByLabel("Password").fill(PASSWORD);
  await host.getByRole("button", { name: "Sign in" }).click();
  // Each meeting its own title: the host's list keeps the earlier ones.
  const title = `A bad network ${++meetings}`;
  await host.getByLabel("Title").fill(title);
  await host.getByLabel(/End-to-end encryption/).uncheck();
  await host.getByRole("button", { name: "New meeting" }).click();
  const row = host.locator(".meetings li").filter({ hasText: title });
  // Start opens the meeting's invite link.
  await row.getByRole("button", { name: "Start" }).click();
  await host.waitForURL(/\/j\/[a-z0-9]+$/);
  const invite = host.url();
  await host.getByRole("button", { name: "Join" }).click();
  await host.getByRole("button", { name: /^Participants/ }).click({ timeout: TIMEOUT });
  const guest = await open();
  await guest.goto(invite);
  await guest.getByLabel("Your name").fill("Guest");
  await guest.getByRole("button", { name: "Join" }).click();
  await host.getByRole("button", { name: "Admit Guest" }).click({ timeout: 60_000 });
  const close = async () => {
    // Ended for everyone, so nothing of this meeting lingers into the next.
    await host.getByRole("button", { name: "End for all" }).click();
    await guest.getByText(/ended/i).first().waitFor({ timeout: TIMEOUT }).catch(() => undefined);
    await Promise.all(contexts.map((c) => c.close()));
  };
  try {
    await decodingBothWays([host, guest]);
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  return { pages: [host, guest], close };
}

async function decodingBothWays(pages) {
  for (const page of pages) {
    await poll("video both ways", async () => (await received(page)).framesDecoded > 30, 60_000);
  }
}

/// What the pages received over `ms`, as shares and means; a page that
/// started a new peer connection meanwhile counts from its new one.
async function measure(pages, during) {
  const before = await Promise.all(pages.map(received));
  const extra = await during();
  const after = await Promise.all(pages.map(received));
  const sum = (f) => after.reduce((a, s, i) => a + s[f] - (s.generation === before[i].generation ? before[i][f] : 0), 0);
  const videoSeconds = after.reduce((a, s, i) => a + ((s.at - before[i].at) / 1000) * Math.max(1, s.videos), 0);
  return {
    ...extra,
    frozen_pct: (sum("frozenSeconds") / videoSeconds) * 100,
    height: Math.round(after.reduce((a, s) => a + s.height, 0) / after.length),
    freezes: sum("freezeCount"),
    fps: sum("framesDecoded") / videoSeconds,
    packets_lost_pct: (sum("lost") / Math.max(1, sum("lost") + sum("packets"))) * 100,
    nacks: sum("nacks"),
    plis: sum("plis"),
    keyframes: sum("keyframes"),
    repaired_pct: (sum("repaired") / Math.max(1, sum("packets"))) * 100,
    playout_delay_ms: (sum("bufferedSeconds") / Math.max(1, sum("buffered"))) * 1000,
    audio_concealed_pct: (sum("concealed") / Math.max(1, sum("samples"))) * 100,
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// With CONCLAVE_FREEZE_LOG=1, each page's freezes as they happen (the
/// wall-clock time, to set beside the server's log) and, at the end, how
/// each of its simulcast layers was encoded, and the spread of the round
/// trips it read and of the app's hold: what a freeze is to be explained
/// by.
const FREEZE_LOG = process.env.CONCLAVE_FREEZE_LOG === "1";

/// Sleeps `ms`, printing each freeze the pages count meanwhile.
async function watchFreezes(pages, ms) {
  const names = ["host", "guest"];
  const counts = async (page) => page.evaluate(async () => {
    const stats = await window.__conclave.stats();
    const video = stats.filter((s) => s.type === "inbound-rtp" && s.kind === "video");
    return {
      freezes: video.reduce((a, s) => a + (s.freezeCount ?? 0), 0),
      frozen: video.reduce((a, s) => a + (s.totalFreezesDuration ?? 0), 0),
      plis: video.reduce((a, s) => a + (s.pliCount ?? 0), 0),
      lost: video.reduce((a, s) => a + (s.packetsLost ?? 0), 0),
      hold: window.__conclave.playout().chosen,
      // The round trip the app's hold was last sized from (`src/playout.ts`).
      rtt: window.__conclave.playout().roundTripMs,
      // What the browser's congestion control lets it send, in kbit/s.
      sendable: stats
        .filter((s) => s.type === "candidate-pair" && s.nominated && s.availableOutgoingBitrate)
        .map((s) => s.availableOutgoingBitrate / 1000)[0] ?? null,
    };
  });
  let last = await Promise.all(pages.map(counts));
  const seen = pages.map(() => ({ rtts: [], holds: [], sendable: [] }));
  const start = Date.now();
  const end = start + ms;
  console.error(`holds as the measurement starts: ${last.map((l, i) => `${names[i]} ${l.hold ?? "browser's"} ms`).join(", ")}`);
  while (Date.now() < end) {
    await sleep(250);
    const now = await Promise.all(pages.map(counts));
    now.forEach((n, i) => {
      if (n.rtt !== null) seen[i].rtts.push(n.rtt);
      seen[i].holds.push(n.hold ?? 0);
      if (n.sendable !== null) seen[i].sendable.push(n.sendable);
      const was = last[i];
      if (n.freezes !== was.freezes || n.plis !== was.plis) {
        const frozen = Math.round((n.frozen - was.frozen) * 1000);
        const into = ((Date.now() - start) / 1000).toFixed(1);
        console.error(`${new Date().toISOString()} (${into} s in) ${names[i]}: ${n.freezes - was.freezes} freeze(s) ended, ${frozen} ms; PLIs sent +${n.plis - was.plis}; lost ${n.lost}; hold ${n.hold ?? "browser's"} ms`);
      }
    });
    last = now;
  }
  for (const [i, page] of pages.entries()) {
    const { layers, captured } = await page.evaluate(async () => {
      const stats = await window.__conclave.stats();
      return {
        layers: stats
          .filter((s) => s.type === "outbound-rtp" && s.kind === "video")
          .map((s) => `${s.rid}:${s.scalabilityMode ?? "?"} ${s.frameHeight ?? 0}p ${Math.round(s.framesPerSecond ?? 0)}fps nacks ${s.nackCount} plis ${s.pliCount} resent ${s.retransmittedPacketsSent}/${s.packetsSent} ${s.qualityLimitationReason}`),
        captured: stats.filter((s) => s.type === "media-source" && s.kind === "video").map((s) => Math.round(s.framesPerSecond ?? 0)),
      };
    });
    console.error(`${names[i]} sends: ${layers.join(" | ")}; camera ${captured.join("/")} fps`);
    const spread = (xs) => {
      const sorted = [...xs].sort((a, b) => a - b);
      return [0, 0.5, 0.9, 1].map((q) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0)).join("/");
    };
    console.error(`${names[i]} round trips the app read (min/median/p90/max ms): ${spread(seen[i].rtts)}; hold: ${spread(seen[i].holds)}; sendable kbit/s: ${spread(seen[i].sendable)}`);
  }
}

/// Resolves with the time, from `since`, at which `page` has decoded ten
/// video frames more than when called (on a new peer connection, ten).
async function movingAgain(page, since) {
  let reference = await received(page);
  await poll("video moving again", async () => {
    const now = await received(page);
    if (now.generation !== reference.generation) reference = { ...now, framesDecoded: 0 };
    return now.framesDecoded >= reference.framesDecoded + 10;
  }, 60_000);
  return Date.now() - since;
}

async function main() {
  const browser = await launchBrowser();
  const server = await startServer(["--media-advertise", "127.0.0.2", "--media-tcp-listen", "off"]);
  const udp = server.printed().match(/Media \(UDP\) at (\S+)/)[1];
  const blank = JANUS ? await blankPage() : null;
  const meetOnce = (level) =>
    level.server === "janus"
      ? janusMeeting(browser, JANUS.url, blank.url, decodingBothWays)
      : meeting(browser, server.url, { browserHold: level.browser_hold });
  // On the lossiest links a meeting's first video now and then takes longer
  // than the wait for it (seen through Janus at 5 % loss and 200 ms): one
  // more meeting then, rather than losing the whole run.
  const meet = async (level) => {
    try {
      return await meetOnce(level);
    } catch (err) {
      console.error(`a meeting did not get going (${err.message}); a new one`);
      return meetOnce(level);
    }
  };
  const rows = [];
  try {
    for (const level of LEVELS) {
      console.error(`== Chromium${level.server === "janus" ? " through Janus" : ""}: ${level.loss} % loss, 20 ms + up to ${level.jitter} ms jitter${level.browser_hold ? ", the browser's own hold" : ""}`);
      const proxy = await impair(udp, level);
      const call = await meet(level);
      await sleep(SETTLE_MS);
      rows.push({ ...level, ...(await measure(call.pages, () => (FREEZE_LOG ? watchFreezes(call.pages, SECONDS * 1000) : sleep(SECONDS * 1000)))) });
      console.error(JSON.stringify(rows.at(-1)));
      await call.close();
      await proxy.stop();
    }
    for (const through of JANUS ? [{}, { server: "janus" }] : [{}]) {
      console.error(`== Chromium${through.server ? " through Janus" : ""}: a ${OUTAGE_S} s outage`);
      const proxy = await impair(udp, { loss: 0, jitter: 0, ...through });
      const call = await meet(through);
      await sleep(SETTLE_MS);
      rows.push({
        loss: 0,
        jitter: 0,
        outage_s: OUTAGE_S,
        ...through,
        ...(await measure(call.pages, async () => {
          const started = Date.now();
          await sleep(3000);
          proxy.toggle();
          await sleep(OUTAGE_S * 1000);
          proxy.toggle();
          const back = Date.now();
          const recovery = await Promise.all(call.pages.map((p) => movingAgain(p, back)));
          await sleep(Math.max(0, SECONDS * 1000 - (Date.now() - started)));
          return { recovery_ms: Math.max(...recovery) };
        })),
      });
      console.error(JSON.stringify(rows.at(-1)));
      await call.close();
      await proxy.stop();
    }
    console.log(JSON.stringify({ rows }));
  } finally {
    await browser.close();
    blank?.close();
    server.stop();
  }
}

await main();
