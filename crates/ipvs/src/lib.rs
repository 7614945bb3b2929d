//! IPVS (LVS) over the kernel's generic-netlink family: services, destinations, schedulers,
//! forwarding methods, persistence and the connection-sync daemon, behind a `Dataplane`
//! trait with a kernel implementation and an in-memory one. It must never touch IPVS state
//! flotilla does not own.
//!
//! The pieces, in the order data flows:
//! * [`desired::desired_state`]: the configuration's `virtual_server`s (groups expanded) →
//!   the desired [`ServiceSpec`]s.
//! * [`reconcile::plan`] / [`reconcile::apply`] / [`reconcile::reconcile`]: desired against
//!   the kernel's rules → the fewest [`Change`]s, adopting equal rules and deleting only
//!   services in the [`OwnedSet`]; [`reconcile::release`] on stop.
//! * [`Dataplane`]: [`KernelDataplane`] (netlink, messages in [`attr`]) and
//!   [`MemoryDataplane`] (the kernel's semantics, for tests).
//! * [`render::render_ipvsadm`]: `ipvsadm -Ln` / `--stats` text.
//! * [`sync::SyncMessage`]: the kernel sync daemon's connection-sync message, parsed and
//!   re-emitted (flotilla relays it between directors over the mesh).

pub mod attr;
pub mod dataplane;
pub mod desired;
pub mod kernel;
pub mod memory;
pub mod reconcile;
pub mod render;
pub mod sync;
pub mod types;

pub use dataplane::{Dataplane, DataplaneError};
pub use desired::{DesiredError, desired_state};
pub use kernel::KernelDataplane;
pub use memory::MemoryDataplane;
pub use reconcile::{Change, OwnedSet, Report, apply, plan, reconcile, release};
pub use render::{Listing, idle_status, render_ipvsadm};
pub use types::*;
