// The hold on received video (`src/playout.ts`), driven reading by reading
// as `MediaSession` drives it once a second, without a browser: what it
// holds on a clean link, on a lossy one with long round trips, and that
// the counters' quirks (a packet counted lost that comes after all, a
// stream that ends) do not drop the hold in the middle of a bad link.
//
//   node unit/playout.test.mjs
//
// Prints one `test result:` line for the suite's tally.

import assert from "node:assert/strict";
import { build } from "esbuild";

const bundled = await build({ entryPoints: ["src/playout.ts"], bundle: true, format: "esm", write: false, logLevel: "silent" });
const { RepairCover, MAX_RAISE_MS, MAX_SECOND_REPAIR_COVER_MS, COVER_LASTS_MS } = await import(
  `data:text/javascript;base64,${Buffer.from(bundled.outputFiles[0].text).toString("base64")}`
);

/// A received video stream's counters as the browser keeps them: packets
/// received, RTP's cumulative loss, NACKs sent.
class Stream {
  received = 0;
  lost = 0;
  nacks = 0;
  /// One second of `pps` packets of which `lossPct` % are lost and asked
  /// for again; `late` of the lost ones come after all (a repair the
  /// server forwarded as the packet itself), which takes them off the loss.
  second(pps, lossPct, late = 0) {
    const lost = Math.round((pps * lossPct) / 100);
    this.received += pps - lost + late;
    this.lost += lost - late;
    this.nacks += lost;
    return this;
  }
  counts() {
    return { received: this.received, lost: this.lost, nacks: this.nacks };
  }
}

/// Readings a second apart, from `at` on.
function reader(cover, start = 0) {
  let at = start;
  return (streams, rttMs) => {
    at += 1000;
    const videos = new Map(Object.entries(streams).map(([id, s]) => [id, s.counts()]));
    return cover.update({ at, videos, rttMs });
  };
}

const scenarios = {
  "a clean link leaves the hold to the browser"() {
    const cover = new RepairCover();
    const read = reader(cover);
    const video = new Stream();
    for (let i = 0; i < 20; i++) assert.equal(read({ video: video.second(60, 0) }, 40), null);
    assert.equal(cover.roundTrips, 0);
  },

  "a lossy link with long round trips is covered for two repairs, in steps"() {
    const cover = new RepairCover();
    const read = reader(cover);
    const video = new Stream();
    const holds = [];
    for (let i = 0; i < 15; i++) holds.push(read({ video: video.second(60, 5) }, 400));
    // Two round trips and a fifth, and two frames to notice: 946 ms.
    assert.equal(holds.at(-1), 946);
    assert.equal(cover.roundTrips, 2);
    let before = 150;
    for (const hold of holds) {
      assert.ok(hold - before <= MAX_RAISE_MS, `the hold grew ${before} → ${hold} ms at once`);
      before = hold;
    }
    // Reached within ten readings (ten seconds), not fifteen or more.
    assert.equal(holds[9], 946, `holds: ${holds.join(", ")}`);
    // A longer round trip is covered only up to the limit.
    for (let i = 0; i < 5; i++) read({ video: video.second(60, 5) }, 600);
    assert.equal(read({ video: video.second(60, 5) }, 600), MAX_SECOND_REPAIR_COVER_MS);
  },

  "packets counted lost that come after all do not drop the hold"() {
    const cover = new RepairCover();
    const read = reader(cover);
    const video = new Stream();
    for (let i = 0; i < 12; i++) read({ video: video.second(60, 5) }, 400);
    assert.equal(cover.roundTrips, 2);
    // Each few seconds more lost packets come late than are newly lost,
    // so the cumulative loss goes down between two readings.
    for (let i = 0; i < 20; i++) {
      const hold = read({ video: i % 3 === 0 ? video.second(60, 5, 5) : video.second(60, 5) }, 400);
      assert.equal(hold, 946, `reading ${i}: the hold fell to ${hold} ms on a link still losing 5 %`);
      assert.equal(cover.roundTrips, 2);
    }
  },

  "a stream that ends does not reset what the others measured"() {
    const cover = new RepairCover();
    const read = reader(cover);
    const camera = new Stream();
    const screen = new Stream();
    for (let i = 0; i < 12; i++) read({ camera: camera.second(60, 5), screen: screen.second(30, 5) }, 400);
    assert.equal(cover.roundTrips, 2);
    // The screen share stops: its counters leave the statistics.
    for (let i = 0; i < 5; i++) {
      assert.equal(read({ camera: camera.second(60, 5) }, 400), 946);
      assert.equal(cover.roundTrips, 2);
    }
    // A new peer connection: its streams count from zero, under new ids.
    const again = new Stream();
    for (let i = 0; i < 3; i++) assert.equal(read({ again: again.second(60, 5) }, 400), 946);
  },

  "a round trip read in a calm spell does not shorten the hold"() {
    const cover = new RepairCover();
    const read = reader(cover);
    const video = new Stream();
    for (let i = 0; i < 12; i++) read({ video: video.second(60, 5) }, 400);
    // Round trips of 250 ms for twenty seconds: the 400 ms ones are
    // still within the half minute remembered.
    for (let i = 0; i < 20; i++) assert.equal(read({ video: video.second(60, 5) }, 250), 946);
    // Past it, the hold follows the shorter round trip.
    for (let i = 0; i < 12; i++) read({ video: video.second(60, 5) }, 250);
    assert.equal(read({ video: video.second(60, 5) }, 250), Math.round(250 * 2.2 + 66));
  },

  "a link that stops losing packets gives the hold back to the browser"() {
    const cover = new RepairCover();
    const read = reader(cover);
    const video = new Stream();
    for (let i = 0; i < 12; i++) read({ video: video.second(60, 5) }, 400);
    // Loss under 1 %: one round trip is enough, at once.
    for (let i = 0; i < 11; i++) read({ video: video.second(200, 0.5) }, 400);
    assert.equal(cover.roundTrips, 1);
    assert.equal(read({ video: video.second(100, 0) }, 400), Math.round(400 * 1.2 + 66));
    // No packet asked for again for a while: the browser's own hold.
    let hold;
    for (let i = 0; i <= COVER_LASTS_MS / 1000; i++) hold = read({ video: video.second(100, 0) }, 400);
    assert.equal(hold, null);
    assert.equal(cover.roundTrips, 0);
  },
};

let passed = 0;
let failed = 0;
for (const [name, scenario] of Object.entries(scenarios)) {
  try {
    scenario();
    passed++;
    console.log(`test playout: ${name} ... ok`);
  } catch (err) {
    failed++;
    console.log(`test playout: ${name} ... FAILED\n${err.stack ?? err}`);
  }
}
console.log(`test result: ${failed ? "FAILED" : "ok"}. ${passed} passed; ${failed} failed; 0 ignored`);
process.exit(failed ? 1 : 0);
