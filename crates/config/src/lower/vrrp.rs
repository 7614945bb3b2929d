//! The VRRP blocks: `vrrp_instance`, `vrrp_sync_group`, `vrrp_script`, `track_file`
//! (`vrrp_track_file`), `vrrp_track_process` and `static_ipaddress`.
//!
//! An instance is read into its model with keepalived's defaults, and what the file wrote
//! itself is kept in [`Written`]. [`resolve`] then applies `global_defs` and keepalived's
//! "clear with a warning" rules; it runs again if `global_defs` comes later in the file, and
//! once more in [`validate`] to report what it changed.

mod addr;
mod print;
mod resolve;
mod route;
#[cfg(test)]
mod tests;
mod track;

use super::Ctx;
use crate::ast::Node;
use crate::model::Config;
use crate::model::common::{Micros, Origin};
use crate::model::global::GlobalDefs;
use crate::model::vrrp::{
    AuthType, Authentication, ChecksumCompat, InitialState, InterfaceDelay, Notify, SyncGroup,
    VrrpInstance, VrrpVersion, Written,
};

pub(crate) use print::print;
pub(crate) use resolve::{resolve, validate};

pub(crate) fn lower_top(node: &Node, ctx: &mut Ctx<'_>, cfg: &mut Config) -> bool {
    match node.word() {
        "vrrp_instance" => {
            if let Some(i) = instance(ctx, node, &cfg.global) {
                if let Some(first) = cfg.vrrp.instance(&i.name) {
                    let at = line_of(first.origin);
                    ctx.error(
                        node.span(),
                        format!(
                            "vrrp_instance {} is declared twice{at}; the second is ignored",
                            i.name
                        ),
                    );
                } else {
                    cfg.vrrp.instances.push(i);
                    group_defaults(cfg);
                }
            }
        }
        "vrrp_sync_group" => {
            if let Some(g) = sync_group(ctx, node) {
                if let Some(first) = cfg.vrrp.sync_groups.iter().find(|x| x.name == g.name) {
                    let at = line_of(first.origin);
                    ctx.error(
                        node.span(),
                        format!(
                            "vrrp_sync_group {} is declared twice{at}; the second is ignored",
                            g.name
                        ),
                    );
                } else {
                    cfg.vrrp.sync_groups.push(g);
                    group_defaults(cfg);
                }
            }
        }
        "vrrp_script" => {
            if let Some(s) = track::vrrp_script(ctx, node) {
                if let Some(first) = cfg.vrrp.script(&s.name) {
                    let at = line_of(first.origin);
                    ctx.error(
                        node.span(),
                        format!(
                            "vrrp_script {} is declared twice{at}; the second is ignored",
                            s.name
                        ),
                    );
                } else {
                    cfg.vrrp.scripts.push(s);
                }
            }
        }
        "track_file" | "vrrp_track_file" => {
            if let Some(s) = track::track_file(ctx, node) {
                if let Some(first) = cfg.vrrp.track_file(&s.name) {
                    let at = line_of(first.origin);
                    ctx.error(
                        node.span(),
                        format!(
                            "track_file {} is declared twice{at}; the second is ignored",
                            s.name
                        ),
                    );
                } else {
                    cfg.vrrp.track_files.push(s);
                }
            }
        }
        "vrrp_track_process" => {
            if let Some(s) = track::track_process(ctx, node) {
                if let Some(first) = cfg.vrrp.track_process(&s.name) {
                    let at = line_of(first.origin);
                    ctx.error(
                        node.span(),
                        format!(
                            "vrrp_track_process {} is declared twice{at}; the second is ignored",
                            s.name
                        ),
                    );
                } else {
                    cfg.vrrp.track_processes.push(s);
                }
            }
        }
        "static_ipaddress" => {
            ctx.extra_tokens(node, 0);
            for c in ctx.block(node) {
                if let Some(a) = addr::address(ctx, c) {
                    cfg.vrrp.static_addresses.push(a);
                }
            }
        }
        "interface_up_down_delays" => {
            ctx.extra_tokens(node, 0);
            for c in ctx.block(node) {
                if let Some(d) = interface_delay(ctx, c) {
                    if cfg
                        .vrrp
                        .interface_delays
                        .iter()
                        .any(|x| x.interface == d.interface)
                    {
                        ctx.error(
                            c.span(),
                            format!("interface {} has up/down delays twice", d.interface),
                        );
                    } else {
                        cfg.vrrp.interface_delays.push(d);
                    }
                }
            }
        }
        "static_routes" => {
            ctx.extra_tokens(node, 0);
            for c in ctx.block(node) {
                cfg.vrrp.static_routes.extend(route::route(ctx, c));
            }
        }
        "static_rules" => {
            ctx.extra_tokens(node, 0);
            for c in ctx.block(node) {
                cfg.vrrp.static_rules.extend(route::rule(ctx, c));
            }
        }
        _ => return false,
    }
    true
}

