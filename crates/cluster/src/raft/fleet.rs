//! `Fleet`: the agent's handle on the replicated fleet state. Everything openraft-shaped stays
//! behind it; callers see commands, replies, the state, metrics and plain errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_config::model::Config;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::watch;

use super::network::{Heard, NetworkFactory, RaftService, Transport};
use super::state::{Command, CommandReply, FleetState};
use super::store::{self, Closed, StoreError, StoreStats};
use super::types::{DirectorNode, NodeId, Raft};
use super::voters;

/// Timing and compaction knobs. The defaults suit directors on one LAN: Raft only carries
/// operator actions and placement epochs, and VRRP covers failover while an election runs.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Names the fleet in openraft's logs; directors of one fleet share it.
    pub cluster_name: String,
    pub heartbeat: Duration,
    /// A follower that hears no leader for a random time in this range calls an election.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot once this many entries were applied since the last one.
    pub snapshot_after_logs: u64,
    /// Entries kept in the log behind a snapshot, so a briefly absent director catches up from
    /// the log instead of a snapshot.
    pub logs_kept_after_snapshot: u64,
    /// How long [`Fleet::propose`] and the membership calls wait for a commit.
    pub propose_timeout: Duration,
    /// A learner is live, for promotion to voter, if the leader had an answer from it this
    /// recently (it sends every member a heartbeat each `heartbeat`).
    pub live_within: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            cluster_name: "flotilla".into(),
            heartbeat: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(1000),
            snapshot_after_logs: 1000,
            logs_kept_after_snapshot: 100,
            propose_timeout: Duration::from_secs(5),
            live_within: Duration::from_secs(2),
        }
    }
}

/// A director's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    /// Replicates but does not vote (beyond five voters, or not promoted yet: see
    /// [`super::voters`]).
    Learner,
    Shutdown,
}

