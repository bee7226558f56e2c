// The meeting's signaling WebSocket (docs/protocol.md): typed messages both
// ways, a ping every 20 s, and resumption with the resume token when the
// connection drops.

export type Role = "participant" | "co_host" | "host";

export interface Participant {
  id: number;
  display_name: string;
  role: Role;
  signed_in: boolean;
  /// The organisation of a signed-in account (null for guests).
  organisation: string | null;
  /// Signed in with an account of another organisation than the meeting's.
  external: boolean;
  audio_muted: boolean;
  video_muted: boolean;
  hand_raised: boolean;
  sharing_screen: boolean;
  reconnecting: boolean;
}

export interface Waiter {
  id: number;
  display_name: string;
  signed_in: boolean;
  email: string | null;
  organisation: string | null;
  external: boolean;
}

export interface RoomSettings {
  locked: boolean;
  waiting_room: boolean;
  allow_self_unmute: boolean;
  allow_rename: boolean;
  allow_video: boolean;
  screen_share: "host_only" | "one_at_a_time" | "several";
  chat: "everyone" | "hosts_only" | "off";
  private_chat: boolean;
  /// End-to-end encrypted (MLS + SFrame); fixed for the meeting's life.
  e2ee: boolean;
  locked_by_policy: string[];
}

export interface ChatMessage {
  seq: number;
  from: number;
  from_name: string;
  to: number | null;
  text: string;
  at_ms: number;
}

export type MediaSource = "microphone" | "camera" | "screen";
export interface ForwardedTrack {
  mid: string;
  participant_id: number;
  source: MediaSource;
}

// Server messages, by "type".
export type ServerMessage =
  | { type: "waiting"; protocol_version: number; participant_id: number; resume_token: string }
  | {
      type: "admitted";
      protocol_version: number;
      participant_id: number;
      resume_token: string;
      you: Participant;
      roster: Participant[];
      settings: RoomSettings;
      chat: ChatMessage[];
      ends_at_ms: number | null;
    }
  | { type: "refused"; reason: "denied" | "locked" | "removed" | "ended" | "waiting_room_full" }
  | { type: "removed" }
  | { type: "ended"; reason: string }
  | { type: "replaced" }
  | { type: "knock"; participant: Waiter }
  | { type: "knocks"; count: number; first: Waiter[] }
  | { type: "waiting_room"; waiting: Waiter[] }
  | { type: "participant_joined"; participant: Participant }
  | { type: "participant_updated"; participant: Participant }
  | { type: "participant_left"; participant_id: number }
  | { type: "chat"; message: ChatMessage }
  | { type: "chat_ack"; client_msg_id: string; seq: number }
  | { type: "reaction"; from: number; emoji: string }
  | { type: "unmute_requested"; by: number }
  | { type: "settings_changed"; settings: RoomSettings }
  | { type: "time_warning"; minutes_left: number; ends_at_ms: number }
  | { type: "time_limit"; ends_at_ms: number | null }
  | { type: "error"; code: string; message: string; request: string | null }
  | { type: "pong" }
  | { type: "media_offer"; sdp: string; tracks: ForwardedTrack[] }
  | { type: "media_answer"; sdp: string }
  | { type: "publish_layers"; mid: string; rids: string[] }
  | { type: "active_speaker"; participant_id: number | null };

export type ClientMessage = { type: string; [key: string]: unknown };

export class Signaling {
  private socket: WebSocket | null = null;
  private pinger: number | undefined;
  private resumeToken: string | null = null;
  private closedByUs = false;
  private queue: ClientMessage[] = [];

  constructor(
    private url: string,
    private onMessage: (m: ServerMessage) => void,
    private onClosed: (willResume: boolean) => void,
  ) {}

  connect() {
    this.open(this.url);
  }

  private open(url: string) {
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      for (const m of this.queue.splice(0)) socket.send(JSON.stringify(m));
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data) as ServerMessage;
      if (message.type === "waiting" || message.type === "admitted") this.resumeToken = message.resume_token;
      if (message.type === "removed" || message.type === "ended" || message.type === "refused" || message.type === "replaced") {
        this.resumeToken = null;
      }
      this.onMessage(message);
    };
    socket.onclose = () => {
      window.clearInterval(this.pinger);
      const resume = !this.closedByUs && this.resumeToken !== null;
      this.onClosed(resume);
      if (resume) {
        const base = new URL(this.url);
        const next = `${base.protocol}//${base.host}/api/v1/signal?resume=${encodeURIComponent(this.resumeToken!)}&v=1`;
        window.setTimeout(() => this.open(next), 1000);
      }
    };
    window.clearInterval(this.pinger);
    this.pinger = window.setInterval(() => this.send({ type: "ping" }), 20_000);
  }

  send(message: ClientMessage) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
    else this.queue.push(message);
  }

  close() {
    this.closedByUs = true;
    window.clearInterval(this.pinger);
    this.socket?.close();
  }
}
