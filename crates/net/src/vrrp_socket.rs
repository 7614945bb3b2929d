//! The raw VRRP sockets (IP protocol 112) on one interface, one per family: multicast join
//! of 224.0.0.18 / ff02::12, TTL / hop limit 255 on send, and the received TTL / hop limit and
//! addresses handed up so the caller can enforce RFC 5798 §7.1 (TTL 255) before it parses
//! anything.

use std::io::{IoSlice, IoSliceMut, Read};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use flotilla_vrrp::wire::{IP_PROTOCOL, MULTICAST_V4, MULTICAST_V6, TTL};
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg, sendmsg, setsockopt,
    sockopt,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, SockFilter, Socket, Type};
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
        Self::open_from(ifname, delivery, None)
    }

    /// Like [`VrrpSocketV4::open`], sending from `source` (`unicast_src_ip` /
    /// `mcast_src_ip`) instead of the interface's primary address. For unicast the socket is
    /// bound to it, so it also receives only adverts addressed to it, as unicast mode wants;
    /// for multicast it selects the source with IP_MULTICAST_IF.
    pub fn open_from(
        ifname: &str,
        delivery: Delivery,
        source: Option<Ipv4Addr>,
    ) -> Result<Self, NetError> {
        let ifindex = crate::ifindex(ifname)?;
        let s = raw_vrrp_socket(Domain::IPV4, ifname)?;
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
        match (delivery, source) {
            (_, None) => {}
            (Delivery::Unicast, Some(src)) => s
                .bind(&SockAddr::from(SocketAddrV4::new(src, 0)))
                .map_err(NetError::io("binding to the unicast source address"))?,
            (Delivery::Multicast, Some(src)) => s
                .set_multicast_if_v4(&src)
                .map_err(NetError::io("selecting the multicast source address"))?,
        }
        Ok(VrrpSocketV4 { fd: register(s)? })
    }

    /// Lets the kernel hand this socket only adverts for `vrid`: a raw socket otherwise
    /// receives every VRRP datagram on its interface, and with many instances each would wake
    /// for all of them (keepalived dispatches by VRID for the same reason).
    pub fn only_vrid(&self, vrid: u8) -> Result<(), NetError> {
        self.fd
            .get_ref()
            .attach_filter(&vrid_filter(&[vrid], true, true))
            .map_err(NetError::io("attaching the VRID filter"))
    }

    /// The opposite of [`Self::only_vrid`]: every advert except those for `vrids` — what no
    /// instance here listens to, for counting.
    pub fn except_vrids(&self, vrids: &[u8]) -> Result<(), NetError> {
        self.fd
            .get_ref()
            .attach_filter(&vrid_filter(vrids, false, true))
            .map_err(NetError::io("attaching the VRID filter"))
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

/// A received IPv6 VRRP message with what the IPv6 header said about it (from the
/// IPV6_RECVHOPLIMIT / IPV6_RECVPKTINFO control messages: a raw IPv6 socket never sees the
/// header itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedV6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    /// The interface it arrived on.
    pub ifindex: u32,
    pub payload: Vec<u8>,
}

/// Why a received IPv6 datagram was not handed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AncillaryError {
    #[error("no IPV6_HOPLIMIT control message came with the datagram")]
    NoHopLimit,
    #[error("no IPV6_PKTINFO control message came with the datagram")]
    NoPacketInfo,
    #[error("no IPv6 source address came with the datagram")]
    NoSource,
    #[error("hop limit {0} is out of range")]
    HopLimit(i32),
    #[error("control messages were truncated")]
    Truncated,
    #[error("datagram of more than {0} bytes was truncated")]
    TooLong(usize),
}

/// The raw VRRP socket for IPv6 on one interface.
///
/// Source address: RFC 5798 §5.1.2.1 says an IPv6 advert is sent from the interface's
/// link-local address, and the v3 checksum covers a pseudo-header holding that source
/// (§5.2.8). Rather than let the kernel fill the checksum (IPV6_CHECKSUM, as keepalived does),
/// every send names its source explicitly in an IPV6_PKTINFO control message and the caller
/// computes the checksum with `Advert::emit(self.source(), dst, ..)`: the bytes on the wire
/// are then exactly what `flotilla_vrrp::wire` wrote and tested, and received adverts with a
/// bad checksum reach `Advert::parse` to be counted instead of being dropped unseen by the
/// kernel (which IPV6_CHECKSUM also does on receive). The socket itself stays unbound so it
/// still receives unicast adverts sent to any of the interface's addresses.
pub struct VrrpSocketV6 {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    source: Ipv6Addr,
}

