// The browser's half of a passkey ceremony. The server sends WebAuthn's
// options in their JSON form (`{publicKey: {...}}`, binary fields
// base64url) and takes the credential back as `toJSON()` writes it, so the
// browser's own converters do all the encoding.

import type { PasskeyChallenge } from "./generated/protocol";

/// WebAuthn's JSON converters, as far as this app uses them (newer than
/// some browsers, so looked up rather than assumed).
type JsonWebAuthn = {
  parseCreationOptionsFromJSON?: (options: unknown) => PublicKeyCredentialCreationOptions;
  parseRequestOptionsFromJSON?: (options: unknown) => PublicKeyCredentialRequestOptions;
};

function converters(): JsonWebAuthn | null {
  return typeof PublicKeyCredential === "undefined" ? null : (PublicKeyCredential as unknown as JsonWebAuthn);
}

/// Whether passkeys can work on this page: the browser reads WebAuthn's JSON
/// forms, and the page is reached by a host name — browsers refuse an IP
/// address as the site a passkey belongs to, so a button would only fail.
export function passkeysUsable(): boolean {
  const json = converters();
  const byAddress = /^\d+\.\d+\.\d+\.\d+$/.test(location.hostname) || location.hostname.startsWith("[");
  return !byAddress && window.isSecureContext && !!json?.parseCreationOptionsFromJSON && !!json.parseRequestOptionsFromJSON;
}

/// The `publicKey` member of a challenge's options: the only one used, so a
/// server adding members beside it changes nothing here.
function publicKeyOptions(challenge: PasskeyChallenge): unknown {
  const options = challenge.options as { publicKey?: unknown } | null;
  if (!options || typeof options !== "object" || !options.publicKey) throw new Error("The server's passkey challenge is not one this browser can use.");
  return options.publicKey;
}

function credentialJson(credential: Credential | null): unknown {
  if (!(credential instanceof PublicKeyCredential)) throw new Error("The authenticator gave no passkey.");
  return credential.toJSON();
}

/// Makes a new passkey for the registration `challenge`; resolves to the
/// credential to send back.
export async function createPasskey(challenge: PasskeyChallenge): Promise<unknown> {
  const parse = converters()?.parseCreationOptionsFromJSON;
  if (!parse) throw new Error("This browser cannot make passkeys.");
  return credentialJson(await navigator.credentials.create({ publicKey: parse(publicKeyOptions(challenge)) }));
}

/// Signs the sign-in `challenge` with one of the person's passkeys; resolves
/// to the credential to send back.
export async function usePasskey(challenge: PasskeyChallenge): Promise<unknown> {
  const parse = converters()?.parseRequestOptionsFromJSON;
  if (!parse) throw new Error("This browser cannot use passkeys.");
  return credentialJson(await navigator.credentials.get({ publicKey: parse(publicKeyOptions(challenge)) }));
}

/// What to tell a person when the browser's side of a ceremony failed: the
/// browser names the common cases without saying which happened (cancelled,
/// timed out, no passkey here), on purpose, so neither can this.
export function describePasskeyError(err: unknown): string | null {
  if (!(err instanceof DOMException)) return null;
  switch (err.name) {
    case "NotAllowedError":
    case "AbortError":
      return "The passkey was not used: it was cancelled, it timed out, or this device has no passkey for this site.";
    case "InvalidStateError":
      return "This authenticator already holds a passkey for your account.";
    case "SecurityError":
      return "Passkeys do not work on this address of the server; open it by its name (not its IP address).";
    case "NotSupportedError":
      return "This browser or authenticator cannot make this kind of passkey.";
    default:
      return `The passkey did not work (${err.message || err.name}).`;
  }
}
