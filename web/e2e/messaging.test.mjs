// Team messaging in Chromium, end to end: the host on two devices (two
// browser profiles) and Grace. A channel with a thread, reactions, an edit
// and a delete seen on every device; a direct message; the second device
// reading the channel's earlier history from the keys its first device
// gave it; a message sent with the keyboard alone. Afterwards nothing the
// pages keep (IndexedDB, localStorage, sessionStorage) and no request body
// holds a message in the clear, every request went to the server's origin,
// the Content-Security-Policy refused nothing, and axe finds no serious or
// critical accessibility violation in the messaging views.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditAccessibility, launchBrowser, PASSWORD, poll, runScenario, screenshots, signInToMessages, startServer, TIMEOUT } from "./harness.mjs";

const { shot } = screenshots("messaging");

const server = await startServer();
const browser = await launchBrowser();
const requests = [];
/// Each page's own requests (its worker's included), by page.
const requestsOf = new Map();
const pages = [];
const cspViolations = [];

/// A call to the server's API from the test itself (not a page).
async function call(method, path, body, token) {
  const response = await fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  assert.ok(response.ok, `${path}: ${response.status} ${await response.clone().text()}`);
  return response.json();
}
const post = (path, body, token) => call("POST", path, body, token);

/// Signs someone up through the API: an invitation from the host, taken.
async function invite(email, name) {
  const host = await post("/auth/login", { email: "host@example.org", password: PASSWORD });
  const created = await post(`/orgs/${host.user.org_id}/invitations`, { email, role: "member" }, host.token);
  await post("/auth/signup", { email, password: PASSWORD, display_name: name, invite_token: created.invite_token });
}

/// A new browser profile (a new device) signed in as `email`, on the messages page.
async function device(email) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(["notifications", "camera", "microphone"]);
  const page = await context.newPage();
  pages.push(page);
  // The E2EE worker's own requests, counted with the page's.
  const own = [];
  requestsOf.set(page, own);
  context.on("request", (r) => {
    requests.push({ url: r.url(), body: r.postData() ?? "" });
    own.push(r.url());
  });
  page.on("pageerror", (e) => console.error(`[${email}] page error: ${e.stack ?? e}`));
  page.on("console", (m) => {
    if (/Content-Security-Policy|Refused to/.test(m.text())) cspViolations.push(m.text());
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => console.error(`Refused to load: CSP ${e.violatedDirective} ${e.blockedURI}`));
    // Desktop notifications are raised for real and also noted here, for
    // the test to read what they said.
    const Real = window.Notification;
    window.__notifications = [];
    window.Notification = class extends Real {
      constructor(title, options) {
        super(title, options);
        window.__notifications.push({ title, body: options?.body ?? "" });
      }
    };
    Object.defineProperty(window.Notification, "permission", { get: () => Real.permission });
    window.Notification.requestPermission = (...a) => Real.requestPermission(...a);
  });
  await signInToMessages(page, server.url, email);
  return page;
}

const messages = (page) => page.getByRole("list", { name: "Messages" }).first();
const message = (page, text) => messages(page).getByRole("listitem").filter({ hasText: text });
const seen = (page, text, what) => message(page, text).first().waitFor({ timeout: TIMEOUT }).catch(() => {
  throw new Error(`${what}: "${text}" never shown`);
});

async function send(page, label, text) {
  const box = page.getByRole("textbox", { name: label });
  await box.fill(text);
  await box.press("Enter");
  // Sent: the composer is empty again (an edit's composer closes). Read in
  // one step: an edit's box can close between a count and a read of its
  // value, and a read then waits for a box that will never come back.
  await poll(`"${text}" sent`, () => box.evaluateAll((boxes) => boxes.every((b) => b.value === "")));
}

