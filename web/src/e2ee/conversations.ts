// The worker's side of team messaging: drives the wasm `Conversations`
// device (conclave-e2ee's `ConversationDevice`), which decides every step
// and names each call to the server it needs; this module makes the calls
// with `fetch` and hands back the replies, exactly as `conclave-client`
// does natively. Every conversation's keys, and the messages the device
// has opened, stay in this worker: the device's state is kept in
// IndexedDB sealed under an AES-GCM key that cannot be exported, and the
// page is posted only what it shows.

import { Conversations } from "./pkg/conclave_e2ee_wasm.js";
import { load, save } from "./keep";
import type { ConversationList, DeviceRegistration, LiveCommand, LiveEvent, MessageAccepted, Reference, SendMessageRequest, SharedFile } from "../generated/protocol";
import { Cancelled, download, preview, upload, type Begun, type Progress } from "./files";
import type { Poster } from "../messaging/poster";
import type { ChatEvent, FromWorker, Found, HeldMessage, Interrupted } from "./messages";

/// An unfinished upload as this device keeps it (sealed, in IndexedDB).
interface KeptUpload extends Interrupted {
  /// The file's key, base64.
  key: string;
}

/// A call the device names (conclave-e2ee's `Call`, serialised by serde).
type Call =
  | { call: "read_inbox"; after: number }
  | { call: "read_log"; conversation_id: string; after: number; limit: number }
  | { call: "read_earlier"; conversation_id: string; after: number; limit: number }
  | { call: "upload_key_package"; conversation_id: string; request: unknown }
  | { call: "send_commit"; conversation_id: string; request: unknown }
  | { call: "send_message"; conversation_id: string; request: SendMessageRequest }
  | { call: "wait"; ms: number };

type Operation =
  | { op: "sync" }
  | { op: "open"; conversation_id: string }
  | { op: "follow"; conversation_id: string }
  | { op: "send"; conversation_id: string; text: string; reference: Reference | null; client_id: string }
  | { op: "send_file"; conversation_id: string; file: SharedFile; thumbnail: SharedFile | null; caption: string | null; client_id: string };

interface Finished {
  events: ChatEvent[];
  accepted: { seq: number; duplicate: boolean } | null;
}

export class Messaging {
  private device: Conversations;
  private csrf: string;
  /// Operations run one at a time, in the order asked.
  private queue: Promise<unknown> = Promise.resolve();
  private syncWanted = false;
  private live: WebSocket | null = null;
  /// Messages sent on the live connection, waiting for its answer, by client id.
  private answers = new Map<string, { resolve: (accepted: MessageAccepted) => void; reject: (err: Error) => void }>();
  private closed = false;

  private constructor(device: Conversations, csrf: string, private post: (m: FromWorker) => void) {
    this.device = device;
    this.csrf = csrf;
  }

  /// This browser's device for the account: the one kept here, or a new
  /// one registered with the account.
  static async start(userId: string, csrf: string, post: (m: FromWorker) => void): Promise<Messaging> {
    await holdDevice(userId, () => post({ type: "chat_elsewhere" }));
    const kept = await unseal(userId);
    let device: Conversations | null = null;
    if (kept) {
      try {
        device = Conversations.restore(kept);
      } catch {
        device = null;
      }
    }
    const messaging = new Messaging(device ?? (await Messaging.register(csrf)), csrf, post);
    if (messaging.device.user_id() !== userId) throw new Error("the kept device belongs to another account");
    await messaging.keep();
    return messaging;
  }

  private static async register(csrf: string): Promise<Conversations> {
    const key = JSON.parse(Conversations.new_key()) as { key: string; signature_key: string };
    const registration = await request<DeviceRegistration>(csrf, "POST", "/me/devices", {
      signature_key: key.signature_key,
      name: deviceName(),
    });
    const me = await request<{ user: { id: string } }>(csrf, "GET", "/me");
    return Conversations.create(registration.device.id, me.user.id, key.key, registration.credential, registration.authority);
  }

  get deviceId(): string {
    return this.device.device_id();
  }

  get userId(): string {
    return this.device.user_id();
  }

  inGroup(conversationId: string): boolean {
    return this.device.in_group(conversationId);
  }

  history(conversationId: string): HeldMessage[] {
    return JSON.parse(this.device.history(conversationId)) as HeldMessage[];
  }

  /// What this device holds that matches `query`, newest first: answered
  /// from the device's own (sealed) history, never by asking the server.
  search(query: string): Found[] {
    return JSON.parse(this.device.search(query)) as Found[];
  }

