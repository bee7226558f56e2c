// Two people in Chromium meeting through Janus's VideoRoom, for the
// bad-network benchmark's comparison (bench/browser-network.mjs): each
// publishes the same camera and microphone as in Conclave's app (the fake
// devices, the app's three VP8 simulcast layers) and subscribes to the
// other, the way Janus's own web client does it: one Janus session per
// person, a publisher handle (the browser offers, Janus answers) and a
// subscriber handle (Janus offers the other's feed, the browser answers).
//
// The Janus HTTP API is driven from Node; the page only holds the peer
// connections. Their SDP goes to Janus without the browser's candidates, so
// every path is the one Janus learns from the browser's own checks to the
// address Janus advertises: through the benchmark's impairment proxy.
//
// The page offers `window.__conclave.stats()` and `mediaGeneration()` as
// the app's test hooks do, so the benchmark measures both servers alike.

import http from "node:http";

/// The layers of web/src/media.ts's camera, lowest first.
const CAMERA_LAYERS = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", maxBitrate: 1_500_000 },
];
const EVENT_WAIT_MS = 20_000;

let rooms = 0;

/// A blank page on loopback (a secure context, as the camera needs), on
/// which the peer connections live.
export async function blankPage() {
  const server = http.createServer((_, res) => {
    res.setHeader("content-type", "text/html");
    res.end("<!doctype html><meta charset=utf-8><title>Janus participant</title>");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/// One Janus session: requests, and the events of its handles by handle.
class JanusSession {
  static async create(base) {
    const created = await post(base, { janus: "create" });
    const session = new JanusSession(`${base}/${created.data.id}`);
    session.poll();
    return session;
  }

  constructor(url) {
    this.url = url;
    this.queues = new Map();
    this.waiters = new Map();
    this.closed = false;
  }

  async poll() {
    while (!this.closed) {
      let events;
      try {
        const res = await fetch(`${this.url}?maxev=10&rid=${Date.now()}`);
        events = await res.json();
      } catch {
        if (!this.closed) await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      for (const event of Array.isArray(events) ? events : [events]) {
        if (!event.sender) continue;
        const queue = this.queues.get(event.sender) ?? [];
        queue.push(event);
        this.queues.set(event.sender, queue);
        this.waiters.get(event.sender)?.();
      }
    }
  }

  /// The next event of `handle` that `accept` takes (earlier ones it
  /// passes over are dropped), failing on a VideoRoom error.
  async next(handle, what, accept) {
    const deadline = Date.now() + EVENT_WAIT_MS;
    for (;;) {
      const queue = this.queues.get(handle) ?? [];
      while (queue.length) {
        const event = queue.shift();
        const data = event.plugindata?.data;
        if (data?.error) throw new Error(`Janus refused to ${what}: ${data.error}`);
        if (accept(event)) return event;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for Janus to ${what}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 500);
        this.waiters.set(handle, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async attach() {
    const attached = await post(this.url, { janus: "attach", plugin: "janus.plugin.videoroom" });
    return attached.data.id;
  }

  /// A VideoRoom request; its answer for the synchronous ones.
  async message(handle, body, jsep) {
    const reply = await post(`${this.url}/${handle}`, { janus: "message", body, ...(jsep ? { jsep } : {}) });
    const data = reply.plugindata?.data;
    if (data?.error) throw new Error(`Janus refused ${body.request}: ${data.error}`);
    return data;
  }

  async trickleCompleted(handle) {
    await post(`${this.url}/${handle}`, { janus: "trickle", candidate: { completed: true } });
  }

  async destroy() {
    this.closed = true;
    await post(this.url, { janus: "destroy" }).catch(() => undefined);
  }
}

let transactions = 0;
async function post(url, body) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...body, transaction: `t${++transactions}` }),
  });
  const reply = await res.json();
  if (reply.janus === "error") throw new Error(`Janus: ${reply.error?.reason ?? JSON.stringify(reply)}`);
  return reply;
}

/// The page's side: a publishing and a subscribing peer connection, and
/// the statistics hooks. Runs in the page.
function installParticipant(layers) {
  const withoutCandidates = (sdp) =>
    sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate") && !l.startsWith("a=end-of-candidates")).join("\r\n");
  let publisher;
  let subscriber;
  window.__janus = {
    async offer() {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      });
      publisher = new RTCPeerConnection();
      publisher.addTransceiver(stream.getAudioTracks()[0], { direction: "sendonly" });
      publisher.addTransceiver(stream.getVideoTracks()[0], { direction: "sendonly", sendEncodings: layers });
      await publisher.setLocalDescription(await publisher.createOffer());
      return withoutCandidates(publisher.localDescription.sdp);
    },
    async published(sdp) {
      await publisher.setRemoteDescription({ type: "answer", sdp });
    },
    async answer(sdp) {
      subscriber = new RTCPeerConnection();
      subscriber.ontrack = ({ track }) => {
        const element = document.createElement(track.kind);
        element.autoplay = true;
        element.muted = track.kind === "video";
        element.srcObject = new MediaStream([track]);
        document.body.append(element);
      };
      await subscriber.setRemoteDescription({ type: "offer", sdp });
      await subscriber.setLocalDescription(await subscriber.createAnswer());
      return withoutCandidates(subscriber.localDescription.sdp);
    },
  };
  window.__conclave = {
    stats: async () => (subscriber ? [...(await subscriber.getStats()).values()] : []),
    mediaGeneration: () => 0,
  };
}

