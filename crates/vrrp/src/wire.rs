//! The VRRP advertisement on the wire (smoltcp style): [`Packet`] is a checked view over
//! bytes with field accessors, [`Advert`] the parsed, owned form with [`Advert::parse`] and
//! [`Advert::emit`]. Every length is checked before a field is read; nothing here panics on
//! any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP (RFC 5798 §5.1.1.4).
pub const IP_PROTOCOL: u8 = 112;
/// IPv4 multicast group (RFC 5798 §5.1.1.2).
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group (RFC 5798 §5.1.2.2).
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Required TTL / hop limit of every advert (RFC 5798 §5.1.1.3).
pub const TTL: u8 = 255;

const HEADER_LEN: usize = 8;
const V2_AUTH_LEN: usize = 8;
const TYPE_ADVERTISEMENT: u8 = 1;

/// Every way an advert can be wrong. Named after what a log line should say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("packet of {0} bytes is shorter than the 8-byte VRRP header")]
    Truncated(usize),
    #[error("unsupported VRRP version {0}")]
    Version(u8),
    #[error("packet type {0} is not an advertisement (1)")]
    Type(u8),
    #[error("virtual router id 0 is invalid")]
    Vrid,
    #[error("length {len} does not match {count} addresses (expected {expected} bytes)")]
    Length {
        len: usize,
        count: u8,
        expected: usize,
    },
    #[error("checksum mismatch")]
    Checksum,
    #[error("VRRPv2 authentication type {0} is unknown")]
    AuthType(u8),
    #[error("VRRPv2 carries IPv4 only")]
    V2OverIpv6,
    #[error("advertisement interval 0 is invalid")]
    Interval,
    #[error("source and destination addresses are of different families")]
    MixedFamily,
}

/// VRRP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V2,
    V3,
}

/// VRRPv2 authentication (RFC 3768 §5.3.6). keepalived's AH is not supported on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    None,
    /// Simple text password, exactly 8 bytes, zero-padded.
    Pass([u8; 8]),
}