/// `IF DOWN [UP]`, seconds 0–255.
fn interface_delay(ctx: &mut Ctx<'_>, c: &Node) -> Option<InterfaceDelay> {
    ctx.no_block(c);
    ctx.extra_tokens(c, 2);
    let max = Micros::from_secs(255);
    let down = ctx.arg(c, 0, "a down delay in seconds")?;
    let down = ctx.timer_in(down, Micros(0), max, "down delay")?;
    let up = match c.args.get(1) {
        Some(t) => ctx.timer_in(t, Micros(0), max, "up delay")?,
        None => Micros(0),
    };
    Some(InterfaceDelay {
        interface: c.word().to_string(),
        down,
        up,
        origin: Origin::at(c.span()),
    })
}

/// Hands each sync group's `notify_priority_changes` to its members (keepalived resolves an
/// instance's value from the instance, then its group, then the globals).
fn group_defaults(cfg: &mut Config) {
    let groups = &cfg.vrrp.sync_groups;
    for v in &mut cfg.vrrp.instances {
        let from_group = groups
            .iter()
            .find(|g| g.members.contains(&v.name))
            .and_then(|g| g.notify_priority_changes);
        if v.written.group_notify_priority_changes != from_group {
            v.written.group_notify_priority_changes = from_group;
            let _ = resolve(v, &cfg.global);
        }
    }
}

/// " (the first is at line N)" for duplicate reports.
pub(super) fn line_of(origin: Origin) -> String {
    origin
        .0
        .map(|s| format!(" (the first is at line {})", s.line))
        .unwrap_or_default()
}

