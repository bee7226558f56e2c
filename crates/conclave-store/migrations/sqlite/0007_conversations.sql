-- Team conversations. The server keeps who is in each and the ordered log
-- every device reads; in an encrypted conversation a message's content is
-- MLS ciphertext, never anything the server can read.
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    kind TEXT NOT NULL,
    name TEXT,
    -- A direct message's two account ids, sorted: one conversation per pair.
    direct_pair TEXT UNIQUE,
    -- The conversation's state (members, roles, readers, its MLS delivery
    -- service), replaced whole at every change; version orders the writers.
    state_json TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX conversations_org ON conversations(org_id, kind);

-- Who is in which conversation, for listing an account's conversations.
CREATE TABLE conversation_members (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user ON conversation_members(user_id);

CREATE TABLE conversation_entries (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    -- For checking what later messages refer to without reading bodies.
    author TEXT,
    device_id TEXT,
    client_id TEXT,
    thread_seq INTEGER,
    -- What a message refers to (reply, thread, edit, reaction) and which entry:
    -- erasing a message erases its edits and reactions too.
    reference_kind TEXT,
    refers_to INTEGER,
    is_message INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    body_json TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
-- A retry is the same message (rows without a client id are not messages).
CREATE UNIQUE INDEX conversation_entries_client ON conversation_entries(conversation_id, device_id, client_id);

-- Each device's own part of the MLS handshake, until it takes it.
CREATE TABLE device_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    handshake_json TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX device_inbox_device ON device_inbox(device_id, id);

-- Each member's own state in a conversation: how far they have read (their
-- read receipt, and what makes the rest unread) and whether they muted it.
CREATE TABLE conversation_reads (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id),
    read_seq INTEGER NOT NULL DEFAULT 0,
    muted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
