// A whole meeting in real Chromium (Debian's /usr/bin/chromium) with fake
// camera and microphone, driven by Playwright: a host and two guests in
// separate browser contexts, through the real `conclave serve`. The
// meeting is end-to-end encrypted (the organisation's default): every frame
// passes through each browser's E2EE worker, the security codes shown
// must match and change when a third person joins, and the host opening
// the meeting on a second device is announced to the others.
//
//   CONCLAVE_BIN=target/debug/conclave node e2e/meeting.test.mjs
//
// Screenshots of each step go to web/test-results/meeting/. Prints one
// `test result:` line for the suite's tally, and timing figures as JSON
// (`bench/web-join.sh` collects them).

import assert from "node:assert/strict";
import { join } from "node:path";
import { PASSWORD, TIMEOUT, auditAccessibility, inbound, launchBrowser, layerFollowsTile, moving, myId, poll, screenshots, startServer, sum } from "./harness.mjs";

const { dir: results, shot } = screenshots("meeting");

/// Where the meeting's parts are on a page, for the layout checks.
async function layout(page) {
  return page.evaluate(() => {
    const box = (el) => {
      const r = el.getBoundingClientRect();
      return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
    };
    const one = (selector) => {
      const el = document.querySelector(selector);
      return el ? box(el) : null;
    };
    const all = (selector) => [...document.querySelectorAll(selector)].map(box);
    return {
      stage: one(".stage"),
      controls: one(".controls"),
      panel: one(".panel-frame"),
      bar: one(".meeting-bar"),
      badge: one(".e2ee-badge"),
      toasts: all(".toasts p"),
      tiles: all("figure.tile"),
      scrollWidth: document.documentElement.scrollWidth,
      viewport: { width: innerWidth, height: innerHeight },
    };
  });
}
const overlaps = (a, b) => !!a && !!b && a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1 && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;

/// Every tile on the stage, none under the bar, the toolbar or the panel,
/// none off-screen, and together at least `share` of the stage's area.
function assertTilesFit(seen, who, share) {
  assert.ok(seen.tiles.length > 0, `${who}: tiles shown`);
  for (const tile of seen.tiles) {
    assert.ok(inside(tile, seen.stage), `${who}: a tile ${JSON.stringify(tile)} outside the stage ${JSON.stringify(seen.stage)}`);
    for (const part of ["controls", "panel", "bar"]) assert.ok(!overlaps(tile, seen[part]), `${who}: a tile under the ${part}`);
    assert.ok(!overlaps(tile, seen.badge), `${who}: the encryption badge over a tile`);
  }
  const area = seen.tiles.reduce((a, t) => a + t.width * t.height, 0);
  const stageArea = seen.stage.width * seen.stage.height;
  assert.ok(area >= share * stageArea, `${who}: tiles fill ${Math.round((100 * area) / stageArea)} % of the stage (at least ${share * 100} % expected)`);
  assert.ok(seen.scrollWidth <= seen.viewport.width, `${who}: the page scrolls sideways`);
}

/// The E2EE state a page shows: its security code and frame counts.
async function e2ee(page) {
  return page.evaluate(() => window.__conclave?.e2ee() ?? null);
}

