// Team messaging: a sidebar of channels, groups and direct messages with
// unread badges, the open conversation with its history as this device
// holds it, a composer, message actions (react, reply in a thread, edit,
// delete), the thread panel, and dialogs to browse channels, make one, and
// start a direct message. Every message is encrypted and opened in the
// E2EE worker (`client.ts`); this page only shows what it is given.

import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { api, ApiError, describeError } from "../api";
import type { ChannelListing, Conversation, ConversationSummary, Person, Reference, User } from "../generated/protocol";
import { MessagingClient, type ChatEvent, type Found, type HeldMessage } from "./client";
import { Markup, mention } from "./markup";
import { MembersPanel } from "./Members";
import { Dialog } from "./dialog";
import { Attachment, InterruptedUploads, Uploads, type FetchFile, type Sending } from "./files";
import type { Attached, Interrupted } from "../e2ee/messages";
import { callLink, CallBanner } from "./calls";
import { notifyOf, NotificationSettings } from "./notify";
import { ResizeHandle, useStoredWidth } from "../resize";
import { subscribeToPush } from "./push";
import { videoPoster } from "./poster";

/// The widths, in CSS pixels, the conversation list and the panels beside
/// the conversation may be given.
const SIDEBAR = { initial: 288, min: 200, max: 480 };
const SIDE_PANEL = { initial: 384, min: 280, max: 640 };

/// The reactions offered in one click.
const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "👀"];
/// How long after a call starts its banner is waited for.
const CALL_RINGS_MS = 120_000;
/// Messages a conversation shows at first, and adds each time its reader
/// scrolls near the top.
const WINDOW = 150;
/// How long a typing notice shows.
const TYPING_SHOWS_MS = 5000;

/// A message as shown: its latest edit, its reactions, its thread's size.
interface Shown {
  seq: number;
  at_ms: number;
  from_user: string;
  text: string;
  file: Attached | null;
  edited: boolean;
  reply_to: number | null;
  reactions: Map<string, string[]>;
  thread_replies: number;
}

/// Folds edits and reactions into the messages they refer to; thread
/// replies are shown under their root (`thread`), the rest in the channel.
function fold(held: HeldMessage[], thread: number | null): Shown[] {
  const bySeq = new Map<number, Shown>();
  const shown: Shown[] = [];
  for (const m of held) {
    const ref = m.reference;
    if (ref?.kind === "edit") {
      const target = bySeq.get(ref.seq);
      if (target && target.from_user === m.from_user) {
        target.text = m.text;
        target.edited = true;
      }
      continue;
    }
    if (ref?.kind === "reaction") {
      const target = bySeq.get(ref.seq);
      if (target) {
        const who = target.reactions.get(m.text) ?? [];
        if (!who.includes(m.from_user)) who.push(m.from_user);
        target.reactions.set(m.text, who);
      }
      continue;
    }
    const message: Shown = {
      seq: m.seq,
      at_ms: m.at_ms,
      from_user: m.from_user,
      text: m.text,
      file: m.file,
      edited: false,
      reply_to: ref?.kind === "reply" ? ref.seq : null,
      reactions: new Map(),
      thread_replies: 0,
    };
    bySeq.set(m.seq, message);
    if (ref?.kind === "thread") {
      const root = bySeq.get(ref.seq);
      if (root) root.thread_replies++;
      if (thread === ref.seq) shown.push(message);
    } else if (thread === null || thread === m.seq) {
      shown.push(message);
    }
  }
  return shown;
}

function title(c: { kind: string; name?: string | null }, names: string): string {
  if (c.kind === "direct") return names || "Direct message";
  return c.kind === "channel" ? `# ${c.name ?? "channel"}` : c.name ?? "Group";
}

