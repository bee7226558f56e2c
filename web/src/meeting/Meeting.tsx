import { Hand, MessageSquare, Mic, MicOff, MonitorUp, PhoneOff, Settings, ShieldCheck, Smile, Sparkles, Users, Video, VideoOff, type LucideIcon } from "lucide-react";
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";
import { api } from "../api";
import { MediaSession, type RemoteTrack } from "../media";
import { E2ee, type E2eeState } from "../e2ee";
import {
  QUALITY_REPORT_EVERY_MS,
  REACTIONS,
  type ClientMessage,
  type JoinTicket,
  type ParticipantView,
  type Quality,
  type ServerMessage,
  type Tile as SubscribedTile,
} from "../generated/protocol";
import { Signaling } from "../signaling";
import { ChatPanel, DevicesPanel, ParticipantsPanel, SecurityPanel } from "./Panels";
import { initialState, reduce } from "./state";
import { RemoteAudio, Tile } from "./Tile";
import { fitGallery, useContentSize } from "./layout";
import { ResizeHandle, useStoredWidth } from "../resize";
import { useFocusRescue } from "../focus";

/// The widths, in CSS pixels, a panel beside the stage may be given.
const PANEL = { initial: 384, min: 280, max: 640 };

type Layout = "gallery25" | "gallery49" | "speaker";

interface TileSpec {
  key: string;
  participantId: number;
  kind: "camera" | "screen";
}

/// A short two-tone chime for a knock, made on the device (no sound file).
function knockSound() {
  try {
    const ctx = new AudioContext();
    [660, 880].forEach((f, i) => {
      const o = ctx.createOscillator();
      const g = ctx.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.15, ctx.currentTime + i * 0.18);
      g.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + i * 0.18 + 0.16);
      o.connect(g).connect(ctx.destination);
      o.start(ctx.currentTime + i * 0.18);
      o.stop(ctx.currentTime + i * 0.18 + 0.17);
    });
  } catch {
    /* no audio output */
  }
}

/// After a camera is switched to, how long the old one's frames may still
/// come out of the encoder, and then how long the new one has to give one.
/// Each panel by name, for its close button.
const PANEL_NAMES = { chat: "chat", people: "participants", security: "security", devices: "devices" } as const;
const NEW_CAMERA_SETTLE_MS = 1000;
/// How long after a Pin press its button takes the focus back if it falls.
const REFOCUS_PIN_MS = 1500;
const NEW_CAMERA_GRACE_MS = 2000;

/// Space between tiles, in CSS pixels.
const TILE_GAP = 6;

