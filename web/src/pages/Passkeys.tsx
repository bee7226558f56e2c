import { useEffect, useState } from "react";
import { api, ApiError, describeError } from "../api";
import type { Passkey } from "../generated/protocol";
import { createPasskey, describePasskeyError, passkeysUsable } from "../passkeys";

/// The account's passkeys: each signs in without the password, or stands in
/// for the authenticator app's code after it. Added under a name that says
/// which device or key holds it; renamed; removed.
export function Passkeys(props: { onAdded: () => void }) {
  const [passkeys, setPasskeys] = useState<Passkey[] | null>(null);
  const [name, setName] = useState("");
  const [renaming, setRenaming] = useState<{ id: string; name: string } | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const usable = passkeysUsable();

  useEffect(() => {
    api.passkeys().then((r) => setPasskeys(r.passkeys), (e) => setError(describeError(e)));
  }, []);

  const failed = (err: unknown) => {
    setStatus(null);
    setError(describePasskeyError(err) ?? describeError(err));
  };

  const add = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      const challenge = await api.passkeyRegistrationChallenge();
      const credential = await createPasskey(challenge);
      const added = await api.registerPasskey({ ceremony_id: challenge.ceremony_id, credential, name: name.trim() });
      setPasskeys([...(passkeys ?? []), added]);
      setName("");
      setStatus(`Passkey “${added.name}” added: it signs you in without your password.`);
      props.onAdded();
    } catch (err) {
      // A passkey signs in for good, so the server takes one only from a
      // fresh sign-in: a session stolen later cannot add its own.
      if (err instanceof ApiError && err.status === 403 && err.code === "forbidden") {
        setStatus(null);
        setError("Adding a passkey needs a recent sign-in (under 15 minutes old): sign out, sign in again, then add it.");
      } else {
        failed(err);
      }
    } finally {
      setBusy(false);
    }
  };

  const rename = async (e: React.FormEvent) => {
    e.preventDefault();
    if (!renaming) return;
    const { id, name: newName } = renaming;
    try {
      await api.renamePasskey(id, newName.trim());
      setPasskeys((passkeys ?? []).map((p) => (p.id === id ? { ...p, name: newName.trim() } : p)));
      setRenaming(null);
      setError(null);
      setStatus("Renamed.");
    } catch (err) {
      failed(err);
    }
  };

  const remove = async (p: Passkey) => {
    if (!confirm(`Remove the passkey “${p.name}”? It will no longer sign you in here. (Your device may keep showing it until you delete it there too.)`)) return;
    try {
      await api.removePasskey(p.id);
      setPasskeys((passkeys ?? []).filter((x) => x.id !== p.id));
      setError(null);
      setStatus(`Passkey “${p.name}” removed.`);
    } catch (err) {
      failed(err);
    }
  };

  return (
    <section aria-label="Passkeys">
      <h2>Passkeys</h2>
      <p>
        A passkey signs you in with your device's screen lock or a security key instead of your password, and can stand in for
        the authenticator app's code after it. It works only on this site, so a look-alike site cannot use it.
      </p>
      {status ? <p role="status">{status}</p> : null}
      {error ? (
        <p role="alert" className="error">
          {error}
        </p>
      ) : null}
      {passkeys === null ? null : passkeys.length === 0 ? (
        <p>No passkeys yet.</p>
      ) : (
        <ul className="passkeys">
          {passkeys.map((p) =>
            renaming?.id === p.id ? (
              <li key={p.id}>
                <form onSubmit={rename} aria-label={`Rename ${p.name}`}>
                  <label>
                    New name for “{p.name}”
                    <input value={renaming.name} onChange={(e) => setRenaming({ id: p.id, name: e.target.value })} required maxLength={64} autoFocus />
                  </label>
                  <button type="submit">Save</button> <button type="button" onClick={() => setRenaming(null)}>Cancel</button>
                </form>
              </li>
            ) : (
              <li key={p.id}>
                <strong>{p.name}</strong> · added {new Date(p.created_at_ms).toLocaleDateString()} ·{" "}
                {p.last_used_at_ms ? `last used ${new Date(p.last_used_at_ms).toLocaleString()}` : "not used yet"}{" "}
                <button aria-label={`Rename ${p.name}`} onClick={() => setRenaming({ id: p.id, name: p.name })}>
                  Rename
                </button>{" "}
                <button aria-label={`Remove ${p.name}`} onClick={() => void remove(p)}>
                  Remove
                </button>
              </li>
            ),
          )}
        </ul>
      )}
      {usable ? (
        <form onSubmit={add} aria-label="Add a passkey">
          <label>
            Name of the new passkey (the device or key that holds it)
            <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={64} placeholder="Laptop" />
          </label>
          <button type="submit" disabled={busy}>
            Add a passkey
          </button>
        </form>
      ) : (
        <p>
          Passkeys can be added from a browser that supports them, with this server opened by its name (not its IP address)
          over HTTPS.
        </p>
      )}
    </section>
  );
}
