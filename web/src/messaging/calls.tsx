// A call started from a conversation: the server says that it is live and
// who is in it; the way in (the meeting's link) reached this device only
// encrypted, as the caller's message, so it is read from there.

import type { CallAttendee, ConversationCall } from "../generated/protocol";
import type { HeldMessage } from "./client";

/// The link secret of the call, from the newest message its caller sent
/// since starting it that points at a meeting on this server. Links to
/// other servers are never followed from the banner.
export function callLink(held: HeldMessage[], call: ConversationCall): string | null {
  for (let i = held.length - 1; i >= 0; i--) {
    const m = held[i];
    if (m.at_ms < call.started_at_ms) break;
    if (m.from_user !== call.started_by) continue;
    for (const found of m.text.matchAll(/https?:\/\/[^\s<>()]+\/j\/([A-Za-z0-9]+)/g)) {
      if (new URL(found[0]).origin === location.origin) return found[1];
    }
  }
  return null;
}

export function CallBanner(props: {
  call: ConversationCall;
  nameOf: (id: string) => string;
  link: string | null;
  onJoin: (secret: string) => void;
}) {
  const names = props.call.in_call.map((a: CallAttendee) => a.display_name);
  return (
    <div className="call-banner" role="status" aria-label="Call in progress">
      <span aria-hidden="true">📞</span>
      <div>
        <strong>Call in progress</strong> <span className="muted">started by {props.nameOf(props.call.started_by)}</span>
        <div className="muted">{names.length > 0 ? `In the call: ${names.join(", ")}` : "Nobody is in the call right now"}</div>
      </div>
      <button className="primary" disabled={props.link === null} title={props.link === null ? "The call's link has not reached this device yet" : undefined} onClick={() => props.link && props.onJoin(props.link)}>
        Join call
      </button>
    </div>
  );
}
