// The participant's media session with the SFU: one RTCPeerConnection,
// sending microphone, camera (simulcast when large enough) and screen as
// separate transceivers, receiving what the server offers. The browser is
// the polite peer: when offers cross it yields to the server's, answers,
// and offers again (docs/protocol.md §6.7). When the session fails at
// either end (the server says `media_lost` or `media_failed`, or the
// connection fails here), it starts over on a new peer connection with the
// same tracks, and the server gives the seat a fresh session. While the
// link loses packets, received video is held long enough for their
// retransmissions (`playout.ts`).

import type { ClientMessage, ForwardedTrack, MediaSource, PublishedTrack, QualityReport, ServerMessage, VideoCodec } from "./generated/protocol";
import { encodedTransformSupport, type E2ee } from "./e2ee";
import { RepairCover, playoutSample } from "./playout";

export interface RemoteTrack {
  participantId: number;
  source: MediaSource;
  track: MediaStreamTrack;
  mid: string;
}

/// Simulcast layers for a camera, lowest first; the SFU picks per viewer.
const CAMERA_LAYERS: RTCRtpEncodingParameters[] = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", maxBitrate: 1_500_000 },
];

/// The browser tests' choice of camera codec (test builds only): set
/// `window.__conclaveCodec` to `"video/H264"`, `"video/VP9"` or `"video/AV1"`
/// before joining a meeting (end-to-end encrypted too, each codec in its own
/// layout: `web/src/e2ee/worker.ts`). A client that
/// also decodes nothing else (a room system) sets `__conclaveOnlyCodec`.
function testCodec(): { mimeType: string; encodings: RTCRtpEncodingParameters[] } | null {
  if (!__TEST_HOOKS__) return null;
  const mimeType = onlyDecodes() ?? (window as unknown as { __conclaveCodec?: string }).__conclaveCodec;
  if (!mimeType) return null;
  // VP9 sends its layers as SVC in one stream (three spatial, three temporal).
  const encodings = mimeType === "video/VP9" ? [{ scalabilityMode: "L3T3_KEY" } as RTCRtpEncodingParameters] : [{}];
  return { mimeType, encodings };
}

/// The one codec this client decodes, when a browser test makes it a room
/// system that speaks nothing else (test builds only).
function onlyDecodes(): string | null {
  if (!__TEST_HOOKS__) return null;
  return (window as unknown as { __conclaveOnlyCodec?: string }).__conclaveOnlyCodec ?? null;
}

const MIME_TYPES: Record<VideoCodec, string> = { vp8: "video/VP8", h264: "video/H264", vp9: "video/VP9", av1: "video/AV1" };

/// The negotiated codec of `params` that `codec` names (H.264 in
/// packetization mode 1, the one the server forwards).
function negotiated(params: RTCRtpSendParameters, codec: VideoCodec): RTCRtpCodecParameters | undefined {
  const wanted = MIME_TYPES[codec].toLowerCase();
  return params.codecs.find((c) => c.mimeType.toLowerCase() === wanted && (codec !== "h264" || (c.sdpFmtpLine ?? "").includes("packetization-mode=1")));
}

type EncodingWithCodec = RTCRtpEncodingParameters & { codec?: { mimeType: string; clockRate: number; sdpFmtpLine?: string } };

/// Offers only `mimeType` for this transceiver (and its retransmissions), as
/// a client that speaks nothing else would.
function onlyCodec(transceiver: RTCRtpTransceiver, mimeType: string) {
  const codecs = RTCRtpSender.getCapabilities("video")?.codecs ?? [];
  const chosen = codecs.filter((c) => c.mimeType.toLowerCase() === mimeType.toLowerCase());
  const rtx = codecs.filter((c) => c.mimeType.toLowerCase() === "video/rtx");
  if (chosen.length === 0) throw new Error(`this browser cannot send ${mimeType}`);
  transceiver.setCodecPreferences([...chosen, ...rtx]);
}

/// How long the connection may stay "disconnected" before it is replaced
/// (Chromium says so after about 5 s without answers; a Wi-Fi that comes
/// back within this recovers by itself).
const DISCONNECTED_GRACE_MS = 2000;
/// How often the hold on received video is reconsidered: each reading may
/// raise it one step (`MAX_RAISE_MS`), so this sets how soon a link that
/// turned bad is covered.
const PLAYOUT_EVERY_MS = 1000;