impl VrrpSocketV6 {
    /// See [`VrrpSocketV4::only_vrid`].
    pub fn only_vrid(&self, vrid: u8) -> Result<(), NetError> {
        self.fd
            .get_ref()
            .attach_filter(&vrid_filter(&[vrid], true, false))
            .map_err(NetError::io("attaching the VRID filter"))
    }

    /// See [`VrrpSocketV4::except_vrids`].
    pub fn except_vrids(&self, vrids: &[u8]) -> Result<(), NetError> {
        self.fd
            .get_ref()
            .attach_filter(&vrid_filter(vrids, false, false))
            .map_err(NetError::io("attaching the VRID filter"))
    }

    /// Opens the socket bound to interface `ifname`, sending from the interface's link-local
    /// address (must run inside a tokio runtime). Fails with [`NetError::NoLinkLocal`] if the
    /// interface has none yet (link down, or IPv6 disabled on it).
    pub fn open(ifname: &str, delivery: Delivery) -> Result<Self, NetError> {
        let source = crate::link_local(ifname)?;
        Self::open_from(ifname, delivery, source)
    }

    /// Like [`open`](Self::open) with an explicit source (keepalived's `unicast_src_ip`). The
    /// address must be assigned to the interface and have finished DAD, or sends fail.
    pub fn open_from(ifname: &str, delivery: Delivery, source: Ipv6Addr) -> Result<Self, NetError> {
        let ifindex = crate::ifindex(ifname)?;
        let s = raw_vrrp_socket(Domain::IPV6, ifname)?;
        // RFC 5798 §5.1.2.3: hop limit 255, for multicast and unicast peers alike.
        s.set_unicast_hops_v6(u32::from(TTL))
            .map_err(NetError::io("setting unicast hop limit 255"))?;
        s.set_multicast_hops_v6(u32::from(TTL))
            .map_err(NetError::io("setting multicast hop limit 255"))?;
        s.set_multicast_loop_v6(false)
            .map_err(NetError::io("disabling multicast loopback"))?;
        setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)
            .map_err(|e| NetError::io("asking for IPV6_HOPLIMIT")(e.into()))?;
        setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true)
            .map_err(|e| NetError::io("asking for IPV6_PKTINFO")(e.into()))?;
        if delivery == Delivery::Multicast {
            s.join_multicast_v6(&MULTICAST_V6, ifindex)
                .map_err(NetError::io("joining ff02::12"))?;
        }
        Ok(VrrpSocketV6 {
            fd: register(s)?,
            ifindex,
            source,
        })
    }

    /// The address every advert leaves from; the v3 checksum must be computed with it.
    pub fn source(&self) -> Ipv6Addr {
        self.source
    }

    /// Sends one VRRP message to `dst` (ff02::12 or a unicast peer) from [`source`](Self::source).
    pub async fn send(&self, payload: &[u8], dst: Ipv6Addr) -> Result<(), NetError> {
        // A link-scoped destination needs the interface as its scope; others ignore it.
        let scope = if dst.is_unicast_link_local() || dst.is_multicast() {
            self.ifindex
        } else {
            0
        };
        let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, scope));
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: self.source.octets(),
            },
            ipi6_ifindex: self.ifindex,
        };
        let cmsgs = [ControlMessage::Ipv6PacketInfo(&info)];
        let iov = [IoSlice::new(payload)];
        loop {
            let mut guard = self
                .fd
                .writable()
                .await
                .map_err(NetError::io("waiting to send"))?;
            match guard.try_io(|s| {
                sendmsg(
                    s.get_ref().as_raw_fd(),
                    &iov,
                    &cmsgs,
                    MsgFlags::empty(),
                    Some(&to),
                )
                .map_err(std::io::Error::from)
            }) {
                Ok(Ok(_)) => return Ok(()),
                // The kernel refuses an IPV6_PKTINFO source that is tentative (DAD still
                // running) or not assigned to the interface with EINVAL.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                    return Err(NetError::SourceUnusable {
                        addr: self.source.into(),
                        source: e,
                    });
                }
                Ok(Err(e)) => return Err(NetError::io("sending an IPv6 advert")(e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Receives the next VRRP datagram; one without the hop limit or destination it needs is
    /// returned as `Ok(Err(..))` so the caller can count it and go on.
    pub async fn recv(&self) -> Result<Result<ReceivedV6, AncillaryError>, NetError> {
        let mut buf = vec![0u8; 65_536];
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(NetError::io("waiting for adverts"))?;
            match guard.try_io(|s| recv_v6(s.get_ref(), &mut buf)) {
                Ok(r) => return r.map_err(NetError::io("receiving an IPv6 advert")),
                Err(_would_block) => continue,
            }
        }
    }
}