export function Meeting(props: {
  ticket: JoinTicket;
  /// The meeting's title, as the join page learnt it.
  title: string | null;
  local: MediaStream | null;
  /// The meeting is over for this person: they left, or it ended for them.
  onLeft: (why: "left" | "over") => void;
  blur: (on: boolean) => Promise<MediaStreamTrack | null>;
}) {
  const [state, dispatch] = useReducer(reduce, initialState);
  const [remote, setRemote] = useState<RemoteTrack[]>([]);
  const [layout, setLayout] = useState<Layout>("gallery25");
  const [page, setPage] = useState(0);
  const [pinned, setPinned] = useState<string | null>(null);
  const [panel, setPanel] = useState<"chat" | "people" | "security" | "devices" | null>(null);
  // Chat lines read (how many): those after, from others, are counted on
  // the Chat button while its panel is closed.
  const [chatRead, setChatRead] = useState(0);
  const [reacting, setReacting] = useState(false);
  const panelFrame = useRef<HTMLDivElement>(null);
  const panelOpener = useRef<HTMLElement | null>(null);
  // Admit, Mute or Remove takes away the button pressed: the focus goes to
  // the next one rather than to the page.
  useFocusRescue(panelFrame);
  const closePanel = () => {
    setPanel(null);
    panelOpener.current?.focus();
  };
  const [sharing, setSharing] = useState(false);
  const [blurred, setBlurred] = useState(false);
  const [cipher, setCipher] = useState<string>();
  const [e2eeState, setE2eeState] = useState<E2eeState | null>(null);
  const e2ee = useRef<E2ee | null>(null);
  // Notices and reactions fade after a few seconds.
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, []);
  const fresh = (at: number) => now - at < 6000;
  const signaling = useRef<Signaling | null>(null);
  const media = useRef<MediaSession | null>(null);
  /// The server's offers held back from the media session (test builds:
  /// how the browser tests make offers cross).
  const heldOffers = useRef<ServerMessage[] | null>(null);
  const screenTrack = useRef<MediaStreamTrack | null>(null);

  const send = useCallback((m: ClientMessage) => signaling.current?.send(m), []);
  // For callbacks made once per meeting: the roster and our id as they are now.
  const rosterRef = useRef(state.roster);
  rosterRef.current = state.roster;
  const meRef = useRef(state.me);
  meRef.current = state.me;
  /// In an E2EE meeting, chat to everyone goes as MLS application messages.
  const sendE2eeChat = useRef<((text: string) => void) | null>(null);
  // The tracks we send; the devices panel can swap them.
  const [tracks, setTracks] = useState(() => ({
    mic: props.local?.getAudioTracks()[0] ?? null,
    cam: props.local?.getVideoTracks()[0] ?? null,
  }));
  const { mic, cam } = tracks;
  // The devices as they are when the server admits us, not at first render.
  const devices = useRef({ mic, cam });
  devices.current = { mic, cam };

  useEffect(() => {
    const onMessage = (m: ServerMessage) => {
      dispatch(m);
      if (m.type === "knock") knockSound();
      // Joined muted by the meeting's setting while the microphone was on
      // at the join page: say so, or the person talks to nobody.
      if (m.type === "admitted" && m.you.audio_muted && devices.current.mic) {
        dispatch({
          type: "notice",
          text: m.settings.allow_self_unmute
            ? "You joined muted: this meeting mutes people as they come in. Unmute (Ctrl+D) to speak."
            : "You joined muted: this meeting mutes people as they come in, and only a host can unmute you.",
        });
      }
      if (m.type === "admitted" && !media.current) {
        if (m.settings.e2ee && !e2ee.current) e2ee.current = startE2ee();
        const session = new MediaSession(props.ticket.ice_servers as RTCIceServer[], send, setRemote, e2ee.current);
        media.current = session;
        void session.start(devices.current.mic, devices.current.cam);
      }
      e2ee.current?.handle(m);
      if (__TEST_HOOKS__ && heldOffers.current && m.type === "media_offer") {
        heldOffers.current.push(m);
        return;
      }
      void media.current?.handle(m);
    };
    // Chat lines decrypted by the worker join the meeting's chat; they have
    // no place in the server's numbering, so they count down from -1.
    let e2eeSeq = 0;
    const e2eeChat = (from: number, text: string) =>
      dispatch({
        type: "chat",
        message: { seq: --e2eeSeq, from, from_name: rosterRef.current.get(from)?.display_name ?? "Someone", to: null, text, at_ms: Date.now() },
      });
    const startE2ee = () => {
      let lastCode: string | null = null;
      return new E2ee({
        send,
        onChat: e2eeChat,
        onNewDevice: (_id, name, fingerprint) =>
          dispatch({
            type: "notice",
            text: `${name} is on a new device (key ${fingerprint}). If you did not expect that, compare the security code with them.`,
          }),
        onCommitRefused: (from, reason) =>
          dispatch({
            type: "notice",
            text: `${rosterRef.current.get(from)?.display_name ?? "Someone"} tried to change who holds this meeting's keys without the server asking (${reason}). This device refused: compare the security code before saying anything sensitive.`,
          }),
        onState: (s) => {
          if (lastCode !== null && s.code !== null && s.code !== lastCode) {
            dispatch({ type: "notice", text: "The security code changed: someone joined or left. Compare it again." });
          }
          if (s.code !== null) lastCode = s.code;
          setE2eeState(s);
        },
      });
    };
    sendE2eeChat.current = (text: string) => {
      e2ee.current?.chat(text);
      e2eeChat(meRef.current ?? -1, text);
    };
    const s = new Signaling(props.ticket.signaling_url, onMessage, () => undefined);
    signaling.current = s;
    s.connect();
    return () => {
      s.close();
      media.current?.close();
      media.current = null;
      e2ee.current?.close();
      e2ee.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.ticket]);

  const me = state.me !== null ? state.roster.get(state.me) : undefined;
  // The room's state is the truth for what we send (a host may mute us).
  useEffect(() => {
    if (mic) mic.enabled = !!me && !me.audio_muted;
    if (cam) cam.enabled = !!me && !me.video_muted;
  }, [me?.audio_muted, me?.video_muted, mic, cam, me]);
  // A host stopped our share.
  useEffect(() => {
    if (sharing && me && !me.sharing_screen && state.phase.kind === "in") {
      const t = window.setTimeout(() => {
        if (!state.roster.get(state.me!)?.sharing_screen) void stopShare(false);
      }, 500);
      return () => window.clearTimeout(t);
    }
    return undefined;
  });

  // State, media and stats for the browser tests, in test builds only (the
  // constant is false in every other build, which drops this code).
  useEffect(() => {
    if (!__TEST_HOOKS__) return;
    const hook = {
      state: () => ({ phase: state.phase.kind, me: state.me, roster: [...state.roster.values()], chat: state.chat, waiting: state.waiting }),
      stats: async () => {
        const pc = media.current?.pc;
        if (!pc) return [];
        const out: Record<string, unknown>[] = [];
        (await pc.getStats()).forEach((r) => out.push({ ...r }));
        return out;
      },
      tracks: () => remote.map((t) => ({ participantId: t.participantId, source: t.source, mid: t.mid })),
      /// Peer connections this page made: more than 1 after a recovery.
      mediaGeneration: () => media.current?.generation ?? 0,
      /// How long received video is held (ms), as the app chose and as each
      /// video receiver has it; `null` leaves it to the browser. And how
      /// many repair round trips the hold covers, and the round trip it
      /// read last.
      playout: () => ({
        chosen: media.current?.playoutTarget ?? null,
        roundTrips: media.current?.playoutRoundTrips ?? 0,
        roundTripMs: media.current?.playoutRoundTripMs ?? null,
        receivers: (media.current?.pc.getReceivers() ?? []).filter((r) => r.track.kind === "video").map((r) => r.jitterBufferTarget ?? null),
      }),
      /// As an app that closes its peer connection and opens another would.
      renewMedia: () => void media.current?.recover(),
      /// Holds the server's media offers back until released, as a slow
      /// network would: an offer of this page's made meanwhile crosses them.
      holdOffers: () => {
        heldOffers.current ??= [];
      },
      releaseOffers: () => {
        const held = heldOffers.current ?? [];
        heldOffers.current = null;
        for (const m of held) void media.current?.handle(m);
        return held.length;
      },
      signalingState: () => media.current?.pc.signalingState ?? null,
      /// The device each source sends from, by its label.
      sending: () => media.current?.sendingLabels() ?? {},
      /// The width of each tile's picture, by participant and kind (0 when black).
      tiles: () =>
        [...document.querySelectorAll("figure.tile")].map((f) => {
          const v = f.querySelector("video");
          return { participant: Number((f as HTMLElement).dataset.participant), kind: (f as HTMLElement).dataset.kind, width: v?.videoWidth ?? 0 };
        }),
      e2ee: () => {
        e2ee.current?.refresh();
        return e2eeState;
      },
    };
    (window as unknown as { __conclave: unknown }).__conclave = hook;
  });
  useEffect(() => {
    if (panel === "security") void media.current?.srtpCipher().then(setCipher);
  }, [panel]);
  // Counted by place in the list: end-to-end encrypted lines have no
  // server numbering (their `seq` counts down).
  useEffect(() => {
    if (!panel) return;
    // Focus to the panel, so a keyboard or screen reader is where it opened;
    // remember what opened it, to come back to.
    if (document.activeElement instanceof HTMLElement && !panelFrame.current?.contains(document.activeElement)) {
      panelOpener.current = document.activeElement;
    }
    const section = panelFrame.current?.querySelector<HTMLElement>(".panel");
    if (section) {
      section.tabIndex = -1;
      section.focus();
    }
  }, [panel]);
  const chatLines = state.chat.length;
  useEffect(() => {
    if (panel === "chat") setChatRead(chatLines);
  }, [panel, chatLines]);
  const unreadChat = panel === "chat" ? 0 : state.chat.slice(chatRead).filter((c) => c.from !== state.me).length;

  // Every few seconds, what this connection measured goes to the server:
  // hosts see a level beside each name, administrators graphs afterwards.
  const inMeeting = state.phase.kind === "in";
  useEffect(() => {
    if (!inMeeting) return undefined;
    const t = window.setInterval(() => {
      void media.current?.qualityReport().then((report) => {
        if (report) send({ type: "quality_report", report });
      });
    }, QUALITY_REPORT_EVERY_MS);
    return () => window.clearInterval(t);
  }, [inMeeting, send]);

  const toggleMic = () => me && send({ type: "set_media", audio_muted: !me.audio_muted });
  const toggleCam = () => me && send({ type: "set_media", video_muted: !me.video_muted });
  // Meet's shortcuts (Ctrl+D the microphone, Ctrl+E the camera) and Zoom's
  // (Alt+A, Alt+V), wherever the focus is.
  const shortcuts = useRef({ toggleMic, toggleCam });
  shortcuts.current = { toggleMic, toggleCam };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const key = e.key.toLowerCase();
      const mic = (e.ctrlKey && !e.altKey && key === "d") || (e.altKey && !e.ctrlKey && key === "a");
      const cam = (e.ctrlKey && !e.altKey && key === "e") || (e.altKey && !e.ctrlKey && key === "v");
      if (!mic && !cam) return;
      e.preventDefault();
      if (mic) shortcuts.current.toggleMic();
      else shortcuts.current.toggleCam();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  const startShare = async () => {
    try {
      const display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      const track = display.getVideoTracks()[0];
      screenTrack.current = track;
      track.onended = () => void stopShare(true);
      send({ type: "start_screen_share" });
      await media.current?.shareScreen(track);
      setSharing(true);
    } catch {
      /* the user cancelled the picker */
    }
  };
  const stopShare = async (tellRoom: boolean) => {
    if (tellRoom) send({ type: "stop_screen_share" });
    await media.current?.stopScreen();
    screenTrack.current = null;
    setSharing(false);
  };
  const toggleBlur = async () => {
    const track = await props.blur(!blurred);
    await media.current?.replace("camera", track ?? cam);
    setBlurred(!blurred);
  };
  const chooseDevice = async (kind: "audioinput" | "videoinput", deviceId: string) => {
    const audio = kind === "audioinput";
    const stream = await navigator.mediaDevices.getUserMedia(audio ? { audio: { deviceId: { exact: deviceId } } } : { video: { deviceId: { exact: deviceId }, width: { ideal: 1280 } } });
    const track = stream.getTracks()[0];
    const old = audio ? mic : cam;
    track.enabled = old?.enabled ?? true;
    const source = audio ? "microphone" : "camera";
    await media.current?.replace(source, track);
    // Some cameras give no picture a video encoder takes (infrared and
    // depth cameras, listed beside the real one): the others would see a
    // frozen frame. Keep the camera that worked, and say why. Counted
    // from a moment after the switch, past frames the old camera left in
    // the encoder.
    if (!audio && track.enabled && media.current) {
      const sleep = (ms: number) => new Promise((r) => window.setTimeout(r, ms));
      await sleep(NEW_CAMERA_SETTLE_MS);
      const before = await media.current.framesEncoded(source);
      await sleep(NEW_CAMERA_GRACE_MS);
      if ((await media.current.framesEncoded(source)) <= before) {
        await media.current.replace(source, old);
        track.stop();
        dispatch({ type: "notice", text: `${track.label || "That camera"} gives no picture others can see (an infrared or depth camera?); keeping ${old?.label || "the one you had"}.` });
        return;
      }
    }
    old?.stop();
    // From the tracks as they are now: the other kind may have been
    // switched while this one was being tried.
    setTracks((now) => (audio ? { ...now, mic: track } : { ...now, cam: track }));
  };
  const report = async (p: ParticipantView) => {
    const reason = window.prompt(`Why are you reporting ${p.display_name}? The organisation's owner will see this.`);
    if (!reason || !state.resumeToken) return;
    try {
      await api.report(props.ticket.meeting_id, state.resumeToken, p.id, reason);
      dispatch({ type: "notice", text: `Reported ${p.display_name}. Thank you.` });
    } catch (e) {
      dispatch({ type: "notice", text: e instanceof Error ? e.message : String(e) });
    }
  };
  const leave = (forAll: boolean) => {
    send({ type: forAll ? "end_for_all" : "leave" });
    window.setTimeout(() => props.onLeft("left"), 300);
  };

  // Each view takes the focus when it opens (its heading), so a screen
  // reader says where the person is: the waiting room, the meeting, the end.
  const phaseKind = state.phase.kind;
  useEffect(() => {
    document.querySelector<HTMLElement>("[data-view-heading]")?.focus();
  }, [phaseKind]);
  // A pinned or unpinned tile moves (into the featured place, or back to
  // the gallery): its Pin button follows it, rather than the focus falling
  // to the page. The move may take more than one render (the layout is
  // measured after the first), each of which can put the tile in a new
  // element, so for a moment after the press the focus is put back when it
  // fell to the page because its button went away; a focus the person
  // moved (a click elsewhere) is left where it is.
  const refocusPin = useRef<{ key: string; until: number; button: Element | null } | null>(null);
  useEffect(() => {
    const pending = refocusPin.current;
    if (pending === null) return;
    if (performance.now() > pending.until) {
      refocusPin.current = null;
      return;
    }
    const fallen = document.activeElement === null || document.activeElement === document.body;
    if (!fallen || pending.button?.isConnected) return;
    const button = document.querySelector<HTMLElement>(`figure.tile[data-key="${pending.key}"] button.pin`);
    button?.focus();
    pending.button = button;
  });
  const [panelWidth, setPanelWidth] = useStoredWidth("meeting-panel", PANEL.initial, PANEL.min, PANEL.max);
  const [stage, stageSize] = useContentSize();

  // Tiles: screens first, then cameras, paged; the speaker view shows one large.
  const roster = [...state.roster.values()];
  const tiles: TileSpec[] = useMemo(() => {
    const screens = roster.filter((p) => p.sharing_screen).map((p) => ({ key: `s${p.id}`, participantId: p.id, kind: "screen" as const }));
    const cams = roster.map((p) => ({ key: `c${p.id}`, participantId: p.id, kind: "camera" as const }));
    return [...screens, ...cams];
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [state.roster]);
  const pageSize = layout === "gallery49" ? 49 : 25;
  const pages = Math.max(1, Math.ceil(tiles.length / pageSize));
  const shownPage = Math.min(page, pages - 1);
  let visible: TileSpec[];
  let featured: TileSpec | undefined;
  if (layout === "speaker" || pinned) {
    featured =
      tiles.find((t) => t.key === pinned) ??
      tiles.find((t) => t.kind === "screen") ??
      tiles.find((t) => t.participantId === state.speaker && t.participantId !== state.me) ??
      tiles.find((t) => t.participantId !== state.me);
    visible = tiles.filter((t) => t !== featured).slice(0, 8);
  } else {
    visible = tiles.slice(shownPage * pageSize, (shownPage + 1) * pageSize);
  }

  // The gallery's tiles as large as its area allows (the featured tile in
  // speaker and pinned views fills its own area by CSS).
  const fit = fitGallery(visible.length, stageSize.width, stageSize.height, TILE_GAP);

  // Tell the SFU what is on screen, and how large (kept as JSON text, so the
  // effect runs only when that changes).
  const galleryQuality: Quality = featured ? "low" : visible.length <= 4 ? "high" : visible.length <= 9 ? "medium" : "low";
  const onScreen: SubscribedTile[] = [...(featured ? [{ t: featured, q: "high" as const }] : []), ...visible.map((t) => ({ t, q: galleryQuality }))]
    .filter(({ t }) => t.participantId !== state.me)
    .map(({ t, q }) => ({ participant_id: t.participantId, source: t.kind, quality: t.kind === "screen" ? "high" : q }));
  const subscription = JSON.stringify(onScreen);
  useEffect(() => {
    if (state.phase.kind === "in") send({ type: "subscribe", tiles: JSON.parse(subscription) as SubscribedTile[] });
  }, [subscription, state.phase.kind, send]);

  const trackOf = (t: TileSpec): MediaStreamTrack | null => {
    if (t.participantId === state.me) return t.kind === "screen" ? screenTrack.current : cam;
    return remote.find((r) => r.participantId === t.participantId && r.source === t.kind)?.track ?? null;
  };
  const renderTile = (t: TileSpec) => (
    <Tile
      key={t.key}
      participant={state.roster.get(t.participantId)}
      track={trackOf(t)}
      kind={t.kind}
      speaking={state.speaker === t.participantId && t.kind === "camera"}
      pinned={pinned === t.key}
      self={t.participantId === state.me}
      tileKey={t.key}
      onPin={() => {
        refocusPin.current = { key: t.key, until: performance.now() + REFOCUS_PIN_MS, button: document.activeElement };
        setPinned(pinned === t.key ? null : t.key);
      }}
    />
  );

  if (state.phase.kind === "connecting") return <main className="center"><p>Connecting…</p></main>;
  if (state.phase.kind === "waiting") {
    return (
      <main className="center waiting-room" aria-label="Waiting room">
        <div className="waiting-card">
          {props.title ? <p className="waiting-title">{props.title}</p> : null}
          <h1 tabIndex={-1} data-view-heading>
            Waiting for the host to let you in
          </h1>
          <span className="spinner" aria-hidden="true" />
          <p>You will join as soon as a host admits you. Nothing of the meeting is shared with you before that.</p>
          <button onClick={() => leave(false)}>Leave</button>
        </div>
      </main>
    );
  }
  if (state.phase.kind !== "in") {
    const text: Record<string, string> = {
      refused:
        state.phase.kind === "refused" && state.phase.reason === "locked"
          ? "The meeting is locked: nobody new can join."
          : state.phase.kind === "refused" && state.phase.reason === "removed"
            ? "You were removed from this meeting and cannot rejoin."
            : state.phase.kind === "refused" && state.phase.reason === "waiting_room_full"
              ? "The waiting room is full. Try again in a few minutes."
              : "A host did not let you in.",
      removed: "A host removed you from the meeting. You cannot rejoin it.",
      ended: "The meeting has ended.",
      replaced: "You joined this meeting from another tab.",
    };
    return (
      <main className="center ended" aria-label="Meeting over">
        <h1 tabIndex={-1} data-view-heading>
          {text[state.phase.kind]}
        </h1>
        <button onClick={() => props.onLeft("over")}>Back</button>
      </main>
    );
  }

  const moderator = me?.role === "host" || me?.role === "co_host";
  return (
    <main className="meeting" aria-label="Meeting" style={{ "--panel-width": `${panelWidth}px` } as React.CSSProperties}>
      <header className="meeting-bar">
        <h1 tabIndex={-1} data-view-heading>
          {props.title ?? "Meeting"}
          <span className="sr-only"> (you are in the meeting)</span>
        </h1>
        {state.settings?.e2ee ? (
          <button className="e2ee-badge" onClick={() => setPanel("security")} title="End-to-end encrypted: see the security code">
            <ShieldCheck aria-hidden="true" size={16} /> {e2eeState?.code ? "End-to-end encrypted" : "Setting up end-to-end encryption…"}
          </button>
        ) : null}
        {state.endsAt ? <span className="timer">Ends at {new Date(state.endsAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}</span> : null}
      </header>
      <section className={`stage ${featured ? "with-featured" : ""}`} aria-label="Videos">
        {featured ? <div className="featured">{renderTile(featured)}</div> : null}
        <div className="gallery" ref={stage}>
          <div
            className="grid"
            style={{
              gridTemplateColumns: `repeat(${fit.columns}, ${fit.tileWidth}px)`,
              gap: `${TILE_GAP}px`,
            }}
          >
            {visible.map(renderTile)}
          </div>
        </div>
        {!featured && pages > 1 ? (
          <nav className="pager" aria-label="Gallery pages">
            <button onClick={() => setPage(Math.max(0, shownPage - 1))} disabled={shownPage === 0}>
              Previous page
            </button>
            <span>
              Page {shownPage + 1} of {pages}
            </span>
            <button onClick={() => setPage(Math.min(pages - 1, shownPage + 1))} disabled={shownPage >= pages - 1}>
              Next page
            </button>
          </nav>
        ) : null}
        {/* Toasts stack up from the stage's lower corner: never over the
            toolbar, the panel beside the stage or the bar above it. */}
        <div className="toasts" role="status" aria-live="polite">
          {state.notices.filter((n) => fresh(n.at)).map((n) => (
            <p key={n.id}>{n.text}</p>
          ))}
          {state.reactions.filter((r) => fresh(r.at)).slice(-3).map((r) => (
            <p key={r.id} className="reaction">
              {state.roster.get(r.from)?.display_name}: {r.emoji}
            </p>
          ))}
        </div>
      </section>
      {remote.filter((r) => r.source === "microphone").map((r) => (
        <RemoteAudio key={r.mid} track={r.track} />
      ))}
      {panel ? (
        // The open panel: focus moves into it, Escape or its close button
        // closes it and focus goes back to the toolbar button that opened it.
        <div
          className="panel-frame"
          ref={panelFrame}
          onKeyDown={(e) => {
            if (e.key === "Escape") closePanel();
          }}
        >
          <ResizeHandle label="Resize the panel" width={panelWidth} min={PANEL.min} max={PANEL.max} edge="left" onResize={setPanelWidth} />
          <button className="panel-close" aria-label={`Close ${PANEL_NAMES[panel]}`} title="Close (Esc)" onClick={closePanel}>
            ✕
          </button>
        {panel === "chat" && state.me !== null && state.settings ? (
          <ChatPanel
            chat={state.chat}
            me={state.me}
            roster={roster}
            settings={state.settings}
            moderator={moderator}
            send={send}
            sendEncrypted={state.settings.e2ee ? (text) => sendE2eeChat.current?.(text) : null}
          />
        ) : null}
        {panel === "people" && state.me !== null && state.settings ? (
          <ParticipantsPanel me={state.me} myRole={me?.role ?? "participant"} roster={roster} waiting={state.waiting} settings={state.settings} send={send} onReport={(p) => void report(p)} quality={state.quality} />
        ) : null}
        {panel === "devices" ? (
          <DevicesPanel
            onChoose={(k, id) => void chooseDevice(k, id)}
            current={{ audioinput: mic?.getSettings().deviceId, videoinput: cam?.getSettings().deviceId }}
          />
        ) : null}
        {panel === "security" ? <SecurityPanel cipher={cipher} e2ee={!!state.settings?.e2ee} state={e2eeState} /> : null}
        </div>
      ) : null}
      <footer className="controls" aria-label="Meeting controls">
        <div className="tool-group" role="group" aria-label="Your media">
          <ToolButton
            icon={me?.audio_muted ? MicOff : Mic}
            label={me?.audio_muted ? "Unmute" : "Mute"}
            shortcut="Control+D"
            off={!!me?.audio_muted}
            disabled={!mic}
            onClick={toggleMic}
          />
          <ToolButton
            icon={me?.video_muted ? VideoOff : Video}
            label={me?.video_muted ? "Start video" : "Stop video"}
            shortcut="Control+E"
            off={!!me?.video_muted}
            disabled={!cam}
            onClick={toggleCam}
          />
          <ToolButton icon={MonitorUp} label={sharing ? "Stop sharing" : "Share screen"} pressed={sharing} onClick={() => (sharing ? void stopShare(true) : void startShare())} />
          <ToolButton icon={Sparkles} label={blurred ? "Background: blurred" : "Blur background"} pressed={blurred} disabled={!cam} onClick={() => void toggleBlur()} />
        </div>
        <div className="tool-group" role="group" aria-label="People">
          <ToolButton icon={Hand} label={me?.hand_raised ? "Lower hand" : "Raise hand"} pressed={!!me?.hand_raised} onClick={() => send({ type: me?.hand_raised ? "lower_hand" : "raise_hand" })} />
          <span className="reactions-holder">
            <ToolButton icon={Smile} label="Reactions" pressed={reacting} onClick={() => setReacting(!reacting)} />
            {reacting ? (
              <span className="reactions" role="group" aria-label="Reactions">
                {REACTIONS.map((e) => (
                  <button
                    key={e}
                    onClick={() => {
                      send({ type: "react", emoji: e });
                      setReacting(false);
                    }}
                    aria-label={`React ${e}`}
                  >
                    {e}
                  </button>
                ))}
              </span>
            ) : null}
          </span>
          <ToolButton icon={MessageSquare} label="Chat" spoken={unreadChat > 0 ? `Chat, ${unreadChat} unread` : "Chat"} badge={unreadChat} pressed={panel === "chat"} onClick={() => setPanel(panel === "chat" ? null : "chat")} />
          <ToolButton
            icon={Users}
            label="Participants"
            spoken={state.waiting.length && moderator ? `Participants (${state.waiting.length} waiting)` : "Participants"}
            badge={moderator ? state.waiting.length : 0}
            pressed={panel === "people"}
            onClick={() => setPanel(panel === "people" ? null : "people")}
          />
        </div>
        <div className="tool-group" role="group" aria-label="Settings">
          <select value={layout} onChange={(e) => setLayout(e.target.value as Layout)} aria-label="Layout">
            <option value="gallery25">Gallery (25)</option>
            <option value="gallery49">Gallery (49)</option>
            <option value="speaker">Speaker view</option>
          </select>
          <ToolButton icon={Settings} label="Devices" pressed={panel === "devices"} onClick={() => setPanel(panel === "devices" ? null : "devices")} />
          <ToolButton icon={ShieldCheck} label="Security" pressed={panel === "security"} onClick={() => setPanel(panel === "security" ? null : "security")} />
        </div>
        <div className="tool-group leave" role="group" aria-label="Leave">
          <ToolButton icon={PhoneOff} label="Leave" danger onClick={() => leave(false)} />
          {me?.role === "host" ? (
            <button className="danger" onClick={() => confirm("End the meeting for everyone in it?") && leave(true)}>
              End for all
            </button>
          ) : null}
        </div>
      </footer>
    </main>
  );
}

/// A toolbar button: an icon over its word, the word (or a longer spoken
/// name) for screen readers, the shortcut in its tooltip, a count when
/// something waits behind it. "Off" (muted, camera off) shows in red and
/// counts as pressed.
function ToolButton(props: {
  icon: LucideIcon;
  label: string;
  spoken?: string;
  shortcut?: string;
  badge?: number;
  pressed?: boolean;
  off?: boolean;
  danger?: boolean;
  disabled?: boolean;
  onClick: () => void;
}) {
  const Icon = props.icon;
  const classes = ["tool", props.off ? "off" : "", props.danger ? "danger" : ""].filter(Boolean).join(" ");
  return (
    <button
      className={classes}
      onClick={props.onClick}
      aria-pressed={props.danger ? undefined : (props.pressed ?? props.off ?? false)}
      aria-label={props.spoken ?? props.label}
      aria-keyshortcuts={props.shortcut}
      title={props.shortcut ? `${props.label} (${props.shortcut.replace("Control", "Ctrl")})` : props.label}
      disabled={props.disabled}
    >
      <Icon aria-hidden="true" size={20} />
      <span className="tool-label">{props.label}</span>
      {props.badge ? (
        <span className="badge" aria-hidden="true">
          {props.badge}
        </span>
      ) : null}
    </button>
  );
}
