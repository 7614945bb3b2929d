//! The replicated fleet state and the commands that change it. Pure: `FleetState::apply` is the
//! whole state machine, and it must give the same answer on every director for the same log, in
//! every flotilla version that might share a fleet during a rolling upgrade.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use flotilla_config::model::{Cluster, Config};
use serde::{Deserialize, Serialize};

/// What every director agrees on. Encoded with postcard in the log and snapshots, so fields are
/// plain data with no `skip_serializing_if` (postcard is not self-describing and cannot skip).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetState {
    /// The resolved configuration model as JSON text. The model uses `skip_serializing_if`,
    /// which postcard cannot round-trip, so it travels as the JSON serde_json gives it.
    /// Shared: the state is cloned for every reader (tens of MB for a large LVS
    /// configuration), and the text never changes once committed.
    pub config_json: Option<Arc<str>>,
    /// Bumped by every `ApplyConfig`; 0 = never configured through the fleet.
    pub config_version: u64,
    /// Directors being drained: placement gives them no units.
    pub drained: BTreeSet<String>,
    /// Unit name → the director an operator pinned it to (`flotilla move`).
    pub pins: BTreeMap<String, String>,
    /// The committed placement: its epoch and the placement encoded by its owner (postcard).
    /// Opaque here so the state machine does not depend on the placement type's shape.
    pub assignment: Option<(u64, Vec<u8>)>,
}

/// A change to the fleet state, proposed through the Raft leader.
///
/// Wire rule: variants and fields are postcard-encoded by position, so new variants are only
/// ever appended, and a new one is proposed only once every director runs a version that knows
/// it (a director that cannot decode a log entry stops).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Replace the configuration (JSON of `flotilla_config::model::Config`).
    ApplyConfig {
        json: String,
    },
    Drain {
        director: String,
    },
    Undrain {
        director: String,
    },
    Pin {
        unit: String,
        director: String,
    },
    Unpin {
        unit: String,
    },
    /// Commit a new placement; refused unless `epoch` is above the committed one.
    SetAssignment {
        epoch: u64,
        blob: Vec<u8>,
    },
    /// `ApplyConfig` for a configuration above [`DEFLATE_ABOVE`] bytes of JSON, deflated
    /// ([`Command::config`] makes the right one). A 1,000-VIP configuration is ~1.4 MB of JSON
    /// and ~30 kB deflated; plain, such an entry cannot reach the followers within the
    /// AppendEntries deadline (openraft bounds each by the heartbeat interval), so a version
    /// without this variant never committed one: the variant only carries what older
    /// versions could not carry anyway.
    ApplyConfigDeflated {
        deflated: Vec<u8>,
    },
}

/// Configurations with more JSON than this are proposed deflated.
pub const DEFLATE_ABOVE: usize = 256 << 10;
/// The most JSON a deflated configuration may inflate to (a corrupt or hostile entry must not
/// exhaust memory): 40 MB is 2,000 virtual servers with 37,000 real servers.
pub const MAX_CONFIG_JSON: usize = 256 << 20;

impl Command {
    /// The command that replaces the configuration with `json`: deflated when it is large.
    pub fn config(json: String) -> Command {
        if json.len() > DEFLATE_ABOVE {
            Command::ApplyConfigDeflated {
                deflated: miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 6),
            }
        } else {
            Command::ApplyConfig { json }
        }
    }

    /// The configuration JSON this command carries, if it is one (inflated).
    pub fn config_json(&self) -> Option<Result<String, InflateError>> {
        match self {
            Command::ApplyConfig { json } => Some(Ok(json.clone())),
            Command::ApplyConfigDeflated { deflated } => Some(inflate(deflated)),
            _ => None,
        }
    }
}

/// A deflated configuration that does not inflate to UTF-8 JSON within [`MAX_CONFIG_JSON`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("deflated configuration does not inflate: {0}")]
pub struct InflateError(pub String);

fn inflate(deflated: &[u8]) -> Result<String, InflateError> {
    let bytes = miniz_oxide::inflate::decompress_to_vec_with_limit(deflated, MAX_CONFIG_JSON)
        .map_err(|e| InflateError(format!("{:?}", e.status)))?;
    String::from_utf8(bytes).map_err(|e| InflateError(e.to_string()))
}

/// The state machine's answer to one committed entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandReply {
    Done,
    ConfigApplied {
        version: u64,
    },
    /// Committed to the log but not applied: the state is unchanged.
    Rejected(Rejection),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// A leader that computed its placement before a newer one was committed (for instance a
    /// deposed leader) must not roll placement back.
    #[error("assignment epoch {proposed} is not above the committed epoch {current}")]
    StaleEpoch { current: u64, proposed: u64 },
    /// An `ApplyConfigDeflated` whose bytes do not inflate (checked before proposing, so only
    /// a corrupt entry gets here).
    #[error("{0}")]
    BadConfig(InflateError),
}

