import { useEffect, useState } from "react";
import { api } from "../api";
import { CallQuality } from "./CallQuality";
import { Passkeys } from "./Passkeys";
import { IdentityProvider, OpenIdProviders, WatchedSources } from "./Provisioning";
import { AUDIT_ACTION_DESCRIPTIONS } from "../generated/protocol";
import { describeUserAgent, formatWhen } from "../format";
import type { AuditEvent, Device, Invitation, OrgPolicy, OrgPolicyUpdate, SessionInfo, TotpEnrollResponse, User } from "../generated/protocol";

/// The policies that are on or off, each shown as a checkbox.
type SwitchPolicy = { [K in keyof OrgPolicy]: OrgPolicy[K]["value"] extends boolean ? K : never }[keyof OrgPolicy];

const POLICY_LABELS: Record<SwitchPolicy, string> = {
  waiting_room: "Waiting room on",
  passcode_required: "Passcode required",
  chat_allowed: "In-meeting chat allowed",
  cloud_recording_allowed: "Cloud recording allowed",
  require_2fa: "Two-factor authentication required",
  unencrypted_channels: "Channels without end-to-end encryption allowed",
  external_conversations: "Conversations with people of other organisations allowed",
  history_for_newcomers: "People joining a conversation see its earlier history",
  guest_access: "Members may invite guests from outside into groups and channels",
  provider_only_sign_in: "Members sign in only through the identity provider (owners keep their password)",
  require_phishing_resistant: "A passkey, not an authenticator app's code, required after the password",
};

