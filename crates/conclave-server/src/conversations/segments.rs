//! Messages' ciphertext in the organisation's own bucket (C4): a
//! conversation's entries are written and acknowledged in the database,
//! as always, and once they are older than `ServerConfig::segment_after`
//! their bodies move to the bucket, [`ENTRIES_PER_SEGMENT`] to an object.
//! Reading the log fills moved bodies back from their segments; erasing a
//! message marks its segment stale, and [`tidy`] writes the segment again
//! without it and deletes the old object. Only an organisation that chose
//! a bucket has segments; the others' messages stay in the database.
//!
//! A node does this work one round at a time (`Conversations::segment_work`).
//! Nodes of a cluster may still tidy the same segment at once: the store
//! gives its entries to one replacement, the other is left stale with none,
//! and the next round deletes its object.
//!
//! What moves is what the database held: MLS ciphertext and its
//! envelope, never a key. Objects are named by conversation and a random
//! segment id, never by anything a message says.

use std::collections::{BTreeMap, HashMap};

use conclave_blob::{BlobError, Segment};
use conclave_store::{new_id, EntryRow, SegmentRow, StoreError, ToSegment};

use crate::files::Location;
use crate::state::{AppState, SharedState};

/// Entries per segment object: a page of history is one or two reads.
pub const ENTRIES_PER_SEGMENT: i64 = 256;

/// Conversations (or segments) taken per round.
const PER_ROUND: i64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// An object that does not hold what its rows say it does.
    #[error("segment {0} does not hold the entries its rows name")]
    Corrupt(String),
}

async fn location(state: &AppState, storage_id: &str) -> Result<Location, SegmentError> {
    Ok(Location::bucket(state.store.storage(storage_id).await?))
}

/// Moves the bodies of entries older than the configured age to their
/// organisation's bucket; how many moved. A conversation whose bucket
/// fails is left for the next round.
pub async fn move_due(state: &AppState) -> Result<usize, SegmentError> {
    let _turn = state.conversations.segment_work.lock().await;
    let cutoff = state.now_ms() - state.config.segment_after.as_millis() as i64;
    // An organisation's conversations share its bucket: read its settings once.
    let mut locations: HashMap<String, Location> = HashMap::new();
    let mut moved = 0;
    loop {
        let due = state.store.conversations_to_segment(cutoff, PER_ROUND).await?;
        let mut failed = 0;
        for conversation in &due {
            if !locations.contains_key(&conversation.storage_id) {
                let location = location(state, &conversation.storage_id).await?;
                locations.insert(conversation.storage_id.clone(), location);
            }
            match move_conversation(state, conversation, &locations[&conversation.storage_id], cutoff).await {
                Ok(n) => moved += n,
                Err(SegmentError::Blob(err)) => {
                    failed += 1;
                    tracing::warn!(conversation = %conversation.conversation_id, error = %err, "could not move messages to the bucket yet");
                }
                Err(err) => return Err(err),
            }
        }
        // A full round may leave more behind it; one where buckets failed
        // would only meet the same conversations again.
        if (due.len() as i64) < PER_ROUND || failed > 0 {
            return Ok(moved);
        }
    }
}

async fn move_conversation(
    state: &AppState,
    to: &ToSegment,
    location: &Location,
    cutoff_ms: i64,
) -> Result<usize, SegmentError> {
    let (mut through, mut moved) = (to.through, 0);
    loop {
        let rows =
            state.store.conversation_entries(&to.conversation_id, through, i64::MAX, ENTRIES_PER_SEGMENT).await?;
        let due: Vec<&EntryRow> = rows.iter().take_while(|r| r.at_ms < cutoff_ms).collect();
        let (Some(first), Some(last)) = (due.first(), due.last()) else { return Ok(moved) };
        // Erased entries keep their marker here; only bodies move.
        let entries: Vec<(i64, String)> = due
            .iter()
            .filter(|r| !r.deleted && r.segment_id.is_none() && !r.body_json.is_empty())
            .map(|r| (r.seq, r.body_json.clone()))
            .collect();
        let count = entries.len();
        let segment = (count > 0).then(|| SegmentRow {
            id: new_id(),
            conversation_id: to.conversation_id.clone(),
            org_id: to.org_id.clone(),
            storage_id: to.storage_id.clone(),
            first_seq: first.seq,
            last_seq: last.seq,
            stale: false,
            erasing: false,
            created_at_ms: state.now_ms(),
        });
        if let Some(row) = &segment {
            let object = Segment { conversation: to.conversation_id.clone(), entries };
            state.blobs.put_segment(location.place(), &row.conversation_id, &row.id, object.encode()).await?;
        }
        state.store.record_segment(&to.conversation_id, segment.as_ref(), count, last.seq).await?;
        moved += count;
        through = last.seq;
        if due.len() < rows.len() || (rows.len() as i64) < ENTRIES_PER_SEGMENT {
            return Ok(moved);
        }
    }
}