/// What `flotilla status` and the Prometheus exporter show about Raft on this director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetMetrics {
    pub node: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Snapshots received from a leader since this process started.
    pub snapshots_installed: u64,
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    /// Every member, voter or learner, with its name and address.
    pub members: BTreeMap<NodeId, DirectorNode>,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("raft store: {0}")]
    Store(#[from] StoreError),
    #[error("raft settings: {0}")]
    Settings(String),
    /// Only the leader commits; forward to `leader` (unknown during an election).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// No commit within the deadline: no quorum reachable, or an election in progress. The
    /// entry may still commit later; every command is idempotent or epoch-guarded.
    #[error("no commit within {0:?}")]
    Timeout(Duration),
    #[error("the configuration does not decode as flotilla's model: {0}")]
    InvalidConfig(#[source] serde_json::Error),
    #[error("{0}")]
    InvalidConfigBlob(String),
    #[error("the fleet is already initialized")]
    AlreadyInitialized,
    #[error("membership: {0}")]
    Membership(String),
    /// The Raft node has stopped (shut down, or a storage failure).
    #[error("raft stopped: {0}")]
    Stopped(String),
}

/// One director's member of the fleet's Raft group.
///
/// Clones share one Raft node. Call [`Fleet::shutdown`] to stop it: that also closes the store
/// file. A storage failure stops the node too (every call then returns
/// [`FleetError::Stopped`]); the owner restarts it with [`Fleet::open`] on the same directory.
#[derive(Clone)]
pub struct Fleet {
    id: NodeId,
    raft: Raft,
    state: watch::Receiver<FleetState>,
    stats: Arc<StoreStats>,
    closed: Closed,
    propose_timeout: Duration,
    heard: Heard,
    live_within: Duration,
}

/// Entries in one AppendEntries request.
pub const MAX_ENTRIES_PER_APPEND: u64 = 64;
/// Bytes of snapshot in one InstallSnapshot request.
pub const SNAPSHOT_CHUNK_BYTES: u64 = 1 << 20;
/// A learner is caught up, for promotion to voter, when its replicated log is at most this
/// many entries behind the leader's: one append away.
pub const CAUGHT_UP_WITHIN: u64 = MAX_ENTRIES_PER_APPEND;

/// How long [`Fleet::shutdown`] waits for openraft's tasks to close the store.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

impl Fleet {
    /// Opens (or creates) the Raft store in `dir` and starts the Raft node. A director
    /// reopened on its directory has its vote, log and applied state back.
    pub async fn open<T: Transport>(
        dir: &Path,
        id: NodeId,
        transport: T,
        config: FleetConfig,
    ) -> Result<Self, FleetError> {
        let raft_config = openraft::Config {
            cluster_name: config.cluster_name.clone(),
            heartbeat_interval: millis(config.heartbeat),
            election_timeout_min: millis(config.election_timeout_min),
            election_timeout_max: millis(config.election_timeout_max),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_after_logs),
            max_in_snapshot_log_to_keep: config.logs_kept_after_snapshot,
            // Bound one request's size for the transport (see `Transport`): every
            // `ApplyConfig` entry carries a whole configuration.
            max_payload_entries: MAX_ENTRIES_PER_APPEND,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            ..Default::default()
        }
        .validate()
        .map_err(|e| FleetError::Settings(e.to_string()))?;

        let dir: PathBuf = dir.to_path_buf();
        // Opening may replay redb's journal after a crash: keep it off the runtime workers.
        let opened = tokio::task::spawn_blocking(move || store::open(&dir))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        let state = opened.sm.subscribe();
        let heard = Heard::default();
        let raft = Raft::new(
            id,
            Arc::new(raft_config),
            NetworkFactory::new(transport, heard.clone()),
            opened.log,
            opened.sm,
        )
        .await
        .map_err(|e| FleetError::Stopped(e.to_string()))?;
        Ok(Self {
            id,
            raft,
            state,
            stats: opened.stats,
            closed: opened.closed,
            propose_timeout: config.propose_timeout,
            heard,
            live_within: config.live_within,
        })
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The receiving side for this director's transport: peers' requests go to
    /// [`RaftService::serve`].
    pub fn service(&self) -> RaftService {
        RaftService::new(self.raft.clone())
    }

    /// Starts a new fleet with `members` as its first voters (the [`super::MAX_VOTERS`] lowest
    /// ids if there are more). Called once, on one director, which must be among them; the
    /// agent starts with its founder alone ([`super::founder`]) since it cannot know yet who
    /// else is running. [`Fleet::reconcile_membership`] on the leader adds the rest as learners and
    /// promotes them as they come up.
    pub async fn initialize(
        &self,
        members: &BTreeMap<NodeId, DirectorNode>,
    ) -> Result<(), FleetError> {
        let ids: BTreeSet<NodeId> = members.keys().copied().collect();
        let chosen = voters(&BTreeSet::new(), &ids, &ids);
        let voting: BTreeMap<NodeId, DirectorNode> = members
            .iter()
            .filter(|(id, _)| chosen.contains(id))
            .map(|(id, node)| (*id, node.clone()))
            .collect();
        match self.raft.initialize(voting).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                Err(FleetError::AlreadyInitialized)
            }
            Err(RaftError::APIError(e)) => Err(FleetError::Membership(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(FleetError::Stopped(e.to_string())),
        }
    }

    /// Commits `command` and returns the state machine's reply. Only the leader commits: on
    /// another director this returns [`FleetError::NotLeader`] naming the leader, and the
    /// caller forwards (the agent's control API does, over the mesh).
    pub async fn propose(&self, command: Command) -> Result<CommandReply, FleetError> {
        // Checked before proposing, not when applying: see `FleetState::apply`. A large
        // configuration is deflated here, so every caller proposes `ApplyConfig`.
        let command = match command.config_json() {
            None => command,
            Some(json) => {
                let json = json.map_err(|e| FleetError::InvalidConfigBlob(e.to_string()))?;
                serde_json::from_str::<Config>(&json).map_err(FleetError::InvalidConfig)?;
                Command::config(json)
            }
        };
        let written = self
            .deadline(async { self.raft.client_write(command).await.map_err(write_error) })
            .await?;
        Ok(written.data)
    }

    /// The applied fleet state on this director.
    pub fn state(&self) -> FleetState {
        self.state.borrow().clone()
    }

    /// Every change of the applied fleet state, as it is applied on this director.
    pub fn watch(&self) -> watch::Receiver<FleetState> {
        self.state.clone()
    }

    pub fn metrics(&self) -> FleetMetrics {
        let m = self.raft.metrics().borrow().clone();
        self.convert(&m)
    }

    /// Waits until `pred` holds for this director's metrics, up to `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&FleetMetrics) -> bool,
    ) -> Result<FleetMetrics, FleetError> {
        let mut rx = self.raft.metrics();
        let wait = async {
            loop {
                let now = self.convert(&rx.borrow_and_update());
                if pred(&now) {
                    return Ok(now);
                }
                rx.changed()
                    .await
                    .map_err(|e| FleetError::Stopped(e.to_string()))?;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| FleetError::Timeout(timeout))?
    }

    /// Adds a director as a learner; returns once the membership change commits, without
    /// waiting for the learner to catch up (it may be down right now).
    pub async fn add_learner(&self, id: NodeId, node: DirectorNode) -> Result<(), FleetError> {
        self.deadline(async {
            self.raft
                .add_learner(id, node, false)
                .await
                .map_err(write_error)
        })
        .await?;
        Ok(())
    }

    /// Makes `voters` the voting set (joint consensus). With `retain`, voters left out stay
    /// as learners; without, they leave the membership.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        retain: bool,
    ) -> Result<(), FleetError> {
        self.membership_change(ChangeMembers::ReplaceAllVoters(voters), retain)
            .await
    }

    /// Brings the membership to `desired` (on the leader): adds missing directors as learners,
    /// updates the address of directors that moved, chooses the voters with [`voters`] (the
    /// current ones that stay, plus learners that are live and caught up for free seats),
    /// keeps the rest as learners and removes directors not in `desired`. Each step is a
    /// committed membership change; nothing is proposed when the membership already matches.
    /// Returns whether anything was changed.
    ///
    /// Call it again from time to time, not only when `desired` changes: a learner that
    /// starts (or catches up) later is promoted by a later call.
    /// Build `desired` with [`super::members`], which refuses id collisions.
    pub async fn reconcile_membership(
        &self,
        desired: &BTreeMap<NodeId, DirectorNode>,
    ) -> Result<bool, FleetError> {
        let (members, current_voters) = self.membership();
        let mut changed = false;
        let mut moved = BTreeMap::new();
        for (id, node) in desired {
            match members.get(id) {
                None => {
                    self.add_learner(*id, node.clone()).await?;
                    changed = true;
                }
                Some(known) if known != node => {
                    moved.insert(*id, node.clone());
                }
                Some(_) => {}
            }
        }
        if !moved.is_empty() {
            // openraft warns that `SetNodes` can split the brain when an id is given to a
            // different node. Ids here are hashes of names, so a new address under the same id
            // is the same director having moved: the safe case.
            self.membership_change(ChangeMembers::SetNodes(moved), true)
                .await?;
            changed = true;
        }
        let ids: BTreeSet<NodeId> = desired.keys().copied().collect();
        let target = voters(&current_voters, &ids, &self.ready());
        // Empty: every voter left the configuration and no learner is ready to take over.
        // The old voters stay until one is.
        if !target.is_empty() && target != current_voters {
            self.change_membership(target, true).await?;
            changed = true;
        }
        let (members, current_voters) = self.membership();
        let gone: BTreeSet<NodeId> = members
            .keys()
            .filter(|id| !desired.contains_key(id) && !current_voters.contains(id))
            .copied()
            .collect();
        if !gone.is_empty() {
            self.membership_change(ChangeMembers::RemoveNodes(gone), false)
                .await?;
            changed = true;
        }
        Ok(changed)
    }

    /// The members this director (as leader) could make voters now: itself, and every other
    /// member it had an answer from within `live_within` whose replicated log is within
    /// [`CAUGHT_UP_WITHIN`] entries of its own. Empty on a director that does not lead.
    fn ready(&self) -> BTreeSet<NodeId> {
        let m = self.raft.metrics().borrow().clone();
        let Some(replication) = m.replication.as_ref() else {
            return BTreeSet::new();
        };
        let matched = replication
            .iter()
            .map(|(id, log)| (*id, log.map(|l| l.index)));
        ready_members(
            self.id,
            m.last_log_index,
            matched,
            |id| self.heard.last(id),
            Instant::now(),
            self.live_within,
        )
    }

    async fn membership_change(
        &self,
        change: ChangeMembers<NodeId, DirectorNode>,
        retain: bool,
    ) -> Result<(), FleetError> {
        self.deadline(async {
            self.raft
                .change_membership(change, retain)
                .await
                .map_err(write_error)
        })
        .await?;
        Ok(())
    }

    /// Stops the Raft node and waits until the store file is closed, so the same directory
    /// can be opened again at once (a restarted cluster actor does). openraft's state-machine
    /// and replication tasks end shortly after its core, each dropping its store handle.
    pub async fn shutdown(&self) -> Result<(), FleetError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| FleetError::Stopped(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
        while !self.closed.is_closed() {
            if tokio::time::Instant::now() >= deadline {
                return Err(FleetError::Stopped(format!(
                    "the raft store was still open {CLOSE_WAIT:?} after shutdown"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Every member (voters and learners) and the voter ids, as this director last applied or
    /// appended them.
    fn membership(&self) -> (BTreeMap<NodeId, DirectorNode>, BTreeSet<NodeId>) {
        let m = self.raft.metrics().borrow().membership_config.clone();
        let members = m.nodes().map(|(id, n)| (*id, n.clone())).collect();
        (members, m.voter_ids().collect())
    }

    async fn deadline<T>(
        &self,
        call: impl Future<Output = Result<T, FleetError>>,
    ) -> Result<T, FleetError> {
        tokio::time::timeout(self.propose_timeout, call)
            .await
            .map_err(|_| FleetError::Timeout(self.propose_timeout))?
    }

    fn convert(&self, m: &RaftMetrics<NodeId, DirectorNode>) -> FleetMetrics {
        let membership = m.membership_config.membership();
        FleetMetrics {
            node: m.id,
            role: match m.state {
                ServerState::Leader => Role::Leader,
                ServerState::Follower => Role::Follower,
                ServerState::Candidate => Role::Candidate,
                ServerState::Learner => Role::Learner,
                ServerState::Shutdown => Role::Shutdown,
            },
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            commit_index: self.stats.committed(),
            last_applied: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            snapshots_installed: self.stats.snapshots_installed(),
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            members: membership
                .nodes()
                .map(|(id, node)| (*id, node.clone()))
                .collect(),
        }
    }
}

/// Who a leader `me` could make a voter: itself, and every member it had an answer from
/// within `live_within` of `now` whose `matched` log index (replicated there) is at most
/// [`CAUGHT_UP_WITHIN`] entries behind `last_log` (its own).
fn ready_members(
    me: NodeId,
    last_log: Option<u64>,
    matched: impl Iterator<Item = (NodeId, Option<u64>)>,
    last_heard: impl Fn(NodeId) -> Option<Instant>,
    now: Instant,
    live_within: Duration,
) -> BTreeSet<NodeId> {
    let last = last_log.unwrap_or(0);
    matched
        .filter(|(id, _)| {
            last_heard(*id).is_some_and(|t| now.saturating_duration_since(t) <= live_within)
        })
        .filter(|(_, m)| m.is_some_and(|i| i.saturating_add(CAUGHT_UP_WITHIN) >= last))
        .map(|(id, _)| id)
        .chain([me])
        .collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, DirectorNode>>) -> FleetError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => FleetError::NotLeader {
            leader: f.leader_id,
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            FleetError::Membership(e.to_string())
        }
        RaftError::Fatal(e) => FleetError::Stopped(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_members_answer_recently_and_are_at_most_one_append_behind() {
        let now = Instant::now();
        let live = Duration::from_secs(2);
        let heard = |id: NodeId| match id {
            // 2..=5 answered just now, 6 long ago, 7 never.
            2..=5 => now.checked_sub(Duration::from_millis(100)),
            6 => now.checked_sub(Duration::from_secs(60)),
            _ => None,
        };
        let last = 1000;
        let matched = [
            (2, Some(last)),
            (3, Some(last - CAUGHT_UP_WITHIN)),
            // Lagging: one entry more than an append behind.
            (4, Some(last - CAUGHT_UP_WITHIN - 1)),
            // Nothing replicated yet.
            (5, None),
            (6, Some(last)),
            (7, Some(last)),
        ];
        let r = ready_members(1, Some(last), matched.into_iter(), heard, now, live);
        assert_eq!(r, BTreeSet::from([1, 2, 3]));
        // A fresh fleet: nothing in the log yet, a member that answered is ready.
        let r = ready_members(
            1,
            None,
            [(2, None), (3, Some(0))].into_iter(),
            heard,
            now,
            live,
        );
        assert_eq!(r, BTreeSet::from([1, 3]));
        // The leader alone.
        assert_eq!(
            ready_members(9, Some(5), std::iter::empty(), heard, now, live),
            BTreeSet::from([9])
        );
    }
}