/// The name after a block keyword (`vrrp_instance NAME {`).
pub(super) fn name_arg(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<String> {
    ctx.extra_tokens(node, 1);
    ctx.arg(node, 0, what).map(|t| t.text.clone())
}

/// A scalar unsigned keyword.
pub(super) fn uint(ctx: &mut Ctx<'_>, node: &Node, lo: u64, hi: u64, what: &str) -> Option<u64> {
    let t = ctx.single(node, what)?;
    ctx.uint_in(t, lo, hi, what)
}

/// A scalar timer keyword (decimal seconds).
pub(super) fn timer(
    ctx: &mut Ctx<'_>,
    node: &Node,
    lo: Micros,
    hi: Micros,
    what: &str,
) -> Option<Micros> {
    let t = ctx.single(node, "a number of seconds")?;
    ctx.timer_in(t, lo, hi, what)
}

/// A scalar keyword holding whole seconds (keepalived's GARP delays).
fn whole_secs(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Micros> {
    uint(ctx, node, 0, u64::from(u32::MAX) / 1_000_000, what).map(Micros::from_secs)
}

/// A repeat count where keepalived turns 0 into 1 with an error.
fn repeat(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<u32> {
    let n = uint(ctx, node, 0, u64::from(u32::MAX), what)? as u32;
    if n == 0 {
        ctx.error(
            node.args[0].span,
            format!("{what} must be greater than 0; keepalived uses 1"),
        );
        return Some(1);
    }
    Some(n)
}

/// A flag keyword whose value is remembered as written.
fn written_flag(ctx: &mut Ctx<'_>, node: &Node) -> Option<bool> {
    Some(ctx.flag(node))
}

fn instance(ctx: &mut Ctx<'_>, node: &Node, g: &GlobalDefs) -> Option<VrrpInstance> {
    let name = name_arg(ctx, node, "the instance's name")?;
    let mut v = VrrpInstance::with_defaults(name, Origin::at(node.span()), g);
    let mut w = Written::default();
    let mut vrid_set = false;
    for c in ctx.block(node) {
        let span = c.span();
        match c.word() {
            "state" => {
                if let Some(t) = ctx.single(c, "MASTER or BACKUP") {
                    match t.text.as_str() {
                        "MASTER" => w.state = Some((InitialState::Master, span)),
                        "BACKUP" => {
                            if matches!(w.state, Some((InitialState::Master, _))) {
                                ctx.error(
                                    t.span,
                                    "state was already set to MASTER; keepalived ignores this BACKUP",
                                );
                            } else {
                                w.state = Some((InitialState::Backup, span));
                            }
                        }
                        other => {
                            ctx.error(
                                t.span,
                                format!("unknown state '{other}' (MASTER or BACKUP; keepalived uses BACKUP)"),
                            );
                            w.state = Some((InitialState::Backup, span));
                        }
                    }
                }
            }
            "interface" => {
                if let Some(t) = ctx.single(c, "an interface name") {
                    v.interface = Some(t.text.clone());
                    w.interface = Some(span);
                }
            }
            "virtual_router_id" => {
                if let Some(n) = uint(ctx, c, 1, 255, "virtual_router_id") {
                    v.vrid = n as u8;
                    vrid_set = true;
                }
            }
            "priority" => {
                if let Some(n) = uint(ctx, c, 1, 255, "priority") {
                    w.priority = Some((n as u8, span));
                }
            }
            "advert_int" => {
                if let Some(t) = timer(ctx, c, Micros(10_000), Micros::from_secs(255), "advert_int") {
                    w.advert_int = Some((t, c.args[0].span));
                }
            }
            "version" => {
                if let Some(n) = uint(ctx, c, 2, 3, "VRRP version") {
                    let ver = if n == 2 { VrrpVersion::V2 } else { VrrpVersion::V3 };
                    w.version = Some((ver, span));
                }
            }
            "nopreempt" => {
                if ctx.flag(c) {
                    w.nopreempt = Some(span);
                } else {
                    w.nopreempt = None;
                }
            }
            "preempt" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 0);
                w.nopreempt = None;
            }
            "preempt_delay" => {
                if let Some(t) = timer(ctx, c, Micros(0), Micros::from_secs(1000), "preempt_delay") {
                    w.preempt_delay = Some((t, span));
                }
            }
            "authentication" => {
                ctx.extra_tokens(c, 0);
                w.authentication = authentication(ctx, c).map(|a| (a, span));
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                ctx.extra_tokens(c, 0);
                let excluded = c.word() == "virtual_ipaddress_excluded";
                for line in ctx.block(c) {
                    if let Some(a) = addr::address(ctx, line) {
                        if excluded {
                            v.excluded_addresses.push(a);
                        } else {
                            v.virtual_addresses.push(a);
                        }
                    }
                }
            }
            "no_virtual_ipaddress" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 0);
                w.no_virtual_ipaddress = Some(span);
            }
            "unicast_src_ip" => {
                if let Some(t) = ctx.single(c, "an IP address") {
                    v.unicast_src_ip = ctx.ip(t, "unicast_src_ip").or(v.unicast_src_ip);
                    w.unicast_src_ip = Some(span);
                }
            }
            "unicast_peer" => {
                ctx.extra_tokens(c, 0);
                w.unicast_peer = Some(span);
                for line in ctx.block(c) {
                    if let Some(p) = addr::peer(ctx, line) {
                        if v.unicast_peers.iter().any(|q| q.address == p.address) {
                            ctx.error(
                                line.span(),
                                format!("unicast peer {} is listed twice", p.address),
                            );
                        } else {
                            v.unicast_peers.push(p);
                        }
                    }
                }
            }
            "unicast_ttl" => {
                if let Some(n) = uint(ctx, c, 0, 255, "unicast_ttl") {
                    v.unicast_ttl = n as u8;
                }
            }
            "check_unicast_src" => w.check_unicast_src = written_flag(ctx, c),
            "unicast_fault_no_peer" => v.unicast_fault_no_peer = ctx.flag(c),
            "mcast_src_ip" => {
                if let Some(t) = ctx.single(c, "an IP address") {
                    v.mcast_src_ip = ctx.ip(t, "mcast_src_ip").or(v.mcast_src_ip);
                }
            }
            "mcast_dst_ip" => {
                if let Some(t) = ctx.single(c, "a multicast address")
                    && let Some(ip) = ctx.ip(t, "mcast_dst_ip") {
                        if ip.is_multicast() {
                            v.mcast_dst_ip = Some(ip);
                            w.mcast_dst_ip = Some(span);
                        } else {
                            ctx.error(t.span, format!("mcast_dst_ip {ip} is not a multicast address"));
                        }
                    }
            }
            "track_interface" => v.track_interfaces = track::interfaces(ctx, c, &v.name),
            "dont_track_primary" => v.dont_track_primary = ctx.flag(c),
            "track_script" => v.track_scripts = track::refs(ctx, c, &v.name),
            "track_file" => v.track_files = track::refs(ctx, c, &v.name),
            "track_process" => v.track_processes = track::refs(ctx, c, &v.name),
            "notify_master" => v.notify.master = ctx.script(c).or(v.notify.master.take()),
            "notify_backup" => v.notify.backup = ctx.script(c).or(v.notify.backup.take()),
            "notify_fault" => v.notify.fault = ctx.script(c).or(v.notify.fault.take()),
            "notify_stop" => v.notify.stop = ctx.script(c).or(v.notify.stop.take()),
            "notify" => v.notify.any = ctx.script(c).or(v.notify.any.take()),
            "notify_deleted" => v.notify_deleted = ctx.script(c).or(v.notify_deleted.take()),
            "notify_master_rx_lower_pri" => {
                v.notify_master_rx_lower_pri =
                    ctx.script(c).or(v.notify_master_rx_lower_pri.take())
            }
            "notify_priority_changes" => w.notify_priority_changes = written_flag(ctx, c),
            "smtp_alert" => w.smtp_alert = Some(ctx.flag(c)),
            "garp_master_delay" => {
                w.garp_master_delay = whole_secs(ctx, c, "garp_master_delay").or(w.garp_master_delay)
            }
            "garp_master_repeat" => {
                w.garp_master_repeat = repeat(ctx, c, "garp_master_repeat").or(w.garp_master_repeat)
            }
            "garp_master_refresh" => {
                w.garp_master_refresh =
                    whole_secs(ctx, c, "garp_master_refresh").or(w.garp_master_refresh)
            }
            "garp_master_refresh_repeat" => {
                w.garp_master_refresh_repeat = repeat(ctx, c, "garp_master_refresh_repeat")
                    .or(w.garp_master_refresh_repeat)
            }
            "garp_lower_prio_delay" => {
                w.garp_lower_prio_delay =
                    whole_secs(ctx, c, "garp_lower_prio_delay").or(w.garp_lower_prio_delay)
            }
            "garp_lower_prio_repeat" => {
                w.garp_lower_prio_repeat = uint(ctx, c, 0, i32::MAX as u64, "garp_lower_prio_repeat")
                    .map(|n| n as u32)
                    .or(w.garp_lower_prio_repeat)
            }
            "accept" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 0);
                w.accept = Some((true, span));
            }
            "no_accept" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 0);
                w.accept = Some((false, span));
            }
            "strict_mode" => w.strict_mode = written_flag(ctx, c),
            "skip_check_adv_addr" => w.skip_check_adv_addr = written_flag(ctx, c),
            "lower_prio_no_advert" => w.lower_prio_no_advert = written_flag(ctx, c),
            "higher_prio_send_advert" => w.higher_prio_send_advert = written_flag(ctx, c),
            "owner_ignore_adverts" => w.owner_ignore_adverts = written_flag(ctx, c),
            "v3_checksum_as_v2" => w.v3_checksum_as_v2 = written_flag(ctx, c),
            "down_timer_adverts" => {
                if let Some(n) = uint(ctx, c, 1, 100, "down_timer_adverts") {
                    w.down_timer_adverts = Some((n as u8, span));
                }
            }
            "use_vmac" | "use_vmac_addr" | "vmac_xmit_base" | "use_ipvlan" => ctx.not_acted_on(
                c,
                "flotilla sends from the interface's own MAC and announces it with gratuitous ARP/NA",
            ),
            "auth_hmac" => ctx.not_acted_on(
                c,
                "keepalived 2.4's HMAC trailer is not implemented; adverts go without it",
            ),
            "virtual_routes" => {
                ctx.extra_tokens(c, 0);
                for line in ctx.block(c) {
                    v.virtual_routes.extend(route::route(ctx, line));
                }
            }
            "virtual_rules" => {
                ctx.extra_tokens(c, 0);
                for line in ctx.block(c) {
                    v.virtual_rules.extend(route::rule(ctx, line));
                }
            }
            "track_bfd" => ctx.not_acted_on(c, "BFD is not implemented"),
            "old_unicast_checksum" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 1);
                v.unicast_checksum_compat = match c.args.first() {
                    None => ChecksumCompat::Old,
                    Some(t) if t.text == "never" => ChecksumCompat::Never,
                    Some(t) => {
                        ctx.error(
                            t.span,
                            format!("old_unicast_checksum takes nothing or 'never', not '{}'", t.text),
                        );
                        v.unicast_checksum_compat
                    }
                };
            }
            "timer_expired_backup" | "thread_timer_expired" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 1);
                let prio = match c.args.first() {
                    None => Some(254),
                    Some(t) => ctx
                        .uint_in(t, 1, 254, "timer_expired_backup priority")
                        .map(|n| n as u8),
                };
                if let Some(p) = prio {
                    w.timer_expired_backup = Some((p, span));
                }
            }
            "track_src_ip" | "promote_secondaries" | "kernel_rx_buf_size" | "vrf" | "debug"
            | "linkbeat_use_polling" | "garp_extra_if"
            | "vmac_garp_intvl" => {
                ctx.not_acted_on(c, "a keepalived tuning option flotilla does not implement")
            }
            "native_ipv6" | "lvs_sync_daemon_interface" => ctx.not_acted_on(
                c,
                "deprecated in keepalived and not implemented (use global_defs lvs_sync_daemon)",
            ),
            _ => ctx.unknown_keyword(c, "vrrp_instance"),
        }
    }
    if !vrid_set {
        ctx.error(
            node.span(),
            format!(
                "vrrp_instance {} needs 'virtual_router_id 1-255' (keepalived refuses the instance)",
                v.name
            ),
        );
        return None;
    }
    v.written = w;
    resolve(&mut v, g);
    Some(v)
}

