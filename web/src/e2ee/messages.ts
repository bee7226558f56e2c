// What the page and the E2EE worker say to each other.

import type { ClientMessage, ServerMessage } from "../generated/protocol";

export interface TransformOptions {
  side: "send" | "receive";
  kind: "audio" | "video";
}

export type ToWorker =
  | { type: "start" }
  | { type: "server"; message: ServerMessage }
  | { type: "chat"; text: string }
  | { type: "streams"; readable: ReadableStream; writable: WritableStream; options: TransformOptions }
  | { type: "stats" };

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
  | { type: "removed" };
