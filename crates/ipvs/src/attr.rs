//! The IPVS generic-netlink message body, written from the kernel UAPI header
//! `linux/ip_vs.h`: netlink attributes (TLV, 4-byte aligned) and the nested service,
//! destination, statistics, daemon and info attribute sets, encoded from and decoded into the
//! types of [`crate::types`].
//!
//! Decoding reads bytes that came from the kernel and is the one place that could be led
//! astray by them, so it checks every length before reading, never panics (fuzzed:
//! `fuzz/fuzz_targets/ipvs_attrs.rs`), skips attribute types it does not know (a newer
//! kernel may add some) and says exactly what was wrong in an [`AttrError`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::types::{
    DaemonRole, Destination, DestinationEntry, Family, Forward, Granularity, IpvsInfo, Persistence,
    Protocol, Service, ServiceEntry, ServiceFlags, ServiceKey, Stats, SyncDaemon, Tunnel,
    TunnelChecksum, TunnelKind, addr_bytes, addr_from,
};

/// `IPVS_GENL_NAME` and `IPVS_GENL_VERSION`.
pub const GENL_NAME: &str = "IPVS";
pub const GENL_VERSION: u8 = 1;

/// `IPVS_CMD_*`.
pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
    pub const GET_INFO: u8 = 15;
    pub const FLUSH: u8 = 17;
}

/// `IPVS_CMD_ATTR_*`: the first level of a message.
pub mod cmd_attr {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
    pub const DAEMON: u16 = 3;
}

/// `IPVS_SVC_ATTR_*`.
pub mod svc_attr {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const STATS64: u16 = 12;
}

/// `IPVS_DEST_ATTR_*`.
pub mod dest_attr {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
    pub const TUN_TYPE: u16 = 13;
    pub const TUN_PORT: u16 = 14;
    pub const TUN_FLAGS: u16 = 15;
}

/// `IPVS_DAEMON_ATTR_*`.
pub mod daemon_attr {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
    pub const SYNC_MAXLEN: u16 = 4;
    pub const MCAST_GROUP: u16 = 5;
    pub const MCAST_GROUP6: u16 = 6;
    pub const MCAST_PORT: u16 = 7;
    pub const MCAST_TTL: u16 = 8;
}

/// `IPVS_STATS_ATTR_*` (1..=10 in both the 32- and 64-bit sets; 11 is padding).
pub mod stats_attr {
    pub const CONNS: u16 = 1;
    pub const OUTBPS: u16 = 10;
}

/// `IPVS_INFO_ATTR_*`.
pub mod info_attr {
    pub const VERSION: u16 = 1;
    pub const CONN_TAB_SIZE: u16 = 2;
}

/// `IP_VS_SCHEDNAME_MAXLEN` and `IP_VS_IFNAME_MAXLEN`, both counting the NUL.
pub const SCHED_NAME_MAX: usize = 16;
pub const IFNAME_MAX: usize = 16;

const NLA_HDRLEN: usize = 4;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// What was wrong with attribute bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AttrError {
    #[error("attribute header at byte {offset} is cut short ({left} bytes left, 4 needed)")]
    TruncatedHeader { offset: usize, left: usize },
    #[error("attribute at byte {offset} claims {len} bytes, but {left} are left")]
    Overrun {
        offset: usize,
        len: usize,
        left: usize,
    },
    #[error("attribute at byte {offset} has length {len}, less than its own header")]
    ShortLength { offset: usize, len: usize },
    #[error("{what}: {got} bytes, expected {expected}")]
    BadLength {
        what: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{what}: {why}")]
    BadValue { what: &'static str, why: String },
}

/// One attribute: its type (flags stripped) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    pub kind: u16,
    pub payload: &'a [u8],
}

/// The attributes in `buf`, in order. Stops after the first error.
pub fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs {
        buf,
        offset: 0,
        failed: false,
    }
}