/// `authentication { auth_type PASS|AH; auth_pass SECRET }`.
fn authentication(ctx: &mut Ctx<'_>, node: &Node) -> Option<Authentication> {
    let mut auth_type = None;
    let mut password = None;
    for c in ctx.block(node) {
        match c.word() {
            "auth_type" => {
                if let Some(t) = ctx.single(c, "PASS or AH") {
                    match t.text.as_str() {
                        "PASS" => auth_type = Some(AuthType::Pass),
                        "AH" => auth_type = Some(AuthType::Ah),
                        other => {
                            ctx.error(t.span, format!("unknown auth_type '{other}' (PASS or AH)"))
                        }
                    }
                }
            }
            "auth_pass" => {
                if let Some(t) = ctx.single(c, "a password") {
                    let mut p = t.text.clone();
                    if p.len() > 8 {
                        ctx.warning(
                            t.span,
                            "auth_pass is longer than 8 characters; only the first 8 are used (VRRPv2 carries 8 bytes)",
                        );
                        let mut cut = 8;
                        while !p.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        p.truncate(cut);
                    }
                    password = Some(p);
                }
            }
            _ => ctx.unknown_keyword(c, "authentication"),
        }
    }
    let auth_type = auth_type?;
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        ctx.error(
            node.span(),
            "authentication without auth_pass; keepalived ignores the authentication",
        );
        return None;
    };
    Some(Authentication {
        auth_type,
        password,
    })
}

