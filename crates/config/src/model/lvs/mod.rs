//! The LVS half: virtual servers, their groups, real servers and health checkers, plus the
//! client TLS context of `SSL_GET`. Resolved: keepalived's defaults and the inheritance
//! virtual server → real server → checker are filled in, so every checker carries the timing
//! it actually runs with and every real server the forwarding method it is installed with.

pub mod check;

#[cfg(test)]
pub(crate) mod arb;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::common::{Micros, Origin, Script};
pub use check::{
    Checker, CheckerKind, Connection, DnsCheck, DnsType, FileCheck, HttpCheck, HttpProtocol,
    MiscCheck, StatusRange, Timing, UdpCheck, Url, UrlRegex,
};

/// keepalived's `delay_loop` default.
pub const DEFAULT_DELAY_LOOP: Micros = Micros::from_secs(60);
/// keepalived's `connect_timeout` default.
pub const DEFAULT_CONNECT_TIMEOUT: Micros = Micros::from_secs(5);
/// `persistence_timeout` written without a value (IPVS_SVC_PERSISTENT_TIMEOUT).
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;
/// The longest `persistence_timeout` keepalived accepts: 31 days.
pub const MAX_PERSISTENCE_TIMEOUT: u32 = 86_400 * 31;
/// IPVS weights are signed 32-bit in the kernel; keepalived accepts 0..=INT32_MAX.
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

/// Everything keepalived's checker process reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LvsSection {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_servers: Vec<VirtualServer>,
    /// The `SSL { }` block: client certificate and CA for `SSL_GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl: Option<SslContext>,
}

impl LvsSection {
    pub fn group(&self, name: &str) -> Option<&VirtualServerGroup> {
        self.virtual_server_groups.iter().find(|g| g.name == name)
    }

    /// Gives back the room the vectors grew into while the model was built or decoded. A
    /// vector that grew to one element holds four, so a configuration of tens of thousands
    /// of real servers would keep megabytes of empty slots for as long as it runs.
    pub fn shrink_to_fit(&mut self) {
        self.virtual_server_groups.shrink_to_fit();
        self.virtual_servers.shrink_to_fit();
        for vs in &mut self.virtual_servers {
            vs.real_servers.shrink_to_fit();
            for rs in &mut vs.real_servers {
                rs.checkers.shrink_to_fit();
                for c in &mut rs.checkers {
                    if let CheckerKind::Http(h) | CheckerKind::Ssl(h) = &mut c.kind {
                        h.urls.shrink_to_fit();
                        for u in &mut h.urls {
                            u.status_codes.shrink_to_fit();
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressFamily {
    Inet,
    Inet6,
}

impl AddressFamily {
    pub fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        }
    }

    /// The keyword keepalived uses (`inet`, `inet6`).
    pub fn keyword(self) -> &'static str {
        match self {
            AddressFamily::Inet => "inet",
            AddressFamily::Inet6 => "inet6",
        }
    }
}

/// `SSL { password; ca; certificate; key }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SslContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    #[serde(skip)]
    pub origin: Origin,
}

/// `virtual_server_group NAME { … }`: several VIPs served by one set of real servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualServerGroup {
    pub name: String,
    pub entries: Vec<GroupEntry>,
    #[serde(skip)]
    pub origin: Origin,
}

/// One line of a `virtual_server_group`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupEntry {
    /// `IP [PORT]`, `IP-LAST [PORT]` or `CIDR [PORT]`, resolved to the inclusive range
    /// `first..=last` (equal for a single address). Port 0 means "all ports", as keepalived
    /// reads a missing or zero port.
    Addresses {
        first: IpAddr,
        last: IpAddr,
        port: u16,
        #[serde(skip)]
        origin: Origin,
    },
    /// `fwmark N [inet|inet6]`.
    Fwmark {
        mark: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        family: Option<AddressFamily>,
        #[serde(skip)]
        origin: Origin,
    },
}

impl GroupEntry {
    pub fn origin(&self) -> Origin {
        match self {
            GroupEntry::Addresses { origin, .. } | GroupEntry::Fwmark { origin, .. } => *origin,
        }
    }

    /// The family the entry fixes, if any.
    pub fn family(&self) -> Option<AddressFamily> {
        match self {
            GroupEntry::Addresses { first, .. } => Some(AddressFamily::of(first)),
            GroupEntry::Fwmark { family, .. } => *family,
        }
    }
}

/// What a virtual server is keyed on: its header line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VirtualServerKey {
    /// `virtual_server IP [PORT]` with its `protocol`; port 0 only with persistence ("all
    /// ports").
    Addr {
        ip: IpAddr,
        port: u16,
        protocol: Protocol,
    },
    /// `virtual_server fwmark N`, with the family from `ip_family` or, as keepalived does,
    /// from the real servers.
    Fwmark { mark: u32, family: AddressFamily },
    /// `virtual_server group NAME` with its `protocol` (one group may back a TCP and a UDP
    /// service).
    Group { name: String, protocol: Protocol },
}

impl VirtualServerKey {
    /// The service protocol; fwmark services have none (the mark selects the traffic).
    pub fn protocol(&self) -> Option<Protocol> {
        match self {
            VirtualServerKey::Addr { protocol, .. } | VirtualServerKey::Group { protocol, .. } => {
                Some(*protocol)
            }
            VirtualServerKey::Fwmark { .. } => None,
        }
    }

