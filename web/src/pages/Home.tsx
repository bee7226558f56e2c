import { useEffect, useState } from "react";
import { api, describeError } from "../api";
import type { Meeting, MeetingBan, RiskWarning, User } from "../generated/protocol";
import { formatWhen } from "../format";

/// The signed-in home: meetings to start or copy, a new instant or
/// scheduled meeting, and the invite link of each.
export function Home(props: { user: User; navigate: (path: string) => void }) {
  const [meetings, setMeetings] = useState<Meeting[]>([]);
  const [title, setTitle] = useState("");
  const [when, setWhen] = useState("");
  const [passcode, setPasscode] = useState("");
  const [invitees, setInvitees] = useState("");
  const [e2ee, setE2ee] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState<string | null>(null);

  const [warnings, setWarnings] = useState<RiskWarning[]>([]);
  const load = () => api.meetings().then((r) => setMeetings(r.meetings), (e) => setError(String(e.message ?? e)));
  useEffect(() => {
    void load();
    api.riskWarnings().then((r) => setWarnings(r.warnings.filter((w) => !w.resolved)), () => undefined);
  }, []);

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const start = when ? new Date(when).getTime() : null;
      const addresses = invitees.split(/[\s,;]+/).filter((a) => a.length > 0);
      const meeting = await api.createMeeting(title || "Meeting", start, { e2ee }, passcode, addresses);
      setTitle("");
      setWhen("");
      setPasscode("");
      setInvitees("");
      setMeetings([meeting, ...meetings]);
    } catch (err) {
      setError(describeError(err));
    }
  };
  const copy = async (m: Meeting) => {
    const text = `${m.title}\n${m.invite_url}\nMeeting code: ${m.code}${m.passcode ? `\nPasscode: ${m.passcode}` : ""}`;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      /* the clipboard may be unavailable; the link is shown anyway */
    }
    setCopied(m.id);
  };
  const rotate = async (m: Meeting) => {
    const fresh = await api.rotateMeeting(m.id);
    setMeetings(meetings.map((x) => (x.id === m.id ? fresh : x)));
    setWarnings(warnings.filter((w) => w.meeting_id !== m.id));
  };

  return (
    <main className="home">
      <h1>Meetings</h1>
      {warnings.length > 0 ? (
        <section className="warnings" aria-label="Meetings at risk">
          {warnings.map((w) => {
            const m = meetings.find((x) => x.id === w.meeting_id);
            return (
              <div key={w.id} className="error" role="alert">
                <p>
                  “{m?.title ?? "A meeting"}” was posted in public (<a href={w.post_url} rel="noreferrer noopener">{w.post_url}</a>): {w.reasons.join("; ")}.
                </p>
                {m ? <button onClick={() => void rotate(m)}>Rotate its link and code</button> : null}
              </div>
            );
          })}
        </section>
      ) : null}
      <p>
        <a href="/join" onClick={(e) => { e.preventDefault(); props.navigate("/join"); }}>Join a meeting with a code</a>
      </p>
      <form onSubmit={create} className="new-meeting" aria-label="New meeting">
        <label>
          Title
          <input value={title} onChange={(e) => setTitle(e.target.value)} placeholder="Weekly sync" />
        </label>
        <label>
          Starts (leave empty to start now)
          <input type="datetime-local" value={when} onChange={(e) => setWhen(e.target.value)} />
        </label>
        {when ? (
          <label>
            Invite by email (a calendar invitation each; separate addresses with commas)
            <input type="text" inputMode="email" value={invitees} onChange={(e) => setInvitees(e.target.value)} placeholder="grace@example.org, bob@example.org" />
          </label>
        ) : null}
        <label>
          Passcode (optional)
          <input value={passcode} onChange={(e) => setPasscode(e.target.value)} minLength={6} maxLength={32} />
        </label>
        <label className="check">
          <input type="checkbox" checked={e2ee} onChange={(e) => setE2ee(e.target.checked)} /> End-to-end encryption (turns off cloud
          recording, dial-in and server transcription)
        </label>
        <button type="submit">{when ? "Schedule" : "New meeting"}</button>
      </form>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : null}
      <ul className="meetings">
        {meetings.map((m) => (
          <li key={m.id} data-meeting={m.id}>
            <h2>{m.title}</h2>
            <p>
              {m.scheduled_start_ms ? formatWhen(m.scheduled_start_ms) : "Instant meeting"} · code {m.code}
              {m.settings.waiting_room ? " · waiting room on" : ""}
              {m.settings.e2ee ? " · end-to-end encrypted" : ""} · <HostKey value={m.host_key} />
            </p>
            <button onClick={() => props.navigate(new URL(m.invite_url).pathname)}>Start</button>{" "}
            <button onClick={() => void copy(m)} title="The link, the code and the passcode, to paste into an invitation">
              {copied === m.id ? "Copied" : "Copy invite"}
            </button>{" "}
            <button onClick={() => void rotate(m)} title="A new link and code; the old ones stop working">
              New link
            </button>{" "}
            <Bans meeting={m} />
          </li>
        ))}
      </ul>
      {meetings.length === 0 ? <p>No meetings yet.</p> : null}
    </main>
  );
}

/// A meeting's host key, hidden until asked for: whoever types it is a host,
/// and a home page shown on a shared screen would give it to everyone.
function HostKey(props: { value: string }) {
  const [shown, setShown] = useState(false);
  return (
    <>
      host key <span className="host-key">{shown ? props.value : "••••••"}</span>{" "}
      <button type="button" className="link" onClick={() => setShown(!shown)} aria-pressed={shown} aria-label={shown ? "Hide the host key" : "Show the host key"}>
        {shown ? "Hide" : "Show"}
      </button>
    </>
  );
}

/// The people removed from a meeting, for its owner (or an admin) to read
/// and, if it was a mistake, let back in through the waiting room.
function Bans(props: { meeting: Meeting }) {
  const [bans, setBans] = useState<MeetingBan[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () =>
    api.meetingBans(props.meeting.id).then(
      (r) => setBans(r.bans),
      (e) => setError(String(e.message ?? e)),
    );
  const lift = async (ban: MeetingBan) => {
    try {
      await api.liftMeetingBan(props.meeting.id, ban.id);
      await load();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  if (bans === null) {
    return <button onClick={() => void load()}>Removed people</button>;
  }
  return (
    <section aria-label={`Removed from ${props.meeting.title}`}>
      {error ? <p className="error" role="alert">{error}</p> : null}
      {bans.length === 0 ? (
        <p>Nobody has been removed from this meeting.</p>
      ) : (
        <ul className="bans">
          {bans.map((b) => (
            <li key={b.id} data-ban={b.id}>
              {b.display_name} {b.user_id ? "(signed in)" : "(guest)"}, removed by {b.removed_by || "a host"} on{" "}
              {formatWhen(b.at_ms)}{" "}
              <button onClick={() => void lift(b)} aria-label={`Let ${b.display_name} back in`}>
                Let back in
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
