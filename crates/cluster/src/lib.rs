//! The fleet: the QUIC mesh between directors (quinn, mutual TLS with the cluster CA),
//! heartbeats and gossip, Raft (openraft) with its log in redb, and the pure placement
//! function that ranks directors for each unit. It decides who *should* own a unit; it never
//! touches an address or a packet itself.

pub mod cert;
pub mod mesh;
pub mod placement;
pub mod raft;
pub mod raft_mesh;
