// The REST API, as the browser uses it: the session rides in an HttpOnly
// cookie, and every state-changing request carries the session's CSRF
// token. Errors are RFC 9457 problems.

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  errors?: { field: string; message: string }[];
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public problem: Problem,
  ) {
    super(problem.detail || problem.title || `HTTP ${status}`);
  }
  get code(): string {
    return this.problem.code ?? "";
  }
}

export interface User {
  id: string;
  email: string;
  display_name: string;
  org_id: string | null;
  role: string | null;
  status: string;
  two_factor_enabled: boolean;
}

export interface LoginResponse {
  token: string;
  csrf_token: string;
  session_id: string;
  user: User;
  two_factor_enrollment_required: boolean;
}

export interface MeetingSettings {
  waiting_room: boolean;
  mute_on_entry: boolean;
  allow_self_unmute: boolean;
  screen_share: string;
  chat: string;
  private_chat: boolean;
  e2ee: boolean;
}

export interface Meeting {
  id: string;
  org_id: string;
  title: string;
  scheduled_start_ms: number | null;
  duration_minutes: number | null;
  settings: MeetingSettings;
  invite_url: string;
  link_secret: string;
  code: string;
  passcode: string | null;
  host_key: string;
}

/// Someone removed from a meeting, whom its owner or an admin may let back.
export interface MeetingBan {
  id: string;
  display_name: string;
  user_id: string | null;
  removed_by: string;
  at_ms: number;
}

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface Invitation {
  id: string;
  email: string;
  role: string;
  created_at_ms: number;
  expires_at_ms: number;
  accepted: boolean;
}

export interface JoinTicket {
  meeting_id: string;
  ticket: string;
  signaling_url: string;
  expires_in_seconds: number;
  ice_servers: IceServer[];
}

export interface AuditEvent {
  seq: number;
  at_ms: number;
  action: string;
  outcome: string;
  actor_id: string | null;
  target: string | null;
  detail: string;
  source_ip: string | null;
}

export interface SessionInfo {
  id: string;
  kind: string;
  name: string | null;
  created_at_ms: number;
  last_seen_at_ms: number;
  ip: string | null;
  user_agent: string | null;
  current: boolean;
}

export type Policy = Record<string, { value: unknown; locked: boolean }>;

const CSRF_KEY = "conclave.csrf";

export function setCsrf(token: string | null) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  const csrf = sessionStorage.getItem(CSRF_KEY);
  if (csrf && method !== "GET") headers["x-csrf-token"] = csrf;
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!response.ok) throw new ApiError(response.status, json ?? {});
  return json as T;
}

export const api = {
  login: (email: string, password: string, totp_code?: string, recovery_code?: string) =>
    call<LoginResponse>("POST", "/auth/login", {
      email,
      password,
      totp_code: totp_code || null,
      recovery_code: recovery_code || null,
    }),
  logout: () => call<void>("POST", "/auth/logout"),
  signup: (email: string, display_name: string, password: string, invite_token: string | null) =>
    call<LoginResponse>("POST", "/auth/signup", { email, display_name, password, invite_token }),
  report: (meeting: string, participant_token: string, participant_id: number, reason: string) =>
    call<{ id: string; meeting_id: string; at_ms: number }>("POST", `/meetings/${meeting}/reports`, { participant_token, participant_id, reason }),
  meetingBans: (meeting: string) => call<{ bans: MeetingBan[] }>("GET", `/meetings/${meeting}/bans`),
  liftMeetingBan: (meeting: string, ban: string) => call<void>("DELETE", `/meetings/${meeting}/bans/${ban}`),
  me: () => call<{ user: User; csrf_token: string; two_factor_enrollment_required: boolean }>("GET", "/me"),
  sessions: () => call<{ sessions: SessionInfo[] }>("GET", "/me/sessions"),
  revokeSession: (id: string) => call<void>("DELETE", `/me/sessions/${id}`),
  enrollTotp: () => call<{ secret: string; otpauth_uri: string }>("POST", "/me/totp/enroll"),
  confirmTotp: (code: string) => call<{ recovery_codes: string[] }>("POST", "/me/totp/confirm", { code }),
  meetings: () => call<{ meetings: Meeting[] }>("GET", "/meetings"),
  createMeeting: (title: string, scheduled_start_ms: number | null, settings: Partial<MeetingSettings>, passcode?: string) =>
    call<Meeting>("POST", "/meetings", { title, scheduled_start_ms, duration_minutes: null, passcode: passcode || null, settings }),
  rotateMeeting: (id: string) => call<Meeting>("POST", `/meetings/${id}/rotate`),
  deleteMeeting: (id: string) => call<void>("DELETE", `/meetings/${id}`),
  join: (link_secret: string | null, display_name: string, passcode: string | null, code: string | null) =>
    call<JoinTicket>("POST", "/meetings/join", {
      link_secret,
      code,
      passcode,
      display_name,
    }),
  policy: (org: string) => call<Policy>("GET", `/orgs/${org}/policy`),
  updatePolicy: (org: string, update: Policy) => call<Policy>("PATCH", `/orgs/${org}/policy`, update),
  members: (org: string) => call<{ members: User[] }>("GET", `/orgs/${org}/members`),
  invite: (org: string, email: string, role: string) =>
    call<{ invite_url: string; invitation: Invitation }>("POST", `/orgs/${org}/invitations`, { email, role }),
  invitations: (org: string) => call<{ invitations: Invitation[] }>("GET", `/orgs/${org}/invitations`),
  audit: (org: string) => call<{ events: AuditEvent[] }>("GET", `/orgs/${org}/audit`),
};
