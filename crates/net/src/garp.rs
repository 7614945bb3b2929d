//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6): after taking over a
//! VIP, the new master tells the segment that the VIP now lives at its MAC (RFC 5798 §6.4.1 /
//! §6.4.2 on becoming master; RFC 4861 §7.2.6 for IPv6). RFC 5798 announces the virtual
//! router MAC; like keepalived without `use_vmac` (keepalived.md §3.6), flotilla announces the
//! interface's own MAC. The frame builders are pure functions; [`Announcer`] only puts their
//! bytes on the wire, and [`Pacer`] spaces bursts.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

use crate::NetError;

/// Ethernet broadcast, where a gratuitous ARP goes.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// All-nodes multicast (RFC 4291 §2.7.1), where an unsolicited NA goes (RFC 4861 §7.2.6).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Length of a gratuitous ARP frame: the 42 bytes of Ethernet + ARP header, padded to the
/// 60-byte Ethernet minimum (without FCS) so drivers that do not pad still send a valid frame.
pub const GARP_FRAME_LEN: usize = 60;
/// Length of an unsolicited NA: 24-byte ICMPv6 NA + 8-byte target link-layer address option.
pub const NA_LEN: usize = 32;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
const ARPHRD_ETHER: u16 = 1;
const ARPOP_REQUEST: u16 = 1;
const ICMPV6_NEIGHBOUR_ADVERT: u8 = 136;
const ND_OPT_TARGET_LINKADDR: u8 = 2;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;
/// RFC 4861 §7.1.2: a receiver drops an NA whose hop limit is not 255.
const ND_HOP_LIMIT: u32 = 255;