#[derive(Debug, thiserror::Error)]
#[error("the fleet's configuration (version {version}) does not decode: {source}")]
pub struct ConfigDecodeError {
    pub version: u64,
    #[source]
    pub source: serde_json::Error,
}

impl FleetState {
    /// The committed configuration model, if one has been applied.
    pub fn config(&self) -> Result<Option<Config>, ConfigDecodeError> {
        self.decode()
    }

    /// Only the `cluster` block of the committed configuration (`None` before one is
    /// committed, or when it has none): for the readers that need the directors several
    /// times a second (the mesh roster, Raft membership). The rest of the text is scanned,
    /// not built: 12 ms instead of 70 ms for 37,000 real servers (bench `fleet_state`).
    pub fn cluster(&self) -> Result<Option<Cluster>, ConfigDecodeError> {
        #[derive(Deserialize)]
        struct ClusterOnly {
            #[serde(default)]
            cluster: Option<Cluster>,
        }
        Ok(self.decode::<ClusterOnly>()?.and_then(|c| c.cluster))
    }

    fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, ConfigDecodeError> {
        self.config_json
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|source| ConfigDecodeError {
                version: self.config_version,
                source,
            })
    }

    /// The committed assignment epoch; 0 when there is none, so the first epoch is 1.
    pub fn assignment_epoch(&self) -> u64 {
        self.assignment.as_ref().map_or(0, |(epoch, _)| *epoch)
    }

    fn set_config(&mut self, json: String) -> CommandReply {
        self.config_json = Some(json.into());
        self.config_version += 1;
        CommandReply::ConfigApplied {
            version: self.config_version,
        }
    }

    /// Apply one committed command. Never fails and never looks outside `self`: the JSON is not
    /// parsed here (that happens before proposing), because a parse that a newer flotilla
    /// accepts and an older one refuses would split the fleet's state.
    pub(crate) fn apply(&mut self, command: Command) -> CommandReply {
        match command {
            Command::ApplyConfig { json } => return self.set_config(json),
            Command::ApplyConfigDeflated { deflated } => {
                return match inflate(&deflated) {
                    Ok(json) => self.set_config(json),
                    Err(e) => CommandReply::Rejected(Rejection::BadConfig(e)),
                };
            }
            Command::Drain { director } => {
                self.drained.insert(director);
            }
            Command::Undrain { director } => {
                self.drained.remove(&director);
            }
            Command::Pin { unit, director } => {
                self.pins.insert(unit, director);
            }
            Command::Unpin { unit } => {
                self.pins.remove(&unit);
            }
            Command::SetAssignment { epoch, blob } => {
                let current = self.assignment_epoch();
                if epoch <= current {
                    return CommandReply::Rejected(Rejection::StaleEpoch {
                        current,
                        proposed: epoch,
                    });
                }
                self.assignment = Some((epoch, blob));
            }
        }
        CommandReply::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_change_the_state() {
        let mut s = FleetState::default();
        assert_eq!(
            s.apply(Command::ApplyConfig { json: "{}".into() }),
            CommandReply::ConfigApplied { version: 1 }
        );
        s.apply(Command::Drain {
            director: "d1".into(),
        });
        s.apply(Command::Drain {
            director: "d1".into(),
        });
        s.apply(Command::Pin {
            unit: "VG_1".into(),
            director: "d2".into(),
        });
        assert_eq!(s.drained.len(), 1);
        assert_eq!(s.pins.get("VG_1").map(String::as_str), Some("d2"));
        s.apply(Command::Undrain {
            director: "d1".into(),
        });
        s.apply(Command::Unpin {
            unit: "VG_1".into(),
        });
        assert!(s.drained.is_empty() && s.pins.is_empty());
        assert_eq!(s.config_version, 1);
    }

    #[test]
    fn large_configurations_travel_deflated_and_apply_the_same() {
        let small = serde_json::to_string(&Config::default()).expect("encode config");
        assert!(matches!(
            Command::config(small.clone()),
            Command::ApplyConfig { .. }
        ));
        // A large, repetitive JSON text like a many-VIP configuration's.
        let large = format!(
            "[{}]",
            vec![r#"{"address":"10.99.1.1","prefix_len":16,"dev":"eth0"}"#; 20_000].join(",")
        );
        assert!(large.len() > DEFLATE_ABOVE);
        let cmd = Command::config(large.clone());
        let Command::ApplyConfigDeflated { deflated } = &cmd else {
            panic!("not deflated: {cmd:?}");
        };
        assert!(
            deflated.len() * 20 < large.len(),
            "{} bytes",
            deflated.len()
        );
        assert_eq!(cmd.config_json(), Some(Ok(large.clone())));
        let mut s = FleetState::default();
        assert_eq!(s.apply(cmd), CommandReply::ConfigApplied { version: 1 });
        assert_eq!(s.config_json.as_deref(), Some(large.as_str()));
        // Through postcard, as in the log.
        let bytes = postcard::to_allocvec(&Command::config(large.clone())).expect("encode");
        let back: Command = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back.config_json(), Some(Ok(large)));
    }

    #[test]
    fn a_corrupt_deflated_configuration_changes_nothing() {
        let mut s = FleetState::default();
        s.apply(Command::ApplyConfig { json: "{}".into() });
        let before = s.clone();
        for junk in [vec![], vec![0xff; 64], b"not deflate at all".to_vec()] {
            let reply = s.apply(Command::ApplyConfigDeflated { deflated: junk });
            assert!(
                matches!(reply, CommandReply::Rejected(Rejection::BadConfig(_))),
                "{reply:?}"
            );
            assert_eq!(s, before);
        }
        // A deflate bomb beyond the limit is refused, not inflated.
        let bomb = miniz_oxide::deflate::compress_to_vec(&vec![b' '; MAX_CONFIG_JSON + 1], 1);
        assert!(matches!(
            s.apply(Command::ApplyConfigDeflated { deflated: bomb }),
            CommandReply::Rejected(Rejection::BadConfig(_))
        ));
        assert_eq!(s, before);
    }

    #[test]
    fn assignment_epochs_only_move_forward() {
        let mut s = FleetState::default();
        let set = |epoch| Command::SetAssignment {
            epoch,
            blob: vec![epoch as u8],
        };
        assert_eq!(
            s.apply(set(0)),
            CommandReply::Rejected(Rejection::StaleEpoch {
                current: 0,
                proposed: 0
            })
        );
        assert_eq!(s.apply(set(2)), CommandReply::Done);
        assert_eq!(
            s.apply(set(2)),
            CommandReply::Rejected(Rejection::StaleEpoch {
                current: 2,
                proposed: 2
            })
        );
        assert_eq!(
            s.apply(set(1)),
            CommandReply::Rejected(Rejection::StaleEpoch {
                current: 2,
                proposed: 1
            })
        );
        assert_eq!(s.assignment, Some((2, vec![2])));
        assert_eq!(s.apply(set(3)), CommandReply::Done);
        assert_eq!(s.assignment_epoch(), 3);
    }

    #[test]
    fn state_round_trips_through_postcard_and_config_decodes() {
        let json = serde_json::to_string(&Config::default()).expect("encode config");
        let mut s = FleetState::default();
        s.apply(Command::ApplyConfig { json });
        s.apply(Command::SetAssignment {
            epoch: 7,
            blob: vec![1, 2, 3],
        });
        let bytes = postcard::to_allocvec(&s).expect("encode");
        let back: FleetState = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, s);
        assert_eq!(
            back.config().expect("decode config"),
            Some(Config::default())
        );
        assert!(FleetState::default().config().expect("none").is_none());
        let bad = FleetState {
            config_json: Some("{".into()),
            config_version: 4,
            ..FleetState::default()
        };
        assert!(matches!(
            bad.config(),
            Err(ConfigDecodeError { version: 4, .. })
        ));
        assert!(matches!(
            bad.cluster(),
            Err(ConfigDecodeError { version: 4, .. })
        ));
    }

    #[test]
    fn the_cluster_block_decodes_alone_and_equals_the_whole_decode() {
        let text = "cluster {\n name lab\n director d1 { address 10.99.0.1 }\n \
                    director d2 { address 10.99.0.2 port 7200 }\n \
                    placement { hold_down 5s }\n}\n\
                    vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n \
                    virtual_ipaddress { 10.99.0.100/24 }\n}\n\
                    virtual_server 10.99.0.100 80 {\n protocol TCP\n \
                    real_server 10.99.1.1 80 { TCP_CHECK { } }\n}\n";
        let loaded = flotilla_config::load_str(
            std::path::Path::new("fleet.conf"),
            text,
            &flotilla_config::LoadOptions::default(),
        );
        assert!(loaded.is_ok(), "{}", loaded.report());
        let want = loaded.config.cluster.clone().expect("a cluster block");
        let mut s = FleetState::default();
        assert_eq!(s.cluster().expect("nothing committed"), None);
        s.apply(Command::config(
            serde_json::to_string(&loaded.config).expect("encode"),
        ));
        assert_eq!(s.cluster().expect("decode"), Some(want.clone()));
        let whole = s.config().expect("decode").expect("committed");
        assert_eq!(whole.cluster, Some(want));
        // Without a cluster block (a standalone file committed by hand): none, not an error.
        s.apply(Command::config(
            serde_json::to_string(&Config::default()).expect("encode"),
        ));
        assert_eq!(s.cluster().expect("decode"), None);
        // Readers share the committed text; they do not copy it.
        let copy = s.clone();
        assert!(std::ptr::eq(
            copy.config_json.as_deref().expect("text"),
            s.config_json.as_deref().expect("text")
        ));
    }
}