    pub fn protocol_mut(&mut self) -> Option<&mut Protocol> {
        match self {
            VirtualServerKey::Addr { protocol, .. } | VirtualServerKey::Group { protocol, .. } => {
                Some(protocol)
            }
            VirtualServerKey::Fwmark { .. } => None,
        }
    }
}

impl std::fmt::Display for VirtualServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VirtualServerKey::Addr { ip, port, .. } => write!(f, "{ip} {port}"),
            VirtualServerKey::Fwmark { mark, .. } => write!(f, "fwmark {mark}"),
            VirtualServerKey::Group { name, .. } => write!(f, "group {name}"),
        }
    }
}

/// IPVS scheduler (`lvs_sched` / `lb_algo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    #[default]
    Wlc,
    Lblc,
    Sh,
    Mh,
    Dh,
    Fo,
    Ovf,
    Lblcr,
    Sed,
    Nq,
    Twos,
}

impl Scheduler {
    pub const ALL: [Scheduler; 14] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Sh,
        Scheduler::Mh,
        Scheduler::Dh,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Lblcr,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Twos,
    ];

    /// The IPVS name, as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Sh => "sh",
            Scheduler::Mh => "mh",
            Scheduler::Dh => "dh",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Twos => "twos",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Scheduler::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// `lvs_method` / `lb_kind`: how IPVS forwards to a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardingMethod {
    #[default]
    Nat,
    Dr,
    Tun(Tunnel),
}

/// `TUN [type ipip|gue port N|gre] [csum|nocsum|remcsum]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Tunnel {
    pub kind: TunnelType,
    pub checksum: TunnelChecksum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelType {
    #[default]
    Ipip,
    /// GUE encapsulation to this UDP port (1–65535).
    Gue {
        port: u16,
    },
    Gre,
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
    pub fn keyword(self) -> &'static str {
        match self {
            TunnelChecksum::NoCsum => "nocsum",
            TunnelChecksum::Csum => "csum",
            TunnelChecksum::RemCsum => "remcsum",
        }
    }
}

/// Virtual service protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn keyword(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// Client affinity: `persistence_timeout` and `persistence_granularity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persistence {
    /// Seconds, 1..=31 days.
    pub timeout: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<Granularity>,
}

/// `persistence_granularity`: a netmask for IPv4 services, a prefix length for IPv6 ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Netmask(Ipv4Addr),
    Prefix(u8),
}

/// `sorry_server IP [PORT]` with `sorry_server_inhibit` and `sorry_server_lvs_method`: the
/// server IPVS is given when quorum is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SorryServer {
    pub ip: IpAddr,
    /// 0 when not written; for a non-NAT sorry server of an address service, keepalived uses
    /// the service's port.
    pub port: u16,
    pub method: ForwardingMethod,
    pub inhibit: bool,
    #[serde(skip)]
    pub origin: Origin,
}

/// `virtual_server … { … }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualServer {
    pub key: VirtualServerKey,
    pub scheduler: Scheduler,
    /// The default forwarding method of the real servers.
    pub method: ForwardingMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    pub delay_loop: Micros,
    pub connect_timeout: Micros,
    /// Defaults for the real servers' checkers; `None` leaves each checker type's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Micros>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Micros>,
    pub inhibit_on_failure: bool,
    /// Real servers start down until their first check passes.
    pub alpha: bool,
    /// Run quorum_down and notify_down scripts on shutdown.
    pub omega: bool,
    /// Suspend checkers while the VIP is not configured locally.
    pub ha_suspend: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_up: Option<Script>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_down: Option<Script>,
    /// Default real-server weight.
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorry_server: Option<SorryServer>,
    pub real_servers: Vec<RealServer>,
    #[serde(skip)]
    pub origin: Origin,
}

impl VirtualServer {
    /// A service with keepalived's defaults and no real servers.
    pub fn new(key: VirtualServerKey) -> Self {
        VirtualServer {
            key,
            scheduler: Scheduler::Wlc,
            method: ForwardingMethod::Nat,
            persistence: None,
            delay_loop: DEFAULT_DELAY_LOOP,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: None,
            delay_before_retry: None,
            warmup: None,
            inhibit_on_failure: false,
            alpha: false,
            omega: false,
            ha_suspend: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            weight: 1,
            virtualhost: None,
            sorry_server: None,
            real_servers: Vec::new(),
            origin: Origin::default(),
        }
    }
}

/// `real_server IP [PORT] { … }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealServer {
    pub ip: IpAddr,
    /// Resolved as keepalived does: a missing port takes the service's; 0 for fwmark
    /// services (except NAT).
    pub port: u16,
    pub weight: u32,
    pub method: ForwardingMethod,
    pub inhibit_on_failure: bool,
    pub alpha: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_up: Option<Script>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_down: Option<Script>,
    /// IPVS upper connection threshold; 0 = none.
    pub uthreshold: u32,
    /// IPVS lower connection threshold; 0 = none.
    pub lthreshold: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
    pub checkers: Vec<Checker>,
    #[serde(skip)]
    pub origin: Origin,
}