export class MediaSession {
  private current!: RTCPeerConnection;
  /// What each source sends, to put on a new peer connection.
  private sending = new Map<MediaSource, MediaStreamTrack | null>();
  private cameraLayers: RTCRtpEncodingParameters[] | undefined;
  private disconnectedTimer: number | undefined;
  private playoutTimer: number;
  private cover = new RepairCover();
  /// The hold on received video now, in ms (`null`: the browser's own).
  playoutTarget: number | null = null;
  /// How many repair round trips that hold covers (0: no hold).
  get playoutRoundTrips(): number {
    return this.cover.roundTrips;
  }
  /// The round trip that hold was last sized from, in ms.
  get playoutRoundTripMs(): number | null {
    return this.cover.latestRoundTripMs;
  }
  private closed = false;
  /// Peer connections made so far (1 until a recovery).
  generation = 0;
  /// The statistics' counters at the last quality report.
  private lastTotals: { at: number; totals: Map<string, number> } | null = null;
  private senders = new Map<MediaSource, RTCRtpTransceiver>();
  /// The codec the server asked this participant's videos to be sent in
  /// (`publish_codec`: one everyone in the meeting decodes).
  private videoCodec: VideoCodec = "vp8";
  private makingOffer = false;
  private offerPending = false;
  private needsOffer = false;
  private tracks = new Map<string, ForwardedTrack>();
  private remote = new Map<string, RemoteTrack>();
  /// Negotiation steps run one after another: a message must not be
  /// applied while the previous one is still being applied.
  private chain: Promise<void> = Promise.resolve();
  /// Senders and receivers whose frames already pass through the E2EE worker.
  private encrypted = new WeakSet<RTCRtpSender | RTCRtpReceiver>();

  constructor(
    private iceServers: RTCIceServer[],
    private send: (m: ClientMessage) => void,
    private onRemoteTracks: (tracks: RemoteTrack[]) => void,
    /// In an end-to-end encrypted meeting, every frame goes through it.
    private e2ee: E2ee | null = null,
  ) {
    this.current = this.connect();
    this.playoutTimer = window.setInterval(() => void this.adjustPlayout(), PLAYOUT_EVERY_MS);
  }

  get pc(): RTCPeerConnection {
    return this.current;
  }

  private connect(): RTCPeerConnection {
    const config: RTCConfiguration & { encodedInsertableStreams?: boolean } = { iceServers: this.iceServers, bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" };
    // The browser tests' stand-in for a network that lets nothing out but
    // TCP (`"turn:"`) or TLS (`"turns:"`) to the TURN server: relayed
    // candidates only, through the servers of that scheme (test builds only).
    const relayOnly = __TEST_HOOKS__ ? (window as unknown as { __conclaveRelayOnly?: "turn:" | "turns:" }).__conclaveRelayOnly : undefined;
    if (relayOnly) {
      config.iceTransportPolicy = "relay";
      config.iceServers = this.iceServers
        .map((server) => ({ ...server, urls: [server.urls].flat().filter((url) => url.startsWith(relayOnly)) }))
        .filter((server) => server.urls.length > 0);
    }
    if (this.e2ee && encodedTransformSupport() === "streams") config.encodedInsertableStreams = true;
    const pc = new RTCPeerConnection(config);
    this.generation += 1;
    pc.ontrack = (event) => {
      const mid = event.transceiver.mid;
      if (!mid || pc !== this.current) return;
      this.encryptAll();
      this.attach(mid, event.track);
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.current || this.closed) return;
      window.clearTimeout(this.disconnectedTimer);
      if (pc.connectionState === "failed") void this.recover();
      if (pc.connectionState === "disconnected") {
        this.disconnectedTimer = window.setTimeout(() => {
          if (pc === this.current && pc.connectionState === "disconnected") void this.recover();
        }, DISCONNECTED_GRACE_MS);
      }
    };
    return pc;
  }

  /// Starts over on a new peer connection: the same tracks sent, every
  /// frame through the E2EE worker again, and a first offer, which the
  /// server answers with a fresh session for this seat.
  recover(): Promise<void> {
    return this.enqueue(async () => {
      if (this.closed) return;
      const old = this.current;
      old.onconnectionstatechange = null;
      old.ontrack = null;
      old.close();
      this.current = this.connect();
      this.senders.clear();
      this.tracks.clear();
      this.remote.clear();
      this.encrypted = new WeakSet();
      this.makingOffer = false;
      this.offerPending = false;
      this.needsOffer = false;
      this.publishRemote();
      this.addSenders();
      await this.offer();
    });
  }

