// Desktop notifications for messages: for direct messages and mentions of
// the person, never for a muted conversation or the one they are looking
// at. What a notification says is the person's choice: by default only who
// wrote where; the message's text only if they allow it on this browser.

import { useState } from "react";
import type { ChatEvent } from "./client";

const PREVIEW_KEY = "conclave.notifications.preview";

type MessageEvent = Extract<ChatEvent, { type: "message" }>;

export function notifyOf(
  e: MessageEvent,
  how: { me: string; muted: boolean; direct: boolean; where: string; from: string; looking: boolean; open: () => void },
) {
  if (typeof Notification === "undefined" || Notification.permission !== "granted") return;
  const mentioned = e.mentions.includes(how.me);
  if (how.muted || how.looking || !(mentioned || how.direct)) return;
  const heading = mentioned ? `${how.from} mentioned you in ${how.where}` : `${how.from} sent you a message`;
  const preview = localStorage.getItem(PREVIEW_KEY) === "1";
  const shown = new Notification(heading, {
    body: preview ? e.text.slice(0, 200) : "Open Conclave to read it.",
    tag: `${e.conversation_id}:${e.seq}`,
  });
  shown.onclick = () => {
    how.open();
    shown.close();
  };
}

/// Turning notifications on here also lets a closed tab be told of new
/// messages (`onAllowed` subscribes this device to Web Push).
export function NotificationSettings(props: { onAllowed: () => void }) {
  const supported = typeof Notification !== "undefined";
  const [permission, setPermission] = useState(supported ? Notification.permission : "denied");
  const [preview, setPreview] = useState(localStorage.getItem(PREVIEW_KEY) === "1");
  if (!supported) return null;
  return (
    <div className="notification-settings">
      {permission === "default" ? (
        <button
          onClick={() =>
            void Notification.requestPermission().then((answer) => {
              setPermission(answer);
              if (answer === "granted") props.onAllowed();
            })
          }
        >
          Turn on desktop notifications
        </button>
      ) : permission === "denied" ? (
        <p className="muted">Desktop notifications are blocked in this browser's settings.</p>
      ) : (
        <label className="check">
          <input
            type="checkbox"
            checked={preview}
            onChange={(e) => {
              setPreview(e.target.checked);
              localStorage.setItem(PREVIEW_KEY, e.target.checked ? "1" : "0");
            }}
          />
          Show message text in notifications
        </label>
      )}
    </div>
  );
}
