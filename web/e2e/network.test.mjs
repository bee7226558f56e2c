// Media in real Chromium with every video codec, offers that cross, and
// networks that go wrong: the server tells participants to send media to 127.0.0.2, where
// `conclave impair` relays it to the real media port, so the test can cut
// the network (SIGUSR1) as a Wi-Fi drop would, or leave UDP cut, as a
// firewall that blocks it would. ICE over TCP goes straight to the server;
// coturn relays for the guests whose network lets only TCP or only TLS out.
//
//   CONCLAVE_BIN=target/debug/conclave node e2e/network.test.mjs
//
// The meeting is not end-to-end encrypted, so each participant may send its
// camera in another codec (test builds read `window.__conclaveCodec`).
// Screenshots go to web/test-results/network/. Prints one `test result:`
// line for the suite's tally, and the recovery figures as JSON.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, PASSWORD, TIMEOUT, freePort, inbound, launchBrowser, layerFollowsTile, moving, myId, poll, screenshots, startServer } from "./harness.mjs";

const { shot } = screenshots("network");

/// The relay in front of the media port; SIGUSR1 cuts it and restores it,
/// SIGUSR2 makes it a lossy, slow and irregular link (5 % loss each way,
/// 20 ms plus up to 200 ms) and a clean one again.
async function startImpairment(udp) {
  const port = udp.split(":")[1];
  const args = ["impair", "--listen", `127.0.0.2:${port}`, "--upstream", `127.0.0.1:${port}`];
  args.push("--loss", "5", "--delay", "20", "--jitter", "200", "--seed", "7", "--impair-on-signal");
  const proxy = spawn(BIN, args, { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((resolve, reject) => {
    proxy.stdout.on("data", (chunk) => String(chunk).includes("impairing") && resolve());
    proxy.on("exit", (code) => reject(new Error(`the proxy exited with ${code}`)));
  });
  let down = false;
  return {
    toggle: () => {
      down = !down;
      proxy.kill("SIGUSR1");
    },
    isDown: () => down,
    switchImpairment: () => proxy.kill("SIGUSR2"),
    stop: () => proxy.kill(),
  };
}

/// The local candidate of the pair a page's media uses now.
async function route(page) {
  return page.evaluate(async () => {
    const stats = await window.__conclave.stats();
    const pair = stats.find((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded");
    const local = pair && stats.find((s) => s.id === pair.localCandidateId);
    return local ? { protocol: local.protocol, type: local.candidateType, relayProtocol: local.relayProtocol ?? null } : null;
  });
}

/// The protocol of the candidate pair a page's media uses now.
async function transport(page) {
  return (await route(page))?.protocol ?? null;
}

/// coturn on loopback taking clients over TCP and over TLS (no UDP
/// listener), with the TURN REST API's shared secret; it relays to the
/// server over UDP. Its TLS certificate is self-signed, made here; Chromium
/// runs with certificate errors ignored, as it would trust a real one.
async function startCoturn(secret) {
  const port = await freePort();
  const tlsPort = await freePort();
  const relayFrom = 30_000 + (port % 10_000);
  const dir = mkdtempSync(join(tmpdir(), "conclave-coturn-"));
  const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
  const made = spawnSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", "/CN=turn.conclave.test", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
  ], { stdio: ["ignore", "ignore", "inherit"] });
  if (made.status !== 0) throw new Error(`openssl could not make coturn's certificate (exit ${made.status})`);
  const coturn = spawn("turnserver", [
    "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--allow-loopback-peers",
    "--no-udp", "--no-dtls", "--no-cli", "--no-tcp-relay",
    `--tls-listening-port=${tlsPort}`, `--cert=${cert}`, `--pkey=${key}`,
    "--realm=conclave.test", "--use-auth-secret", `--static-auth-secret=${secret}`,
    `--listening-port=${port}`, `--min-port=${relayFrom}`, `--max-port=${relayFrom + 100}`,
    "--log-file=stdout", "--simple-log",
  ], { stdio: ["ignore", "pipe", "inherit"] });
  coturn.on("error", (e) => console.error(`coturn: ${e.message} (cargo xtask test installs it: apt-get install coturn)`));
  // Its log, kept (the last lines) for a failure's report: a relayed guest
  // without media shows there whether it allocated, and over what.
  let log = [];
  coturn.stdout.on("data", (chunk) => { log = log.concat(String(chunk).split("\n")).slice(-80); });
  for (const listening of [port, tlsPort]) {
    await poll(`coturn listening on ${listening}`, () => new Promise((resolve) => {
      const probe = connect(listening, "127.0.0.1", () => { probe.destroy(); resolve(true); });
      probe.on("error", () => resolve(false));
    }), 10_000);
  }
  return {
    urls: [`turn:127.0.0.1:${port}?transport=tcp`, `turns:127.0.0.1:${tlsPort}?transport=tcp`],
    log: () => log.join("\n"),
    stop: () => { coturn.kill(); rmSync(dir, { recursive: true, force: true }); },
  };
}

async function main() {
  // Media advertised at 127.0.0.2 (the proxy); ICE over TCP on 127.0.0.2 too,
  // where nothing stands between Chromium and the server.
  const browser = await launchBrowser({ args: ["--ignore-certificate-errors"] });
  const turnSecret = "network test turn secret";
  const coturn = await startCoturn(turnSecret);
  const server = await startServer(["--media-advertise", "127.0.0.2", "--media-tcp-listen", "127.0.0.2:0", "--turn-urls", coturn.urls.join(","), "--turn-secret", turnSecret]).catch((e) => {
    coturn.stop();
    throw e;
  });
  const udp = server.printed().match(/Media \(UDP\) at (\S+)/)[1];
  const impairment = await startImpairment(udp).catch((e) => {
    server.stop();
    coturn.stop();
    throw e;
  });
  const figures = {};
  const pages = [];
  const open = async (codec, { relayOnly = null, onlyCodec = null } = {}) => {
    const c = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1024, height: 700 } });
    if (codec) await c.addInitScript((mime) => { window.__conclaveCodec = mime; }, codec);
    if (onlyCodec) await c.addInitScript((mime) => { window.__conclaveOnlyCodec = mime; }, onlyCodec);
    if (relayOnly) await c.addInitScript((scheme) => { window.__conclaveRelayOnly = scheme; }, relayOnly);
    const page = await c.newPage();
    page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    page.on("console", (m) => m.type() === "error" && console.error(`[page] ${m.text()}`));
    pages.push(page);
    return page;
  };
  try {
    // The host makes a meeting without end-to-end encryption and opens it,
    // sending what the app sends (VP8, simulcast).
    const host = await open(process.env.HOST_CODEC ?? null);
    await host.goto(server.url);
    await host.getByLabel("Email").fill("host@example.org");
    await host.getByLabel("Password").fill(PASSWORD);
    await host.getByRole("button", { name: "Sign in" }).click();
    await host.getByLabel("Title").fill("Codecs and networks");
    await host.getByLabel(/End-to-end encryption/).uncheck();
    await host.getByRole("button", { name: "New meeting" }).click();
    // Start opens the meeting's invite link.
    await host.getByRole("button", { name: "Start" }).first().click();
    await host.waitForURL(/\/j\/[a-z0-9]+$/);
    const invite = host.url();
    await host.getByRole("button", { name: "Join" }).click();
    await host.getByRole("button", { name: "Participants" }).waitFor({ timeout: TIMEOUT });
    const people = [{ name: "Host", page: host, codec: process.env.HOST_CODEC ?? "video/VP8" }];

    // One guest per codec; each speaks only its own. The host admits them
    // from the participants panel, open from here on.
    await host.getByRole("button", { name: /^Participants/ }).click();
    const codecs = ["video/VP9", "video/H264", "video/AV1"];
    const offered = await host.evaluate(() => RTCRtpSender.getCapabilities("video").codecs.map((c) => c.mimeType));
    for (const codec of codecs.filter((c) => offered.includes(c))) {
      const name = codec.split("/")[1];
      const page = await open(codec);
      await page.goto(invite);
      await page.getByLabel("Your name").fill(`Guest ${name}`);
      await page.getByRole("button", { name: "Join" }).click();
      await host.getByRole("button", { name: `Admit Guest ${name}` }).click({ timeout: TIMEOUT });
      await page.getByRole("button", { name: /^(Mute|Unmute)$/ }).waitFor({ timeout: TIMEOUT });
      people.push({ name, page, codec });
    }
    assert.ok(people.length >= 3, `this Chromium sends ${offered.join(", ")}`);
    for (const p of people) p.id = await myId(p.page);

    // Everyone decodes everyone, each camera in its sender's codec.
    for (const p of people) {
      for (const other of people.filter((o) => o !== p)) {
        await poll(`${p.name} decoding ${other.name}'s ${other.codec}`, async () => {
          const rows = (await inbound(p.page)).filter((r) => r.participantId === other.id && r.source === "camera");
          return rows.some((r) => r.framesDecoded > 0 && r.codec === other.codec);
        }, 40_000);
      }
    }
    figures.codecs = people.map((p) => p.codec);
    await shot(host, "every-codec");

    // VP9 sends its three resolutions in one stream (SVC), and each viewer
    // gets the layers its tile asks for. The H.264 guest pins someone else,
    // which makes the VP9 camera a thumbnail there (asked for at low
    // quality: the lowest spatial layer), while the host, with everyone in
    // a gallery, keeps it whole. Unpinned, the guest gets it whole again.
    const vp9 = people.find((p) => p.codec === "video/VP9");
    const pinner = people.find((p) => p.codec === "video/H264") ?? people.find((p) => p !== vp9 && p !== people[0]);
    const widths = await layerFollowsTile({
      viewer: pinner.page, reference: host, from: vp9.id, name: "Guest VP9",
      whileSmall: () => shot(pinner.page, "vp9-thumbnail-gets-the-lowest-layer"),
    });
    figures.vp9Layers = widths;

    // The network steps with two people: software VP9 and AV1 encoders
    // take both cores of the test machine, so those guests leave.
    const guest = people.find((p) => p.codec === "video/H264") ?? people[1];
    for (const p of people.slice(1).filter((p) => p !== guest)) {
      await p.page.getByRole("button", { name: "Leave" }).click();
      await p.page.close();
    }
    const hostId = people[0].id;

    // A room system that decodes nothing but H.264 joins. The server moves
    // the meeting to a codec everyone decodes: the host's app is told to
    // send its camera in H.264, and the room system sees the host. When it
    // leaves, the host goes back to VP8.
    const sentCodecs = (page) => page.evaluate(async () => {
      const stats = await window.__conclave.stats();
      const codecs = new Map(stats.filter((s) => s.type === "codec").map((s) => [s.id, s.mimeType]));
      return [...new Set(stats.filter((s) => s.type === "outbound-rtp" && s.kind === "video" && s.active !== false && s.codecId).map((s) => codecs.get(s.codecId)))];
    });
    const sends = (page, codec) => async () => {
      const codecs = await sentCodecs(page);
      return codecs.length > 0 && codecs.every((c) => c === codec);
    };
    assert.ok(await sends(host, "video/VP8")(), `the host starts on VP8: ${await sentCodecs(host)}`);
    const roomSystem = await open(null, { onlyCodec: "video/H264" });
    await roomSystem.goto(invite);
    await roomSystem.getByLabel("Your name").fill("Room system");
    await roomSystem.getByRole("button", { name: "Join" }).click();
    await host.getByRole("button", { name: "Admit Room system" }).click({ timeout: TIMEOUT });
    await poll("the host told to send H.264", sends(host, "video/H264"), 40_000);
    await poll("the room system decoding the host's camera in H.264", async () => {
      const rows = (await inbound(roomSystem)).filter((r) => r.participantId === hostId && r.source === "camera");
      return rows.some((r) => r.framesDecoded > 0 && r.codec === "video/H264");
    }, 40_000);
    await shot(roomSystem, "room-system-sees-the-host-in-h264");
    await roomSystem.getByRole("button", { name: "Leave" }).click();
    await roomSystem.close();
    await poll("the host back on VP8 once the room system left", sends(host, "video/VP8"), 40_000);
    figures.codec_for_a_room_system = "video/H264, then video/VP8 again";

    // Offers cross. The guest's app holds the server's offers back, as a
    // slow network would, while the host starts sharing a screen: the
    // server's offer of it waits at the guest. The guest then shares its own
    // screen, and its offer reaches the server while the server's is still
    // unanswered. The server ignores the guest's offer; the browser is the
    // polite peer: once the held offer arrives it rolls its own back,
    // answers, and offers again. Both screens must come through.
    await host.getByLabel("Screen sharing").selectOption("several");
    await guest.page.evaluate(() => window.__conclave.holdOffers());
    await host.getByRole("button", { name: "Share screen" }).click();
    await host.getByRole("button", { name: "Stop sharing" }).waitFor({ timeout: TIMEOUT });
    await guest.page.waitForTimeout(1000);
    await guest.page.getByRole("button", { name: "Share screen" }).click();
    const signaling = (page) => page.evaluate(() => window.__conclave.signalingState());
    await poll("the guest's own offer", async () => (await signaling(guest.page)) === "have-local-offer");
    await guest.page.waitForTimeout(500);
    figures.offers_crossed = await guest.page.evaluate(() => window.__conclave.releaseOffers());
    assert.ok(figures.offers_crossed >= 1, "the server's offer was held while the guest offered");
    await Promise.all([
      moving("the host's screen at the guest after crossing offers", guest.page, hostId, "screen", 30_000),
      moving("the guest's screen at the host after crossing offers", host, guest.id, "screen", 30_000),
    ]);
    assert.equal(await signaling(guest.page), "stable");
    assert.equal(await signaling(host), "stable");
    await shot(guest.page, "offers-crossed");
    for (const p of [host, guest.page]) await p.getByRole("button", { name: "Stop sharing" }).click();

    // The link turns bad: packets lost, round trips of a few hundred
    // milliseconds. Each app, now asking for packets again, holds received
    // video long enough for a retransmission to arrive (the browser's own
    // jitter buffer would show frames before their repairs came, and
    // freeze). At 5 % loss a first repair fails often (its request or its
    // packet lost too), so the hold covers two of the link's round trips
    // (each at least 40 ms here) and the time a loss takes to notice. The
    // hold grows in steps of at most 120 ms (Chromium shows a longer hold
    // by pausing the picture that long), from about the browser's own.
    const playout = (page) => page.evaluate(() => window.__conclave.playout());
    // A packet asked for again while the screens started (a keyframe's
    // burst on a loaded machine) holds video for a while even here.
    const clean = await poll("nothing held on the clean link", async () => {
      const now = await playout(host);
      return now.roundTrips === 0 && now;
    }, 30_000);
    figures.video_held_on_the_clean_link_ms = clean.chosen;
    const heldBefore = { host: null, guest: (await playout(guest.page)).chosen };
    impairment.switchImpairment();
    // Both pages watched at once, so that no step of either is missed.
    await Promise.all([[host, "host"], [guest.page, "guest"]].map(async ([p, name]) => {
      const holds = [heldBefore[name] ?? 150];
      const held = await poll(`the ${name}'s video held for two repairs`, async () => {
        const { chosen, roundTrips, receivers } = await playout(p);
        // No hold (the browser's own again, after a while without repairs)
        // counts as about the browser's: the next starts from there.
        if ((chosen ?? 150) !== holds.at(-1)) holds.push(chosen ?? 150);
        const covered = roundTrips === 2 && chosen !== null && chosen >= 500;
        return covered && receivers.length > 0 && receivers.every((r) => r === chosen) && chosen;
      }, 40_000);
      // The first entry is the hold before the link turned bad, or about
      // the browser's own (150 ms).
      for (const [i, hold] of holds.entries()) {
        if (i > 0) assert.ok(hold - holds[i - 1] <= 120, `the ${name}'s hold grew ${holds.join(" → ")} ms, by more than 120 ms at once`);
      }
      figures[`video_held_on_a_lossy_link_ms_${name}`] = held;
      figures[`video_hold_steps_${name}`] = holds.join(" → ");
    }));
    await Promise.all([
      moving("the guest's video at the host on the lossy link", host, guest.id, "camera", 30_000),
      moving("the host's video at the guest on the lossy link", guest.page, hostId, "camera", 30_000),
    ]);
    // Clean again, the app gives the choice back to the browser once no
    // packet has had to be asked for again for a while.
    impairment.switchImpairment();
    for (const [p, name] of [[host, "host"], [guest.page, "guest"]]) {
      await poll(`the ${name}'s video no longer held on the clean link`, async () => {
        const { chosen, roundTrips, receivers } = await playout(p);
        return chosen === null && roundTrips === 0 && receivers.every((r) => r === null);
      }, 60_000);
    }

    // The network drops for 5 s, as a Wi-Fi would; media comes back by
    // itself (ICE finds its way again, or the app starts a new peer
    // connection), within 3 s of the network's return.
    impairment.toggle();
    await host.waitForTimeout(5000);
    impairment.toggle();
    const back = Date.now();
    await Promise.all([
      moving("the guest's video at the host after the outage", host, guest.id, "camera", 30_000),
      moving("the host's video at the guest after the outage", guest.page, hostId, "camera", 30_000),
    ]);
    figures.recovery_after_5s_outage_ms = Date.now() - back;
    await shot(host, "after-outage");

    // UDP stays blocked, as behind a firewall that blocks it: the
    // connections move to ICE over TCP, by themselves or on new peer
    // connections, and decode again.
    impairment.toggle();
    const blockedAt = Date.now();
    await poll("the host's media over TCP", async () => (await transport(host)) === "tcp", 40_000);
    await poll("the guest's media over TCP", async () => (await transport(guest.page)) === "tcp", 40_000);
    await Promise.all([
      moving("the guest's video at the host over TCP", host, guest.id, "camera", 40_000),
      moving("the host's video at the guest over TCP", guest.page, hostId, "camera", 40_000),
    ]);
    figures.udp_blocked_to_video_over_tcp_ms = Date.now() - blockedAt;
    figures.transport_with_udp_blocked = await transport(guest.page);
    await shot(guest.page, "udp-blocked-over-tcp");

    // Someone joins while UDP is blocked: their first connection goes over
    // TCP, and they see and are seen.
    const late = { name: "Late", page: await open(null) };
    await late.page.goto(invite);
    await late.page.getByLabel("Your name").fill("Late guest");
    await late.page.getByRole("button", { name: "Join" }).click();
    const joinedAt = Date.now();
    await host.getByRole("button", { name: "Admit Late guest" }).click({ timeout: TIMEOUT });
    late.id = await poll("the late guest's seat", () => myId(late.page));
    await Promise.all([
      moving("the host's video at the guest who joined over TCP", late.page, hostId, "camera", 40_000),
      moving("the video of the guest who joined over TCP at the host", host, late.id, "camera", 40_000),
    ]);
    figures.joined_with_udp_blocked_to_video_ms = Date.now() - joinedAt;
    assert.equal(await transport(late.page), "tcp");
    assert.equal(await late.page.evaluate(() => window.__conclave.mediaGeneration()), 1, "the first connection carried the media");
    await shot(late.page, "joined-with-udp-blocked");

    // Someone whose network lets nothing out but TCP to the TURN server
    // (emulated: a relay-only policy, and a TURN server that takes no UDP)
    // joins: their media goes over TCP to coturn, which relays it to the
    // server, and both ways decode. Then someone whose network lets only
    // TLS out (HTTPS and nothing else), through coturn's TLS listener (the
    // `turns:` URL). With a relay-only policy every pair is relayed; Chromium
    // may name the local end peer-reflexive once the server's answers reveal
    // the relayed address, so the route is told by its relay protocol.
    impairment.toggle(); // coturn relays to the server over UDP
    for (const { name, scheme, protocol } of [
      { name: "Relayed guest", scheme: "turn:", protocol: "tcp" },
      { name: "TLS guest", scheme: "turns:", protocol: "tls" },
    ]) {
      const relayed = { page: await open(null, { relayOnly: scheme }) };
      await relayed.page.goto(invite);
      await relayed.page.getByLabel("Your name").fill(name);
      await relayed.page.getByRole("button", { name: "Join" }).click();
      await host.getByRole("button", { name: `Admit ${name}` }).click({ timeout: TIMEOUT });
      relayed.id = await poll(`the seat of the guest relayed over TURN/${protocol}`, () => myId(relayed.page));
      await Promise.all([
        moving(`the host's video at the guest relayed over TURN/${protocol}`, relayed.page, hostId, "camera", 40_000),
        moving(`the video of the guest relayed over TURN/${protocol} at the host`, host, relayed.id, "camera", 40_000),
      ]);
      const path = figures[`route_through_turn_${protocol}`] = await route(relayed.page);
      assert.equal(path?.relayProtocol, protocol, JSON.stringify(path));
      await shot(relayed.page, `relayed-over-turn-${protocol}`);
    }

    console.log(JSON.stringify({ figures }));
    console.log("test result: ok. 1 passed; 0 failed; 0 ignored");
  } catch (err) {
    console.error(err);
    for (const [i, p] of pages.entries()) {
      await shot(p, `failure-page-${i}`).catch(() => undefined);
      const state = await p.evaluate(async () => ({
        me: window.__conclave?.state().me,
        generation: window.__conclave?.mediaGeneration(),
        tracks: window.__conclave?.tracks(),
      })).catch((e) => String(e));
      console.error(`page ${i}:`, JSON.stringify(state), JSON.stringify(await inbound(p).catch((e) => String(e))));
      const outbound = await p.evaluate(async () => (await window.__conclave.stats())
        .filter((s) => s.type === "outbound-rtp" && s.kind === "video")
        .map((s) => ({ rid: s.rid, active: s.active, framesEncoded: s.framesEncoded, framesSent: s.framesSent, limit: s.qualityLimitationReason, width: s.frameWidth, target: s.targetBitrate })))
        .catch((e) => String(e));
      console.error(`page ${i} sends:`, JSON.stringify(outbound));
    }
    console.error(`coturn's log, its last lines:\n${coturn.log()}`);
    console.log("test result: FAILED. 0 passed; 1 failed; 0 ignored");
    process.exitCode = 1;
  } finally {
    await browser.close();
    impairment.stop();
    server.stop();
    coturn.stop();
  }
}

await main();