  /// Puts every sender and receiver not yet covered behind the E2EE worker,
  /// before any frame of theirs flows.
  private encryptAll() {
    if (!this.e2ee) return;
    for (const t of this.pc.getTransceivers()) {
      const kind = t.receiver.track.kind === "audio" ? "audio" : "video";
      if (!this.encrypted.has(t.sender)) {
        this.e2ee.attach(t.sender, { side: "send", kind });
        this.encrypted.add(t.sender);
      }
      if (!this.encrypted.has(t.receiver)) {
        this.e2ee.attach(t.receiver, { side: "receive", kind });
        this.encrypted.add(t.receiver);
      }
    }
  }

  private attach(mid: string, track: MediaStreamTrack) {
    const owner = this.tracks.get(mid);
    if (!owner) return;
    this.remote.set(mid, { participantId: owner.participant_id, source: owner.source, track, mid });
    this.publishRemote();
  }

  private publishRemote() {
    const live = [...this.remote.values()].filter((t) => this.tracks.has(t.mid));
    this.onRemoteTracks(live);
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(step).catch((err) => console.warn("media negotiation:", err));
    return this.chain;
  }

  /// Starts sending the given tracks (either may be absent).
  start(microphone: MediaStreamTrack | null, camera: MediaStreamTrack | null): Promise<void> {
    return this.enqueue(() => this.startNow(microphone, camera));
  }

  private async startNow(microphone: MediaStreamTrack | null, camera: MediaStreamTrack | null) {
    this.sending.set("microphone", microphone);
    this.sending.set("camera", camera);
    const settings = camera?.getSettings();
    this.cameraLayers = camera && (settings?.width ?? 0) >= 640 ? CAMERA_LAYERS : undefined;
    this.addSenders();
    await this.offer();
  }

  /// One transceiver per source, in a fixed order (microphone, camera,
  /// then the screen when shared).
  private addSenders() {
    const microphone = this.sending.get("microphone") ?? null;
    const camera = this.sending.get("camera") ?? null;
    const screen = this.sending.get("screen") ?? null;
    this.pc.addTransceiver(microphone ?? "audio", { direction: microphone ? "sendonly" : "inactive" });
    this.senders.set("microphone", this.pc.getTransceivers().at(-1)!);
    const codec = testCodec();
    const cameraTransceiver = this.pc.addTransceiver(camera ?? "video", {
      direction: camera ? "sendonly" : "inactive",
      sendEncodings: camera ? (codec ? codec.encodings : this.cameraLayers?.map((l) => ({ ...l }))) : undefined,
    });
    if (codec) onlyCodec(cameraTransceiver, codec.mimeType);
    this.senders.set("camera", cameraTransceiver);
    if (screen) this.senders.set("screen", this.pc.addTransceiver(screen, { direction: "sendonly" }));
    this.encryptAll();
  }

  /// Sends the camera and the screen in the meeting's codec, chosen among
  /// the codecs negotiated (the server's answers list every one it
  /// forwards, VP8 first): the browser changes encoder without a new
  /// offer. Run after every answer, for videos added since.
  private async applyVideoCodec() {
    for (const source of ["camera", "screen"] as const) {
      const sender = this.senders.get(source)?.sender;
      if (!sender?.track) continue;
      const params = sender.getParameters();
      const codec = negotiated(params, this.videoCodec);
      const encodings = params.encodings as EncodingWithCodec[];
      if (!codec || encodings.length === 0 || encodings.every((e) => e.codec?.mimeType === codec.mimeType && e.codec?.sdpFmtpLine === codec.sdpFmtpLine)) continue;
      for (const e of encodings) e.codec = { mimeType: codec.mimeType, clockRate: codec.clockRate, sdpFmtpLine: codec.sdpFmtpLine };
      await sender.setParameters(params);
    }
  }

  /// Sends an offer for the current transceivers, unless one is outstanding
  /// (then it is sent once the answer is in). Runs inside the chain.
  private async offer() {
    if (this.makingOffer || this.offerPending) {
      this.needsOffer = true;
      return;
    }
    this.makingOffer = true;
    try {
      await this.pc.setLocalDescription(await this.pc.createOffer());
      const tracks: PublishedTrack[] = [...this.senders.entries()]
        .filter(([, t]) => t.mid && t.direction !== "inactive" && t.direction !== "stopped")
        .map(([source, t]) => ({ mid: t.mid!, source }));
      this.offerPending = true;
      this.needsOffer = false;
      this.send({ type: "media_offer", sdp: this.pc.localDescription!.sdp, tracks });
    } finally {
      this.makingOffer = false;
    }
  }

