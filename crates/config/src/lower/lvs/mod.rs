//! `virtual_server`, `virtual_server_group` and `SSL` (keepalived.md §2.5–2.6).
//!
//! Settings are read into drafts that remember what was written, then resolved at the end
//! of each `virtual_server` block the way keepalived's `check_data.c` does after parsing:
//! a checker's timing comes from the checker, else its real server, else the service, else
//! the checker type's default. Checks that need the whole configuration (group references,
//! duplicates, address families) run in [`validate`].

mod check;
mod print;
mod values;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use super::Ctx;
use crate::ast::Node;
use crate::model::Config;
use crate::model::common::{Micros, Origin};
use crate::model::lvs::{
    AddressFamily, DEFAULT_PERSISTENCE_TIMEOUT, ForwardingMethod, Granularity, GroupEntry,
    LvsSection, MAX_PERSISTENCE_TIMEOUT, MAX_WEIGHT, Persistence, Protocol, RealServer, Scheduler,
    SorryServer, SslContext, VirtualServer, VirtualServerGroup, VirtualServerKey,
};

#[allow(
    unused_imports,
    reason = "the benchmark generator is public once lower/mod.rs re-exports this module's item"
)]
pub(crate) use print::print;

use check::{CheckerDraft, TimingDraft};
use values::{bare_flag, forwarding_method, group_entry, max_timer};

pub(crate) fn lower_top(node: &Node, ctx: &mut Ctx<'_>, cfg: &mut Config) -> bool {
    match node.word() {
        "virtual_server" => {
            if let Some(vs) = virtual_server(node, ctx) {
                cfg.lvs.virtual_servers.push(vs);
            }
        }
        "virtual_server_group" => {
            if let Some(g) = virtual_server_group(node, ctx) {
                cfg.lvs.virtual_server_groups.push(g);
            }
        }
        "SSL" => ssl(node, ctx, &mut cfg.lvs),
        _ => return false,
    }
    true
}

fn ssl(node: &Node, ctx: &mut Ctx<'_>, lvs: &mut LvsSection) {
    ctx.extra_tokens(node, 0);
    if let Some(old) = &lvs.ssl {
        let at = old
            .origin
            .0
            .map(|s| format!(" at line {}", s.line))
            .unwrap_or_default();
        ctx.warning(
            node.span(),
            format!("a second 'SSL' block replaces the first{at}, as keepalived does"),
        );
    }
    let mut out = SslContext {
        origin: Origin::at(node.span()),
        ..SslContext::default()
    };
    for child in ctx.block(node) {
        match child.word() {
            "password" => {
                out.password = ctx
                    .single(child, "the key's password")
                    .map(|t| t.text.clone())
            }
            "ca" => {
                out.ca = ctx
                    .single(child, "a CA file")
                    .map(|t| PathBuf::from(&t.text))
            }
            "certificate" => {
                out.certificate = ctx
                    .single(child, "a certificate file")
                    .map(|t| PathBuf::from(&t.text))
            }
            "key" => {
                out.key = ctx
                    .single(child, "a key file")
                    .map(|t| PathBuf::from(&t.text))
            }
            _ => ctx.unknown_keyword(child, "SSL"),
        }
    }
    lvs.ssl = Some(out);
}

fn virtual_server_group(node: &Node, ctx: &mut Ctx<'_>) -> Option<VirtualServerGroup> {
    ctx.extra_tokens(node, 1);
    let name = ctx.arg(node, 0, "a group name")?.text.clone();
    let mut entries = Vec::new();
    for child in ctx.block(node) {
        ctx.no_block(child);
        if let Some(e) = group_entry(child, ctx) {
            entries.push(e);
        }
    }
    if entries.is_empty() {
        ctx.warning(
            node.span(),
            format!("virtual_server_group {name} has no entries; keepalived drops it, and so does flotilla"),
        );
        return None;
    }
    let has = |f| entries.iter().any(|e: &GroupEntry| e.family() == Some(f));
    let bare_fwmark = entries
        .iter()
        .any(|e| matches!(e, GroupEntry::Fwmark { family: None, .. }));
    if has(AddressFamily::Inet) && has(AddressFamily::Inet6) && bare_fwmark {
        ctx.error(
            node.span(),
            format!(
                "virtual_server_group {name} mixes IPv4 and IPv6 addresses with a fwmark that has no family; write 'fwmark N inet' or 'fwmark N inet6'"
            ),
        );
    }
    Some(VirtualServerGroup {
        name,
        entries,
        origin: Origin::at(node.span()),
    })
}

