//! Raft's messages as bytes. openraft's RPCs are wrapped in one postcard-encoded request enum
//! and one reply enum, carried by any [`Transport`] that can move a request to a director and
//! bring its reply back (the QUIC mesh in production, [`super::LocalRouter`] in tests).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RaftNetwork, RaftNetworkFactory};
use serde::{Deserialize, Serialize};

use super::types::{DirectorNode, NodeId, Raft, TypeConfig};

/// The version of the Raft wire messages. A director refuses requests of another version
/// rather than misreading them (postcard is positional); adjacent versions that must
/// interoperate during a rolling upgrade keep the old encoding reachable.
pub const RAFT_WIRE_VERSION: u16 = 1;

/// Moves one request to a director and returns its reply. Requests and replies are opaque
/// bytes; the receiving side hands them to [`RaftService::serve`].
///
/// A transport that knows directors by name maps names to ids with [`super::node_id`].
/// Requests can be large: an append carries up to [`super::MAX_ENTRIES_PER_APPEND`] entries
/// (an `ApplyConfig` entry holds a whole configuration) and a snapshot request up to
/// [`super::SNAPSHOT_CHUNK_BYTES`] of state, so a message limit should allow tens of MiB.
/// Each call is bounded by Raft's own timeout, which drops the future: `call` must be
/// cancel-safe.
pub trait Transport: Clone + Send + Sync + 'static {
    fn call(
        &self,
        to: NodeId,
        request: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;
}

/// Why a request got no reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// No path to the director right now (not connected, link down, unknown id). Raft backs
    /// off before retrying it.
    #[error("director {to} is unreachable: {reason}")]
    Unreachable { to: NodeId, reason: String },
    /// The request was sent but failed on the way; Raft retries at once.
    #[error("request to director {to} failed: {reason}")]
    Failed { to: NodeId, reason: String },
}

/// A Raft request as it goes on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireRequest {
    version: u16,
    rpc: RaftRpc,
}

#[derive(Debug, Serialize, Deserialize)]
enum RaftRpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

#[derive(Debug, Serialize, Deserialize)]
enum RaftRpcReply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The request was not understood: another wire version, or bytes that do not decode.
    Refused(String),
}

/// The receiving side: decodes a request, hands it to the local Raft node, encodes the reply.
#[derive(Clone)]
pub struct RaftService {
    raft: Raft,
}

impl RaftService {
    pub(crate) fn new(raft: Raft) -> Self {
        Self { raft }
    }

    /// Answers one request from a peer. Never fails: a request that cannot be served gets a
    /// reply saying why, which the caller's Raft treats as a network error and retries.
    pub async fn serve(&self, request: &[u8]) -> Vec<u8> {
        let reply = match postcard::from_bytes::<WireRequest>(request) {
            Ok(req) if req.version != RAFT_WIRE_VERSION => RaftRpcReply::Refused(format!(
                "raft wire version {} is not {RAFT_WIRE_VERSION}",
                req.version
            )),
            Ok(req) => match req.rpc {
                RaftRpc::AppendEntries(rpc) => {
                    RaftRpcReply::AppendEntries(self.raft.append_entries(rpc).await)
                }
                RaftRpc::Vote(rpc) => RaftRpcReply::Vote(self.raft.vote(rpc).await),
                RaftRpc::InstallSnapshot(rpc) => {
                    RaftRpcReply::InstallSnapshot(self.raft.install_snapshot(rpc).await)
                }
            },
            Err(e) => RaftRpcReply::Refused(format!("undecodable raft request: {e}")),
        };
        if let RaftRpcReply::Refused(why) = &reply {
            tracing::warn!(reason = %why, "raft request refused");
        }
        // Every reply type is plain data; encoding into a Vec only fails on allocation.
        postcard::to_allocvec(&reply).unwrap_or_default()
    }
}

/// When this director last had an answer from each other director over Raft: the leader's
/// view of who is live (it sends every member a heartbeat each `heartbeat` interval). openraft
/// 0.9's metrics only say how far a member's log is replicated, not whether it still answers.
#[derive(Clone, Default)]
pub(crate) struct Heard(Arc<Mutex<BTreeMap<NodeId, Instant>>>);

impl Heard {
    fn record(&self, from: NodeId) {
        self.lock().insert(from, Instant::now());
    }

