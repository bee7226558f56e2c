import { useEffect, useState } from "react";
import { api, describeError } from "../api";
import type { ScimGroupMapping, ScimStatus, WatchSource } from "../generated/protocol";

/// The organisation's identity provider (SCIM): where it provisions, its
/// token (shown once), and what each of its groups means here.
export function IdentityProvider(props: { org: string; channels: { id: string; name: string }[] }) {
  const [status, setStatus] = useState<ScimStatus | null>(null);
  const [token, setToken] = useState<string | null>(null);
  const [groups, setGroups] = useState<ScimGroupMapping[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const load = () => {
    api.scimStatus(props.org).then(setStatus, (e) => setMessage(describeError(e)));
    api.scimGroups(props.org).then((r) => setGroups(r.groups), () => undefined);
  };
  useEffect(load, [props.org]);

  const makeToken = async () => {
    try {
      const made = await api.createScimToken(props.org);
      setToken(made.token);
      load();
    } catch (e) {
      setMessage(describeError(e));
    }
  };
  const revoke = async () => {
    try {
      await api.revokeScimToken(props.org);
      setToken(null);
      load();
    } catch (e) {
      setMessage(describeError(e));
    }
  };
  const map = async (group: ScimGroupMapping, role: string, channel: string) => {
    try {
      const mapped = await api.mapScimGroup(props.org, group.id, {
        role: role === "" ? null : (role as "admin" | "member"),
        channel_id: channel === "" ? null : channel,
      });
      setGroups(groups.map((g) => (g.id === mapped.id ? mapped : g)));
      setMessage(`“${group.display_name}” saved; its members are brought in line.`);
    } catch (e) {
      setMessage(describeError(e));
    }
  };

  return (
    <section aria-label="Identity provider">
      <h2>Identity provider (SCIM)</h2>
      {message ? <p role="status">{message}</p> : null}
      <p>
        SCIM base URL: <code>{status?.base_url}</code>
      </p>
      {token ? (
        <p>
          Token, shown once — give it to your identity provider now: <code className="invite-url">{token}</code>
        </p>
      ) : null}
      <p>
        {status?.token_created_at_ms ? `A token was made ${new Date(status.token_created_at_ms).toLocaleString()}. ` : "No token yet. "}
        <button onClick={() => void makeToken()}>{status?.token_created_at_ms ? "Replace the token" : "Make a token"}</button>{" "}
        {status?.token_created_at_ms ? <button onClick={() => void revoke()}>Revoke</button> : null}
      </p>
      {groups.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th scope="col">Group</th>
              <th scope="col">Members</th>
              <th scope="col">Role it gives</th>
              <th scope="col">Team channel</th>
            </tr>
          </thead>
          <tbody>
            {groups.map((g) => (
              <tr key={g.id}>
                <td>{g.display_name}</td>
                <td>{g.member_count}</td>
                <td>
                  <select aria-label={`Role for ${g.display_name}`} value={g.role ?? ""} onChange={(e) => void map(g, e.target.value, g.channel_id ?? "")}>
                    <option value="">none</option>
                    <option value="member">member</option>
                    <option value="admin">admin</option>
                  </select>
                </td>
                <td>
                  <select aria-label={`Channel for ${g.display_name}`} value={g.channel_id ?? ""} onChange={(e) => void map(g, g.role ?? "", e.target.value)}>
                    <option value="">none</option>
                    {props.channels.map((c) => (
                      <option key={c.id} value={c.id}>
                        #{c.name}
                      </option>
                    ))}
                  </select>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

/// Public sources watched for the organisation's meetings' links.
export function WatchedSources(props: { org: string }) {
  const [sources, setSources] = useState<WatchSource[]>([]);
  const [url, setUrl] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  useEffect(() => {
    api.watchSources(props.org).then((r) => setSources(r.sources), (e) => setMessage(describeError(e)));
  }, [props.org]);
  const add = async (e: React.FormEvent) => {
    e.preventDefault();
    try {
      const added = await api.addWatchSource(props.org, url.trim());
      setSources([...sources, added]);
      setUrl("");
      setMessage(null);
    } catch (err) {
      setMessage(describeError(err));
    }
  };
  const remove = async (s: WatchSource) => {
    await api.removeWatchSource(props.org, s.id);
    setSources(sources.filter((x) => x.id !== s.id));
  };
  return (
    <section aria-label="Meetings at risk">
      <h2>Meetings at risk</h2>
      <p>
        Public feeds (RSS, Atom, JSON Feed) and Mastodon timelines watched for your meetings' links and codes. When one appears
        in public, its owner is emailed with advice and a link that rotates it.
      </p>
      {message ? <p role="alert" className="error">{message}</p> : null}
      <ul>
        {sources.map((s) => (
          <li key={s.id}>
            <code>{s.url}</code> {s.last_error ? <span className="error">({s.last_error})</span> : s.last_polled_at_ms ? `(read ${new Date(s.last_polled_at_ms).toLocaleString()})` : "(not read yet)"}{" "}
            <button onClick={() => void remove(s)}>Stop watching</button>
          </li>
        ))}
      </ul>
      <form onSubmit={add} aria-label="Watch a source">
        <label>
          Source URL <input type="url" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://mastodon.social/api/v1/timelines/tag/zoom" required />
        </label>
        <button type="submit">Watch</button>
      </form>
    </section>
  );
}