/// A meeting of two through the Janus at `base` (its HTTP API): resolves
/// once each decodes the other, with the pages and a way to end it.
export async function janusMeeting(browser, base, pageUrl, decoding) {
  const room = 7_000_000 + process.pid * 100 + ++rooms;
  const admin = await JanusSession.create(base);
  const roomHandle = await admin.attach();
  await admin.message(roomHandle, {
    request: "create", room, publishers: 2, bitrate: 0, fir_freq: 0, audiocodec: "opus", videocodec: "vp8",
    record: false, notify_joining: false, permanent: false,
  });
  const contexts = [];
  const people = [];
  for (const name of ["Host", "Guest"]) {
    const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1024, height: 700 } });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(pageUrl);
    await page.evaluate(installParticipant, CAMERA_LAYERS);
    const session = await JanusSession.create(base);
    const handle = await session.attach();
    await session.message(handle, { request: "join", ptype: "publisher", room, display: name });
    const joined = await session.next(handle, "join as a publisher", (e) => e.plugindata?.data?.videoroom === "joined");
    const offer = await page.evaluate(() => window.__janus.offer());
    // The layers are listed lowest first, as the app lists them; Janus
    // takes the first for the highest unless told (its own client lists
    // them highest first), and would forward the lowest as its top layer.
    const jsep = { type: "offer", sdp: offer, rid_order: "lmh" };
    await session.message(handle, { request: "publish", audio: true, video: true }, jsep);
    await session.trickleCompleted(handle);
    const answered = await session.next(handle, "answer the publisher", (e) => e.jsep?.type === "answer");
    await page.evaluate((sdp) => window.__janus.published(sdp), answered.jsep.sdp);
    people.push({ page, session, feed: joined.plugindata.data.id });
  }
  // Janus subscribes only to a feed whose media is up on its side.
  const deadline = Date.now() + EVENT_WAIT_MS;
  for (;;) {
    const listed = await admin.message(roomHandle, { request: "listparticipants", room });
    if (listed.participants.filter((p) => p.publisher).length === people.length) break;
    if (Date.now() > deadline) throw new Error("Janus did not count both people as publishing");
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const [i, person] of people.entries()) {
    const other = people[1 - i];
    const handle = await person.session.attach();
    await person.session.message(handle, { request: "join", ptype: "subscriber", room, streams: [{ feed: other.feed }] });
    const offered = await person.session.next(handle, "offer a subscription", (e) => e.jsep?.type === "offer");
    const answer = await person.page.evaluate((sdp) => window.__janus.answer(sdp), offered.jsep.sdp);
    await person.session.message(handle, { request: "start" }, { type: "answer", sdp: answer });
    await person.session.trickleCompleted(handle);
  }
  const pages = people.map((p) => p.page);
  const close = async () => {
    await Promise.all(people.map((p) => p.session.destroy()));
    await admin.message(roomHandle, { request: "destroy", room }).catch(() => undefined);
    await admin.destroy();
    await Promise.all(contexts.map((c) => c.close()));
  };
  try {
    await decoding(pages);
  } catch (err) {
    // Nothing of a meeting that never got going lingers into the next try.
    await close().catch(() => undefined);
    throw err;
  }
  return { pages, close };
}