fn sync_group(ctx: &mut Ctx<'_>, node: &Node) -> Option<SyncGroup> {
    let name = name_arg(ctx, node, "the group's name")?;
    let mut g = SyncGroup {
        name,
        members: Vec::new(),
        notify: Notify::default(),
        smtp_alert: None,
        notify_priority_changes: None,
        track_interfaces: Vec::new(),
        track_scripts: Vec::new(),
        track_files: Vec::new(),
        track_processes: Vec::new(),
        origin: Origin::at(node.span()),
    };
    for c in ctx.block(node) {
        match c.word() {
            "group" => {
                ctx.extra_tokens(c, 0);
                for m in ctx.block(c) {
                    ctx.no_block(m);
                    for t in m.words() {
                        if g.members.contains(&t.text) {
                            ctx.error(
                                t.span,
                                format!("instance {} is listed twice in sync group {}", t.text, g.name),
                            );
                        } else {
                            g.members.push(t.text.clone());
                        }
                    }
                }
            }
            "notify_master" => g.notify.master = ctx.script(c).or(g.notify.master.take()),
            "notify_backup" => g.notify.backup = ctx.script(c).or(g.notify.backup.take()),
            "notify_fault" => g.notify.fault = ctx.script(c).or(g.notify.fault.take()),
            "notify_stop" => g.notify.stop = ctx.script(c).or(g.notify.stop.take()),
            "notify" => g.notify.any = ctx.script(c).or(g.notify.any.take()),
            "smtp_alert" => g.smtp_alert = Some(ctx.flag(c)),
            "notify_priority_changes" => g.notify_priority_changes = Some(ctx.flag(c)),
            "track_interface" => g.track_interfaces = track::interfaces(ctx, c, &g.name),
            "track_script" => g.track_scripts = track::refs(ctx, c, &g.name),
            "track_file" => g.track_files = track::refs(ctx, c, &g.name),
            "track_process" => g.track_processes = track::refs(ctx, c, &g.name),
            "track_bfd" => ctx.not_acted_on(c, "BFD is not implemented"),
            "sync_group_tracking_weight" | "global_tracking" => ctx.not_acted_on(
                c,
                "weighted trackers on sync-group members are not supported; their weights are ignored",
            ),
            _ => ctx.unknown_keyword(c, "vrrp_sync_group"),
        }
    }
    if g.members.is_empty() {
        ctx.error(
            node.span(),
            format!(
                "sync group {} has no members; write them as 'group {{ VI_1 VI_2 }}' (keepalived drops the group)",
                g.name
            ),
        );
        return None;
    }
    Some(g)
}
