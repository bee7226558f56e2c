// The page's side of team messaging: the E2EE worker holds this browser's
// device for the account (every conversation's keys, and what it has
// opened); the page asks it for a conversation's messages and to send, and
// hears what arrives. Only what the page shows ever crosses over.

import { csrfToken } from "../api";
import type { LiveEvent, Reference, SharedFile } from "../generated/protocol";
import type { ChatEvent, FromWorker, Found, HeldMessage, Interrupted, ToWorker } from "../e2ee/messages";
import type { Poster } from "./poster";

export type { ChatEvent, Found, HeldMessage };

export interface Held {
  messages: HeldMessage[];
  inGroup: boolean;
}

export interface MessagingListener {
  onReady: (deviceId: string) => void;
  /// Another tab of this browser has messaging open; this one takes over when it closes.
  onElsewhere: () => void;
  onEvents: (events: ChatEvent[]) => void;
  /// A sync ended (a group may have been joined without any message).
  onSynced: () => void;
  onLive: (event: LiveEvent) => void;
  onError: (message: string) => void;
  /// Uploads this device began and did not finish (the page closed).
  onInterrupted: (uploads: Interrupted[]) => void;
}

export class MessagingClient {
  private worker: Worker;
  private histories = new Map<string, ((held: Held) => void)[]>();
  private sends = new Map<number, { resolve: (seq: number) => void; reject: (e: Error) => void }>();
  private searches = new Map<number, (found: Found[]) => void>();
  private progress = new Map<number, (done: number, total: number, stalled: boolean) => void>();
  private files = new Map<number, { resolve: (blob: Blob) => void; reject: (e: Error) => void }>();
  private nextRequest = 1;

  constructor(userId: string, private listener: MessagingListener) {
    this.worker = new Worker(new URL("../e2ee/worker.ts", import.meta.url), { type: "module" });
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => this.fromWorker(event.data);
    this.post({ type: "chat_start", user_id: userId, csrf: csrfToken() });
  }

  private post(m: ToWorker) {
    this.worker.postMessage(m);
  }

  /// Posts an upload under a new request number, which its progress and
  /// its outcome (the message's place in the log) come back under.
  private upload(
    progress: (done: number, total: number, stalled: boolean) => void,
    message: (request: number) => ToWorker,
  ): { request: number; sent: Promise<number> } {
    const request = this.nextRequest++;
    this.progress.set(request, progress);
    const sent = new Promise<number>((resolve, reject) => {
      this.sends.set(request, { resolve, reject });
      this.post(message(request));
    });
    return { request, sent };
  }

  private fromWorker(m: FromWorker) {
    switch (m.type) {
      case "chat_ready":
        this.listener.onReady(m.device_id);
        break;
      case "chat_elsewhere":
        this.listener.onElsewhere();
        break;
      case "chat_interrupted":
        this.listener.onInterrupted(m.uploads);
        break;
      case "chat_events":
        this.listener.onEvents(m.events);
        break;
      case "chat_synced":
        this.listener.onSynced();
        break;
      case "chat_live":
        this.listener.onLive(m.event);
        break;
      case "chat_error":
        this.listener.onError(m.message);
        break;
      case "chat_history": {
        const waiting = this.histories.get(m.conversation_id) ?? [];
        this.histories.delete(m.conversation_id);
        for (const resolve of waiting) resolve({ messages: m.messages, inGroup: m.in_group });
        break;
      }
      case "chat_found": {
        this.searches.get(m.request)?.(m.results);
        this.searches.delete(m.request);
        break;
      }
      case "chat_progress":
        this.progress.get(m.request)?.(m.done, m.total, m.stalled);
        break;
      case "chat_file": {
        const waiting = this.files.get(m.request);
        this.files.delete(m.request);
        this.progress.delete(m.request);
        if (m.blob) waiting?.resolve(m.blob);
        else waiting?.reject(new Error(m.error ?? "not opened"));
        break;
      }
      case "chat_sent": {
        const waiting = this.sends.get(m.request);
        this.sends.delete(m.request);
        this.progress.delete(m.request);
        if (m.seq !== null) waiting?.resolve(m.seq);
        else waiting?.reject(new Error(m.error ?? "not sent"));
        break;
      }
      default:
    }
  }

  /// The messages this device holds of a conversation, in order, and
  /// whether it is in the conversation's group yet.
  history(conversationId: string): Promise<Held> {
    return new Promise((resolve) => {
      const waiting = this.histories.get(conversationId) ?? [];
      waiting.push(resolve);
      this.histories.set(conversationId, waiting);
      this.post({ type: "chat_history", conversation_id: conversationId });
    });
  }

  /// Encrypts and sends; resolves with the message's place in the log once durable.
  send(conversationId: string, text: string, reference: Reference | null = null): Promise<number> {
    const request = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.sends.set(request, { resolve, reject });
      this.post({ type: "chat_send", conversation_id: conversationId, text, reference, request });
    });
  }

  /// Searches what this device holds, in the worker: no request is made.
  search(query: string): Promise<Found[]> {
    const request = this.nextRequest++;
    return new Promise((resolve) => {
      this.searches.set(request, resolve);
      this.post({ type: "chat_search", query, request });
    });
  }

  /// Seals, uploads and shares a file from the worker; `progress` hears
  /// how far it is. Returns the request's number (to cancel it) and the
  /// message's place in the log once shared.
  sendFile(
    conversationId: string,
    file: File,
    caption: string | null,
    poster: Poster | null,
    progress: (done: number, total: number, stalled: boolean) => void,
  ): { request: number; sent: Promise<number> } {
    return this.upload(progress, (request) => ({
      type: "chat_send_file",
      conversation_id: conversationId,
      file,
      caption,
      poster,
      request,
    }));
  }

  /// Carries on an interrupted upload with the file chosen again, as
  /// `sendFile` sends one.
  resumeFile(
    uploadId: string,
    file: File,
    poster: Poster | null,
    progress: (done: number, total: number, stalled: boolean) => void,
  ): { request: number; sent: Promise<number> } {
    return this.upload(progress, (request) => ({ type: "chat_resume_file", upload_id: uploadId, file, poster, request }));
  }

  /// Gives up an interrupted upload (the list comes again, without it).
  discardUpload(uploadId: string) {
    this.post({ type: "chat_discard_upload", upload_id: uploadId });
  }

  /// A shared file, fetched and opened in the worker.
  fetchFile(file: SharedFile, progress: (done: number, total: number, stalled: boolean) => void = () => undefined): Promise<Blob> {
    const request = this.nextRequest++;
    this.progress.set(request, progress);
    return new Promise((resolve, reject) => {
      this.files.set(request, { resolve, reject });
      this.post({ type: "chat_fetch_file", file, request });
    });
  }

  cancel(request: number) {
    this.post({ type: "chat_cancel", request });
  }

  typing(conversationId: string) {
    this.post({ type: "chat_typing", conversation_id: conversationId });
  }

  /// Takes everything new now (after joining or creating a conversation).
  sync() {
    this.post({ type: "chat_sync" });
  }

  close() {
    this.worker.terminate();
  }
}
