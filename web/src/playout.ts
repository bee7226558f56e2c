// How long received video is held before it is shown, so that a lost
// packet's retransmission still arrives in time.
//
// Chromium sizes its video jitter buffer from how irregularly frames
// arrive, not from how long a retransmission takes. On a link that loses
// packets and has a long round trip (a congested Wi-Fi, a mobile network
// far from the server), the packet asked for again comes back after its
// frame was due: the frame is shown late or dropped, every frame after it
// waits for it, and the picture freezes until a keyframe
// (`docs/benchmarks.md`, "Media on bad networks", compares both holds on
// the same network).
//
// So while this receiver has had to ask for packets again recently, its
// video is held for a round trip and a little more (never more than
// `MAX_COVER_MS`); on a clean link the browser's own choice stands, adding
// no delay. Audio follows the video through lip sync.
//
// A repair fails when the request or the packet sent again is lost too:
// on a link losing a share p of its packets, about 2p of repairs take a
// second round trip. Past `SECOND_REPAIR_LOSS` that is a frame late every
// few seconds, each a short freeze, so the hold covers two round trips
// there, within a longer limit: on such a link the picture would
// otherwise stop every few seconds, which people notice more than a
// conversation that runs later (`docs/benchmarks.md`, "Media on bad
// networks", measured both).

/// Longest hold added for one repair: past this a conversation lags more
/// than a freeze costs.
export const MAX_COVER_MS = 600;
/// Longest hold added where a second repair is waited for as well.
export const MAX_SECOND_REPAIR_COVER_MS = 1000;
/// The most the hold grows by at one reading. Chromium shows a longer hold
/// at once, by waiting that much longer before the next frame: a step of
/// 400 ms is a freeze of 450 ms by its own count (a frame later than
/// 150 ms past the usual gap), so the hold grows in steps short of that,
/// and shrinks at once (frames are then shown sooner, not later). With a
/// reading every second (`MediaSession`), the hold a lossy link with long
/// round trips needs (about 1 s) is reached in about seven seconds; until
/// then its late repairs freeze the picture.
export const MAX_RAISE_MS = 120;
/// Where the hold starts from when the browser's own is left: about what
/// Chromium holds on a link with some jitter.
const BROWSER_HOLD_MS = 150;
/// The share of video packets lost on this receiver's link past which a
/// second repair round trip is waited for as well.
export const SECOND_REPAIR_LOSS = 0.02;
/// How long the loss is measured over, and the fewest packets (received
/// and lost) it is judged on.
const LOSS_OVER_MS = 10_000;
const LEAST_PACKETS = 100;
/// How long after the last packet asked for again the hold stays.
export const COVER_LASTS_MS = 15_000;
/// How long a round trip is remembered: the hold covers the longest of
/// them, as retransmissions queue behind whatever made the slow ones slow.
/// A jittery link also has calm spells of a few seconds, whose round trips
/// say little about the next repair; a hold that dropped with them froze
/// the picture at the next late repair.
const RTT_KEPT_MS = 30_000;

/// What one received video stream has counted so far.
export interface VideoCounts {
  nacks: number;
  received: number;
  /// RTP's cumulative loss: packets expected less packets received. It
  /// also goes down, when a packet counted lost comes after all (late, or
  /// twice).
  lost: number;
}

/// One reading of the connection's statistics.
export interface PlayoutSample {
  /// `performance.now()` of the reading.
  at: number;
  /// Each received video stream's counts, by its statistics id.
  videos: Map<string, VideoCounts>;
  /// The round trip to the server measured since the last reading, if any.
  rttMs: number | null;
}

/// Decides the hold from samples; `null` leaves the browser's own.
export class RepairCover {
  /// Each stream's counts at the last reading.
  private videos = new Map<string, VideoCounts>();
  private lastRepairAt = Number.NEGATIVE_INFINITY;
  /// Recent round trips, with when each was read.
  private rtts: { at: number; ms: number }[] = [];
  /// Video packets received and lost between each recent reading and the
  /// one before, over the streams both readings had.
  private periods: { at: number; received: number; lost: number }[] = [];
  /// How many round trips the hold last covered (0: no hold).
  roundTrips = 0;
  /// The hold last asked for, `null` for the browser's own.
  private held: number | null = null;

