// Web Push for this browser's messaging device: the service worker
// (`push-worker.ts`) registered, subscribed with the server's VAPID key,
// and the endpoint given to the server for this device. Then a closed tab
// is told that messages arrived (never what they say).

import { api } from "../api";

export type PushState =
  /// The browser has no service workers or no push.
  | "unsupported"
  /// Notifications are not allowed (yet): nothing could be shown.
  | "not-allowed"
  /// The browser's push service could not be reached (offline, or none).
  | "unavailable"
  | "subscribed";

/// Subscribes `deviceId` to push, once notifications are allowed. Safe to
/// call again: an existing subscription is reused (or renewed if the
/// server's key changed).
export async function subscribeToPush(deviceId: string): Promise<PushState> {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) return "unsupported";
  if (typeof Notification === "undefined" || Notification.permission !== "granted") return "not-allowed";
  const registration = await navigator.serviceWorker.register("/push-worker.js", { scope: "/" });
  const { public_key } = await api.pushKey();
  const key = fromBase64Url(public_key);
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  try {
    subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  } catch {
    return "unavailable";
  }
  await api.subscribePush(deviceId, subscription.endpoint);
  return "subscribed";
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function sameKey(held: ArrayBuffer | null, key: Uint8Array): boolean {
  if (!held || held.byteLength !== key.length) return false;
  const bytes = new Uint8Array(held);
  return bytes.every((b, i) => b === key[i]);
}