/// What a real server block wrote, before inheritance.
struct RsDraft {
    rs: RealServer,
    port: Option<u16>,
    weight: Option<u32>,
    method: Option<ForwardingMethod>,
    inhibit: Option<bool>,
    alpha: Option<bool>,
    timing: TimingDraft,
    checkers: Vec<CheckerDraft>,
}

/// What a virtual_server block wrote besides the model's fields.
struct VsDraft {
    vs: VirtualServer,
    ip_family: Option<AddressFamily>,
    sched_given: bool,
    sorry_method: Option<ForwardingMethod>,
    real_servers: Vec<RsDraft>,
}

fn virtual_server(node: &Node, ctx: &mut Ctx<'_>) -> Option<VirtualServer> {
    let key = vs_key(node, ctx)?;
    let mut d = VsDraft {
        vs: VirtualServer::new(key),
        ip_family: None,
        sched_given: false,
        sorry_method: None,
        real_servers: Vec::new(),
    };
    d.vs.origin = Origin::at(node.span());
    for child in ctx.block(node) {
        vs_keyword(child, ctx, &mut d);
    }
    if !d.sched_given {
        ctx.warning(
            node.span(),
            format!(
                "virtual_server {} has no lvs_sched; using wlc, as keepalived does",
                d.vs.key
            ),
        );
    }
    resolve(node, ctx, d)
}

fn vs_key(node: &Node, ctx: &mut Ctx<'_>) -> Option<VirtualServerKey> {
    let first = ctx.arg(node, 0, "an address and port, 'fwmark N' or 'group NAME'")?;
    match first.text.as_str() {
        "group" => {
            ctx.extra_tokens(node, 2);
            let name = ctx.arg(node, 1, "the name of a virtual_server_group")?;
            Some(VirtualServerKey::Group {
                name: name.text.clone(),
                protocol: Protocol::Tcp,
            })
        }
        "fwmark" => {
            ctx.extra_tokens(node, 2);
            let t = ctx.arg(node, 1, "a firewall mark")?;
            let mark = ctx.uint_in(t, 1, u64::from(u32::MAX), "fwmark")? as u32;
            Some(VirtualServerKey::Fwmark {
                mark,
                family: AddressFamily::Inet,
            })
        }
        _ => {
            ctx.extra_tokens(node, 2);
            let ip = ctx.ip(first, "virtual server address")?;
            let port = match node.args.get(1) {
                Some(t) => ctx.port(t, "virtual server port")?,
                None => 0,
            };
            Some(VirtualServerKey::Addr {
                ip,
                port,
                protocol: Protocol::Tcp,
            })
        }
    }
}

