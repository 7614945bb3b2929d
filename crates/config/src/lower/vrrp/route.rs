//! Route and rule lines (`virtual_routes`, `virtual_rules`, `static_routes`,
//! `static_rules`): the common subset of `ip route` / `ip rule` syntax is typed; a line using
//! anything else is reported and left out, rather than half-understood.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::super::Ctx;
use super::addr::prefixed;
use crate::ast::{Node, Token};
use crate::model::common::Origin;
use crate::model::vrrp::{Route, RouteType, Rule, RuleAction, Scope};
use crate::print::word;

/// Route options keepalived knows that flotilla does not model.
const ROUTE_UNMODELED: &[&str] = &[
    "or",
    "nexthop",
    "mtu",
    "advmss",
    "realms",
    "tos",
    "dsfield",
    "protocol",
    "pref",
    "expires",
    "hoplimit",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "rto_min",
    "fastopen_no_cookie",
    "encap",
    "ttl-propagate",
    "track_group",
    "vrf",
    "from",
    "weight",
    "as",
    "nat",
];

/// Rule options keepalived knows that flotilla does not model.
const RULE_UNMODELED: &[&str] = &[
    "tos",
    "dsfield",
    "realms",
    "suppress_prefixlength",
    "sup_pl",
    "suppress_ifgroup",
    "sup_group",
    "tunnel-id",
    "uidrange",
    "protocol",
    "ipproto",
    "sport",
    "dport",
    "goto",
    "nop",
    "track_group",
    "type",
    "l3mdev",
];

fn unmodeled(ctx: &mut Ctx<'_>, t: &Token, what: &str) {
    ctx.warning(
        t.span,
        format!(
            "{what} option '{}' is not supported by flotilla; this {what} is left out",
            t.text
        ),
    );
}

fn scope(ctx: &mut Ctx<'_>, t: &Token) -> Option<Scope> {
    match t.text.as_str() {
        "global" | "universe" => Some(Scope::Global),
        "site" => Some(Scope::Site),
        "link" => Some(Scope::Link),
        "host" => Some(Scope::Host),
        "nowhere" => Some(Scope::Nowhere),
        other => {
            ctx.error(
                t.span,
                format!("unknown scope '{other}' (global, site, link, host or nowhere)"),
            );
            None
        }
    }
}

fn table(ctx: &mut Ctx<'_>, t: &Token) -> Option<u32> {
    match t.text.as_str() {
        "main" => Some(254),
        "local" => Some(255),
        "default" => Some(253),
        _ => ctx
            .uint_in(t, 1, u64::from(u32::MAX), "routing table")
            .map(|n| n as u32),
    }
}