/// One `recvmsg` with its control messages decoded; nothing from the wire is trusted.
fn recv_v6(s: &Socket, buf: &mut [u8]) -> std::io::Result<Result<ReceivedV6, AncillaryError>> {
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let cap = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrIn6>(
        s.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(std::io::Error::from)?;
    let n = msg.bytes;
    let flags = msg.flags;
    let src = msg.address.map(|a| a.ip());
    let mut hop_limit = None;
    let mut info = None;
    if flags.contains(MsgFlags::MSG_CTRUNC) {
        return Ok(Err(AncillaryError::Truncated));
    }
    if flags.contains(MsgFlags::MSG_TRUNC) {
        return Ok(Err(AncillaryError::TooLong(cap)));
    }
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv6HopLimit(h) => hop_limit = Some(h),
            ControlMessageOwned::Ipv6PacketInfo(i) => info = Some(i),
            _ => {}
        }
    }
    let Some(src) = src else {
        return Ok(Err(AncillaryError::NoSource));
    };
    let Some(h) = hop_limit else {
        return Ok(Err(AncillaryError::NoHopLimit));
    };
    let Ok(hop_limit) = u8::try_from(h) else {
        return Ok(Err(AncillaryError::HopLimit(h)));
    };
    let Some(info) = info else {
        return Ok(Err(AncillaryError::NoPacketInfo));
    };
    let payload = iov[0][..n.min(cap)].to_vec();
    Ok(Ok(ReceivedV6 {
        src,
        dst: Ipv6Addr::from(info.ipi6_addr.s6_addr),
        hop_limit,
        ifindex: info.ipi6_ifindex,
        payload,
    }))
}

/// A non-blocking raw socket for IP protocol 112, bound to interface `ifname`.
fn raw_vrrp_socket(domain: Domain, ifname: &str) -> Result<Socket, NetError> {
    let s = Socket::new(
        domain,
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
    Ok(s)
}

/// A classic BPF program that accepts VRRP datagrams whose VRID (byte 1 of the VRRP header)
/// is in `vrids` (`listed`), or is not (`!listed`). An IPv4 raw socket sees the IP header first
/// (its length from the IHL nibble); an IPv6 one sees the VRRP header at offset 0.
fn vrid_filter(vrids: &[u8], listed: bool, ipv4: bool) -> Vec<SockFilter> {
    const LDX_B_MSH: u16 = 0xb1; // X = 4 * (P[k] & 0xf)
    const LD_B_IND: u16 = 0x50; // A = P[X + k]
    const LD_B_ABS: u16 = 0x30; // A = P[k]
    const JEQ_K: u16 = 0x15; // if A == k goto +jt else +jf
    const RET_K: u16 = 0x06; // return k bytes (0 = drop)
    const ALL: u32 = u32::MAX;
    let mut prog = if ipv4 {
        vec![
            SockFilter::new(LDX_B_MSH, 0, 0, 0),
            SockFilter::new(LD_B_IND, 0, 0, 1),
        ]
    } else {
        vec![SockFilter::new(LD_B_ABS, 0, 0, 1)]
    };
    // At most 256 distinct VRIDs, so every jump (a u8) reaches the verdict after the list.
    let mut list: Vec<u8> = vrids.to_vec();
    list.sort_unstable();
    list.dedup();
    list.truncate(255);
    let n = list.len();
    for (i, vrid) in list.iter().enumerate() {
        // A match jumps over the rest of the list to the "listed" verdict.
        let to_listed = u8::try_from(n - i).unwrap_or(u8::MAX);
        prog.push(SockFilter::new(JEQ_K, to_listed, 0, u32::from(*vrid)));
    }
    let (unlisted, on_list) = if listed { (0, ALL) } else { (ALL, 0) };
    prog.push(SockFilter::new(RET_K, 0, 0, unlisted));
    prog.push(SockFilter::new(RET_K, 0, 0, on_list));
    prog
}

/// Registers an owned socket with tokio's reactor.
#[allow(unsafe_code)]
fn register(s: Socket) -> Result<AsyncFd<Socket>, NetError> {
    // SAFETY: `AsyncFd::register` requires that the file descriptor stays open and is not
    // registered elsewhere while the `AsyncFd` lives. `s` is moved in and owned by the
    // `AsyncFd`; its descriptor is only lent, as a raw fd, to one `recvmsg`/`sendmsg` call at a
    // time and never stored, closed or registered by anyone else.
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
