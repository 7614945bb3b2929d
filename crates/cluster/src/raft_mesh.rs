//! Raft over the QUIC mesh: a [`Transport`] that sends Raft's requests to directors by name
//! with [`Mesh::request`], and the tag that tells a Raft request apart from the other kinds
//! the mesh carries (the agent's control requests forwarded to the leader).

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::mesh::{Mesh, RequestError};
use crate::raft::{NodeId, Transport, TransportError};

/// First byte of a mesh request: what it is for.
pub const TAG_RAFT: u8 = b'R';
/// A control request (drain, move, config apply …) forwarded to the Raft leader.
pub const TAG_CONTROL: u8 = b'C';

/// Splits a mesh request into its tag and body.
pub fn untag(request: &[u8]) -> Option<(u8, &[u8])> {
    request.split_first().map(|(t, body)| (*t, body))
}

/// `tag` followed by `body`.
pub fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 1);
    v.push(tag);
    v.extend_from_slice(body);
    v
}

/// Raft's transport over the mesh. Clones share the id → name map, so the runtime keeps
/// one and updates the map Raft's copy reads when directors are added or removed.
#[derive(Clone)]
pub struct MeshTransport {
    mesh: Arc<Mesh>,
    names: Arc<RwLock<BTreeMap<NodeId, String>>>,
}

impl MeshTransport {
    /// `names`: every director's Raft id and name ([`crate::raft::node_id`]).
    pub fn new(mesh: Arc<Mesh>, names: BTreeMap<NodeId, String>) -> Self {
        MeshTransport {
            mesh,
            names: Arc::new(RwLock::new(names)),
        }
    }

    /// Replaces the id → name map (directors added or removed). Returns whether it changed.
    pub fn set_names(&self, names: BTreeMap<NodeId, String>) -> bool {
        let mut current = self.names.write().unwrap_or_else(PoisonError::into_inner);
        let changed = *current != names;
        *current = names;
        changed
    }

    fn name(&self, id: NodeId) -> Option<String> {
        self.names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }
}

impl Transport for MeshTransport {
    async fn call(&self, to: NodeId, request: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let Some(name) = self.name(to) else {
            return Err(TransportError::Unreachable {
                to,
                reason: "no director has this id".into(),
            });
        };
        match self.mesh.request(&name, tagged(TAG_RAFT, &request)).await {
            Ok(reply) => Ok(reply),
            Err(e @ (RequestError::NotConnected(_) | RequestError::UnknownPeer(_))) => {
                Err(TransportError::Unreachable {
                    to,
                    reason: e.to_string(),
                })
            }
            Err(e) => Err(TransportError::Failed {
                to,
                reason: e.to_string(),
            }),
        }
    }
}