  handle(message: ServerMessage): Promise<void> {
    return this.enqueue(() => this.handleNow(message));
  }

  private async handleNow(message: ServerMessage) {
    switch (message.type) {
      case "media_answer":
        if (this.pc.signalingState === "have-local-offer") {
          await this.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
          if (this.videoCodec !== "vp8") await this.applyVideoCodec();
        }
        this.offerPending = false;
        if (this.needsOffer) await this.offer();
        break;
      case "media_offer": {
        if (this.pc.signalingState !== "stable") {
          // Crossed offers: ours yields (the server ignores it) and is redone.
          await this.pc.setLocalDescription({ type: "rollback" });
          this.offerPending = false;
          this.needsOffer = true;
        }
        this.tracks = new Map(message.tracks.map((t) => [t.mid, t]));
        await this.pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
        const only = onlyDecodes();
        if (only) {
          for (const t of this.pc.getTransceivers()) {
            if (t.receiver.track.kind === "video" && t.direction === "recvonly") onlyCodec(t, only);
          }
        }
        this.encryptAll();
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        this.send({ type: "media_answer", sdp: this.pc.localDescription!.sdp });
        // Tracks of m-lines that were already there keep their receivers.
        for (const t of this.pc.getTransceivers()) {
          if (t.mid && this.tracks.has(t.mid) && t.receiver.track && !this.remote.has(t.mid)) {
            this.attach(t.mid, t.receiver.track);
          }
        }
        for (const mid of [...this.remote.keys()]) if (!this.tracks.has(mid)) this.remote.delete(mid);
        this.publishRemote();
        if (this.needsOffer) await this.offer();
        break;
      }
      case "publish_layers": {
        const camera = this.senders.get("camera");
        if (camera?.mid !== message.mid) return;
        const params = camera.sender.getParameters();
        if (!params.encodings || params.encodings.length < 2) return;
        for (const e of params.encodings) e.active = message.rids.length === 0 ? false : message.rids.includes(e.rid ?? "");
        // Keep the lowest layer running so a new viewer starts at once.
        if (!params.encodings.some((e) => e.active)) params.encodings[0].active = true;
        await camera.sender.setParameters(params);
        break;
      }
      case "publish_codec": {
        // Someone in the meeting decodes less than this browser sends. Every
        // codec the server forwards is sealed end to end in a layout of its
        // own (`conclave-e2ee-wasm`'s `frame`). A room system (a test's
        // client that speaks one codec) cannot change.
        if (message.codec === this.videoCodec || onlyDecodes()) return;
        this.videoCodec = message.codec;
        await this.applyVideoCodec();
        break;
      }
      case "error":
        // The server replaced this seat's session: its next offer must
        // come from a new peer connection (the old one's DTLS is gone).
        if (message.code === "media_lost" || message.code === "media_failed") void this.recover();
        break;
      default:
    }
  }

  /// The label of the track each source sends now (a device's name).
  sendingLabels(): Partial<Record<MediaSource, string | null>> {
    return Object.fromEntries([...this.senders.entries()].map(([source, t]) => [source, t.sender.track?.label ?? null]));
  }