async function main() {
  const browser = await launchBrowser();
  const server = await startServer();
  const origin = new URL(server.url).origin;
  const foreign = [];
  const cspViolations = [];
  const context = async () => {
    const c = await browser.newContext({ permissions: ["camera", "microphone", "clipboard-read", "clipboard-write"], viewport: { width: 1280, height: 800 } });
    c.on("page", (p) => {
      pagesForDebug.push(p);
      p.on("console", (m) => {
        if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
        if (m.type() === "error" || m.type() === "warning") console.error(`[page] ${m.text()}`);
      });
      p.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
    });
    c.on("request", (r) => {
      const u = new URL(r.url());
      if (!["data:", "blob:"].includes(u.protocol) && u.origin !== origin) foreign.push(r.url());
    });
    return c;
  };
  const figures = {};
  const pagesForDebug = [];
  try {
    // The host signs in and creates a meeting.
    const host = await (await context()).newPage();
    await host.goto(server.url);
    await host.getByLabel("Email").fill("host@example.org");
    await host.getByLabel("Password").fill(PASSWORD);
    await host.getByRole("button", { name: "Sign in" }).click();
    await host.getByLabel("Title").fill("Weekly sync");
    await host.getByRole("button", { name: "New meeting" }).click();
    // The home page shows the code, not the raw link: "Copy invite" puts
    // the link, code and passcode on the clipboard.
    const code = (await host.locator(".meetings li p").first().textContent()).match(/code (\d{3} \d{3} \d{4})/)[1];
    assert.equal(await host.getByText(/\/j\/[a-z0-9]{32}/).count(), 0, "no raw invite link on the home page");
    assert.doesNotMatch(await host.locator(".meetings li").first().textContent(), /\d{1,2}:\d{2}:\d{2}/, "no seconds in dates");
    await host.getByRole("button", { name: "Copy invite" }).first().click();
    await host.getByRole("button", { name: "Copied" }).waitFor({ timeout: TIMEOUT });
    const copied = await host.evaluate(() => navigator.clipboard.readText());
    const invite = copied.match(/https?:\/\/\S+\/j\/[a-z0-9]{32}/)?.[0];
    assert.ok(invite, `an invite link in the copied text: ${copied}`);
    assert.match(copied, /^Weekly sync\n/);
    assert.ok(copied.includes(`Meeting code: ${code}`));
    // The host key makes whoever types it a host: hidden until asked for.
    const hostKey = host.locator(".meetings li").first().locator(".host-key");
    assert.equal(await hostKey.textContent(), "••••••");
    await shot(host, "host-home");
    await auditAccessibility(host, "the home page");
    await host.getByRole("button", { name: "Show the host key" }).first().click();
    assert.match(await hostKey.textContent(), /^\S{6,}$/);
    await host.getByRole("button", { name: "Hide the host key" }).first().click();
    assert.equal(await hostKey.textContent(), "••••••");
    await host.getByRole("button", { name: "Start" }).first().click();
    // The join page names the meeting and its host, and shows the
    // microphone's level before anyone is in.
    await host.getByRole("heading", { name: "Join “Weekly sync”" }).waitFor({ timeout: TIMEOUT });
    await host.getByText(/Hosted by .+ · not started yet/).waitFor({ timeout: TIMEOUT });
    await poll("the microphone's level moving", async () => (await host.getByRole("meter", { name: "Microphone level" }).evaluate((m) => m.value).catch(() => 0)) > 0);
    await auditAccessibility(host, "the join page");
    await host.getByRole("button", { name: "Join" }).click();
    await host.getByRole("button", { name: "Participants" }).waitFor({ timeout: TIMEOUT });
    // The meeting view takes the focus on its heading, the meeting's title.
    assert.equal(await host.evaluate(() => document.activeElement?.textContent), "Weekly sync (you are in the meeting)");
    await shot(host, "host-in-meeting");
    if (!(await host.evaluate(() => "__conclave" in window))) {
      throw new Error("the served app has no test hooks: build it with `cargo xtask web --test-hooks`, then rebuild the binary");
    }
    // Meet's shortcut mutes and unmutes, wherever the focus is.
    await host.keyboard.press("Control+d");
    await host.getByRole("button", { name: "Unmute" }).waitFor({ timeout: TIMEOUT });
    await host.keyboard.press("Control+d");
    await host.getByRole("button", { name: "Mute", exact: true }).waitFor({ timeout: TIMEOUT });

    // Two guests knock; while waiting they have no media, roster or chat.
    const guests = [];
    for (const name of ["Ada", "Grace"]) {
      const c = await context();
      // Grace's camera sends VP9 with three spatial layers (SVC), sealed
      // whole by the E2EE worker; the SFU still picks each viewer's layers
      // from the payload descriptor outside the sealed frame.
      if (name === "Grace") await c.addInitScript(() => { window.__conclaveCodec = "video/VP9"; });
      const page = await c.newPage();
      await page.goto(invite);
      await page.getByText(/Hosted by .+ · in progress now · end-to-end encrypted/).waitFor({ timeout: TIMEOUT });
      await page.getByLabel("Your name").fill(name);
      await shot(page, `${name.toLowerCase()}-preview`);
      await page.getByRole("button", { name: "Join" }).click();
      await page.getByText("Waiting for the host to let you in").waitFor({ timeout: TIMEOUT });
      // The waiting room takes the focus, and names the meeting.
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Waiting for the host to let you in");
      await page.getByText("Weekly sync").waitFor({ timeout: TIMEOUT });
      await page.waitForTimeout(1000);
      const seen = await page.evaluate(async () => ({
        videos: document.querySelectorAll("video").length,
        state: window.__conclave.state(),
        stats: await window.__conclave.stats(),
      }));
      assert.equal(seen.videos, 0, `${name} sees no video while waiting`);
      assert.equal(seen.state.phase, "waiting");
      assert.deepEqual([seen.state.roster, seen.state.chat, seen.state.waiting], [[], [], []], `${name} knows nothing of the meeting`);
      assert.deepEqual(seen.stats, [], `${name} has no media connection`);
      assert.equal(await page.locator(".roster, .chat").count(), 0);
      await shot(page, `${name.toLowerCase()}-waiting`);
      if (name === "Ada") await auditAccessibility(page, "the waiting room");
      guests.push({ name, page });
    }
    const [ada, grace] = guests;

    // The host admits both (Ada's admission is timed to her first decoded frame).
    await host.getByRole("button", { name: /Participants/ }).click();
    await host.getByRole("button", { name: "Admit Ada" }).waitFor({ timeout: TIMEOUT });
    await shot(host, "host-sees-knocks");
    const admittedAt = Date.now();
    await host.getByRole("button", { name: "Admit Ada" }).click();
    // The focus moves on to the next person waiting, not to the page.
    await poll("the focus on Grace's Admit", async () => (await host.evaluate(() => document.activeElement?.getAttribute("aria-label"))) === "Admit Grace");
    await poll("Ada's first decoded frame", async () => (await inbound(ada.page)).some((r) => r.kind === "video" && r.framesDecoded > 0));
    figures.admission_to_first_frame_ms = Date.now() - admittedAt;
    // Two people in the E2EE meeting show the same security code.
    const codeTwo = await poll("host and Ada showing one security code", async () => {
      const [h, a] = [await e2ee(host), await e2ee(ada.page)];
      return h?.code && h.code === a?.code ? h.code : null;
    });
    await host.getByRole("button", { name: "Admit Grace" }).click();
    // The roster marks who is signed in, and from which organisation: the
    // guests as guests, the host by its organisation.
    await host.locator(".roster .standing.guest").nth(1).waitFor({ timeout: TIMEOUT });
    assert.equal(await host.locator(".roster .standing.member").count(), 1, "the host, a member of the organisation");

    // The meeting starts people muted: the guests, who left their
    // microphone on at the join page, are told so.
    for (const g of guests) await g.page.getByText(/You joined muted: this meeting mutes people as they come in/).waitFor({ timeout: TIMEOUT });
    // Everyone unmutes, then sees and hears everyone.
    const people = [{ name: "Host", page: host }, ...guests];
    for (const p of people) {
      await p.page.getByRole("button", { name: /^(Mute|Unmute)$/ }).waitFor({ timeout: TIMEOUT });
      if (await p.page.getByRole("button", { name: "Unmute", exact: true }).count()) await p.page.getByRole("button", { name: "Unmute", exact: true }).click();
      await p.page.getByRole("button", { name: "Mute", exact: true }).waitFor({ timeout: TIMEOUT });
      p.id = await myId(p.page);
    }
    for (const p of people) {
      for (const other of people.filter((o) => o !== p)) {
        await poll(`${p.name} decoding ${other.name}`, async () => {
          const rows = await inbound(p.page);
          return sum(rows, other.id, "camera", "framesDecoded") > 0 && sum(rows, other.id, "microphone", "bytesReceived") > 0;
        });
      }
      await shot(p.page, `${p.name.toLowerCase()}-gallery`);
    }
    // Grace's VP9 reaches both, decoded through the E2EE worker, at the
    // spatial layer the SFU chose for each viewer's tile.
    for (const p of [host, ada.page]) {
      const rows = (await inbound(p)).filter((r) => r.participantId === grace.id && r.source === "camera" && r.framesDecoded > 0);
      assert.deepEqual(rows.map((r) => r.codec), ["video/VP9"], JSON.stringify(rows));
    }
    await moving("Grace's end-to-end encrypted VP9 at the host", host, grace.id, "camera");
    // The SFU reads the layers of sealed frames: with someone else pinned,
    // Grace is a thumbnail at Ada and gets a lower spatial layer than the
    // host sees; unpinned, the whole picture again.
    figures.grace_vp9_widths = await layerFollowsTile({
      viewer: ada.page, reference: host, from: grace.id, name: "Grace",
      whileSmall: () => shot(ada.page, "grace-vp9-thumbnail-sealed"),
    });
    // Three tiles fill the stage (beside the host's open panel too) and
    // stay clear of the bar, the toolbar and the panel.
    for (const p of people) assertTilesFit(await layout(p.page), p.name, 0.35);
    // Reactions come up as toasts in the stage's corner, not over the panel
    // open beside it or the toolbar.
    await ada.page.getByRole("button", { name: "Reactions" }).click();
    await ada.page.getByRole("button", { name: "React 🎉" }).click();
    await host.getByText("Ada: 🎉").waitFor({ timeout: TIMEOUT });
    const withToast = await layout(host);
    for (const toast of withToast.toasts) {
      for (const part of ["controls", "panel", "bar"]) assert.ok(!overlaps(toast, withToast[part]), `a toast over the ${part}`);
      assert.ok(inside(toast, withToast.stage), "a toast outside the stage");
    }
    await shot(host, "host-sees-a-reaction");
    await auditAccessibility(host, "the meeting with its participants panel");
    // Every app reports its call quality; the host sees a level beside each
    // name (in the participants panel, open since the admissions).
    await poll("quality levels in the host's roster", async () => (await host.locator(".roster [data-quality]").count()) >= 3, 30_000);
    const levels = await host.locator(".roster [data-quality]").evaluateAll((els) => els.map((e) => e.getAttribute("aria-label")));
    assert.ok(levels.every((l) => /^(Good|Fair|Poor) connection for .+ % loss/.test(l)), JSON.stringify(levels));
    await shot(host, "host-sees-call-quality");

    // With a third person everyone's code changed, and all three match.
    const codeThree = await poll("three matching security codes", async () => {
      const codes = await Promise.all(people.map(async (p) => (await e2ee(p.page))?.code));
      return codes.every((c) => c && c === codes[0] && c !== codeTwo) ? codes[0] : null;
    });
    assert.match(codeThree, /^(\d{5} ){7}\d{5}$/);
    // Every frame went through the worker: sealed on the way out, opened on the way in.
    for (const p of people) {
      const state = await poll(`${p.name}'s sealed and opened frames`, async () => {
        const s = await e2ee(p.page);
        return s && s.counts.sealed > 50 && s.counts.opened > 50 ? s : null;
      });
      figures[`${p.name.toLowerCase()}_e2ee_frames`] = state.counts;
    }
    // Each device's key is vouched for by the server, and listed with its fingerprint.
    const hostView = await e2ee(host);
    assert.equal(hostView.members.length, 3);
    assert.ok(hostView.members.every((m) => m.verified), "every device vouched for");
    // Named as the meeting knows them (the host by their account's name).
    const names = await host.evaluate(() => window.__conclave.state().roster.map((r) => r.display_name));
    assert.deepEqual(hostView.members.map((m) => m.display_name).sort(), [...names].sort());
    await host.getByRole("button", { name: "End-to-end encrypted" }).click();
    assert.equal((await host.getByLabel("Security code").textContent()).replace(/\s/g, ""), codeThree.replace(/ /g, ""));
    const devices = host.getByRole("list", { name: "Devices holding the keys" }).getByRole("listitem");
    assert.equal(await devices.count(), 3);
    for (const text of await devices.allTextContents()) assert.match(text, /key [0-9a-f]{4}( [0-9a-f]{4}){4} · ✓ vouched for by the server/);
    await shot(host, "host-security-code");
    await host.getByRole("button", { name: "Security", exact: true }).click();

    // A Pin button shows on the tile under the pointer or the focus, not
    // on every face. Pinned from the keyboard, the tile moves to the
    // featured place and its button keeps the focus; the other tiles stay
    // on screen in the strip.
    await ada.page.mouse.move(5, 5);
    const pinOpacity = await ada.page.locator("figure.tile button.pin").evaluateAll((pins) => pins.map((p) => getComputedStyle(p).opacity));
    assert.ok(pinOpacity.every((o) => o === "0"), `Pin buttons hidden: ${pinOpacity}`);
    await ada.page.getByRole("button", { name: "Pin Grace", exact: true }).focus();
    await ada.page.keyboard.press("Enter");
    await ada.page.getByRole("button", { name: "Unpin Grace", exact: true }).waitFor({ timeout: TIMEOUT });
    const focused = () => ada.page.evaluate(() => document.activeElement?.getAttribute("aria-label"));
    await poll("the focus on the pinned tile's Unpin", async () => (await focused()) === "Unpin Grace");
    const pinnedView = await layout(ada.page);
    assertTilesFit(pinnedView, "Ada, Grace pinned", 0.3);
    assert.equal(pinnedView.tiles.length, 3, "every tile on screen with one pinned");
    await shot(ada.page, "ada-pinned-grace");
    await ada.page.keyboard.press("Enter");
    await ada.page.getByRole("button", { name: "Pin Grace", exact: true }).waitFor({ timeout: TIMEOUT });
    await poll("the focus following the tile back", async () => (await focused()) === "Pin Grace");

    // The transport is DTLS-SRTP with AES-256-GCM.
    const cipher = await host.evaluate(async () => (await window.__conclave.stats()).find((s) => s.type === "transport")?.srtpCipher);
    assert.equal(cipher, "SRTP_AEAD_AES_256_GCM");
    figures.srtp_cipher = cipher;

    // Ada switches her camera off and on: her picture comes back, in her
    // self-view and at the host's (the tile's <video> is a new element).
    const tileWidth = (page, who) => page.evaluate((id) => window.__conclave.tiles().find((t) => t.participant === id && t.kind === "camera")?.width ?? 0, who);
    await ada.page.getByRole("button", { name: "Stop video", exact: true }).click();
    await ada.page.getByRole("button", { name: "Start video", exact: true }).waitFor({ timeout: TIMEOUT });
    await poll("Ada's tile showing her initial", async () => (await tileWidth(host, people[1].id)) === 0);
    await ada.page.getByRole("button", { name: "Start video", exact: true }).click();
    await poll("Ada's picture in her self-view", async () => (await tileWidth(ada.page, people[1].id)) > 0);
    await poll("Ada's picture at the host", async () => (await tileWidth(host, people[1].id)) > 0);
    await shot(host, "host-sees-ada-camera-back");

    // Ada picks her other camera and another microphone in the devices
    // panel: her app sends from them, her self-view shows the new camera,
    // and the host keeps decoding her picture and receiving her sound.
    const sending = (page) => page.evaluate(() => window.__conclave.sending());
    const devicesBefore = await sending(ada.page);
    await ada.page.getByRole("button", { name: "Devices", exact: true }).click();
    const choose = async (label, current, which = (options) => options.findLast((o) => o !== current)) => {
      const select = ada.page.getByRole("region", { name: "Devices" }).getByLabel(label);
      const options = await select.evaluate((s) => [...s.options].filter((o) => !o.disabled).map((o) => o.text));
      const other = which(options);
      assert.ok(other, `another ${label.toLowerCase()} to choose than ${current} among ${options.join(", ")}`);
      await select.selectOption({ label: other });
      return other;
    };
    // First the depth camera Chromium lists second, which gives nothing a
    // video encoder takes: the app says so and keeps the camera she had.
    const depth = await choose("Camera", devicesBefore.camera, (options) => options.find((o) => o === "fake_device_1"));
    await ada.page.getByText(/gives no picture others can see/).waitFor({ timeout: TIMEOUT });
    assert.equal((await sending(ada.page)).camera, devicesBefore.camera, `still sending from her camera, not ${depth}`);
    await moving("Ada's own camera at the host, kept", host, people[1].id);
    await shot(ada.page, "ada-told-the-depth-camera-gives-no-picture");
    const camera = await choose("Camera", devicesBefore.camera);
    await poll("Ada sending from her other camera", async () => (await sending(ada.page)).camera === camera);
    const devicesList = ada.page.getByRole("region", { name: "Devices" });
    const microphone = await choose("Microphone", devicesBefore.microphone);
    await poll("Ada sending from her other microphone", async () => (await sending(ada.page)).microphone === microphone);
    await moving("Ada's other camera at the host", host, people[1].id);
    await poll("Ada's other camera in her self-view", async () => (await tileWidth(ada.page, people[1].id)) > 0);
    const heard = async () => sum(await inbound(host), people[1].id, "microphone", "bytesReceived");
    const heardBefore = await heard();
    await poll("Ada's other microphone at the host", async () => (await heard()) > heardBefore + 2000);
    // The list shows what she sends from, both kinds (switched one after the other).
    await poll("the devices panel showing her new devices", async () => {
      const shown = await devicesList.locator("select").evaluateAll((all) => all.map((s) => s.options[s.selectedIndex]?.text));
      return shown[0] === camera && shown[1] === microphone;
    });
    figures.devices_switched = { camera, microphone };
    await shot(ada.page, "ada-switched-devices");
    await ada.page.getByRole("button", { name: "Devices", exact: true }).click();

    // Ada's app replaces its peer connection (what it does by itself when
    // the server says her session was lost or failed, or the connection
    // fails): the server gives her seat a fresh session, and media flows
    // both ways again, end-to-end encrypted. Her new connection counts its
    // frames from zero.
    const openedBefore = (await e2ee(ada.page)).counts.opened;
    const renewedAt = Date.now();
    await ada.page.evaluate(() => window.__conclave.renewMedia());
    await poll("Ada on her second peer connection", async () => (await ada.page.evaluate(() => window.__conclave.mediaGeneration())) === 2);
    await moving("the host's video at Ada again", ada.page, people[0].id);
    figures.new_peer_connection_to_first_frame_ms = Date.now() - renewedAt;
    await moving("Ada's video at the host again", host, people[1].id);
    await poll("Ada opening frames again", async () => (await e2ee(ada.page)).counts.opened > openedBefore + 50);
    await shot(ada.page, "ada-after-new-peer-connection");

    // Ada blurs her background on her device (MediaPipe, served by us); the
    // host keeps receiving her video.
    await ada.page.getByRole("button", { name: "Blur background" }).click();
    await ada.page.getByRole("button", { name: "Background: blurred" }).waitFor({ timeout: TIMEOUT });
    await ada.page.waitForTimeout(1500);
    const beforeBlur = sum(await inbound(host), people[1].id, "camera", "framesDecoded");
    // Her page builds MediaPipe's graph at the first segmentation: on a
    // 2-core machine without a GPU (software WebGL) that takes about 20 s,
    // during which it draws no frame.
    await poll("Ada's blurred video", async () => sum(await inbound(host), people[1].id, "camera", "framesDecoded") > beforeBlur + 10, 60_000);
    await shot(host, "host-sees-blurred-ada");

    // Chat both ways.
    await ada.page.getByRole("button", { name: "Chat" }).click();
    await ada.page.getByLabel("Message").fill("hello from Ada");
    await ada.page.getByRole("button", { name: "Send" }).click();
    // With its panel closed, the host's Chat button counts what came.
    await host.getByRole("button", { name: "Chat, 1 unread" }).waitFor({ timeout: TIMEOUT });
    await host.getByRole("button", { name: "Chat" }).click();
    await host.getByText("hello from Ada").waitFor({ timeout: TIMEOUT });
    assert.equal(await host.getByRole("button", { name: /unread/ }).count(), 0, "read once the panel is open");
    await host.getByLabel("Message").fill("welcome, Ada");
    await host.getByRole("button", { name: "Send" }).click();
    await ada.page.getByText("welcome, Ada").waitFor({ timeout: TIMEOUT });
    // The panel resizes from its edge, by the keyboard and by dragging.
    const panelWidth = () => host.locator(".panel-frame .panel").evaluate((p) => p.getBoundingClientRect().width);
    const widthBefore = await panelWidth();
    const handle = host.getByRole("separator", { name: "Resize the panel" });
    await handle.focus();
    for (let i = 0; i < 3; i++) await host.keyboard.press("ArrowLeft");
    assert.equal(Math.round((await panelWidth()) - widthBefore), 48, "three arrow presses widen the panel by 48 px");
    const grip = await handle.boundingBox();
    await host.mouse.move(grip.x + grip.width / 2, grip.y + grip.height / 2);
    await host.mouse.down();
    await host.mouse.move(grip.x + grip.width / 2 + 100, grip.y + grip.height / 2, { steps: 5 });
    await host.mouse.up();
    assert.equal(Math.round((await panelWidth()) - widthBefore), -52, "dragged 100 px toward the stage's far side, it narrows");
    assertTilesFit(await layout(host), "the host beside a resized panel", 0.3);
    await handle.focus();
    // A panel gives the focus back to its button when Escape closes it.
    await host.keyboard.press("Escape");
    await poll("the chat panel closed by Escape", async () => (await host.getByRole("region", { name: "Chat" }).count()) === 0);
    assert.equal(await host.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Chat", "focus back on the Chat button");
    await shot(ada.page, "ada-chat");

    // Grace shares her screen; the others see it.
    await grace.page.getByRole("button", { name: "Share screen" }).click();
    for (const p of [host, ada.page]) {
      await poll("Grace's screen", async () => sum(await inbound(p), grace.id ?? people[2].id, "screen", "framesDecoded") > 0);
    }
    await shot(host, "host-sees-share");
    // She stops and shares again: the new share reaches the others too.
    await grace.page.getByRole("button", { name: "Stop sharing" }).click();
    await grace.page.getByRole("button", { name: "Share screen" }).click();
    await Promise.all([host, ada.page].map((p) => moving("Grace's screen again", p, people[2].id, "screen")));

    // The host mutes Ada and stops her video: nothing more of them arrives.
    await host.getByRole("button", { name: "Participants" }).click();
    await host.getByRole("button", { name: "Mute Ada", exact: true }).click();
    // Mute turns disabled: the focus moves to the button beside it.
    await poll("the focus on Ask to unmute Ada", async () => (await host.evaluate(() => document.activeElement?.getAttribute("aria-label"))) === "Ask to unmute Ada");
    await host.getByRole("button", { name: "Stop video for Ada" }).click();
    await ada.page.getByRole("button", { name: "Unmute", exact: true }).waitFor({ timeout: TIMEOUT });
    await host.waitForTimeout(1500);
    const before = await inbound(host);
    await host.waitForTimeout(1500);
    const after = await inbound(host);
    assert.ok(sum(after, people[1].id, "microphone", "bytesReceived") - sum(before, people[1].id, "microphone", "bytesReceived") < 2000, "Ada's audio stopped");
    assert.equal(sum(after, people[1].id, "camera", "framesDecoded"), sum(before, people[1].id, "camera", "framesDecoded"), "Ada's video stopped");
    await shot(host, "host-muted-ada");

    // Linus's camera sends H.264, a hardware encoder's codec, sealed as
    // Annex B with its parameter sets and slice header readable (the
    // sending browser's packetiser splits frames at their start codes);
    // then Ken's sends AV1, sealed as OBUs whose headers and sizes stay
    // readable (its packetiser walks them). The host and Ada decode each
    // through the E2EE worker, and each decodes the host.
    for (const [name, codec, shotName] of [["Linus", "video/H264", "ada-sees-linus-h264-sealed"], ["Ken", "video/AV1", "ada-sees-ken-av1-sealed"]]) {
      const guest = await (await context()).newPage();
      await guest.addInitScript((c) => { window.__conclaveCodec = c; }, codec);
      await guest.goto(invite);
      await guest.getByLabel("Your name").fill(name);
      await guest.getByRole("button", { name: "Join" }).click();
      await guest.getByText("Waiting for the host to let you in").waitFor({ timeout: TIMEOUT });
      const admit = host.getByRole("button", { name: `Admit ${name}` });
      await host.waitForTimeout(1000);
      if (!(await admit.isVisible())) {
        await host.getByRole("button", { name: /^Participants/ }).click();
      }
      await admit.click({ timeout: TIMEOUT });
      await guest.getByRole("button", { name: /^(Mute|Unmute)$/ }).waitFor({ timeout: TIMEOUT });
      const guestId = await myId(guest);
      for (const [viewer, page] of [["the host", host], ["Ada", ada.page]]) {
        await poll(`${viewer} decoding ${name}'s end-to-end encrypted ${codec}`, async () => {
          const rows = (await inbound(page)).filter((r) => r.participantId === guestId && r.source === "camera" && r.framesDecoded > 0);
          return rows.length > 0 && rows.every((r) => r.codec === codec);
        });
        await moving(`${name}'s ${codec} moving at ${viewer}`, page, guestId, "camera");
      }
      await poll(`${name} decoding the host`, async () => sum(await inbound(guest), people[0].id, "camera", "framesDecoded") > 10);
      const sealed = await poll(`${name}'s sealed and opened frames`, async () => {
        const s = await e2ee(guest);
        return s && s.counts.sealed > 50 && s.counts.opened > 50 ? s : null;
      });
      figures[`${name.toLowerCase()}_${codec.slice(6).toLowerCase()}_e2ee_frames`] = sealed.counts;
      await shot(ada.page, shotName);
      await guest.getByRole("button", { name: "Leave" }).click();
      await guest.close();
    }

    // The host locks the meeting: a newcomer is turned away. (Before the
    // removal below: guests are banned by address too, and every context
    // here shares 127.0.0.1.)
    await host.getByRole("button", { name: "Lock meeting" }).click();
    await host.getByRole("button", { name: "Unlock meeting" }).waitFor({ timeout: TIMEOUT });
    const carol = await (await context()).newPage();
    await carol.goto(invite);
    await carol.getByLabel("Your name").fill("Carol");
    await carol.getByRole("button", { name: "Join" }).click();
    await carol.getByText("The meeting is locked").waitFor({ timeout: TIMEOUT });
    await shot(carol, "carol-locked-out");
    await host.getByRole("button", { name: "Unlock meeting" }).click();
    await host.getByRole("button", { name: "Lock meeting" }).waitFor({ timeout: TIMEOUT });

    // Ada reports Grace; the report reaches the organisation.
    await ada.page.getByRole("button", { name: "Participants" }).click();
    ada.page.once("dialog", (d) => void d.accept("posting unwanted links in the chat"));
    await ada.page.getByRole("button", { name: "Report Grace" }).click();
    await ada.page.getByText("Reported Grace").waitFor({ timeout: TIMEOUT });

    // The host removes Grace: her media stops and she cannot come back.
    // A removal is a ban from the meeting: it is confirmed first.
    const asked = new Promise((resolve) => host.once("dialog", (d) => resolve(d.message()) || d.accept()));
    await host.getByRole("button", { name: "Remove Grace" }).click();
    assert.match(await asked, /Remove Grace from the meeting\? They cannot come back/);
    await grace.page.getByText("A host removed you").waitFor({ timeout: TIMEOUT });
    await shot(grace.page, "grace-removed");
    // A guest has no home page here: Back leaves her on a page saying the
    // meeting is over for her, not on "Sign in".
    await grace.page.getByRole("button", { name: "Back" }).click();
    await grace.page.getByRole("heading", { name: "The meeting is over for you" }).waitFor({ timeout: TIMEOUT });
    assert.equal(await grace.page.getByRole("button", { name: "Sign in" }).count(), 0);
    await host.waitForTimeout(1000);
    const graceBefore = sum(await inbound(host), people[2].id, "camera", "framesDecoded");
    await host.waitForTimeout(1500);
    assert.equal(sum(await inbound(host), people[2].id, "camera", "framesDecoded"), graceBefore, "nothing of Grace after her removal");
    await grace.page.goto(invite);
    await grace.page.getByLabel("Your name").fill("Grace again");
    await grace.page.getByRole("button", { name: "Join" }).click();
    await grace.page.getByText(/removed from this meeting|cannot rejoin/).waitFor({ timeout: TIMEOUT });
    await shot(grace.page, "grace-cannot-rejoin");

    // The host opens the meeting on a second device (a new browser profile,
    // so a new device key), which takes over their seat. Ada is told the
    // host is on a new device; the new device joins the group and its media
    // reaches her under the new keys.
    const laptop = await (await context()).newPage();
    await laptop.goto(server.url);
    await laptop.getByLabel("Email").fill("host@example.org");
    await laptop.getByLabel("Password").fill(PASSWORD);
    await laptop.getByRole("button", { name: "Sign in" }).click();
    await laptop.getByRole("button", { name: "Start" }).first().click();
    await laptop.getByRole("button", { name: "Join" }).click();
    await host.getByText("You joined this meeting from another tab").waitFor({ timeout: TIMEOUT });
    await ada.page.getByText(/host is on a new device \(key [0-9a-f ]+\)/i).waitFor({ timeout: TIMEOUT });
    await shot(ada.page, "ada-told-host-new-device");
    await poll("the laptop and Ada sharing one security code", async () => {
      const [l, a] = [await e2ee(laptop), await e2ee(ada.page)];
      return l?.code && l.code === a?.code && a.members.length === 2 && a.members.every((m) => m.verified);
    });
    const fromLaptop = sum(await inbound(ada.page), people[0].id, "camera", "framesDecoded");
    await poll("the laptop's video at Ada", async () => sum(await inbound(ada.page), people[0].id, "camera", "framesDecoded") > fromLaptop + 10);

    // On a phone held upright, the two tiles sit one above the other, each
    // as wide as the screen allows, and nothing scrolls sideways.
    await ada.page.setViewportSize({ width: 390, height: 844 });
    // The layout follows the resize a render or two later: until then a
    // tile may still be as wide as the window was.
    await poll("Ada's tiles laid out for the phone", async () => {
      const seen = await layout(ada.page);
      return seen.tiles.length > 0 && seen.tiles.every((t) => t.width > 300 && inside(t, seen.stage));
    });
    assertTilesFit(await layout(ada.page), "Ada on a phone", 0.4);
    await shot(ada.page, "ada-phone-meeting");
    // Leaving lands on a page to rejoin from.
    await ada.page.getByRole("button", { name: "Leave" }).click();
    await ada.page.getByRole("heading", { name: "You left “Weekly sync”" }).waitFor({ timeout: TIMEOUT });
    await ada.page.getByRole("button", { name: "Rejoin" }).waitFor({ timeout: TIMEOUT });
    await shot(ada.page, "ada-left");
    await auditAccessibility(ada.page, "the page after leaving");

    // The organisation's admin pages, at a phone's width too.
    const admin = await host.context().newPage();
    await admin.goto(`${server.url}/admin`);
    await admin.getByRole("heading", { name: "Policies" }).waitFor({ timeout: TIMEOUT });
    // The audit log says what happened in words (the action's id in its tooltip).
    await admin.getByRole("cell", { name: "Someone removed from the meeting (and banned from it)." }).first().waitFor({ timeout: TIMEOUT });
    await admin.getByRole("cell", { name: "A participant reported another." }).first().waitFor({ timeout: TIMEOUT });
    assert.equal(await admin.getByRole("cell", { name: "meeting.remove", exact: true }).count(), 0, "no raw action ids");
    await shot(admin, "admin-policies-and-audit");
    // The meeting's call quality, graphed from the samples of this run.
    await admin.getByRole("button", { name: "Weekly sync" }).click();
    await admin.getByRole("figure", { name: "Call quality of Ada" }).waitFor({ timeout: TIMEOUT });
    assert.ok((await admin.locator(".quality-graphs canvas").count()) >= 6, "a chart per figure for each participant");
    await admin.getByRole("figure", { name: "Call quality of Ada" }).scrollIntoViewIfNeeded();
    await shot(admin, "admin-call-quality-graphs");
    // An invitation, and the invitee's sign-up from its link.
    await admin.getByLabel("Invite by email").fill("dana@example.org");
    await admin.getByRole("button", { name: "Invite" }).click();
    const inviteUrl = await admin.locator("code.invite-url").textContent();
    const dana = await (await context()).newPage();
    await dana.goto(inviteUrl);
    await dana.getByLabel("Email").fill("dana@example.org");
    await dana.getByLabel("Your name").fill("Dana");
    await dana.getByLabel(/^Password/).fill("a long and unusual passphrase 42");
    await dana.getByRole("button", { name: "Create account" }).click();
    await dana.getByRole("heading", { name: "Meetings" }).waitFor({ timeout: TIMEOUT });
    await shot(dana, "dana-signed-up");
    // Dana joins by the meeting's code: it leads to the waiting room, never straight in.
    await dana.getByRole("link", { name: "Join a meeting with a code" }).click();
    await dana.getByLabel("Meeting code").fill(code);
    await dana.getByRole("button", { name: "Join" }).click();
    await dana.getByText("Waiting for the host to let you in").waitFor({ timeout: TIMEOUT });
    await shot(dana, "dana-joins-by-code");
    // The account page names the browser, not its user-agent string.
    await admin.goto(`${server.url}/account`);
    await admin.getByText(/Chrome on Linux · signed in · .* · last seen/).first().waitFor({ timeout: TIMEOUT });
    assert.equal(await admin.getByText(/Mozilla\/5\.0/).count(), 0, "no raw user-agent strings");
    await shot(admin, "account-sessions");
    // At a phone's width no page scrolls sideways: home, admin (its audit
    // table scrolls in its own box), the join page.
    await admin.setViewportSize({ width: 390, height: 844 });
    for (const path of ["/", "/admin", "/account"]) {
      await admin.goto(`${server.url}${path}`);
      await admin.getByRole("heading").first().waitFor({ timeout: TIMEOUT });
      await admin.waitForTimeout(300);
      const wide = await admin.evaluate(() =>
        document.documentElement.scrollWidth <= innerWidth
          ? []
          : [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5).map((e) => `${e.tagName.toLowerCase()}.${e.className} (${Math.round(e.getBoundingClientRect().right)} px)`),
      );
      assert.deepEqual(wide, [], `${path} scrolls sideways on a phone`);
    }
    await shot(admin, "phone-account");
    await admin.goto(invite);
    await shot(admin, "phone-join-page");

    // Nothing during the whole meeting came from another origin, and the
    // Content-Security-Policy never had to refuse anything.
    assert.deepEqual(foreign, [], "requests to other origins");
    assert.deepEqual(cspViolations, [], "CSP violations");
    console.log(JSON.stringify({ figures }));
    console.log("test result: ok. 1 passed; 0 failed; 0 ignored");
  } catch (err) {
    console.error(err);
    for (const [i, p] of pagesForDebug.entries()) {
      await p.screenshot({ path: join(results, `failure-page-${i}.png`) }).catch(() => undefined);
      const dump = await p.evaluate(async () => {
        const stats = window.__conclave ? await window.__conclave.stats() : [];
        return { tracks: window.__conclave?.tracks(), stats: stats.filter((s) => ["transport", "candidate-pair", "inbound-rtp", "outbound-rtp"].includes(s.type)).map((s) => ({ type: s.type, kind: s.kind, mid: s.mid, state: s.state ?? s.dtlsState, frames: s.framesDecoded ?? s.framesEncoded, bytes: s.bytesReceived ?? s.bytesSent, rid: s.rid })) };
      }).catch((e) => String(e));
      console.error(JSON.stringify(dump));
    }
    console.log("test result: FAILED. 0 passed; 1 failed; 0 ignored");
    process.exitCode = 1;
  } finally {
    await browser.close();
    server.stop();
  }
}

await main();
