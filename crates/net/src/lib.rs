//! The host, kept thin: virtual addresses through rtnetlink, link up/down watch, the raw
//! VRRP sockets for IPv4 and IPv6 (IP protocol 112, multicast join, TTL / hop limit 255),
//! gratuitous ARP over AF_PACKET and unsolicited neighbour advertisements over raw ICMPv6, the
//! local link between the kernel's IPVS sync daemons and the connection-sync relay. It
//! carries out what the VRRP state machine decided and never decides anything itself.

use std::net::Ipv6Addr;

pub mod file_watch;
pub mod garp;
pub mod heap;
pub mod limits;
pub mod link;
pub mod sync_link;
pub mod vip;
pub mod vrrp_socket;

/// Looks up an interface's index by name.
pub fn ifindex(name: &str) -> Result<u32, NetError> {
    nix::net::if_::if_nametoindex(name).map_err(|e| NetError::NoInterface {
        name: name.to_string(),
        reason: e.desc().to_string(),
    })
}

/// The interface's IPv6 link-local address (fe80::/10), the source RFC 5798 §5.1.2.1
/// requires for IPv6 adverts. It exists only while IPv6 is enabled and the link has been up;
/// it may still be tentative (DAD) for about a second after link-up.
pub fn link_local(ifname: &str) -> Result<Ipv6Addr, NetError> {
    let addrs =
        nix::ifaddrs::getifaddrs().map_err(|e| NetError::io("listing addresses")(e.into()))?;
    addrs
        .filter(|a| a.interface_name == ifname)
        .filter_map(|a| a.address?.as_sockaddr_in6().map(|s| s.ip()))
        .find(|ip| ip.is_unicast_link_local())
        .ok_or_else(|| NetError::NoLinkLocal {
            name: ifname.to_string(),
        })
}

/// The interface's hardware (MAC) address, for GARP / NA senders.
pub fn mac(ifname: &str) -> Result<[u8; 6], NetError> {
    let addrs =
        nix::ifaddrs::getifaddrs().map_err(|e| NetError::io("listing interfaces")(e.into()))?;
    addrs
        .filter(|a| a.interface_name == ifname)
        .find_map(|a| {
            let storage = a.address?;
            let link = storage.as_link_addr()?;
            if link.halen() == 6 { link.addr() } else { None }
        })
        .ok_or_else(|| NetError::NoMac {
            name: ifname.to_string(),
        })
}

/// What can go wrong talking to the host.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("interface {name} not found: {reason}")]
    NoInterface { name: String, reason: String },
    #[error("interface {name} has no IPv6 link-local address (link down or IPv6 disabled?)")]
    NoLinkLocal { name: String },
    #[error("interface {name} has no Ethernet (6-byte) hardware address")]
    NoMac { name: String },
    #[error("interface {name}: IPv6 is not available on this host")]
    NoIpv6 { name: String },
    #[error(
        "source address {addr} is not usable (still tentative during DAD, or not on the interface): {source}"
    )]
    SourceUnusable {
        addr: std::net::IpAddr,
        #[source]
        source: std::io::Error,
    },
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
