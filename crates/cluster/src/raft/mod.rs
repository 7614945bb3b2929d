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
    Fleet, FleetConfig, FleetError, FleetMetrics, MAX_ENTRIES_PER_APPEND, Role,
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

/// Which directors vote: the first [`MAX_VOTERS`] by id (ids are hashes of names, so the order
/// is arbitrary but the same on every director); the rest are learners, which replicate the
/// state but do not count toward quorum.
pub fn voters(all: &[NodeId]) -> BTreeSet<NodeId> {
    let unique: BTreeSet<NodeId> = all.iter().copied().collect();
    unique.into_iter().take(MAX_VOTERS).collect()
}
