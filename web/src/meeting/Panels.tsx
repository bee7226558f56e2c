import { useEffect, useState } from "react";
import {
  MAX_CHAT_CHARS,
  type ChatMessage,
  type ChatMode,
  type ClientMessage,
  type ParticipantView,
  type QualityLevel,
  type QualityReport,
  type Role,
  type RoomSettings,
  type ScreenShareMode,
  type SettingsChange,
  type WaitingView,
} from "../generated/protocol";
import type { E2eeState } from "../e2ee";

type Send = (m: ClientMessage) => void;

export function ChatPanel(props: {
  chat: ChatMessage[];
  me: number;
  roster: ParticipantView[];
  settings: RoomSettings;
  moderator: boolean;
  send: Send;
  /// Set in an end-to-end encrypted meeting: chat to everyone goes through it.
  sendEncrypted: ((text: string) => void) | null;
}) {
  const [text, setText] = useState("");
  const [to, setTo] = useState<string>("everyone");
  const canWrite = props.settings.chat === "everyone" || props.moderator;
  const targets = props.roster.filter((p) => p.id !== props.me && (props.settings.private_chat || p.role !== "participant"));
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const trimmed = text.trim();
    if (!trimmed) return;
    if (props.sendEncrypted && to === "everyone") {
      props.sendEncrypted(trimmed);
      setText("");
      return;
    }
    props.send({
      type: "chat",
      client_msg_id: crypto.randomUUID(),
      text: trimmed,
      to: to === "everyone" ? null : Number(to),
    });
    setText("");
  };
  return (
    <section className="panel chat" aria-label="Chat">
      <h2>Chat</h2>
      <ol className="messages" aria-live="polite">
        {props.chat.map((m) => (
          <li key={m.seq} className={m.to !== null ? "private" : undefined}>
            <strong>{m.from_name}</strong>
            {m.to !== null ? <em> (privately{props.sendEncrypted ? ", not end-to-end encrypted" : ""})</em> : null}:{" "}
            <span className="text">{m.text}</span>
          </li>
        ))}
      </ol>
      {props.settings.chat === "off" && !props.moderator ? (
        <p>The host turned chat off.</p>
      ) : (
        <form onSubmit={submit}>
          <label>
            To{" "}
            <select value={to} onChange={(e) => setTo(e.target.value)} aria-label="Send to">
              {canWrite ? <option value="everyone">Everyone</option> : null}
              {targets.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.display_name}
                </option>
              ))}
            </select>
          </label>
          <input value={text} onChange={(e) => setText(e.target.value)} placeholder="Message" aria-label="Message" maxLength={MAX_CHAT_CHARS} />
          <button type="submit">Send</button>
        </form>
      )}
    </section>
  );
}

/// The choices of the screen-sharing and chat settings, every mode labelled.
const SCREEN_SHARE_LABELS: Record<ScreenShareMode, string> = {
  host_only: "Hosts only",
  one_at_a_time: "One at a time",
  several: "Several at once",
};
const CHAT_LABELS: Record<ChatMode, string> = {
  everyone: "Everyone",
  hosts_only: "Only to hosts",
  off: "Off",
};

