import { useEffect, useRef, useState } from "react";
import { api, ApiError } from "../api";
import { MAX_DISPLAY_NAME_CHARS, type JoinTicket, type MeetingPreview, type User } from "../generated/protocol";
import { BackgroundBlur } from "../blur";
import { Meeting } from "../meeting/Meeting";
import { formatWhen } from "../format";

/// How long the camera and microphone may take to start before the page
/// offers to join without them (a permission prompt left unanswered never
/// settles).
const DEVICES_PATIENCE_MS = 6000;

/// The join page of an invite link: which meeting it is and who hosts it,
/// camera and microphone preview with the microphone's level, device
/// choice, name and (when asked) passcode; then the meeting itself, and
/// after it a page to rejoin from.
export function Join(props: { linkSecret: string | null; user: User | null; navigate: (path: string) => void }) {
  const [meeting, setMeeting] = useState<MeetingPreview | null>(null);
  // Set once the person has left (or the meeting is over for them).
  const [left, setLeft] = useState<"left" | "over" | null>(null);
  // Counts the times the devices were started: rejoining starts them again.
  const [startCount, setStartCount] = useState(0);
  const [slowDevices, setSlowDevices] = useState(false);
  // Without a link, the meeting is named by its code (and a passcode).
  const [code, setCode] = useState("");
  const [name, setName] = useState(props.user?.display_name ?? "");
  const [passcode, setPasscode] = useState("");
  const [askPasscode, setAskPasscode] = useState(props.linkSecret === null);
  const [error, setError] = useState<string | null>(null);
  const [ticket, setTicket] = useState<JoinTicket | null>(null);
  const [stream, setStream] = useState<MediaStream | null>(null);
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  const [camId, setCamId] = useState<string>("");
  const [micId, setMicId] = useState<string>("");
  const [camOn, setCamOn] = useState(true);
  const [micOn, setMicOn] = useState(true);
  // Joining waits for the devices to be on (or refused), so the meeting
  // starts with what the preview shows.
  const [devicesSettled, setDevicesSettled] = useState(false);
  const preview = useRef<HTMLVideoElement>(null);
  const blur = useRef<BackgroundBlur | null>(null);

  useEffect(() => {
    let cancelled = false;
    const constraints: MediaStreamConstraints = {
      audio: micOn ? (micId ? { deviceId: { exact: micId } } : true) : false,
      video: camOn ? { width: { ideal: 1280 }, height: { ideal: 720 }, ...(camId ? { deviceId: { exact: camId } } : {}) } : false,
    };
    if (!micOn && !camOn) {
      setStream(null);
      setDevicesSettled(true);
      return;
    }
    setDevicesSettled(false);
    setSlowDevices(false);
    const patience = window.setTimeout(() => setSlowDevices(true), DEVICES_PATIENCE_MS);
    navigator.mediaDevices.getUserMedia(constraints).then(
      (s) => {
        if (cancelled) return s.getTracks().forEach((t) => t.stop());
        setStream((old) => {
          old?.getTracks().forEach((t) => t.stop());
          return s;
        });
        setDevicesSettled(true);
        void navigator.mediaDevices.enumerateDevices().then(setDevices);
      },
      () => {
        setError("Camera or microphone unavailable; you can still join without them.");
        setDevicesSettled(true);
      },
    );
    return () => {
      cancelled = true;
      window.clearTimeout(patience);
    };
    // Only the choices (and a rejoin) restart the preview; the old stream is stopped above.
  }, [camId, micId, camOn, micOn, startCount]);
  useEffect(() => {
    if (!props.linkSecret) return;
    api.meetingPreview(props.linkSecret).then(setMeeting, (err) =>
      setError(
        err instanceof ApiError && err.status === 404
          ? "This invite link does not open any meeting: the host may have replaced it with a new one. Ask them for the current link."
          : err instanceof Error
            ? err.message
            : String(err),
      ),
    );
  }, [props.linkSecret]);
  const micLevel = useMicLevel(ticket ? null : stream);
  useEffect(() => {
    if (preview.current) preview.current.srcObject = stream;
  }, [stream, ticket]);

  const join = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      setTicket(await api.join(props.linkSecret, name, passcode || null, props.linkSecret ? null : code));
    } catch (err) {
      if (err instanceof ApiError && err.status === 403 && /passcode/i.test(err.message)) {
        setAskPasscode(true);
      }
      setError(err instanceof Error ? err.message : String(err));
    }
  };

  const toggleBlur = async (on: boolean) => {
    const camera = stream?.getVideoTracks()[0];
    blur.current?.stop();
    blur.current = null;
    if (!on || !camera) return null;
    blur.current = new BackgroundBlur();
    return blur.current.start(camera);
  };

  const onLeft = (why: "left" | "over") => {
    stream?.getTracks().forEach((t) => t.stop());
    setStream(null);
    setTicket(null);
    // A signed-in person goes home; a guest, who has no home here, stays on
    // a page that says they left (not on "Sign in").
    if (props.user && why === "over") props.navigate("/");
    else setLeft(why);
  };
  if (ticket) {
    return <Meeting ticket={ticket} title={meeting?.title ?? null} local={stream} blur={toggleBlur} onLeft={onLeft} />;
  }
  if (left) {
    return (
      <main className="center left-meeting" aria-label="Left the meeting">
        <h1 tabIndex={-1} ref={(h) => h?.focus()}>
          {left === "left" ? `You left ${meeting ? `“${meeting.title}”` : "the meeting"}` : "The meeting is over for you"}
        </h1>
        <p>{props.user ? "" : "You can close this tab."}</p>
        <div className="actions">
          {left === "left" ? (
            <button
              onClick={() => {
                setLeft(null);
                setError(null);
                setStartCount((n) => n + 1);
              }}
            >
              Rejoin
            </button>
          ) : null}
          {props.user ? <button onClick={() => props.navigate("/")}>Back to your meetings</button> : null}
        </div>
      </main>
    );
  }
  const joinHint = !devicesSettled ? "Starting your camera and microphone… If the browser asks, allow them." : null;
  return (
    <main className="join">
      <header className="join-head">
        <h1>{meeting ? `Join “${meeting.title}”` : "Join the meeting"}</h1>
        {meeting ? (
          <p className="muted">
            Hosted by {meeting.host_name}
            {meeting.live
              ? " · in progress now"
              : meeting.scheduled_start_ms
                ? ` · starts ${formatWhen(meeting.scheduled_start_ms)}`
                : " · not started yet"}
            {meeting.e2ee ? " · end-to-end encrypted" : ""}
            {meeting.waiting_room ? " · a host lets people in" : ""}
          </p>
        ) : null}
      </header>
      <div className="preview">
        {stream?.getVideoTracks().length ? <video ref={preview} autoPlay playsInline muted aria-label="Your camera" /> : <div className="avatar">{camOn && !devicesSettled ? "Starting the camera…" : "Camera off"}</div>}
        {micOn && stream?.getAudioTracks().length ? (
          <label className="mic-level">
            Microphone level
            <meter min={0} max={1} low={0.05} value={micLevel} />
          </label>
        ) : null}
      </div>
      <form onSubmit={join} aria-label="Join">
        {props.linkSecret === null ? (
          <label>
            Meeting code
            <input value={code} onChange={(e) => setCode(e.target.value)} required inputMode="numeric" placeholder="123 456 7890" />
          </label>
        ) : null}
        <label>
          Your name
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={MAX_DISPLAY_NAME_CHARS} />
        </label>
        {askPasscode ? (
          <label>
            Passcode{props.linkSecret === null ? " (if the meeting has one)" : ""}
            <input value={passcode} onChange={(e) => setPasscode(e.target.value)} required={props.linkSecret !== null} />
          </label>
        ) : null}
        <fieldset>
          <legend>Devices</legend>
          <label>
            <input type="checkbox" checked={camOn} onChange={(e) => setCamOn(e.target.checked)} /> Camera
          </label>
          <select aria-label="Camera" value={camId} onChange={(e) => setCamId(e.target.value)}>
            <option value="">Default camera</option>
            {devices.filter((d) => d.kind === "videoinput").map((d) => (
              <option key={d.deviceId} value={d.deviceId}>
                {d.label || "Camera"}
              </option>
            ))}
          </select>
          <label>
            <input type="checkbox" checked={micOn} onChange={(e) => setMicOn(e.target.checked)} /> Microphone
          </label>
          <select aria-label="Microphone" value={micId} onChange={(e) => setMicId(e.target.value)}>
            <option value="">Default microphone</option>
            {devices.filter((d) => d.kind === "audioinput").map((d) => (
              <option key={d.deviceId} value={d.deviceId}>
                {d.label || "Microphone"}
              </option>
            ))}
          </select>
        </fieldset>
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        {joinHint ? (
          <p id="join-hint" className="muted" role="status">
            {joinHint}
          </p>
        ) : null}
        {joinHint && slowDevices ? (
          <button
            type="button"
            className="link"
            onClick={() => {
              setCamOn(false);
              setMicOn(false);
            }}
          >
            Join without camera and microphone
          </button>
        ) : null}
        <button type="submit" disabled={!devicesSettled} aria-describedby={joinHint ? "join-hint" : undefined}>
          Join
        </button>
      </form>
    </main>
  );
}

/// How loud the microphone is, 0 to 1, measured on the device ten times a
/// second: the person sees the right microphone hears them before joining.
function useMicLevel(stream: MediaStream | null): number {
  const [level, setLevel] = useState(0);
  useEffect(() => {
    const track = stream?.getAudioTracks()[0];
    if (!track) {
      setLevel(0);
      return undefined;
    }
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    // Browsers start an audio context suspended until the person does
    // something on the page (typing their name will do).
    const wake = () => void context.resume();
    window.addEventListener("pointerdown", wake);
    window.addEventListener("keydown", wake);
    const samples = new Float32Array(analyser.fftSize);
    const timer = window.setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      // Speech sits around -30 dBFS RMS: scaled so it fills about half the meter.
      setLevel(Math.min(1, Math.sqrt(sum / samples.length) * 8));
    }, 100);
    return () => {
      window.clearInterval(timer);
      window.removeEventListener("pointerdown", wake);
      window.removeEventListener("keydown", wake);
      void context.close();
    };
  }, [stream]);
  return level;
}
