// The meeting's end-to-end encryption, in a worker so keys never reach the
// page: the MLS group and SFrame keys live in the wasm module's `Device`.
// The page forwards the server's `e2ee_*` messages here and sends what comes
// back; the browser hands every encoded frame to this worker (through
// `RTCRtpScriptTransform`, or streams from `createEncodedStreams`), which
// seals outgoing frames and opens incoming ones. A frame that cannot be
// sealed (no keys yet) is dropped, never sent in the clear; one that cannot
// be opened is dropped and counted.
//
// The same worker serves team messaging (`chat_*` messages): every
// conversation's group and keys live here, in `Messaging`.

import init, { Device } from "./pkg/conclave_e2ee_wasm.js";
import wasmUrl from "./pkg/conclave_e2ee_wasm_bg.wasm?url";
import type { ClientMessage } from "../generated/protocol";
import type { FromWorker, GroupMember, ToWorker, TransformOptions } from "./messages";
import { load, save } from "./keep";
import { Messaging } from "./conversations";

let device: Device | null = null;
/// The account's conversations on this device, when the worker serves messaging.
let messaging: Messaging | null = null;
/// Files on their way up or down, to cancel by the page's request number.
const transfers = new Map<number, AbortController>();

/// A file going up or down for the page's request `request`: its progress
/// told as it goes, cancellable until it ends one way or the other.
async function transfer<T>(
  request: number,
  work: (progress: (done: number, total: number, stalled: boolean) => void, signal: AbortSignal) => Promise<T>,
  done: (result: T) => void,
  failed: (error: string) => void,
) {
  const cancel = new AbortController();
  transfers.set(request, cancel);
  try {
    done(await work((sofar, total, stalled) => post({ type: "chat_progress", request, done: sofar, total, stalled }), cancel.signal));
  } catch (err) {
    failed(String(err instanceof Error ? err.message : err));
  } finally {
    transfers.delete(request);
  }
}
let epoch: number | undefined;
const counts = { sealed: 0, opened: 0, dropped: 0, undecryptable: 0 };
/// Video senders' transformers, asked for a keyframe after every rekey so
/// receivers can show the new epoch's picture at once.
const videoSenders = new Set<{ generateKeyFrame?: () => Promise<unknown> }>();
/// Video receivers' transformers that dropped a frame they could not open
/// since the last they opened (a new device's first keyframe can arrive
/// before the commit that brings its key): at the next rekey they ask
/// their sender for a keyframe, or the picture stays frozen on deltas.
type Receiver = { sendKeyFrameRequest?: () => Promise<unknown> };
const starved = new Set<Receiver>();

const post = (m: FromWorker) => (self as unknown as Worker).postMessage(m);

function publish() {
  if (!device) return;
  const now = device.epoch();
  if (now !== epoch) {
    epoch = now;
    for (const t of videoSenders) void t.generateKeyFrame?.().catch(() => undefined);
    for (const t of starved) void t.sendKeyFrameRequest?.().catch(() => undefined);
    starved.clear();
  }
  post({ type: "state", epoch: now ?? null, code: device.security_code() ?? null, counts: { ...counts } });
}

type AgentEvent =
  | { type: "epoch"; epoch: number }
  | { type: "chat"; from: number; text: string }
  | { type: "removed" }
  | { type: "roster"; members: GroupMember[] }
  | { type: "new_device"; participant_id: number; display_name: string; fingerprint: string }
  | { type: "commit_refused"; from: number; reason: string };

function handleResult(json: string) {
  const result = JSON.parse(json) as { send: ClientMessage[]; events: AgentEvent[] };
  for (const message of result.send) post({ type: "send", message });
  for (const e of result.events) {
    if (e.type === "chat" || e.type === "removed" || e.type === "new_device" || e.type === "commit_refused") post(e);
    if (e.type === "roster") {
      post(e);
      // The device keys seen, kept for the next meeting.
      if (device) void save("known_devices", device.known_devices());
    }
  }
  publish();
}

type Frame = { data: ArrayBuffer; type?: string; getMetadata?: () => { mimeType?: string } };

/// The layout a frame is sealed in (`conclave-e2ee-wasm`'s `FrameKind`):
/// VP8 keeps its payload header readable, for the receiving depacketiser and
/// the SFU; audio and VP9 (whose keyframes and layers travel in the RTP
/// payload descriptor, outside the frame) are sealed whole; H.264 keeps its
/// parameter sets and slice header readable and no start code in what is
/// sealed (its packetiser splits the frame at start codes); AV1 stays a
/// sequence of OBUs with their headers and sizes readable (its packetiser
/// walks them). Both ends read the codec from the frame's own metadata, so
/// they always agree.
function layout(options: TransformOptions, frame: Frame): "whole" | "key" | "delta" | "h264" | "av1" {
  if (options.kind === "audio") return "whole";
  const mimeType = frame.getMetadata?.().mimeType?.toLowerCase();
  if (mimeType === "video/vp9") return "whole";
  if (mimeType === "video/h264") return "h264";
  if (mimeType === "video/av1") return "av1";
  return frame.type === "key" ? "key" : "delta";
}

