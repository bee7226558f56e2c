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
/// and shrinks at once (frames are then shown sooner, not later).
export const MAX_RAISE_MS = 120;
/// Where the hold starts from when the browser's own is left: about what
/// Chromium holds on a link with some jitter.
const BROWSER_HOLD_MS = 150;
/// The share of video packets lost on this receiver's link past which a
/// second repair round trip is waited for as well.
export const SECOND_REPAIR_LOSS = 0.02;
/// Readings the loss is measured over (one every couple of seconds).
const LOSS_SAMPLES = 5;
/// How long after the last packet asked for again the hold stays.
export const COVER_LASTS_MS = 15_000;
/// Round trips remembered (one per sample, a sample every couple of seconds):
/// the hold covers the longest of them, as retransmissions queue behind
/// whatever made the slow ones slow.
const RTT_SAMPLES = 8;

/// One reading of the connection's statistics.
export interface PlayoutSample {
  /// `performance.now()` of the reading.
  at: number;
  /// Each received video stream's NACK count so far, by its statistics id.
  nacks: Map<string, number>;
  /// The round trip to the server measured since the last reading, if any.
  rttMs: number | null;
  /// Video packets received and lost so far, over every received stream.
  videoReceived: number;
  videoLost: number;
}

/// Decides the hold from samples; `null` leaves the browser's own.
export class RepairCover {
  private nacks = new Map<string, number>();
  private lastRepairAt = Number.NEGATIVE_INFINITY;
  private rtts: number[] = [];
  /// Video packets received and lost, as of each recent reading.
  private counts: { received: number; lost: number }[] = [];
  /// How many round trips the hold last covered (0: no hold).
  roundTrips = 0;
  /// The hold last asked for, `null` for the browser's own.
  private held: number | null = null;

  update(sample: PlayoutSample): number | null {
    const latest = { received: sample.videoReceived, lost: sample.videoLost };
    // Counts that went down (a new peer connection, a video that ended)
    // start over.
    const previous = this.counts.at(-1);
    if (previous && (latest.received < previous.received || latest.lost < previous.lost)) this.counts = [];
    this.counts.push(latest);
    if (this.counts.length > LOSS_SAMPLES + 1) this.counts.shift();
    for (const [id, count] of sample.nacks) {
      // A stream seen for the first time (or restarted on a new peer
      // connection) counts from its own start.
      if (count > (this.nacks.get(id) ?? 0)) this.lastRepairAt = sample.at;
    }
    this.nacks = sample.nacks;
    if (sample.rttMs !== null && Number.isFinite(sample.rttMs) && sample.rttMs >= 0) {
      this.rtts.push(sample.rttMs);
      if (this.rtts.length > RTT_SAMPLES) this.rtts.shift();
    }
    if (sample.at - this.lastRepairAt > COVER_LASTS_MS || this.rtts.length === 0) {
      this.roundTrips = 0;
      this.held = null;
      return null;
    }
    const rtt = Math.max(...this.rtts);
    // Once two round trips are covered, they stay so until the loss falls
    // well below the threshold: a link near it would otherwise move the
    // hold up and down by hundreds of milliseconds every few seconds.
    const loss = this.recentLoss();
    const second = this.roundTrips === 2 ? loss >= SECOND_REPAIR_LOSS / 2 : loss >= SECOND_REPAIR_LOSS;
    this.roundTrips = second ? 2 : 1;
    // A round trip for each request and its packet, a fifth of one more
    // for the spread of round trips, and two frames' time for the gap to
    // be noticed.
    const limit = this.roundTrips === 2 ? MAX_SECOND_REPAIR_COVER_MS : MAX_COVER_MS;
    const wanted = Math.min(limit, Math.round(rtt * (this.roundTrips + 0.2) + 66));
    this.held = Math.min(wanted, (this.held ?? BROWSER_HOLD_MS) + MAX_RAISE_MS);
    return this.held;
  }

  /// The share of video packets lost over the recent readings.
  private recentLoss(): number {
    const first = this.counts[0];
    const last = this.counts.at(-1);
    if (!first || !last) return 0;
    const lost = last.lost - first.lost;
    const total = lost + last.received - first.received;
    return total > 0 ? lost / total : 0;
  }
}

/// What `RepairCover` needs from a connection's statistics.
export function playoutSample(stats: RTCStatsReport, at: number): PlayoutSample {
  const nacks = new Map<string, number>();
  let rtt: number | null = null;
  let videoReceived = 0;
  let videoLost = 0;
  const longer = (seconds: unknown) => {
    if (typeof seconds === "number" && Number.isFinite(seconds)) rtt = Math.max(rtt ?? 0, seconds * 1000);
  };
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      nacks.set(r.id, r.nackCount ?? 0);
      videoReceived += r.packetsReceived ?? 0;
      videoLost += Math.max(0, r.packetsLost ?? 0);
    }
    if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") longer(r.currentRoundTripTime);
    // The server's receiver reports give a round trip too, per stream sent.
    if (r.type === "remote-inbound-rtp") longer(r.roundTripTime);
  });
  return { at, nacks, rttMs: rtt, videoReceived, videoLost };
}