fn vs_keyword(child: &Node, ctx: &mut Ctx<'_>, d: &mut VsDraft) {
    let vs = &mut d.vs;
    match child.word() {
        "real_server" => {
            if let Some(rs) = real_server(child, ctx) {
                d.real_servers.push(rs);
            }
        }
        "delay_loop" => {
            if let Some(t) = ctx.single(child, "seconds")
                && let Some(v) = ctx.timer_in(t, Micros(1), max_timer(), "delay_loop")
            {
                vs.delay_loop = v;
            }
        }
        "connect_timeout" => {
            if let Some(t) = ctx.single(child, "seconds")
                && let Some(v) =
                    ctx.timer_in(t, Micros(1), Micros(u64::from(u32::MAX)), "connect_timeout")
            {
                vs.connect_timeout = v;
            }
        }
        "retry" => {
            if let Some(t) = ctx.single(child, "a number of retries")
                && let Some(v) = ctx.uint_in(t, 1, u64::from(u32::MAX), "retry")
            {
                vs.retry = Some(v as u32);
            }
        }
        "delay_before_retry" => {
            if let Some(t) = ctx.single(child, "seconds")
                && let Some(v) = ctx.timer_in(t, Micros(0), max_timer(), "delay_before_retry")
            {
                vs.delay_before_retry = Some(v);
            }
        }
        "warmup" => {
            if let Some(t) = ctx.single(child, "seconds")
                && let Some(v) = ctx.timer_in(t, Micros(0), max_timer(), "warmup")
            {
                vs.warmup = Some(v);
            }
        }
        "lvs_sched" | "lb_algo" => {
            if let Some(t) = ctx.single(child, "a scheduler (rr, wrr, lc, wlc, …)") {
                match Scheduler::from_name(&t.text) {
                    Some(s) => {
                        vs.scheduler = s;
                        d.sched_given = true;
                    }
                    None => ctx.error(
                        t.span,
                        format!(
                            "unknown scheduler '{}': it must be one of rr wrr lc wlc lblc sh mh dh fo ovf lblcr sed nq twos",
                            t.text
                        ),
                    ),
                }
            }
        }
        "lvs_method" | "lb_kind" => {
            ctx.no_block(child);
            if let Some(m) = forwarding_method(child, ctx) {
                vs.method = m;
            }
        }
        "persistence_timeout" => {
            ctx.no_block(child);
            ctx.extra_tokens(child, 1);
            let timeout = match child.args.first() {
                None => Some(DEFAULT_PERSISTENCE_TIMEOUT),
                Some(t) => ctx
                    .uint_in(
                        t,
                        1,
                        u64::from(MAX_PERSISTENCE_TIMEOUT),
                        "persistence_timeout",
                    )
                    .map(|v| v as u32),
            };
            if let Some(timeout) = timeout {
                let granularity = vs.persistence.and_then(|p| p.granularity);
                vs.persistence = Some(Persistence {
                    timeout,
                    granularity,
                });
            }
        }
        "persistence_granularity" => {
            if let Some(t) = ctx.single(child, "a netmask (IPv4) or prefix length (IPv6)") {
                let g = if t.text.contains('.') {
                    match t.text.parse() {
                        Ok(mask) => Some(Granularity::Netmask(mask)),
                        Err(_) => {
                            ctx.error(
                                t.span,
                                format!(
                                    "persistence_granularity '{}' is not an IPv4 netmask",
                                    t.text
                                ),
                            );
                            None
                        }
                    }
                } else {
                    ctx.uint_in(t, 1, 128, "IPv6 persistence_granularity")
                        .map(|v| Granularity::Prefix(v as u8))
                };
                if let Some(g) = g {
                    // Granularity makes the service persistent (keepalived pgr_handler).
                    let timeout = vs
                        .persistence
                        .map_or(DEFAULT_PERSISTENCE_TIMEOUT, |p| p.timeout);
                    vs.persistence = Some(Persistence {
                        timeout,
                        granularity: Some(g),
                    });
                }
            }
        }
        "protocol" => {
            if let Some(t) = ctx.single(child, "TCP, UDP or SCTP") {
                let p = match t.text.to_ascii_uppercase().as_str() {
                    "TCP" => Some(Protocol::Tcp),
                    "UDP" => Some(Protocol::Udp),
                    "SCTP" => Some(Protocol::Sctp),
                    _ => {
                        ctx.error(
                            t.span,
                            format!("unknown protocol '{}': it must be TCP, UDP or SCTP", t.text),
                        );
                        None
                    }
                };
                match vs.key.protocol_mut() {
                    None => ctx.warning(
                        child.span(),
                        "'protocol' is ignored for a fwmark virtual server: the mark selects the traffic (keepalived ignores it too)",
                    ),
                    Some(slot) => {
                        if let Some(p) = p {
                            *slot = p;
                        }
                    }
                }
            }
        }
        "ip_family" => {
            if let Some(t) = ctx.single(child, "inet or inet6") {
                match t.text.as_str() {
                    "inet" => d.ip_family = Some(AddressFamily::Inet),
                    "inet6" => d.ip_family = Some(AddressFamily::Inet6),
                    _ => ctx.error(
                        t.span,
                        format!(
                            "unknown address family '{}': it must be inet or inet6",
                            t.text
                        ),
                    ),
                }
            }
        }
        "sorry_server" => {
            ctx.no_block(child);
            ctx.extra_tokens(child, 2);
            let Some(ip) = ctx
                .arg(child, 0, "an address")
                .and_then(|t| ctx.ip(t, "sorry server address"))
            else {
                return;
            };
            let port = match child.args.get(1) {
                Some(t) => ctx.port(t, "sorry server port").unwrap_or(0),
                None => 0,
            };
            if let Some(old) = &vs.sorry_server {
                let line = old.origin.0.map(|s| s.line).unwrap_or(0);
                ctx.warning(
                    child.span(),
                    format!("a second sorry_server replaces the one at line {line}"),
                );
            }
            vs.sorry_server = Some(SorryServer {
                ip,
                port,
                method: ForwardingMethod::Nat,
                inhibit: false,
                origin: Origin::at(child.span()),
            });
            d.sorry_method = None;
        }
        "sorry_server_inhibit" => {
            let on = ctx.flag(child);
            match &mut vs.sorry_server {
                Some(s) => s.inhibit = on,
                None => ctx.error(
                    child.span(),
                    "'sorry_server_inhibit' before or without 'sorry_server' is ignored (keepalived ignores it too)",
                ),
            }
        }
        "sorry_server_lvs_method" => {
            ctx.no_block(child);
            let m = forwarding_method(child, ctx);
            if vs.sorry_server.is_none() {
                ctx.error(
                    child.span(),
                    "'sorry_server_lvs_method' before or without 'sorry_server' is ignored (keepalived ignores it too)",
                );
            } else if m.is_some() {
                d.sorry_method = m;
            }
        }
        "inhibit_on_failure" => vs.inhibit_on_failure = bare_flag(child, ctx),
        "alpha" => vs.alpha = bare_flag(child, ctx),
        "omega" => vs.omega = bare_flag(child, ctx),
        "ha_suspend" => vs.ha_suspend = bare_flag(child, ctx),
        "quorum" => {
            if let Some(t) = ctx.single(child, "a total weight")
                && let Some(v) = ctx.uint_in(t, 1, u64::from(u32::MAX), "quorum")
            {
                vs.quorum = v as u32;
            }
        }
        "hysteresis" => {
            if let Some(t) = ctx.single(child, "a weight")
                && let Some(v) = ctx.uint_in(t, 0, u64::from(u32::MAX), "hysteresis")
            {
                vs.hysteresis = v as u32;
            }
        }
        "quorum_up" => once_script(child, ctx, &mut vs.quorum_up),
        "quorum_down" => once_script(child, ctx, &mut vs.quorum_down),
        "weight" => {
            if let Some(t) = ctx.single(child, "a weight")
                && let Some(v) = ctx.uint_in(t, 1, u64::from(MAX_WEIGHT), "virtual server weight")
            {
                vs.weight = v as u32;
            }
        }
        "virtualhost" => {
            if let Some(t) = ctx.single(child, "a host name") {
                vs.virtualhost = Some(t.text.clone());
            }
        }
        "hashed" | "ops" | "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback"
        | "mh-port" | "mh-fallback" => ctx.not_acted_on(
            child,
            "IPVS scheduler flags are not supported yet; the service is created without them",
        ),
        "persistence_engine" => ctx.not_acted_on(
            child,
            "persistence engines (sip) are not supported; plain persistence applies",
        ),
        "smtp_alert" => ctx.not_acted_on(child, "flotilla sends no e-mail alerts"),
        "snmp_name" => ctx.not_acted_on(child, "flotilla has no SNMP agent"),
        _ => ctx.unknown_keyword(child, "virtual_server"),
    }
}