pub struct Attrs<'a> {
    buf: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, AttrError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.buf.len() {
            return None;
        }
        let rest = self.buf.get(self.offset..).unwrap_or_default();
        let fail = |s: &mut Self, e| {
            s.failed = true;
            Some(Err(e))
        };
        let (Some(l), Some(t)) = (rest.get(0..2), rest.get(2..4)) else {
            let e = AttrError::TruncatedHeader {
                offset: self.offset,
                left: rest.len(),
            };
            return fail(self, e);
        };
        let len = usize::from(u16::from_ne_bytes([l[0], l[1]]));
        let kind = u16::from_ne_bytes([t[0], t[1]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN {
            let e = AttrError::ShortLength {
                offset: self.offset,
                len,
            };
            return fail(self, e);
        }
        let Some(payload) = rest.get(NLA_HDRLEN..len) else {
            let e = AttrError::Overrun {
                offset: self.offset,
                len,
                left: rest.len(),
            };
            return fail(self, e);
        };
        // The next attribute starts 4-aligned; a final one may omit its padding.
        self.offset = self.offset.saturating_add(align4(len));
        Some(Ok(Attr { kind, payload }))
    }
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn fixed<const N: usize>(what: &'static str, p: &[u8]) -> Result<[u8; N], AttrError> {
    p.try_into().map_err(|_| AttrError::BadLength {
        what,
        expected: match N {
            1 => "1",
            2 => "2",
            4 => "4",
            8 => "8",
            16 => "16",
            _ => "a fixed size",
        },
        got: p.len(),
    })
}

fn get_u8(what: &'static str, p: &[u8]) -> Result<u8, AttrError> {
    Ok(fixed::<1>(what, p)?[0])
}
fn get_u16(what: &'static str, p: &[u8]) -> Result<u16, AttrError> {
    Ok(u16::from_ne_bytes(fixed(what, p)?))
}
fn get_be16(what: &'static str, p: &[u8]) -> Result<u16, AttrError> {
    Ok(u16::from_be_bytes(fixed(what, p)?))
}
fn get_u32(what: &'static str, p: &[u8]) -> Result<u32, AttrError> {
    Ok(u32::from_ne_bytes(fixed(what, p)?))
}
fn get_u64(what: &'static str, p: &[u8]) -> Result<u64, AttrError> {
    Ok(u64::from_ne_bytes(fixed(what, p)?))
}

/// An address attribute: the kernel sends the 16-byte `union nf_inet_addr`; 4 bytes are
/// accepted for IPv4.
fn get_addr(what: &'static str, p: &[u8]) -> Result<[u8; 16], AttrError> {
    let mut b = [0u8; 16];
    match p.len() {
        4 | 16 => {
            b[..p.len()].copy_from_slice(p);
            Ok(b)
        }
        got => Err(AttrError::BadLength {
            what,
            expected: "4 or 16",
            got,
        }),
    }
}

/// A NUL-terminated string of at most `max` bytes including the NUL.
fn get_string(what: &'static str, p: &[u8], max: usize) -> Result<String, AttrError> {
    let text = match p.iter().position(|&b| b == 0) {
        Some(n) => &p[..n],
        None => p,
    };
    if text.len() >= max {
        return Err(AttrError::BadValue {
            what,
            why: format!("{} bytes, at most {} allowed", text.len(), max - 1),
        });
    }
    let s = std::str::from_utf8(text).map_err(|_| AttrError::BadValue {
        what,
        why: "not UTF-8".into(),
    })?;
    if s.is_empty() {
        return Err(AttrError::BadValue {
            what,
            why: "empty".into(),
        });
    }
    Ok(s.to_owned())
}

fn bad(what: &'static str, why: impl Into<String>) -> AttrError {
    AttrError::BadValue {
        what,
        why: why.into(),
    }
}

/// Builds attribute bytes.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// Payloads here are a few dozen bytes, far below the 64 KiB an attribute can hold; the
    /// length saturates rather than wraps should a caller ever exceed it.
    pub fn put(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        let len = u16::try_from(NLA_HDRLEN + payload.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub fn u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.put(kind, &[v])
    }
    pub fn u16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.put(kind, &v.to_ne_bytes())
    }
    pub fn be16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.put(kind, &v.to_be_bytes())
    }
    pub fn u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put(kind, &v.to_ne_bytes())
    }
    pub fn u64(&mut self, kind: u16, v: u64) -> &mut Self {
        self.put(kind, &v.to_ne_bytes())
    }
    pub fn string(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.put(kind, &b)
    }
    pub fn nested(&mut self, kind: u16, inner: Vec<u8>) -> &mut Self {
        self.put(kind | NLA_F_NESTED, &inner)
    }
}

