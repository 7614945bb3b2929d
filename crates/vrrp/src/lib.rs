//! VRRP v2 (RFC 3768) and v3 (RFC 5798) for IPv4 and IPv6: the packet codec and the
//! router state machine, sans-IO. Time, packets, priority changes and faults come in as
//! arguments; adverts to send, VIPs to add or remove, GARPs and notifications come out as
//! values the caller drains. This crate must never open a socket, read a clock or spawn.

pub mod machine;
pub mod sync;
pub mod wire;
