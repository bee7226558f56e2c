// The REST API, as the browser uses it: the session rides in an HttpOnly
// cookie, and every state-changing request carries the session's CSRF
// token. Errors are RFC 9457 problems.

import {
  PROBLEM_BASE,
  type MeetingQuality,
  type QualitySummaryList,
  type AuditEventPage,
  type CreateIdentityProviderRequest,
  type CreateMeetingRequest,
  type DeviceList,
  type IdentityProvider,
  type IdentityProviderList,
  type InvitationCreated,
  type InvitationList,
  type InviteMemberRequest,
  type JoinMeetingRequest,
  type JoinTicket,
  type MeetingPreview,
  type PushKey,
  type PushSubscriptionRequest,
  type MeetingPreviewRequest,
  type LoginRequest,
  type LoginResponse,
  type MeResponse,
  type Meeting,
  type MeetingBanList,
  type MeetingList,
  type MeetingSettingsRequest,
  type MemberList,
  type OrgPolicy,
  type OrgPolicyUpdate,
  type OrgRole,
  type Passkey,
  type PasskeyChallenge,
  type PasskeyList,
  type PasskeyResponse,
  type Problem,
  type ProblemCode,
  type RecoveryCodesResponse,
  type RegisterPasskeyRequest,
  type RenamePasskeyRequest,
  type ReportParticipantRequest,
  type ReportReceipt,
  type AddWatchSourceRequest,
  type ConversationList,
  type ChannelList,
  type Conversation,
  type CreateConversationRequest,
  type MarkReadRequest,
  type MuteRequest,
  type AddMembersRequest,
  type SetConversationRoleRequest,
  type ConversationSettingsUpdate,
  type ConversationRole,
  type PeopleList,
  type MapScimGroupRequest,
  type PasswordResetConfirm,
  type PasswordResetRequest,
  type ProviderSignInStart,
  type ScimGroupList,
  type ScimGroupMapping,
  type ScimStatus,
  type ScimTokenCreated,
  type WatchSource,
  type WatchSourceList,
  type RiskWarningList,
  type RotatedFromWarning,
  type RotateFromWarningRequest,
  type SessionList,
  type SetupRequest,
  type SetupStatus,
  type SignInOptions,
  type SignupRequest,
  type StartProviderSignInRequest,
  type TotpConfirmRequest,
  type TotpEnrollResponse,
  type UpdateIdentityProviderRequest,
} from "./generated/protocol";

export class ApiError extends Error {
  constructor(
    public status: number,
    /// Empty when the response had no body (a proxy's error page, say).
    public problem: Partial<Problem>,
  ) {
    super(problem.detail || problem.title || `HTTP ${status}`);
  }

  /// The code at the end of the problem's `type`, which says what went wrong.
  get code(): ProblemCode | null {
    const type = this.problem.type;
    return type?.startsWith(PROBLEM_BASE) ? (type.slice(PROBLEM_BASE.length) as ProblemCode) : null;
  }
}

/// What to tell a person about a failed request: each refused field with
/// its reason when the server listed them, else the problem's detail.
export function describeError(err: unknown): string {
  const fields = err instanceof ApiError ? err.problem.errors : undefined;
  const details = fields?.map((f) => `${f.field}: ${f.message}`).join("; ");
  return details || (err instanceof Error ? err.message : String(err));
}

const CSRF_KEY = "conclave.csrf";

export function setCsrf(token: string | null) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

