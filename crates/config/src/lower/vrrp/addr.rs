//! Address lines: `virtual_ipaddress`, `virtual_ipaddress_excluded`, `static_ipaddress`
//! (`ADDR[/LEN] [brd X] [dev IF] [scope S] [label L] [peer X[/LEN]] [flags…]`) and
//! `unicast_peer` (`IP [min_ttl N] [max_ttl N]`).

use std::net::IpAddr;

use super::super::Ctx;
use crate::ast::{Node, Token};
use crate::model::common::Origin;
use crate::model::vrrp::{Broadcast, PreferredLifetime, Scope, UnicastPeer, VirtualAddress};
use crate::print::word;

/// `ADDR[/LEN]`.
pub(super) fn prefixed(ctx: &mut Ctx<'_>, tok: &Token, what: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match tok.text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (tok.text.as_str(), None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        ctx.error(
            tok.span,
            format!("{what} '{}' is not an IPv4 or IPv6 address", tok.text),
        );
        return None;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                ctx.error(
                    tok.span,
                    format!("{what} '{}': the prefix length must be 0–{max}", tok.text),
                );
                return None;
            }
        },
    };
    Some((ip, len))
}

/// One address line of a value block.
pub(super) fn address(ctx: &mut Ctx<'_>, node: &Node) -> Option<VirtualAddress> {
    ctx.no_block(node);
    let (address, prefix_len) = prefixed(ctx, &node.keyword, "address")?;
    let mut a = VirtualAddress {
        address,
        prefix_len,
        broadcast: None,
        dev: None,
        scope: None,
        label: None,
        peer: None,
        home: false,
        nodad: false,
        mngtmpaddr: false,
        noprefixroute: false,
        autojoin: false,
        no_track: false,
        preferred_lft: None,
        origin: Origin::at(node.span()),
    };
    let mut ok = true;
    let mut i = 0;
    let args = &node.args;
    while i < args.len() {
        let opt = &args[i];
        let value = args.get(i + 1);
        let takes_value = matches!(
            opt.text.as_str(),
            "brd" | "broadcast" | "dev" | "scope" | "label" | "peer" | "preferred_lft"
        );
        if takes_value && value.is_none() {
            ctx.error(
                opt.span,
                format!("address option '{}' needs a value", opt.text),
            );
            return None;
        }
        match (opt.text.as_str(), value) {
            ("brd" | "broadcast", Some(v)) => {
                a.broadcast = match v.text.as_str() {
                    "+" => Some(Broadcast::Auto),
                    "-" => Some(Broadcast::None),
                    _ => match ctx.ip(v, "broadcast address") {
                        Some(ip) => Some(Broadcast::Address(ip)),
                        None => {
                            ok = false;
                            None
                        }
                    },
                }
            }
            ("dev", Some(v)) => a.dev = Some(v.text.clone()),
            ("scope", Some(v)) => {
                a.scope = match v.text.as_str() {
                    "global" => Some(Scope::Global),
                    "site" => Some(Scope::Site),
                    "link" => Some(Scope::Link),
                    "host" => Some(Scope::Host),
                    "nowhere" => Some(Scope::Nowhere),
                    other => {
                        ctx.error(
                            v.span,
                            format!(
                                "unknown scope '{other}' (global, site, link, host or nowhere)"
                            ),
                        );
                        ok = false;
                        None
                    }
                }
            }
            ("label", Some(v)) => a.label = Some(v.text.clone()),
            ("peer", Some(v)) => match prefixed(ctx, v, "peer address") {
                Some(p) => a.peer = Some(p),
                None => ok = false,
            },
            ("preferred_lft", Some(v)) => {
                a.preferred_lft = if v.text == "forever" {
                    Some(PreferredLifetime::Forever)
                } else {
                    match ctx.uint_in(v, 0, u64::from(u32::MAX), "preferred_lft") {
                        Some(n) => Some(PreferredLifetime::Seconds(n as u32)),
                        None => {
                            ok = false;
                            None
                        }
                    }
                }
            }
            ("home", _) => a.home = true,
            ("-nodad", _) => a.nodad = true,
            ("mngtmpaddr", _) => a.mngtmpaddr = true,
            ("noprefixroute", _) => a.noprefixroute = true,
            ("autojoin", _) => a.autojoin = true,
            ("no_track", _) => a.no_track = true,
            ("use_vmac" | "use_ipvlan", _) => {
                ctx.warning(
                    opt.span,
                    format!(
                        "address option '{}' accepted, not acted on: flotilla uses the interface's own MAC",
                        opt.text
                    ),
                );
                // The rest of the line belongs to the VMAC option.
                break;
            }
            (other, _) => {
                let hint = if other.parse::<IpAddr>().is_ok() || other.contains('/') {
                    " (one address per line: keepalived keeps only the first)"
                } else {
                    ""
                };
                ctx.error(opt.span, format!("unknown address option '{other}'{hint}"));
                ok = false;
            }
        }
        i += if takes_value { 2 } else { 1 };
    }
    if let (Some((peer, _)), true) = (a.peer, ok)
        && peer.is_ipv4() != address.is_ipv4()
    {
        ctx.error(
            node.span(),
            format!("peer {peer} is not of the same family as {address}"),
        );
        ok = false;
    }
    if let (Some(Broadcast::Address(b)), true) = (&a.broadcast, ok)
        && b.is_ipv4() != address.is_ipv4()
    {
        ctx.error(
            node.span(),
            format!("broadcast {b} is not of the same family as {address}"),
        );
        ok = false;
    }
    ok.then_some(a)
}

