//! Raft's durable half in one redb file, `DIR/raft.redb`: the log, the vote, the committed
//! pointer, the state machine and its latest snapshot.
//!
//! Every storage call runs its redb transaction on tokio's blocking pool (`spawn_blocking`):
//! a commit ends in an fsync, and an fsync on a runtime worker would stall the QUIC mesh and
//! VRRP timers that share the runtime. The data is tiny, so the cost is one thread hop per call.
//! openraft calls the log store and the state machine one request at a time each, so writes
//! stay in order without locks of our own.
//!
//! The state machine is persisted on every `apply` (in the same transaction as its
//! last-applied pointer), so a restarted director has its state at once and replays nothing
//! it had applied; a snapshot is only for catching up a director whose log was purged.

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{EntryPayload, LogState, RaftLogReader, RaftSnapshotBuilder, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::state::{CommandReply, DEFLATE_ABOVE, FleetState, MAX_CONFIG_JSON};
use super::types::{
    Entry, LogId, NodeId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// Log index → postcard `Entry`.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// Named records, each postcard-encoded (keys below).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";
const STATE_MACHINE: &str = "state_machine";
const SNAPSHOT: &str = "snapshot";

/// The file's name inside the state directory.
pub const RAFT_FILE: &str = "raft.redb";

/// Why the Raft store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {dir}: {source}")]
    Dir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("redb: {0}")]
    Redb(#[from] redb::Error),
    #[error("a stored record does not decode: {0}")]
    Codec(#[from] postcard::Error),
    #[error("snapshot does not inflate: {0}")]
    Inflate(String),
    #[error("storage task failed: {0}")]
    Task(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Redb(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// The state machine as persisted: the fleet state and the Raft pointers that go with it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    fleet: FleetState,
}

/// A snapshot as kept in redb: openraft's metadata and the postcard `FleetState`.
#[derive(Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// Counters and pointers shared with [`super::Fleet::metrics`].
#[derive(Debug, Default)]
pub(crate) struct StoreStats {
    /// Last committed index + 1; 0 = nothing committed (index 0 is a real entry).
    committed_plus_one: AtomicU64,
    snapshots_installed: AtomicU64,
}

impl StoreStats {
    pub(crate) fn committed(&self) -> Option<u64> {
        self.committed_plus_one
            .load(Ordering::Relaxed)
            .checked_sub(1)
    }
    pub(crate) fn snapshots_installed(&self) -> u64 {
        self.snapshots_installed.load(Ordering::Relaxed)
    }
}

/// Opens (or creates) `dir/raft.redb` and returns the two halves openraft wants.
pub(crate) fn open(dir: &Path) -> Result<Opened, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
        dir: dir.display().to_string(),
        source,
    })?;
    let closed = Arc::new(AtomicBool::new(false));
    let db = Arc::new(Db {
        db: Database::create(dir.join(RAFT_FILE))?,
        _closed: CloseOnDrop(closed.clone()),
    });
    // Create both tables up front: a read transaction cannot open a table never written.
    let tx = db.begin_write()?;
    tx.open_table(LOG)?;
    tx.open_table(META)?;
    tx.commit()?;

    let stats = Arc::new(StoreStats::default());
    let read = db.begin_read()?;
    let meta = read.open_table(META)?;
    let applied: Applied = get(&meta, STATE_MACHINE)?.unwrap_or_default();
    let committed: Option<LogId> = get(&meta, COMMITTED)?.flatten();
    stats
        .committed_plus_one
        .store(committed.map_or(0, |c| c.index + 1), Ordering::Relaxed);
    drop(meta);
    drop(read);

    let (state_tx, _) = watch::channel(applied.fleet.clone());
    let log = LogStore {
        db: db.clone(),
        stats: stats.clone(),
    };
    let sm = StateMachineStore {
        db,
        applied: Arc::new(Mutex::new(applied)),
        state_tx,
        stats: stats.clone(),
        // Snapshot ids only need to differ between builds; seeding from the clock keeps them
        // distinct across restarts too.
        snapshot_seq: Arc::new(AtomicU64::new(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )),
    };
    Ok(Opened {
        log,
        sm,
        stats,
        closed: Closed(closed),
    })
}

/// What [`open`] hands back: openraft's two halves, the shared counters, and a way to see when
/// openraft's tasks have let go of the file.
pub(crate) struct Opened {
    pub(crate) log: LogStore,
    pub(crate) sm: StateMachineStore,
    pub(crate) stats: Arc<StoreStats>,
    pub(crate) closed: Closed,
}

/// Becomes true once the database has been dropped, i.e. redb has closed the file (its drop
/// writes the clean-shutdown mark and releases the file lock) and it may be opened again.
#[derive(Clone)]
pub(crate) struct Closed(Arc<AtomicBool>);

impl Closed {
    pub(crate) fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The database with a close signal. Fields drop in order, so `Closed` is set only after
/// `Database::drop` has finished; watching the `Arc`'s strong count would fire while that drop
/// is still running on another thread.
struct Db {
    db: Database,
    _closed: CloseOnDrop,
}

struct CloseOnDrop(Arc<AtomicBool>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl std::ops::Deref for Db {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.db
    }
}

fn get<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key)? {
        Some(v) => Ok(Some(postcard::from_bytes(v.value())?)),
        None => Ok(None),
    }
}

