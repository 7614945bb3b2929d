//! The replicated fleet state and the commands that change it. Pure: `FleetState::apply` is the
//! whole state machine, and it must give the same answer on every director for the same log, in
//! every flotilla version that might share a fleet during a rolling upgrade.

use std::collections::{BTreeMap, BTreeSet};

use flotilla_config::model::Config;
use serde::{Deserialize, Serialize};

/// What every director agrees on. Encoded with postcard in the log and snapshots, so fields are
/// plain data with no `skip_serializing_if` (postcard is not self-describing and cannot skip).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetState {
    /// The resolved configuration model as JSON text. The model uses `skip_serializing_if`,
    /// which postcard cannot round-trip, so it travels as the JSON serde_json gives it.
    pub config_json: Option<String>,
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

    /// Apply one committed command. Never fails and never looks outside `self`: the JSON is not
    /// parsed here (that happens before proposing), because a parse that a newer flotilla
    /// accepts and an older one refuses would split the fleet's state.
    pub(crate) fn apply(&mut self, command: Command) -> CommandReply {
        match command {
            Command::ApplyConfig { json } => {
                self.config_json = Some(json);
                self.config_version += 1;
                return CommandReply::ConfigApplied {
                    version: self.config_version,
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
    }
}
