//! The Raft type configuration and the identities it carries. This is the only place that names
//! openraft's generic parameters; the rest of flotilla sees `NodeId`, `DirectorNode`, `Command`
//! and `CommandReply`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use super::state::{Command, CommandReply};

/// A director's Raft identity: the 64-bit FNV-1a hash of its name (see [`node_id`]).
pub type NodeId = u64;

/// What Raft's membership records about a director: its name (the operator's handle, and the
/// key the QUIC mesh knows its peers by) and the address the mesh reaches it at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectorNode {
    pub name: String,
    pub addr: String,
}

impl DirectorNode {
    pub fn new(name: impl Into<String>, addr: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            addr: addr.into(),
        }
    }
}

impl fmt::Display for DirectorNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

/// The director's Raft id, derived from its name.
///
/// A hash of the name rather than the director's index in the `cluster { }` block, because the
/// index moves when an operator reorders or removes a director, and a Raft id must never change
/// for the life of the log. FNV-1a is written out here (not `std`'s `DefaultHasher`) because the
/// id is persisted in every node's log and must be the same across builds and Rust versions. With
/// 64 bits a collision among a few dozen directors is ~1e-17 likely; [`members`] still refuses
/// two names with one id.
pub fn node_id(director_name: &str) -> NodeId {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    director_name
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// Two director names that hash to one Raft id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("directors {first:?} and {second:?} have the same raft id {id:#018x}; rename one")]
pub struct IdCollision {
    pub id: NodeId,
    pub first: String,
    pub second: String,
}

/// The membership map for a set of directors, keyed by [`node_id`]. A name listed twice is
/// one director (the last address wins); two names with one id are refused.
pub fn members(
    directors: impl IntoIterator<Item = DirectorNode>,
) -> Result<BTreeMap<NodeId, DirectorNode>, IdCollision> {
    let mut map: BTreeMap<NodeId, DirectorNode> = BTreeMap::new();
    for d in directors {
        let id = node_id(&d.name);
        if let Some(seen) = map.get(&id)
            && seen.name != d.name
        {
            return Err(IdCollision {
                id,
                first: seen.name.clone(),
                second: d.name,
            });
        }
        map.insert(id, d);
    }
    Ok(map)
}

openraft::declare_raft_types!(
    /// openraft's view of flotilla: commands in, replies out, snapshots as in-memory bytes
    /// (the fleet state is kilobytes, so a `Cursor<Vec<u8>>` is the whole snapshot).
    pub(crate) TypeConfig:
        D = Command,
        R = CommandReply,
        NodeId = NodeId,
        Node = DirectorNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub(crate) type Raft = openraft::Raft<TypeConfig>;
pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<NodeId>;
pub(crate) type StorageError = openraft::StorageError<NodeId>;
pub(crate) type StoredMembership = openraft::StoredMembership<NodeId, DirectorNode>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<NodeId, DirectorNode>;
pub(crate) type Snapshot = openraft::Snapshot<TypeConfig>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_fnv1a_and_stable() {
        // Published FNV-1a 64 test vectors: the id is persisted, so it must never drift.
        assert_eq!(node_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(node_id("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(node_id("director-1"), node_id("director-2"));
    }

    #[test]
    fn members_are_keyed_by_name_hash() {
        let m = members([
            DirectorNode::new("d1", "10.0.0.1:7000"),
            DirectorNode::new("d2", "10.0.0.2:7000"),
            DirectorNode::new("d1", "10.0.0.11:7000"),
        ])
        .expect("no collision");
        assert_eq!(m.len(), 2);
        assert_eq!(m[&node_id("d1")].addr, "10.0.0.11:7000");
        assert_eq!(m[&node_id("d2")].name, "d2");
    }
}