function time(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function Messages(props: { user: User; navigate: (path: string) => void; initial: string | null }) {
  const me = props.user.id;
  const [list, setList] = useState<ConversationSummary[]>([]);
  const [selected, setSelected] = useState<string | null>(props.initial);
  // The messages that mention the person, by conversation, as this device
  // opened them (the server cannot know: it never reads a message). Those
  // after the conversation's read position show as a badge.
  // Whether the organisation allows channels without end-to-end encryption.
  const [plainAllowed, setPlainAllowed] = useState(false);
  useEffect(() => {
    if (!props.user.org_id) return;
    api.policy(props.user.org_id).then((p) => setPlainAllowed(p.unencrypted_channels.value), () => undefined);
  }, [props.user.org_id]);
  // Uploads this device began and did not finish, offered to carry on.
  const [interrupted, setInterrupted] = useState<Interrupted[]>([]);
  // This browser's messaging device, once the worker has it.
  const deviceId = useRef<string | null>(null);
  const [mentions, setMentions] = useState<Map<string, number[]>>(new Map());
  const [sidebarWidth, setSidebarWidth] = useStoredWidth("sidebar", SIDEBAR.initial, SIDEBAR.min, SIDEBAR.max);
  const [sidePanelWidth, setSidePanelWidth] = useStoredWidth("side-panel", SIDE_PANEL.initial, SIDE_PANEL.min, SIDE_PANEL.max);
  const [details, setDetails] = useState<Conversation | null>(null);
  // The messages this device holds, with the conversation they are of.
  const [heldOf, setHeldOf] = useState<{ id: string | null; messages: HeldMessage[] }>({ id: null, messages: [] });
  const held = heldOf.id === selected ? heldOf.messages : [];
  // Whether this device is in the open conversation's group (it can write).
  const [inGroup, setInGroup] = useState(false);
  const [thread, setThread] = useState<number | null>(null);
  const [showMembers, setShowMembers] = useState(false);
  const [callStartedAt, setCallStartedAt] = useState(0);
  const [uploads, setUploads] = useState<Sending[]>([]);
  // Someone in a conversation is on a device key never seen for them: told
  // until dismissed, with the key to compare, as meetings do.
  const [newDevices, setNewDevices] = useState<{ conversation: string; device: string; text: string }[]>([]);
  // Found on this device: shown beside the conversation until closed.
  const [found, setFound] = useState<{ query: string; results: Found[] } | null>(null);
  // The message to bring into view: a search result, or the first unread.
  const [focus, setFocus] = useState<{ conversation: string; seq: number } | null>(null);
  // Where the person had read to when they opened the conversation: the
  // "new" line stays there while they read on.
  const [readAtOpen, setReadAtOpen] = useState<number | null>(null);
  const [ready, setReady] = useState(false);
  const [elsewhere, setElsewhere] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [typing, setTyping] = useState<Map<string, number>>(new Map());
  const [dialog, setDialog] = useState<"channel" | "browse" | "direct" | null>(null);
  const [announcement, setAnnouncement] = useState("");
  const client = useRef<MessagingClient | null>(null);
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const listRef = useRef(list);
  listRef.current = list;
  // Names of everyone in the conversations seen, by account.
  const [names, setNames] = useState<Map<string, string>>(new Map([[me, props.user.display_name]]));
  const namesRef = useRef(names);
  namesRef.current = names;

  // Who each direct message is with, by conversation.
  const [directNames, setDirectNames] = useState<Map<string, string>>(new Map());
  const refreshList = useCallback(
    () =>
      api.conversations().then(
        (r) => {
          setList(r.conversations);
          for (const c of r.conversations) {
            if (c.kind !== "direct") continue;
            setDirectNames((known) => {
              if (!known.has(c.id)) {
                api.conversation(c.id).then(
                  (full) => setDirectNames((n) => new Map(n).set(c.id, full.members.filter((m) => m.user_id !== me).map((m) => m.display_name).join(", "))),
                  () => undefined,
                );
              }
              return known.has(c.id) ? known : new Map(known).set(c.id, "");
            });
          }
        },
        (e) => setError(describeError(e)),
      ),
    [me],
  );
  // The open conversation and its members' names (again when they change).
  const loadDetails = useCallback(
    (id: string) => {
      // Removed (from a channel the organisation's people may still look at
      // from outside, or from a group, which then is not found): nothing of
      // it is shown any more.
      const gone = () => {
        setDetails(null);
        setHeldOf({ id: null, messages: [] });
        setError("You are no longer in this conversation.");
        void refreshList();
      };
      return api.conversation(id).then(
        (c) => {
          if (selectedRef.current !== id) return;
          if (!c.members.some((m) => m.user_id === me)) return gone();
          setDetails(c);
          setNames((n) => {
            const next = new Map(n);
            for (const m of c.members) next.set(m.user_id, m.display_name);
            return next;
          });
        },
        (e) => {
          if (selectedRef.current !== id) return;
          if (e instanceof ApiError && e.status === 404) gone();
          else setError(describeError(e));
        },
      );
    },
    [me, refreshList],
  );
  const refreshHistory = useCallback(async (id: string) => {
    const state = await client.current?.history(id);
    if (state && selectedRef.current === id) {
      setHeldOf({ id, messages: state.messages });
      setInGroup(state.inGroup);
    }
  }, []);

  useEffect(() => {
    const messaging = new MessagingClient(me, {
      onReady: (id) => {
        deviceId.current = id;
        // Web Push for a closed tab, where notifications are allowed; if
        // the browser's push service is out of reach, the open tab still works.
        subscribeToPush(id).catch(() => undefined);
        setReady(true);
        setElsewhere(false);
        if (selectedRef.current) void refreshHistory(selectedRef.current);
      },
      // Every sync ends with `onSynced`, which refreshes the list and the
      // open history once; events only say what to announce or reload.
      onEvents: (events: ChatEvent[]) => {
        const open = selectedRef.current;
        if (open && events.some((e) => e.conversation_id === open && (e.type === "membership" || e.type === "removed"))) void loadDetails(open);
        const fresh = events.filter((e) => e.type === "message" && e.from_user !== me && !e.earlier);
        const last = fresh[fresh.length - 1];
        if (last && last.type === "message") setAnnouncement(`New message: ${last.text.slice(0, 140)}`);
        const arrived = events.flatMap((e) =>
          e.type === "new_device"
            ? [{ conversation: e.conversation_id, device: e.device, text: `${e.display_name} is on a new device (key ${e.fingerprint}). If you did not expect it, compare the key with them.` }]
            : [],
        );
        if (arrived.length > 0) setNewDevices((all) => [...all.filter((n) => !arrived.some((a) => a.device === n.device && a.conversation === n.conversation)), ...arrived]);
        // A call just started: who is in it is looked at until someone is.
        if (open && events.some((e) => e.conversation_id === open && e.type === "call")) setCallStartedAt(Date.now());
        const mentioning = fresh.filter((e) => e.type === "message" && e.mentions.includes(me));
        if (mentioning.length > 0) {
          setMentions((old) => {
            const next = new Map(old);
            for (const e of mentioning) if (e.type === "message") next.set(e.conversation_id, [...(next.get(e.conversation_id) ?? []), e.seq]);
            return next;
          });
        }
        for (const e of fresh) {
          if (e.type !== "message") continue;
          const summary = listRef.current.find((c) => c.id === e.conversation_id);
          notifyOf(e, {
            me,
            muted: summary?.muted ?? false,
            direct: summary?.kind === "direct",
            where: summary ? title(summary, "") : "a conversation",
            from: namesRef.current.get(e.from_user) ?? "Someone",
            looking: e.conversation_id === open && document.visibilityState === "visible" && document.hasFocus(),
            open: () => {
              window.focus();
              setSelected(e.conversation_id);
            },
          });
        }
        if (events.some((e) => e.type === "removed" && e.conversation_id === open)) setError("You are no longer in this conversation.");
      },
      onSynced: () => {
        void refreshList();
        if (selectedRef.current) void refreshHistory(selectedRef.current);
      },
      onLive: (event) => {
        if (event.type === "typing" && event.user_id !== me) {
          setTyping((t) => new Map(t).set(`${event.conversation_id}|${event.user_id}`, Date.now()));
        }
      },
      onElsewhere: () => setElsewhere(true),
      onInterrupted: setInterrupted,
      onError: (message) => setError(message),
    });
    client.current = messaging;
    void refreshList();
    return () => messaging.close();
  }, [me, refreshHistory, refreshList, loadDetails]);

  // A search result in a thread opens that thread with its conversation.
  const threadToOpen = useRef<number | null>(null);
  useEffect(() => {
    setThread(threadToOpen.current);
    threadToOpen.current = null;
    setShowMembers(false);
    setReadAtOpen(null);
    setInGroup(false);
    setDetails(null);
    if (!selected) return;
    history.replaceState(null, "", `/messages/${selected}`);
    void loadDetails(selected);
    if (ready) void refreshHistory(selected);
  }, [selected, ready, refreshHistory, loadDetails]);

  // The first time the conversation's summary is known after opening it,
  // its read position marks where the new messages begin.
  useEffect(() => {
    if (!selected || readAtOpen !== null) return;
    const summary = list.find((c) => c.id === selected);
    if (summary) setReadAtOpen(summary.unread > 0 ? summary.read_seq : Number.MAX_SAFE_INTEGER);
  }, [selected, list, readAtOpen]);
  const firstUnread = readAtOpen === null ? undefined : held.find((m) => m.seq > readAtOpen && m.from_user !== me && m.reference?.kind !== "edit" && m.reference?.kind !== "reaction" && m.reference?.kind !== "thread")?.seq;

  // The open conversation as shown. Far back, the first unread is offered
  // to jump to rather than jumped to: bringing it into view renders every
  // message after it.
  const shownMessages = useMemo(() => fold(held, null), [held]);
  const unreadIndex = firstUnread === undefined ? -1 : shownMessages.findIndex((m) => m.seq === firstUnread);
  const unreadFar = unreadIndex >= 0 && shownMessages.length - unreadIndex > 2 * WINDOW ? shownMessages.slice(unreadIndex).filter((m) => m.from_user !== me).length : 0;

  // Read up to the last message shown.
  const lastSeq = held.length > 0 ? held[held.length - 1].seq : 0;
  useEffect(() => {
    if (!selected || lastSeq === 0) return;
    const summary = list.find((c) => c.id === selected);
    if (summary && summary.read_seq < lastSeq) {
      api.markRead(selected, lastSeq).then(() => void refreshList(), () => undefined);
    }
  }, [selected, lastSeq, list, refreshList]);

  // While a call goes on (or has just been started, and its caller is on
  // the way in), who is in it is looked at again now and then.
  const callGoingOn = details?.call != null;
  useEffect(() => {
    if (!selected || (!callGoingOn && callStartedAt === 0)) return;
    if (!callGoingOn) void loadDetails(selected);
    const timer = setInterval(() => {
      if (!callGoingOn && Date.now() - callStartedAt > CALL_RINGS_MS) setCallStartedAt(0);
      else void loadDetails(selected);
    }, callGoingOn ? 5000 : 2000);
    return () => clearInterval(timer);
  }, [callGoingOn, callStartedAt, selected, loadDetails]);

  // Typing notices fade.
  useEffect(() => {
    if (typing.size === 0) return;
    const timer = setTimeout(() => {
      const now = Date.now();
      setTyping((t) => new Map([...t].filter(([, at]) => now - at < TYPING_SHOWS_MS)));
    }, 1000);
    return () => clearTimeout(timer);
  }, [typing]);

  const nameOf = (id: string) => names.get(id) ?? "Someone";
  const summaryTitle = (c: ConversationSummary) => title(c, directNames.get(c.id) ?? "");
  const sections: [string, ConversationSummary[]][] = [
    ["Channels", list.filter((c) => c.kind === "channel")],
    ["Groups", list.filter((c) => c.kind === "group")],
    ["Direct messages", list.filter((c) => c.kind === "direct")],
  ];
  const typingHere = [...typing.keys()].filter((k) => k.startsWith(`${selected}|`)).map((k) => nameOf(k.split("|")[1]));

  const send = async (text: string, reference: Reference | null) => {
    if (!selected || !client.current) return;
    setError(null);
    try {
      await client.current.send(selected, text, reference);
    } catch (e) {
      setError(`Not sent: ${describeError(e)}`);
      throw e;
    }
  };
  const remove = async (seq: number) => {
    if (!selected || !confirm("Delete this message for everyone?")) return;
    try {
      await api.deleteMessage(selected, seq);
    } catch (e) {
      setError(describeError(e));
    }
  };
  // A call from the conversation: the meeting is made, its link sent
  // (encrypted) to everyone in it, and the caller taken there.
  const startCall = async () => {
    if (!selected || !client.current) return;
    setError(null);
    try {
      const meeting = await api.startCall(selected);
      await client.current.send(selected, `📞 ${meeting.title} — join: ${meeting.invite_url}`, null);
      props.navigate(`/j/${meeting.link_secret}`);
    } catch (e) {
      setError(`The call could not start: ${describeError(e)}`);
    }
  };
  const summaryOfSelected = list.find((c) => c.id === selected);
  const fetchFile: FetchFile = useCallback((file, progress) => {
    if (!client.current) return Promise.reject(new Error("messaging has not started"));
    return client.current.fetchFile(file, progress);
  }, []);
  // Files dropped, pasted or chosen: each sealed and sent by the worker,
  // its progress shown above the composer until it is in the conversation.
  const sendFiles = (files: File[]) => {
    const messaging = client.current;
    if (!selected || !messaging) return;
    for (const file of files) void sendFile(messaging, selected, file);
  };
  const sendFile = async (messaging: MessagingClient, conversation: string, file: File, resuming: Interrupted | null = null) => {
    // A video goes with a poster made here (a picture's preview is made in the worker).
    const poster = file.type.startsWith("video/") ? await videoPoster(file).catch(() => null) : null;
    const update = (request: number, change: Partial<Sending>) =>
      setUploads((all) => all.map((u) => (u.request === request ? { ...u, ...change } : u)));
    const progress = (done: number, total: number, stalled: boolean) => update(request, { done, total, stalled });
    const { request, sent } = resuming
      ? messaging.resumeFile(resuming.upload_id, file, poster, progress)
      : messaging.sendFile(conversation, file, null, poster, progress);
    setUploads((all) => [...all, { request, conversation, name: file.name, done: 0, total: file.size, stalled: false, error: null }]);
    sent.then(
      () => setUploads((all) => all.filter((u) => u.request !== request)),
      (e) =>
        e instanceof Error && e.message === "cancelled"
          ? setUploads((all) => all.filter((u) => u.request !== request))
          : update(request, { error: describeError(e) }),
    );
  };
  const search = async (query: string) => {
    if (!client.current || query.trim() === "") return;
    const results = await client.current.search(query);
    setThread(null);
    setShowMembers(false);
    setFound({ query, results });
  };
  const jump = (result: Found) => {
    // On a phone the results cover the screen: going to one closes them.
    if (result.thread !== null || window.matchMedia("(max-width: 700px)").matches) {
      setFound(null);
      if (result.conversation_id === selected) setThread(result.thread);
      else threadToOpen.current = result.thread;
    }
    setSelected(result.conversation_id);
    setFocus({ conversation: result.conversation_id, seq: result.thread ?? result.seq });
  };
  const opened = async (c: Conversation) => {
    setDialog(null);
    await refreshList();
    client.current?.sync();
    setSelected(c.id);
  };

  const sidePanelOpen = (thread !== null && details !== null) || found !== null || (showMembers && details !== null);
  return (
    <main className="messages" style={{ "--sidebar-width": `${sidebarWidth}px`, "--side-width": `${sidePanelWidth}px` } as React.CSSProperties}>
      {/* The handles sit on the layout's borders, outside the scrolling lists. */}
      <ResizeHandle label="Resize the conversation list" width={sidebarWidth} min={SIDEBAR.min} max={SIDEBAR.max} edge="right" onResize={setSidebarWidth} />
      {sidePanelOpen ? (
        <ResizeHandle label="Resize the panel" width={sidePanelWidth} min={SIDE_PANEL.min} max={SIDE_PANEL.max} edge="left" onResize={setSidePanelWidth} />
      ) : null}
      <nav className="conversation-list" aria-label="Conversations">
        <div className="list-actions">
          <button onClick={() => setDialog("direct")}>New message</button>
          <button onClick={() => setDialog("channel")}>New channel</button>
          <button onClick={() => setDialog("browse")}>Browse channels</button>
        </div>
        <NotificationSettings onAllowed={() => deviceId.current && void subscribeToPush(deviceId.current)} />
        <SearchBox onSearch={(q) => void search(q)} />
        {sections.map(([heading, items]) => (
          <section key={heading} aria-label={heading}>
            <h2>{heading}</h2>
            {items.length === 0 ? <p className="muted">None yet</p> : null}
            <ul>
              {items.map((c) => (
                <li key={c.id}>
                  <button
                    className={c.id === selected ? "conversation active" : "conversation"}
                    aria-current={c.id === selected ? "page" : undefined}
                    onClick={() => setSelected(c.id)}
                  >
                    <span className="name">{summaryTitle(c)}</span>
                    {c.muted ? <span className="muted-mark" aria-label="muted" title="Muted">🔕</span> : null}
                    <MentionBadge count={c.id === selected ? 0 : (mentions.get(c.id) ?? []).filter((seq) => seq > c.read_seq).length} />
                    {c.unread > 0 && c.id !== selected ? (
                      <span className="badge" aria-label={`${c.unread} unread`}>{c.unread}</span>
                    ) : null}
                  </button>
                </li>
              ))}
            </ul>
          </section>
        ))}
      </nav>

      <section
        className="conversation-view"
        aria-label="Conversation"
        onDragOver={(e) => {
          if (details && inGroup && e.dataTransfer.types.includes("Files")) e.preventDefault();
        }}
        onDrop={(e) => {
          if (!details || !inGroup || e.dataTransfer.files.length === 0) return;
          e.preventDefault();
          sendFiles([...e.dataTransfer.files]);
        }}
      >
        {error ? <p role="alert" className="error">{error}</p> : null}
        {elsewhere ? (
          <p role="status" className="notice">
            Messages are open in another tab of this browser. This tab takes over when that one closes.
          </p>
        ) : null}
        {!selected || !details ? (
          <p className="muted center-note">{!selected ? "Choose a conversation, or start one." : error ? "" : "Loading…"}</p>
        ) : (
          <>
            <header className="conversation-head">
              <h1>{title(details, details.members.filter((m) => m.user_id !== me).map((m) => m.display_name).join(", "))}</h1>
              <span className={details.encrypted ? "e2ee-label" : "plain-label"}>
                {details.encrypted ? "End-to-end encrypted" : "Not encrypted"}
              </span>
              <span className="head-actions">
                <button
                  aria-label="Start a call"
                  title="Start a call with everyone here"
                  disabled={!ready || !inGroup || details.archived || details.call != null}
                  onClick={() => void startCall()}
                >
                  📞 Call
                </button>
                <button
                  aria-label={`${details.members.length} members and settings`}
                  aria-expanded={showMembers}
                  title="Members and settings"
                  onClick={() => {
                    setThread(null);
                    setFound(null);
                    setShowMembers(!showMembers);
                  }}
                >
                  👥 {details.members.length}
                </button>
              </span>
            </header>
            {newDevices
              .filter((n) => n.conversation === details.id)
              .map((n) => (
                <p key={n.device} role="status" className="notice device-notice">
                  <span>{n.text}</span>
                  <button aria-label="Dismiss" title="Dismiss" onClick={() => setNewDevices((all) => all.filter((x) => x !== n))}>
                    ✕
                  </button>
                </p>
              ))}
            {details.call ? (
              <CallBanner call={details.call} nameOf={nameOf} link={callLink(held, details.call)} onJoin={(secret) => props.navigate(`/j/${secret}`)} />
            ) : null}
            {!details.encrypted ? (
              <p className="muted plain-note">
                Not end-to-end encrypted: the organisation keeps this channel plain (for announcements to very many people), so the
                server can read it.
              </p>
            ) : null}
            {!ready || !inGroup ? (
              <p className="muted">{ready ? "Setting up end-to-end encryption for this device…" : elsewhere ? "Waiting for the other tab…" : "Opening this device's keys…"}</p>
            ) : null}
            {unreadFar > 0 && firstUnread !== undefined && focus?.conversation !== selected ? (
              <p role="status" className="notice unread-jump">
                {unreadFar} new messages
                <button onClick={() => setFocus({ conversation: details.id, seq: firstUnread })}>Jump to the first</button>
              </p>
            ) : null}
            <MessageList
              key={`messages-${details.id}`}
              messages={shownMessages}
              me={me}
              focus={focus?.conversation === selected ? focus.seq : unreadFar > 0 ? undefined : firstUnread}
              outline={focus?.conversation === selected}
              newAfter={firstUnread}
              fetchFile={fetchFile}
              nameOf={nameOf}
              onReact={(seq, emoji) => void send(emoji, { kind: "reaction", seq })}
              onThread={(seq) => {
                setShowMembers(false);
                setFound(null);
                setThread(seq);
              }}
              onEdit={(seq, text) => send(text, { kind: "edit", seq })}
              onDelete={(seq) => void remove(seq)}
            />
            <p className="typing" aria-live="polite">
              {typingHere.length > 0 ? `${typingHere.join(", ")} ${typingHere.length === 1 ? "is" : "are"} typing…` : ""}
            </p>
            <Uploads
              sending={uploads.filter((u) => u.conversation === details.id)}
              onCancel={(request) => client.current?.cancel(request)}
              onDismiss={(request) => setUploads((all) => all.filter((u) => u.request !== request))}
            />
            <InterruptedUploads
              uploads={interrupted.filter((u) => u.conversation_id === details.id)}
              onResume={(upload, file) => {
                if (!client.current) return;
                setInterrupted((all) => all.filter((u) => u.upload_id !== upload.upload_id));
                void sendFile(client.current, upload.conversation_id, file, upload);
              }}
              onDiscard={(upload) => client.current?.discardUpload(upload.upload_id)}
            />
            <Composer
              key={details.id}
              onFiles={sendFiles}
              label={`Message ${title(details, details.members.filter((m) => m.user_id !== me).map((m) => m.display_name).join(", "))}`}
              disabled={!ready || !inGroup}
              onTyping={() => client.current?.typing(details.id)}
              onSend={(text) => send(text, null)}
              members={details.members.filter((m) => m.user_id !== me).map((m) => ({ id: m.user_id, name: m.display_name }))}
            />
          </>
        )}
      </section>

      {thread !== null && details ? (
        <aside className="thread-panel" aria-label="Thread">
          <header>
            <h2>Thread</h2>
            <button aria-label="Close thread" onClick={() => setThread(null)}>✕</button>
          </header>
          <MessageList
            messages={fold(held, thread)}
            me={me}
            fetchFile={fetchFile}
            nameOf={nameOf}
            onReact={(seq, emoji) => void send(emoji, { kind: "reaction", seq })}
            onEdit={(seq, text) => send(text, { kind: "edit", seq })}
            onDelete={(seq) => void remove(seq)}
          />
          <Composer label="Reply in thread" disabled={!ready || !inGroup} onSend={(text) => send(text, { kind: "thread", seq: thread })} members={[]} />
        </aside>
      ) : null}

      {found ? (
        <SearchResults
          found={found}
          nameOf={nameOf}
          where={(id) => {
            const c = list.find((x) => x.id === id);
            return c ? summaryTitle(c) : "a conversation";
          }}
          onOpen={jump}
          onClose={() => setFound(null)}
        />
      ) : null}

      {showMembers && details ? (
        <MembersPanel
          conversation={details}
          me={me}
          muted={summaryOfSelected?.muted ?? false}
          onChanged={() => {
            void loadDetails(details.id);
            void refreshList();
          }}
          onLeft={() => {
            setShowMembers(false);
            setSelected(null);
            void refreshList();
          }}
          onClose={() => setShowMembers(false)}
        />
      ) : null}

      <div className="sr-only" aria-live="polite">{announcement}</div>

      {dialog === "channel" ? <NewChannel plainAllowed={plainAllowed} onDone={(c) => void opened(c)} onClose={() => setDialog(null)} /> : null}
      {dialog === "browse" ? <BrowseChannels onDone={(c) => void opened(c)} onClose={() => setDialog(null)} /> : null}
      {dialog === "direct" ? <NewDirect onDone={(c) => void opened(c)} onClose={() => setDialog(null)} /> : null}
    </main>
  );
}

/// "@2": mentions of the person not read yet, apart from the unread count
/// (as Slack marks them), since they are the ones asking for an answer.
function MentionBadge(props: { count: number }) {
  if (props.count === 0) return null;
  return (
    <span className="badge mention-badge" aria-label={`${props.count} mention${props.count === 1 ? "" : "s"}`}>
      @{props.count}
    </span>
  );
}

function MessageList(props: {
  messages: Shown[];
  me: string;
  /// Brought into view instead of the end.
  focus?: number;
  /// The focus is a search result: it is outlined.
  outline?: boolean;
  /// A "new messages" line goes above this message.
  newAfter?: number;
  fetchFile: FetchFile;
  nameOf: (id: string) => string;
  onReact: (seq: number, emoji: string) => void;
  onThread?: (seq: number) => void;
  onEdit: (seq: number, text: string) => Promise<void>;
  onDelete: (seq: number) => void;
}) {
  const end = useRef<HTMLLIElement>(null);
  const [editing, setEditing] = useState<number | null>(null);
  const count = props.messages.length;
  // Only the latest messages are in the page, more as the reader scrolls
  // up: a channel of 10,000 messages opens and scrolls like one of a hundred.
  const [windowSize, setWindowSize] = useState(WINDOW);
  const focusIndex = props.focus === undefined ? -1 : props.messages.findIndex((m) => m.seq === props.focus);
  const from = Math.max(0, Math.min(count - windowSize, focusIndex >= 0 ? focusIndex - WINDOW / 10 : count));
  const visible = from > 0 ? props.messages.slice(from) : props.messages;
  // Growing the window keeps what the reader looks at in its place.
  const heightBefore = useRef<number | null>(null);
  const earlier = () => {
    heightBefore.current = list.current?.scrollHeight ?? null;
    setWindowSize((n) => n + WINDOW);
  };
  useLayoutEffect(() => {
    const el = list.current;
    if (el && heightBefore.current !== null) {
      el.scrollTop += el.scrollHeight - heightBefore.current;
      heightBefore.current = null;
    }
  }, [windowSize]);
  // Braced: newer browsers return a promise from scrollIntoView, which
  // React would take for the effect's cleanup.
  const list = useRef<HTMLOListElement>(null);
  // New messages scroll the list only for someone reading at its end.
  const stickToEnd = useRef(true);
  const focused = props.focus !== undefined && props.messages.some((m) => m.seq === props.focus);
  useEffect(() => {
    if (!focused) return;
    stickToEnd.current = false;
    const item = list.current?.querySelector<HTMLElement>(`[data-seq="${props.focus}"]`);
    void item?.scrollIntoView({ block: "center" });
  }, [focused, props.focus]);
  useEffect(() => {
    if (stickToEnd.current) void end.current?.scrollIntoView({ block: "end" });
  }, [count]);
  const bySeq = useMemo(() => new Map(props.messages.map((m) => [m.seq, m])), [props.messages]);
  return (
    <ol
      className="message-list"
      aria-label="Messages"
      ref={list}
      onScroll={(e) => {
        const el = e.currentTarget;
        stickToEnd.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
        if (el.scrollTop < 300 && from > 0 && heightBefore.current === null) earlier();
      }}
    >
      {from > 0 ? (
        <li className="earlier">
          <button onClick={earlier}>Show earlier messages ({from})</button>
        </li>
      ) : null}
      {visible.map((m) => (
        <li key={m.seq} className={m.seq === props.focus && focused && props.outline ? "message focused" : "message"} data-seq={m.seq}>
          {m.seq === props.newAfter ? (
            <div className="new-line" role="separator" aria-label="New messages">
              <span>New</span>
            </div>
          ) : null}
          <div className="message-head">
            <strong>{props.nameOf(m.from_user)}</strong> <time dateTime={new Date(m.at_ms).toISOString()}>{time(m.at_ms)}</time>
            {m.edited ? <span className="muted"> (edited)</span> : null}
          </div>
          {m.reply_to !== null && bySeq.get(m.reply_to) ? (
            <blockquote className="quoted">{bySeq.get(m.reply_to)!.text.slice(0, 140)}</blockquote>
          ) : null}
          {editing === m.seq ? (
            <Composer
              label="Edit message"
              initial={m.text}
              disabled={false}
              onSend={async (text) => {
                await props.onEdit(m.seq, text);
                setEditing(null);
              }}
              onCancel={() => setEditing(null)}
              members={[]}
            />
          ) : (
            <>
              {m.text ? (
                <div className="message-text">
                  <Markup text={m.text} me={props.me} />
                </div>
              ) : null}
              {m.file ? <Attachment attached={m.file} fetchFile={props.fetchFile} /> : null}
            </>
          )}
          {m.reactions.size > 0 ? (
            <ul className="reactions" aria-label="Reactions">
              {[...m.reactions].map(([emoji, who]) => (
                <li key={emoji}>
                  <button
                    className={who.includes(props.me) ? "reaction mine" : "reaction"}
                    title={who.map(props.nameOf).join(", ")}
                    aria-label={`${emoji} ${who.length}, from ${who.map(props.nameOf).join(", ")}`}
                    onClick={() => props.onReact(m.seq, emoji)}
                    disabled={who.includes(props.me)}
                  >
                    {emoji} {who.length}
                  </button>
                </li>
              ))}
            </ul>
          ) : null}
          <div className="message-actions">
            {QUICK_REACTIONS.slice(0, 3).map((emoji) => (
              <button key={emoji} aria-label={`React with ${emoji}`} title={`React with ${emoji}`} onClick={() => props.onReact(m.seq, emoji)}>
                {emoji}
              </button>
            ))}
            {props.onThread ? (
              <button onClick={() => props.onThread!(m.seq)}>
                {m.thread_replies > 0 ? `${m.thread_replies} ${m.thread_replies === 1 ? "reply" : "replies"}` : "Reply in thread"}
              </button>
            ) : null}
            {m.from_user === props.me ? (
              <>
                <button onClick={() => setEditing(m.seq)}>Edit</button>
                <button className="danger" onClick={() => props.onDelete(m.seq)}>Delete</button>
              </>
            ) : null}
          </div>
        </li>
      ))}
      <li ref={end} aria-hidden="true" className="list-end" />
    </ol>
  );
}

/// Enter sends, Shift+Enter starts a new line, Escape cancels an edit;
/// `@` followed by a name offers the conversation's members to mention.
function Composer(props: {
  label: string;
  disabled: boolean;
  initial?: string;
  onSend: (text: string) => Promise<void>;
  onTyping?: () => void;
  onCancel?: () => void;
  /// Files chosen or pasted, to send (a conversation's composer only).
  onFiles?: (files: File[]) => void;
  members: { id: string; name: string }[];
}) {
  const picker = useRef<HTMLInputElement>(null);
  const [text, setText] = useState(props.initial ?? "");
  const [sending, setSending] = useState(false);
  const lastTyping = useRef(0);
  const query = /@(\w*)$/.exec(text)?.[1];
  const offered = query === undefined ? [] : props.members.filter((m) => m.name.toLowerCase().startsWith(query.toLowerCase())).slice(0, 5);
  const submit = async () => {
    const body = text.trim();
    if (!body || sending) return;
    setSending(true);
    try {
      await props.onSend(body);
      setText("");
    } catch {
      // The text stays for another try; the error is shown above.
    } finally {
      setSending(false);
    }
  };
  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <textarea
        aria-label={props.label}
        placeholder={props.label}
        rows={2}
        value={text}
        disabled={props.disabled}
        autoFocus={props.initial !== undefined}
        onChange={(e) => {
          setText(e.target.value);
          const now = Date.now();
          if (props.onTyping && now - lastTyping.current > 3000) {
            lastTyping.current = now;
            props.onTyping();
          }
        }}
        onPaste={(e) => {
          if (props.onFiles && e.clipboardData.files.length > 0) {
            e.preventDefault();
            props.onFiles([...e.clipboardData.files]);
          }
        }}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey) {
            e.preventDefault();
            void submit();
          } else if (e.key === "Escape" && props.onCancel) {
            props.onCancel();
          }
        }}
      />
      {offered.length > 0 ? (
        <ul className="mention-offer" aria-label="Mention someone">
          {offered.map((m) => (
            <li key={m.id}>
              <button type="button" onClick={() => setText(text.replace(/@\w*$/, `${mention(m.name, m.id)} `))}>
                @{m.name}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      {props.onFiles ? (
        <>
          <input
            ref={picker}
            type="file"
            multiple
            hidden
            aria-label="Files to send"
            onChange={(e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = "";
              if (files.length > 0) props.onFiles?.(files);
            }}
          />
          <button type="button" aria-label="Attach files" title="Attach files (or drop them here)" disabled={props.disabled} onClick={() => picker.current?.click()}>
            📎
          </button>
        </>
      ) : null}
      <button type="submit" disabled={props.disabled || sending || text.trim() === ""}>
        {props.initial !== undefined ? "Save" : "Send"}
      </button>
      {props.onCancel ? (
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      ) : null}
    </form>
  );
}

/// A new channel: end-to-end encrypted, unless the organisation allows
/// plain channels and the person unticks it.
function NewChannel(props: { plainAllowed: boolean; onDone: (c: Conversation) => void; onClose: () => void }) {
  const [name, setName] = useState("");
  const [encrypted, setEncrypted] = useState(true);
  const [error, setError] = useState<string | null>(null);
  return (
    <Dialog title="New channel" onClose={props.onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          api.createConversation({ kind: "channel", name, members: [], encrypted }).then(props.onDone, (err) => setError(describeError(err)));
        }}
      >
        <label>
          Name <input value={name} onChange={(e) => setName(e.target.value)} maxLength={80} required />
        </label>
        {props.plainAllowed ? (
          <label className="check">
            <input type="checkbox" checked={encrypted} onChange={(e) => setEncrypted(e.target.checked)} /> End-to-end encrypted
          </label>
        ) : null}
        {!encrypted ? (
          <p className="muted">A plain channel is for announcements to very many people: the server can read it.</p>
        ) : null}
        {error ? <p role="alert" className="error">{error}</p> : null}
        <button type="submit">Create channel</button>
      </form>
    </Dialog>
  );
}

function BrowseChannels(props: { onDone: (c: Conversation) => void; onClose: () => void }) {
  const [channels, setChannels] = useState<ChannelListing[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.channels().then((r) => setChannels(r.channels), (e) => setError(describeError(e)));
  }, []);
  return (
    <Dialog title="Channels" onClose={props.onClose}>
      {error ? <p role="alert" className="error">{error}</p> : null}
      {channels === null ? <p>Loading…</p> : channels.length === 0 ? <p>No channels yet.</p> : null}
      <ul className="channel-browser">
        {channels?.map((c) => (
          <li key={c.id}>
            <span># {c.name}</span> <span className="muted">{c.member_count} members{c.locked ? ", by invitation" : ""}</span>{" "}
            {c.joined ? (
              <button onClick={() => api.conversation(c.id).then(props.onDone, (e) => setError(describeError(e)))}>Open</button>
            ) : (
              <button disabled={c.locked} onClick={() => api.joinConversation(c.id).then(props.onDone, (e) => setError(describeError(e)))}>
                Join # {c.name}
              </button>
            )}
          </li>
        ))}
      </ul>
    </Dialog>
  );
}

function NewDirect(props: { onDone: (c: Conversation) => void; onClose: () => void }) {
  const [query, setQuery] = useState("");
  const [people, setPeople] = useState<Person[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const timer = setTimeout(() => api.people(query).then((r) => setPeople(r.people), (e) => setError(describeError(e))), 150);
    return () => clearTimeout(timer);
  }, [query]);
  return (
    <Dialog title="New message" onClose={props.onClose}>
      <label>
        To <input value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Name or address" />
      </label>
      {error ? <p role="alert" className="error">{error}</p> : null}
      <ul className="people">
        {people.map((p) => (
          <li key={p.user_id}>
            <button
              onClick={() =>
                api.createConversation({ kind: "direct", name: null, members: [p.user_id], encrypted: true }).then(props.onDone, (e) => setError(describeError(e)))
              }
            >
              {p.display_name} <span className="muted">{p.email}</span>
            </button>
          </li>
        ))}
      </ul>
    </Dialog>
  );
}

