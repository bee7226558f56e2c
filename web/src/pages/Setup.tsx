import { useState } from "react";
import { api, describeError, setCsrf } from "../api";
import { MAX_DISPLAY_NAME_CHARS, type User } from "../generated/protocol";

/// A fresh server's first page: the first organisation and its owner. The
/// one-time token printed on the server's console proves the person at the
/// keyboard runs the server, so a stranger who reaches the port first
/// cannot take it.
export function Setup(props: { onSignedIn: (user: User, next: "/" | "/admin") => void }) {
  const [token, setToken] = useState("");
  const [org, setOrg] = useState("");
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [owner, setOwner] = useState<User | null>(null);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const response = await api.bootstrap({
        setup_token: token.trim(),
        org_name: org,
        display_name: name,
        email,
        password,
      });
      setCsrf(response.csrf_token);
      setOwner(response.user);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  if (owner) {
    return (
      <main className="center narrow">
        <h1>Your organisation is ready</h1>
        <p>
          You are its owner, signed in. If your organisation runs an identity provider (Okta, Microsoft Entra ID, Keycloak…),
          connect it now so that it creates your people's accounts and closes them when they leave; or do it later from the
          Organisation page.
        </p>
        <button onClick={() => props.onSignedIn(owner, "/admin")}>Connect an identity provider</button>{" "}
        <button onClick={() => props.onSignedIn(owner, "/")}>Go to the app</button>
      </main>
    );
  }

  return (
    <main className="center narrow">
      <h1>Set up Conclave</h1>
      <p>
        This server has no organisation yet. Create the first one and its owner's account. The setup token is in the
        server's console, printed when it started.
      </p>
      <form onSubmit={submit} aria-label="Set up">
        <label>
          Setup token
          <input value={token} onChange={(e) => setToken(e.target.value)} required autoComplete="off" spellCheck={false} placeholder="setup_…" />
        </label>
        <label>
          Organisation name
          <input value={org} onChange={(e) => setOrg(e.target.value)} required autoComplete="organization" />
        </label>
        <label>
          Your name
          <input autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={MAX_DISPLAY_NAME_CHARS} />
        </label>
        <label>
          Email
          <input type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} required />
        </label>
        <label>
          Password (a long passphrase; common passwords are refused)
          <input type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} required minLength={10} />
        </label>
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          Create organisation
        </button>
      </form>
    </main>
  );
}