fn put<T: Serialize>(
    table: &mut redb::Table<&'static str, &'static [u8]>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = postcard::to_allocvec(value)?;
    table.insert(key, bytes.as_slice())?;
    Ok(())
}

/// Runs a redb job on the blocking pool (see the module comment).
async fn blocking<T, F>(job: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

/// The log, the vote and the committed pointer. Cloning shares the database, which is how the
/// replication tasks get their readers.
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Arc<Db>,
    stats: Arc<StoreStats>,
}

impl LogStore {
    async fn meta_get<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StoreError> {
        let db = self.db.clone();
        blocking(move || {
            let read = db.begin_read()?;
            let meta = read.open_table(META)?;
            get(&meta, key)
        })
        .await
    }

    async fn meta_put<T: Serialize + Send + 'static>(
        &self,
        key: &'static str,
        value: T,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        blocking(move || {
            let mut tx = db.begin_write()?;
            tx.set_durability(durability)?;
            {
                let mut meta = tx.open_table(META)?;
                put(&mut meta, key, &value)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let bounds: (Bound<u64>, Bound<u64>) =
            (range.start_bound().cloned(), range.end_bound().cloned());
        let db = self.db.clone();
        blocking(move || {
            let read = db.begin_read()?;
            let log = read.open_table(LOG)?;
            let mut entries = Vec::new();
            for item in log.range::<u64>(bounds)? {
                let (_, v) = item?;
                entries.push(postcard::from_bytes::<Entry>(v.value())?);
            }
            Ok(entries)
        })
        .await
        .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let db = self.db.clone();
        blocking(move || {
            let read = db.begin_read()?;
            let meta = read.open_table(META)?;
            let last_purged: Option<LogId> = get(&meta, LAST_PURGED)?;
            let log = read.open_table(LOG)?;
            let last = match log.last()? {
                Some((_, v)) => Some(postcard::from_bytes::<Entry>(v.value())?.log_id),
                None => None,
            };
            Ok(LogState {
                last_purged_log_id: last_purged,
                last_log_id: last.or(last_purged),
            })
        })
        .await
        .map_err(|e| StorageIOError::read_logs(&e).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.meta_put(VOTE, *vote, Durability::Immediate)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.meta_get(VOTE)
            .await
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    /// Not fsynced: a committed pointer that lags after a crash only means re-learning the
    /// commit from the leader, and the state machine carries its own applied pointer. The next
    /// durable commit (any log append) makes it durable anyway.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.stats
            .committed_plus_one
            .store(committed.map_or(0, |c| c.index + 1), Ordering::Relaxed);
        self.meta_put(COMMITTED, committed, Durability::None)
            .await
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.meta_get::<Option<LogId>>(COMMITTED)
            .await
            .map(Option::flatten)
            .map_err(|e| StorageIOError::read(&e).into())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let db = self.db.clone();
        let written = blocking(move || {
            let tx = db.begin_write()?;
            {
                let mut log = tx.open_table(LOG)?;
                for entry in &entries {
                    let bytes = postcard::to_allocvec(entry)?;
                    log.insert(entry.log_id.index, bytes.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await;
        // The commit above is durable when it returns, so the flush is reported right away.
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let db = self.db.clone();
        blocking(move || {
            let tx = db.begin_write()?;
            {
                let mut log = tx.open_table(LOG)?;
                log.retain_in(log_id.index.., |_, _| false)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let db = self.db.clone();
        blocking(move || {
            // The pointer and the deletion commit together, so the log never has a hole
            // between the last purged id and the first entry.
            let tx = db.begin_write()?;
            {
                let mut meta = tx.open_table(META)?;
                put(&mut meta, LAST_PURGED, &log_id)?;
                let mut log = tx.open_table(LOG)?;
                log.retain_in(..=log_id.index, |_, _| false)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

/// The fleet state machine. The in-memory copy under the mutex is what redb holds; the watch
/// channel publishes each change to the agent.
pub(crate) struct StateMachineStore {
    db: Arc<Db>,
    applied: Arc<Mutex<Applied>>,
    state_tx: watch::Sender<FleetState>,
    stats: Arc<StoreStats>,
    snapshot_seq: Arc<AtomicU64>,
}

impl StateMachineStore {
    pub(crate) fn subscribe(&self) -> watch::Receiver<FleetState> {
        self.state_tx.subscribe()
    }

    fn current(&self) -> Applied {
        self.applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, next: Applied) {
        let fleet = next.fleet.clone();
        *self.applied.lock().unwrap_or_else(PoisonError::into_inner) = next;
        self.state_tx.send_if_modified(|old| {
            let changed = *old != fleet;
            if changed {
                *old = fleet;
            }
            changed
        });
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let a = self.current();
        Ok((a.last_applied, a.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandReply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut next = self.current();
        let mut replies = Vec::new();
        for entry in entries {
            next.last_applied = Some(entry.log_id);
            replies.push(match entry.payload {
                EntryPayload::Blank => CommandReply::Done,
                EntryPayload::Normal(command) => next.fleet.apply(command),
                EntryPayload::Membership(m) => {
                    next.membership = StoredMembership::new(Some(entry.log_id), m);
                    CommandReply::Done
                }
            });
        }
        let db = self.db.clone();
        let record = next.clone();
        blocking(move || {
            let tx = db.begin_write()?;
            {
                let mut meta = tx.open_table(META)?;
                put(&mut meta, STATE_MACHINE, &record)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_state_machine(&e))?;
        self.replace(next);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            applied: self.current(),
            seq: self.snapshot_seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let fleet = decode_snapshot(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let next = Applied {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            fleet,
        };
        let db = self.db.clone();
        let record = next.clone();
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        blocking(move || {
            // State and snapshot replace the old ones in one transaction: a crash leaves either
            // the old pair or the new pair.
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(META)?;
                put(&mut table, STATE_MACHINE, &record)?;
                put(&mut table, SNAPSHOT, &stored)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.replace(next);
        self.stats
            .snapshots_installed
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let db = self.db.clone();
        let stored: Option<StoredSnapshot> = blocking(move || {
            let read = db.begin_read()?;
            let meta = read.open_table(META)?;
            get(&meta, SNAPSHOT)
        })
        .await
        .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// First byte of a deflated snapshot. A plain one is postcard's `FleetState`, whose first byte
/// (the configuration's `Option` tag) is 0 or 1.
const DEFLATED_SNAPSHOT: u8 = b'Z';

/// A snapshot's bytes: postcard's `FleetState`, deflated behind [`DEFLATED_SNAPSHOT`] when it
/// is larger than [`DEFLATE_ABOVE`] (only states no older version could replicate anyway: see
/// [`crate::raft::Command::ApplyConfigDeflated`]).
pub(crate) fn encode_snapshot(fleet: &FleetState) -> Result<Vec<u8>, StoreError> {
    let plain = postcard::to_allocvec(fleet)?;
    if plain.len() <= DEFLATE_ABOVE {
        return Ok(plain);
    }
    let mut data = vec![DEFLATED_SNAPSHOT];
    data.extend(miniz_oxide::deflate::compress_to_vec(&plain, 6));
    Ok(data)
}

pub(crate) fn decode_snapshot(data: &[u8]) -> Result<FleetState, StoreError> {
    match data.split_first() {
        Some((&DEFLATED_SNAPSHOT, deflated)) => {
            let plain = miniz_oxide::inflate::decompress_to_vec_with_limit(
                deflated,
                MAX_CONFIG_JSON + (16 << 20),
            )
            .map_err(|e| StoreError::Inflate(format!("{:?}", e.status)))?;
            Ok(postcard::from_bytes(&plain)?)
        }
        _ => Ok(postcard::from_bytes(data)?),
    }
}

/// Builds a snapshot from the state as it was when openraft asked for the builder.
pub(crate) struct SnapshotBuilder {
    db: Arc<Db>,
    applied: Applied,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let data = encode_snapshot(&self.applied.fleet)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let snapshot_id = match self.applied.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, self.seq),
            None => format!("none-{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: self.applied.last_applied,
            last_membership: self.applied.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        let db = self.db.clone();
        blocking(move || {
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(META)?;
                put(&mut table, SNAPSHOT, &stored)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{CommittedLeaderId, Membership};
    use tempfile::TempDir;

    use super::super::state::Command;
    use super::super::types::DirectorNode;
    use super::*;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for Builder {
        async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
            let dir = TempDir::new().map_err(|e| StorageIOError::write(&e))?;
            let opened = open(dir.path()).map_err(|e| StorageIOError::write(&e))?;
            Ok((dir, opened.log, opened.sm))
        }
    }

    /// openraft's own conformance suite for `RaftLogStorage` + `RaftStateMachine`.
    #[test]
    fn passes_openraft_storage_suite() {
        Suite::test_all(Builder).expect("openraft storage suite");
    }

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn entry(term: u64, index: u64, payload: EntryPayload<TypeConfig>) -> Entry {
        Entry {
            log_id: log_id(term, index),
            payload,
        }
    }

    #[tokio::test]
    async fn everything_survives_reopening_the_file() {
        let dir = TempDir::new().expect("tempdir");
        let members = Membership::new(
            vec![BTreeSet::from([1])],
            BTreeMap::from([(1, DirectorNode::new("d1", "a:1"))]),
        );
        let entries = vec![
            entry(1, 0, EntryPayload::Membership(members.clone())),
            entry(1, 1, EntryPayload::Blank),
            entry(
                1,
                2,
                EntryPayload::Normal(Command::Drain {
                    director: "d9".into(),
                }),
            ),
            entry(
                2,
                3,
                EntryPayload::Normal(Command::SetAssignment {
                    epoch: 4,
                    blob: vec![1, 2],
                }),
            ),
        ];
        let vote = Vote::new_committed(2, 1);
        {
            let Opened {
                mut log, mut sm, ..
            } = open(dir.path()).expect("open");
            log.save_vote(&vote).await.expect("vote");
            log.blocking_append(entries.clone()).await.expect("append");
            log.save_committed(Some(log_id(2, 3)))
                .await
                .expect("committed");
            sm.apply(entries[..3].to_vec()).await.expect("apply");
            let mut builder = sm.get_snapshot_builder().await;
            builder.build_snapshot().await.expect("snapshot");
            sm.apply(entries[3..].to_vec()).await.expect("apply");
            log.purge(log_id(1, 1)).await.expect("purge");
        }

        let Opened {
            mut log,
            mut sm,
            stats,
            closed,
        } = open(dir.path()).expect("reopen");
        assert!(!closed.is_closed());
        assert_eq!(log.read_vote().await.expect("vote"), Some(vote));
        assert_eq!(log.read_committed().await.expect("c"), Some(log_id(2, 3)));
        assert_eq!(stats.committed(), Some(3));
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1)));
        assert_eq!(state.last_log_id, Some(log_id(2, 3)));
        let kept = log.try_get_log_entries(0..10).await.expect("entries");
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].log_id, log_id(1, 2));
        assert_eq!(kept[1].payload, entries[3].payload);

        let (applied, membership) = sm.applied_state().await.expect("applied");
        assert_eq!(applied, Some(log_id(2, 3)));
        assert_eq!(membership.membership(), &members);
        let fleet = sm.subscribe().borrow().clone();
        assert!(fleet.drained.contains("d9"));
        assert_eq!(fleet.assignment, Some((4, vec![1, 2])));
        let snap = sm
            .get_current_snapshot()
            .await
            .expect("read snapshot")
            .expect("a snapshot");
        assert_eq!(snap.meta.last_log_id, Some(log_id(1, 2)));
        let in_snapshot: FleetState =
            decode_snapshot(snap.snapshot.get_ref()).expect("decode snapshot");
        assert!(in_snapshot.drained.contains("d9") && in_snapshot.assignment.is_none());

        drop((log, sm));
        assert!(closed.is_closed(), "dropping the handles closes the file");
    }

    #[test]
    fn large_snapshots_are_deflated_small_ones_stay_plain() {
        let small = FleetState::default();
        let plain = encode_snapshot(&small).expect("encode");
        assert_eq!(plain, postcard::to_allocvec(&small).expect("postcard"));
        assert_eq!(decode_snapshot(&plain).expect("decode"), small);
        let large = FleetState {
            config_json: Some("{\"x\": 1}".repeat(100_000).into()),
            config_version: 3,
            ..FleetState::default()
        };
        let data = encode_snapshot(&large).expect("encode");
        assert_eq!(data.first(), Some(&DEFLATED_SNAPSHOT));
        assert!(data.len() * 20 < 800_000, "{} bytes", data.len());
        assert_eq!(decode_snapshot(&data).expect("decode"), large);
        assert!(decode_snapshot(&[DEFLATED_SNAPSHOT, 1, 2, 3]).is_err());
    }
}