/// An address family, as the IP layer delivered the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// A read-only view over a VRRP message (no IP header).
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buf` after checking it holds at least the fixed header.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let len = buf.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated(len));
        }
        Ok(Packet { buf })
    }

    fn b(&self, i: usize) -> u8 {
        // new_checked guarantees HEADER_LEN bytes; every caller indexes below it.
        self.buf.as_ref().get(i).copied().unwrap_or(0)
    }

    pub fn version(&self) -> u8 {
        self.b(0) >> 4
    }

    pub fn kind(&self) -> u8 {
        self.b(0) & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.b(1)
    }

    pub fn priority(&self) -> u8 {
        self.b(2)
    }

    pub fn count(&self) -> u8 {
        self.b(3)
    }

    /// v2: authentication type.
    pub fn auth_type(&self) -> u8 {
        self.b(4)
    }

    /// v2: advertisement interval in seconds.
    pub fn advert_int_secs(&self) -> u8 {
        self.b(5)
    }

    /// v3: maximum advertisement interval in centiseconds (12 bits).
    pub fn max_advert_int_cs(&self) -> u16 {
        u16::from_be_bytes([self.b(4), self.b(5)]) & 0x0fff
    }

    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.b(6), self.b(7)])
    }

    pub fn bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }
}

/// A parsed advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// The advertisement interval in centiseconds. v2 carries whole seconds, so a v2 advert
    /// always holds a multiple of 100 here.
    pub interval_cs: u16,
    pub addresses: Vec<IpAddr>,
    /// v2 only; always `Auth::None` for v3.
    pub auth: Auth,
}

/// How to treat the v3 IPv4 checksum (keepalived.md §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// RFC 5798: include the pseudo-header.
    #[default]
    PseudoHeader,
    /// `v3_checksum_as_v2`: VRRP message only, as Cisco/Juniper do for IPv4.
    MessageOnly,
}

impl Advert {
    /// Parses and validates a VRRP message that arrived from `src` to `dst` (the IP header's
    /// addresses, needed for the v3 pseudo-header checksum).
    pub fn parse(
        bytes: &[u8],
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<Advert, WireError> {
        let p = Packet::new_checked(bytes)?;
        let family = Family::of(src);
        if family != Family::of(dst) {
            return Err(WireError::MixedFamily);
        }
        let version = match p.version() {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(WireError::Version(v)),
        };
        if p.kind() != TYPE_ADVERTISEMENT {
            return Err(WireError::Type(p.kind()));
        }
        if p.vrid() == 0 {
            return Err(WireError::Vrid);
        }
        if version == Version::V2 && family == Family::V6 {
            return Err(WireError::V2OverIpv6);
        }
        let count = p.count();
        let addr_bytes = usize::from(count) * family.addr_len();
        let expected = HEADER_LEN
            + addr_bytes
            + if version == Version::V2 {
                V2_AUTH_LEN
            } else {
                0
            };
        // Ethernet padding may follow a short IPv4 packet; the IP layer strips it, so the
        // length must match exactly here.
        if bytes.len() != expected {
            return Err(WireError::Length {
                len: bytes.len(),
                count,
                expected,
            });
        }
        let sum = match (version, family, mode) {
            (Version::V2, _, _) | (Version::V3, Family::V4, ChecksumMode::MessageOnly) => {
                checksum(0, bytes)
            }
            (Version::V3, _, _) => checksum(pseudo_header_sum(src, dst, bytes.len()), bytes),
        };
        if sum != 0 {
            return Err(WireError::Checksum);
        }
        let addresses = bytes[HEADER_LEN..HEADER_LEN + addr_bytes]
            .chunks_exact(family.addr_len())
            .map(|c| match family {
                Family::V4 => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
                Family::V6 => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(c);
                    IpAddr::V6(Ipv6Addr::from(o))
                }
            })
            .collect();
        let (interval_cs, auth) = match version {
            Version::V2 => {
                let auth = match p.auth_type() {
                    0 => Auth::None,
                    1 => {
                        let mut pw = [0u8; 8];
                        pw.copy_from_slice(&bytes[HEADER_LEN + addr_bytes..]);
                        Auth::Pass(pw)
                    }
                    t => return Err(WireError::AuthType(t)),
                };
                (u16::from(p.advert_int_secs()) * 100, auth)
            }
            Version::V3 => (p.max_advert_int_cs(), Auth::None),
        };
        if interval_cs == 0 {
            return Err(WireError::Interval);
        }
        Ok(Advert {
            version,
            vrid: p.vrid(),
            priority: p.priority(),
            interval_cs,
            addresses,
            auth,
        })
    }

    /// Bytes this advert occupies for the given family.
    pub fn len(&self, family: Family) -> usize {
        let addrs = self
            .addresses
            .iter()
            .filter(|a| Family::of(**a) == family)
            .count()
            .min(255);
        HEADER_LEN
            + addrs * family.addr_len()
            + if self.version == Version::V2 {
                V2_AUTH_LEN
            } else {
                0
            }
    }

    /// Always false: an advert has at least its header. (Present for `len`'s sake.)
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the advert as sent from `src` to `dst`. Addresses of the other family than
    /// `src` are left out (they belong in `virtual_ipaddress_excluded`), and at most 255 are
    /// written (the count field is 8 bits).
    pub fn emit(&self, src: IpAddr, dst: IpAddr, mode: ChecksumMode) -> Vec<u8> {
        let family = Family::of(src);
        let addrs: Vec<IpAddr> = self
            .addresses
            .iter()
            .copied()
            .filter(|a| Family::of(*a) == family)
            .take(255)
            .collect();
        let mut out = Vec::with_capacity(self.len(family));
        let version_bits = match self.version {
            Version::V2 => 2u8,
            Version::V3 => 3u8,
        };
        out.push(version_bits << 4 | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(addrs.len() as u8);
        match self.version {
            Version::V2 => {
                out.push(match self.auth {
                    Auth::None => 0,
                    Auth::Pass(_) => 1,
                });
                out.push((self.interval_cs / 100).clamp(1, 255) as u8);
            }
            Version::V3 => out.extend_from_slice(&(self.interval_cs & 0x0fff).to_be_bytes()),
        }
        out.extend_from_slice(&[0, 0]);
        for a in &addrs {
            match a {
                IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
            }
        }
        if self.version == Version::V2 {
            match self.auth {
                Auth::None => out.extend_from_slice(&[0; V2_AUTH_LEN]),
                Auth::Pass(pw) => out.extend_from_slice(&pw),
            }
        }
        let sum = match (self.version, family, mode) {
            (Version::V2, _, _) | (Version::V3, Family::V4, ChecksumMode::MessageOnly) => {
                checksum(0, &out)
            }
            (Version::V3, _, _) => checksum(pseudo_header_sum(src, dst, out.len()), &out),
        };
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        out
    }
}

/// One's-complement sum of the pseudo-header (RFC 5798 §5.2.8 → RFC 768 / RFC 8200 §8.1).
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, len: usize) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => [
            &s.octets()[..],
            &d.octets(),
            &[0, IP_PROTOCOL],
            &(len as u16).to_be_bytes(),
        ]
        .iter()
        .fold(0, |acc, part| add_words(acc, part)),
        (IpAddr::V6(s), IpAddr::V6(d)) => [
            &s.octets()[..],
            &d.octets(),
            &(len as u32).to_be_bytes(),
            &[0, 0, 0, IP_PROTOCOL],
        ]
        .iter()
        .fold(0, |acc, part| add_words(acc, part)),
        _ => 0,
    }
}

/// Adds `bytes` as big-endian 16-bit words (an odd last byte padded with zero) to `sum`.
fn add_words(sum: u32, bytes: &[u8]) -> u32 {
    bytes.chunks(2).fold(sum, |acc, pair| {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map(u32::from).unwrap_or(0);
        acc + (hi | lo)
    })
}

/// Internet checksum over `bytes` starting from `initial`; 0 when a received message with its
/// checksum field verifies.
fn checksum(initial: u32, bytes: &[u8]) -> u16 {
    let mut sum = add_words(initial, bytes);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_v2_pass_advert_has_rfc_3768_layout() {
        let a = Advert {
            version: Version::V2,
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            addresses: vec![v4("10.99.0.100")],
            auth: Auth::Pass(*b"secret\0\0"),
        };
        let bytes = a.emit(
            v4("10.99.0.1"),
            IpAddr::V4(MULTICAST_V4),
            ChecksumMode::default(),
        );
        assert_eq!(&bytes[..6], &[0x21, 51, 150, 1, 1, 1]);
        assert_eq!(&bytes[8..12], &[10, 99, 0, 100]);
        assert_eq!(&bytes[12..], b"secret\0\0");
        // v2's checksum covers the message only: any source verifies.
        assert_eq!(
            Advert::parse(
                &bytes,
                v4("1.2.3.4"),
                v4("224.0.0.18"),
                ChecksumMode::default()
            ),
            Ok(a)
        );
    }

    #[test]
    fn v3_checksum_includes_the_pseudo_header_unless_told_otherwise() {
        let a = Advert {
            version: Version::V3,
            vrid: 51,
            priority: 150,
            interval_cs: 10,
            addresses: vec![v4("10.99.0.100")],
            auth: Auth::None,
        };
        let (src, dst) = (v4("10.99.0.1"), IpAddr::V4(MULTICAST_V4));
        let bytes = a.emit(src, dst, ChecksumMode::PseudoHeader);
        assert_eq!(&bytes[..6], &[0x31, 51, 150, 1, 0, 10]);
        assert_eq!(
            Advert::parse(&bytes, src, dst, ChecksumMode::PseudoHeader),
            Ok(a.clone())
        );
        assert_eq!(
            Advert::parse(&bytes, v4("10.99.0.2"), dst, ChecksumMode::PseudoHeader),
            Err(WireError::Checksum)
        );
        assert_eq!(
            Advert::parse(&bytes, src, dst, ChecksumMode::MessageOnly),
            Err(WireError::Checksum)
        );
        let plain = a.emit(src, dst, ChecksumMode::MessageOnly);
        assert_eq!(
            Advert::parse(&plain, src, dst, ChecksumMode::MessageOnly),
            Ok(a)
        );
    }

    #[test]
    fn malformed_adverts_say_what_is_wrong() {
        let src = v4("10.0.0.1");
        let dst = v4("224.0.0.18");
        let m = ChecksumMode::default();
        assert_eq!(
            Advert::parse(&[0x31, 1, 2], src, dst, m),
            Err(WireError::Truncated(3))
        );
        assert_eq!(
            Advert::parse(&[0x41, 1, 1, 0, 0, 1, 0, 0], src, dst, m),
            Err(WireError::Version(4))
        );
        assert_eq!(
            Advert::parse(&[0x32, 1, 1, 0, 0, 1, 0, 0], src, dst, m),
            Err(WireError::Type(2))
        );
        assert_eq!(
            Advert::parse(&[0x31, 0, 1, 0, 0, 1, 0, 0], src, dst, m),
            Err(WireError::Vrid)
        );
        assert_eq!(
            Advert::parse(&[0x31, 1, 1, 2, 0, 1, 0, 0, 10, 0, 0, 1], src, dst, m),
            Err(WireError::Length {
                len: 12,
                count: 2,
                expected: 16
            })
        );
        assert_eq!(
            Advert::parse(&[0x21, 1, 1, 0, 0, 1, 0, 0], v4("::1"), v4("ff02::12"), m),
            Err(WireError::V2OverIpv6)
        );
        assert_eq!(
            Advert::parse(&[0x31, 1, 1, 0, 0, 1, 0, 0], src, v4("ff02::12"), m),
            Err(WireError::MixedFamily)
        );
    }

    fn advert() -> impl Strategy<Value = (Advert, IpAddr, IpAddr)> {
        let v4s =
            proptest::collection::vec(any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())), 0..20);
        let v6s =
            proptest::collection::vec(any::<[u16; 8]>().prop_map(|o| IpAddr::V6(o.into())), 0..20);
        prop_oneof![
            (
                1u8..,
                any::<u8>(),
                1u16..=255,
                v4s.clone(),
                any::<Option<[u8; 8]>>(),
                any::<[u8; 4]>()
            )
                .prop_map(|(vrid, priority, secs, addresses, pw, src)| (
                    Advert {
                        version: Version::V2,
                        vrid,
                        priority,
                        interval_cs: secs * 100,
                        addresses,
                        auth: pw.map(Auth::Pass).unwrap_or(Auth::None),
                    },
                    IpAddr::V4(src.into()),
                    IpAddr::V4(MULTICAST_V4)
                )),
            (1u8.., any::<u8>(), 1u16..=4095, v4s, any::<[u8; 4]>()).prop_map(
                |(vrid, priority, cs, addresses, src)| (
                    Advert {
                        version: Version::V3,
                        vrid,
                        priority,
                        interval_cs: cs,
                        addresses,
                        auth: Auth::None
                    },
                    IpAddr::V4(src.into()),
                    IpAddr::V4(MULTICAST_V4)
                )
            ),
            (1u8.., any::<u8>(), 1u16..=4095, v6s, any::<[u16; 8]>()).prop_map(
                |(vrid, priority, cs, addresses, src)| (
                    Advert {
                        version: Version::V3,
                        vrid,
                        priority,
                        interval_cs: cs,
                        addresses,
                        auth: Auth::None
                    },
                    IpAddr::V6(src.into()),
                    IpAddr::V6(MULTICAST_V6)
                )
            ),
        ]
    }

    proptest! {
        #[test]
        fn emit_then_parse_is_identity((a, src, dst) in advert()) {
            let bytes = a.emit(src, dst, ChecksumMode::default());
            prop_assert_eq!(bytes.len(), a.len(Family::of(src)));
            prop_assert_eq!(Advert::parse(&bytes, src, dst, ChecksumMode::default()), Ok(a));
        }

        #[test]
        fn any_single_bit_flip_is_rejected_or_changes_the_advert(
            (a, src, dst) in advert(), pos in any::<prop::sample::Index>(), bit in 0u8..8
        ) {
            let mut bytes = a.emit(src, dst, ChecksumMode::default());
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            // A one-bit error always breaks the Internet checksum.
            prop_assert!(Advert::parse(&bytes, src, dst, ChecksumMode::default()).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), v6 in any::<bool>()) {
            let (src, dst) = if v6 {
                (v4("fe80::1"), IpAddr::V6(MULTICAST_V6))
            } else {
                (v4("10.0.0.1"), IpAddr::V4(MULTICAST_V4))
            };
            let _ = Advert::parse(&bytes, src, dst, ChecksumMode::default());
            let _ = Advert::parse(&bytes, src, dst, ChecksumMode::MessageOnly);
        }
    }
}