/// A service's nested attributes (`IPVS_CMD_ATTR_SERVICE`). With `full`, everything the
/// kernel requires to add or edit (scheduler, flags, timeout, netmask); without, only the
/// key, which is what delete and the destination commands need.
pub fn encode_service(s: &Service, full: bool) -> Vec<u8> {
    let mut w = Writer::new();
    encode_key(&mut w, &s.key);
    if full {
        let family = s.key.family();
        let mut flags = s.flags.bits();
        if s.persistence.is_some() {
            flags |= ServiceFlags::PERSISTENT;
        }
        let mask = ServiceFlags::USER_MASK | ServiceFlags::PERSISTENT;
        let mut fl = flags.to_ne_bytes().to_vec();
        fl.extend_from_slice(&mask.to_ne_bytes());
        let (timeout, gran) = match s.persistence {
            Some(p) => (p.timeout, p.granularity),
            None => (0, Granularity::host(family)),
        };
        w.string(svc_attr::SCHED_NAME, &s.scheduler)
            .put(svc_attr::FLAGS, &fl)
            .u32(svc_attr::TIMEOUT, timeout)
            .put(svc_attr::NETMASK, &netmask_bytes(gran));
    }
    w.finish()
}

pub fn encode_key_only(key: &ServiceKey) -> Vec<u8> {
    let mut w = Writer::new();
    encode_key(&mut w, key);
    w.finish()
}

fn encode_key(w: &mut Writer, key: &ServiceKey) {
    w.u16(svc_attr::AF, key.family().af());
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            w.u16(svc_attr::PROTOCOL, protocol.number())
                .put(svc_attr::ADDR, &addr_bytes(addr))
                .be16(svc_attr::PORT, *port);
        }
        ServiceKey::Fwmark { mark, .. } => {
            w.u32(svc_attr::FWMARK, *mark);
        }
    }
}

/// The kernel stores the netmask attribute as read: an IPv4 mask in network order, an IPv6
/// prefix length as a host-order number (`ip_vs_add_service` compares it with 1..=128).
fn netmask_bytes(g: Granularity) -> [u8; 4] {
    match g {
        Granularity::Netmask(m) => m.octets(),
        Granularity::Prefix(p) => u32::from(p).to_ne_bytes(),
    }
}

/// Decodes a service's nested attributes.
pub fn decode_service(buf: &[u8]) -> Result<ServiceEntry, AttrError> {
    let (mut af, mut proto, mut addr, mut port, mut fwmark) = (None, None, None, None, None);
    let (mut sched, mut flags, mut timeout, mut netmask) = (None, None, None, None);
    let (mut stats32, mut stats64) = (None, None);
    for a in attrs(buf) {
        let a = a?;
        let p = a.payload;
        match a.kind {
            svc_attr::AF => af = Some(get_u16("service family", p)?),
            svc_attr::PROTOCOL => proto = Some(get_u16("service protocol", p)?),
            svc_attr::ADDR => addr = Some(get_addr("service address", p)?),
            svc_attr::PORT => port = Some(get_be16("service port", p)?),
            svc_attr::FWMARK => fwmark = Some(get_u32("service fwmark", p)?),
            svc_attr::SCHED_NAME => sched = Some(get_string("scheduler", p, SCHED_NAME_MAX)?),
            svc_attr::FLAGS => {
                let b = fixed::<8>("service flags", p)?;
                flags = Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            }
            svc_attr::TIMEOUT => timeout = Some(get_u32("persistence timeout", p)?),
            svc_attr::NETMASK => netmask = Some(fixed::<4>("persistence netmask", p)?),
            svc_attr::STATS => stats32 = Some(decode_stats(p, false)?),
            svc_attr::STATS64 => stats64 = Some(decode_stats(p, true)?),
            _ => {}
        }
    }
    let af = af.ok_or(AttrError::Missing("service family"))?;
    let family =
        Family::from_af(af).ok_or_else(|| bad("service family", format!("unknown {af}")))?;
    let key = match fwmark {
        Some(mark) if mark != 0 => ServiceKey::Fwmark { mark, family },
        _ => {
            let n = proto.ok_or(AttrError::Missing("service protocol"))?;
            let protocol = Protocol::from_number(n)
                .ok_or_else(|| bad("service protocol", format!("unknown {n}")))?;
            let addr = addr.ok_or(AttrError::Missing("service address"))?;
            ServiceKey::Addr {
                protocol,
                addr: addr_from(family, addr),
                port: port.ok_or(AttrError::Missing("service port"))?,
            }
        }
    };
    let scheduler = sched.ok_or(AttrError::Missing("scheduler"))?;
    let bits = flags.ok_or(AttrError::Missing("service flags"))?;
    let persistence = if bits & ServiceFlags::PERSISTENT != 0 {
        let timeout = timeout.ok_or(AttrError::Missing("persistence timeout"))?;
        let m = netmask.ok_or(AttrError::Missing("persistence netmask"))?;
        let granularity = match family {
            Family::Inet => Granularity::Netmask(Ipv4Addr::from(m)),
            Family::Inet6 => {
                let plen = u32::from_ne_bytes(m);
                match u8::try_from(plen) {
                    Ok(p) if (1..=128).contains(&p) => Granularity::Prefix(p),
                    _ => return Err(bad("persistence prefix", format!("{plen} not in 1..=128"))),
                }
            }
        };
        Some(Persistence {
            timeout,
            granularity,
        })
    } else {
        None
    };
    Ok(ServiceEntry {
        service: Service {
            key,
            scheduler,
            flags: ServiceFlags::from_bits(bits),
            persistence,
        },
        stats: stats64.or(stats32).unwrap_or_default(),
    })
}

