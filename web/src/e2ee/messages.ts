// What the page and the E2EE worker say to each other.

export interface TransformOptions {
  side: "send" | "receive";
  kind: "audio" | "video";
}

export type ToWorker =
  | { type: "start"; identity: string }
  | { type: "server"; message: unknown }
  | { type: "chat"; text: string }
  | { type: "streams"; readable: ReadableStream; writable: WritableStream; options: TransformOptions }
  | { type: "stats" };

export interface FrameCounts {
  sealed: number;
  opened: number;
  dropped: number;
  undecryptable: number;
}

export type FromWorker =
  | { type: "send"; message: Record<string, unknown> }
  | { type: "state"; epoch: number | null; code: string | null; counts: FrameCounts }
  | { type: "chat"; from: number; text: string }
  | { type: "chat_failed"; text: string }
  | { type: "removed" };