/// A script keyword keepalived accepts once ("already specified - ignoring").
fn once_script(node: &Node, ctx: &mut Ctx<'_>, slot: &mut Option<crate::model::Script>) {
    let s = ctx.script(node);
    if slot.is_some() {
        ctx.warning(
            node.span(),
            format!(
                "'{}' is already set; this one is ignored, as keepalived does",
                node.word()
            ),
        );
        return;
    }
    *slot = s;
}

fn real_server(node: &Node, ctx: &mut Ctx<'_>) -> Option<RsDraft> {
    ctx.extra_tokens(node, 2);
    let ip_tok = ctx.arg(node, 0, "an address")?;
    let ip = ctx.ip(ip_tok, "real server address")?;
    let port = match node.args.get(1) {
        Some(t) => match ctx.port(t, "real server port")? {
            0 => None,
            p => Some(p),
        },
        None => None,
    };
    let mut d = RsDraft {
        rs: RealServer {
            ip,
            port: 0,
            weight: 1,
            method: ForwardingMethod::Nat,
            inhibit_on_failure: false,
            alpha: false,
            notify_up: None,
            notify_down: None,
            uthreshold: 0,
            lthreshold: 0,
            virtualhost: None,
            checkers: Vec::new(),
            origin: Origin::at(node.span()),
        },
        port,
        weight: None,
        method: None,
        inhibit: None,
        alpha: None,
        timing: TimingDraft::default(),
        checkers: Vec::new(),
    };
    for child in ctx.block(node) {
        if check::timing_keyword(child, ctx, &mut d.timing, false) {
            continue;
        }
        match child.word() {
            "weight" => {
                if let Some(t) = ctx.single(child, "a weight")
                    && let Some(v) = ctx.uint_in(t, 0, u64::from(MAX_WEIGHT), "real server weight")
                {
                    d.weight = Some(v as u32);
                }
            }
            "lvs_method" => {
                ctx.no_block(child);
                if let Some(m) = forwarding_method(child, ctx) {
                    d.method = Some(m);
                }
            }
            "connect_timeout" => {
                d.timing.connect_timeout =
                    check::connect_timeout(child, ctx).or(d.timing.connect_timeout)
            }
            "inhibit_on_failure" => d.inhibit = Some(ctx.flag(child)),
            "alpha" => d.alpha = Some(ctx.flag(child)),
            "notify_up" => once_script(child, ctx, &mut d.rs.notify_up),
            "notify_down" => once_script(child, ctx, &mut d.rs.notify_down),
            "uthreshold" | "lthreshold" => {
                if let Some(t) = ctx.single(child, "a number of connections")
                    && let Some(v) = ctx.uint_in(t, 0, u64::from(u32::MAX), child.word())
                {
                    if child.word() == "uthreshold" {
                        d.rs.uthreshold = v as u32;
                    } else {
                        d.rs.lthreshold = v as u32;
                    }
                }
            }
            "virtualhost" => {
                if let Some(t) = ctx.single(child, "a host name") {
                    d.rs.virtualhost = Some(t.text.clone());
                }
            }
            "smtp_alert" => ctx.not_acted_on(child, "flotilla sends no e-mail alerts"),
            "snmp_name" => ctx.not_acted_on(child, "flotilla has no SNMP agent"),
            _ => {
                if let Some(c) = check::checker(child, ctx) {
                    d.checkers.push(c);
                }
            }
        }
    }
    Some(d)
}

