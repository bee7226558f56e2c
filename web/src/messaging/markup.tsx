// Renders a message's text in the Markdown subset every Conclave client
// shows alike (conclave-proto's `markup.rs`): *emphasis*, **strong**,
// ~~strikethrough~~, `code`, links (bare or [text](url), https, http and
// mailto only), `> quotes`, and mentions `@[Name](user:<id>)`. Everything
// is built as React elements from text: nothing a sender writes becomes
// markup.

import type { ReactNode } from "react";

const INLINE =
  /@\[([^\]]+)\]\(user:([A-Za-z0-9-]{1,64})\)|\*\*([^*]+)\*\*|\*([^*]+)\*|~~([^~]+)~~|`([^`]+)`|\[([^\]]+)\]\(((?:https?:\/\/|mailto:)[^)\s]+)\)|((?:https?:\/\/)[^\s<>()]+)/g;

function inline(text: string, me: string | null, key: string): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  let n = 0;
  for (const m of text.matchAll(INLINE)) {
    const at = m.index ?? 0;
    if (at > last) out.push(text.slice(last, at));
    const k = `${key}-${n++}`;
    if (m[1] !== undefined) out.push(<span key={k} className={m[2] === me ? "mention me" : "mention"}>@{m[1]}</span>);
    else if (m[3] !== undefined) out.push(<strong key={k}>{m[3]}</strong>);
    else if (m[4] !== undefined) out.push(<em key={k}>{m[4]}</em>);
    else if (m[5] !== undefined) out.push(<s key={k}>{m[5]}</s>);
    else if (m[6] !== undefined) out.push(<code key={k}>{m[6]}</code>);
    else if (m[7] !== undefined) out.push(<a key={k} href={m[8]} target="_blank" rel="noopener noreferrer">{m[7]}</a>);
    else out.push(<a key={k} href={m[9]} target="_blank" rel="noopener noreferrer">{m[9]}</a>);
    last = at + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/// The text as elements; `me` is the viewer's account, whose mentions stand out.
export function Markup(props: { text: string; me: string | null }) {
  const lines = props.text.split("\n");
  return (
    <>
      {lines.map((line, i) =>
        line.startsWith("> ") ? (
          <blockquote key={i}>{inline(line.slice(2), props.me, `${i}`)}</blockquote>
        ) : (
          <span key={i} className="line">
            {inline(line, props.me, `${i}`)}
            {i < lines.length - 1 ? <br /> : null}
          </span>
        ),
      )}
    </>
  );
}

/// A mention as the composer writes it.
export function mention(displayName: string, userId: string): string {
  return `@[${displayName.replace(/[\]\n]/g, "")}](user:${userId})`;
}
