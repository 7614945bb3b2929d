//! IPVS objects in the operator's words: a virtual [`Service`] with its key, scheduler,
//! flags and persistence; a real server as a [`Destination`] with its forwarding method,
//! weight and thresholds; [`Stats`] counters; the sync daemon. These are what the kernel
//! holds, not what the configuration says (see `desired` for that mapping).

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// Address family of a service or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }

    /// The kernel's `AF_*` number.
    pub fn af(self) -> u16 {
        match self {
            Family::Inet => 2,
            Family::Inet6 => 10,
        }
    }

    pub fn from_af(af: u16) -> Option<Self> {
        match af {
            2 => Some(Family::Inet),
            10 => Some(Family::Inet6),
            _ => None,
        }
    }
}

/// Transport protocol of an address-keyed service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The IP protocol number (`IPPROTO_*`).
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn from_number(n: u16) -> Option<Self> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name ipvsadm prints.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// What identifies a virtual service in the kernel: protocol + address + port, or a
/// firewall mark within a family. Nothing else about a service can be part of its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKey {
    Addr {
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        family: Family,
    },
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    /// ipvsadm's order: address services before fwmark ones (mark 0 sorts first), then
    /// family, protocol, address, port.
    fn sort_key(&self) -> (u32, Family, u16, IpAddr, u16) {
        match *self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => (0, Family::of(&addr), protocol.number(), addr, port),
            ServiceKey::Fwmark { mark, family } => {
                (mark, family, 0, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
            }
        }
    }
}

impl Ord for ServiceKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for ServiceKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's spelling: `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`, `FWM 7`, `FWM 7 IPv6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => write!(f, "{} {}", protocol.name(), SocketText(*addr, *port)),
            ServiceKey::Fwmark { mark, family } => match family {
                Family::Inet => write!(f, "FWM {mark}"),
                Family::Inet6 => write!(f, "FWM {mark} IPv6"),
            },
        }
    }
}

/// `addr:port` with IPv6 addresses in brackets, as ipvsadm writes them.
#[derive(Debug, Clone, Copy)]
pub struct SocketText(pub IpAddr, pub u16);

impl fmt::Display for SocketText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// Service flags a user sets. The kernel's `PERSISTENT` flag is expressed by
/// [`Service::persistence`] and its `HASHED` flag is internal (set on every service in the
/// table), so neither appears here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceFlags {
    /// One-packet scheduling (`ops`): every UDP datagram is scheduled on its own.
    #[serde(default, skip_serializing_if = "is_false")]
    pub one_packet: bool,
    /// Scheduler flag 1: `sh-fallback` for sh, `mh-fallback` for mh.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sched_flag_1: bool,
    /// Scheduler flag 2: `sh-port` for sh, `mh-port` for mh.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sched_flag_2: bool,
    /// Scheduler flag 3 (no scheduler names it yet).
    #[serde(default, skip_serializing_if = "is_false")]
    pub sched_flag_3: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ServiceFlags {
    pub const PERSISTENT: u32 = 0x0001;
    pub const HASHED: u32 = 0x0002;
    pub const ONEPACKET: u32 = 0x0004;
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;
    /// The bits this type owns when it sets flags (`ip_vs_flags.mask`).
    pub const USER_MASK: u32 = Self::ONEPACKET | Self::SCHED1 | Self::SCHED2 | Self::SCHED3;

    pub fn bits(self) -> u32 {
        let mut b = 0;
        for (on, bit) in [
            (self.one_packet, Self::ONEPACKET),
            (self.sched_flag_1, Self::SCHED1),
            (self.sched_flag_2, Self::SCHED2),
            (self.sched_flag_3, Self::SCHED3),
        ] {
            if on {
                b |= bit;
            }
        }
        b
    }

    pub fn from_bits(b: u32) -> Self {
        ServiceFlags {
            one_packet: b & Self::ONEPACKET != 0,
            sched_flag_1: b & Self::SCHED1 != 0,
            sched_flag_2: b & Self::SCHED2 != 0,
            sched_flag_3: b & Self::SCHED3 != 0,
        }
    }

    pub fn any_sched(self) -> bool {
        self.sched_flag_1 || self.sched_flag_2 || self.sched_flag_3
    }
}