/// One route line; `None` when it is wrong (reported) or uses unmodeled options.
pub(super) fn route(ctx: &mut Ctx<'_>, node: &Node) -> Option<Route> {
    ctx.no_block(node);
    let words: Vec<&Token> = node.words().collect();
    let mut r = Route {
        kind: RouteType::Unicast,
        destination: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        prefix_len: 0,
        src: None,
        via: None,
        dev: None,
        scope: None,
        table: None,
        metric: None,
        onlink: false,
        no_track: false,
        origin: Origin::at(node.span()),
    };
    let mut dest: Option<(IpAddr, u8)> = None;
    let mut default = false;
    let mut ok = true;
    let mut i = 0;
    while i < words.len() {
        let t = words[i];
        let value = words.get(i + 1).copied();
        let kw = t.text.as_str();
        let takes_value = matches!(
            kw,
            "src"
                | "via"
                | "gw"
                | "dev"
                | "oif"
                | "scope"
                | "table"
                | "metric"
                | "priority"
                | "preference"
                | "to"
        );
        if takes_value && value.is_none() {
            ctx.error(t.span, format!("route option '{kw}' needs a value"));
            return None;
        }
        match (kw, value) {
            ("src", Some(v)) => r.src = ctx.ip(v, "route src").or_else(|| fail(&mut ok)),
            ("via" | "gw", Some(v)) => {
                if kw == "gw" {
                    ctx.warning(t.span, "route option 'gw' is deprecated; write 'via'");
                }
                r.via = ctx.ip(v, "route gateway").or_else(|| fail(&mut ok));
            }
            ("dev" | "oif", Some(v)) => r.dev = Some(v.text.clone()),
            ("scope", Some(v)) => r.scope = scope(ctx, v).or_else(|| fail(&mut ok)),
            ("table", Some(v)) => r.table = table(ctx, v).or_else(|| fail(&mut ok)),
            ("metric" | "priority" | "preference", Some(v)) => {
                r.metric = ctx
                    .uint_in(v, 0, u64::from(u32::MAX), "route metric")
                    .map(|n| n as u32)
                    .or_else(|| fail(&mut ok))
            }
            ("to", Some(v)) => {
                dest = prefixed(ctx, v, "route destination").or_else(|| fail(&mut ok));
            }
            ("onlink", _) => r.onlink = true,
            ("no_track", _) => r.no_track = true,
            (k, _) if RouteType::ALL.iter().any(|x| x.keyword() == k) && i == 0 => {
                r.kind = RouteType::ALL
                    .into_iter()
                    .find(|x| x.keyword() == k)
                    .unwrap_or(RouteType::Unicast);
            }
            (k, _) if ROUTE_UNMODELED.contains(&k) => {
                unmodeled(ctx, t, "route");
                return None;
            }
            ("default", _) if dest.is_none() => default = true,
            (_, _) if dest.is_none() && !default => {
                dest = prefixed(ctx, t, "route destination").or_else(|| fail(&mut ok));
            }
            (k, _) => {
                ctx.error(t.span, format!("unknown route option '{k}'"));
                ok = false;
            }
        }
        i += if takes_value { 2 } else { 1 };
    }
    if !ok {
        return None;
    }
    let v6_hint = r.via.or(r.src).is_some_and(|a| a.is_ipv6());
    let Some((d, len)) = dest.or_else(|| {
        default.then_some(if v6_hint {
            (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
        } else {
            (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
        })
    }) else {
        ctx.error(node.span(), "route without a destination");
        return None;
    };
    r.destination = d;
    r.prefix_len = len;
    for (what, a) in [("src", r.src), ("via", r.via)] {
        if let Some(a) = a
            && a.is_ipv4() != d.is_ipv4()
        {
            ctx.error(
                node.span(),
                format!("route {d}/{len}: {what} {a} is not of the destination's family"),
            );
            return None;
        }
    }
    Some(r)
}

fn fail<T>(ok: &mut bool) -> Option<T> {
    *ok = false;
    None
}

pub(super) fn route_words(r: &Route) -> Vec<String> {
    let mut w = Vec::new();
    if r.kind != RouteType::Unicast {
        w.push(r.kind.keyword().to_string());
    }
    w.push(format!("{}/{}", r.destination, r.prefix_len));
    if let Some(a) = r.src {
        w.extend(["src".into(), a.to_string()]);
    }
    if let Some(a) = r.via {
        w.extend(["via".into(), a.to_string()]);
    }
    if let Some(d) = &r.dev {
        w.extend(["dev".into(), word(d)]);
    }
    if let Some(s) = r.scope {
        w.extend(["scope".into(), s.keyword().into()]);
    }
    if let Some(t) = r.table {
        w.extend(["table".into(), t.to_string()]);
    }
    if let Some(m) = r.metric {
        w.extend(["metric".into(), m.to_string()]);
    }
    if r.onlink {
        w.push("onlink".into());
    }
    if r.no_track {
        w.push("no_track".into());
    }
    w
}

/// `N` or `N/MASK`, decimal or 0x-hex.
fn fwmark(ctx: &mut Ctx<'_>, t: &Token) -> Option<(u32, Option<u32>)> {
    let num = |s: &str| match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    };
    let parsed = match t.text.split_once('/') {
        Some((m, k)) => num(m).zip(num(k)).map(|(m, k)| (m, Some(k))),
        None => num(&t.text).map(|m| (m, None)),
    };
    if parsed.is_none() {
        ctx.error(t.span, format!("invalid rule fwmark '{}'", t.text));
    }
    parsed
}

/// `P` or `all`.
fn selector(ctx: &mut Ctx<'_>, t: &Token, what: &str) -> Option<Option<(IpAddr, u8)>> {
    if t.text == "all" {
        return Some(None);
    }
    prefixed(ctx, t, what).map(Some)
}

/// One rule line; `None` when it is wrong (reported) or uses unmodeled options.
pub(super) fn rule(ctx: &mut Ctx<'_>, node: &Node) -> Option<Rule> {
    ctx.no_block(node);
    let words: Vec<&Token> = node.words().collect();
    let mut r = Rule {
        from: None,
        to: None,
        fwmark: None,
        iif: None,
        oif: None,
        preference: None,
        action: RuleAction::Blackhole,
        no_track: false,
        origin: Origin::at(node.span()),
    };
    let mut action: Option<RuleAction> = None;
    let mut ok = true;
    let mut i = 0;
    while i < words.len() {
        let t = words[i];
        let value = words.get(i + 1).copied();
        let kw = t.text.as_str();
        let takes_value = matches!(
            kw,
            "from"
                | "to"
                | "table"
                | "lookup"
                | "preference"
                | "priority"
                | "order"
                | "fwmark"
                | "iif"
                | "dev"
                | "oif"
        );
        if takes_value && value.is_none() {
            ctx.error(t.span, format!("rule option '{kw}' needs a value"));
            return None;
        }
        let set_action = |ctx: &mut Ctx<'_>,
                          action: &mut Option<RuleAction>,
                          ok: &mut bool,
                          a: Option<RuleAction>| {
            if action.is_some() {
                ctx.error(
                    t.span,
                    "a rule takes one action: table, blackhole, prohibit or unreachable",
                );
                *ok = false;
            } else if a.is_none() {
                *ok = false;
            }
            *action = action.or(a);
        };
        match (kw, value) {
            ("from", Some(v)) => match selector(ctx, v, "rule from") {
                Some(p) => r.from = p,
                None => ok = false,
            },
            ("to", Some(v)) => match selector(ctx, v, "rule to") {
                Some(p) => r.to = p,
                None => ok = false,
            },
            ("table" | "lookup", Some(v)) => {
                let a = table(ctx, v).map(RuleAction::Table);
                set_action(ctx, &mut action, &mut ok, a);
            }
            ("blackhole", _) => set_action(ctx, &mut action, &mut ok, Some(RuleAction::Blackhole)),
            ("prohibit", _) => set_action(ctx, &mut action, &mut ok, Some(RuleAction::Prohibit)),
            ("unreachable", _) => {
                set_action(ctx, &mut action, &mut ok, Some(RuleAction::Unreachable))
            }
            ("preference" | "priority" | "order", Some(v)) => {
                r.preference = ctx
                    .uint_in(v, 0, u64::from(u32::MAX), "rule preference")
                    .map(|n| n as u32)
                    .or_else(|| fail(&mut ok))
            }
            ("fwmark", Some(v)) => r.fwmark = fwmark(ctx, v).or_else(|| fail(&mut ok)),
            ("iif" | "dev", Some(v)) => r.iif = Some(v.text.clone()),
            ("oif", Some(v)) => r.oif = Some(v.text.clone()),
            ("no_track", _) => r.no_track = true,
            ("inet" | "inet6", _) => {}
            (k, _) if RULE_UNMODELED.contains(&k) => {
                unmodeled(ctx, t, "rule");
                return None;
            }
            (k, _) => {
                ctx.error(t.span, format!("unknown rule option '{k}'"));
                ok = false;
            }
        }
        i += if takes_value { 2 } else { 1 };
    }
    if !ok {
        return None;
    }
    let Some(action) = action else {
        ctx.error(
            node.span(),
            "rule without an action (table N, blackhole, prohibit or unreachable); keepalived ignores it",
        );
        return None;
    };
    r.action = action;
    if let (Some((f, _)), Some((t, _))) = (r.from, r.to)
        && f.is_ipv4() != t.is_ipv4()
    {
        ctx.error(node.span(), "rule mixes IPv4 and IPv6 addresses");
        return None;
    }
    if r.preference.is_none() {
        ctx.warning(
            node.span(),
            "rule has no preference: the kernel numbers it, which keepalived warns is probably not what you want",
        );
    }
    Some(r)
}

pub(super) fn rule_words(r: &Rule) -> Vec<String> {
    let mut w = Vec::new();
    if let Some((a, l)) = r.from {
        w.extend(["from".into(), format!("{a}/{l}")]);
    }
    if let Some((a, l)) = r.to {
        w.extend(["to".into(), format!("{a}/{l}")]);
    }
    if let Some((m, k)) = r.fwmark {
        let v = match k {
            Some(k) => format!("{m}/{k}"),
            None => m.to_string(),
        };
        w.extend(["fwmark".into(), v]);
    }
    if let Some(i) = &r.iif {
        w.extend(["iif".into(), word(i)]);
    }
    if let Some(o) = &r.oif {
        w.extend(["oif".into(), word(o)]);
    }
    if let Some(p) = r.preference {
        w.extend(["preference".into(), p.to_string()]);
    }
    match r.action {
        RuleAction::Table(t) => w.extend(["table".into(), t.to_string()]),
        RuleAction::Blackhole => w.push("blackhole".into()),
        RuleAction::Prohibit => w.push("prohibit".into()),
        RuleAction::Unreachable => w.push("unreachable".into()),
    }
    if r.no_track {
        w.push("no_track".into());
    }
    w
}
