import { useEffect, useRef } from "react";
import type { ParticipantView } from "../generated/protocol";

/// One participant's (or one share's) video, with name, mute and hand
/// badges. The meeting code is never drawn over video. The Pin button shows
/// when the pointer or the focus is on the tile (and always on the pinned
/// one), not over every face at once.
export function Tile(props: {
  participant: ParticipantView | undefined;
  track: MediaStreamTrack | null;
  kind: "camera" | "screen";
  speaking: boolean;
  pinned: boolean;
  self: boolean;
  /// The tile's place in the meeting's layout (`c4` camera, `s4` screen).
  tileKey: string;
  onPin: () => void;
}) {
  const video = useRef<HTMLVideoElement>(null);
  const p = props.participant;
  const name = p ? p.display_name + (props.self ? " (you)" : "") : "Someone";
  const label = props.kind === "screen" ? `${name}'s screen` : name;
  const showVideo = !!props.track && (props.kind === "screen" || !p?.video_muted);
  // The <video> is a new element each time the camera comes back on: it
  // needs its source again, not only when the track changes.
  useEffect(() => {
    if (!video.current) return;
    video.current.srcObject = props.track ? new MediaStream([props.track]) : null;
  }, [props.track, showVideo]);
  return (
    <figure
      className={`tile${props.speaking ? " speaking" : ""}${props.kind === "screen" ? " screen" : ""}${props.pinned ? " pinned" : ""}`}
      data-participant={p?.id}
      data-key={props.tileKey}
      data-kind={props.kind}
      aria-label={label}
    >
      {showVideo ? (
        <video ref={video} autoPlay playsInline muted />
      ) : (
        <div className="avatar" aria-hidden="true">
          {(p?.display_name ?? "?").slice(0, 1).toUpperCase()}
        </div>
      )}
      <figcaption>
        {p?.audio_muted && props.kind === "camera" ? <span title="Muted" aria-label="muted">🔇 </span> : null}
        {p?.hand_raised ? <span title="Hand raised" aria-label="hand raised">✋ </span> : null}
        {label}
        {p?.reconnecting ? " · reconnecting…" : ""}
      </figcaption>
      <button className="pin" onClick={props.onPin} aria-pressed={props.pinned} aria-label={props.pinned ? `Unpin ${label}` : `Pin ${label}`}>
        {props.pinned ? "Unpin" : "Pin"}
      </button>
    </figure>
  );
}

/// Plays one remote microphone.
export function RemoteAudio(props: { track: MediaStreamTrack }) {
  const audio = useRef<HTMLAudioElement>(null);
  useEffect(() => {
    if (audio.current) audio.current.srcObject = new MediaStream([props.track]);
  }, [props.track]);
  return <audio ref={audio} autoPlay />;
}
