//! Connections across a move (DESIGN): this director's IPVS connection entries are replicated
//! to the other directors over the authenticated QUIC mesh, so a director that takes a VIP
//! already knows the flows through it and keeps forwarding them to the same real servers.
//!
//! The kernel can only insert connection entries through its own sync daemon's receive side,
//! so flotilla runs both daemons and relays between them (`flotilla_net::sync_link` holds the
//! local plumbing, a veth pair that leads nowhere):
//!
//! ```text
//! d1 kernel master daemon ─UDP─▶ reader ─parse─▶ mesh (mTLS) ─▶ d2 handler ─parse, VIP filter─▶
//!                                                                injector ─UDP─▶ d2 kernel backup daemon
//! ```
//!
//! * On when the director runs in a fleet (`--name`), on kernel IPVS, with virtual servers,
//!   and `global_defs { lvs_sync_daemon … }` is written; its `id` becomes the master's sync
//!   id and `maxlen` its message size. Its interface, group, port and TTL are not used: the
//!   daemons only talk to flotilla on the local link.
//! * Every message is parsed and re-emitted ([`flotilla_ipvs::sync`]) on both sides: what does
//!   not parse is counted and dropped, never relayed or injected.
//! * Sent to every connected peer, not only the next-ranked director for the VIP's unit: all
//!   directors program every service ahead of time, so whichever survivor VRRP or the mesh
//!   picks already holds the entry. N − 1 copies of a small, rate-limited stream.
//! * A receiver injects only entries whose virtual address this configuration serves (a VIP
//!   of some instance, or a `virtual_server` address): the kernel would create an entry for
//!   any address it is sent.
//! * Read at start: a reload that changes `lvs_sync_daemon` or the VIPs takes effect at the
//!   next start.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use flotilla_cluster::mesh::Mesh;
use flotilla_config::model::{Config, lvs::VirtualServerKey};
use flotilla_ipvs::sync::SyncMessage;
use flotilla_ipvs::{DaemonRole, Dataplane, KernelDataplane, SyncDaemon};
use flotilla_net::sync_link;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;

/// The counters this module keeps (`flotilla_conn_sync_total{event}`).
pub mod event {
    pub const READ: &str = "read";
    pub const FORWARDED: &str = "forwarded";
    pub const RECEIVED: &str = "received";
    pub const INJECTED: &str = "injected";
    pub const NOT_A_VIP: &str = "not_a_vip";
    pub const MALFORMED: &str = "malformed";
    pub const SEND_FAILED: &str = "send_failed";
    pub const INJECT_FAILED: &str = "inject_failed";
}

