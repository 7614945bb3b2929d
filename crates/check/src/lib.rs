//! Health checkers for real servers with keepalived's semantics and defaults: TCP_CHECK,
//! HTTP_GET, SSL_GET, MISC_CHECK, DNS_CHECK, UDP_CHECK, PING_CHECK and FILE_CHECK. A checker
//! reports transitions (up or down, with the reason), never every probe, and never changes
//! IPVS itself.
//!
//! Three layers: [`schedule`] is keepalived's checker state machine, sans-IO (time is an
//! argument); [`probe`] runs one probe of each kind over real sockets, processes and files;
//! [`runner`] joins them on tokio for the agent. [`dns`] is the small DNS codec DNS_CHECK
//! speaks, kept apart so it can be fuzzed.

pub mod dns;
pub mod probe;
pub mod runner;
pub mod schedule;

pub use probe::{CheckSpec, Pass, Probe, ProbeError, SpecError, Target};
pub use runner::{CheckRunner, EventSink, ProbeObserver, ProbeReport, ProbeResult};
pub use schedule::{CheckEvent, Health, Outcome, Scheduler};