/// Decodes a statistics set: 32-bit (`IPVS_*_ATTR_STATS`) or 64-bit (`..._STATS64`).
pub fn decode_stats(buf: &[u8], wide: bool) -> Result<Stats, AttrError> {
    let mut s = Stats::default();
    for a in attrs(buf) {
        let a = a?;
        if !(stats_attr::CONNS..=stats_attr::OUTBPS).contains(&a.kind) {
            continue;
        }
        // The "32-bit" set carries the byte counters as u64 (`struct ip_vs_stats_user`),
        // so width is read from the length; the 64-bit set is all u64.
        let v = match a.payload.len() {
            8 => get_u64("counter", a.payload)?,
            4 if !wide => u64::from(get_u32("counter", a.payload)?),
            got => {
                return Err(AttrError::BadLength {
                    what: "counter",
                    expected: if wide { "8" } else { "4 or 8" },
                    got,
                });
            }
        };
        let slot = match a.kind {
            1 => &mut s.conns,
            2 => &mut s.inpkts,
            3 => &mut s.outpkts,
            4 => &mut s.inbytes,
            5 => &mut s.outbytes,
            6 => &mut s.cps,
            7 => &mut s.inpps,
            8 => &mut s.outpps,
            9 => &mut s.inbps,
            _ => &mut s.outbps,
        };
        *slot = v;
    }
    Ok(s)
}

/// A destination's nested attributes (`IPVS_CMD_ATTR_DEST`); `full` as for services. The
/// address family is sent only when it differs from the service's (a tunnelled
/// destination of the other family); older kernels reject the attribute.
pub fn encode_destination(d: &Destination, service_family: Family, full: bool) -> Vec<u8> {
    let mut w = Writer::new();
    let family = Family::of(&d.addr);
    if family != service_family {
        w.u16(dest_attr::ADDR_FAMILY, family.af());
    }
    w.put(dest_attr::ADDR, &addr_bytes(&d.addr))
        .be16(dest_attr::PORT, d.port);
    if full {
        w.u32(dest_attr::FWD_METHOD, d.forward.conn_flags())
            .u32(dest_attr::WEIGHT, d.weight)
            .u32(dest_attr::U_THRESH, d.upper_threshold)
            .u32(dest_attr::L_THRESH, d.lower_threshold);
        if let Forward::Tunnel(t) = d.forward {
            let port = match t.kind {
                TunnelKind::Gue { port } => port,
                TunnelKind::Ipip | TunnelKind::Gre => 0,
            };
            w.u8(dest_attr::TUN_TYPE, t.kind.number())
                .be16(dest_attr::TUN_PORT, port)
                .u16(dest_attr::TUN_FLAGS, t.checksum.flags());
        }
    }
    w.finish()
}

