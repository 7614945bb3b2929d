//! flotilla's fleet extension: the `cluster { }` block. keepalived does not know it: it
//! reports each line of the block as an unknown keyword and reads the rest of the file as
//! usual (checked with keepalived 2.2.7), so one file still serves keepalived nodes during a
//! migration.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::common::{Micros, Origin};

/// Default UDP port of the QUIC mesh between directors.
pub const DEFAULT_MESH_PORT: u16 = 7180;

/// The fleet: which directors exist, how they authenticate and how units are placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub directors: Vec<Director>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    pub placement: PlacementSettings,
    /// Absent from configurations committed by versions before it: the defaults.
    #[serde(default)]
    pub heartbeat: HeartbeatSettings,
    #[serde(skip)]
    pub origin: Origin,
}

impl Cluster {
    pub fn director(&self, name: &str) -> Option<&Director> {
        self.directors.iter().find(|d| d.name == name)
    }
}

/// One director of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Director {
    pub name: String,
    /// Its address on the mesh; also its `unicast_src_ip` for VRRP.
    pub address: IpAddr,
    pub port: u16,
    /// Interface names that differ on this director: name used in the config → name here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interfaces: BTreeMap<String, String>,
    #[serde(skip)]
    pub origin: Origin,
}

impl Director {
    /// The interface this director uses for one named in the config.
    pub fn interface<'a>(&'a self, configured: &'a str) -> &'a str {
        self.interfaces
            .get(configured)
            .map(String::as_str)
            .unwrap_or(configured)
    }
}

/// Mutual TLS material: the cluster CA, and a directory holding each director's
/// `NAME.pem` and `NAME-key.pem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    pub ca: PathBuf,
    pub dir: PathBuf,
}

impl Tls {
    pub fn certificate(&self, director: &str) -> PathBuf {
        self.dir.join(format!("{director}.pem"))
    }

    pub fn key(&self, director: &str) -> PathBuf {
        self.dir.join(format!("{director}-key.pem"))
    }
}

/// Stability knobs for placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementSettings {
    /// How long a recovered or new director waits before units move back to it.
    pub hold_down: Micros,
    /// Upper bound on planned moves per second across the fleet.
    pub max_moves_per_second: u32,
}

impl Default for PlacementSettings {
    fn default() -> Self {
        PlacementSettings {
            hold_down: Micros::from_secs(30),
            max_moves_per_second: 20,
        }
    }
}

/// The mesh's heartbeats and failure detection (`heartbeat { interval 20ms suspect_after 5
/// max_timeout 500ms }`): a peer is suspected after `suspect_after` silent intervals — or,
/// for a peer whose heartbeats were recently late, after twice its longest recent gap, never
/// after more than `max_timeout` — and dead once a second director suspects it too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatSettings {
    pub interval: Micros,
    pub suspect_after: u32,
    pub max_timeout: Micros,
}

impl Default for HeartbeatSettings {
    fn default() -> Self {
        HeartbeatSettings {
            interval: Micros(20_000),
            suspect_after: 5,
            max_timeout: Micros(500_000),
        }
    }
}

#[cfg(test)]
pub(crate) mod arb {
    //! Valid `cluster` blocks for property tests.
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    fn name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_-]{0,10}"
    }

    fn address() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
        ]
    }

    fn director() -> impl Strategy<Value = Director> {
        (
            address(),
            1u16..,
            proptest::collection::btree_map("eth[0-9]", "ens[0-9]{1,2}", 0..3),
        )
            .prop_map(|(address, port, interfaces)| Director {
                name: String::new(),
                address,
                port,
                interfaces: interfaces.into_iter().collect::<BTreeMap<_, _>>(),
                origin: Origin::default(),
            })
    }

    pub(crate) fn cluster() -> impl Strategy<Value = Cluster> {
        (
            name(),
            proptest::collection::btree_set(name(), 1..6),
            proptest::collection::vec(director(), 6),
            proptest::option::of(("/[a-z/]{1,20}", "/[a-z/]{1,20}")),
            (0u64..1_000_000_000, 1u32..100_000),
            (1u64..=1_000, 1u32..=20, 0u64..=2_000),
        )
            .prop_map(
                |(cname, names, dirs, tls, (hold, moves), (hb_ms, hb_k, hb_extra_ms))| {
                    let mut seen = BTreeSet::new();
                    let directors = names
                        .into_iter()
                        .zip(dirs)
                        .filter_map(|(n, mut d)| {
                            d.name = n;
                            seen.insert((d.address, d.port)).then_some(d)
                        })
                        .collect();
                    Cluster {
                        name: cname,
                        directors,
                        tls: tls.map(|(ca, dir)| Tls {
                            ca: ca.into(),
                            dir: dir.into(),
                        }),
                        placement: PlacementSettings {
                            hold_down: Micros(hold),
                            max_moves_per_second: moves,
                        },
                        heartbeat: HeartbeatSettings {
                            interval: Micros(hb_ms * 1_000),
                            suspect_after: hb_k,
                            max_timeout: Micros(
                                hb_ms * 1_000 * u64::from(hb_k) + hb_extra_ms * 1_000,
                            ),
                        },
                        origin: Origin::default(),
                    }
                },
            )
    }
}
