//! An in-process [`Transport`]: directors in one process, requests handed straight to the
//! target's [`RaftService`]. For tests and the lab; links can be cut to simulate partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use super::network::{RaftService, Transport, TransportError};
use super::types::NodeId;

/// The switchboard: which director answers at which id, and which links are cut.
#[derive(Clone, Default)]
pub struct LocalRouter {
    inner: Arc<Mutex<Board>>,
}

#[derive(Default)]
struct Board {
    services: BTreeMap<NodeId, RaftService>,
    /// Cut links, each stored as (lower id, higher id): a cut is always both ways.
    cut: BTreeSet<(NodeId, NodeId)>,
}

fn link(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl LocalRouter {
    pub fn new() -> Self {
        Self::default()
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The transport director `from` sends with.
    pub fn transport(&self, from: NodeId) -> LocalTransport {
        LocalTransport {
            router: self.clone(),
            from,
        }
    }

    /// Makes `id` answer requests (again, after a restart).
    pub fn register(&self, id: NodeId, service: RaftService) {
        self.board().services.insert(id, service);
    }

    /// Takes `id` off the switchboard, as if its process had stopped.
    pub fn unregister(&self, id: NodeId) {
        self.board().services.remove(&id);
    }

    /// Cuts the link between `a` and `b` both ways.
    pub fn cut(&self, a: NodeId, b: NodeId) {
        self.board().cut.insert(link(a, b));
    }

    /// Cuts every link between the two sides.
    pub fn partition(&self, side_a: &[NodeId], side_b: &[NodeId]) {
        let mut board = self.board();
        for &a in side_a {
            for &b in side_b {
                board.cut.insert(link(a, b));
            }
        }
    }

    /// Restores every cut link.
    pub fn heal(&self) {
        self.board().cut.clear();
    }
}

/// One director's end of a [`LocalRouter`].
#[derive(Clone)]
pub struct LocalTransport {
    router: LocalRouter,
    from: NodeId,
}

impl Transport for LocalTransport {
    async fn call(&self, to: NodeId, request: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let service = {
            let board = self.router.board();
            if board.cut.contains(&link(self.from, to)) {
                return Err(TransportError::Unreachable {
                    to,
                    reason: "link cut".into(),
                });
            }
            board.services.get(&to).cloned()
        };
        match service {
            Some(service) => Ok(service.serve(&request).await),
            None => Err(TransportError::Unreachable {
                to,
                reason: "not running".into(),
            }),
        }
    }
}
