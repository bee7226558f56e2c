import { useState } from "react";
import { api, describeError, setCsrf } from "../api";
import { MAX_DISPLAY_NAME_CHARS, type User } from "../generated/protocol";

/// Creating an account from an invitation link (`/signup?invite=…`), or
/// openly when the server allows it.
export function SignUp(props: { invite: string | null; onSignedIn: (user: User, mustEnrol: boolean) => void }) {
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const response = await api.signup(email, name, password, props.invite);
      setCsrf(response.csrf_token);
      props.onSignedIn(response.user, response.two_factor_enrollment_required);
    } catch (err) {
      setError(describeError(err));
    }
  };
  return (
    <main className="center narrow">
      <h1>Create your Conclave account</h1>
      {props.invite ? <p>You were invited to join an organisation.</p> : null}
      <form onSubmit={submit} aria-label="Sign up">
        <label>
          Email
          <input type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} required />
        </label>
        <label>
          Your name
          <input autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={MAX_DISPLAY_NAME_CHARS} />
        </label>
        <label>
          Password (a long passphrase; common passwords are refused)
          <input type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} required minLength={12} />
        </label>
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit">Create account</button>
      </form>
    </main>
  );
}