  /// Frames encoded so far for what `source` sends (every layer).
  async framesEncoded(source: MediaSource): Promise<number> {
    const sender = this.senders.get(source)?.sender;
    if (!sender) return 0;
    let frames = 0;
    (await sender.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp") frames += (s as { framesEncoded?: number }).framesEncoded ?? 0;
    });
    return frames;
  }

  /// Replaces what a source sends (a new device, blur on or off).
  async replace(source: MediaSource, track: MediaStreamTrack | null) {
    if (this.sending.has(source)) this.sending.set(source, track);
    await this.senders.get(source)?.sender.replaceTrack(track);
  }

  shareScreen(track: MediaStreamTrack): Promise<void> {
    return this.enqueue(async () => {
      const transceiver = this.pc.addTransceiver(track, { direction: "sendonly" });
      this.senders.set("screen", transceiver);
      this.sending.set("screen", track);
      this.encryptAll();
      await this.offer();
    });
  }

  stopScreen(): Promise<void> {
    return this.enqueue(async () => {
      const screen = this.senders.get("screen");
      if (!screen) return;
      screen.sender.track?.stop();
      screen.direction = "inactive";
      this.senders.delete("screen");
      this.sending.delete("screen");
      await this.offer();
    });
  }

  /// What happened since the last call, from the connection's statistics:
  /// the participant's quality report (`null` the first time, which only
  /// sets the baseline).
  async qualityReport(): Promise<QualityReport | null> {
    const stats = await this.pc.getStats();
    const now = performance.now();
    const totals = new Map<string, number>();
    const add = (key: string, value: unknown) => {
      if (typeof value === "number" && Number.isFinite(value)) totals.set(key, (totals.get(key) ?? 0) + value);
    };
    let rtt: number | undefined;
    let jitter: number | undefined;
    let height: number | undefined;
    let codecId: string | undefined;
    stats.forEach((r) => {
      // Counters are per stream; a stream's id keeps them apart when the
      // peer connection is replaced (a new id starts from zero).
      if (r.type === "outbound-rtp") {
        add(`sent:${r.id}`, r.bytesSent);
        if (r.kind === "video" && typeof r.frameHeight === "number" && r.frameHeight > (height ?? 0)) {
          height = r.frameHeight;
          codecId = r.codecId;
        }
      }
      if (r.type === "inbound-rtp") {
        add(`received:${r.id}`, r.bytesReceived);
        add(`lost:${r.id}`, r.packetsLost);
        add(`packets:${r.id}`, r.packetsReceived);
        if (typeof r.jitter === "number") jitter = Math.max(jitter ?? 0, r.jitter);
        if (r.kind === "video") {
          add(`freezes:${r.id}`, r.freezeCount);
          add(`frozen:${r.id}`, r.totalFreezesDuration);
        }
      }
      if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded" && typeof r.currentRoundTripTime === "number") {
        rtt = r.currentRoundTripTime;
      }
    });
    const codec = codecId ? (stats.get(codecId) as { mimeType?: string } | undefined)?.mimeType?.split("/")[1] : undefined;
    const previous = this.lastTotals;
    this.lastTotals = { at: now, totals };
    if (!previous) return null;
    const period = Math.max(1, Math.round(now - previous.at));
    const delta = (prefix: string) => {
      let sum = 0;
      totals.forEach((value, key) => {
        if (key.startsWith(prefix)) sum += Math.max(0, value - (previous.totals.get(key) ?? 0));
      });
      return sum;
    };
    const lost = delta("lost:");
    const expected = lost + delta("packets:");
    const frozenMs = Math.min(period, Math.round(delta("frozen:") * 1000));
    return {
      period_ms: Math.min(period, 60_000),
      sent_kbps: Math.round((delta("sent:") * 8) / period),
      received_kbps: Math.round((delta("received:") * 8) / period),
      loss_permille: expected > 0 ? Math.min(1000, Math.round((lost * 1000) / expected)) : 0,
      rtt_ms: rtt !== undefined ? Math.round(rtt * 1000) : null,
      jitter_ms: jitter !== undefined ? Math.round(jitter * 1000) : null,
      freezes: Math.round(delta("freezes:")),
      frozen_ms: Math.min(frozenMs, Math.min(period, 60_000)),
      sent_height: height ?? null,
      codec: codec && codec.length <= 32 ? codec : null,
    };
  }

  /// The negotiated SRTP cipher, from the DTLS transport's statistics.
  async srtpCipher(): Promise<string | undefined> {
    const stats = await this.pc.getStats();
    for (const report of stats.values()) {
      if (report.type === "transport" && report.srtpCipher) return report.srtpCipher as string;
    }
    return undefined;
  }

  /// Holds received video for a retransmission's round trip while the
  /// link loses packets, and gives the choice back to the browser when
  /// it no longer does.
  private async adjustPlayout() {
    // Benchmarks compare with the browser's own hold (test builds only).
    if (__TEST_HOOKS__ && (window as unknown as { __conclaveBrowserPlayout?: boolean }).__conclaveBrowserPlayout) return;
    const pc = this.pc;
    const target = this.cover.update(playoutSample(await pc.getStats(), performance.now()));
    if (this.closed || pc !== this.current) return;
    this.playoutTarget = target;
    for (const receiver of pc.getReceivers()) {
      if (receiver.track.kind === "video" && "jitterBufferTarget" in receiver && receiver.jitterBufferTarget !== target) {
        receiver.jitterBufferTarget = target;
      }
    }
  }

  close() {
    this.closed = true;
    window.clearTimeout(this.disconnectedTimer);
    window.clearInterval(this.playoutTimer);
    for (const t of this.pc.getSenders()) t.track?.stop();
    this.pc.close();
  }
}

