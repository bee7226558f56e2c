//! Team conversations: each one's state, its members for listing, its log,
//! and the handshake messages waiting in each device's inbox.
//!
//! A change to a conversation is one transaction that replaces its state
//! only if nobody changed it since it was read (its `version`), appends its
//! log entries and queues its inbox messages: either all of it is durable,
//! or none and the caller reads again and retries. Two nodes changing one
//! conversation at once therefore never fork its log.

use crate::{Result, RowExt, Store, StoreError};
use sqlx::any::AnyRow;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRow {
    pub id: String,
    pub org_id: String,
    pub kind: String,
    pub name: Option<String>,
    pub state_json: String,
    pub version: i64,
    pub last_seq: i64,
    pub created_at_ms: i64,
}

const COLUMNS: &str = "id, org_id, kind, name, state_json, version, last_seq, created_at_ms";

fn conversation(row: &AnyRow) -> Result<ConversationRow> {
    Ok(ConversationRow {
        id: row.text("id")?,
        org_id: row.text("org_id")?,
        kind: row.text("kind")?,
        name: row.opt_text("name")?,
        state_json: row.text("state_json")?,
        version: row.int("version")?,
        last_seq: row.int("last_seq")?,
        created_at_ms: row.int("created_at_ms")?,
    })
}

/// A conversation as one of its members has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRow {
    pub conversation: ConversationRow,
    pub role: String,
    /// The last entry they have read.
    pub read_seq: i64,
    pub muted: bool,
}

/// One log entry as stored, with what later requests check about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    pub seq: i64,
    pub at_ms: i64,
    /// For messages: who sent it, from which device, under which client id.
    pub author: Option<String>,
    pub device_id: Option<String>,
    pub client_id: Option<String>,
    /// The thread it replies in.
    pub thread_seq: Option<i64>,
    /// What it refers to (`reply`, `thread`, `edit`, `reaction`) and which entry.
    pub reference_kind: Option<String>,
    pub refers_to: Option<i64>,
    pub is_message: bool,
    pub deleted: bool,
    /// Empty while the body is in segment `segment_id` of the
    /// organisation's bucket ([`EntryRow::in_segment`]).
    pub body_json: String,
    pub segment_id: Option<String>,
}

impl EntryRow {
    /// The segment to read this entry's body from, if it is not here.
    pub fn in_segment(&self) -> Option<&str> {
        self.segment_id.as_deref().filter(|_| self.body_json.is_empty())
    }
}

const ENTRY_COLUMNS: &str = "seq, at_ms, author, device_id, client_id, thread_seq, reference_kind, refers_to, \
     is_message, deleted, body_json, segment_id";

fn entry(row: &AnyRow) -> Result<EntryRow> {
    Ok(EntryRow {
        seq: row.int("seq")?,
        at_ms: row.int("at_ms")?,
        author: row.opt_text("author")?,
        device_id: row.opt_text("device_id")?,
        client_id: row.opt_text("client_id")?,
        thread_seq: row.opt_int("thread_seq")?,
        reference_kind: row.opt_text("reference_kind")?,
        refers_to: row.opt_int("refers_to")?,
        is_message: row.int("is_message")? != 0,
        deleted: row.int("deleted")? != 0,
        body_json: row.text("body_json")?,
        segment_id: row.opt_text("segment_id")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub id: i64,
    pub device_id: String,
    pub conversation_id: String,
    pub handshake_json: String,
    /// The Welcome this message carries, kept once for every device it
    /// adds (see [`InboxMessage::welcome`]).
    pub welcome: Option<String>,
}

/// One message for one device's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxMessage {
    pub device: String,
    pub handshake_json: String,
    /// Index into [`ConversationChange::welcomes`]: the Welcome that goes
    /// with this message, stored once however many devices it adds.
    pub welcome: Option<usize>,
}

/// Everything one change to a conversation writes.
#[derive(Debug, Clone, Default)]
pub struct ConversationChange {
    /// The new state, when it changed (a message changes only the log).
    pub state_json: Option<String>,
    pub last_seq: i64,
    pub entries: Vec<EntryRow>,
    /// Messages deleted for everyone: their content is dropped, and the
    /// files they shared are set for erasure.
    pub erase: Vec<i64>,
    /// (file, seq): the files each new message shares.
    pub shared_files: Vec<(String, i64)>,
    /// Each device's inbox messages.
    pub inbox: Vec<InboxMessage>,
    /// Welcomes the inbox messages point at, each stored once.
    pub welcomes: Vec<String>,
    /// Members now, with their roles, when membership changed (replacing
    /// the listing's rows).
    pub members: Option<Vec<(String, String)>>,
    /// (account, seq): how far people have read, never backwards — the
    /// author of a new message has read everything up to it.
    pub reads: Vec<(String, i64)>,
    pub at_ms: i64,
}

/// A new conversation and its first change.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub id: String,
    pub org_id: String,
    pub kind: String,
    pub name: Option<String>,
    /// A direct message's two accounts, sorted and joined.
    pub direct_pair: Option<String>,
    pub created_at_ms: i64,
}

