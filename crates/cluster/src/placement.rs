//! Placement: which director *should* own each unit, and who takes over in which order.
//!
//! A unit is a `vrrp_sync_group`, or an instance in no group. [`place`] ranks the eligible
//! directors of every unit (owner first); each director maps its rank to a VRRP priority, so
//! when an owner dies its rank-2 director wins the next election by itself, and the cluster
//! only confirms what VRRP already did.
//!
//! The function is pure and sans-IO, in the manner of quinn-proto: time comes in as an
//! argument ([`Time`]), nothing here reads a clock, and the memory it needs between calls
//! (the rate limiter's recent moves) travels in the [`Assignment`] the Raft leader commits.
//! The leader calls [`place`] whenever its inputs change, and again at
//! [`Plan::next_wakeup`].
//!
//! What it promises (each rule is a property test in `placement/proptests.rs`):
//! - deterministic: only ordered collections, and a rendezvous hash of our own whose values
//!   do not depend on the Rust version, so a leader of any version computes the same plan;
//! - valid: a unit's ranking holds exactly its eligible directors, each once;
//! - minimal movement: a unit keeps an eligible owner unless balance needs the move; a lost
//!   owner's units go to their rank-2 director, which was chosen by simulating that loss;
//! - balanced once nothing is deferred: no director is more than the largest unit weight
//!   heavier than another director eligible for one of its movable units;
//! - stable: a director gets units only `hold_down` after it came up, rebalancing makes at
//!   most `max_moves_per_second` moves in any one-second window, and `nopreempt` and pinned
//!   units are never moved to rebalance.

mod engine;
mod render;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A unit's name: the `vrrp_sync_group` name, or the `vrrp_instance` name for an instance in
/// no group.
pub type UnitName = String;

/// A director's name, as in `cluster { director NAME { … } }`.
pub type DirectorName = String;

/// A point in time: the time since an epoch the caller chooses. Every [`Time`] handed to
/// placement (`now`, [`Director::since`], and those stored in [`Assignment::recent_moves`])
/// must come from one clock that the whole fleet shares, e.g. the wall clock as time since
/// the UNIX epoch, because a new Raft leader continues the rate limit of the old one.
pub type Time = Duration;

/// How long a planned move stays in the rate limiter's window.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);

/// One unit of placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Its share of a director's load; by default its VIP count. Zero counts as one: a unit
    /// with no address still needs an owner.
    pub weight: u32,
    /// `nopreempt`: the unit never moves just because a better director is back.
    pub nopreempt: bool,
}

impl Unit {
    pub fn new(weight: u32) -> Self {
        Unit {
            weight,
            nopreempt: false,
        }
    }

    pub(crate) fn load(&self) -> u64 {
        u64::from(self.weight.max(1))
    }
}

/// What the leader knows about one director.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Director {
    /// Alive in gossip.
    pub alive: bool,
    /// `flotilla drain`: it should own nothing and appears in no ranking.
    pub drained: bool,
    /// When it last came up (alive in gossip again); the hold-down counts from here. An
    /// undrain does not reset it: the director has been up all along, and its units come
    /// back at the rate limit only.
    pub since: Time,
    /// Units whose tracked interfaces or scripts are not healthy on this director.
    pub ineligible_for: BTreeSet<UnitName>,
}

impl Director {
    /// An alive, undrained director, up since `since`, eligible for every unit.
    pub fn up(since: Time) -> Self {
        Director {
            alive: true,
            drained: false,
            since,
            ineligible_for: BTreeSet::new(),
        }
    }
}

/// Stability knobs. Mirrors `flotilla_config::model::cluster::PlacementSettings` field by
/// field (`hold_down: Micros` → `Micros::as_duration()`); this crate does not depend on the
/// configuration crate, so the caller converts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// How long a director must have been up before units move to it for balance.
    pub hold_down: Duration,
    /// Rebalancing moves allowed in any window of [`RATE_WINDOW`], fleet-wide. Zero counts
    /// as one (the configuration refuses zero).
    pub max_moves_per_second: u32,
}

impl Default for Settings {
    /// The configuration's defaults: 30 s hold-down, 20 moves per second.
    fn default() -> Self {
        Settings {
            hold_down: Duration::from_secs(30),
            max_moves_per_second: 20,
        }
    }
}

/// Everything placement decides from, besides the previous assignment and the time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Input {
    pub units: BTreeMap<UnitName, Unit>,
    pub directors: BTreeMap<DirectorName, Director>,
    /// `flotilla move UNIT DIRECTOR`: the unit is owned there while that director is
    /// eligible for it, and rebalancing never moves it.
    pub pins: BTreeMap<UnitName, DirectorName>,
    pub settings: Settings,
}

impl Input {
    /// Whether `director` may own or back up `unit`: alive, not drained, and the unit's
    /// trackers healthy there.
    pub fn eligible(&self, director: &str, unit: &str) -> bool {
        self.directors
            .get(director)
            .is_some_and(|d| d.alive && !d.drained && !d.ineligible_for.contains(unit))
    }

    /// Marks `director` drained.
    pub fn drain(&mut self, director: &str) -> Result<(), PlacementError> {
        let d = self
            .directors
            .get_mut(director)
            .ok_or_else(|| PlacementError::UnknownDirector(director.to_string()))?;
        d.drained = true;
        Ok(())
    }

    /// Pins `unit` to `director`, which must be eligible for it now.
    pub fn pin(&mut self, unit: &str, director: &str) -> Result<(), PlacementError> {
        if !self.units.contains_key(unit) {
            return Err(PlacementError::UnknownUnit(unit.to_string()));
        }
        if !self.directors.contains_key(director) {
            return Err(PlacementError::UnknownDirector(director.to_string()));
        }
        if !self.eligible(director, unit) {
            return Err(PlacementError::NotEligible {
                unit: unit.to_string(),
                director: director.to_string(),
            });
        }
        self.pins.insert(unit.to_string(), director.to_string());
        Ok(())
    }
}