/// Every value a page's origin keeps, as text: IndexedDB (every database
/// and store; binary values as Latin-1, so plaintext bytes would show),
/// localStorage and sessionStorage.
async function kept(page) {
  return page.evaluate(async () => {
    const out = [];
    const show = (v) => {
      if (v instanceof ArrayBuffer) return String.fromCharCode(...new Uint8Array(v));
      if (ArrayBuffer.isView(v)) return String.fromCharCode(...new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      if (v instanceof CryptoKey) return `[CryptoKey extractable=${v.extractable}]`;
      if (v && typeof v === "object") return Object.values(v).map(show).join("|");
      return String(v);
    };
    for (const { name } of await indexedDB.databases()) {
      const db = await new Promise((resolve, reject) => {
        const r = indexedDB.open(name);
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      for (const store of db.objectStoreNames) {
        const values = await new Promise((resolve, reject) => {
          const r = db.transaction(store).objectStore(store).getAll();
          r.onsuccess = () => resolve(r.result);
          r.onerror = () => reject(r.error);
        });
        out.push(...values.map(show));
      }
      db.close();
    }
    for (const storage of [localStorage, sessionStorage]) {
      for (let i = 0; i < storage.length; i++) out.push(storage.getItem(storage.key(i)));
    }
    return out.join("\n");
  });
}

const audit = auditAccessibility;

await runScenario(
  async () => {
    await invite("grace@example.org", "Grace Hopper");
    // The organisation allows plain channels (for announcements to very
    // many people); every conversation is still end-to-end encrypted unless
    // its maker unticks it.
    const owner = await post("/auth/login", { email: "host@example.org", password: PASSWORD });
    await call("PATCH", `/orgs/${owner.user.org_id}/policy`, { unencrypted_channels: { value: true, locked: false } }, owner.token);
    const laptop = await device("host@example.org");
    const grace = await device("grace@example.org");

    // The host makes a channel; Grace finds it in the channel browser and joins.
    await laptop.getByRole("button", { name: "New channel" }).click();
    await laptop.getByRole("dialog", { name: "New channel" }).getByLabel("Name").fill("general");
    await laptop.getByRole("button", { name: "Create channel" }).click();
    await laptop.getByRole("heading", { name: "# general" }).waitFor({ timeout: TIMEOUT });
    await laptop.getByText("End-to-end encrypted").waitFor();
    await send(laptop, "Message # general", "Welcome to general, launch is on **Friday**");
    await grace.getByRole("button", { name: "Browse channels" }).click();
    await audit(grace, "the channel browser");
    await grace.getByRole("button", { name: "Join # general" }).click();
    await grace.getByRole("heading", { name: "# general" }).waitFor({ timeout: TIMEOUT });
    // Grace's device is added by the host's; it reads what follows.
    await poll("Grace able to write", async () => grace.getByRole("textbox", { name: "Message # general" }).isEnabled());
    await send(laptop, "Message # general", "The release notes are in the usual place");
    await seen(grace, "The release notes are in the usual place", "Grace reading the channel");
    await shot(grace, "grace-reads-the-channel");

    // A thread under the host's message, a reaction, an edit and a delete.
    await message(grace, "The release notes").getByRole("button", { name: "Reply in thread" }).click();
    await send(grace, "Reply in thread", "Which place, the wiki?");
    await message(laptop, "The release notes").getByRole("button", { name: "1 reply" }).waitFor({ timeout: TIMEOUT });
    await message(laptop, "The release notes").getByRole("button", { name: "1 reply" }).click();
    await laptop.getByRole("complementary", { name: "Thread" }).getByText("Which place, the wiki?").waitFor({ timeout: TIMEOUT });
    await message(grace, "The release notes").getByRole("button", { name: "React with 👍" }).click();
    await message(laptop, "The release notes").getByRole("button", { name: /^👍 1, from Grace Hopper/ }).waitFor({ timeout: TIMEOUT });
    await shot(laptop, "thread-and-reaction");
    await message(laptop, "The release notes").getByRole("button", { name: "Edit" }).click();
    await send(laptop, "Edit message", "The release notes are on the wiki");
    await seen(grace, "The release notes are on the wiki", "the edit at Grace");
    await message(grace, "The release notes are on the wiki").getByText("(edited)").waitFor();
    await send(laptop, "Message # general", "A message sent by mistake");
    await seen(grace, "A message sent by mistake", "the mistake at Grace");
    laptop.once("dialog", (d) => d.accept());
    await message(laptop, "A message sent by mistake").getByRole("button", { name: "Delete" }).click();
    await poll("the deleted message gone at Grace", async () => (await message(grace, "A message sent by mistake").count()) === 0);
    await poll("the deleted message gone at the host", async () => (await message(laptop, "A message sent by mistake").count()) === 0);
    // Every message so far went on its device's live connection, none by a
    // request of its own.
    for (const [name, page] of [["the host", laptop], ["Grace", grace]]) {
      const posted = requestsOf.get(page).filter((u) => /\/conversations\/[^/]+\/messages$/.test(new URL(u).pathname));
      assert.equal(posted.length, 0, `${name}'s messages sent by request: ${posted.join(", ")}`);
    }

    // Files: a 50 MB file and a picture, sealed in the worker with the
    // upload's progress shown; Grace sees the picture's preview (made on the
    // host's device), opens it full size, and downloads the file: the very
    // bytes that were sent.
    const big = randomBytes(50 * 1024 * 1024);
    const bigPath = join(mkdtempSync(join(tmpdir(), "conclave-e2e-")), "dataset.bin");
    writeFileSync(bigPath, big);
    const picture = Buffer.from(
      await laptop.evaluate(async () => {
        const canvas = new OffscreenCanvas(1200, 800);
        const g = canvas.getContext("2d");
        g.fillStyle = "#2e7d32";
        g.fillRect(0, 0, 1200, 800);
        g.fillStyle = "#ffeb3b";
        g.beginPath();
        g.arc(600, 400, 250, 0, Math.PI * 2);
        g.fill();
        return [...new Uint8Array(await (await canvas.convertToBlob({ type: "image/png" })).arrayBuffer())];
      }),
    );
    // Every value the upload's bar takes, seen by the page itself.
    await laptop.evaluate(() => {
      window.__uploadProgress = [];
      new MutationObserver(() => {
        const bar = document.querySelector('progress[aria-label="Uploading dataset.bin"]');
        if (bar && window.__uploadProgress.at(-1) !== bar.value) window.__uploadProgress.push(bar.value);
      }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["value"] });
    });
    // The laptop's uploads go at 4 MB/s here, so the page can close mid-way.
    const slow = await laptop.context().newCDPSession(laptop);
    await slow.send("Network.enable");
    await slow.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 4 << 20 });
    await laptop.getByLabel("Files to send").setInputFiles(bigPath);
    await laptop.getByRole("progressbar", { name: "Uploading dataset.bin" }).waitFor({ timeout: TIMEOUT });
    await shot(laptop, "upload-progress");
    await poll("the upload's progress shown", async () => {
      const seen = await laptop.evaluate(() => window.__uploadProgress);
      return seen.length >= 3 && seen.some((v) => v > 0 && v < big.length);
    });
    // The page closes mid-upload (a reload). The upload waits, its key kept
    // sealed on the device; the same file chosen again carries it on from
    // where the server has it, and it arrives whole (Grace checks its hash).
    assert.equal(await message(laptop, "dataset.bin").count(), 0, "still uploading when the page closes");
    const partsPut = (from) => requestsOf.get(laptop).slice(from).map((u) => /\/files\/[^/]+\/parts\/(\d+)$/.exec(u)?.[1]).filter((n) => n !== undefined).map(Number);
    const beforeReload = requestsOf.get(laptop).length;
    const sentBefore = new Set(partsPut(0));
    await laptop.reload();
    await slow.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 }).catch(() => undefined);
    const resume = laptop.getByLabel("Choose dataset.bin again to resume");
    await resume.waitFor({ state: "attached", timeout: TIMEOUT });
    await shot(laptop, "upload-interrupted");
    await audit(laptop, "an interrupted upload");
    await resume.setInputFiles(bigPath);
    await laptop.getByRole("progressbar", { name: "Uploading dataset.bin" }).waitFor({ timeout: TIMEOUT });
    await message(laptop, "dataset.bin").waitFor({ timeout: 120_000 });
    assert.equal(await laptop.getByRole("list", { name: "Interrupted uploads" }).count(), 0, "nothing left to carry on");
    // Only what the server lacked went again (the part in flight at most, of those sent before).
    const sentAfter = partsPut(beforeReload);
    const again = sentAfter.filter((n) => sentBefore.has(n));
    assert.ok(sentBefore.size >= 2 && again.length <= 1, `parts sent before the reload: ${[...sentBefore]}; sent again: ${again}`);
    await laptop.getByLabel("Files to send").setInputFiles({ name: "sunrise.png", mimeType: "image/png", buffer: picture });
    await message(grace, "sunrise.png").getByRole("img", { name: "Preview of sunrise.png" }).waitFor({ timeout: TIMEOUT });
    await shot(grace, "a-picture-and-a-file");
    const [saved] = await Promise.all([
      grace.waitForEvent("download", { timeout: 120_000 }),
      message(grace, "dataset.bin").getByRole("button", { name: "Download dataset.bin" }).click(),
    ]);
    assert.equal(createHash("sha256").update(readFileSync(await saved.path())).digest("hex"), createHash("sha256").update(big).digest("hex"), "the downloaded file is the one sent");
    await message(grace, "sunrise.png").getByRole("button", { name: "Open sunrise.png full size" }).click();
    const full = grace.getByRole("dialog", { name: "sunrise.png" }).getByRole("img", { name: "sunrise.png" });
    await full.waitFor({ timeout: TIMEOUT });
    await poll("the picture shown full size", async () => (await full.evaluate((img) => img.naturalWidth)) === 1200);
    await audit(grace, "a picture opened full size");
    await grace.getByRole("dialog", { name: "sunrise.png" }).getByRole("button", { name: "Close" }).click();

    // A video goes with a poster made on the sender's device: the others
    // see a frame of it before fetching it, and a click plays it. (The clip
    // is recorded in the page from a canvas: WebM, as a browser makes one.)
    const clip = await laptop.evaluate(async () => {
      const canvas = document.createElement("canvas");
      canvas.width = 320;
      canvas.height = 180;
      const paint = canvas.getContext("2d");
      const recorder = new MediaRecorder(canvas.captureStream(25), { mimeType: "video/webm" });
      const parts = [];
      recorder.ondataavailable = (e) => parts.push(e.data);
      const stopped = new Promise((resolve) => (recorder.onstop = resolve));
      let frame = 0;
      const timer = setInterval(() => {
        paint.fillStyle = `hsl(${(frame++ * 12) % 360} 80% 50%)`;
        paint.fillRect(0, 0, 320, 180);
      }, 40);
      recorder.start(200);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      recorder.stop();
      await stopped;
      clearInterval(timer);
      const bytes = new Uint8Array(await new Blob(parts).arrayBuffer());
      let binary = "";
      for (const b of bytes) binary += String.fromCharCode(b);
      return btoa(binary);
    });
    await laptop.getByLabel("Files to send").setInputFiles({ name: "clip.webm", mimeType: "video/webm", buffer: Buffer.from(clip, "base64") });
    const poster = message(grace, "clip.webm").getByRole("img", { name: "Preview of clip.webm" });
    await poster.waitFor({ timeout: TIMEOUT });
    await poll("the video's poster drawn", async () => (await poster.evaluate((img) => img.naturalWidth)) === 320);
    await message(grace, "clip.webm").getByRole("button", { name: "Play clip.webm" }).click();
    const played = message(grace, "clip.webm").locator("video");
    await played.waitFor({ timeout: TIMEOUT });
    await poll("the video decoded and playing", async () => (await played.evaluate((v) => v.videoWidth)) === 320);
    await shot(grace, "a-video-with-its-poster");

    // A direct message, started by finding the person.
    await grace.getByRole("button", { name: "New message" }).click();
    await grace.getByRole("dialog", { name: "New message" }).getByLabel("To").fill("host");
    await grace.getByRole("dialog", { name: "New message" }).getByRole("button", { name: /host@example\.org/ }).click();
    await grace.getByRole("heading", { name: "host" }).waitFor({ timeout: TIMEOUT });
    await poll("Grace able to write in the DM", async () => grace.getByRole("textbox", { name: "Message host" }).isEnabled());
    await send(grace, "Message host", "Just between us: the budget is approved");
    await seen(grace, "Just between us", "Grace's own message in the DM");
    const direct = laptop.getByRole("region", { name: "Direct messages" }).getByRole("button", { name: /Grace Hopper/ });
    await direct.getByLabel("1 unread").waitFor({ timeout: TIMEOUT });
    await shot(laptop, "unread-direct-message");
    await direct.click();
    await seen(laptop, "Just between us: the budget is approved", "the DM at the host");
    await audit(laptop, "a conversation with its sidebar");

    // Grace mentions the host in the channel while the host reads their
    // direct messages: a desktop notification says who and where, not what
    // (the text shows only if the host allows it).
    await grace.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).click();
    const channelBox = grace.getByRole("textbox", { name: "Message # general" });
    await channelBox.fill("@ho");
    await grace.getByRole("list", { name: "Mention someone" }).getByRole("button", { name: "@host" }).click();
    await channelBox.pressSequentially("please look at the launch checklist");
    await channelBox.press("Enter");
    await seen(grace, "please look at the launch checklist", "Grace's mention");
    await poll("a desktop notification of the mention", async () =>
      (await laptop.evaluate(() => window.__notifications)).some((n) => n.title === "Grace Hopper mentioned you in # general"),
    );
    // The mention is marked in the laptop's list apart from the unread count.
    await laptop.getByRole("navigation", { name: "Conversations" }).getByLabel("1 mention").waitFor({ timeout: TIMEOUT });
    const raised = await laptop.evaluate(() => window.__notifications);
    assert.ok(raised.every((n) => !n.body.includes("launch checklist")), `the text stays out of notifications by default: ${JSON.stringify(raised)}`);
    await grace.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: /host/ }).click();

    // The keyboard alone: from the page's top to the composer, a message sent.
    await laptop.keyboard.press("Control+Home");
    await laptop.locator("body").focus();
    let reached = false;
    for (let i = 0; i < 60 && !reached; i++) {
      await laptop.keyboard.press("Tab");
      reached = await laptop.evaluate(() => document.activeElement?.getAttribute("aria-label") === "Message Grace Hopper");
    }
    assert.ok(reached, "the composer is reached with Tab");
    await laptop.keyboard.type("Sent without a mouse");
    await laptop.keyboard.press("Enter");
    await seen(grace, "Sent without a mouse", "the keyboard's message at Grace");

    // Web Push for a closed tab: the laptop's device registered the push
    // service worker. A push (delivered through DevTools: this machine
    // reaches no browser push service) shows one notification, which says
    // only that messages came: a push carries nothing to say more.
    const pushWorker = await poll("the push service worker active", () =>
      laptop.evaluate(async () => (await navigator.serviceWorker.getRegistration("/"))?.active?.scriptURL ?? null),
    );
    assert.equal(new URL(pushWorker).pathname, "/push-worker.js");
    const devtools = await laptop.context().newCDPSession(laptop);
    const appOrigin = new URL(server.url).origin;
    const registered = new Promise((resolve) =>
      devtools.on("ServiceWorker.workerRegistrationUpdated", (e) => {
        const found = e.registrations.find((r) => r.scopeURL === `${appOrigin}/` && !r.isDeleted);
        if (found) resolve(found.registrationId);
      }),
    );
    await devtools.send("ServiceWorker.enable");
    await devtools.send("ServiceWorker.deliverPushMessage", { origin: appOrigin, registrationId: await registered, data: "" });
    const pushed = await poll("the push's notification", () =>
      laptop.evaluate(async () => {
        const shown = await (await navigator.serviceWorker.getRegistration("/")).getNotifications();
        return shown.length > 0 ? shown.map((n) => ({ title: n.title, body: n.body })) : null;
      }),
    );
    assert.deepEqual(pushed, [{ title: "Conclave", body: "You have new messages. Open Conclave to read them." }]);
    await devtools.detach();

    // The conversation list resizes from its edge, and keeps its width
    // after a reload.
    const listWidth = () => grace.getByRole("navigation", { name: "Conversations" }).evaluate((n) => n.getBoundingClientRect().width);
    const listBefore = await listWidth();
    const edge = await grace.getByRole("separator", { name: "Resize the conversation list" }).boundingBox();
    await grace.mouse.move(edge.x + edge.width / 2, edge.y + 200);
    await grace.mouse.down();
    await grace.mouse.move(edge.x + edge.width / 2 + 80, edge.y + 200, { steps: 5 });
    await grace.mouse.up();
    assert.equal(Math.round((await listWidth()) - listBefore), 80, "dragged 80 px wider");
    await grace.reload();
    await grace.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).waitFor({ timeout: TIMEOUT });
    assert.equal(Math.round((await listWidth()) - listBefore), 80, "the width kept after a reload");
    await shot(grace, "wider-conversation-list");

    // The host's second device: it joins every group, is given the history
    // keys by the first, and reads the channel's earlier messages.
    const phone = await device("host@example.org");
    await phone.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).click();
    await seen(phone, "Welcome to general, launch is on", "earlier history on the second device");
    await seen(phone, "The release notes are on the wiki", "the edited message on the second device");
    await send(grace, "Message host", "Both your devices should see this");
    await grace.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).click();
    // Grace is told the host is on a new device, with its key, as in meetings.
    await grace.getByText(/^host is on a new device \(key [0-9a-f ]+\)/).waitFor({ timeout: TIMEOUT });
    await send(grace, "Message # general", "Hello to both of your devices");
    await seen(phone, "Hello to both of your devices", "a new message on the second device");
    await seen(laptop, "Hello to both of your devices", "a new message on the first device").catch(async () => {
      await laptop.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).click();
      await seen(laptop, "Hello to both of your devices", "a new message on the first device");
    });
    await shot(phone, "second-device-reads-history");
    await audit(phone, "the second device's conversation");
    await message(phone, "The release notes are on the wiki").getByRole("button", { name: "1 reply" }).click();
    await audit(phone, "the thread panel");

    // Search on the device: the second device finds an old message among
    // what it holds, with no request made while searching, and jumps to it.
    const phoneRequests = requestsOf.get(phone);
    let quiet = -1;
    await poll("the second device idle", async () => {
      const now = phoneRequests.length;
      const idle = now === quiet;
      quiet = now;
      await phone.waitForTimeout(700);
      return idle;
    });
    const before = phoneRequests.length;
    const searchBox = phone.getByRole("searchbox", { name: "Search messages" });
    await searchBox.fill("launch FRIDAY");
    await searchBox.press("Enter");
    const results = phone.getByRole("complementary", { name: "Search results" });
    const hit = results.getByRole("button", { name: /Welcome to general, launch is on/ });
    await hit.waitFor({ timeout: TIMEOUT });
    assert.deepEqual(phoneRequests.slice(before), [], "no request while searching");
    assert.equal(await results.getByRole("button").filter({ hasText: "release notes" }).count(), 0, "only what matches");
    await shot(phone, "search-results");
    await audit(phone, "search results");
    await phone.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: /Grace Hopper/ }).click();
    await hit.click();
    await phone.locator(".message.focused").filter({ hasText: "Welcome to general, launch is on" }).waitFor({ timeout: TIMEOUT });
    await phone.getByRole("heading", { name: "# general" }).waitFor();

    // A plain channel: made with "End-to-end encrypted" unticked, marked as
    // not encrypted where it shows, and read and written like any other.
    await laptop.getByRole("button", { name: "New channel" }).click();
    const newChannel = laptop.getByRole("dialog", { name: "New channel" });
    await newChannel.getByLabel("Name").fill("announcements");
    await newChannel.getByLabel("End-to-end encrypted").uncheck();
    await newChannel.getByText("the server can read it").waitFor();
    await laptop.getByRole("button", { name: "Create channel" }).click();
    await laptop.getByRole("heading", { name: "# announcements" }).waitFor({ timeout: TIMEOUT });
    await laptop.getByText("Not encrypted", { exact: true }).waitFor();
    await poll("the host able to write in the plain channel", async () => laptop.getByRole("textbox", { name: "Message # announcements" }).isEnabled());
    await send(laptop, "Message # announcements", "The office is closed on Friday");
    await grace.getByRole("button", { name: "Browse channels" }).click();
    await grace.getByRole("button", { name: "Join # announcements" }).click();
    await grace.getByRole("heading", { name: "# announcements" }).waitFor({ timeout: TIMEOUT });
    await seen(grace, "The office is closed on Friday", "the plain channel's earlier message at Grace");
    await poll("Grace able to write in the plain channel", async () => grace.getByRole("textbox", { name: "Message # announcements" }).isEnabled());
    await send(grace, "Message # announcements", "Noted, thanks");
    await seen(laptop, "Noted, thanks", "Grace's reply in the plain channel");
    await shot(grace, "plain-channel");
    await audit(grace, "a plain channel");
    await grace.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).click();

    // A call from the channel: the host starts it and is in the meeting;
    // Grace sees the banner with who is in it and comes straight in, with
    // no waiting room.
    await laptop.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).click();
    await laptop.getByRole("button", { name: "Start a call" }).click();
    await laptop.getByRole("button", { name: "Join", exact: true }).click();
    await laptop.getByRole("button", { name: "Participants" }).waitFor({ timeout: TIMEOUT });
    const banner = grace.getByRole("status", { name: "Call in progress" });
    await banner.getByText("In the call: host").waitFor({ timeout: TIMEOUT });
    await shot(grace, "call-banner");
    await audit(grace, "a conversation with a call going on");
    await banner.getByRole("button", { name: "Join call" }).click();
    await grace.getByRole("button", { name: "Join", exact: true }).click();
    await grace.getByRole("button", { name: "Participants" }).waitFor({ timeout: TIMEOUT });
    assert.equal(await grace.getByText("Waiting for the host to let you in").count(), 0, "a member of the channel does not wait");
    await shot(grace, "grace-in-the-call");

    // Back in messages, the host removes Grace from the channel: she is
    // told, and reads nothing said afterwards.
    for (const page of [laptop, grace]) await page.goto(`${server.url}/messages`);
    await laptop.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).click();
    await grace.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).click();
    await seen(grace, "Hello to both of your devices", "the channel at Grace before her removal");
    await laptop.getByRole("button", { name: /members and settings$/ }).click();
    const members = laptop.getByRole("complementary", { name: "Members and settings" });
    await members.getByText(/^Owner · \d+ devices$/).waitFor({ timeout: TIMEOUT });
    await audit(laptop, "the members and settings panel");
    await shot(laptop, "members-and-settings");
    laptop.once("dialog", (d) => d.accept());
    await members.getByRole("button", { name: "Remove Grace Hopper" }).click();
    await grace.getByText("You are no longer in this conversation.").waitFor({ timeout: TIMEOUT });
    await poll("# general gone from Grace's list", async () =>
      (await grace.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).count()) === 0,
    );
    await send(laptop, "Message # general", "Said after Grace was removed");
    await seen(phone, "Said after Grace was removed", "the host's other device after the removal");
    await grace.waitForTimeout(1500);
    assert.equal(await grace.getByText("Said after Grace was removed").count(), 0, "Grace reads nothing after her removal");
    await shot(grace, "grace-removed-from-the-channel");

    // A second tab of the host's laptop: one tab at a time drives the
    // browser's device (two would each move its groups on); the second
    // waits, then takes over where the first left off when it closes.
    const tab = await laptop.context().newPage();
    pages.push(tab);
    tab.on("console", (m) => {
      if (/Content-Security-Policy|Refused to/.test(m.text())) cspViolations.push(m.text());
    });
    await tab.goto(`${server.url}/messages`);
    await tab.getByText("Messages are open in another tab of this browser").waitFor({ timeout: TIMEOUT });
    await shot(tab, "second-tab-waits");
    await laptop.close();
    await tab.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).click();
    await poll("the second tab able to write", async () => tab.getByRole("textbox", { name: "Message # general" }).isEnabled());
    await seen(tab, "Said after Grace was removed", "the channel in the second tab");
    await send(tab, "Message # general", "From the laptop's other tab");
    await seen(phone, "From the laptop's other tab", "the second tab's message on the phone");

    // At a phone's width: the list above the conversation, nothing
    // sideways, the composer in reach.
    // (A panel covers the whole screen there: the search results open since
    // the search are closed first, as a person would.)
    const closeSearch = phone.getByRole("button", { name: "Close search" });
    if (await closeSearch.count()) await closeSearch.click();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: "# general" }).click();
    await seen(phone, "From the laptop's other tab", "the channel at a phone's width");
    const sideways = await phone.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    assert.ok(sideways <= 0, `the messages page scrolls sideways on a phone, by ${sideways} px`);
    await send(phone, "Message # general", "Written at a phone's width");
    await seen(tab, "Written at a phone's width", "the phone-width message in the laptop's tab");
    await shot(phone, "phone-width");
    await audit(phone, "the messages page at a phone's width");
    await phone.setViewportSize({ width: 1280, height: 800 });

    // Nothing kept or sent in the clear.
    const texts = [
      "Welcome to general",
      "The release notes are",
      "Which place, the wiki?",
      "A message sent by mistake",
      "Just between us: the budget is approved",
      "Sent without a mouse",
      "Hello to both of your devices",
      "please look at the launch checklist",
      "Said after Grace was removed",
      "From the laptop's other tab",
    ];
    for (const [who, page] of [["laptop", tab], ["grace", grace], ["phone", phone]]) {
      const stored = await kept(page);
      assert.ok(stored.length > 0, `${who} keeps its device`);
      assert.ok(/CryptoKey extractable=false/.test(stored), `${who}'s vault key cannot be exported`);
      for (const text of texts) assert.ok(!stored.includes(text), `${who} keeps "${text}" in the clear`);
    }
    for (const { url, body } of requests) {
      for (const text of texts) assert.ok(!body.includes(text), `a request to ${url} carries "${text}" in the clear`);
    }
    // Both themes follow the system and both read clearly: the dark one
    // audited here too (the tests' pages are light by default).
    await phone.emulateMedia({ colorScheme: "dark" });
    await shot(phone, "dark-theme");
    await audit(phone, "the dark theme");

    // The app's script goes compressed at build time: Brotli to a browser
    // that takes it, the same bytes once decoded.
    const script = await grace.evaluate(() => document.querySelector("script[type=module]")?.src);
    const brotli = await fetch(script, { headers: { "accept-encoding": "br" } });
    const plain = await fetch(script, { headers: { "accept-encoding": "identity" } });
    assert.equal(brotli.headers.get("content-encoding"), "br", "the script is sent as Brotli");
    assert.equal(plain.headers.get("content-encoding"), null);
    assert.equal(await brotli.text(), await plain.text(), "the same script either way");
    const origin = new URL(server.url).origin;
    assert.deepEqual(requests.map((r) => r.url).filter((u) => !u.startsWith(origin) && !u.startsWith("data:") && !u.startsWith("blob:")), [], "requests to other origins");
    assert.deepEqual(cspViolations, [], "CSP violations");
  },
  async () => {
    if (process.exitCode) {
      for (const [i, page] of pages.entries()) {
        await shot(page, `failure-page-${i}`).catch(() => undefined);
        const shown = await page.evaluate(() => [...document.querySelectorAll(".message")].map((m) => `${m.dataset.seq}: ${m.textContent?.slice(0, 60)}`)).catch(() => []);
        console.error(`page ${i} shows ${shown.length} messages:\n  ${shown.join("\n  ")}`);
        console.error(await page.evaluate(() => document.querySelector("main.messages")?.outerHTML.slice(0, 6000)).catch(() => ""));
      }
    }
    await browser.close();
    server.stop();
  },
);