impl Store {
    /// Creates a conversation with its founding change. A second direct
    /// message between the same two people is `Conflict("direct message")`.
    pub async fn create_conversation(&self, new: &NewConversation, change: &ConversationChange) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO conversations (id, org_id, kind, name, direct_pair, state_json, version, last_seq, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)",
        )
        .bind(&new.id)
        .bind(&new.org_id)
        .bind(&new.kind)
        .bind(&new.name)
        .bind(&new.direct_pair)
        .bind(change.state_json.as_deref().unwrap_or("{}"))
        .bind(change.last_seq)
        .bind(new.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::conflict_as("direct message"))?;
        write_change(&mut tx, &new.id, change).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn conversation(&self, id: &str) -> Result<Option<ConversationRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM conversations WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(conversation).transpose()
    }

    /// A conversation's `version` alone: whether a state kept in memory is
    /// still current, without reading the state.
    pub async fn conversation_version(&self, id: &str) -> Result<Option<i64>> {
        let row =
            sqlx::query("SELECT version FROM conversations WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(|r| r.int("version")).transpose()
    }

    /// The direct message between the two accounts of `pair`, if any.
    pub async fn direct_conversation(&self, pair: &str) -> Result<Option<ConversationRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM conversations WHERE direct_pair = $1"))
            .bind(pair)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(conversation).transpose()
    }

    /// The channels of `org_id`, by name: what its people may browse and join.
    pub async fn org_channels(&self, org_id: &str) -> Result<Vec<ConversationRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM conversations WHERE org_id = $1 AND kind = 'channel' ORDER BY name, id"
        ))
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(conversation).collect()
    }

    /// The conversations `user_id` is in, latest activity first, with
    /// their role and their own state in each.
    pub async fn conversations_of(&self, user_id: &str) -> Result<Vec<MembershipRow>> {
        let rows = sqlx::query(
            "SELECT c.id, c.org_id, c.kind, c.name, c.state_json, c.version, c.last_seq, c.created_at_ms, m.role, \
             COALESCE(r.read_seq, 0) AS read_seq, COALESCE(r.muted, 0) AS muted \
             FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id \
             LEFT JOIN conversation_reads r ON r.conversation_id = m.conversation_id AND r.user_id = m.user_id \
             WHERE m.user_id = $1 ORDER BY c.last_seq DESC, c.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MembershipRow {
                    conversation: conversation(r)?,
                    role: r.text("role")?,
                    read_seq: r.int("read_seq")?,
                    muted: r.int("muted")? != 0,
                })
            })
            .collect()
    }

    /// `user_id` has read up to `seq` (never moving back).
    pub async fn mark_read(&self, id: &str, user_id: &str, seq: i64) -> Result<()> {
        sqlx::query(&MARK_READ).bind(id).bind(user_id).bind(seq).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn set_muted(&self, id: &str, user_id: &str, muted: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO conversation_reads (conversation_id, user_id, read_seq, muted) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (conversation_id, user_id) DO UPDATE SET muted = excluded.muted",
        )
        .bind(id)
        .bind(user_id)
        .bind(i64::from(muted))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How far each member has read, by account.
    pub async fn read_positions(&self, id: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT user_id, read_seq FROM conversation_reads WHERE conversation_id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.text("user_id")?, r.int("read_seq")?))).collect()
    }

    /// Messages after `after` that `user_id` did not send and nobody deleted.
    pub async fn unread_count(&self, id: &str, user_id: &str, after: i64) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS unread FROM conversation_entries \
             WHERE conversation_id = $1 AND seq > $2 AND is_message = 1 AND deleted = 0 AND author <> $3",
        )
        .bind(id)
        .bind(after)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        row.int("unread")
    }

    /// Applies a change if the conversation is still at `version`; false
    /// (and nothing written) if someone changed it meanwhile.
    pub async fn change_conversation(&self, id: &str, version: i64, change: &ConversationChange) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if !apply_change(&mut tx, id, version, change).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Several conversations' changes in one transaction (one durable
    /// commit): each applied as [`Self::change_conversation`] would. One
    /// that finds its version taken writes nothing and leaves the others to
    /// be written; an error (a retry's message already in, a file taken)
    /// fails the whole transaction, which the caller then writes change by
    /// change. No savepoint per change: errors are rare, and two statements
    /// more for every message are not. The outcomes are in the order of
    /// `changes`.
    ///
    /// Changes that only add to their logs (messages, nearly everything a
    /// busy node writes) are written together, a few statements for all of
    /// them ([`write_log_only`]) instead of three each: the committer is
    /// one connection doing one round trip after another, so its round
    /// trips per message bound how many messages a node takes per second.
    pub async fn change_conversations(&self, changes: &[(&str, i64, &ConversationChange)]) -> Result<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = vec![false; changes.len()];
        let ids: HashSet<&str> = changes.iter().map(|(id, ..)| *id).collect();
        // Two changes of one conversation must go in order: one by one.
        let together: Vec<usize> = if ids.len() == changes.len() {
            (0..changes.len()).filter(|&i| changes[i].2.only_adds_to_the_log()).collect()
        } else {
            Vec::new()
        };
        if together.len() > 1 {
            for chunk in together.chunks(LOG_ONLY_PER_STATEMENT) {
                let batch: Vec<_> = chunk.iter().map(|&i| changes[i]).collect();
                for (&i, written) in chunk.iter().zip(write_log_only(&mut tx, &batch).await?) {
                    outcomes[i] = written;
                }
            }
        }
        let alone = (0..changes.len()).filter(|i| together.len() <= 1 || !together.contains(i));
        for i in alone {
            let (id, version, change) = changes[i];
            outcomes[i] = apply_change(&mut tx, id, version, change).await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Entries after `after` up to `up_to`, oldest first, at most `limit`.
    pub async fn conversation_entries(&self, id: &str, after: i64, up_to: i64, limit: i64) -> Result<Vec<EntryRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM conversation_entries WHERE conversation_id = $1 AND seq > $2 AND seq <= $3 \
             ORDER BY seq LIMIT $4"
        ))
        .bind(id)
        .bind(after)
        .bind(up_to)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }

    /// The entry holding the message `device_id` sent under `client_id`, if any.
    pub async fn message_by_client_id(&self, id: &str, device_id: &str, client_id: &str) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT seq FROM conversation_entries WHERE conversation_id = $1 AND device_id = $2 AND client_id = $3",
        )
        .bind(id)
        .bind(device_id)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.int("seq")).transpose()
    }

    pub async fn conversation_entry(&self, id: &str, seq: i64) -> Result<Option<EntryRow>> {
        let row = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM conversation_entries WHERE conversation_id = $1 AND seq = $2"
        ))
        .bind(id)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(entry).transpose()
    }

    /// A device's inbox after message `after`, oldest first. Taking them is
    /// acknowledging them: they are deleted as the device asks past them.
    pub async fn device_inbox(&self, device_id: &str, after: i64, limit: i64) -> Result<Vec<InboxRow>> {
        let taken = sqlx::query("DELETE FROM device_inbox WHERE device_id = $1 AND id <= $2 RETURNING welcome_id")
            .bind(device_id)
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
        let mut welcomes = taken.iter().map(|r| r.opt_int("welcome_id")).collect::<Result<Vec<_>>>()?;
        welcomes.sort_unstable();
        welcomes.dedup();
        // A Welcome goes once the last device it adds has taken it.
        for welcome in welcomes.into_iter().flatten() {
            sqlx::query(
                "DELETE FROM group_welcomes WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM device_inbox WHERE welcome_id = $1)",
            )
            .bind(welcome)
            .execute(&self.pool)
            .await?;
        }
        let rows = sqlx::query(
            "SELECT i.id, i.device_id, i.conversation_id, i.handshake_json, w.welcome FROM device_inbox i \
             LEFT JOIN group_welcomes w ON w.id = i.welcome_id WHERE i.device_id = $1 AND i.id > $2 ORDER BY i.id LIMIT $3",
        )
        .bind(device_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InboxRow {
                    id: r.int("id")?,
                    device_id: r.text("device_id")?,
                    conversation_id: r.text("conversation_id")?,
                    handshake_json: r.text("handshake_json")?,
                    welcome: r.opt_text("welcome")?,
                })
            })
            .collect()
    }
}

