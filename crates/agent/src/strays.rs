//! Adverts for virtual routers nobody here runs. Each instance's socket takes only its own
//! VRID (a kernel filter), so one more socket per interface and family takes exactly the rest
//! and counts them by VRID and sender: a misconfigured neighbour (wrong VRID, a copy-pasted
//! config) shows in `flotilla status` instead of vanishing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use flotilla_net::vrrp_socket::{Delivery, VrrpSocketV4, VrrpSocketV6};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::setup::UnitSetup;

/// Adverts for an unknown VRID seen on one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrayReport {
    pub interface: String,
    pub ipv6: bool,
    pub vrid: u8,
    pub count: u64,
    pub last_from: String,
}

type Key = (String, bool, u8);
type Counts = Arc<Mutex<BTreeMap<Key, (u64, IpAddr)>>>;

/// The counting sockets; counts survive a reload (only the sockets are replaced).
#[derive(Clone, Default)]
pub struct Strays {
    counts: Counts,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Strays {
    /// (Re)opens one counting socket per interface and family the units use, excluding their
    /// VRIDs.
    pub fn watch(&self, units: &[UnitSetup]) {
        let mut known: BTreeMap<(String, bool), BTreeSet<u8>> = BTreeMap::new();
        for m in units.iter().flat_map(|u| &u.members) {
            known
                .entry((m.interface.clone(), m.ipv6))
                .or_default()
                .insert(m.params.vrid);
        }
        let mut tasks = lock(&self.tasks);
        for t in tasks.drain(..) {
            t.abort();
        }
        for ((interface, ipv6), vrids) in known {
            let vrids: Vec<u8> = vrids.into_iter().collect();
            let counts = self.counts.clone();
            let opened = if ipv6 {
                VrrpSocketV6::open(&interface, Delivery::Multicast)
                    .and_then(|s| s.except_vrids(&vrids).map(|()| Sock::V6(s)))
            } else {
                VrrpSocketV4::open(&interface, Delivery::Multicast)
                    .and_then(|s| s.except_vrids(&vrids).map(|()| Sock::V4(s)))
            };
            match opened {
                Ok(sock) => tasks.push(tokio::spawn(count(sock, interface, ipv6, counts))),
                Err(e) => {
                    tracing::debug!(%interface, ipv6, error = %e, "not counting unknown VRIDs here")
                }
            }
        }
    }

    pub fn report(&self) -> Vec<StrayReport> {
        lock(&self.counts)
            .iter()
            .map(|((interface, ipv6, vrid), (count, from))| StrayReport {
                interface: interface.clone(),
                ipv6: *ipv6,
                vrid: *vrid,
                count: *count,
                last_from: from.to_string(),
            })
            .collect()
    }

    pub fn stop(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }
}

enum Sock {
    V4(VrrpSocketV4),
    V6(VrrpSocketV6),
}

async fn count(sock: Sock, interface: String, ipv6: bool, counts: Counts) {
    loop {
        let got = match &sock {
            Sock::V4(s) => s
                .recv()
                .await
                .map(|r| r.ok().map(|r| (IpAddr::V4(r.src), r.payload))),
            Sock::V6(s) => s
                .recv()
                .await
                .map(|r| r.ok().map(|r| (IpAddr::V6(r.src), r.payload))),
        };
        let (from, payload) = match got {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(%interface, error = %e, "unknown-VRID counter stopped");
                return;
            }
        };
        let Some(&vrid) = payload.get(1) else {
            continue;
        };
        let first = {
            let mut c = lock(&counts);
            let e = c
                .entry((interface.clone(), ipv6, vrid))
                .or_insert((0, from));
            e.0 += 1;
            e.1 = from;
            e.0 == 1
        };
        if first {
            tracing::warn!(%interface, vrid, %from, "advert for a virtual router not configured here (counted in status)");
        }
    }
}