export function ParticipantsPanel(props: {
  me: number;
  myRole: Role;
  roster: ParticipantView[];
  waiting: WaitingView[];
  settings: RoomSettings;
  send: Send;
  onReport: (participant: ParticipantView) => void;
  /// Each participant's call quality, as hosts are told it.
  quality: Map<number, { level: QualityLevel; report: QualityReport }>;
}) {
  const moderator = props.myRole === "host" || props.myRole === "co_host";
  const host = props.myRole === "host";
  const change = (settings: SettingsChange) => props.send({ type: "update_settings", settings });
  const locked = (s: keyof SettingsChange) => props.settings.locked_by_policy.includes(s);
  return (
    <section className="panel participants" aria-label="Participants">
      {moderator && props.waiting.length > 0 ? (
        <>
          <h2>Waiting room ({props.waiting.length})</h2>
          <ul className="waiting">
            {props.waiting.map((w) => (
              <li key={w.id} data-waiting={w.id}>
                {w.display_name} <Standing signedIn={w.signed_in} organisation={w.organisation} external={w.external} />
                {w.email ? ` · ${w.email}` : ""}{" "}
                <button onClick={() => props.send({ type: "admit", participant_id: w.id })} aria-label={`Admit ${w.display_name}`}>
                  Admit
                </button>{" "}
                <button onClick={() => props.send({ type: "deny", participant_id: w.id })} aria-label={`Deny ${w.display_name}`}>
                  Deny
                </button>
              </li>
            ))}
          </ul>
          <button onClick={() => props.send({ type: "admit_all" })}>Admit all</button>
        </>
      ) : null}
      <h2>In the meeting ({props.roster.length})</h2>
      <ul className="roster">
        {props.roster.map((p) => (
          <li key={p.id} data-participant={p.id}>
            <span>
              {moderator ? <QualityBadge quality={props.quality.get(p.id)} name={p.display_name} /> : null}
              {p.display_name} <Standing signedIn={p.signed_in} organisation={p.organisation} external={p.external} />
              {p.id === props.me ? " (you)" : ""}
              {p.role !== "participant" ? ` · ${p.role === "host" ? "Host" : "Co-host"}` : ""}
              {p.hand_raised ? " ✋" : ""}
              {p.audio_muted ? " 🔇" : ""}
              {p.video_muted ? " 📷✕" : ""}
            </span>
            {p.id !== props.me ? (
              <button className="link" onClick={() => props.onReport(p)} aria-label={`Report ${p.display_name}`}>
                Report
              </button>
            ) : null}
            {moderator && p.id !== props.me && (p.role !== "host" || host) ? (
              <span className="actions">
                <button onClick={() => props.send({ type: "mute", participant_id: p.id })} aria-label={`Mute ${p.display_name}`} disabled={p.audio_muted}>
                  Mute
                </button>
                <button onClick={() => props.send({ type: "ask_to_unmute", participant_id: p.id })} aria-label={`Ask to unmute ${p.display_name}`} disabled={!p.audio_muted}>
                  Ask to unmute
                </button>
                <button onClick={() => props.send({ type: "stop_video", participant_id: p.id })} aria-label={`Stop video for ${p.display_name}`} disabled={p.video_muted}>
                  Stop video
                </button>
                {p.sharing_screen ? (
                  <button onClick={() => props.send({ type: "stop_screen_share", participant_id: p.id })} aria-label={`Stop share for ${p.display_name}`}>
                    Stop share
                  </button>
                ) : null}
                {host ? (
                  <>
                    <button onClick={() => props.send({ type: "set_co_host", participant_id: p.id, co_host: p.role !== "co_host" })}>
                      {p.role === "co_host" ? "Remove co-host" : "Make co-host"}
                    </button>
                    <button
                      onClick={() =>
                        confirm(`Make ${p.display_name} the host? You will no longer be the host.`) &&
                        props.send({ type: "transfer_host", participant_id: p.id })
                      }
                    >
                      Make host
                    </button>
                  </>
                ) : null}
                <button
                  className="danger"
                  onClick={() =>
                    confirm(`Remove ${p.display_name} from the meeting? They cannot come back into it.`) &&
                    props.send({ type: "remove", participant_id: p.id })
                  }
                  aria-label={`Remove ${p.display_name}`}
                >
                  Remove
                </button>
              </span>
            ) : null}
          </li>
        ))}
      </ul>
      {moderator ? (
        <>
          <h2>Meeting</h2>
          <div className="settings">
            <button onClick={() => props.send({ type: props.settings.locked ? "unlock" : "lock" })} aria-pressed={props.settings.locked}>
              {props.settings.locked ? "Unlock meeting" : "Lock meeting"}
            </button>
            <button onClick={() => props.send({ type: "mute_all" })}>Mute all</button>
            <label>
              <input
                type="checkbox"
                checked={props.settings.waiting_room}
                disabled={locked("waiting_room")}
                onChange={(e) => change({ waiting_room: e.target.checked })}
              />{" "}
              Waiting room{locked("waiting_room") ? " (locked by your organisation)" : ""}
            </label>
            <label>
              <input
                type="checkbox"
                checked={props.settings.allow_self_unmute}
                onChange={(e) => change({ allow_self_unmute: e.target.checked })}
              />{" "}
              Participants may unmute themselves
            </label>
            <label>
              <input
                type="checkbox"
                checked={props.settings.allow_video}
                onChange={(e) => change({ allow_video: e.target.checked })}
              />{" "}
              Participants may start video
            </label>
            <label>
              Screen sharing{" "}
              <select
                value={props.settings.screen_share}
                // The options are exactly SCREEN_SHARE_LABELS' keys.
                onChange={(e) => change({ screen_share: e.target.value as ScreenShareMode })}
              >
                {Object.entries(SCREEN_SHARE_LABELS).map(([mode, label]) => (
                  <option key={mode} value={mode}>
                    {label}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Chat{" "}
              <select
                value={props.settings.chat}
                disabled={locked("chat")}
                // The options are exactly CHAT_LABELS' keys.
                onChange={(e) => change({ chat: e.target.value as ChatMode })}
              >
                {Object.entries(CHAT_LABELS).map(([mode, label]) => (
                  <option key={mode} value={mode}>
                    {label}
                  </option>
                ))}
              </select>
            </label>
            <label>
              <input
                type="checkbox"
                checked={props.settings.private_chat}
                onChange={(e) => change({ private_chat: e.target.checked })}
              />{" "}
              Private chat
            </label>
            <button className="danger" onClick={() => props.send({ type: "suspend_all" })}>
              Suspend participant activities
            </button>
          </div>
        </>
      ) : null}
    </section>
  );
}

/// The security code as the people in the meeting read it aloud.
export function SecurityCode(props: { code: string }) {
  return (
    <p className="security-code" aria-label="Security code">
      {props.code.split(" ").map((group, i) => (
        <span key={i}>{group}</span>
      ))}
    </p>
  );
}

/// Who holds the group's keys: each member's device key fingerprint, and
/// whether the server vouches for it in this meeting.
function DeviceList(props: { members: E2eeState["members"] }) {
  if (props.members.length === 0) return null;
  return (
    <ul className="devices" aria-label="Devices holding the keys">
      {props.members.map((m) => (
        <li key={m.fingerprint} className={m.verified ? "verified" : "unverified"}>
          <strong>{m.display_name || "Unknown"}</strong>
          {m.is_self ? " (this device)" : ""}
          {m.user_id ? "" : " · guest"} · key <code>{m.fingerprint}</code> ·{" "}
          {m.verified ? "✓ vouched for by the server" : "⚠ not vouched for by the server: do not trust this device"}
        </li>
      ))}
    </ul>
  );
}

export function SecurityPanel(props: { cipher: string | undefined; e2ee: boolean; state: E2eeState | null }) {
  return (
    <section className="panel security" aria-label="Security">
      <h2>How this meeting is protected</h2>
      {props.e2ee ? (
        <>
          <p>
            <strong>End-to-end encrypted.</strong> Video, audio and chat to everyone are encrypted on each participant's device with keys
            only the participants hold (MLS and SFrame); Conclave's server relays what it cannot read. The keys change whenever someone
            joins or leaves.
          </p>
          {props.state?.code ? (
            <>
              <p>Everyone in the meeting sees the same security code. Read it aloud and compare: if it matches, nobody else is listening in.</p>
              <SecurityCode code={props.state.code} />
              <DeviceList members={props.state.members} />
            </>
          ) : (
            <p>Setting up the keys… Your media starts once your device has them.</p>
          )}
          <p>Off in this meeting because the server cannot read it: cloud recording, phone dial-in and server-side transcription.</p>
        </>
      ) : null}
      <ul>
        <li>
          Media is encrypted between your device and Conclave's server with DTLS-SRTP
          {props.cipher ? ` (${props.cipher})` : ""}; signaling goes over this site's connection.
        </li>
        <li>The server forwards media to admitted participants only; people in the waiting room receive nothing.</li>
        {props.e2ee ? null : <li>This meeting is not end-to-end encrypted: the server could read the media it forwards.</li>}
        <li>Nothing on this page comes from any other site.</li>
      </ul>
    </section>
  );
}

/// Switching camera or microphone during the meeting.
export function DevicesPanel(props: {
  onChoose: (kind: "audioinput" | "videoinput", deviceId: string) => void;
  /// The device each kind sends from now, by id: what each list shows.
  current: { audioinput?: string; videoinput?: string };
}) {
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  useEffect(() => {
    void navigator.mediaDevices.enumerateDevices().then(setDevices);
  }, []);
  const pick = (kind: "audioinput" | "videoinput", label: string) => (
    <label>
      {label}{" "}
      <select onChange={(e) => props.onChoose(kind, e.target.value)} value={props.current[kind] ?? ""}>
        <option value="" disabled>
          Choose…
        </option>
        {devices.filter((d) => d.kind === kind).map((d) => (
          <option key={d.deviceId} value={d.deviceId}>
            {d.label || label}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <section className="panel devices" aria-label="Devices">
      <h2>Devices</h2>
      {pick("videoinput", "Camera")}
      {pick("audioinput", "Microphone")}
    </section>
  );
}

/// Who someone is beyond the name they typed: a guest, a member of this
/// organisation, or an account of another one (marked, since anyone can
/// call their own organisation by any name).
export function Standing(props: { signedIn: boolean; organisation: string | null; external: boolean }) {
  if (!props.signedIn) {
    return (
      <span className="standing guest" title="Not signed in: the name is whatever they typed">
        guest
      </span>
    );
  }
  const org = props.organisation ?? "no organisation";
  return props.external ? (
    <span className="standing external" title="Signed in with an account of another organisation">
      external · {org}
    </span>
  ) : (
    <span className="standing member" title="Signed in as a member of this organisation">
      {org}
    </span>
  );
}

const QUALITY_WORDS: Record<QualityLevel, string> = { good: "Good connection", fair: "Fair connection", poor: "Poor connection" };

/// The dot hosts see beside a name: green, amber or red, with the figures
/// that made it in its title (and nothing until the first report).
function QualityBadge(props: { quality: { level: QualityLevel; report: QualityReport } | undefined; name: string }) {
  if (!props.quality) return null;
  const { level, report } = props.quality;
  const figures = [
    `${(report.loss_permille / 10).toFixed(1)} % loss`,
    report.rtt_ms != null ? `${report.rtt_ms} ms round trip` : null,
    report.freezes > 0 ? `${report.freezes} freezes (${(report.frozen_ms / 1000).toFixed(1)} s)` : null,
    `${report.received_kbps} kbit/s in, ${report.sent_kbps} out`,
  ].filter(Boolean);
  const label = `${QUALITY_WORDS[level]} for ${props.name}: ${figures.join(", ")}`;
  return <span className={`quality ${level}`} role="img" aria-label={label} title={label} data-quality={level} />;
}