/// A gratuitous ARP request for `ip` from `mac`, as a whole Ethernet frame.
///
/// Sender and target protocol address are both the VIP (an ARP Announcement, RFC 5227 §2.3;
/// RFC 5798 §6.4.1 asks for a gratuitous ARP request), the target hardware address is zero
/// (RFC 5227 §2.1.1: ignored, should be zero; keepalived writes broadcast there, receivers
/// ignore it either way), and the frame is broadcast so every host and switch on the segment
/// relearns the VIP's MAC.
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; GARP_FRAME_LEN] {
    let mut f = [0u8; GARP_FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    // RFC 826 packet: hardware type, protocol type, lengths, opcode.
    f[14..16].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&ARPOP_REQUEST.to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    // f[32..38]: target hardware address, zero.
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// An unsolicited neighbour advertisement for `target` at `mac` (RFC 4861 §4.4, §7.2.6),
/// ICMPv6 message only: the kernel adds the IPv6 header and fills the checksum (a raw ICMPv6
/// socket always does, RFC 3542 §3.1), so bytes 2..4 stay zero here.
///
/// Solicited is clear (it answers no one), Override is set so neighbours replace the MAC they
/// cached for the VIP. RFC 5798 §6.4.1 always sets Router; flotilla follows keepalived and
/// sets it only when the interface forwards IPv6, so the flag tells the truth about the host
/// (RFC 4861 §4.4). It matters: a neighbour that sees Router clear for an address it knew as a
/// router drops that address from its default routers (RFC 4861 §7.2.5), so a director whose
/// VIP is a gateway must forward.
pub fn na_message(target: Ipv6Addr, mac: [u8; 6], router: bool) -> [u8; NA_LEN] {
    let mut m = [0u8; NA_LEN];
    m[0] = ICMPV6_NEIGHBOUR_ADVERT;
    // m[1]: code 0; m[2..4]: checksum, the kernel's.
    m[4] = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    // m[5..8]: reserved.
    m[8..24].copy_from_slice(&target.octets());
    m[24] = ND_OPT_TARGET_LINKADDR;
    m[25] = 1; // option length in units of 8 bytes
    m[26..32].copy_from_slice(&mac);
    m
}

/// Sends gratuitous ARPs and unsolicited NAs on one interface; sends never block. Opening it
/// reads the interface's MAC and IPv6 forwarding once; reopen it if either changes.
pub struct Announcer {
    ifname: String,
    ifindex: u32,
    mac: [u8; 6],
    router: bool,
    arp: Socket,
    icmp6: Option<Socket>,
    broadcast: SockAddr,
}

impl Announcer {
    /// Opens the AF_PACKET socket for ARP and, if IPv6 is available, the raw ICMPv6 socket for
    /// NAs, both on `ifname` (needs CAP_NET_RAW).
    pub fn open(ifname: &str) -> Result<Self, NetError> {
        let ifindex = crate::ifindex(ifname)?;
        let mac = crate::mac(ifname)?;
        // Protocol 0: this socket only sends, so it asks the kernel for no received frames.
        let arp = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0))).map_err(
            NetError::io("opening the AF_PACKET socket (needs CAP_NET_RAW)"),
        )?;
        // Non-blocking, both: an actor must never stall on a full device queue; a GARP lost
        // to one (`WouldBlock`) is repeated by the burst anyway.
        arp.set_nonblocking(true)
            .map_err(NetError::io("setting non-blocking"))?;
        let icmp6 = match Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)) {
            Ok(s) => Some(s),
            // A host with IPv6 disabled still announces its IPv4 VIPs.
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => None,
            Err(e) => return Err(NetError::io("opening the raw ICMPv6 socket")(e)),
        };
        if let Some(s) = &icmp6 {
            s.set_nonblocking(true)
                .map_err(NetError::io("setting non-blocking"))?;
            s.bind_device(Some(ifname.as_bytes()))
                .map_err(NetError::io("binding the ICMPv6 socket to its interface"))?;
            s.set_multicast_hops_v6(ND_HOP_LIMIT)
                .map_err(NetError::io("setting NA hop limit 255"))?;
            s.set_unicast_hops_v6(ND_HOP_LIMIT)
                .map_err(NetError::io("setting NA hop limit 255"))?;
            s.set_multicast_loop_v6(false)
                .map_err(NetError::io("disabling multicast loopback"))?;
            // This socket only sends, but the kernel copies every ICMPv6 message arriving on
            // the interface to raw ICMPv6 sockets; the smallest buffer keeps that backlog tiny
            // (ICMP6_FILTER would block them, but neither socket2 nor nix offers it safely).
            s.set_recv_buffer_size(0)
                .map_err(NetError::io("shrinking the ICMPv6 receive buffer"))?;
        }
        Ok(Announcer {
            ifname: ifname.to_string(),
            ifindex,
            mac,
            router: forwarding_v6(ifname),
            arp,
            icmp6,
            broadcast: link_addr(ifindex, ETH_P_ARP, BROADCAST_MAC),
        })
    }

    /// The MAC the announcements carry.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Broadcasts one gratuitous ARP for `ip`.
    pub fn garp(&self, ip: Ipv4Addr) -> Result<(), NetError> {
        let frame = garp_frame(self.mac, ip);
        self.arp
            .send_to(&frame, &self.broadcast)
            .map(|_| ())
            .map_err(NetError::io("sending a gratuitous ARP"))
    }

    /// Sends one unsolicited NA for `ip` to all nodes. The kernel picks the source (the
    /// interface's link-local address, RFC 4861 §7.2.6 only asks for an address of the
    /// interface), so this works before the VIP itself has finished DAD.
    pub fn unsolicited_na(&self, ip: Ipv6Addr) -> Result<(), NetError> {
        let Some(s) = &self.icmp6 else {
            return Err(NetError::NoIpv6 {
                name: self.ifname.clone(),
            });
        };
        let msg = na_message(ip, self.mac, self.router);
        let to = SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex));
        s.send_to(&msg, &to).map(|_| ()).map_err(NetError::io(
            "sending an unsolicited neighbour advertisement",
        ))
    }

    /// Announces `ip` with the right protocol for its family.
    pub fn announce(&self, ip: IpAddr) -> Result<(), NetError> {
        match ip {
            IpAddr::V4(v4) => self.garp(v4),
            IpAddr::V6(v6) => self.unsolicited_na(v6),
        }
    }
}

/// One gratuitous ARP for `ip` on `ifname`, with the interface's MAC. For bursts keep an
/// [`Announcer`] instead of opening sockets per packet.
pub fn send_garp(ifname: &str, ip: Ipv4Addr) -> Result<(), NetError> {
    Announcer::open(ifname)?.garp(ip)
}

/// One unsolicited neighbour advertisement for `ip` on `ifname`.
pub fn send_unsolicited_na(ifname: &str, ip: Ipv6Addr) -> Result<(), NetError> {
    Announcer::open(ifname)?.unsolicited_na(ip)
}

/// Paces announcements on one interface (keepalived's `vrrp_garp_interval` and
/// `vrrp_gna_interval`, keepalived.md §3.6): at most one GARP per GARP interval and one NA per
/// NA interval, each family in its own FIFO so a long IPv4 burst does not hold back IPv6.
/// Some switches drop or rate-limit a burst of hundreds of GARPs; spacing them is the fix.
///
/// Sans-IO, as the VRRP machine: time is an argument, the caller drains
/// [`poll_transmit`](Self::poll_transmit) and sleeps until [`poll_timeout`](Self::poll_timeout).
/// A zero interval sends everything at once. The gap is kept across bursts: a burst queued
/// just after a send waits for the interval to run out.
#[derive(Debug, Clone)]
pub struct Pacer {
    v4: Lane,
    v6: Lane,
}

