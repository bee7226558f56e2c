// Files in the worker: sealed part by part before they leave the device,
// and opened part by part on the way back (the wasm `FileSeal` and
// `FileOpen`, conclave-e2ee's `file.rs`). A file is read a slice at a
// time, so a large one never sits whole in memory on its way up; a part
// that fails is tried again with a growing pause until it goes or the
// person cancels, so an upload carries on by itself when the network comes
// back. Pictures get a preview made here, on the device, uploaded the same way.

import { FileOpen, FileSeal, file_part_count, file_part_len } from "./pkg/conclave_e2ee_wasm.js";
import type { FileStatus, SharedFile } from "../generated/protocol";

/// Longest side of a picture's preview, in pixels.
const PREVIEW_SIDE = 320;
/// The longest pause between two tries of a part.
const MOST_PATIENCE_MS = 10_000;

export type Progress = (done: number, total: number, stalled: boolean) => void;

export class Cancelled extends Error {
  constructor() {
    super("cancelled");
  }
}

/// An upload the server has begun to take: what carrying it on needs.
export interface Begun {
  fileId: string;
  /// The file's key, base64: kept sealed on this device, never sent.
  key: string;
}

/// Uploads `blob` sealed, for `conversationId`, from `deviceId`; resolves
/// with what a message carries to share it. `begun` hears the upload's id
/// and key once the server has it (so the device can carry it on after the
/// page closes); `resume` carries on such an upload: every part is sealed
/// again (to rebuild the file's hash) and only those the server lacks go.
export async function upload(
  csrf: string,
  conversationId: string,
  deviceId: string,
  blob: Blob,
  name: string,
  mime: string,
  progress: Progress,
  signal: AbortSignal,
  dimensions: [number, number] | null = null,
  begun: (upload: Begun) => void = () => undefined,
  resume: Begun | null = null,
): Promise<SharedFile> {
  const size = blob.size;
  let fileId: string;
  let have = new Set<number>();
  let sealer: FileSeal;
  if (resume) {
    const status = await call<FileStatus>(csrf, "GET", `/files/${encodeURIComponent(resume.fileId)}`, signal);
    if (status.size !== size || status.complete) throw new Error("that upload cannot be carried on: send the file again");
    fileId = resume.fileId;
    have = new Set(status.received);
    sealer = FileSeal.resume(resume.key, size);
  } else {
    const started = await call<FileStatus>(csrf, "POST", `/conversations/${encodeURIComponent(conversationId)}/files`, signal, {
      device_id: deviceId,
      size,
    });
    fileId = started.file_id;
    sealer = new FileSeal(size);
    begun({ fileId, key: sealer.key() });
  }
  try {
    const parts = file_part_count(size);
    let done = 0;
    progress(0, size, false);
    for (let part = 0; part < parts; part++) {
      const length = file_part_len(size, part);
      const chunk = new Uint8Array(await blob.slice(done, done + length).arrayBuffer());
      const sealed = sealer.seal_next(chunk);
      if (!have.has(part)) {
        await patiently(signal, (stalled) => progress(done, size, stalled), () =>
          call(csrf, "PUT", `/files/${fileId}/parts/${part}`, signal, sealed),
        );
      }
      done += length;
      progress(done, size, false);
    }
    const key = sealer.key();
    const sha256 = sealer.finish();
    await patiently(signal, () => undefined, () => call(csrf, "POST", `/files/${fileId}/complete`, signal));
    return { file_id: fileId, name, mime, size, key, sha256, dimensions };
  } catch (err) {
    // Nothing half-sent stays behind: the server drops what it holds.
    if (signal.aborted) await call(csrf, "DELETE", `/files/${fileId}`, new AbortController().signal).catch(() => undefined);
    throw signal.aborted ? new Cancelled() : err;
  }
}

/// Downloads a shared file, opening each part as it arrives; resolves once
/// the whole file's SHA-256 is the one it was shared with.
export async function download(csrf: string, file: SharedFile, progress: Progress, signal: AbortSignal): Promise<Blob> {
  const opener = new FileOpen(file.key, file.size);
  const parts = file_part_count(file.size);
  const opened: BlobPart[] = [];
  let done = 0;
  for (let part = 0; part < parts; part++) {
    const sealed = await patiently(signal, (stalled) => progress(done, file.size, stalled), () =>
      call<ArrayBuffer>(csrf, "GET", `/files/${encodeURIComponent(file.file_id)}/parts/${part}`, signal, undefined, true),
    );
    const plain = opener.open_next(new Uint8Array(sealed));
    opened.push(plain as BlobPart);
    done += plain.length;
    progress(done, file.size, false);
  }
  opener.finish(file.sha256);
  return new Blob(opened, { type: file.mime });
}

/// A picture's preview, made on this device: at most `PREVIEW_SIDE` on
/// its longer side, as JPEG; with the picture's own size. `null` for what
/// the browser cannot decode as a picture.
export async function preview(blob: Blob): Promise<{ preview: Blob; dimensions: [number, number] } | null> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    return null;
  }
  const scale = Math.min(1, PREVIEW_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = new OffscreenCanvas(Math.max(1, Math.round(bitmap.width * scale)), Math.max(1, Math.round(bitmap.height * scale)));
  canvas.getContext("2d")!.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const dimensions: [number, number] = [bitmap.width, bitmap.height];
  bitmap.close();
  return { preview: await canvas.convertToBlob({ type: "image/jpeg", quality: 0.8 }), dimensions };
}

/// Tries `work` until it succeeds, pausing longer after each failure (a
/// refusal that trying again cannot change ends it at once).
async function patiently<T>(signal: AbortSignal, stalled: (stalled: boolean) => void, work: () => Promise<T>): Promise<T> {
  for (let pause = 500; ; pause = Math.min(pause * 2, MOST_PATIENCE_MS)) {
    if (signal.aborted) throw new Cancelled();
    try {
      return await work();
    } catch (err) {
      if (signal.aborted) throw new Cancelled();
      if (err instanceof Refusal && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) throw err;
      stalled(true);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

class Refusal extends Error {
  constructor(
    public status: number,
    detail: string,
  ) {
    super(detail || `HTTP ${status}`);
  }
}

async function call<T>(csrf: string, method: string, path: string, signal: AbortSignal, body?: unknown, binary = false): Promise<T> {
  const headers: Record<string, string> = {};
  if (method !== "GET") headers["x-csrf-token"] = csrf;
  let payload: BodyInit | undefined;
  if (body instanceof Uint8Array) {
    headers["content-type"] = "application/octet-stream";
    payload = body as BodyInit;
  } else if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(`/api/v1${path}`, { method, headers, body: payload, credentials: "same-origin", signal });
  if (!response.ok) {
    const problem = (await response.json().catch(() => null)) as { detail?: string; title?: string } | null;
    throw new Refusal(response.status, problem?.detail ?? problem?.title ?? "");
  }
  if (binary) return (await response.arrayBuffer()) as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : null) as T;
}
