import { useEffect, useRef, useState } from "react";
import { api, ApiError } from "../api";
import { MAX_DISPLAY_NAME_CHARS, type JoinTicket, type User } from "../generated/protocol";
import { BackgroundBlur } from "../blur";
import { Meeting } from "../meeting/Meeting";

/// The join page of an invite link: camera and microphone preview, device
/// choice, name and (when asked) passcode; then the meeting itself.
export function Join(props: { linkSecret: string | null; user: User | null; navigate: (path: string) => void }) {
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
    };
    // Only the choices restart the preview; the old stream is stopped above.
  }, [camId, micId, camOn, micOn]);
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

  if (ticket) {
    return <Meeting ticket={ticket} local={stream} blur={toggleBlur} onLeft={() => { stream?.getTracks().forEach((t) => t.stop()); props.navigate("/"); }} />;
  }
  return (
    <main className="join">
      <h1>Join the meeting</h1>
      <div className="preview">
        {stream?.getVideoTracks().length ? <video ref={preview} autoPlay playsInline muted aria-label="Your camera" /> : <div className="avatar">{camOn && !devicesSettled ? "Starting the camera…" : "Camera off"}</div>}
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
        <button type="submit" disabled={!devicesSettled}>
          Join
        </button>
      </form>
    </main>
  );
}