#[derive(Debug, Clone)]
struct Lane {
    interval: Duration,
    queue: VecDeque<IpAddr>,
    last_sent: Option<Instant>,
    /// When the head of `queue` may go; meaningful only while `queue` is not empty.
    due: Option<Instant>,
}

impl Lane {
    fn new(interval: Duration) -> Lane {
        Lane {
            interval,
            queue: VecDeque::new(),
            last_sent: None,
            due: None,
        }
    }

    fn push(&mut self, ip: IpAddr, now: Instant) {
        if self.queue.is_empty() {
            let earliest = self.last_sent.map_or(now, |t| t + self.interval);
            self.due = Some(earliest.max(now));
        }
        self.queue.push_back(ip);
    }

    fn poll(&mut self, now: Instant) -> Option<IpAddr> {
        if self.due? > now {
            return None;
        }
        let ip = self.queue.pop_front()?;
        self.last_sent = Some(now);
        self.due = if self.queue.is_empty() {
            None
        } else {
            Some(now + self.interval)
        };
        Some(ip)
    }

    fn retain(&mut self, keep: impl Fn(&IpAddr) -> bool) {
        self.queue.retain(keep);
        if self.queue.is_empty() {
            self.due = None;
        }
    }
}

impl Pacer {
    /// `garp_interval` spaces gratuitous ARPs, `gna_interval` neighbour advertisements.
    pub fn new(garp_interval: Duration, gna_interval: Duration) -> Pacer {
        Pacer {
            v4: Lane::new(garp_interval),
            v6: Lane::new(gna_interval),
        }
    }

    fn lane(&mut self, ip: &IpAddr) -> &mut Lane {
        match ip {
            IpAddr::V4(_) => &mut self.v4,
            IpAddr::V6(_) => &mut self.v6,
        }
    }

    /// Queues one announcement of `ip`.
    pub fn push(&mut self, ip: IpAddr, now: Instant) {
        self.lane(&ip).push(ip, now);
    }

    /// Queues `repeat` rounds over `ips` (keepalived's `garp_master_repeat`: every VIP once,
    /// then every VIP again, so each VIP is announced early in the burst).
    pub fn push_burst(&mut self, ips: &[IpAddr], repeat: u32, now: Instant) {
        for _ in 0..repeat {
            for ip in ips {
                self.push(*ip, now);
            }
        }
    }