/// Decodes a destination's nested attributes; its address is of `service_family` unless the
/// message names another.
pub fn decode_destination(
    buf: &[u8],
    service_family: Family,
) -> Result<DestinationEntry, AttrError> {
    let (mut addr, mut port, mut fwd, mut weight, mut family) = (None, None, None, None, None);
    let (mut uth, mut lth, mut act, mut inact, mut pers) = (0, 0, 0, 0, 0);
    let (mut tun_type, mut tun_port, mut tun_flags) = (0u8, 0u16, 0u16);
    let (mut stats32, mut stats64) = (None, None);
    for a in attrs(buf) {
        let a = a?;
        let p = a.payload;
        match a.kind {
            dest_attr::ADDR => addr = Some(get_addr("destination address", p)?),
            dest_attr::PORT => port = Some(get_be16("destination port", p)?),
            dest_attr::FWD_METHOD => fwd = Some(get_u32("forwarding method", p)?),
            dest_attr::WEIGHT => weight = Some(get_u32("weight", p)?),
            dest_attr::U_THRESH => uth = get_u32("upper threshold", p)?,
            dest_attr::L_THRESH => lth = get_u32("lower threshold", p)?,
            dest_attr::ACTIVE_CONNS => act = get_u32("active connections", p)?,
            dest_attr::INACT_CONNS => inact = get_u32("inactive connections", p)?,
            dest_attr::PERSIST_CONNS => pers = get_u32("persistent connections", p)?,
            dest_attr::STATS => stats32 = Some(decode_stats(p, false)?),
            dest_attr::STATS64 => stats64 = Some(decode_stats(p, true)?),
            dest_attr::ADDR_FAMILY => family = Some(get_u16("destination family", p)?),
            dest_attr::TUN_TYPE => tun_type = get_u8("tunnel type", p)?,
            dest_attr::TUN_PORT => tun_port = get_be16("tunnel port", p)?,
            dest_attr::TUN_FLAGS => tun_flags = get_u16("tunnel flags", p)?,
            _ => {}
        }
    }
    let family = match family {
        None => service_family,
        Some(af) => {
            Family::from_af(af).ok_or_else(|| bad("destination family", format!("unknown {af}")))?
        }
    };
    let addr = addr_from(
        family,
        addr.ok_or(AttrError::Missing("destination address"))?,
    );
    let port = port.ok_or(AttrError::Missing("destination port"))?;
    let fwd = fwd.ok_or(AttrError::Missing("forwarding method"))?;
    let forward = match fwd & 0x7 {
        0 => Forward::Masq,
        1 => Forward::Local,
        3 => Forward::Route,
        2 => {
            let kind = match tun_type {
                0 => TunnelKind::Ipip,
                1 => TunnelKind::Gue { port: tun_port },
                2 => TunnelKind::Gre,
                n => return Err(bad("tunnel type", format!("unknown {n}"))),
            };
            let checksum = TunnelChecksum::from_flags(tun_flags)
                .ok_or_else(|| bad("tunnel flags", format!("unknown {tun_flags:#x}")))?;
            Forward::Tunnel(Tunnel { kind, checksum })
        }
        n => return Err(bad("forwarding method", format!("unknown {n}"))),
    };
    let weight = weight.ok_or(AttrError::Missing("weight"))?;
    if weight > i32::MAX as u32 {
        return Err(bad("weight", format!("{} is negative", weight as i32)));
    }
    Ok(DestinationEntry {
        destination: Destination {
            addr,
            port,
            forward,
            weight,
            upper_threshold: uth,
            lower_threshold: lth,
        },
        active_conns: act,
        inactive_conns: inact,
        persistent_conns: pers,
        stats: stats64.or(stats32).unwrap_or_default(),
    })
}

/// A sync daemon's nested attributes (`IPVS_CMD_ATTR_DAEMON`) for starting it.
pub fn encode_daemon(d: &SyncDaemon) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(daemon_attr::STATE, d.role.state())
        .string(daemon_attr::MCAST_IFN, &d.interface)
        .u32(daemon_attr::SYNC_ID, d.sync_id);
    if let Some(m) = d.max_len {
        w.u16(daemon_attr::SYNC_MAXLEN, m);
    }
    match d.group {
        Some(IpAddr::V4(g)) => {
            w.put(daemon_attr::MCAST_GROUP, &g.octets());
        }
        Some(IpAddr::V6(g)) => {
            w.put(daemon_attr::MCAST_GROUP6, &g.octets());
        }
        None => {}
    }
    // The kernel converts the port to network order itself.
    if let Some(p) = d.port {
        w.u16(daemon_attr::MCAST_PORT, p);
    }
    if let Some(t) = d.ttl {
        w.u8(daemon_attr::MCAST_TTL, t);
    }
    w.finish()
}

