// What the app knows of a meeting, folded from the server's messages and
// the app's own notices.

import type {
  ChatMessage,
  EndReason,
  ParticipantView,
  QualityLevel,
  QualityReport,
  RefusalReason,
  RoomSettings,
  ServerMessage,
  WaitingView,
} from "../generated/protocol";

export type Phase =
  | { kind: "connecting" }
  | { kind: "waiting" }
  | { kind: "in" }
  | { kind: "refused"; reason: RefusalReason }
  | { kind: "removed" }
  | { kind: "ended"; reason: EndReason }
  | { kind: "replaced" };

/// What changes the meeting's state: a message from the server, or
/// something the app itself has to tell (a report filed, a new device key).
export type MeetingEvent = ServerMessage | { type: "notice"; text: string };

export interface MeetingState {
  phase: Phase;
  me: number | null;
  /// Proves, in a report, that we are in the meeting.
  resumeToken: string | null;
  roster: Map<number, ParticipantView>;
  waiting: WaitingView[];
  settings: RoomSettings | null;
  chat: ChatMessage[];
  speaker: number | null;
  endsAt: number | null;
  notices: { id: number; text: string; at: number }[];
  reactions: { id: number; from: number; emoji: string; at: number }[];
  /// Hosts and co-hosts: each participant's call quality, as last told.
  quality: Map<number, { level: QualityLevel; report: QualityReport }>;
}

export const initialState: MeetingState = {
  phase: { kind: "connecting" },
  me: null,
  resumeToken: null,
  roster: new Map(),
  waiting: [],
  settings: null,
  chat: [],
  speaker: null,
  endsAt: null,
  notices: [],
  reactions: [],
  quality: new Map(),
};

let noticeId = 0;

/// A notice shown again while it is still up is not stacked twice: it stays
/// up longer.
function notice(state: MeetingState, text: string): MeetingState {
  const earlier = state.notices.filter((n) => n.text !== text).slice(-4);
  return { ...state, notices: [...earlier, { id: ++noticeId, text, at: Date.now() }] };
}

export function reduce(state: MeetingState, m: MeetingEvent): MeetingState {
  switch (m.type) {
    case "waiting":
      return { ...state, phase: { kind: "waiting" }, me: m.participant_id, resumeToken: m.resume_token };
    case "admitted":
      return {
        ...state,
        phase: { kind: "in" },
        me: m.participant_id,
        resumeToken: m.resume_token,
        roster: new Map([m.you, ...m.roster].map((p) => [p.id, p])),
        settings: m.settings,
        chat: m.chat,
        endsAt: m.ends_at_ms,
      };
    case "refused":
      return { ...state, phase: { kind: "refused", reason: m.reason } };
    case "removed":
      return { ...state, phase: { kind: "removed" } };
    case "ended":
      return { ...state, phase: { kind: "ended", reason: m.reason } };
    case "replaced":
      return { ...state, phase: { kind: "replaced" } };
    case "knock":
      return notice(state, `${m.participant.display_name} is waiting to join`);
    case "knocks":
      return notice(state, `${m.count} people are waiting to join`);
    case "waiting_room":
      return { ...state, waiting: m.waiting };
    case "participant_joined":
    case "participant_updated": {
      const roster = new Map(state.roster);
      roster.set(m.participant.id, m.participant);
      return { ...state, roster };
    }
    case "participant_left": {
      const roster = new Map(state.roster);
      roster.delete(m.participant_id);
      const quality = new Map(state.quality);
      quality.delete(m.participant_id);
      return { ...state, roster, quality, speaker: state.speaker === m.participant_id ? null : state.speaker };
    }
    case "participant_quality": {
      const quality = new Map(state.quality);
      quality.set(m.participant_id, { level: m.level, report: m.report });
      return { ...state, quality };
    }
    case "chat":
      return state.chat.some((c) => c.seq === m.message.seq) ? state : { ...state, chat: [...state.chat, m.message] };
    case "reaction":
      return { ...state, reactions: [...state.reactions.slice(-9), { id: ++noticeId, from: m.from, emoji: m.emoji, at: Date.now() }] };
    case "unmute_requested":
      return notice(state, "The host asks you to unmute");
    case "settings_changed":
      return { ...state, settings: m.settings };
    case "time_warning":
      return { ...notice(state, `The meeting ends in ${m.minutes_left} minute${m.minutes_left === 1 ? "" : "s"}`), endsAt: m.ends_at_ms };
    case "time_limit":
      return { ...state, endsAt: m.ends_at_ms };
    case "active_speaker":
      return { ...state, speaker: m.participant_id };
    case "error":
      // Media faults recover by themselves; refused quality reports are the app's own business.
      return m.code === "media_lost" || m.code === "media_failed" || m.request === "quality_report" ? state : notice(state, m.message);
    case "notice":
      return notice(state, m.text);
    default:
      return state;
  }
}
