//! Group commit: the changes of every conversation on this node, written
//! together.
//!
//! A conversation already writes one change at a time (its turn), and a
//! busy conversation's waiting messages as one change. Changes to
//! different conversations would still each take a transaction and a
//! durable commit of their own: the cost that bounds how many direct
//! messages a node takes per second, a thousand conversations each with
//! one message waiting. The committer task writes whatever changes wait
//! when it is free in one transaction (`Store::change_conversations`) and
//! answers each on its own. An idle node writes a change at once, as
//! before; a busy one commits once for many conversations. A change that
//! fails (a retry whose message is in) fails the transaction; its
//! changes are then written one by one, so each gets its own answer.
//!
//! The task owns the writes, so a caller that goes away (a client that
//! disconnects mid-request) never cuts a transaction short: the change is
//! written or refused whole, and the version check tells the next writer.

use conclave_store::{ConversationChange, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most changes in one transaction: a bounded commit, so the first change
/// of a long queue is not kept waiting for the last.
const MOST_PER_COMMIT: usize = 256;

/// The committer task's queue.
pub(crate) struct Committer {
    queue: mpsc::UnboundedSender<Pending>,
    /// For writing alone should the task be gone.
    store: Store,
}

struct Pending {
    id: String,
    version: i64,
    change: ConversationChange,
    answer: oneshot::Sender<Written>,
}

/// What became of a change, and the change itself, back for the caller to
/// tell devices of.
pub(crate) struct Written {
    /// `Ok(false)`: another writer took the version first; nothing written.
    pub stored: Result<bool, StoreError>,
    pub change: ConversationChange,
}

impl Committer {
    /// Starts the task, on the current runtime.
    pub fn start(store: Store) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(commit_waiting(store.clone(), waiting));
        Self { queue, store }
    }

    /// Writes `change` over conversation `id` if it is still at `version`,
    /// in the next transaction the task commits.
    pub async fn write(&self, id: &str, version: i64, change: ConversationChange) -> Written {
        let (answer, written) = oneshot::channel();
        let pending = Pending { id: id.to_owned(), version, change, answer };
        if let Err(mpsc::error::SendError(pending)) = self.queue.send(pending) {
            let stored = self.store.change_conversation(&pending.id, version, &pending.change).await;
            return Written { stored, change: pending.change };
        }
        // Unanswered only if the task stopped mid-commit: whether the change
        // is in is not known, so it is decided again on the stored state,
        // as when another writer was first (a message's client id keeps a
        // retry from being a second copy).
        written.await.unwrap_or_else(|_| Written { stored: Ok(false), change: ConversationChange::default() })
    }
}

async fn commit_waiting(store: Store, mut waiting: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        while batch.len() < MOST_PER_COMMIT {
            match waiting.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let outcomes = write_batch(&store, &batch).await;
        tracing::debug!(changes = batch.len(), took_ms = started.elapsed().as_secs_f64() * 1e3, "group commit");
        for (pending, stored) in batch.into_iter().zip(outcomes) {
            let _ = pending.answer.send(Written { stored, change: pending.change });
        }
    }
}

/// One outcome per change, in order. A transaction that fails as a whole
/// (one change's error: a retry whose message is in, a file another
/// message took; or a lost connection) is tried again one change at a
/// time, so each gets an outcome of its own.
async fn write_batch(store: &Store, batch: &[Pending]) -> Vec<Result<bool, StoreError>> {
    if batch.len() > 1 {
        let changes: Vec<_> = batch.iter().map(|p| (p.id.as_str(), p.version, &p.change)).collect();
        match store.change_conversations(&changes).await {
            Ok(outcomes) => return outcomes.into_iter().map(Ok).collect(),
            Err(StoreError::Conflict(_)) => {}
            Err(err) => {
                tracing::warn!(%err, changes = batch.len(), "a group commit failed; writing its changes one by one")
            }
        }
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for p in batch {
        outcomes.push(store.change_conversation(&p.id, p.version, &p.change).await);
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_proto::{OrgPolicy, Plan};
    use conclave_store::testing::TestDatabase;
    use conclave_store::{Engine, NewConversation, NewUser};

    /// Many conversations' changes at once, as a busy node makes them: each
    /// gets its own answer, and a stale one is refused without holding the
    /// others back.
    async fn many_conversations_at_once(engine: Engine) {
        let db = TestDatabase::new(engine).await;
        let store = db.store().await;
        let owner = NewUser {
            email: "o@acme.test",
            display_name: "Owner",
            password_hash: "x",
            org_id: None,
            role: None,
            now_ms: 1,
        };
        let policy = OrgPolicy::defaults(Plan::Free, &["eu".to_owned()]);
        let (org, _) = store.create_org_with_new_owner("Acme", Plan::Free, &policy, &owner).await.unwrap();
        let ids: Vec<String> = (0..60).map(|i| format!("c{i}")).collect();
        for id in &ids {
            let new = NewConversation {
                id: id.clone(),
                org_id: org.id.clone(),
                kind: "group".to_owned(),
                name: Some(id.clone()),
                direct_pair: None,
                created_at_ms: 1,
            };
            let founding = ConversationChange { state_json: Some("{}".to_owned()), ..ConversationChange::default() };
            store.create_conversation(&new, &founding).await.unwrap();
        }
        let version = store.conversation("c0").await.unwrap().unwrap().version;
        let committer = Committer::start(store.clone());
        let change = ConversationChange { last_seq: 7, ..ConversationChange::default() };
        let writes = ids.iter().enumerate().map(|(i, id)| {
            // The last one is stale: someone else wrote that conversation first.
            let at = if i == ids.len() - 1 { version + 5 } else { version };
            committer.write(id, at, change.clone())
        });
        let outcomes: Vec<bool> =
            futures_util::future::join_all(writes).await.into_iter().map(|w| w.stored.unwrap()).collect();
        assert!(outcomes[..ids.len() - 1].iter().all(|o| *o), "{outcomes:?}");
        assert!(!outcomes[ids.len() - 1], "the stale change is refused");
        for (i, id) in ids.iter().enumerate() {
            let row = store.conversation(id).await.unwrap().unwrap();
            let expected = if i == ids.len() - 1 { (version, 0) } else { (version + 1, 7) };
            assert_eq!((row.version, row.last_seq), expected, "{id}");
        }
    }

    #[tokio::test]
    async fn many_conversations_at_once_sqlite() {
        many_conversations_at_once(Engine::Sqlite).await;
    }

    #[tokio::test]
    async fn many_conversations_at_once_postgres() {
        many_conversations_at_once(Engine::Postgres).await;
    }
}
