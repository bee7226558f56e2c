// What the page and the E2EE worker say to each other.

import type { Poster } from "../messaging/poster";

import type { ChatEvent, ClientMessage, Found, HeldMessage, LiveEvent, Reference, ServerMessage, SharedFile } from "../generated/protocol";

// What the worker's wasm `Conversations` hands the page of its conversations
// is `conclave-proto`'s `held` module, generated with the wire types.
export type { Attached, ChatEvent, Found, HeldMessage } from "../generated/protocol";

export interface TransformOptions {
  side: "send" | "receive";
  kind: "audio" | "video";
}

export type ToWorker =
  | { type: "start" }
  | { type: "server"; message: ServerMessage }
  | { type: "chat"; text: string }
  | { type: "streams"; readable: ReadableStream; writable: WritableStream; options: TransformOptions }
  | { type: "stats" }
  // Team messaging (the worker's `Messaging`).
  | { type: "chat_start"; user_id: string; csrf: string }
  | { type: "chat_history"; conversation_id: string }
  | { type: "chat_send"; conversation_id: string; text: string; reference: Reference | null; request: number }
  | { type: "chat_typing"; conversation_id: string }
  | { type: "chat_sync" }
  | { type: "chat_search"; query: string; request: number }
  /// Seal, upload and share a file; progress comes as `chat_progress`.
  | { type: "chat_send_file"; conversation_id: string; file: File; caption: string | null; poster: Poster | null; request: number }
  /// Fetch and open a shared file; it comes back as `chat_file`.
  | { type: "chat_fetch_file"; file: SharedFile; request: number }
  | { type: "chat_cancel"; request: number }
  /// Carry on an interrupted upload with the file chosen again.
  | { type: "chat_resume_file"; upload_id: string; file: File; poster: Poster | null; request: number }
  | { type: "chat_discard_upload"; upload_id: string };

/// An upload this device began and did not finish (the page closed).
export interface Interrupted {
  upload_id: string;
  conversation_id: string;
  name: string;
  size: number;
  last_modified: number;
  caption: string | null;
}

export interface FrameCounts {
  sealed: number;
  opened: number;
  dropped: number;
  undecryptable: number;
}

/// A member of the group as this device sees it.
export interface GroupMember {
  participant_id: number | null;
  user_id: string | null;
  display_name: string;
  /// The member's device key, as people compare it.
  fingerprint: string;
  /// The server vouches for this device key in this meeting.
  verified: boolean;
  is_self: boolean;
}

export type FromWorker =
  /// For the server: what the wasm agent wrote, a Rust `ClientMessage`.
  | { type: "send"; message: ClientMessage }
  | { type: "state"; epoch: number | null; code: string | null; counts: FrameCounts }
  | { type: "chat"; from: number; text: string }
  | { type: "chat_failed"; text: string }
  | { type: "roster"; members: GroupMember[] }
  | { type: "new_device"; participant_id: number; display_name: string; fingerprint: string }
  /// A change to the group the server relayed but did not ask for was refused.
  | { type: "commit_refused"; from: number; reason: string }
  | { type: "removed" }
  | { type: "chat_ready"; device_id: string; user_id: string }
  /// Uploads this device began and did not finish, to carry on.
  | { type: "chat_interrupted"; uploads: Interrupted[] }
  /// Another tab of this browser drives the device; this one waits for it to close.
  | { type: "chat_elsewhere" }
  | { type: "chat_events"; events: ChatEvent[] }
  | { type: "chat_history"; conversation_id: string; messages: HeldMessage[]; in_group: boolean }
  | { type: "chat_synced" }
  | { type: "chat_sent"; request: number; seq: number | null; error: string | null }
  | { type: "chat_live"; event: LiveEvent }
  | { type: "chat_error"; message: string }
  | { type: "chat_found"; request: number; results: Found[] }
  | { type: "chat_progress"; request: number; done: number; total: number; stalled: boolean }
  | { type: "chat_file"; request: number; blob: Blob | null; error: string | null };
