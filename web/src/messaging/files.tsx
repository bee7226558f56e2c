// Files in a conversation, as the page shows them: a picture's preview
// (made and sealed on the sender's device) opened full size on a click, a
// video's poster (made the same way) played on a click, any file saved to disk, and the uploads on
// their way with their progress and a way to cancel. Every byte is opened
// in the E2EE worker; the page gets the file only as a Blob to show.

import { useEffect, useState } from "react";
import type { SharedFile } from "../generated/protocol";
import type { Attached, Interrupted } from "../e2ee/messages";
import { Dialog } from "./dialog";

export type FetchFile = (file: SharedFile, progress?: (done: number, total: number, stalled: boolean) => void) => Promise<Blob>;

/// An upload on its way, as its composer shows it.
export interface Sending {
  request: number;
  conversation: string;
  name: string;
  done: number;
  total: number;
  stalled: boolean;
  error: string | null;
}

export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/// Saves a Blob to disk under `name`, as a download.
function save(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function Attachment(props: { attached: Attached; fetchFile: FetchFile }) {
  const { file, thumbnail } = props.attached;
  const [previewUrl, setPreviewUrl] = useState<string | null>(null);
  const [opened, setOpened] = useState<string | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const fetchFile = props.fetchFile;
  const previewId = thumbnail?.file_id;
  useEffect(() => {
    if (!thumbnail) return;
    let url: string | null = null;
    let gone = false;
    fetchFile(thumbnail).then(
      (blob) => {
        if (gone) return;
        url = URL.createObjectURL(blob);
        setPreviewUrl(url);
      },
      (e) => setError(`The preview could not be opened: ${e instanceof Error ? e.message : String(e)}`),
    );
    return () => {
      gone = true;
      if (url) URL.revokeObjectURL(url);
    };
    // Fetched once per preview, not again when the message is shown anew.
  }, [previewId, fetchFile]);
  useEffect(() => () => void (opened && URL.revokeObjectURL(opened)), [opened]);

  const fetchWhole = async (): Promise<Blob | null> => {
    setError(null);
    setProgress(0);
    try {
      return await fetchFile(file, (done, total) => setProgress(total > 0 ? done / total : 1));
    } catch (e) {
      setError(`Not opened: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    } finally {
      setProgress(null);
    }
  };
  const open = async () => {
    const blob = await fetchWhole();
    if (blob) setOpened(URL.createObjectURL(blob));
  };
  const download = async () => {
    const blob = await fetchWhole();
    if (blob) save(blob, file.name);
  };
  const picture = file.mime.startsWith("image/");
  const video = file.mime.startsWith("video/");
  const [width, height] = thumbnail?.dimensions ?? file.dimensions ?? [0, 0];
  const shown = width > 0 && height > 0 ? { width: Math.min(320, Math.round((320 * width) / Math.max(width, height))), height: Math.min(320, Math.round((320 * height) / Math.max(width, height))) } : {};

  return (
    <div className="attachment">
      {picture && thumbnail ? (
        <button className="thumbnail" aria-label={`Open ${file.name} full size`} onClick={() => void open()}>
          {previewUrl ? <img src={previewUrl} alt={`Preview of ${file.name}`} {...shown} /> : <span className="thumbnail-waiting" style={shown}>Opening the preview…</span>}
        </button>
      ) : null}
      {video && thumbnail && !opened ? (
        // The poster the sender's device made: a click fetches, opens and plays the video.
        <button className="thumbnail video-poster" aria-label={`Play ${file.name}`} onClick={() => void open()} disabled={progress !== null}>
          {previewUrl ? <img src={previewUrl} alt={`Preview of ${file.name}`} {...shown} /> : <span className="thumbnail-waiting" style={shown}>Opening the preview…</span>}
          <span className="play-mark" aria-hidden="true">▶</span>
        </button>
      ) : null}
      {video && opened ? <video src={opened} controls autoPlay aria-label={file.name} className="inline-video" /> : null}
      <div className="file-card">
        <span aria-hidden="true">{picture ? "🖼️" : video ? "🎞️" : "📄"}</span>
        <span className="file-name">{file.name}</span>
        <span className="muted">{size(file.size)}</span>
        {video && !opened && !thumbnail ? (
          <button onClick={() => void open()} disabled={progress !== null}>
            Play
          </button>
        ) : null}
        <button onClick={() => void download()} disabled={progress !== null} aria-label={`Download ${file.name}`}>
          Download
        </button>
      </div>
      {progress !== null ? <progress value={progress} max={1} aria-label={`Opening ${file.name}`} /> : null}
      {error ? <p role="alert" className="error">{error}</p> : null}
      {picture && opened ? (
        <Dialog title={file.name} onClose={() => setOpened(null)}>
          <img className="full-picture" src={opened} alt={file.name} />
          <button onClick={() => void download()}>Download</button>
        </Dialog>
      ) : null}
    </div>
  );
}

/// Uploads on their way in this conversation: a bar each, and Cancel.
export function Uploads(props: { sending: Sending[]; onCancel: (request: number) => void; onDismiss: (request: number) => void }) {
  if (props.sending.length === 0) return null;
  return (
    <ul className="uploads" aria-label="Uploads">
      {props.sending.map((s) => (
        <li key={s.request}>
          <span className="file-name">{s.name}</span>
          {s.error ? (
            <>
              <span role="alert" className="error">Not sent: {s.error}</span>
              <button onClick={() => props.onDismiss(s.request)}>Dismiss</button>
            </>
          ) : (
            <>
              <progress value={s.done} max={Math.max(1, s.total)} aria-label={`Uploading ${s.name}`} />
              <span className="muted">
                {s.stalled ? "Waiting for the network…" : `${size(s.done)} of ${size(s.total)}`}
              </span>
              <button onClick={() => props.onCancel(s.request)} aria-label={`Cancel ${s.name}`}>
                Cancel
              </button>
            </>
          )}
        </li>
      ))}
    </ul>
  );
}

/// Uploads this device began and did not finish (the page closed or was
/// reloaded): the file chosen again carries each on from where the server
/// has it; Discard gives it up.
export function InterruptedUploads(props: { uploads: Interrupted[]; onResume: (upload: Interrupted, file: File) => void; onDiscard: (upload: Interrupted) => void }) {
  if (props.uploads.length === 0) return null;
  return (
    <ul className="uploads" aria-label="Interrupted uploads">
      {props.uploads.map((u) => (
        <li key={u.upload_id}>
          <span className="file-name">{u.name}</span>
          <span className="muted">{size(u.size)} · interrupted when the page closed</span>
          <label className="file-choice">
            Choose it again to resume
            <input
              type="file"
              className="sr-only"
              aria-label={`Choose ${u.name} again to resume`}
              onChange={(e) => {
                const file = e.target.files?.[0];
                e.target.value = "";
                if (file) props.onResume(u, file);
              }}
            />
          </label>
          <button onClick={() => props.onDiscard(u)} aria-label={`Discard ${u.name}`}>
            Discard
          </button>
        </li>
      ))}
    </ul>
  );
}