/// Applies keepalived's defaults and inheritance to a finished `virtual_server` block.
fn resolve(node: &Node, ctx: &mut Ctx<'_>, d: VsDraft) -> Option<VirtualServer> {
    let VsDraft {
        mut vs,
        ip_family,
        sorry_method,
        real_servers,
        ..
    } = d;
    if real_servers.is_empty() {
        ctx.warning(
            node.span(),
            format!(
                "virtual_server {} has no real servers; keepalived ignores it, and so does flotilla",
                vs.key
            ),
        );
        return None;
    }
    if let Some(s) = &mut vs.sorry_server {
        s.method = sorry_method.unwrap_or(vs.method);
    }
    match &mut vs.key {
        VirtualServerKey::Addr { ip, port, .. } => {
            if let Some(f) = ip_family.filter(|f| *f != AddressFamily::of(ip)) {
                ctx.error(
                    node.span(),
                    format!(
                        "ip_family {} contradicts the virtual server address {ip}",
                        f.keyword()
                    ),
                );
            }
            if *port == 0 && vs.persistence.is_none() {
                ctx.error(
                    node.span(),
                    format!(
                        "virtual_server {ip} needs a port: only a persistent service (persistence_timeout) may omit it to cover all ports"
                    ),
                );
            }
        }
        VirtualServerKey::Fwmark { family, .. } => {
            // keepalived: ip_family, else the first server that is not tunnelled, else
            // the tunnelled ones when they agree, else IPv4.
            let methods = real_servers
                .iter()
                .map(|r| (r.rs.ip, r.method.unwrap_or(vs.method)))
                .chain(vs.sorry_server.iter().map(|s| (s.ip, s.method)));
            let direct = methods
                .clone()
                .find(|(_, m)| !matches!(m, ForwardingMethod::Tun(_)))
                .map(|(ip, _)| AddressFamily::of(&ip));
            let mut tunnelled = methods.map(|(ip, _)| AddressFamily::of(&ip));
            let first = tunnelled.next();
            let uniform = first.filter(|f| tunnelled.all(|g| g == *f));
            *family = ip_family
                .or(direct)
                .or(uniform)
                .unwrap_or(AddressFamily::Inet);
        }
        VirtualServerKey::Group { .. } => {}
    }
    let vs_port = match vs.key {
        VirtualServerKey::Addr { port, .. } => Some(port),
        _ => None,
    };
    let is_fwmark = matches!(vs.key, VirtualServerKey::Fwmark { .. });
    if let (Some(s), Some(vp)) = (&mut vs.sorry_server, vs_port)
        && s.method != ForwardingMethod::Nat
        && s.port != vp
    {
        if s.port != 0 {
            ctx.warning(
                    s.origin.0.unwrap_or(node.span()),
                    format!(
                        "the sorry server's port {} differs from the service's {vp}; a non-NAT sorry server uses the service's port (keepalived resets it too)",
                        s.port
                    ),
                );
        }
        s.port = vp;
    }
    if let Some(s) = &mut vs.sorry_server
        && is_fwmark
        && s.method != ForwardingMethod::Nat
        && s.port != 0
    {
        ctx.warning(
                s.origin.0.unwrap_or(node.span()),
                "a fwmark service's non-NAT sorry server takes no port; it is cleared (keepalived does the same)",
            );
        s.port = 0;
    }
    let mut weight_sum: u64 = 0;
    for r in real_servers {
        let rs = resolve_rs(ctx, &vs, r, vs_port, is_fwmark);
        weight_sum += u64::from(rs.weight);
        vs.real_servers.push(rs);
    }
    if u64::from(vs.quorum) > weight_sum && weight_sum > 0 {
        ctx.warning(
            node.span(),
            format!(
                "quorum {} exceeds the total weight of the real servers ({weight_sum}); it is lowered to {weight_sum}, as keepalived does",
                vs.quorum
            ),
        );
        vs.quorum = weight_sum as u32;
    }
    if vs.hysteresis >= vs.quorum {
        ctx.warning(
            node.span(),
            format!(
                "hysteresis {} must be below quorum {}; it is lowered to {}, as keepalived does",
                vs.hysteresis,
                vs.quorum,
                vs.quorum - 1
            ),
        );
        vs.hysteresis = vs.quorum - 1;
    }
    Some(vs)
}