  update(sample: PlayoutSample): number | null {
    // Counted stream by stream: a stream that ends (a screen share, a
    // peer connection replaced) takes its counts with it, and one that
    // starts counts from its first reading, without losing the others'.
    const period = { at: sample.at, received: 0, lost: 0 };
    for (const [id, now] of sample.videos) {
      const before = this.videos.get(id);
      // A stream seen for the first time counts from its own start.
      if (now.nacks > (before?.nacks ?? 0)) this.lastRepairAt = sample.at;
      if (!before || now.received < before.received) continue;
      period.received += now.received - before.received;
      period.lost += now.lost - before.lost;
    }
    this.videos = sample.videos;
    this.periods.push(period);
    while (this.periods.length > 0 && sample.at - this.periods[0].at > LOSS_OVER_MS) this.periods.shift();
    if (sample.rttMs !== null && Number.isFinite(sample.rttMs) && sample.rttMs >= 0) {
      this.rtts.push({ at: sample.at, ms: sample.rttMs });
    }
    while (this.rtts.length > 0 && sample.at - this.rtts[0].at > RTT_KEPT_MS) this.rtts.shift();
    if (sample.at - this.lastRepairAt > COVER_LASTS_MS || this.rtts.length === 0) {
      this.roundTrips = 0;
      this.held = null;
      return null;
    }
    const rtt = Math.max(...this.rtts.map((r) => r.ms));
    // Once two round trips are covered, they stay so until the loss falls
    // well below the threshold: a link near it would otherwise move the
    // hold up and down by hundreds of milliseconds every few seconds.
    const loss = this.recentLoss();
    const threshold = this.roundTrips === 2 ? SECOND_REPAIR_LOSS / 2 : SECOND_REPAIR_LOSS;
    // Too few packets say nothing of the loss: the last judgement stands.
    const second = loss === null ? this.roundTrips === 2 : loss >= threshold;
    this.roundTrips = second ? 2 : 1;
    // A round trip for each request and its packet, a fifth of one more
    // for the spread of round trips, and two frames' time for the gap to
    // be noticed.
    const limit = this.roundTrips === 2 ? MAX_SECOND_REPAIR_COVER_MS : MAX_COVER_MS;
    const wanted = Math.min(limit, Math.round(rtt * (this.roundTrips + 0.2) + 66));
    this.held = Math.min(wanted, (this.held ?? BROWSER_HOLD_MS) + MAX_RAISE_MS);
    return this.held;
  }

  /// The round trip read last, in ms (`null` before any).
  get latestRoundTripMs(): number | null {
    return this.rtts.at(-1)?.ms ?? null;
  }

  /// The share of video packets lost over the recent readings, or `null`
  /// when too few came to tell.
  private recentLoss(): number | null {
    const received = this.periods.reduce((a, p) => a + p.received, 0);
    // Late packets make a period's loss negative; over the whole
    // window they only cancel what was counted before.
    const lost = Math.max(0, this.periods.reduce((a, p) => a + p.lost, 0));
    if (received + lost < LEAST_PACKETS) return null;
    return lost / (received + lost);
  }
}

/// What `RepairCover` needs from a connection's statistics.
export function playoutSample(stats: RTCStatsReport, at: number): PlayoutSample {
  const videos = new Map<string, VideoCounts>();
  let rtt: number | null = null;
  const longer = (seconds: unknown) => {
    if (typeof seconds === "number" && Number.isFinite(seconds)) rtt = Math.max(rtt ?? 0, seconds * 1000);
  };
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      videos.set(r.id, { nacks: r.nackCount ?? 0, received: r.packetsReceived ?? 0, lost: r.packetsLost ?? 0 });
    }
    if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") longer(r.currentRoundTripTime);
    // The server's receiver reports give a round trip too, per stream sent.
    if (r.type === "remote-inbound-rtp") longer(r.roundTripTime);
  });
  return { at, videos, rttMs: rtt };
}