/// What an erased message's body becomes.
pub const ERASED: &str = r#"{"type":"erased"}"#;

/// Moves a person's read position forward (never back).
/// A read position, or several, that never goes backwards: `VALUES` rows
/// go between the two halves.
const MARK_READ_INTO: &str = "INSERT INTO conversation_reads (conversation_id, user_id, read_seq, muted) VALUES";
const MARK_READ_KEEPING_THE_FURTHEST: &str = "ON CONFLICT (conversation_id, user_id) DO UPDATE SET read_seq = \
     CASE WHEN conversation_reads.read_seq < excluded.read_seq THEN excluded.read_seq ELSE conversation_reads.read_seq END";
/// One read position.
static MARK_READ: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{MARK_READ_INTO} ($1, $2, $3, 0) {MARK_READ_KEEPING_THE_FURTHEST}"));

/// Changes written by one statement each in [`write_log_only`]: bounded
/// so the statements stay well within both engines' parameter limits
/// (12 per entry; SQLite allows 32,766, PostgreSQL 65,535).
const LOG_ONLY_PER_STATEMENT: usize = 128;

impl ConversationChange {
    /// Whether this change only adds entries to the log and moves read
    /// positions: no new state, erasure, files, handshakes or members.
    fn only_adds_to_the_log(&self) -> bool {
        self.state_json.is_none()
            && self.erase.is_empty()
            && self.shared_files.is_empty()
            && self.inbox.is_empty()
            && self.welcomes.is_empty()
            && self.members.is_none()
    }
}