fn resolve_rs(
    ctx: &mut Ctx<'_>,
    vs: &VirtualServer,
    d: RsDraft,
    vs_port: Option<u16>,
    is_fwmark: bool,
) -> RealServer {
    let mut rs = d.rs;
    rs.weight = d.weight.unwrap_or(vs.weight);
    rs.method = d.method.unwrap_or(vs.method);
    rs.inhibit_on_failure = d.inhibit.unwrap_or(vs.inhibit_on_failure);
    rs.alpha = d.alpha.unwrap_or(vs.alpha);
    let at = rs.origin.0;
    rs.port = match (vs_port, d.port) {
        (Some(vp), None) => vp,
        (Some(vp), Some(p)) if p != vp && rs.method != ForwardingMethod::Nat => {
            if let Some(span) = at {
                ctx.warning(
                    span,
                    format!(
                        "real server port {p} differs from the service's {vp}; without NAT the service's port is used (keepalived resets it too)"
                    ),
                );
            }
            vp
        }
        (_, Some(p)) if is_fwmark && rs.method != ForwardingMethod::Nat => {
            if let Some(span) = at {
                ctx.warning(
                    span,
                    format!("a fwmark service's non-NAT real server takes no port; {p} is cleared (keepalived does the same)"),
                );
            }
            0
        }
        (_, p) => p.unwrap_or(0),
    };
    let inherited = TimingDraft {
        retry: d.timing.retry.or(vs.retry),
        delay_before_retry: d.timing.delay_before_retry.or(vs.delay_before_retry),
        warmup: d.timing.warmup.or(vs.warmup),
        delay_loop: d.timing.delay_loop.or(Some(vs.delay_loop)),
        connect_timeout: d.timing.connect_timeout.or(Some(vs.connect_timeout)),
        alpha: Some(rs.alpha),
        log_all_failures: None,
    };
    let vhost = rs.virtualhost.as_ref().or(vs.virtualhost.as_ref());
    rs.checkers = d
        .checkers
        .into_iter()
        .map(|c| c.resolve(&inherited, vs.delay_loop, vhost))
        .collect();
    rs
}