function SearchBox(props: { onSearch: (query: string) => void }) {
  const [query, setQuery] = useState("");
  return (
    <form
      role="search"
      className="search-box"
      onSubmit={(e) => {
        e.preventDefault();
        props.onSearch(query);
      }}
    >
      <input type="search" aria-label="Search messages" placeholder="Search messages on this device" value={query} onChange={(e) => setQuery(e.target.value)} maxLength={200} />
    </form>
  );
}

/// What a search found, newest first, each with its conversation, author
/// and text, the query's words marked.
function SearchResults(props: {
  found: { query: string; results: Found[] };
  nameOf: (id: string) => string;
  where: (conversationId: string) => string;
  onOpen: (result: Found) => void;
  onClose: () => void;
}) {
  // The text as read, not as typed: mentions by name, no formatting marks.
  const plain = (text: string) => text.replace(/@\[([^\]]+)\]\(user:[A-Za-z0-9-]+\)/g, "@$1").replace(/\*\*|~~|`/g, "");
  const words = props.found.query.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  const mark = (text: string) => {
    if (words.length === 0) return text;
    const pattern = new RegExp(`(${words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`, "giu");
    return text.split(pattern).map((part, i) => (i % 2 === 1 ? <mark key={i}>{part}</mark> : part));
  };
  return (
    <aside className="side-panel" aria-label="Search results">
      <header>
        <h2>Search: {props.found.query}</h2>
        <button aria-label="Close search" title="Close" onClick={props.onClose}>✕</button>
      </header>
      <p className="muted" aria-live="polite">
        {props.found.results.length === 0 ? "Nothing found on this device." : `${props.found.results.length} found on this device`}
      </p>
      <ul className="search-results">
        {props.found.results.map((r) => (
          <li key={`${r.conversation_id}:${r.seq}`}>
            <button onClick={() => props.onOpen(r)}>
              <span className="muted">
                {props.where(r.conversation_id)} · {props.nameOf(r.from_user)} · {new Date(r.at_ms).toLocaleString([], { dateStyle: "medium", timeStyle: "short" })}
              </span>
              <span className="snippet">{mark(plain(r.text).length > 240 ? `${plain(r.text).slice(0, 240)}…` : plain(r.text))}</span>
            </button>
          </li>
        ))}
      </ul>
    </aside>
  );
}
