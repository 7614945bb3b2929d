//! The raw VRRP socket for IPv4 (IP protocol 112) on one interface: multicast join of
//! 224.0.0.18, TTL 255 on send, and the received TTL and addresses handed up so the caller
//! can enforce RFC 5798 §7.1 (TTL 255) before it parses anything.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};

use flotilla_vrrp::wire::{IP_PROTOCOL, MULTICAST_V4, TTL};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::NetError;

/// How adverts travel on this socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// To 224.0.0.18, joined on the interface.
    Multicast,
    /// One copy per peer (`unicast_peer`); no group is joined.
    Unicast,
}

/// A received VRRP message with what the IP header said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub payload: Vec<u8>,
}

/// Why a received datagram was not handed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("datagram of {0} bytes is shorter than its IPv4 header")]
    Truncated(usize),
    #[error("not IPv4 (version {0})")]
    NotIpv4(u8),
    #[error("IP protocol {0} is not VRRP")]
    Protocol(u8),
}

pub struct VrrpSocketV4 {
    fd: AsyncFd<Socket>,
}

impl VrrpSocketV4 {
    /// Opens the socket bound to interface `ifname` (must run inside a tokio runtime).
    pub fn open(ifname: &str, delivery: Delivery) -> Result<Self, NetError> {
        let ifindex = crate::ifindex(ifname)?;
        let s = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(IP_PROTOCOL))),
        )
        .map_err(NetError::io(
            "opening the raw VRRP socket (needs CAP_NET_RAW)",
        ))?;
        s.set_nonblocking(true)
            .map_err(NetError::io("setting non-blocking"))?;
        s.bind_device(Some(ifname.as_bytes()))
            .map_err(NetError::io("binding the VRRP socket to its interface"))?;
        // RFC 5798 §5.1.1.3: sent with TTL 255, so a receiver can tell it was not routed.
        s.set_ttl_v4(u32::from(TTL))
            .map_err(NetError::io("setting TTL 255"))?;
        s.set_multicast_ttl_v4(u32::from(TTL))
            .map_err(NetError::io("setting multicast TTL 255"))?;
        s.set_multicast_loop_v4(false)
            .map_err(NetError::io("disabling multicast loopback"))?;
        if delivery == Delivery::Multicast {
            s.join_multicast_v4_n(&MULTICAST_V4, &InterfaceIndexOrAddress::Index(ifindex))
                .map_err(NetError::io("joining 224.0.0.18"))?;
        }
        Ok(VrrpSocketV4 { fd: register(s)? })
    }

    /// Sends one VRRP message to `dst` (224.0.0.18 or a unicast peer).
    pub async fn send(&self, payload: &[u8], dst: Ipv4Addr) -> Result<(), NetError> {
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        loop {
            let mut guard = self
                .fd
                .writable()
                .await
                .map_err(NetError::io("waiting to send"))?;
            match guard.try_io(|s| s.get_ref().send_to(payload, &to)) {
                Ok(r) => return r.map(|_| ()).map_err(NetError::io("sending an advert")),
                Err(_would_block) => continue,
            }
        }
    }

    /// Receives the next VRRP datagram; a datagram whose IP header is unusable is returned as
    /// `Ok(Err(..))` so the caller can count it and go on.
    pub async fn recv(&self) -> Result<Result<Received, HeaderError>, NetError> {
        let mut buf = vec![0u8; 65_536];
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(NetError::io("waiting for adverts"))?;
            match guard.try_io(|s| s.get_ref().read(&mut buf)) {
                Ok(r) => {
                    let n = r.map_err(NetError::io("receiving an advert"))?;
                    return Ok(parse_ipv4(&buf[..n]));
                }
                Err(_would_block) => continue,
            }
        }
    }
}

/// Registers an owned socket with tokio's reactor.
#[allow(unsafe_code)]
fn register(s: Socket) -> Result<AsyncFd<Socket>, NetError> {
    // SAFETY: `AsyncFd::register` requires that the file descriptor stays open and is not
    // registered elsewhere while the `AsyncFd` lives. `s` is moved in and owned by the
    // `AsyncFd`; its descriptor is never handed out, so nothing else can close or register it.
    unsafe { AsyncFd::register(s) }.map_err(|e| NetError::Io {
        what: "registering the socket with tokio",
        source: std::io::Error::other(e.to_string()),
    })
}

/// Splits a raw IPv4 datagram into header facts and payload; every length checked first.
pub fn parse_ipv4(d: &[u8]) -> Result<Received, HeaderError> {
    let Some(&first) = d.first() else {
        return Err(HeaderError::Truncated(0));
    };
    if first >> 4 != 4 {
        return Err(HeaderError::NotIpv4(first >> 4));
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || d.len() < ihl {
        return Err(HeaderError::Truncated(d.len()));
    }
    if d[9] != IP_PROTOCOL {
        return Err(HeaderError::Protocol(d[9]));
    }
    // The total length may be shorter than what arrived (Ethernet padding).
    let total = usize::from(u16::from_be_bytes([d[2], d[3]]));
    let end = if total >= ihl && total <= d.len() {
        total
    } else {
        d.len()
    };
    Ok(Received {
        ttl: d[8],
        src: Ipv4Addr::new(d[12], d[13], d[14], d[15]),
        dst: Ipv4Addr::new(d[16], d[17], d[18], d[19]),
        payload: d[ihl..end].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_headers_are_checked_before_use() {
        assert_eq!(parse_ipv4(&[]), Err(HeaderError::Truncated(0)));
        assert_eq!(parse_ipv4(&[0x60; 40]), Err(HeaderError::NotIpv4(6)));
        assert_eq!(parse_ipv4(&[0x45; 10]), Err(HeaderError::Truncated(10)));
        assert_eq!(parse_ipv4(&[0x44; 40]), Err(HeaderError::Truncated(40)));
        let mut d = vec![0u8; 28];
        d[0] = 0x45;
        d[2..4].copy_from_slice(&24u16.to_be_bytes());
        d[8] = 255;
        d[9] = 6;
        assert_eq!(parse_ipv4(&d), Err(HeaderError::Protocol(6)));
        d[9] = 112;
        d[12..16].copy_from_slice(&[10, 0, 0, 1]);
        d[16..20].copy_from_slice(&[224, 0, 0, 18]);
        let r = parse_ipv4(&d).expect("valid header");
        assert_eq!(r.ttl, 255);
        assert_eq!(r.src, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(r.payload.len(), 4, "padding after total length is cut");
    }
}