/// Client affinity: connections from one client (network) go to the same real server
/// for `timeout` seconds after the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persistence {
    pub timeout: u32,
    pub granularity: Granularity,
}

/// Which clients count as one for persistence: a netmask (IPv4 services) or a prefix length
/// (IPv6 services). The kernel keeps the value it was given, so the family decides the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Netmask(Ipv4Addr),
    Prefix(u8),
}

impl Granularity {
    /// One client per address: 255.255.255.255 or /128.
    pub fn host(family: Family) -> Self {
        match family {
            Family::Inet => Granularity::Netmask(Ipv4Addr::BROADCAST),
            Family::Inet6 => Granularity::Prefix(128),
        }
    }
}

/// A virtual service: its key and how it schedules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Service {
    pub key: ServiceKey,
    /// The scheduler's IPVS name (`rr`, `wrr`, `sh`, ...): a string because the kernel's set
    /// is open (any `ip_vs_<name>` module).
    pub scheduler: String,
    #[serde(default)]
    pub flags: ServiceFlags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
}

impl Service {
    pub fn new(key: ServiceKey, scheduler: &str) -> Self {
        Service {
            key,
            scheduler: scheduler.to_owned(),
            flags: ServiceFlags::default(),
            persistence: None,
        }
    }
}

/// IP-in-IP, GUE or GRE encapsulation of a tunnelled destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Tunnel {
    pub kind: TunnelKind,
    pub checksum: TunnelChecksum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelKind {
    #[default]
    Ipip,
    /// GUE to this UDP port.
    Gue {
        port: u16,
    },
    Gre,
}

