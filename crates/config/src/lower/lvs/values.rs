//! Value readers particular to the LVS keywords: forwarding methods, group entries, flags.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Ctx;
use crate::ast::Node;
use crate::model::common::{Micros, Origin};
use crate::model::lvs::{
    AddressFamily, ForwardingMethod, GroupEntry, Tunnel, TunnelChecksum, TunnelType,
};

/// The largest timer accepted where keepalived sets no upper bound: about 136 years, far
/// beyond any sensible value, and small enough that sums of timers cannot overflow.
pub(super) fn max_timer() -> Micros {
    Micros(u64::from(u32::MAX) * 1_000_000)
}

/// A keyword keepalived treats as "on" whatever follows (`alpha`, `omega`, `ha_suspend`,
/// the service's `inhibit_on_failure`); extra words are reported.
pub(super) fn bare_flag(node: &Node, ctx: &mut Ctx<'_>) -> bool {
    ctx.no_block(node);
    ctx.extra_tokens(node, 0);
    true
}

/// `NAT|DR|TUN [type ipip|gue|gre] [port N] [csum|nocsum|remcsum]`.
pub(super) fn forwarding_method(node: &Node, ctx: &mut Ctx<'_>) -> Option<ForwardingMethod> {
    let t = ctx.arg(node, 0, "NAT, DR or TUN")?;
    let method = match t.text.as_str() {
        "NAT" => ForwardingMethod::Nat,
        "DR" => ForwardingMethod::Dr,
        "TUN" => ForwardingMethod::Tun(Tunnel::default()),
        _ => {
            ctx.error(
                t.span,
                format!(
                    "unknown forwarding method '{}': it must be NAT, DR or TUN",
                    t.text
                ),
            );
            return None;
        }
    };
    let ForwardingMethod::Tun(_) = method else {
        ctx.extra_tokens(node, 1);
        return Some(method);
    };
    let mut kind = "ipip";
    let mut port: Option<u16> = None;
    let mut checksum = TunnelChecksum::NoCsum;
    let mut i = 1;
    while let Some(opt) = node.args.get(i) {
        match opt.text.as_str() {
            "type" | "port" => {
                let Some(v) = node.args.get(i + 1) else {
                    ctx.error(
                        opt.span,
                        format!("tunnel option '{}' needs a value", opt.text),
                    );
                    return None;
                };
                if opt.text == "type" {
                    if !matches!(v.text.as_str(), "ipip" | "gue" | "gre") {
                        ctx.error(
                            v.span,
                            format!(
                                "unknown tunnel type '{}': it must be ipip, gue or gre",
                                v.text
                            ),
                        );
                        return None;
                    }
                    kind = if v.text == "ipip" {
                        "ipip"
                    } else if v.text == "gue" {
                        "gue"
                    } else {
                        "gre"
                    };
                } else {
                    port = Some(ctx.uint_in(v, 1, 65535, "gue tunnel port")? as u16);
                }
                i += 2;
            }
            "csum" | "nocsum" | "remcsum" => {
                checksum = match opt.text.as_str() {
                    "csum" => TunnelChecksum::Csum,
                    "remcsum" => TunnelChecksum::RemCsum,
                    _ => TunnelChecksum::NoCsum,
                };
                i += 1;
            }
            _ => {
                ctx.error(
                    opt.span,
                    format!(
                        "unknown tunnel option '{}': expected type, port, csum, nocsum or remcsum",
                        opt.text
                    ),
                );
                return None;
            }
        }
    }
    let kind = match (kind, port) {
        ("gue", Some(port)) => TunnelType::Gue { port },
        ("gue", None) | (_, Some(_)) => {
            ctx.error(
                node.span(),
                "a gue tunnel needs 'port N', and only a gue tunnel takes a port",
            );
            return None;
        }
        ("gre", None) => TunnelType::Gre,
        _ => TunnelType::Ipip,
    };
    if kind == TunnelType::Ipip && checksum != TunnelChecksum::NoCsum {
        ctx.error(node.span(), "ipip tunnels have no checksum option");
        return None;
    }
    if kind == TunnelType::Gre && checksum == TunnelChecksum::RemCsum {
        ctx.error(node.span(), "gre tunnels do not support remcsum");
        return None;
    }
    Some(ForwardingMethod::Tun(Tunnel { kind, checksum }))
}