#[derive(Debug, thiserror::Error)]
pub enum ConnSyncError {
    #[error("sync link: {0}")]
    Link(#[from] flotilla_net::NetError),
    #[error("sync daemons: {0}")]
    Daemon(#[from] flotilla_ipvs::DataplaneError),
    #[error("sync daemons: {0}")]
    Join(String),
}

/// Whether connection sync runs for this configuration in fleet mode on kernel IPVS.
pub fn wanted(cfg: &Config) -> bool {
    cfg.cluster.is_some()
        && cfg.global.lvs_sync_daemon.is_some()
        && !cfg.lvs.virtual_servers.is_empty()
}

/// The virtual addresses this configuration serves: every instance's VIPs (excluded ones
/// too) and every `virtual_server` address.
pub fn served_addresses(cfg: &Config) -> HashSet<IpAddr> {
    let vips = cfg.vrrp.instances.iter().flat_map(|i| {
        i.virtual_addresses
            .iter()
            .chain(&i.excluded_addresses)
            .map(|a| a.address)
    });
    let servers = cfg.lvs.virtual_servers.iter().filter_map(|v| match &v.key {
        VirtualServerKey::Addr { ip, .. } => Some(*ip),
        _ => None,
    });
    vips.chain(servers).collect()
}

/// Keeps the entries of `msg` whose virtual address is in `served`; returns how many went.
pub fn keep_served(msg: &mut SyncMessage, served: &HashSet<IpAddr>) -> usize {
    let before = msg.entries.len();
    msg.entries.retain(|e| served.contains(&e.virtual_addr));
    before - msg.entries.len()
}

/// The running relay; [`ConnSync::stop`] stops the daemons and removes the link.
pub struct ConnSync {
    reader: JoinHandle<()>,
    mesh: Arc<Mesh>,
}

fn daemons(sync_id: u8, max_len: Option<u16>) -> [SyncDaemon; 2] {
    let group = Some(IpAddr::V4(sync_link::GROUP));
    [
        SyncDaemon {
            role: DaemonRole::Master,
            interface: sync_link::MASTER_IF.to_string(),
            sync_id: u32::from(sync_id),
            max_len,
            group,
            port: Some(sync_link::MASTER_PORT),
            ttl: Some(1),
        },
        // Sync id 0: the backup takes every master's messages; flotilla chose them.
        SyncDaemon {
            role: DaemonRole::Backup,
            interface: sync_link::RELAY_IF.to_string(),
            sync_id: 0,
            max_len: None,
            group,
            port: Some(sync_link::BACKUP_PORT),
            ttl: None,
        },
    ]
}

/// Stops this namespace's sync daemons (flotilla owns them in this mode), then, with
/// `start`, starts its own pair.
async fn set_daemons(start: Option<[SyncDaemon; 2]>) -> Result<(), ConnSyncError> {
    tokio::task::spawn_blocking(move || {
        let mut dp = KernelDataplane::connect()?;
        for role in [DaemonRole::Master, DaemonRole::Backup] {
            // Not running is fine.
            let _ = dp.stop_daemon(role);
        }
        for d in start.iter().flatten() {
            dp.start_daemon(d)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| ConnSyncError::Join(e.to_string()))?
}

impl ConnSync {
    /// Sets up the link and the daemons, and starts relaying both ways.
    pub async fn start(
        mesh: Arc<Mesh>,
        cfg: &Config,
        metrics: &Metrics,
    ) -> Result<ConnSync, ConnSyncError> {
        let settings = cfg.global.lvs_sync_daemon.as_ref();
        let sync_id = settings.map_or(0, |s| s.sync_id);
        let max_len = settings.and_then(|s| s.maxlen);
        sync_link::ensure().await?;
        let started = async {
            set_daemons(Some(daemons(sync_id, max_len))).await?;
            Ok::<_, ConnSyncError>((sync_link::reader()?, Arc::new(sync_link::injector()?)))
        }
        .await;
        let (reader, injector) = match started {
            Ok(sockets) => sockets,
            Err(e) => {
                // Leave nothing behind: no daemons, no link.
                let _ = set_daemons(None).await;
                let _ = sync_link::remove().await;
                return Err(e);
            }
        };

        let served = served_addresses(cfg);
        let m = metrics.clone();
        mesh.set_conn_sync_handler(move |peer, body| {
            let mut msg = match SyncMessage::parse(&body) {
                Ok(msg) => msg,
                Err(e) => {
                    m.conn_sync(event::MALFORMED, 1);
                    warn!(peer, "connection sync message dropped: {e}");
                    return;
                }
            };
            m.conn_sync(event::RECEIVED, msg.entries.len() as u64);
            let foreign = keep_served(&mut msg, &served);
            if foreign > 0 {
                m.conn_sync(event::NOT_A_VIP, foreign as u64);
                debug!(
                    peer,
                    foreign, "connection sync entries for unserved addresses dropped"
                );
            }
            if msg.entries.is_empty() {
                return;
            }
            let n = msg.entries.len() as u64;
            match msg.emit() {
                // A datagram socket sends whole or not at all; a full buffer is a drop, as
                // on the kernel's own multicast path.
                Ok(bytes) => match injector.try_send(&bytes) {
                    Ok(_) => m.conn_sync(event::INJECTED, n),
                    Err(e) => {
                        m.conn_sync(event::INJECT_FAILED, 1);
                        debug!(peer, "connection sync injection failed: {e}");
                    }
                },
                Err(e) => {
                    m.conn_sync(event::MALFORMED, 1);
                    warn!(peer, "connection sync message not re-emitted: {e}");
                }
            }
        });

        let (mesh2, m) = (mesh.clone(), metrics.clone());
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; flotilla_ipvs::sync::MAX_LEN];
            loop {
                let n = match reader.recv(&mut buf).await {
                    Ok(n) => n,
                    Err(e) => {
                        warn!("connection sync reader: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let bytes = match SyncMessage::parse(&buf[..n]).and_then(|msg| {
                    m.conn_sync(event::READ, msg.entries.len() as u64);
                    msg.emit().map(|b| (b, msg.entries.len() as u64))
                }) {
                    Ok(b) => b,
                    Err(e) => {
                        m.conn_sync(event::MALFORMED, 1);
                        warn!("local sync daemon message dropped: {e}");
                        continue;
                    }
                };
                for peer in mesh2.connected() {
                    let (mesh, m, (body, n)) = (mesh2.clone(), m.clone(), bytes.clone());
                    // One task per copy: a slow peer never holds back the reader (whose
                    // socket buffer would overflow) or the other peers.
                    tokio::spawn(async move {
                        match mesh.send_conn_sync(&peer, body).await {
                            Ok(()) => m.conn_sync(event::FORWARDED, n),
                            Err(e) => {
                                m.conn_sync(event::SEND_FAILED, 1);
                                debug!(peer, "connection sync not sent: {e}");
                            }
                        }
                    });
                }
            }
        });
        info!(
            sync_id,
            master = sync_link::MASTER_IF,
            backup = sync_link::RELAY_IF,
            "connection sync over the mesh: on"
        );
        Ok(ConnSync { reader, mesh })
    }

    /// Stops relaying, stops the daemons and removes the link.
    pub async fn stop(self) {
        self.reader.abort();
        self.mesh.set_conn_sync_handler(|_, _| {});
        if let Err(e) = set_daemons(None).await {
            warn!("stopping the sync daemons: {e}");
        }
        if let Err(e) = sync_link::remove().await {
            warn!("removing the sync link: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use flotilla_ipvs::sync::SyncEntry;

    use super::*;

    fn entry(vip: &str) -> SyncEntry {
        SyncEntry {
            protocol: 6,
            flags: 0x83,
            state: 1,
            client: "10.99.0.10".parse().unwrap(),
            client_port: 40000,
            virtual_addr: vip.parse().unwrap(),
            virtual_port: 80,
            dest: "10.99.0.11".parse().unwrap(),
            dest_port: 80,
            fwmark: 0,
            timeout: 900,
            options: vec![],
        }
    }

    #[test]
    fn served_addresses_are_vips_and_virtual_servers() {
        let loaded = flotilla_config::load_str(
            std::path::Path::new("t.conf"),
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n \
             virtual_ipaddress {\n  10.99.0.100/24\n }\n virtual_ipaddress_excluded {\n  10.99.0.101\n }\n}\n\
             virtual_server 10.99.0.102 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n \
             real_server 10.99.0.11 80 {\n }\n}\n",
            &flotilla_config::LoadOptions::default(),
        );
        assert!(loaded.is_ok(), "{}", loaded.report());
        let mut got: Vec<String> = served_addresses(&loaded.config)
            .iter()
            .map(|a| a.to_string())
            .collect();
        got.sort();
        assert_eq!(got, ["10.99.0.100", "10.99.0.101", "10.99.0.102"]);
    }

    #[test]
    fn only_served_entries_are_kept() {
        let served: HashSet<IpAddr> = ["10.99.0.100".parse().unwrap()].into();
        let mut msg = SyncMessage {
            sync_id: 7,
            entries: vec![
                entry("10.99.0.100"),
                entry("192.0.2.1"),
                entry("10.99.0.100"),
            ],
        };
        assert_eq!(keep_served(&mut msg, &served), 1);
        assert_eq!(msg.entries.len(), 2);
        assert!(
            msg.entries
                .iter()
                .all(|e| e.virtual_addr.to_string() == "10.99.0.100")
        );
    }
}
