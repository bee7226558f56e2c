// A conversation's people and settings, as its roles allow: every member
// with their role, whether they are from another organisation and how many
// devices read for them; admins remove members and lock a channel or
// archive the conversation, owners give roles; anyone mutes it for
// themselves or leaves a group or channel. Each change that cannot be
// undone by its maker asks first.

import { useState } from "react";
import { api, describeError } from "../api";
import type { Conversation, ConversationMember, ConversationRole } from "../generated/protocol";

const RANK: Record<ConversationRole, number> = { member: 0, admin: 1, owner: 2 };

export function MembersPanel(props: {
  conversation: Conversation;
  me: string;
  muted: boolean;
  onChanged: () => void;
  onLeft: () => void;
  onClose: () => void;
}) {
  const c = props.conversation;
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const mine = RANK[c.role];
  const direct = c.kind === "direct";
  const act = async (what: () => Promise<unknown>, then: () => void = props.onChanged) => {
    setBusy(true);
    setError(null);
    try {
      await what();
      then();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  // As the server rules (conclave-conversation's `roles.rs`): admins and
  // owners remove people below their own rank.
  const removable = (m: ConversationMember) => !direct && m.user_id !== props.me && mine >= RANK.admin && mine > RANK[m.role];
  const sorted = [...c.members].sort((a, b) => RANK[b.role] - RANK[a.role] || a.display_name.localeCompare(b.display_name));

  return (
    <aside className="side-panel" aria-label="Members and settings">
      <header>
        <h2>Members ({c.members.length})</h2>
        <button aria-label="Close members" title="Close" onClick={props.onClose}>✕</button>
      </header>
      {error ? <p role="alert" className="error">{error}</p> : null}
      <ul className="member-list" aria-label="Members">
        {sorted.map((m) => (
          <li key={m.user_id}>
            <div>
              <strong>{m.display_name || "Someone"}</strong>
              {m.user_id === props.me ? <span className="muted"> (you)</span> : null}
              {m.external ? <span className="tag external">External</span> : null}
            </div>
            <div className="muted">
              {m.role === "member" ? "Member" : m.role === "admin" ? "Admin" : "Owner"} · {m.devices.length} {m.devices.length === 1 ? "device" : "devices"}
            </div>
            <div className="member-actions">
              {mine === RANK.owner && !direct && m.user_id !== props.me ? (
                <label>
                  <span className="sr-only">Role of {m.display_name}</span>
                  <select
                    value={m.role}
                    disabled={busy}
                    onChange={(e) => void act(() => api.setConversationRole(c.id, m.user_id, e.target.value as ConversationRole))}
                  >
                    <option value="member">Member</option>
                    <option value="admin">Admin</option>
                    <option value="owner">Owner</option>
                  </select>
                </label>
              ) : null}
              {removable(m) ? (
                <button
                  className="danger"
                  disabled={busy}
                  onClick={() => {
                    if (confirm(`Remove ${m.display_name} from this conversation? Their devices will read nothing said after this.`)) {
                      void act(() => api.removeConversationMember(c.id, m.user_id));
                    }
                  }}
                >
                  Remove {m.display_name}
                </button>
              ) : null}
            </div>
          </li>
        ))}
      </ul>

      <section className="conversation-settings" aria-label="Settings">
        <h3>Settings</h3>
        <label className="check">
          <input type="checkbox" checked={props.muted} disabled={busy} onChange={(e) => void act(() => api.muteConversation(c.id, e.target.checked))} />
          Mute notifications
        </label>
        {c.kind === "channel" && mine >= RANK.admin ? (
          <label className="check">
            <input type="checkbox" checked={c.locked} disabled={busy} onChange={(e) => void act(() => api.updateConversation(c.id, { locked: e.target.checked }))} />
            Only admins add people (locked)
          </label>
        ) : null}
        {!direct && mine >= RANK.admin ? (
          <button
            disabled={busy}
            onClick={() => {
              if (c.archived || confirm("Archive this conversation? Nobody can write in it until it is unarchived.")) {
                void act(() => api.updateConversation(c.id, { archived: !c.archived }));
              }
            }}
          >
            {c.archived ? "Unarchive" : "Archive"}
          </button>
        ) : null}
        {!direct ? (
          <button
            className="danger"
            disabled={busy}
            onClick={() => {
              if (confirm("Leave this conversation? You will need to be added again, or to join again, to read it.")) {
                void act(() => api.removeConversationMember(c.id, props.me), props.onLeft);
              }
            }}
          >
            Leave
          </button>
        ) : null}
      </section>
    </aside>
  );
}
