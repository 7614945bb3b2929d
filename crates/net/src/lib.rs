//! The host, kept thin: virtual addresses through rtnetlink, link up/down watch, the raw
//! VRRP socket (IP protocol 112, multicast join, TTL 255) and gratuitous ARP / unsolicited
//! neighbour advertisements over AF_PACKET. It carries out what the VRRP state machine
//! decided and never decides anything itself.

pub mod vip;
pub mod vrrp_socket;

/// Looks up an interface's index by name.
pub fn ifindex(name: &str) -> Result<u32, NetError> {
    nix::net::if_::if_nametoindex(name).map_err(|e| NetError::NoInterface {
        name: name.to_string(),
        reason: e.desc().to_string(),
    })
}

/// What can go wrong talking to the host.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("interface {name} not found: {reason}")]
    NoInterface { name: String, reason: String },
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl NetError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> NetError {
        move |source| NetError::Io { what, source }
    }
}