  /// Asks to be in the group of every encrypted conversation the account
  /// is in and this device is not (and follows every plain one), then
  /// takes everything new.
  sync(): Promise<void> {
    if (this.syncWanted) return this.queue.then(() => undefined);
    this.syncWanted = true;
    return this.serially(async () => {
      this.syncWanted = false;
      const list = await request<ConversationList>(this.csrf, "GET", "/conversations");
      for (const c of list.conversations) {
        if (!c.archived && !this.device.asked(c.id)) {
          await this.run({ op: c.encrypted ? "open" : "follow", conversation_id: c.id }).catch((e) => this.post({ type: "chat_error", message: String(e) }));
        }
      }
      await this.run({ op: "sync" });
      this.post({ type: "chat_synced" });
    });
  }

  send(conversationId: string, text: string, reference: Reference | null): Promise<number> {
    return this.sendOperation({ op: "send", conversation_id: conversationId, text, reference, client_id: clientId() });
  }

  /// Seals and uploads a file (and, for a picture, a preview made here;
  /// for a video, the poster the page made), then shares it in the
  /// conversation. Only the message waits its turn among the device's
  /// operations: the upload goes on beside them.
  async sendFile(conversationId: string, file: File, caption: string | null, poster: Poster | null, progress: Progress, signal: AbortSignal): Promise<number> {
    return this.shareFile(conversationId, file, caption, poster, progress, signal, null);
  }

  /// Uploads this device began and did not finish (the page was closed or
  /// reloaded): the person chooses the same file again to carry each on.
  async interruptedUploads(): Promise<Interrupted[]> {
    return (await this.unfinished()).map(({ key: _, ...shown }) => shown);
  }

  /// Carries on upload `uploadId` with `file`, which must be the one it
  /// began with (same name, size and date), then shares it.
  async resumeFile(uploadId: string, file: File, poster: Poster | null, progress: Progress, signal: AbortSignal): Promise<number> {
    const upload = (await this.unfinished()).find((u) => u.upload_id === uploadId);
    if (!upload) throw new Error("that upload is no longer waiting");
    if (file.name !== upload.name || file.size !== upload.size || file.lastModified !== upload.last_modified) {
      throw new Error(`that is not the same file: choose ${upload.name} again`);
    }
    return this.shareFile(upload.conversation_id, file, upload.caption, poster, progress, signal, { fileId: upload.upload_id, key: upload.key });
  }

  /// Gives up an interrupted upload: the server drops what it holds.
  async discardUpload(uploadId: string): Promise<void> {
    await request(this.csrf, "DELETE", `/files/${encodeURIComponent(uploadId)}`).catch(() => undefined);
    await this.forgetUpload(uploadId);
  }

  private async shareFile(
    conversationId: string,
    file: File,
    caption: string | null,
    poster: Poster | null,
    progress: Progress,
    signal: AbortSignal,
    resume: Begun | null,
  ): Promise<number> {
    const mime = file.type || "application/octet-stream";
    const picture = mime.startsWith("image/") ? await preview(file) : poster;
    // The preview counts in the progress with the file.
    const total = file.size + (picture?.preview.size ?? 0);
    // Until it is shared, the upload is kept (with its key, sealed) to be
    // carried on if the page closes; a cancelled one is forgotten.
    let begunId = resume?.fileId ?? null;
    const begun = (b: Begun) => {
      begunId = b.fileId;
      void this.rememberUpload({ upload_id: b.fileId, key: b.key, conversation_id: conversationId, name: file.name, size: file.size, last_modified: file.lastModified, caption });
    };
    try {
      const shared = await upload(this.csrf, conversationId, this.deviceId, file, file.name, mime, (done, _, stalled) => progress(done, total, stalled), signal, picture?.dimensions ?? null, begun, resume);
      const thumbnail = picture
        ? await upload(this.csrf, conversationId, this.deviceId, picture.preview, `preview-${file.name}.jpg`, "image/jpeg", (done, _, stalled) => progress(file.size + done, total, stalled), signal, picture.dimensions)
        : null;
      const seq = await this.sendOperation({ op: "send_file", conversation_id: conversationId, file: shared, thumbnail, caption, client_id: clientId() });
      await this.forgetUpload(shared.file_id);
      return seq;
    } catch (err) {
      if (err instanceof Cancelled && begunId) await this.forgetUpload(begunId);
      throw err;
    }
  }

  private uploads: Promise<unknown> = Promise.resolve();

  private async unfinished(): Promise<KeptUpload[]> {
    const kept = await unseal(this.userId, "uploads");
    return kept ? (JSON.parse(new TextDecoder().decode(kept)) as KeptUpload[]) : [];
  }

