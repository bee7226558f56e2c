import { useEffect, useState } from "react";
import { api, ApiError, describeError } from "../api";
import type { IdentityProvider as OpenIdProvider, ScimGroupMapping, ScimStatus, WatchSource } from "../generated/protocol";

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

/// The organisation's OpenID Connect providers: its people sign in through
/// them (a button on the sign-in page once they type an address in one of
/// the provider's domains). The client secret is sent once and never shown.
/// Only owners connect, change or remove one: whoever controls a provider
/// can sign in as anyone of the organisation it names.
export function OpenIdProviders(props: { org: string; owner: boolean }) {
  const [providers, setProviders] = useState<OpenIdProvider[]>([]);
  const [shortName, setShortName] = useState("");
  const [name, setName] = useState("");
  const [issuer, setIssuer] = useState("");
  const [clientId, setClientId] = useState("");
  const [clientSecret, setClientSecret] = useState("");
  const [domains, setDomains] = useState("");
  const [createAccounts, setCreateAccounts] = useState(false);
  const [connected, setConnected] = useState<OpenIdProvider | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api.identityProviders(props.org).then((r) => setProviders(r.providers), (e) => setError(describeError(e)));
  }, [props.org]);

  const failed = (err: unknown) => {
    setStatus(null);
    // The server reads the issuer's discovery document before saving
    // anything: a wrong URL fails here, not at someone's first sign-in.
    if (err instanceof ApiError && err.code === "provider-unavailable") {
      setError(`The issuer's discovery document could not be read, so nothing was saved: check the issuer URL. (${describeError(err)})`);
    } else {
      setError(describeError(err));
    }
  };

  const connect = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      const made = await api.connectIdentityProvider(props.org, {
        id: shortName.trim(),
        name: name.trim(),
        issuer: issuer.trim(),
        client_id: clientId.trim(),
        client_secret: clientSecret,
        allowed_domains: domains.split(/[\s,;]+/).filter((d) => d.length > 0),
        create_accounts: createAccounts,
      });
      setProviders([...providers, made]);
      setConnected(made);
      setShortName("");
      setName("");
      setIssuer("");
      setClientId("");
      setClientSecret("");
      setDomains("");
      setCreateAccounts(false);
    } catch (err) {
      failed(err);
    } finally {
      setBusy(false);
    }
  };
  const setCreates = async (p: OpenIdProvider, creates: boolean) => {
    try {
      const changed = await api.updateIdentityProvider(props.org, p.id, { create_accounts: creates });
      setProviders(providers.map((x) => (x.id === changed.id ? changed : x)));
      setError(null);
      setStatus(`“${p.name}” saved.`);
    } catch (err) {
      failed(err);
    }
  };
  const remove = async (p: OpenIdProvider) => {
    if (!confirm(`Disconnect “${p.name}”? Its people can no longer sign in through it.`)) return;
    try {
      await api.removeIdentityProvider(props.org, p.id);
      setProviders(providers.filter((x) => x.id !== p.id));
      if (connected?.id === p.id) setConnected(null);
      setError(null);
      setStatus(`“${p.name}” disconnected.`);
    } catch (err) {
      failed(err);
    }
  };

  return (
    <section aria-label="Sign-in through OpenID Connect">
      <h2>Identity providers (OpenID Connect)</h2>
      <p>
        People whose address is in one of a provider's domains get a button on the sign-in page that signs them in through
        it (Okta, Microsoft Entra ID, Google Workspace, Keycloak…).
      </p>
      {connected ? (
        <p role="status">
          “{connected.name}” is connected. If you have not yet, register this redirect URI at the provider for its client:{" "}
          <code className="redirect-uri">{connected.redirect_uri}</code>
        </p>
      ) : null}
      {status ? <p role="status">{status}</p> : null}
      {error ? (
        <p role="alert" className="error">
          {error}
        </p>
      ) : null}
      {providers.length === 0 ? (
        <p>No provider connected.</p>
      ) : (
        <ul>
          {providers.map((p) => (
            <li key={p.id}>
              <strong>{p.name}</strong> · <code>{p.issuer}</code> · client <code>{p.client_id}</code> · for{" "}
              {p.allowed_domains.join(", ")}
              <br />
              Redirect URI to register at the provider: <code>{p.redirect_uri}</code>
              <label>
                <input
                  type="checkbox"
                  checked={p.create_accounts}
                  disabled={!props.owner}
                  onChange={(e) => void setCreates(p, e.target.checked)}
                />{" "}
                A first sign-in through “{p.name}” creates the account
              </label>
              {props.owner ? (
                <button aria-label={`Remove ${p.name}`} onClick={() => void remove(p)}>
                  Remove
                </button>
              ) : null}
            </li>
          ))}
        </ul>
      )}
      {props.owner ? (
        <>
          <h3>Connect a provider</h3>
          <p>
            Register Conclave at the provider as a web application with the redirect URI below, then enter what the provider
            gives you. Its discovery document is read before anything is saved.
          </p>
          <form onSubmit={connect} aria-label="Connect an OpenID provider">
            <label>
              Short name (2 to 40 of a–z, 0–9 and -; it becomes part of the redirect URI)
              <input
                value={shortName}
                onChange={(e) => setShortName(e.target.value.toLowerCase())}
                required
                minLength={2}
                maxLength={40}
                placeholder="acme"
                autoComplete="off"
                spellCheck={false}
              />
            </label>
            <p>
              Redirect URI to register at the provider:{" "}
              {/* The server's public URL is this page's origin wherever the app is used as served. */}
              <code>{`${location.origin}/api/v1/auth/oidc/${shortName.trim() || "<short name>"}/callback`}</code>
            </p>
            <label>
              Name on the sign-in button <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={64} placeholder="Acme SSO" />
            </label>
            <label>
              Issuer URL <input type="url" value={issuer} onChange={(e) => setIssuer(e.target.value)} required placeholder="https://login.example.com" />
            </label>
            <label>
              Client ID <input value={clientId} onChange={(e) => setClientId(e.target.value)} required autoComplete="off" spellCheck={false} />
            </label>
            <label>
              Client secret <input type="password" value={clientSecret} onChange={(e) => setClientSecret(e.target.value)} required autoComplete="off" />
            </label>
            <label>
              Email domains it signs in (separated by commas)
              <input value={domains} onChange={(e) => setDomains(e.target.value)} required placeholder="example.org" spellCheck={false} />
            </label>
            <label>
              <input type="checkbox" checked={createAccounts} onChange={(e) => setCreateAccounts(e.target.checked)} /> A person's
              first sign-in creates their account (otherwise only people who already have an account here sign in)
            </label>
            <button type="submit" disabled={busy}>
              Connect
            </button>
          </form>
        </>
      ) : (
        <p>Only the organisation's owners connect, change or remove identity providers.</p>
      )}
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