/// The address family a virtual server's real servers must share, when it is known.
fn service_family(vs: &VirtualServer, lvs: &LvsSection) -> Option<AddressFamily> {
    match &vs.key {
        VirtualServerKey::Addr { ip, .. } => Some(AddressFamily::of(ip)),
        VirtualServerKey::Fwmark { family, .. } => Some(*family),
        VirtualServerKey::Group { name, .. } => lvs
            .group(name)
            .and_then(|g| g.entries.iter().find_map(GroupEntry::family)),
    }
}

fn first_at(origin: Origin) -> String {
    origin
        .0
        .map(|s| format!(" (the first is at line {})", s.line))
        .unwrap_or_default()
}

pub(crate) fn validate(cfg: &Config, ctx: &mut Ctx<'_>) {
    let lvs = &cfg.lvs;
    for (i, g) in lvs.virtual_server_groups.iter().enumerate() {
        if let Some(first) = lvs.virtual_server_groups[..i]
            .iter()
            .find(|o| o.name == g.name)
            && let Some(span) = g.origin.0
        {
            ctx.error(
                span,
                format!(
                    "virtual_server_group {} is defined twice{}",
                    g.name,
                    first_at(first.origin)
                ),
            );
        }
    }
    let mut services: HashMap<&VirtualServerKey, Origin> = HashMap::new();
    for vs in &lvs.virtual_servers {
        let Some(span) = vs.origin.0 else { continue };
        if let Some(first) = services.get(&vs.key) {
            let proto = vs
                .key
                .protocol()
                .map(|p| format!(" ({})", p.keyword()))
                .unwrap_or_default();
            ctx.error(
                span,
                format!(
                    "virtual_server {}{proto} is defined twice{}",
                    vs.key,
                    first_at(*first)
                ),
            );
        } else {
            services.insert(&vs.key, vs.origin);
        }
        if let VirtualServerKey::Group { name, .. } = &vs.key
            && lvs.group(name).is_none()
        {
            ctx.error(
                span,
                format!(
                    "virtual_server group {name}: no virtual_server_group named {name} is defined"
                ),
            );
        }
        let family = service_family(vs, lvs);
        let mut servers: HashMap<(IpAddr, u16), Origin> = HashMap::new();
        for rs in &vs.real_servers {
            let Some(rspan) = rs.origin.0 else { continue };
            link_local_checks(rs, ctx);
            if let Some(first) = servers.get(&(rs.ip, rs.port)) {
                ctx.error(
                    rspan,
                    format!(
                        "real_server {} {} appears twice in virtual_server {}{}",
                        rs.ip,
                        rs.port,
                        vs.key,
                        first_at(*first)
                    ),
                );
            } else {
                servers.insert((rs.ip, rs.port), rs.origin);
            }
            for c in &rs.checkers {
                if let crate::model::lvs::check::CheckerKind::File(f) = &c.kind
                    && cfg.vrrp.track_file(&f.track_file).is_none()
                {
                    ctx.error(
                        c.origin.0.unwrap_or(rspan),
                        format!(
                            "FILE_CHECK names track_file '{}', but no track_file block of that name is defined",
                            f.track_file
                        ),
                    );
                }
            }
            if let Some(f) = family
                && AddressFamily::of(&rs.ip) != f
                && !matches!(rs.method, ForwardingMethod::Tun(_))
            {
                ctx.error(
                        rspan,
                        format!(
                            "real server {} is {} but virtual_server {} is {}; only tunnelled (TUN) real servers may differ",
                            rs.ip,
                            family_word(AddressFamily::of(&rs.ip)),
                            vs.key,
                            family_word(f)
                        ),
                    );
            }
            if rs.uthreshold != 0 && rs.lthreshold != 0 && rs.uthreshold < rs.lthreshold {
                ctx.error(
                    rspan,
                    format!(
                        "real server {}: uthreshold {} is below lthreshold {}; the upper connection limit must not be below the lower",
                        rs.ip, rs.uthreshold, rs.lthreshold
                    ),
                );
            }
        }
        if let VirtualServerKey::Group { name, .. } = &vs.key
            && let Some(g) = lvs.group(name)
        {
            group_port_checks(vs, g, ctx);
        }
        if let (Some(s), Some(f)) = (&vs.sorry_server, family)
            && AddressFamily::of(&s.ip) != f
            && !matches!(s.method, ForwardingMethod::Tun(_))
            && let Some(sspan) = s.origin.0
        {
            ctx.error(
                        sspan,
                        format!(
                            "sorry server {} is {} but virtual_server {} is {}; only a tunnelled (TUN) sorry server may differ",
                            s.ip,
                            family_word(AddressFamily::of(&s.ip)),
                            vs.key,
                            family_word(f)
                        ),
                    );
        }
    }
}