pub fn decode_daemon(buf: &[u8]) -> Result<SyncDaemon, AttrError> {
    let (mut state, mut ifn, mut id) = (None, None, None);
    let (mut max_len, mut group, mut port, mut ttl) = (None, None, None, None);
    for a in attrs(buf) {
        let a = a?;
        let p = a.payload;
        match a.kind {
            daemon_attr::STATE => state = Some(get_u32("daemon state", p)?),
            daemon_attr::MCAST_IFN => ifn = Some(get_string("daemon interface", p, IFNAME_MAX)?),
            daemon_attr::SYNC_ID => id = Some(get_u32("sync id", p)?),
            daemon_attr::SYNC_MAXLEN => max_len = Some(get_u16("sync max length", p)?),
            daemon_attr::MCAST_GROUP => {
                group = Some(IpAddr::V4(Ipv4Addr::from(fixed::<4>(
                    "multicast group",
                    p,
                )?)))
            }
            daemon_attr::MCAST_GROUP6 => {
                group = Some(IpAddr::V6(Ipv6Addr::from(fixed::<16>(
                    "IPv6 multicast group",
                    p,
                )?)))
            }
            daemon_attr::MCAST_PORT => port = Some(get_u16("multicast port", p)?),
            daemon_attr::MCAST_TTL => ttl = Some(get_u8("multicast TTL", p)?),
            _ => {}
        }
    }
    let state = state.ok_or(AttrError::Missing("daemon state"))?;
    let role = DaemonRole::from_state(state)
        .ok_or_else(|| bad("daemon state", format!("unknown {state}")))?;
    Ok(SyncDaemon {
        role,
        interface: ifn.ok_or(AttrError::Missing("daemon interface"))?,
        sync_id: id.ok_or(AttrError::Missing("sync id"))?,
        max_len,
        group,
        port,
        ttl,
    })
}

/// The top level of an `IPVS_CMD_GET_INFO` reply.
pub fn decode_info(buf: &[u8]) -> Result<IpvsInfo, AttrError> {
    let (mut version, mut size) = (None, None);
    for a in attrs(buf) {
        let a = a?;
        match a.kind {
            info_attr::VERSION => version = Some(get_u32("IPVS version", a.payload)?),
            info_attr::CONN_TAB_SIZE => size = Some(get_u32("connection table size", a.payload)?),
            _ => {}
        }
    }
    Ok(IpvsInfo {
        version: version.ok_or(AttrError::Missing("IPVS version"))?,
        conn_tab_size: size.ok_or(AttrError::Missing("connection table size"))?,
    })
}

