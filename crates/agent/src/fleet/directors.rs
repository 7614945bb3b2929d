//! Directors added and removed at runtime (`flotilla config apply` with a changed `cluster`
//! block): the mesh's peers, Raft's id → name map and the runtime's view follow the committed
//! configuration, so no running director needs a restart.
//!
//! * Placement candidates are the configuration's directors.
//! * Mesh peers are the configuration's directors and Raft's members: a director leaving the
//!   configuration stays reachable until the leader has taken it out of Raft (it may be the
//!   leader itself, committing its own removal), then its connections close and the failure
//!   detector forgets it without a verdict.
//! * This director, once out of the configuration, releases its units (`director.rs`) and
//!   leaves the mesh when Raft has let it go, or after [`LEAVE_GRACE`] if it never hears so:
//!   it stops dialling and keeps only the peers that dial it (names sorting below its own),
//!   passively. They have dropped it and do not call; if a `config apply` adds it back, they
//!   dial again, and through the leader's connection Raft brings it the configuration that
//!   lists it: it rejoins without a restart. A removed director that sorts below the leader
//!   would have to dial the leader itself, so it is not reached that way: restart it (the
//!   runbook's re-added director sorts above the leader; see ARCHITECTURE.md).
//!
//! Raft's membership itself is the leader's duty (`FleetHandle::reconcile_membership`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use flotilla_cluster::mesh::PeerAddr;
use flotilla_cluster::raft::{DirectorNode, FleetMetrics, NodeId, node_id};
use flotilla_cluster::raft_mesh::MeshTransport;
use flotilla_config::model::Cluster;
use serde::{Deserialize, Serialize};

use super::{FleetHandle, lock};

/// How long a director removed from the configuration stays on the mesh when it never
/// learns that Raft has removed it (a removed node may miss that entry).
pub const LEAVE_GRACE: Duration = Duration::from_secs(10);
/// How often the roster is checked besides every committed change (Raft's membership
/// changes are not on the state watch).
const RECHECK: Duration = Duration::from_millis(500);

/// A director's seat in the Raft group, as this director sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RaftSeat {
    Voter,
    Learner,
    /// Not (or not yet) a member.
    #[default]
    Outside,
}

impl RaftSeat {
    pub fn as_str(self) -> &'static str {
        match self {
            RaftSeat::Voter => "voter",
            RaftSeat::Learner => "learner",
            RaftSeat::Outside => "-",
        }
    }
}

/// `name`'s seat in the membership `m` shows.
pub fn seat(m: &FleetMetrics, name: &str) -> RaftSeat {
    let id = node_id(name);
    if m.voters.contains(&id) {
        RaftSeat::Voter
    } else if m.learners.contains(&id) {
        RaftSeat::Learner
    } else {
        RaftSeat::Outside
    }
}

/// The names of `ids` among the members `m` shows, sorted.
pub fn names_of(m: &FleetMetrics, ids: &BTreeSet<NodeId>) -> Vec<String> {
    let mut names: Vec<String> = ids
        .iter()
        .map(|id| {
            m.members
                .get(id)
                .map_or_else(|| format!("{id:#x}"), |n| n.name.clone())
        })
        .collect();
    names.sort();
    names
}

/// Who this director works with, from the committed configuration and Raft's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Roster {
    /// Placement candidates: the configuration's directors, in its order.
    pub directors: Vec<String>,
    /// Mesh peers (never this director).
    pub peers: Vec<PeerAddr>,
    /// Raft id → name of every director known either way, this one included.
    pub names: BTreeMap<NodeId, String>,
}

/// A Raft node's address: `ip:port`, IPv6 without brackets as the agent writes it.
fn node_addr(node: &DirectorNode) -> Option<SocketAddr> {
    node.addr.parse().ok().or_else(|| {
        let (ip, port) = node.addr.rsplit_once(':')?;
        Some(SocketAddr::new(
            ip.parse::<IpAddr>().ok()?,
            port.parse().ok()?,
        ))
    })
}

/// The roster of director `me`. `leaving`: `me` is out of the configuration and done
/// waiting for Raft: it dials nobody any more, and accepts only the directors that dial it
/// (names below its own), which lets them reach it if it is added back.
pub(super) fn roster(
    me: &str,
    cluster: &Cluster,
    members: &BTreeMap<NodeId, DirectorNode>,
    leaving: bool,
) -> Roster {
    let directors: Vec<String> = cluster.directors.iter().map(|d| d.name.clone()).collect();
    let mut peers: BTreeMap<String, SocketAddr> = members
        .values()
        .filter_map(|n| Some((n.name.clone(), node_addr(n)?)))
        .collect();
    // The configuration's address wins over the one Raft still has.
    for d in &cluster.directors {
        peers.insert(d.name.clone(), SocketAddr::new(d.address, d.port));
    }
    let mut names: BTreeMap<NodeId, String> =
        peers.keys().map(|n| (node_id(n), n.clone())).collect();
    names.insert(node_id(me), me.to_string());
    peers.remove(me);
    let peers = peers
        .into_iter()
        .filter(|(name, _)| !leaving || name.as_str() < me)
        .map(|(name, addr)| PeerAddr { name, addr })
        .collect();
    Roster {
        directors,
        peers,
        names,
    }
}

