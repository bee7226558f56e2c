// The meeting's signaling WebSocket (docs/protocol.md): typed messages both
// ways (the types are generated from the server's, in generated/protocol.ts),
// a ping every 20 s, and resumption with the resume token when the
// connection drops.

import { PROTOCOL_VERSION, type ClientMessage, type ServerMessage } from "./generated/protocol";

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
        const next = `${base.protocol}//${base.host}/api/v1/signal?resume=${encodeURIComponent(this.resumeToken!)}&v=${PROTOCOL_VERSION}`;
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