/// Why an operator's request cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("no director named '{0}' in the cluster")]
    UnknownDirector(String),
    #[error("no unit (sync group or instance) named '{0}'")]
    UnknownUnit(String),
    #[error(
        "director '{director}' is not eligible for '{unit}' (down, drained or a tracker failing)"
    )]
    NotEligible { unit: String, director: String },
}

/// A planned move counted by the rate limiter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecentMove {
    pub at: Time,
    pub unit: UnitName,
}

/// The committed placement: what the Raft state machine stores, with its epoch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Assignment {
    pub epoch: u64,
    /// For every unit, its eligible directors: owner first, then the order in which the others
    /// take over. Empty when no director is eligible.
    pub ranks: BTreeMap<UnitName, Vec<DirectorName>>,
    /// Planned moves of the last [`RATE_WINDOW`] (as of the epoch's plan), the rate
    /// limiter's memory; older entries are dropped when the next epoch is made.
    pub recent_moves: Vec<RecentMove>,
}

impl Assignment {
    pub fn owner(&self, unit: &str) -> Option<&str> {
        self.ranks.get(unit)?.first().map(String::as_str)
    }

    /// `director`'s rank for `unit`, 0 for the owner; `None` when it is not ranked there.
    pub fn rank(&self, unit: &str, director: &str) -> Option<usize> {
        self.ranks.get(unit)?.iter().position(|d| d == director)
    }

    /// The units `director` owns, in name order.
    pub fn owned_by<'a>(&'a self, director: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.ranks
            .iter()
            .filter(move |(_, r)| r.first().is_some_and(|o| o == director))
            .map(|(u, _)| u.as_str())
    }
}

/// Why a unit changes owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MoveReason {
    /// It had no owner: a new unit, or none of its directors was eligible before.
    Unowned,
    /// Its owner is down (or no longer in the cluster).
    OwnerDown,
    /// Its owner is drained.
    OwnerDrained,
    /// Its owner's trackers for this unit are failing.
    OwnerIneligible,
    /// An operator pinned it elsewhere.
    Pinned,
    /// Balance: a lighter director may take it.
    Rebalance,
}

impl MoveReason {
    /// Planned moves are the ones the rate limiter counts: the cluster chose them, rather
    /// than VRRP or a failure forcing them.
    pub fn is_planned(self) -> bool {
        matches!(
            self,
            MoveReason::OwnerDrained | MoveReason::Pinned | MoveReason::Rebalance
        )
    }
}

/// A change of owner in this plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub unit: UnitName,
    pub from: Option<DirectorName>,
    pub to: DirectorName,
    pub why: MoveReason,
}

/// What holds a move back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wait {
    /// The target has not been up for `hold_down` yet.
    HoldDown,
    /// The window of [`RATE_WINDOW`] is full.
    RateLimit,
}

/// A rebalancing move owed but not made in this plan. Later calls recompute it from their
/// own inputs, so it is a forecast, not a promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferred {
    pub unit: UnitName,
    pub from: DirectorName,
    pub to: DirectorName,
    pub why: Wait,
    pub not_before: Time,
}

/// The result of [`place`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The `now` it was computed for.
    pub at: Time,
    /// The previous assignment's epoch, if there was one.
    pub previous_epoch: Option<u64>,
    /// Its epoch is the previous one plus one when any ranking changed, else the same (and
    /// then it equals the previous assignment).
    pub assignment: Assignment,
    /// Owner changes, in the order they were decided: pins, lost owners (heaviest unit
    /// first), rebalancing.
    pub moves: Vec<Move>,
    pub deferred: Vec<Deferred>,
    /// Units no director is eligible for: nobody should hold them.
    pub unplaced: Vec<UnitName>,
    /// Pins not honoured because the unit is unknown or the director not eligible for it.
    pub unhonoured_pins: Vec<(UnitName, DirectorName)>,
    /// When to call [`place`] again although nothing else changed: a deferred move may be
    /// made, or a director's hold-down ends.
    pub next_wakeup: Option<Time>,
}

impl Plan {
    /// Whether the assignment differs from the previous one (a new epoch to commit).
    pub fn changed(&self) -> bool {
        self.previous_epoch != Some(self.assignment.epoch)
    }
}

/// Ranks the eligible directors of every unit at `now`, starting from `previous` (the last
/// committed assignment) and moving as little as the rules allow.
///
/// Rate limit: drains and pins are made at once (an operator asked for them), but they fill
/// the window like any planned move; rebalancing moves wait for room. Failovers (owner down or
/// ineligible) and placing unowned units are neither limited nor counted: VRRP makes the
/// first by itself, and an unowned unit serves nobody.
pub fn place(input: &Input, previous: Option<&Assignment>, now: Time) -> Plan {
    engine::place(input, previous, now)
}

/// What `flotilla drain DIRECTOR` would do: the plan with `director` drained, to show before
/// committing the flag.
pub fn plan_drain(
    input: &Input,
    previous: Option<&Assignment>,
    director: &str,
    now: Time,
) -> Result<Plan, PlacementError> {
    let mut input = input.clone();
    input.drain(director)?;
    Ok(place(&input, previous, now))
}

/// What `flotilla move UNIT DIRECTOR` would do: the plan with `unit` pinned to `director`.
pub fn plan_move(
    input: &Input,
    previous: Option<&Assignment>,
    unit: &str,
    director: &str,
    now: Time,
) -> Result<Plan, PlacementError> {
    let mut input = input.clone();
    input.pin(unit, director)?;
    Ok(place(&input, previous, now))
}