/// One line of a `virtual_server_group`: `IP [PORT]`, `IP-LAST [PORT]`, `CIDR [PORT]` or
/// `fwmark N [inet|inet6]`.
pub(super) fn group_entry(node: &Node, ctx: &mut Ctx<'_>) -> Option<GroupEntry> {
    let origin = Origin::at(node.span());
    let word = node.word();
    if word == "fwmark" {
        ctx.extra_tokens(node, 2);
        let t = ctx.arg(node, 0, "a firewall mark")?;
        let mark = ctx.uint_in(t, 1, u64::from(u32::MAX), "fwmark")? as u32;
        let family = match node.args.get(1) {
            None => None,
            Some(f) if f.text == "inet" => Some(AddressFamily::Inet),
            Some(f) if f.text == "inet6" => Some(AddressFamily::Inet6),
            Some(f) => {
                ctx.error(
                    f.span,
                    format!(
                        "unknown address family '{}': it must be inet or inet6",
                        f.text
                    ),
                );
                return None;
            }
        };
        return Some(GroupEntry::Fwmark {
            mark,
            family,
            origin,
        });
    }
    ctx.extra_tokens(node, 1);
    let port = match node.args.first() {
        Some(t) => ctx.port(t, "virtual server group port")?,
        None => 0,
    };
    let Some((first, last)) = address_range(word) else {
        ctx.error(
            node.span(),
            format!(
                "'{word}' is not an address, an address range (10.0.0.1-10) or a CIDR block (10.0.0.0/24) in virtual_server_group"
            ),
        );
        return None;
    };
    if ip_key(&last) < ip_key(&first) {
        ctx.error(
            node.span(),
            format!("address range '{word}' ends before it starts"),
        );
        return None;
    }
    Some(GroupEntry::Addresses {
        first,
        last,
        port,
        origin,
    })
}

/// Reads `IP`, `IP-N` (the last byte, or last 16-bit group for IPv6), `IP-IP` or
/// `IP/LEN` into an inclusive range. A CIDR block must have no host bits set.
pub(super) fn address_range(s: &str) -> Option<(IpAddr, IpAddr)> {
    if let Some((ip, len)) = s.split_once('/') {
        let ip: IpAddr = ip.parse().ok()?;
        let len: u32 = len.parse().ok()?;
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        if len == 0 || len > bits {
            return None;
        }
        let host = if len == bits {
            0
        } else {
            (1u128 << (bits - len)) - 1
        };
        let k = ip_key(&ip);
        if k & host != 0 {
            return None;
        }
        return Some((ip, from_key(ip.is_ipv4(), k | host)));
    }
    if let Some((ip, end)) = s.split_once('-') {
        let ip: IpAddr = ip.parse().ok()?;
        if let Ok(last) = end.parse::<IpAddr>() {
            return (last.is_ipv4() == ip.is_ipv4()).then_some((ip, last));
        }
        let last = match ip {
            IpAddr::V4(v4) => {
                let n: u8 = end.parse().ok()?;
                let mut o = v4.octets();
                o[3] = n;
                IpAddr::V4(Ipv4Addr::from(o))
            }
            IpAddr::V6(v6) => {
                let n = u16::from_str_radix(end, 16).ok()?;
                let mut seg = v6.segments();
                seg[7] = n;
                IpAddr::V6(Ipv6Addr::from(seg))
            }
        };
        return Some((ip, last));
    }
    let ip: IpAddr = s.parse().ok()?;
    Some((ip, ip))
}

/// The address as a number, for ordering and masks.
pub(super) fn ip_key(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(*v)),
        IpAddr::V6(v) => u128::from(*v),
    }
}

pub(super) fn from_key(v4: bool, k: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(k as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(k))
    }
}

/// The shortest keepalived text for an address range (see [`address_range`]).
pub(super) fn range_text(first: &IpAddr, last: &IpAddr) -> String {
    if first == last {
        return first.to_string();
    }
    let (a, b) = (ip_key(first), ip_key(last));
    let bits: u32 = if first.is_ipv4() { 32 } else { 128 };
    let span = b - a;
    if let Some(size) = span.checked_add(1)
        && size.is_power_of_two()
        && a & span == 0
        && size.trailing_zeros() < bits
    {
        return format!("{first}/{}", bits - size.trailing_zeros());
    }
    match (first, last) {
        (IpAddr::V4(f), IpAddr::V4(l)) if f.octets()[..3] == l.octets()[..3] => {
            format!("{first}-{}", l.octets()[3])
        }
        (IpAddr::V6(f), IpAddr::V6(l)) if f.segments()[..7] == l.segments()[..7] => {
            format!("{first}-{:x}", l.segments()[7])
        }
        _ => format!("{first}-{last}"),
    }
}

/// Hex digits with optional blanks between bytes (`UDP_CHECK payload`); `wildcards` allows
/// `?` nibbles (`require_reply`). Returns the canonical lowercase text.
pub(super) fn hex_text(words: &[&str], wildcards: bool) -> Option<String> {
    let joined: String = words.concat();
    if joined.is_empty() || !joined.len().is_multiple_of(2) {
        return None;
    }
    joined
        .chars()
        .all(|c| c.is_ascii_hexdigit() || (wildcards && c == '?'))
        .then(|| joined.to_ascii_lowercase())
}

/// Decodes canonical hex text (no wildcards) into bytes.
pub(super) fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}