/// `($1, $2, $3), ($4, $5, $6)`: `rows` tuples of `columns` numbered
/// placeholders, each followed by `constants` (`, 0`, or nothing).
fn placeholders(rows: usize, columns: usize, constants: &str) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=columns).map(|c| format!("${}", r * columns + c)).collect();
            format!("({}{constants})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

const INSERT_ENTRY: &str = "INSERT INTO conversation_entries (conversation_id, seq, at_ms, author, device_id, \
     client_id, thread_seq, reference_kind, refers_to, is_message, deleted, body_json)";

static INSERT_ONE_ENTRY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{INSERT_ENTRY} VALUES {}", placeholders(1, 12, "")));

/// Binds one entry's twelve values, in `INSERT_ENTRY`'s order.
fn bind_entry<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    id: &'q str,
    e: &'q EntryRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(id)
        .bind(e.seq)
        .bind(e.at_ms)
        .bind(&e.author)
        .bind(&e.device_id)
        .bind(&e.client_id)
        .bind(e.thread_seq)
        .bind(&e.reference_kind)
        .bind(e.refers_to)
        .bind(i64::from(e.is_message))
        .bind(i64::from(e.deleted))
        .bind(&e.body_json)
}

/// Log-only changes of distinct conversations, each at its `version`, in
/// three statements for all: the versions taken (those whose version
/// another writer took meanwhile write nothing), then every entry of the
/// changes that hold, then the read positions. An entry refused (a
/// retry's message already in) fails the statement and so the
/// transaction, as one by one. The outcomes are in the order of `changes`.
async fn write_log_only(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    changes: &[(&str, i64, &ConversationChange)],
) -> Result<Vec<bool>> {
    // Rows of a subquery (PostgreSQL and SQLite both take this form; a
    // VALUES list with column names SQLite does not), typed by casts as
    // PostgreSQL cannot infer a bare parameter's type there.
    let rows: Vec<String> = (0..changes.len())
        .map(|r| {
            let n = r * 3;
            format!(
                "SELECT CAST(${} AS TEXT) AS changed_id, CAST(${} AS BIGINT) AS expected, CAST(${} AS BIGINT) AS new_last_seq",
                n + 1,
                n + 2,
                n + 3
            )
        })
        .collect();
    let sql = format!(
        "UPDATE conversations SET version = version + 1, last_seq = v.new_last_seq FROM ({}) AS v \
         WHERE conversations.id = v.changed_id AND conversations.version = v.expected RETURNING id",
        rows.join(" UNION ALL ")
    );
    let mut query = sqlx::query(&sql);
    for &(id, version, change) in changes {
        query = query.bind(id).bind(version).bind(change.last_seq);
    }
    let taken: HashSet<String> =
        query.fetch_all(&mut **tx).await?.iter().map(|row| row.text("id")).collect::<Result<_>>()?;
    let written: Vec<bool> = changes.iter().map(|(id, ..)| taken.contains(*id)).collect();
    let holding = || changes.iter().zip(&written).filter(|(_, w)| **w).map(|(c, _)| c);

    let entries: Vec<(&str, &EntryRow)> = holding().flat_map(|(id, _, c)| c.entries.iter().map(|e| (*id, e))).collect();
    for chunk in entries.chunks(LOG_ONLY_PER_STATEMENT) {
        let sql = format!("{INSERT_ENTRY} VALUES {}", placeholders(chunk.len(), 12, ""));
        let mut query = sqlx::query(&sql);
        for (id, e) in chunk {
            query = bind_entry(query, id, e);
        }
        query.execute(&mut **tx).await.map_err(StoreError::conflict_as("message"))?;
    }

    // One row per (conversation, account): an upsert may not touch a row twice.
    let mut reads: HashMap<(&str, &str), i64> = HashMap::new();
    for (id, _, change) in holding() {
        for (user, seq) in &change.reads {
            let furthest = reads.entry((*id, user.as_str())).or_insert(*seq);
            *furthest = (*furthest).max(*seq);
        }
    }
    let reads: Vec<_> = reads.into_iter().collect();
    for chunk in reads.chunks(LOG_ONLY_PER_STATEMENT) {
        let sql = format!("{MARK_READ_INTO} {} {MARK_READ_KEEPING_THE_FURTHEST}", placeholders(chunk.len(), 3, ", 0"));
        let mut query = sqlx::query(&sql);
        for ((id, user), seq) in chunk {
            query = query.bind(*id).bind(*user).bind(*seq);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(written)
}

/// `change` over the conversation at `version`, inside `tx`; `false`
/// (nothing written) when another writer took that version first.
async fn apply_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    version: i64,
    change: &ConversationChange,
) -> Result<bool> {
    let updated = match &change.state_json {
        Some(state) => {
            sqlx::query(
                "UPDATE conversations SET state_json = $1, version = version + 1, last_seq = $2 \
                 WHERE id = $3 AND version = $4",
            )
            .bind(state)
            .bind(change.last_seq)
            .bind(id)
            .bind(version)
            .execute(&mut **tx)
            .await?
        }
        None => {
            sqlx::query("UPDATE conversations SET version = version + 1, last_seq = $1 WHERE id = $2 AND version = $3")
                .bind(change.last_seq)
                .bind(id)
                .bind(version)
                .execute(&mut **tx)
                .await?
        }
    };
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    write_change(tx, id, change).await?;
    Ok(true)
}

async fn write_change(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &str, change: &ConversationChange) -> Result<()> {
    for e in &change.entries {
        bind_entry(sqlx::query(&INSERT_ONE_ENTRY), id, e)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::conflict_as("message"))?;
    }
    for seq in &change.erase {
        crate::segments::erasing_entry(tx, id, *seq).await?;
        // The content goes, with its edits and the reactions to it; the
        // entries stay, marked, so the log keeps its order.
        sqlx::query(
            "UPDATE conversation_entries SET deleted = 1, body_json = $3 WHERE conversation_id = $1 \
             AND (seq = $2 OR (refers_to = $2 AND reference_kind IN ('edit', 'reaction')))",
        )
        .bind(id)
        .bind(seq)
        .bind(ERASED)
        .execute(&mut **tx)
        .await?;
    }
    crate::files::write_file_changes(tx, id, &change.shared_files, &change.erase).await?;
    for (user, seq) in &change.reads {
        sqlx::query(&MARK_READ).bind(id).bind(user).bind(seq).execute(&mut **tx).await?;
    }
    let mut welcome_ids = Vec::with_capacity(change.welcomes.len());
    for welcome in &change.welcomes {
        let row = sqlx::query(
            "INSERT INTO group_welcomes (conversation_id, welcome, created_at_ms) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(id)
        .bind(welcome)
        .bind(change.at_ms)
        .fetch_one(&mut **tx)
        .await?;
        welcome_ids.push(row.int("id")?);
    }
    for message in &change.inbox {
        let welcome_id = message.welcome.map(|i| welcome_ids[i]);
        sqlx::query(
            "INSERT INTO device_inbox (device_id, conversation_id, handshake_json, created_at_ms, welcome_id) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&message.device)
        .bind(id)
        .bind(&message.handshake_json)
        .bind(change.at_ms)
        .bind(welcome_id)
        .execute(&mut **tx)
        .await?;
    }
    let Some(members) = &change.members else { return Ok(()) };
    sqlx::query("DELETE FROM conversation_members WHERE conversation_id = $1").bind(id).execute(&mut **tx).await?;
    for (user, role) in members {
        sqlx::query("INSERT INTO conversation_members (conversation_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(user)
            .bind(role)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