  /// Changes the kept list one change at a time (uploads run side by side).
  private changeUploads(change: (all: KeptUpload[]) => KeptUpload[]): Promise<void> {
    const next = this.uploads.then(async () => {
      const all = change(await this.unfinished());
      await seal(this.userId, new TextEncoder().encode(JSON.stringify(all)), "uploads");
    });
    this.uploads = next.catch(() => undefined);
    return next;
  }

  private rememberUpload(upload: KeptUpload): Promise<void> {
    return this.changeUploads((all) => [...all.filter((u) => u.upload_id !== upload.upload_id), upload]);
  }

  private forgetUpload(uploadId: string): Promise<void> {
    return this.changeUploads((all) => all.filter((u) => u.upload_id !== uploadId));
  }

  /// A shared file, opened on this device.
  fetchFile(file: SharedFile, progress: Progress, signal: AbortSignal): Promise<Blob> {
    return download(this.csrf, file, progress, signal);
  }

  private sendOperation(operation: Operation): Promise<number> {
    return this.serially(async () => {
      const finished = await this.run(operation);
      if (!finished.accepted) throw new Error("the server did not accept the message");
      return finished.accepted.seq;
    }).finally(() => {
      // Read it back at once (the sender shows its message from the log,
      // in the log's order), whether or not the live connection says so.
      void this.sync().catch((e) => this.post({ type: "chat_error", message: String(e) }));
    });
  }

