// The page's side of end-to-end encryption: starts the E2EE worker, routes
// the server's `e2ee_*` messages to it and its replies to the server, and
// attaches it to every sender and receiver of the media session.

import type { ClientMessage, ServerMessage } from "../generated/protocol";
import type { FrameCounts, FromWorker, GroupMember, ToWorker, TransformOptions } from "./messages";

export type { GroupMember };

export interface E2eeState {
  epoch: number | null;
  /// The security code everyone in the meeting compares; null until in the group.
  code: string | null;
  counts: FrameCounts;
  /// Who holds the group's keys, each checked against the server's credential.
  members: GroupMember[];
}

interface Callbacks {
  send: (m: ClientMessage) => void;
  onState: (s: E2eeState) => void;
  onChat: (from: number, text: string) => void;
  /// An account seen before is here on a device key never seen for it.
  onNewDevice: (participantId: number, displayName: string, fingerprint: string) => void;
  /// This device refused a change to the group (someone not asked to make
  /// it, or adding or removing someone the server did not ask for).
  onCommitRefused: (from: number, reason: string) => void;
}

type Transformable = { transform?: unknown; createEncodedStreams?: () => { readable: ReadableStream; writable: WritableStream } };

/// Encoded-frame access: `RTCRtpScriptTransform` where the browser has it,
/// else the older `createEncodedStreams` (which needs the peer connection
/// created with `encodedInsertableStreams`).
export function encodedTransformSupport(): "script" | "streams" | null {
  if ("RTCRtpScriptTransform" in window) return "script";
  if ("createEncodedStreams" in RTCRtpSender.prototype) return "streams";
  return null;
}

export class E2ee {
  private worker: Worker;
  private members: GroupMember[] = [];

  constructor(private callbacks: Callbacks) {
    this.worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => this.fromWorker(event.data);
    this.post({ type: "start" });
  }

  private post(m: ToWorker, transfer: Transferable[] = []) {
    this.worker.postMessage(m, transfer);
  }

  private fromWorker(m: FromWorker) {
    switch (m.type) {
      case "send":
        this.callbacks.send(m.message);
        break;
      case "state":
        this.callbacks.onState({ epoch: m.epoch, code: m.code, counts: m.counts, members: this.members });
        break;
      case "chat":
        this.callbacks.onChat(m.from, m.text);
        break;
      case "roster":
        this.members = m.members;
        break;
      case "new_device":
        this.callbacks.onNewDevice(m.participant_id, m.display_name, m.fingerprint);
        break;
      case "commit_refused":
        this.callbacks.onCommitRefused(m.from, m.reason);
        break;
      default:
    }
  }

  handle(message: ServerMessage) {
    if (message.type.startsWith("e2ee_")) this.post({ type: "server", message });
  }

  chat(text: string) {
    this.post({ type: "chat", text });
  }

  refresh() {
    this.post({ type: "stats" });
  }

  /// Passes a sender's or receiver's encoded frames through the worker.
  attach(endpoint: RTCRtpSender | RTCRtpReceiver, options: TransformOptions) {
    const target = endpoint as unknown as Transformable;
    if ("RTCRtpScriptTransform" in window) {
      const Script = (window as unknown as { RTCRtpScriptTransform: new (w: Worker, o: TransformOptions) => unknown }).RTCRtpScriptTransform;
      target.transform = new Script(this.worker, options);
    } else if (target.createEncodedStreams) {
      const { readable, writable } = target.createEncodedStreams();
      this.post({ type: "streams", readable, writable, options }, [readable as unknown as Transferable, writable as unknown as Transferable]);
    }
  }

  close() {
    this.worker.terminate();
  }
}