/// The session's CSRF token, for the worker that calls the API itself.
export function csrfToken(): string {
  return sessionStorage.getItem(CSRF_KEY) ?? "";
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

// Request bodies are checked against the generated types with `satisfies`,
// so a misspelt or missing field fails to compile.
export const api = {
  /// The second factor, when asked for, is one of: a code, a recovery
  /// code, or a passkey's answer to the challenge the first attempt gave.
  login: (email: string, password: string, totp_code?: string, recovery_code?: string, passkey?: PasskeyResponse) =>
    call<LoginResponse>("POST", "/auth/login", {
      email,
      password,
      totp_code: totp_code || null,
      recovery_code: recovery_code || null,
      passkey: passkey ?? null,
    } satisfies LoginRequest),
  signInOptions: (email: string) => call<SignInOptions>("GET", `/auth/sign-in-options?email=${encodeURIComponent(email)}`),
  /// Where to send the browser to sign in through a provider (a POST from
  /// this page, which another site cannot make for the browser).
  startProviderSignIn: (provider: string, login_hint: string | null) =>
    call<ProviderSignInStart>("POST", `/auth/oidc/${encodeURIComponent(provider)}/start`, { login_hint } satisfies StartProviderSignInRequest),
  passkeySignInChallenge: () => call<PasskeyChallenge>("POST", "/auth/passkey/challenge"),
  passkeySignIn: (answer: PasskeyResponse) => call<LoginResponse>("POST", "/auth/passkey", answer satisfies PasskeyResponse),
  logout: () => call<void>("POST", "/auth/logout"),
  setupStatus: () => call<SetupStatus>("GET", "/setup"),
  requestPasswordReset: (email: string) => call<void>("POST", "/auth/password-reset", { email } satisfies PasswordResetRequest),
  confirmPasswordReset: (token: string, new_password: string) =>
    call<void>("POST", "/auth/password-reset/confirm", { token, new_password } satisfies PasswordResetConfirm),
  riskWarnings: () => call<RiskWarningList>("GET", "/me/risk-warnings"),
  rotateFromWarning: (token: string) => call<RotatedFromWarning>("POST", "/risk-warnings/rotate", { token } satisfies RotateFromWarningRequest),
  bootstrap: (request: SetupRequest) => call<LoginResponse>("POST", "/setup", request satisfies SetupRequest),
  signup: (email: string, display_name: string, password: string, invite_token: string | null) =>
    call<LoginResponse>("POST", "/auth/signup", { email, display_name, password, invite_token } satisfies SignupRequest),
  report: (meeting: string, participant_token: string, participant_id: number, reason: string) =>
    call<ReportReceipt>("POST", `/meetings/${meeting}/reports`, { participant_token, participant_id, reason } satisfies ReportParticipantRequest),
  meetingBans: (meeting: string) => call<MeetingBanList>("GET", `/meetings/${meeting}/bans`),
  liftMeetingBan: (meeting: string, ban: string) => call<void>("DELETE", `/meetings/${meeting}/bans/${ban}`),
  me: () => call<MeResponse>("GET", "/me"),
  sessions: () => call<SessionList>("GET", "/me/sessions"),
  revokeSession: (id: string) => call<void>("DELETE", `/me/sessions/${id}`),
  devices: () => call<DeviceList>("GET", "/me/devices"),
  revokeDevice: (id: string) => call<void>("DELETE", `/me/devices/${id}`),
  pushKey: () => call<PushKey>("GET", "/push/key"),
  subscribePush: (device: string, endpoint: string) =>
    call<void>("PUT", `/me/devices/${device}/push`, { endpoint } satisfies PushSubscriptionRequest),
  enrollTotp: () => call<TotpEnrollResponse>("POST", "/me/totp/enroll"),
  confirmTotp: (code: string) => call<RecoveryCodesResponse>("POST", "/me/totp/confirm", { code } satisfies TotpConfirmRequest),
  passkeys: () => call<PasskeyList>("GET", "/me/passkeys"),
  passkeyRegistrationChallenge: () => call<PasskeyChallenge>("POST", "/me/passkeys/challenge"),
  registerPasskey: (request: RegisterPasskeyRequest) => call<Passkey>("POST", "/me/passkeys", request satisfies RegisterPasskeyRequest),
  renamePasskey: (id: string, name: string) => call<void>("PATCH", `/me/passkeys/${id}`, { name } satisfies RenamePasskeyRequest),
  removePasskey: (id: string) => call<void>("DELETE", `/me/passkeys/${id}`),
  meetings: () => call<MeetingList>("GET", "/meetings"),
  createMeeting: (title: string, scheduled_start_ms: number | null, settings: MeetingSettingsRequest, passcode?: string, invitees: string[] = []) =>
    call<Meeting>("POST", "/meetings", {
      title,
      scheduled_start_ms,
      duration_minutes: null,
      passcode: passcode || null,
      settings,
      invitees,
    } satisfies CreateMeetingRequest),
  rotateMeeting: (id: string) => call<Meeting>("POST", `/meetings/${id}/rotate`),
  deleteMeeting: (id: string) => call<void>("DELETE", `/meetings/${id}`),
  meetingPreview: (link_secret: string) => call<MeetingPreview>("POST", "/meetings/preview", { link_secret } satisfies MeetingPreviewRequest),
  join: (link_secret: string | null, display_name: string, passcode: string | null, code: string | null) =>
    call<JoinTicket>("POST", "/meetings/join", { link_secret, code, passcode, display_name } satisfies JoinMeetingRequest),
  policy: (org: string) => call<OrgPolicy>("GET", `/orgs/${org}/policy`),
  updatePolicy: (org: string, update: OrgPolicyUpdate) => call<OrgPolicy>("PATCH", `/orgs/${org}/policy`, update),
  members: (org: string) => call<MemberList>("GET", `/orgs/${org}/members`),
  invite: (org: string, email: string, role: OrgRole) =>
    call<InvitationCreated>("POST", `/orgs/${org}/invitations`, { email, role } satisfies InviteMemberRequest),
  invitations: (org: string) => call<InvitationList>("GET", `/orgs/${org}/invitations`),
  audit: (org: string) => call<AuditEventPage>("GET", `/orgs/${org}/audit`),
  identityProviders: (org: string) => call<IdentityProviderList>("GET", `/orgs/${org}/identity-providers`),
  connectIdentityProvider: (org: string, request: CreateIdentityProviderRequest) =>
    call<IdentityProvider>("POST", `/orgs/${org}/identity-providers`, request satisfies CreateIdentityProviderRequest),
  updateIdentityProvider: (org: string, id: string, update: UpdateIdentityProviderRequest) =>
    call<IdentityProvider>("PATCH", `/orgs/${org}/identity-providers/${id}`, update satisfies UpdateIdentityProviderRequest),
  removeIdentityProvider: (org: string, id: string) => call<void>("DELETE", `/orgs/${org}/identity-providers/${id}`),
  scimStatus: (org: string) => call<ScimStatus>("GET", `/orgs/${org}/scim`),
  createScimToken: (org: string) => call<ScimTokenCreated>("POST", `/orgs/${org}/scim/token`),
  revokeScimToken: (org: string) => call<void>("DELETE", `/orgs/${org}/scim/token`),
  scimGroups: (org: string) => call<ScimGroupList>("GET", `/orgs/${org}/scim/groups`),
  mapScimGroup: (org: string, group: string, mapping: MapScimGroupRequest) =>
    call<ScimGroupMapping>("PUT", `/orgs/${org}/scim/groups/${group}`, mapping satisfies MapScimGroupRequest),
  watchSources: (org: string) => call<WatchSourceList>("GET", `/orgs/${org}/watch-sources`),
  addWatchSource: (org: string, url: string) => call<WatchSource>("POST", `/orgs/${org}/watch-sources`, { url } satisfies AddWatchSourceRequest),
  removeWatchSource: (org: string, id: string) => call<void>("DELETE", `/orgs/${org}/watch-sources/${id}`),
  conversations: () => call<ConversationList>("GET", "/conversations"),
  conversation: (id: string) => call<Conversation>("GET", `/conversations/${id}`),
  createConversation: (request: CreateConversationRequest) =>
    call<Conversation>("POST", "/conversations", request satisfies CreateConversationRequest),
  joinConversation: (id: string) => call<Conversation>("POST", `/conversations/${id}/join`),
  markRead: (id: string, seq: number) => call<void>("PUT", `/conversations/${id}/read`, { seq } satisfies MarkReadRequest),
  deleteMessage: (id: string, seq: number) => call<void>("DELETE", `/conversations/${id}/messages/${seq}`),
  startCall: (id: string) => call<Meeting>("POST", `/conversations/${id}/calls`),
  muteConversation: (id: string, muted: boolean) => call<void>("PUT", `/conversations/${id}/mute`, { muted } satisfies MuteRequest),
  addConversationMembers: (id: string, user_ids: string[]) =>
    call<Conversation>("POST", `/conversations/${id}/members`, { user_ids } satisfies AddMembersRequest),
  /// Removes a member; the caller's own id leaves.
  removeConversationMember: (id: string, user: string) => call<void>("DELETE", `/conversations/${id}/members/${user}`),
  setConversationRole: (id: string, user: string, role: ConversationRole) =>
    call<Conversation>("PUT", `/conversations/${id}/members/${user}/role`, { role } satisfies SetConversationRoleRequest),
  updateConversation: (id: string, update: ConversationSettingsUpdate) =>
    call<Conversation>("PATCH", `/conversations/${id}`, update satisfies ConversationSettingsUpdate),
  people: (query: string) => call<PeopleList>("GET", `/people?q=${encodeURIComponent(query)}`),
  channels: () => call<ChannelList>("GET", "/channels"),
  qualitySummaries: (org: string) => call<QualitySummaryList>("GET", `/orgs/${org}/quality`),
  meetingQuality: (org: string, meeting: string) => call<MeetingQuality>("GET", `/orgs/${org}/meetings/${meeting}/quality`),
};