/// Writes stale segments again without their erased entries, and deletes
/// the objects of replaced ones; how many segments were tidied.
pub async fn tidy(state: &AppState) -> Result<usize, SegmentError> {
    let _turn = state.conversations.segment_work.lock().await;
    let mut tidied = 0;
    for segment in state.store.segments_to_tidy(PER_ROUND).await? {
        match tidy_one(state, &segment).await {
            Ok(()) => tidied += 1,
            Err(SegmentError::Blob(err)) => {
                tracing::warn!(segment = %segment.id, error = %err, "could not tidy a message segment yet");
            }
            Err(err) => return Err(err),
        }
    }
    Ok(tidied)
}

async fn tidy_one(state: &AppState, old: &SegmentRow) -> Result<(), SegmentError> {
    let location = location(state, &old.storage_id).await?;
    if old.stale && !old.erasing {
        let kept = state.store.entries_in_segment(old).await?;
        let new = if kept.is_empty() {
            None
        } else {
            let bytes = state.blobs.get_segment(location.place(), &old.conversation_id, &old.id).await?;
            let mut object = decode(&old.id, &bytes)?;
            object.entries.retain(|(seq, _)| kept.binary_search(seq).is_ok());
            if object.entries.len() != kept.len() {
                return Err(SegmentError::Corrupt(old.id.clone()));
            }
            let row =
                SegmentRow { id: new_id(), stale: false, erasing: false, created_at_ms: state.now_ms(), ..old.clone() };
            state.blobs.put_segment(location.place(), &row.conversation_id, &row.id, object.encode()).await?;
            Some(row)
        };
        state.store.replace_segment(old, new.as_ref(), kept.len()).await?;
    }
    state.blobs.erase_segment(location.place(), &old.conversation_id, &old.id).await?;
    state.store.forget_segment(&old.id).await?;
    Ok(())
}

/// Fills the bodies of `rows` that moved to segments, in place. A segment
/// replaced while this read (a message in it erased meanwhile) is read
/// again from the rows as they are now.
pub async fn fill(state: &AppState, conversation_id: &str, rows: &mut [EntryRow]) -> Result<(), SegmentError> {
    for _ in 0..3 {
        let mut wanted: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            if let Some(segment) = row.in_segment() {
                wanted.entry(segment.to_owned()).or_default().push(i);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        for (segment_id, at) in wanted {
            match read_segment(state, conversation_id, &segment_id).await? {
                Some(segment) => {
                    for i in at {
                        let body =
                            segment.body(rows[i].seq).ok_or_else(|| SegmentError::Corrupt(segment_id.clone()))?;
                        rows[i].body_json = body.to_owned();
                    }
                }
                None => {
                    // Replaced meanwhile: the rows name the new one now.
                    for i in at {
                        let seq = rows[i].seq;
                        let fresh = state.store.conversation_entry(conversation_id, seq).await?;
                        rows[i] = fresh.ok_or(StoreError::NotFound("entry"))?;
                    }
                }
            }
        }
    }
    Err(SegmentError::Corrupt(format!("a segment of {conversation_id} kept moving while it was read")))
}

fn decode(id: &str, bytes: &[u8]) -> Result<Segment, SegmentError> {
    Segment::decode(bytes).map_err(|_| SegmentError::Corrupt(id.to_owned()))
}

/// A segment's bodies by `seq`; `None` if it is gone (replaced).
async fn read_segment(
    state: &AppState,
    conversation_id: &str,
    segment_id: &str,
) -> Result<Option<Segment>, SegmentError> {
    let Some(row) = state.store.segment(segment_id).await? else { return Ok(None) };
    if row.conversation_id != conversation_id {
        return Err(SegmentError::Corrupt(segment_id.to_owned()));
    }
    let location = location(state, &row.storage_id).await?;
    let bytes = match state.blobs.get_segment(location.place(), conversation_id, segment_id).await {
        Ok(bytes) => bytes,
        Err(BlobError::NotFound) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let object = decode(segment_id, &bytes)?;
    if object.conversation != conversation_id {
        return Err(SegmentError::Corrupt(segment_id.to_owned()));
    }
    Ok(Some(object))
}

/// Moves what is due and tidies what is stale, every
/// `ServerConfig::segment_every`, for as long as the server's state lives.
pub async fn run_forever(state: std::sync::Weak<AppState>) {
    let Some(period) = state.upgrade().map(|s| s.config.segment_every) else { return };
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(state) = state.upgrade() else { return };
        round(&state).await;
    }
}

async fn round(state: &AppState) {
    match move_due(state).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(entries = n, "moved messages to their organisations' buckets"),
        Err(err) => tracing::warn!(error = %err, "moving messages to buckets failed"),
    }
    match tidy(state).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(segments = n, "rewrote or deleted message segments"),
        Err(err) => tracing::warn!(error = %err, "tidying message segments failed"),
    }
}

/// Tidies in the background what a deletion just made stale, so the
/// message leaves the bucket without waiting for the next round.
pub fn tidy_soon(state: &SharedState) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(err) = tidy(&state).await {
            tracing::warn!(error = %err, "tidying message segments failed; the next round tries again");
        }
    });
}
