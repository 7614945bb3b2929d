//! IPVS (LVS) over the kernel's generic-netlink family: services, destinations, schedulers,
//! forwarding methods, persistence and the connection-sync daemon, behind a `Dataplane`
//! trait with a kernel implementation and an in-memory one. It must never touch IPVS state
//! flotilla does not own.