function transform(options: TransformOptions, receiver?: Receiver) {
  return new TransformStream<Frame, Frame>({
    transform(frame, controller) {
      if (!device) {
        counts.dropped++;
        return;
      }
      const kind = layout(options, frame);
      try {
        const data = new Uint8Array(frame.data);
        const out = options.side === "send" ? device.encrypt(kind, data) : device.decrypt(kind, data);
        frame.data = out.buffer as ArrayBuffer;
        if (options.side === "send") counts.sealed++;
        else counts.opened++;
        if (receiver) starved.delete(receiver);
        controller.enqueue(frame);
      } catch {
        if (options.side === "send") counts.dropped++;
        else counts.undecryptable++;
        if (receiver && options.kind === "video") starved.add(receiver);
      }
    },
  });
}

function pipe(readable: ReadableStream, writable: WritableStream, options: TransformOptions, receiver?: Receiver) {
  void readable.pipeThrough(transform(options, receiver)).pipeTo(writable).catch(() => undefined);
}

// RTCRtpScriptTransform (Chromium ≥ 141, Safari, Firefox).
(self as unknown as { onrtctransform: unknown }).onrtctransform = (event: {
  transformer: {
    readable: ReadableStream;
    writable: WritableStream;
    options: TransformOptions;
    generateKeyFrame?: () => Promise<unknown>;
    sendKeyFrameRequest?: () => Promise<unknown>;
  };
}) => {
  const t = event.transformer;
  if (t.options.side === "send" && t.options.kind === "video") videoSenders.add(t);
  pipe(t.readable, t.writable, t.options, t.options.side === "receive" ? t : undefined);
};

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const m = event.data;
  switch (m.type) {
    case "start": {
      await init({ module_or_path: wasmUrl });
      const kept = await load<Uint8Array>("signature_key");
      device = new Device(kept, (await load<string>("known_devices")) ?? "{}");
      if (!kept) await save("signature_key", device.signature_key());
      post({ type: "send", message: JSON.parse(device.start()) as ClientMessage });
      publish();
      break;
    }
    case "server":
      if (device) handleResult(device.handle(JSON.stringify(m.message)));
      break;
    case "chat":
      if (device) {
        try {
          // null: held until a pending removal is committed, then sent with what `handle` returns.
          const message = JSON.parse(device.chat(m.text)) as ClientMessage | null;
          if (message) post({ type: "send", message });
        } catch {
          post({ type: "chat_failed", text: m.text });
        }
      }
      break;
    case "streams":
      // createEncodedStreams (older Chromium): the page transfers the streams.
      pipe(m.readable, m.writable, m.options);
      break;
    case "stats":
      publish();
      break;
    case "chat_start":
      try {
        await init({ module_or_path: wasmUrl });
        messaging = await Messaging.start(m.user_id, m.csrf, post);
        post({ type: "chat_ready", device_id: messaging.deviceId, user_id: messaging.userId });
        post({ type: "chat_interrupted", uploads: await messaging.interruptedUploads() });
        messaging.connect();
      } catch (err) {
        post({ type: "chat_error", message: String(err instanceof Error ? err.message : err) });
      }
      break;
    case "chat_history":
      if (messaging) post({ type: "chat_history", conversation_id: m.conversation_id, messages: messaging.history(m.conversation_id), in_group: messaging.inGroup(m.conversation_id) });
      break;
    case "chat_send":
      if (messaging) {
        try {
          post({ type: "chat_sent", request: m.request, seq: await messaging.send(m.conversation_id, m.text, m.reference), error: null });
        } catch (err) {
          post({ type: "chat_sent", request: m.request, seq: null, error: String(err instanceof Error ? err.message : err) });
        }
      }
      break;
    case "chat_typing":
      messaging?.typing(m.conversation_id);
      break;
    case "chat_send_file":
      if (messaging) {
        const sending = messaging;
        void transfer(
          m.request,
          (progress, signal) => sending.sendFile(m.conversation_id, m.file, m.caption, m.poster, progress, signal),
          (seq) => post({ type: "chat_sent", request: m.request, seq, error: null }),
          (error) => post({ type: "chat_sent", request: m.request, seq: null, error }),
        );
      }
      break;
    case "chat_resume_file":
      if (messaging) {
        const resuming = messaging;
        void transfer(
          m.request,
          (progress, signal) => resuming.resumeFile(m.upload_id, m.file, m.poster, progress, signal),
          (seq) => post({ type: "chat_sent", request: m.request, seq, error: null }),
          (error) => post({ type: "chat_sent", request: m.request, seq: null, error }),
        );
      }
      break;
    case "chat_discard_upload":
      if (messaging) {
        await messaging.discardUpload(m.upload_id);
        post({ type: "chat_interrupted", uploads: await messaging.interruptedUploads() });
      }
      break;
    case "chat_fetch_file":
      if (messaging) {
        const fetching = messaging;
        void transfer(
          m.request,
          (progress, signal) => fetching.fetchFile(m.file, progress, signal),
          (blob) => post({ type: "chat_file", request: m.request, blob, error: null }),
          (error) => post({ type: "chat_file", request: m.request, blob: null, error }),
        );
      }
      break;
    case "chat_cancel":
      transfers.get(m.request)?.abort();
      break;
    case "chat_search":
      post({ type: "chat_found", request: m.request, results: messaging ? messaging.search(m.query) : [] });
      break;
    case "chat_sync":
      void messaging?.sync().catch((err) => post({ type: "chat_error", message: String(err) }));
      break;
  }
};
