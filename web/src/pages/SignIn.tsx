import { useState } from "react";
import { api, ApiError, describeError, setCsrf } from "../api";
import type { User } from "../generated/protocol";

/// Email and password, then, when the account has 2FA, the code from the
/// authenticator app (or a recovery code).
export function SignIn(props: { onSignedIn: (user: User, mustEnrol: boolean) => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [needsCode, setNeedsCode] = useState(false);
  const [useRecovery, setUseRecovery] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [resetNote, setResetNote] = useState<string | null>(null);

  // Asked the same whether or not the address has an account: the answer
  // never says which.
  const forgot = async () => {
    setError(null);
    if (!email) {
      setError("Enter your email first; a link to choose a new password is sent there.");
      return;
    }
    try {
      await api.requestPasswordReset(email);
      setResetNote(`If ${email} has an account, a link to choose a new password is on its way. It works once, for half an hour.`);
    } catch (err) {
      setError(describeError(err));
    }
  };

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const response = await api.login(email, password, useRecovery ? undefined : code, useRecovery ? code : undefined);
      setCsrf(response.csrf_token);
      props.onSignedIn(response.user, response.two_factor_enrollment_required);
    } catch (err) {
      if (err instanceof ApiError && err.code === "totp-required") {
        setNeedsCode(true);
      } else {
        setError(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="center narrow">
      <h1>Sign in to Conclave</h1>
      <form onSubmit={submit} aria-label="Sign in">
        {!needsCode ? (
          <>
            <label>
              Email
              <input type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} required />
            </label>
            <label>
              Password
              <input type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
            </label>
          </>
        ) : (
          <>
            <p>{useRecovery ? "Enter one of your recovery codes." : "Enter the 6-digit code from your authenticator app."}</p>
            <label>
              {useRecovery ? "Recovery code" : "Code"}
              <input
                inputMode={useRecovery ? "text" : "numeric"}
                autoComplete="one-time-code"
                value={code}
                onChange={(e) => setCode(e.target.value)}
                required
                autoFocus
              />
            </label>
            <button type="button" className="link" onClick={() => setUseRecovery(!useRecovery)}>
              {useRecovery ? "Use the authenticator code" : "Use a recovery code instead"}
            </button>
          </>
        )}
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          {needsCode ? "Verify" : "Sign in"}
        </button>
        {!needsCode ? (
          <button type="button" className="link" onClick={() => void forgot()}>
            Forgot your password?
          </button>
        ) : null}
      </form>
      {resetNote ? <p role="status">{resetNote}</p> : null}
      <p>
        Have a meeting link? Open it to join as a guest. Have a code? <a href="/join">Join with a code</a>.
      </p>
    </main>
  );
}
