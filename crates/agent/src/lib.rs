//! The director process: the ractor actor tree that wires the configuration, the VRRP state
//! machines, the host, IPVS, the checkers and the cluster together. Actors are thin shells
//! around the pure crates; a crashed actor is restarted alone, never the director.
//!
//! [`director::run_standalone`] starts, under the [`supervisor::Supervisor`], one
//! [`instance::VrrpInstance`] actor per unit (an instance, or a sync group), a
//! [`notifier::Notifier`] running notify scripts, one runner per tracked script, file or
//! process ([`trackers`]), one [`virtual_server`] actor per virtual server (its checkers report
//! to it) feeding the single IPVS writer ([`lvs_writer`]) and, for a director of a fleet, the
//! [`fleet`] half: mesh, Raft, placement and the moves it orders.

pub mod announce;
pub mod api;
pub mod conn_sync;
pub mod director;
pub mod fleet;
pub mod instance;
pub mod lvs;
pub mod lvs_writer;
pub mod metrics;
pub mod moves;
pub mod notifier;
pub mod script;
pub mod sd_notify;
pub mod setup;
pub mod strays;
pub mod supervisor;
pub mod track;
pub mod trackers;
pub mod virtual_server;
pub mod vs_state;
pub mod web;
