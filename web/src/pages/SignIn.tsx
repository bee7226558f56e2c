import { useEffect, useState } from "react";
import { api, ApiError, describeError, setCsrf } from "../api";
import type { LoginResponse, PasskeyChallenge, ProviderSignInOption, SignInOptions, User } from "../generated/protocol";
import { describePasskeyError, passkeysUsable, usePasskey } from "../passkeys";

/// Why a sign-in through the identity provider came back without signing
/// anyone in, by the `sso_error` code the server's callback redirects with
/// (the full story is in the organisation's audit log).
const SSO_ERRORS: Record<string, string> = {
  "domain-not-allowed":
    "Your identity provider signed you in with an address whose domain it does not sign in here. Use your organisation's account at the provider, or ask an administrator to allow your domain.",
  "email-not-verified":
    "Your identity provider has not verified your email address, so it cannot be matched to an account here. Verify the address at the provider, or ask an administrator.",
  "other-organisation": "An account with your address belongs to another organisation on this server. Sign in to it the way that organisation does.",
  "no-account": "There is no account here for your address, and your organisation's provider does not create one. Ask an administrator to invite you.",
  "account-disabled": "Your account is disabled. Ask an administrator of your organisation.",
  "no-email": "Your identity provider did not share your email address, so nobody was signed in. Ask an administrator to have it share the address.",
  "invalid-token": "The identity provider's answer could not be trusted, so nobody was signed in. Try again; if it happens again, tell an administrator.",
  "provider-refused": "The identity provider did not sign you in (perhaps the sign-in was cancelled). Try again.",
  "provider-unavailable": "The identity provider could not be reached. Try again in a moment, or sign in another way.",
  "sign-in-expired": "That sign-in took too long, or finished in another browser. Start again.",
  "too-many-requests": "Too many sign-in attempts came from your network. Wait a minute, then try again.",
  internal: "Something went wrong on the server while signing you in. Try again; if it happens again, tell an administrator.",
};

/// The provider's sign-in refusal carried in this page's address, if any.
function ssoErrorFromAddress(): string | null {
  const code = new URLSearchParams(location.search).get("sso_error");
  if (!code) return null;
  return SSO_ERRORS[code] ?? `Signing in through your identity provider did not work (${code}). Try again.`;
}

/// What the second-factor step offers: the code field, and the passkey when
/// the account has one (the challenge it must answer).
type SecondFactor = {
  passkey: PasskeyChallenge | null;
  /// The organisation takes a passkey (or a recovery code), not an app's code.
  passkeyOnly: boolean;
};