  /// The live connection: a change anywhere means a sync; typing and read
  /// receipts go to the page as they are.
  connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/me/devices/${this.deviceId}/live`;
    const socket = new WebSocket(url);
    this.live = socket;
    socket.onmessage = (event) => {
      const live = JSON.parse(String(event.data)) as LiveEvent;
      if (live.type === "sent" || live.type === "not_sent") {
        const waiting = this.answers.get(live.client_id);
        this.answers.delete(live.client_id);
        if (live.type === "sent") waiting?.resolve({ seq: live.seq, duplicate: live.duplicate });
        else waiting?.reject(Refused.of(live.problem.status, live.problem.type));
        return;
      }
      if (live.type === "typing" || live.type === "read") {
        this.post({ type: "chat_live", event: live });
        return;
      }
      // The page hears of it when the sync ends (`chat_synced`).
      void this.sync().catch((e) => this.post({ type: "chat_error", message: String(e) }));
    };
    socket.onopen = () => void this.sync().catch((e) => this.post({ type: "chat_error", message: String(e) }));
    socket.onclose = () => {
      this.live = null;
      // Sends it never answered go again by request, with the same client
      // id: one that was written is answered as the retry it is.
      for (const waiting of this.answers.values()) waiting.reject(new LiveGone());
      this.answers.clear();
      // Back after a pause (the server restarting, the network gone); the
      // sync on reconnecting takes what was missed.
      if (!this.closed) setTimeout(() => this.connect(), 2000);
    };
  }

  typing(conversationId: string) {
    this.say({ type: "typing", conversation_id: conversationId });
  }

  private say(command: LiveCommand): boolean {
    if (this.live?.readyState !== WebSocket.OPEN) return false;
    this.live.send(JSON.stringify(command));
    return true;
  }

  /// A message sent on the live connection when it is open (no request of
  /// its own), by request otherwise or when the connection goes before
  /// answering.
  private async sendMessage(conversationId: string, message: SendMessageRequest, at: string): Promise<unknown> {
    const answered = new Promise<MessageAccepted>((resolve, reject) => this.answers.set(message.client_id, { resolve, reject }));
    if (this.say({ type: "send", conversation_id: conversationId, message })) {
      try {
        return await answered;
      } catch (err) {
        if (!(err instanceof LiveGone)) throw err;
      }
    }
    this.answers.delete(message.client_id);
    return request(this.csrf, "POST", at, message);
  }

  close() {
    this.closed = true;
    this.live?.close();
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /// One operation of the device, to its end; what it saw goes to the page.
  private async run(operation: Operation): Promise<Finished> {
    this.device.start(JSON.stringify(operation));
    for (let call = this.device.poll_call(); call !== undefined; call = this.device.poll_call()) {
      const asked = JSON.parse(call) as Call;
      // Kept before the server hears of it: a tab closed mid-call must not
      // lose the key a KeyPackage, commit or message was made with while
      // the server holds on to what it sent (the server would wait on a
      // device that no longer knows why, and refuse it asking again).
      if (asked.call === "upload_key_package" || asked.call === "send_commit" || asked.call === "send_message") await this.keep();
      this.device.handle_reply(JSON.stringify(await this.make(asked)));
    }
    try {
      const finished = JSON.parse(this.device.finish()) as Finished;
      if (finished.events.length > 0) this.post({ type: "chat_events", events: finished.events });
      return finished;
    } finally {
      await this.keep();
    }
  }

  private async make(call: Call): Promise<{ ok: unknown } | { failed: { status: number | null; code: string | null } }> {
    const device = encodeURIComponent(this.deviceId);
    const at = (id: string) => `/conversations/${encodeURIComponent(id)}`;
    try {
      switch (call.call) {
        case "read_inbox":
          return { ok: await request(this.csrf, "GET", `/me/devices/${device}/inbox?after=${call.after}`) };
        case "read_log":
          return { ok: await request(this.csrf, "GET", `${at(call.conversation_id)}/entries?device_id=${device}&after=${call.after}&limit=${call.limit}&wait_ms=0`) };
        case "read_earlier":
          return { ok: await request(this.csrf, "GET", `${at(call.conversation_id)}/entries?device_id=${device}&after=${call.after}&limit=${call.limit}&earlier=true`) };
        case "upload_key_package":
          return { ok: await request(this.csrf, "POST", `${at(call.conversation_id)}/key-packages`, call.request) };
        case "send_commit":
          return { ok: await request(this.csrf, "POST", `${at(call.conversation_id)}/commits`, call.request) };
        case "send_message":
          return { ok: await this.sendMessage(call.conversation_id, call.request, `${at(call.conversation_id)}/messages`) };
        case "wait":
          await new Promise((resolve) => setTimeout(resolve, call.ms));
          return { ok: null };
      }
    } catch (err) {
      console.warn(`messaging: ${call.call} failed: ${String(err)}`);
      if (err instanceof Refused) return { failed: { status: err.status, code: err.code } };
      return { failed: { status: null, code: null } };
    }
  }

  private async keep() {
    await seal(this.userId, this.device.export());
  }
}

/// The live connection closed before answering a message sent on it.
class LiveGone extends Error {}

class Refused extends Error {
  constructor(
    public status: number,
    public code: string | null,
  ) {
    super(`${status} ${code ?? ""}`);
  }

  /// From a problem's status and `type` URI, whose last part is its code.
  static of(status: number, type: string): Refused {
    return new Refused(status, type ? type.slice(type.lastIndexOf("/") + 1) : null);
  }
}

async function request<T>(csrf: string, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["x-csrf-token"] = csrf;
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await response.text();
  const json = text ? (JSON.parse(text) as unknown) : null;
  if (!response.ok) {
    const type = (json as { type?: string } | null)?.type ?? "";
    throw Refused.of(response.status, type);
  }
  return json as T;
}

/// One tab at a time drives this browser's device for an account: two would
/// each move its MLS groups on and overwrite each other's state. Another tab
/// of the same browser waits (`elsewhere` tells it) and takes over, from the
/// state the first one kept, when that one closes. The lock is held for the
/// worker's life and goes with it.
async function holdDevice(userId: string, elsewhere: () => void): Promise<void> {
  if (!navigator.locks) return;
  const name = `conclave-conversations:${userId}`;
  const forever = () => new Promise<never>(() => undefined);
  const first = await new Promise<boolean>((resolve) => {
    void navigator.locks.request(name, { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      return lock ? forever() : undefined;
    });
  });
  if (first) return;
  elsewhere();
  await new Promise<void>((resolve) => {
    void navigator.locks.request(name, () => {
      resolve();
      return forever();
    });
  });
}

function clientId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Chrom(e|ium)\//.test(ua) ? "Chromium" : /Firefox\//.test(ua) ? "Firefox" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const system = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
  return system ? `${browser} on ${system}` : browser;
}

// The device's state at rest: sealed with a key made here, kept in
// IndexedDB as a non-extractable CryptoKey (usable by this origin's code,
// never readable as bytes), so what is stored holds no message in the clear.

async function vaultKey(): Promise<CryptoKey> {
  const kept = await load<CryptoKey>("vault");
  if (kept) return kept;
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  await save("vault", key);
  return key;
}

async function seal(userId: string, state: Uint8Array, what = "conversations") {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await vaultKey(), state as BufferSource);
  await save(`${what}:${userId}`, { iv, data });
}

async function unseal(userId: string, what = "conversations"): Promise<Uint8Array | null> {
  const kept = await load<{ iv: Uint8Array; data: ArrayBuffer }>(`${what}:${userId}`);
  if (!kept) return null;
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: kept.iv as BufferSource }, await vaultKey(), kept.data));
  } catch {
    return null;
  }
}