/// keepalived (`check_data.c`): without NAT, IPVS forwards to the port the client used, so a
/// real or sorry server port that differs from a group entry's port, or any port behind a
/// fwmark entry, is ignored. Warned, as keepalived does.
fn group_port_checks(vs: &VirtualServer, g: &VirtualServerGroup, ctx: &mut Ctx<'_>) {
    let servers = vs
        .real_servers
        .iter()
        .map(|r| ("real server", r.ip, r.port, r.method, r.origin))
        .chain(
            vs.sorry_server
                .iter()
                .map(|s| ("sorry server", s.ip, s.port, s.method, s.origin)),
        );
    for (what, ip, port, method, origin) in servers {
        let Some(span) = origin.0 else { continue };
        if method == ForwardingMethod::Nat || port == 0 {
            continue;
        }
        let clash = g.entries.iter().find_map(|e| match e {
            GroupEntry::Fwmark { mark, .. } => Some(format!("fwmark {mark}")),
            GroupEntry::Addresses {
                first,
                last,
                port: p,
                ..
            } if *p != port => Some(format!("{} port {p}", values::range_text(first, last))),
            GroupEntry::Addresses { .. } => None,
        });
        if let Some(entry) = clash {
            ctx.warning(
                span,
                format!(
                    "{what} {ip} port {port} is ignored for group entry {entry} of {}: without NAT, IPVS forwards to the port the client used",
                    g.name
                ),
            );
        }
    }
}

/// keepalived `check_conn_opts`: a link-local IPv6 target is only reachable through a named
/// interface.
fn link_local_checks(rs: &RealServer, ctx: &mut Ctx<'_>) {
    for c in &rs.checkers {
        let Some(conn) = &c.connection else { continue };
        let target = conn.connect_ip.unwrap_or(rs.ip);
        let link_local = matches!(target, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
        if link_local
            && conn.bind_if.is_none()
            && let Some(span) = c.origin.0
        {
            ctx.error(
                    span,
                    format!(
                        "{} probes the link-local address {target}, which needs 'bind_if' to name the interface",
                        c.kind.keyword()
                    ),
                );
        }
    }
}

fn family_word(f: AddressFamily) -> &'static str {
    match f {
        AddressFamily::Inet => "IPv4",
        AddressFamily::Inet6 => "IPv6",
    }
}