/// The payload of the first top-level attribute of `kind` (e.g. the nested service of a
/// `GET_SERVICE` reply).
pub fn find(buf: &[u8], kind: u16) -> Result<&[u8], AttrError> {
    for a in attrs(buf) {
        let a = a?;
        if a.kind == kind {
            return Ok(a.payload);
        }
    }
    Err(AttrError::Missing(match kind {
        cmd_attr::SERVICE => "nested service",
        cmd_attr::DEST => "nested destination",
        cmd_attr::DAEMON => "nested daemon",
        _ => "attribute",
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn service_round_trips() {
        let mut s = Service::new(
            ServiceKey::Addr {
                protocol: Protocol::Udp,
                addr: "2001:db8::1".parse().unwrap(),
                port: 53,
            },
            "sh",
        );
        s.flags.sched_flag_1 = true;
        s.persistence = Some(Persistence {
            timeout: 300,
            granularity: Granularity::Prefix(64),
        });
        let e = decode_service(&encode_service(&s, true)).unwrap();
        assert_eq!(e.service, s);
        let fw = Service::new(
            ServiceKey::Fwmark {
                mark: 7,
                family: Family::Inet,
            },
            "rr",
        );
        assert_eq!(
            decode_service(&encode_service(&fw, true)).unwrap().service,
            fw
        );
    }

    #[test]
    fn kernel_style_reply_decodes() {
        // What the kernel sends: a 16-byte address, HASHED set, 32- and 64-bit stats with
        // padding attributes between the 64-bit counters.
        let mut stats64 = Writer::new();
        stats64.u64(1, 5).put(11, &[]).u64(4, 1 << 40);
        let mut stats32 = Writer::new();
        stats32.u32(1, 5);
        let mut w = Writer::new();
        let mut fl = (ServiceFlags::HASHED | ServiceFlags::PERSISTENT)
            .to_ne_bytes()
            .to_vec();
        fl.extend_from_slice(&u32::MAX.to_ne_bytes());
        w.u16(svc_attr::AF, 2)
            .u16(svc_attr::PROTOCOL, 6)
            .put(svc_attr::ADDR, &addr_bytes(&v4("10.0.0.1")))
            .be16(svc_attr::PORT, 80)
            .string(svc_attr::SCHED_NAME, "wrr")
            .put(svc_attr::FLAGS, &fl)
            .u32(svc_attr::TIMEOUT, 360)
            .put(svc_attr::NETMASK, &[255, 255, 255, 0])
            .nested(svc_attr::STATS, stats32.finish())
            .nested(svc_attr::STATS64, stats64.finish())
            .u32(99, 1);
        let e = decode_service(&w.finish()).unwrap();
        assert_eq!(e.service.scheduler, "wrr");
        assert_eq!(e.service.flags, ServiceFlags::default());
        assert_eq!(
            e.service.persistence,
            Some(Persistence {
                timeout: 360,
                granularity: Granularity::Netmask(Ipv4Addr::new(255, 255, 255, 0))
            })
        );
        assert_eq!((e.stats.conns, e.stats.inbytes), (5, 1 << 40));
    }

    #[test]
    fn malformed_input_gives_typed_errors() {
        assert_eq!(
            decode_service(&[8, 0, 1]),
            Err(AttrError::TruncatedHeader { offset: 0, left: 3 })
        );
        assert_eq!(
            decode_service(&[2, 0, 1, 0]),
            Err(AttrError::ShortLength { offset: 0, len: 2 })
        );
        assert!(matches!(
            decode_service(&[12, 0, 1, 0, 2, 0]),
            Err(AttrError::Overrun { .. })
        ));
        let mut w = Writer::new();
        w.u32(svc_attr::AF, 2);
        assert!(matches!(
            decode_service(&w.finish()),
            Err(AttrError::BadLength { .. })
        ));
        assert_eq!(
            decode_service(&[]),
            Err(AttrError::Missing("service family"))
        );
        let mut w = Writer::new();
        w.put(dest_attr::ADDR, &[10, 0, 0, 1])
            .be16(dest_attr::PORT, 80)
            .u32(dest_attr::FWD_METHOD, 2)
            .u32(dest_attr::WEIGHT, 1)
            .u8(dest_attr::TUN_TYPE, 9);
        assert!(matches!(
            decode_destination(&w.finish(), Family::Inet),
            Err(AttrError::BadValue {
                what: "tunnel type",
                ..
            })
        ));
    }

    #[test]
    fn daemon_round_trips() {
        let d = SyncDaemon {
            role: DaemonRole::Backup,
            interface: "eth0".into(),
            sync_id: 7,
            max_len: Some(1400),
            group: Some(v4("239.1.2.3")),
            port: Some(8848),
            ttl: Some(3),
        };
        assert_eq!(decode_daemon(&encode_daemon(&d)).unwrap(), d);
    }

    pub(crate) fn arb_destination() -> impl Strategy<Value = Destination> {
        let addr = prop_oneof![
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        ];
        let fwd = prop_oneof![
            Just(Forward::Masq),
            Just(Forward::Route),
            Just(Forward::Local),
            (0u8..3, any::<u16>(), 0u16..3).prop_map(|(k, port, c)| {
                let kind = match k {
                    0 => TunnelKind::Ipip,
                    1 => TunnelKind::Gue { port },
                    _ => TunnelKind::Gre,
                };
                let checksum = TunnelChecksum::from_flags(c).unwrap();
                Forward::Tunnel(Tunnel { kind, checksum })
            }),
        ];
        (
            addr,
            any::<u16>(),
            fwd,
            0..=i32::MAX as u32,
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(|(addr, port, forward, weight, u, l)| Destination {
                addr,
                port,
                forward,
                weight,
                upper_threshold: u,
                lower_threshold: l,
            })
    }

    proptest! {
        #[test]
        fn destination_round_trips(d in arb_destination(), v6 in any::<bool>()) {
            let fam = if v6 { Family::Inet6 } else { Family::Inet };
            let e = decode_destination(&encode_destination(&d, fam, true), fam).unwrap();
            prop_assert_eq!(e.destination, d);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_service(&data);
            let _ = decode_destination(&data, Family::Inet6);
            let _ = decode_daemon(&data);
            let _ = decode_info(&data);
        }
    }
}
