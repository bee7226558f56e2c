import { useState } from "react";
import { api, describeError } from "../api";

/// The token an emailed link carries after `#` (kept out of the server's
/// logs and of the Referer header).
export function linkToken(): string {
  return decodeURIComponent(location.hash.replace(/^#/, ""));
}

/// `/reset#…`: choosing a password from an emailed link (a reset, or the
/// welcome of an account the organisation's identity provider made).
export function ChoosePassword(props: { done: () => void }) {
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await api.confirmPasswordReset(linkToken(), password);
      setSaved(true);
    } catch (err) {
      setError(describeError(err));
    }
  };
  if (saved) {
    return (
      <main className="center narrow">
        <h1>Password set</h1>
        <p>Every earlier session of your account has ended. Sign in with your new password.</p>
        <button onClick={props.done}>Sign in</button>
      </main>
    );
  }
  return (
    <main className="center narrow">
      <h1>Choose your password</h1>
      <form onSubmit={submit} aria-label="Choose your password">
        <label>
          New password (a long passphrase; common passwords are refused)
          <input type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} required minLength={10} />
        </label>
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit">Set password</button>
      </form>
    </main>
  );
}

/// `/rotate#…`: an at-risk warning's link. Rotating is one deliberate
/// click, never a side effect of opening the page (mail scanners open
/// links).
export function RotateFromWarning() {
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const rotate = async () => {
    setError(null);
    try {
      const rotated = await api.rotateFromWarning(linkToken());
      setResult(`“${rotated.title}” has a new link, code and passcode; the posted ones no longer work. Share the new link privately.`);
    } catch (err) {
      setError(describeError(err));
    }
  };
  return (
    <main className="center narrow">
      <h1>Your meeting was posted in public</h1>
      {result ? (
        <p role="status">{result}</p>
      ) : (
        <>
          <p>Rotating replaces the meeting's link, code and passcode. Anyone invited by email gets the new link.</p>
          <button onClick={() => void rotate()}>Rotate the link and code</button>
        </>
      )}
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : null}
    </main>
  );
}