/// Organisation administration: policies (each with a lock), members,
/// invitations and the audit log.
export function Admin(props: { user: User }) {
  const org = props.user.org_id!;
  const [policy, setPolicy] = useState<OrgPolicy | null>(null);
  const [members, setMembers] = useState<User[]>([]);
  const [audit, setAudit] = useState<AuditEvent[]>([]);
  const [email, setEmail] = useState("");
  const [invitations, setInvitations] = useState<Invitation[]>([]);
  const [inviteUrl, setInviteUrl] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [channels, setChannels] = useState<{ id: string; name: string }[]>([]);

  useEffect(() => {
    api.policy(org).then(setPolicy, (e) => setMessage(e.message));
    api.conversations().then(
      (r) => setChannels(r.conversations.filter((c) => c.kind === "channel").map((c) => ({ id: c.id, name: c.name ?? c.id }))),
      () => undefined,
    );
    api.members(org).then((r) => setMembers(r.members), () => undefined);
    api.audit(org).then((r) => setAudit(r.events), () => undefined);
    api.invitations(org).then((r) => setInvitations(r.invitations), () => undefined);
  }, [org]);

  const change = async (key: SwitchPolicy, value: boolean, locked: boolean) => {
    const update: OrgPolicyUpdate = {};
    update[key] = { value, locked };
    try {
      setPolicy(await api.updatePolicy(org, update));
      setMessage("Saved.");
    } catch (e) {
      setMessage(e instanceof Error ? e.message : String(e));
    }
  };
  const invite = async (e: React.FormEvent) => {
    e.preventDefault();
    try {
      const created = await api.invite(org, email, "member");
      setMessage(`Invitation created for ${email}. Send them this link:`);
      setInviteUrl(created.invite_url);
      setInvitations([created.invitation, ...invitations]);
      setEmail("");
    } catch (err) {
      setMessage(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <main className="admin">
      <h1>Organisation</h1>
      {message ? <p role="status">{message}</p> : null}
      {inviteUrl ? <p><code className="invite-url">{inviteUrl}</code></p> : null}
      <section aria-label="Policies">
        <h2>Policies</h2>
        <table>
          <thead>
            <tr>
              <th scope="col">Setting</th>
              <th scope="col">Value</th>
              <th scope="col">Locked for hosts</th>
            </tr>
          </thead>
          <tbody>
            {policy
              ? (Object.entries(POLICY_LABELS) as [SwitchPolicy, string][]).map(([key, label]) => (
                  <tr key={key}>
                    <th scope="row">{label}</th>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={label}
                        checked={policy[key].value}
                        onChange={(e) => void change(key, e.target.checked, policy[key].locked)}
                      />
                    </td>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`Lock: ${label}`}
                        checked={policy[key].locked}
                        onChange={(e) => void change(key, policy[key].value, e.target.checked)}
                      />
                    </td>
                  </tr>
                ))
              : null}
          </tbody>
        </table>
      </section>
      <section aria-label="Members">
        <h2>Members</h2>
        <ul>
          {members.map((m) => (
            <li key={m.id}>
              {m.display_name} · {m.email} · {m.role} · {m.status}
              {m.two_factor_enabled ? " · 2FA" : ""}
            </li>
          ))}
        </ul>
        <h3>Invitations</h3>
        <ul>
          {invitations.map((i) => (
            <li key={i.id}>
              {i.email} · {i.role} · {i.accepted ? "accepted" : `open until ${new Date(i.expires_at_ms).toLocaleDateString()}`}
            </li>
          ))}
        </ul>
        <form onSubmit={invite} aria-label="Invite a member">
          <label>
            Invite by email <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} required />
          </label>
          <button type="submit">Invite</button>
        </form>
      </section>
      <IdentityProvider org={org} channels={channels} />
      <OpenIdProviders org={org} owner={props.user.role === "owner"} />
      <WatchedSources org={org} />
      <CallQuality org={org} />
      <section aria-label="Audit log">
        <h2>Audit log</h2>
        {/* Wide tables scroll within their own box, not the page. */}
        <div className="table-scroll" tabIndex={0} role="region" aria-label="Audit log entries">
        <table className="audit">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Action</th>
              <th scope="col">Outcome</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {audit.map((a) => (
              <tr key={a.seq}>
                <td>{formatWhen(a.at_ms)}</td>
                <td title={a.action}>{AUDIT_ACTION_DESCRIPTIONS[a.action] ?? a.action}</td>
                <td>{a.outcome}</td>
                <td>{a.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
        </div>
      </section>
    </main>
  );
}

/// Whether the organisation's policy on factors holds back this session:
/// nothing but enrolling works until it is met.
export type Enrolment =
  | "none"
  /// A second factor must be added.
  | "enrol"
  /// One was added, but the organisation requires signing in with a
  /// passkey, which this session (signed in with the password) did not.
  | "sign-in-again";

/// The account: two-factor enrolment (an authenticator app, passkeys),
/// signed-in sessions (revocable) and encryption devices (revocable).
export function Account(props: { enrolment: Enrolment; onEnrolled: () => void }) {
  const [sessions, setSessions] = useState<SessionInfo[]>([]);
  const [devices, setDevices] = useState<Device[]>([]);
  const [enrolment, setEnrolment] = useState<TotpEnrollResponse | null>(null);
  const [code, setCode] = useState("");
  const [codes, setCodes] = useState<string[] | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const load = () => api.sessions().then((r) => setSessions(r.sessions), () => undefined);
  const loadDevices = () => api.devices().then((r) => setDevices(r.devices), () => undefined);
  useEffect(() => {
    void load();
    void loadDevices();
  }, []);
  const revokeDevice = (d: Device) => {
    if (!confirm(`Revoke "${d.name}"? It will not be able to join encrypted meetings as you until it is set up again.`)) return;
    api.revokeDevice(d.id).then(loadDevices, (e) => setMessage(e.message));
  };
  return (
    <main className="account">
      <h1>Your account</h1>
      {message ? <p role="status">{message}</p> : null}
      {props.enrolment === "enrol" ? (
        <p role="alert" className="error">
          Your organisation requires a second factor: add a passkey (or, where it allows one, set up an authenticator app)
          before anything else.
        </p>
      ) : props.enrolment === "sign-in-again" ? (
        <p role="alert" className="error">
          Your organisation requires signing in with a passkey: sign out, then sign in again and use the passkey you added.
        </p>
      ) : null}
      <section aria-label="Two-factor authentication">
        <h2>Two-factor authentication</h2>
        {codes ? (
          <>
            <p>Keep these recovery codes somewhere safe; each works once.</p>
            <ul className="codes">{codes.map((c) => <li key={c}>{c}</li>)}</ul>
          </>
        ) : enrolment ? (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              api.confirmTotp(code).then(
                (r) => {
                  setCodes(r.recovery_codes);
                  props.onEnrolled();
                },
                (err) => setMessage(err.message),
              );
            }}
          >
            <p>Add this key to your authenticator app: <code>{enrolment.secret}</code></p>
            <label>
              Code <input value={code} onChange={(e) => setCode(e.target.value)} inputMode="numeric" required />
            </label>
            <button type="submit">Turn on</button>
          </form>
        ) : (
          <button onClick={() => api.enrollTotp().then(setEnrolment, (e) => setMessage(e.message))}>Set up an authenticator app</button>
        )}
      </section>
      <Passkeys onAdded={props.onEnrolled} />
      <section aria-label="Sessions">
        <h2>Signed-in sessions</h2>
        <ul>
          {sessions.map((s) => (
            <li key={s.id}>
              <span title={s.user_agent ?? undefined}>{describeUserAgent(s.user_agent)}</span> ·{" "}
              {s.kind === "login" ? "signed in" : `access token${s.name ? ` “${s.name}”` : ""}`} · {s.ip ?? ""} · last seen{" "}
              {formatWhen(s.last_seen_at_ms)}
              {s.current ? " (this one)" : (
                <button onClick={() => api.revokeSession(s.id).then(load)}>Sign out</button>
              )}
            </li>
          ))}
        </ul>
      </section>
      <section aria-label="Devices">
        <h2>Encryption devices</h2>
        <p>
          Each browser or app that has joined an end-to-end encrypted meeting as you holds its own key. Others see a
          warning when a key they have not seen before speaks for you. Compare a fingerprint with the one the device shows
          in a meeting's security panel; revoke any you do not recognise.
        </p>
        {devices.length === 0 ? <p>No devices yet.</p> : (
          <ul>
            {devices.map((d) => (
              <li key={d.id}>
                {d.name} · <code>{d.fingerprint}</code> · added {new Date(d.created_at_ms).toLocaleDateString()} · last used{" "}
                {formatWhen(d.last_used_at_ms)}
                <button onClick={() => revokeDevice(d)}>Revoke</button>
              </li>
            ))}
          </ul>
        )}
      </section>
    </main>
  );
}
