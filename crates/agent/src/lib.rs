//! The director process: the ractor actor tree that wires the configuration, the VRRP state
//! machines, the host, IPVS, the checkers and the cluster together. Actors are thin shells
//! around the pure crates; a crashed actor is restarted alone, never the director.
//!
//! Today: standalone VRRP (no `cluster` block): one [`instance::VrrpInstance`] actor per
//! `vrrp_instance` (IPv4) and a [`notifier::Notifier`] running notify scripts; see
//! [`director::run_standalone`].

pub mod api;
pub mod director;
pub mod instance;
pub mod notifier;
pub mod setup;
pub mod track;