    /// The next announcement to send at `now`, if one is due. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<IpAddr> {
        self.v4.poll(now).or_else(|| self.v6.poll(now))
    }

    /// When the next announcement falls due; `None` while nothing is queued.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.v4.due, self.v6.due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drops queued announcements of `ip`: it was removed (the instance left MASTER), and
    /// announcing an address we no longer hold would pull its traffic to us.
    pub fn cancel(&mut self, ip: IpAddr) {
        self.lane(&ip).retain(|q| *q != ip);
    }

    /// How many announcements are queued.
    pub fn len(&self) -> usize {
        self.v4.queue.len() + self.v6.queue.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether the interface forwards IPv6 (sets the NA Router flag). Read through /proc/sys/net,
/// which answers for the calling thread's network namespace; unreadable means "no".
fn forwarding_v6(ifname: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// A `sockaddr_ll` naming interface `ifindex`, EtherType `protocol` and destination `dst`.
#[allow(unsafe_code)]
fn link_addr(ifindex: u32, protocol: u16, dst: [u8; 6]) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `view_as` requires `T` to be one of the platform's `sockaddr_*` types that fits
    // in `sockaddr_storage`; `sockaddr_ll` is Linux's AF_PACKET address (20 bytes).
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as libc::sa_family_t;
    ll.sll_protocol = protocol.to_be();
    ll.sll_ifindex = ifindex as libc::c_int;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&dst);
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `SockAddr::new` requires the storage to hold an initialised address of the
    // family it names, valid up to `len` bytes: it was zeroed, then filled as a `sockaddr_ll`
    // with family AF_PACKET, and `len` is exactly `sizeof(sockaddr_ll)`.
    unsafe { SockAddr::new(storage, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];

    #[test]
    fn garp_frame_is_a_broadcast_arp_request_with_sender_equal_target() {
        let f = garp_frame(MAC, Ipv4Addr::new(10, 250, 0, 100));
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,     // to broadcast
            0x02, 0x42, 0xac, 0x11, 0x00, 0x02,     // from our MAC
            0x08, 0x06,                             // EtherType ARP
            0x00, 0x01, 0x08, 0x00, 6, 4,           // Ethernet / IPv4, lengths 6 and 4
            0x00, 0x01,                             // request
            0x02, 0x42, 0xac, 0x11, 0x00, 0x02,     // sender MAC
            10, 250, 0, 100,                        // sender IP = VIP
            0, 0, 0, 0, 0, 0,                       // target MAC, zero
            10, 250, 0, 100,                        // target IP = VIP
        ];
        assert_eq!(f[..42], expected);
        assert_eq!(f[42..], [0u8; 18], "padded to the Ethernet minimum");
    }

    #[test]
    fn na_message_overrides_and_carries_the_target_link_layer_address() {
        let vip: Ipv6Addr = "fd00::100".parse().expect("address");
        let m = na_message(vip, MAC, false);
        #[rustfmt::skip]
        let expected: [u8; NA_LEN] = [
            136, 0, 0, 0,                           // NA, code 0, checksum left to the kernel
            0x20, 0, 0, 0,                          // Override only
            0xfd, 0, 0, 0, 0, 0, 0, 0,              // target = VIP
            0, 0, 0, 0, 0, 0, 0x01, 0x00,
            2, 1,                                   // target link-layer address, 8 bytes
            0x02, 0x42, 0xac, 0x11, 0x00, 0x02,
        ];
        assert_eq!(m, expected);
        assert_eq!(na_message(vip, MAC, true)[4], 0xa0, "Router + Override");
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    /// Drains everything due at `now`.
    fn drain(p: &mut Pacer, now: Instant) -> Vec<IpAddr> {
        std::iter::from_fn(|| p.poll_transmit(now)).collect()
    }

    #[test]
    fn zero_interval_sends_a_whole_burst_at_once_in_rounds() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Duration::ZERO, Duration::ZERO);
        let vips = [ip("10.0.0.1"), ip("10.0.0.2")];
        p.push_burst(&vips, 3, t0);
        assert_eq!(p.len(), 6);
        assert_eq!(p.poll_timeout(), Some(t0));
        let sent = drain(&mut p, t0);
        assert_eq!(sent, [vips, vips, vips].concat(), "round after round");
        assert!(p.is_empty());
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn an_interval_spaces_sends_and_holds_across_bursts() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::new(ms(10), Duration::ZERO);
        p.push_burst(&[ip("10.0.0.1"), ip("10.0.0.2")], 1, t0);
        assert_eq!(drain(&mut p, t0), [ip("10.0.0.1")]);
        assert_eq!(p.poll_timeout(), Some(t0 + ms(10)));
        assert_eq!(drain(&mut p, t0 + ms(9)), Vec::<IpAddr>::new());
        // Woken late: it sends one, and the next gap counts from the actual send.
        assert_eq!(drain(&mut p, t0 + ms(14)), [ip("10.0.0.2")]);
        assert_eq!(p.poll_timeout(), None);
        // A new burst 3 ms after the last send still waits out the interval.
        p.push(ip("10.0.0.3"), t0 + ms(17));
        assert_eq!(p.poll_timeout(), Some(t0 + ms(24)));
        assert_eq!(drain(&mut p, t0 + ms(23)), Vec::<IpAddr>::new());
        assert_eq!(drain(&mut p, t0 + ms(24)), [ip("10.0.0.3")]);
        // Long after the last send, a push is due at once.
        p.push(ip("10.0.0.4"), t0 + ms(100));
        assert_eq!(drain(&mut p, t0 + ms(100)), [ip("10.0.0.4")]);
    }

    #[test]
    fn arp_and_na_are_paced_independently() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::new(ms(100), ms(10));
        p.push_burst(&[ip("10.0.0.1"), ip("fd00::1")], 2, t0);
        assert_eq!(drain(&mut p, t0), [ip("10.0.0.1"), ip("fd00::1")]);
        assert_eq!(
            p.poll_timeout(),
            Some(t0 + ms(10)),
            "the NA lane is due first"
        );
        assert_eq!(drain(&mut p, t0 + ms(10)), [ip("fd00::1")]);
        assert_eq!(p.poll_timeout(), Some(t0 + ms(100)));
        assert_eq!(drain(&mut p, t0 + ms(100)), [ip("10.0.0.1")]);
        assert!(p.is_empty());
    }

    #[test]
    fn cancel_drops_a_removed_vip_from_the_queue() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::new(ms(10), ms(10));
        p.push_burst(&[ip("10.0.0.1"), ip("10.0.0.2")], 2, t0);
        p.cancel(ip("10.0.0.1"));
        assert_eq!(p.len(), 2);
        assert_eq!(drain(&mut p, t0), [ip("10.0.0.2")]);
        p.cancel(ip("10.0.0.2"));
        assert!(p.is_empty());
        assert_eq!(p.poll_timeout(), None, "nothing left to wake up for");
    }

    #[test]
    fn link_address_names_the_interface_and_protocol() {
        let a = link_addr(7, ETH_P_ARP, BROADCAST_MAC);
        assert_eq!(a.family(), libc::AF_PACKET as libc::sa_family_t);
        assert_eq!(a.len() as usize, std::mem::size_of::<libc::sockaddr_ll>());
    }
}