/// Email and password, then, when the account has 2FA, the code from the
/// authenticator app, a recovery code or a passkey. Or a passkey alone, or
/// the organisation's identity provider, offered once the email is typed.
export function SignIn(props: { onSignedIn: (user: User, mustEnrol: boolean) => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [secondFactor, setSecondFactor] = useState<SecondFactor | null>(null);
  const [useRecovery, setUseRecovery] = useState(false);
  const [error, setError] = useState<string | null>(ssoErrorFromAddress);
  const [busy, setBusy] = useState(false);
  const [resetNote, setResetNote] = useState<string | null>(null);
  // The sign-in options and the address they were looked up for; shown
  // only while the email field still holds that address.
  const [options, setOptions] = useState<{ email: string; options: SignInOptions } | null>(null);
  const canUsePasskeys = passkeysUsable();

  // The provider's refusal is shown once: a reload or a bookmark of this
  // address must not show it again.
  useEffect(() => {
    const url = new URL(location.href);
    if (!url.searchParams.has("sso_error")) return;
    url.searchParams.delete("sso_error");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }, []);

  const current = options && options.email === email.trim() ? options.options : null;
  const providers = current?.providers ?? [];

  // Which providers sign in this address's domain: asked once the address
  // is typed (on leaving the field), not at every keystroke.
  const lookUpOptions = async () => {
    const address = email.trim();
    if (!address.includes("@") || options?.email === address) return;
    try {
      setOptions({ email: address, options: await api.signInOptions(address) });
    } catch {
      // The password form works without them.
    }
  };

  // The server binds the sign-in to this browser (a cookie) and answers with
  // the provider's page, which the whole window goes to; the provider sends
  // it back to the server, which lands it here, signed in or told why not.
  const startProviderSignIn = async (provider: ProviderSignInOption) => {
    setBusy(true);
    setError(null);
    try {
      const { url } = await api.startProviderSignIn(provider.provider_id, email.trim() || null);
      location.assign(url);
    } catch (err) {
      setError(err instanceof ApiError && err.code === "provider-unavailable" ? SSO_ERRORS["provider-unavailable"] : describeError(err));
      setBusy(false);
    }
  };

  const signedIn = (response: LoginResponse) => {
    setCsrf(response.csrf_token);
    props.onSignedIn(response.user, response.two_factor_enrollment_required);
  };

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

  /// The refusals of a password sign-in that lead somewhere: the second
  /// factor, or the identity provider.
  const loginRefused = (err: unknown) => {
    const code = err instanceof ApiError ? err.code : null;
    if (err instanceof ApiError && (code === "totp-required" || code === "passkey-required")) {
      setSecondFactor({ passkey: err.problem.passkey ?? null, passkeyOnly: code === "passkey-required" });
    } else if (code === "invalid-credentials" && current?.password_allowed === false) {
      // Where passwords are off the server refuses even the right one as it
      // refuses a wrong one (it must not confirm an old password); the
      // address's domain says why.
      setError("The password did not sign you in: your organisation signs its members in only through its identity provider, so use its button.");
    } else {
      setError(describeError(err));
    }
  };

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      signedIn(await api.login(email, password, useRecovery ? undefined : code, useRecovery ? code : undefined));
    } catch (err) {
      loginRefused(err);
    } finally {
      setBusy(false);
    }
  };

  // Only the fresh challenge is wanted from the password's refusal; the
  // message already shown says what went wrong.
  const loginRefusedQuietly = (err: unknown) => {
    if (err instanceof ApiError && err.problem.passkey) {
      setSecondFactor({ passkey: err.problem.passkey, passkeyOnly: err.code === "passkey-required" });
    }
  };

  // The passkey answers the challenge the password's refusal carried; a
  // challenge the server has seen is spent, so a refused answer asks for a
  // fresh one (the password again, which alone only asks for the factor).
  const passkeyAfterPassword = async (challenge: PasskeyChallenge) => {
    setBusy(true);
    setError(null);
    try {
      const credential = await usePasskey(challenge);
      try {
        signedIn(await api.login(email, password, undefined, undefined, { ceremony_id: challenge.ceremony_id, credential }));
      } catch (err) {
        if (!(err instanceof ApiError && err.code === "invalid-passkey")) throw err;
        setError(`The passkey did not sign you in: ${describeError(err)}.`);
        await api.login(email, password).then(signedIn, loginRefusedQuietly);
      }
    } catch (err) {
      setError(describePasskeyError(err) ?? describeError(err));
    } finally {
      setBusy(false);
    }
  };

  // No address is typed: the passkey names its account, so nothing here
  // tells whether an address has one.
  const signInWithPasskey = async () => {
    setBusy(true);
    setError(null);
    try {
      const challenge = await api.passkeySignInChallenge();
      const credential = await usePasskey(challenge);
      signedIn(await api.passkeySignIn({ ceremony_id: challenge.ceremony_id, credential }));
    } catch (err) {
      if (err instanceof ApiError && err.code === "invalid-passkey") {
        setError(`The passkey did not sign you in: ${describeError(err)}.`);
      } else if (err instanceof ApiError && err.code === "provider-sign-in-required") {
        setError("Your organisation signs its members in only through its identity provider: type your email to see its button.");
      } else {
        setError(describePasskeyError(err) ?? describeError(err));
      }
    } finally {
      setBusy(false);
    }
  };

  const offerPasskey = secondFactor?.passkey && canUsePasskeys;
  // A code field, unless the organisation takes only the passkey (a
  // recovery code still works there).
  const askCode = secondFactor !== null && (!secondFactor.passkeyOnly || useRecovery);

  return (
    <main className="center narrow">
      <h1>Sign in to Conclave</h1>
      <form onSubmit={submit} aria-label="Sign in">
        {secondFactor === null ? (
          <>
            <label>
              Email
              <input
                type="email"
                autoComplete="username"
                value={email}
                onChange={(e) => setEmail(e.target.value)}
                onBlur={() => void lookUpOptions()}
                required
              />
            </label>
            {providers.length > 0 ? (
              <div className="providers" role="group" aria-label="Your organisation's identity provider">
                {providers.map((p) => (
                  <button type="button" key={p.provider_id} disabled={busy} onClick={() => void startProviderSignIn(p)}>
                    Sign in with {p.name}
                  </button>
                ))}
                {current?.password_allowed === false ? (
                  <p>Your organisation signs its members in through its identity provider; only its owners use a password here.</p>
                ) : (
                  <p>Or use your password:</p>
                )}
              </div>
            ) : null}
            <label>
              Password
              <input type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
            </label>
          </>
        ) : (
          <>
            <p>
              {useRecovery
                ? "Enter one of your recovery codes."
                : secondFactor.passkeyOnly
                  ? offerPasskey
                    ? "Your organisation asks for your passkey after the password."
                    : "Your organisation asks for your passkey after the password, and this browser cannot use it here: use a recovery code."
                  : offerPasskey
                    ? "Use your passkey, or enter the 6-digit code from your authenticator app."
                    : "Enter the 6-digit code from your authenticator app."}
            </p>
            {offerPasskey && !useRecovery ? (
              <button type="button" disabled={busy} onClick={() => void passkeyAfterPassword(secondFactor.passkey!)}>
                Use your passkey
              </button>
            ) : null}
            {askCode ? (
              <label>
                {useRecovery ? "Recovery code" : "Code"}
                <input
                  inputMode={useRecovery ? "text" : "numeric"}
                  autoComplete="one-time-code"
                  value={code}
                  onChange={(e) => setCode(e.target.value)}
                  required
                  autoFocus={!offerPasskey}
                />
              </label>
            ) : null}
            <button type="button" className="link" onClick={() => setUseRecovery(!useRecovery)}>
              {useRecovery ? (secondFactor.passkeyOnly ? "Use your passkey" : "Use the authenticator code") : "Use a recovery code instead"}
            </button>
          </>
        )}
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        {secondFactor === null || askCode ? (
          <button type="submit" disabled={busy}>
            {secondFactor ? "Verify" : "Sign in"}
          </button>
        ) : null}
        {secondFactor === null ? (
          <button type="button" className="link" onClick={() => void forgot()}>
            Forgot your password?
          </button>
        ) : null}
      </form>
      {resetNote ? <p role="status">{resetNote}</p> : null}
      {canUsePasskeys && secondFactor === null ? (
        <p>
          <button type="button" disabled={busy} onClick={() => void signInWithPasskey()}>
            Sign in with a passkey
          </button>
        </p>
      ) : null}
      <p>
        Have a meeting link? Open it to join as a guest. Have a code? <a href="/join">Join with a code</a>.
      </p>
    </main>
  );
}