/// The address as keepalived syntax, every option explicit.
pub(super) fn address_words(a: &VirtualAddress) -> Vec<String> {
    let mut w = vec![format!("{}/{}", a.address, a.prefix_len)];
    match &a.broadcast {
        Some(Broadcast::Auto) => w.extend(["brd".into(), "+".into()]),
        Some(Broadcast::None) => w.extend(["brd".into(), "-".into()]),
        Some(Broadcast::Address(ip)) => w.extend(["brd".into(), ip.to_string()]),
        None => {}
    }
    if let Some(d) = &a.dev {
        w.extend(["dev".into(), word(d)]);
    }
    if let Some(s) = a.scope {
        w.extend(["scope".into(), s.keyword().into()]);
    }
    if let Some(l) = &a.label {
        w.extend(["label".into(), word(l)]);
    }
    if let Some((p, len)) = a.peer {
        w.extend(["peer".into(), format!("{p}/{len}")]);
    }
    for (set, flag) in [
        (a.home, "home"),
        (a.nodad, "-nodad"),
        (a.mngtmpaddr, "mngtmpaddr"),
        (a.noprefixroute, "noprefixroute"),
        (a.autojoin, "autojoin"),
        (a.no_track, "no_track"),
    ] {
        if set {
            w.push(flag.into());
        }
    }
    match a.preferred_lft {
        Some(PreferredLifetime::Forever) => w.extend(["preferred_lft".into(), "forever".into()]),
        Some(PreferredLifetime::Seconds(n)) => w.extend(["preferred_lft".into(), n.to_string()]),
        None => {}
    }
    w
}

/// One `unicast_peer` line.
pub(super) fn peer(ctx: &mut Ctx<'_>, node: &Node) -> Option<UnicastPeer> {
    ctx.no_block(node);
    let address = ctx.ip(&node.keyword, "unicast peer")?;
    let mut p = UnicastPeer {
        address,
        min_ttl: None,
        max_ttl: None,
        origin: Origin::at(node.span()),
    };
    let mut i = 0;
    while i < node.args.len() {
        let opt = &node.args[i];
        match (opt.text.as_str(), node.args.get(i + 1)) {
            ("min_ttl", Some(v)) => {
                p.min_ttl = ctx.uint_in(v, 0, 255, "min_ttl").map(|n| n as u8);
                i += 2;
            }
            ("max_ttl", Some(v)) => {
                p.max_ttl = ctx.uint_in(v, 0, 255, "max_ttl").map(|n| n as u8);
                i += 2;
            }
            (other, _) => {
                ctx.error(
                    opt.span,
                    format!(
                        "unknown unicast_peer option '{other}' (one peer per line; options are min_ttl N and max_ttl N)"
                    ),
                );
                i += 1;
            }
        }
    }
    if let (Some(lo), Some(hi)) = (p.min_ttl, p.max_ttl)
        && lo > hi
    {
        ctx.error(
            node.span(),
            format!("unicast peer {address}: min_ttl {lo} is above max_ttl {hi}"),
        );
    }
    Some(p)
}

pub(super) fn peer_words(p: &UnicastPeer) -> Vec<String> {
    let mut w = vec![p.address.to_string()];
    if let Some(t) = p.min_ttl {
        w.extend(["min_ttl".into(), t.to_string()]);
    }
    if let Some(t) = p.max_ttl {
        w.extend(["max_ttl".into(), t.to_string()]);
    }
    w
}