    /// When `from` last answered, if it ever did since this process started.
    pub(crate) fn last(&self, from: NodeId) -> Option<Instant> {
        self.lock().get(&from).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Hands openraft one [`Peer`] per remote director.
pub(crate) struct NetworkFactory<T> {
    transport: T,
    heard: Heard,
}

impl<T> NetworkFactory<T> {
    pub(crate) fn new(transport: T, heard: Heard) -> Self {
        Self { transport, heard }
    }
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for NetworkFactory<T> {
    type Network = Peer<T>;

    async fn new_client(&mut self, target: NodeId, _node: &DirectorNode) -> Peer<T> {
        Peer {
            to: target,
            transport: self.transport.clone(),
            heard: self.heard.clone(),
        }
    }
}

/// The path to one remote director.
pub(crate) struct Peer<T> {
    to: NodeId,
    transport: T,
    heard: Heard,
}

/// Failures below the Raft layer, mapped onto openraft's retry classes.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("codec: {0}")]
    Codec(#[from] postcard::Error),
    #[error("peer refused the request: {0}")]
    Refused(String),
    #[error("peer answered a different request")]
    Mismatch,
}

impl<T: Transport> Peer<T> {
    async fn call(&self, rpc: RaftRpc, ttl: Duration) -> Result<RaftRpcReply, CallError> {
        let request = postcard::to_allocvec(&WireRequest {
            version: RAFT_WIRE_VERSION,
            rpc,
        })?;
        let reply = tokio::time::timeout(ttl, self.transport.call(self.to, request))
            .await
            .map_err(|_| CallError::Timeout(ttl))??;
        match postcard::from_bytes(&reply)? {
            RaftRpcReply::Refused(why) => Err(CallError::Refused(why)),
            reply => {
                // Any answer of its Raft node, even a rejection: it is running and reachable.
                self.heard.record(self.to);
                Ok(reply)
            }
        }
    }
}

fn rpc_error<E: std::error::Error>(e: CallError) -> RPCError<NodeId, DirectorNode, E> {
    match e {
        CallError::Transport(t @ TransportError::Unreachable { .. }) => {
            RPCError::Unreachable(Unreachable::new(&t))
        }
        other => RPCError::Network(NetworkError::new(&other)),
    }
}

impl<T: Transport> RaftNetwork<TypeConfig> for Peer<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, DirectorNode, RaftError<NodeId>>>
    {
        match self
            .call(RaftRpc::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Ok(RaftRpcReply::AppendEntries(r)) => {
                r.map_err(|e| RemoteError::new(self.to, e).into())
            }
            Ok(_) => Err(rpc_error(CallError::Mismatch)),
            Err(e) => Err(rpc_error(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, DirectorNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .call(RaftRpc::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(RaftRpcReply::InstallSnapshot(r)) => {
                r.map_err(|e| RemoteError::new(self.to, e).into())
            }
            Ok(_) => Err(rpc_error(CallError::Mismatch)),
            Err(e) => Err(rpc_error(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, DirectorNode, RaftError<NodeId>>> {
        match self.call(RaftRpc::Vote(rpc), option.hard_ttl()).await {
            Ok(RaftRpcReply::Vote(r)) => r.map_err(|e| RemoteError::new(self.to, e).into()),
            Ok(_) => Err(rpc_error(CallError::Mismatch)),
            Err(e) => Err(rpc_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::error::SnapshotMismatch;
    use openraft::{SnapshotSegmentId, Vote};

    use super::super::{Fleet, FleetConfig, LocalRouter};
    use super::*;

    async fn service() -> (tempfile::TempDir, Fleet) {
        let dir = tempfile::tempdir().expect("tempdir");
        let router = LocalRouter::new();
        let fleet = Fleet::open(dir.path(), 1, router.transport(1), FleetConfig::default())
            .await
            .expect("open");
        (dir, fleet)
    }

    fn reply(bytes: &[u8]) -> RaftRpcReply {
        postcard::from_bytes(bytes).expect("a reply always decodes")
    }

    #[tokio::test]
    async fn serve_refuses_garbage_and_other_versions_and_answers_requests() {
        let (_dir, fleet) = service().await;
        let svc = fleet.service();
        assert!(matches!(
            reply(&svc.serve(&[0xff, 0xff, 0xff]).await),
            RaftRpcReply::Refused(_)
        ));

        let vote = |version| {
            postcard::to_allocvec(&WireRequest {
                version,
                rpc: RaftRpc::Vote(VoteRequest::new(Vote::new(1, 2), None)),
            })
            .expect("encode")
        };
        match reply(&svc.serve(&vote(RAFT_WIRE_VERSION + 1)).await) {
            RaftRpcReply::Refused(why) => assert!(why.contains("version"), "{why}"),
            other => panic!("{other:?}"),
        }
        match reply(&svc.serve(&vote(RAFT_WIRE_VERSION)).await) {
            RaftRpcReply::Vote(Ok(r)) => assert!(r.vote_granted),
            other => panic!("{other:?}"),
        }
        fleet.shutdown().await.expect("shutdown");
    }

    /// The leader restarts a snapshot stream when the follower reports a mismatch, so the
    /// remote error must survive the wire intact.
    #[test]
    fn remote_errors_round_trip() {
        let segment = |id: &str, offset| SnapshotSegmentId {
            id: id.into(),
            offset,
        };
        let sent = RaftRpcReply::InstallSnapshot(Err(RaftError::APIError(
            InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
                expect: segment("a", 0),
                got: segment("b", 7),
            }),
        )));
        let bytes = postcard::to_allocvec(&sent).expect("encode");
        match reply(&bytes) {
            RaftRpcReply::InstallSnapshot(Err(RaftError::APIError(
                InstallSnapshotError::SnapshotMismatch(m),
            ))) => {
                assert_eq!(m.expect, segment("a", 0));
                assert_eq!(m.got, segment("b", 7));
            }
            other => panic!("{other:?}"),
        }
    }
}