impl TunnelKind {
    /// `IP_VS_CONN_F_TUNNEL_TYPE_*`.
    pub fn number(self) -> u8 {
        match self {
            TunnelKind::Ipip => 0,
            TunnelKind::Gue { .. } => 1,
            TunnelKind::Gre => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelChecksum {
    #[default]
    NoCsum,
    Csum,
    RemCsum,
}

impl TunnelChecksum {
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*`.
    pub fn flags(self) -> u16 {
        match self {
            TunnelChecksum::NoCsum => 0,
            TunnelChecksum::Csum => 1,
            TunnelChecksum::RemCsum => 2,
        }
    }

    pub fn from_flags(f: u16) -> Option<Self> {
        match f {
            0 => Some(TunnelChecksum::NoCsum),
            1 => Some(TunnelChecksum::Csum),
            2 => Some(TunnelChecksum::RemCsum),
            _ => None,
        }
    }
}

/// How IPVS forwards to a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forward {
    /// NAT (`-m`, `lb_kind NAT`).
    #[default]
    Masq,
    /// Direct routing (`-g`, `lb_kind DR`).
    Route,
    /// Tunnelling (`-i`, `lb_kind TUN`).
    Tunnel(Tunnel),
    /// The kernel's choice when the destination is a local address: delivered locally,
    /// whatever method was asked for. Only ever read back, never requested.
    Local,
}

impl Forward {
    /// `IP_VS_CONN_F_*` forwarding bits.
    pub fn conn_flags(self) -> u32 {
        match self {
            Forward::Masq => 0,
            Forward::Local => 1,
            Forward::Tunnel(_) => 2,
            Forward::Route => 3,
        }
    }

    /// ipvsadm's column text.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
            Forward::Local => "Local",
            Forward::Tunnel(_) => "Tunnel",
            Forward::Route => "Route",
        }
    }
}

/// A destination's identity within its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DestKey {
    pub addr: IpAddr,
    pub port: u16,
}

impl Ord for DestKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (Family::of(&self.addr), self.addr, self.port).cmp(&(
            Family::of(&other.addr),
            other.addr,
            other.port,
        ))
    }
}

impl PartialOrd for DestKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        SocketText(self.addr, self.port).fmt(f)
    }
}

/// A real server of a service, as IPVS holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Destination {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: Forward,
    /// 0..=i32::MAX (the kernel's weight is signed); 0 takes no new connections.
    pub weight: u32,
    /// Upper connection threshold; 0 = none.
    #[serde(default)]
    pub upper_threshold: u32,
    /// Lower connection threshold; 0 = none.
    #[serde(default)]
    pub lower_threshold: u32,
}

impl Destination {
    pub fn new(addr: IpAddr, port: u16, forward: Forward, weight: u32) -> Self {
        Destination {
            addr,
            port,
            forward,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    pub fn key(&self) -> DestKey {
        DestKey {
            addr: self.addr,
            port: self.port,
        }
    }
}

/// Traffic counters of a service or destination (the kernel's 64-bit set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    /// Rates, per second, estimated by the kernel.
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// A service as read from the kernel, with its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    pub service: Service,
    pub stats: Stats,
}

/// A destination as read from the kernel, with its connection counts and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationEntry {
    pub destination: Destination,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: Stats,
}

impl DestinationEntry {
    /// A destination with all counters zero.
    pub fn idle(destination: Destination) -> Self {
        DestinationEntry {
            destination,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: 0,
            stats: Stats::default(),
        }
    }
}

/// A service with its destinations: the unit of desired and current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub service: Service,
    pub destinations: Vec<Destination>,
}

impl ServiceSpec {
    /// Destinations sorted by key, later duplicates of a key dropped: two specs holding the
    /// same rules compare equal after this.
    pub fn normalised(mut self) -> Self {
        let mut seen = std::collections::HashSet::new();
        self.destinations.retain(|d| seen.insert(d.key()));
        self.destinations.sort_by_key(|d| d.key());
        self
    }
}

/// A service with counters and its destinations with theirs: what `ipvsadm -Ln` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub service: Service,
    pub stats: Stats,
    pub destinations: Vec<DestinationEntry>,
}

/// The IPVS version and connection table size (`IPVS_CMD_GET_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsInfo {
    /// `0x010201` for 1.2.1.
    pub version: u32,
    pub conn_tab_size: u32,
}

impl IpvsInfo {
    pub fn version_text(&self) -> String {
        format!(
            "{}.{}.{}",
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

/// The role of a connection-sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonRole {
    Master,
    Backup,
}

impl DaemonRole {
    /// `IP_VS_STATE_*`.
    pub fn state(self) -> u32 {
        match self {
            DaemonRole::Master => 1,
            DaemonRole::Backup => 2,
        }
    }

    pub fn from_state(s: u32) -> Option<Self> {
        match s {
            1 => Some(DaemonRole::Master),
            2 => Some(DaemonRole::Backup),
            _ => None,
        }
    }
}

/// The IPVS connection-sync daemon (`lvs_sync_daemon`): the kernel runs at most one master
/// and one backup per network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SyncDaemon {
    pub role: DaemonRole,
    /// Multicast interface name (at most 15 bytes).
    pub interface: String,
    pub sync_id: u32,
    /// UDP payload size; `None` lets the kernel choose from the MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<u16>,
    /// Multicast group; `None` is the kernel's 224.0.0.81.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IpAddr>,
    /// Multicast port; `None` is the kernel's 8848.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
}

/// An IPv6 address in the form the kernel stores every address (IPv4 in the first 4 bytes).
pub(crate) fn addr_bytes(ip: &IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

pub(crate) fn addr_from(family: Family, b: [u8; 16]) -> IpAddr {
    match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        Family::Inet6 => IpAddr::V6(Ipv6Addr::from(b)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_reads_like_the_operator_writes() {
        let spec = ServiceSpec {
            service: Service::new(
                ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    addr: "10.0.0.1".parse().unwrap(),
                    port: 80,
                },
                "wrr",
            ),
            destinations: vec![Destination::new(
                "10.1.0.1".parse().unwrap(),
                80,
                Forward::Tunnel(Tunnel {
                    kind: TunnelKind::Gue { port: 6080 },
                    checksum: TunnelChecksum::Csum,
                }),
                2,
            )],
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            json,
            r#"{"service":{"key":{"addr":{"protocol":"TCP","addr":"10.0.0.1","port":80}},"scheduler":"wrr","flags":{}},"destinations":[{"addr":"10.1.0.1","port":80,"forward":{"tunnel":{"kind":{"gue":{"port":6080}},"checksum":"csum"}},"weight":2,"upper_threshold":0,"lower_threshold":0}]}"#
        );
        assert_eq!(serde_json::from_str::<ServiceSpec>(&json).unwrap(), spec);
    }
}
