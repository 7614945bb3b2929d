//! The fleet's replicated state: operator actions (config, drain, pins) and placement epochs,
//! committed through Raft (openraft 0.9, `storage-v2`) with the log and state machine in one
//! redb file per director.
//!
//! openraft's types stay inside this module: the rest of flotilla uses [`Fleet`], [`Command`],
//! [`FleetState`], [`FleetMetrics`] and the byte-oriented [`Transport`], so moving to
//! openraft 0.10 touches only `raft/`.

mod fleet;
mod local;
mod network;
mod state;
mod store;
mod types;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

pub use fleet::{
    CAUGHT_UP_WITHIN, Fleet, FleetConfig, FleetError, FleetMetrics, MAX_ENTRIES_PER_APPEND, Role,
    SNAPSHOT_CHUNK_BYTES,
};
pub use local::{LocalRouter, LocalTransport};
pub use network::{RAFT_WIRE_VERSION, RaftService, Transport, TransportError};
pub use state::{
    Command, CommandReply, ConfigDecodeError, DEFLATE_ABOVE, FleetState, InflateError,
    MAX_CONFIG_JSON, Rejection,
};
pub use store::{RAFT_FILE, StoreError};
pub use types::{DirectorNode, IdCollision, NodeId, members, node_id};

/// At most this many voters: five tolerate two failures, and more voters only slow commits.
pub const MAX_VOTERS: usize = 5;

/// The voters the leader wants, given the `current` voters, the configuration's `members`
/// and the members that are `ready` (live and caught up, as the leader sees them; the leader
/// itself always is).
///
/// * A current voter still in `members` keeps its seat, live or not: a voter that is down
///   for good but still configured keeps counting toward quorum until the operator removes
///   it from the configuration. Demoting voters on liveness would move the quorum with every
///   crash and recovery (flapping), and a demotion needs a quorum to commit anyway.
/// * A voter no longer in `members` loses its seat.
/// * Free seats (up to [`MAX_VOTERS`]) go to `ready` members that are not voters yet, lowest
///   id first (ids are hashes of names: arbitrary, but the same on every director). A member
///   that is not running, or still catching up, stays a learner.
///
/// Never more than [`MAX_VOTERS`]: if `current` already has more (never made by this
/// function), the lowest ids keep their seats. The result is empty only when no current voter
/// stays and nobody is ready; the caller then leaves the membership as it is.
pub fn voters(
    current: &BTreeSet<NodeId>,
    members: &BTreeSet<NodeId>,
    ready: &BTreeSet<NodeId>,
) -> BTreeSet<NodeId> {
    let mut chosen: BTreeSet<NodeId> = current
        .intersection(members)
        .copied()
        .take(MAX_VOTERS)
        .collect();
    let free = MAX_VOTERS - chosen.len();
    let promoted: Vec<NodeId> = ready
        .intersection(members)
        .filter(|id| !chosen.contains(id))
        .copied()
        .take(free)
        .collect();
    chosen.extend(promoted);
    chosen
}

/// Which director starts a new fleet (with itself as the only voter; the others join as
/// learners and are promoted as they come up): the lowest id, so that every director agrees
/// without talking.
pub fn founder(all: &BTreeSet<NodeId>) -> Option<NodeId> {
    all.first().copied()
}
