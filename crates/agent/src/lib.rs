//! The director process: the ractor actor tree that wires the configuration, the VRRP state
//! machines, the host, IPVS, the checkers and the cluster together. Actors are thin shells
//! around the pure crates; a crashed actor is restarted alone, never the director.
//!
//! Today: standalone VRRP (no `cluster` block): one [`instance::VrrpInstance`] actor per unit
//! (an instance, or a sync group) under the [`supervisor::Supervisor`], a
//! [`notifier::Notifier`] running notify scripts, and one runner per tracked script, file or
//! process ([`trackers`]); see [`director::run_standalone`].

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