/// Keeps the mesh, Raft's transport and the view in step with the committed configuration,
/// on every committed change and every [`RECHECK`].
pub(super) fn follow(h: FleetHandle, transport: MeshTransport) {
    let mut watch = h.fleet.watch();
    tokio::spawn(async move {
        let mut out = Out::default();
        loop {
            sync(&h, &transport, &mut out);
            tokio::select! {
                r = watch.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    });
}

/// This director's way out of the configuration.
#[derive(Default)]
struct Out {
    /// Since when the committed configuration has not listed it.
    since: Option<Instant>,
    /// It has left the mesh (see [`roster`]'s `leaving`).
    left: bool,
}

fn sync(h: &FleetHandle, transport: &MeshTransport, out: &mut Out) {
    // Before the first configuration commits, the one the director started with stands.
    let Some(cluster) = h.committed_cluster() else {
        return;
    };
    let me = lock(&h.view).me.clone();
    let m = h.fleet.metrics();
    let listed = cluster.director(&me).is_some();
    let leaving = if listed {
        out.since = None;
        false
    } else {
        let since = *out.since.get_or_insert_with(Instant::now);
        !m.members.contains_key(&node_id(&me)) || since.elapsed() > LEAVE_GRACE
    };
    if leaving != out.left {
        out.left = leaving;
        if leaving {
            tracing::info!(
                "out of the configuration and of Raft: leaving the mesh (dialling nobody; the directors that dial this one can still reach it if it is added back)"
            );
            // Every peer is dropped first, verdicts with it, and the ones kept below come
            // back unknown (never suspected before their first heartbeat): the others hung up
            // on this director, and the suspicions that left behind would otherwise go out
            // in its first heartbeats if it is added back — a second opinion for a death
            // that nobody saw (a false failover was seen in the lab).
            h.mesh.set_peers(&[]);
        }
    }
    let r = roster(&me, &cluster, &m.members, leaving);
    let meshed = h.mesh.set_peers(&r.peers);
    let renamed = transport.set_names(r.names.clone());
    let mut v = lock(&h.view);
    let moved = v.directors != r.directors;
    if !(meshed || renamed || moved) {
        return;
    }
    tracing::info!(directors = ?r.directors, peers = r.peers.len(), "fleet directors changed");
    let known: BTreeSet<&str> = r
        .peers
        .iter()
        .map(|p| p.name.as_str())
        .chain([me.as_str()])
        .collect();
    // Liveness of a director off the mesh is unknown: it comes back with its first
    // heartbeat if it is added again.
    v.alive.retain(|d, _| known.contains(d.as_str()));
    v.faulty.retain(|d, _| known.contains(d.as_str()));
    v.versions.retain(|d, _| known.contains(d.as_str()));
    v.directors = r.directors;
    v.names = r.names;
    drop(v);
    h.nudge.notify_one();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use flotilla_config::model::cluster::{Director, PlacementSettings};

    use super::*;

    fn cluster(names: &[&str]) -> Cluster {
        Cluster {
            name: "t".into(),
            directors: names
                .iter()
                .enumerate()
                .map(|(i, n)| Director {
                    name: n.to_string(),
                    address: IpAddr::from([10, 0, 0, u8::try_from(i + 1).unwrap()]),
                    port: 7000,
                    interfaces: Default::default(),
                    origin: Default::default(),
                })
                .collect(),
            tls: None,
            placement: PlacementSettings::default(),
            heartbeat: Default::default(),
            origin: Default::default(),
        }
    }

    fn members(nodes: &[(&str, &str)]) -> BTreeMap<NodeId, DirectorNode> {
        nodes
            .iter()
            .map(|(n, a)| (node_id(n), DirectorNode::new(*n, *a)))
            .collect()
    }

    fn peer_names(r: &Roster) -> Vec<&str> {
        r.peers.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn added_directors_are_peers_and_candidates_before_raft_knows_them() {
        let r = roster(
            "d1",
            &cluster(&["d1", "d2", "d3", "d4"]),
            &members(&[("d1", "10.0.0.1:7000"), ("d2", "10.0.0.2:7000")]),
            false,
        );
        assert_eq!(r.directors, vec!["d1", "d2", "d3", "d4"]);
        assert_eq!(peer_names(&r), vec!["d2", "d3", "d4"]);
        assert_eq!(r.peers[2].addr, "10.0.0.4:7000".parse().unwrap());
        assert_eq!(r.names.len(), 4);
        assert_eq!(r.names[&node_id("d4")], "d4");
    }

    #[test]
    fn a_removed_director_stays_a_peer_while_raft_has_it_but_is_no_candidate() {
        let raft = members(&[
            ("d1", "10.0.0.1:7000"),
            ("d2", "10.0.0.2:7000"),
            ("d9", "10.0.0.9:7000"),
        ]);
        let r = roster("d1", &cluster(&["d1", "d2"]), &raft, false);
        assert_eq!(r.directors, vec!["d1", "d2"]);
        assert_eq!(peer_names(&r), vec!["d2", "d9"]);
        assert_eq!(r.peers[1].addr, "10.0.0.9:7000".parse().unwrap());
        let r = roster("d1", &cluster(&["d1", "d2"]), &raft, true);
        assert!(r.peers.is_empty());
        // Removed and leaving: only the directors that would dial it stay, so that they can
        // reach it if it is added back; it dials nobody.
        let r = roster("d5", &cluster(&["d1", "d2", "d9"]), &raft, true);
        assert_eq!(peer_names(&r), vec!["d1", "d2"]);
        // IPv6 as the agent writes it, and an address Raft has that does not parse.
        let raft = members(&[("d7", "fd00::7:7000"), ("d8", "nowhere")]);
        let r = roster("d1", &cluster(&["d1"]), &raft, false);
        assert_eq!(peer_names(&r), vec!["d7"]);
        assert_eq!(r.peers[0].addr, "[fd00::7]:7000".parse().unwrap());
    }

    #[test]
    fn the_configuration_address_wins() {
        let r = roster(
            "d2",
            &cluster(&["d1", "d2"]),
            &members(&[("d1", "10.9.9.9:7000")]),
            false,
        );
        assert_eq!(r.peers[0].addr, "10.0.0.1:7000".parse().unwrap());
    }
}
