//! `global_defs`, the root-level scalars (`net_namespace`, `instance`, …) and the small
//! top-level blocks flotilla reads but does not act on (`linkbeat_interfaces`, `garp_group`,
//! `track_group`, `bfd_instance`, …).

use std::net::IpAddr;
use std::path::PathBuf;

use super::Ctx;
use crate::ast::Node;
use crate::model::Config;
use crate::model::common::{Micros, Origin};
use crate::model::global::{
    DynamicInterfaces, FlushOnStop, GlobalDefs, LvsSyncDaemon, NotifyFifo, ReloadCheck, ScriptUser,
    SmtpServer,
};
use crate::model::vrrp::VrrpVersion;
use crate::print::{Printer, word};

pub(crate) fn lower_top(node: &Node, ctx: &mut Ctx<'_>, cfg: &mut Config) -> bool {
    match node.word() {
        "global_defs" => {
            ctx.extra_tokens(node, 0);
            if let Some(span) = cfg.global.origin.0 {
                // keepalived merges repeated global_defs blocks; so do we, but say so.
                ctx.warning(
                    node.span(),
                    format!(
                        "a second global_defs block (the first is at line {}); its settings are merged into the first",
                        span.line
                    ),
                );
            } else {
                cfg.global.origin = Origin::at(node.span());
            }
            let mut g = std::mem::take(&mut cfg.global);
            global_defs(ctx, node, &mut g);
            cfg.global = g;
            // keepalived completes instances after the whole file is read, so global VRRP
            // defaults apply to instances written above global_defs too.
            for v in &mut cfg.vrrp.instances {
                let _ = super::vrrp::resolve(v, &cfg.global);
            }
        }
        "net_namespace" | "net_namespace_ipvs" | "namespace_with_ipsets" | "instance"
        | "use_pid_dir" | "child_wait_time" | "linkbeat_use_polling" => ctx.not_acted_on(
            node,
            "flotilla runs in the namespace it is started in, as one instance per host",
        ),
        "linkbeat_interfaces" => ctx.not_acted_on(
            node,
            "flotilla follows link state through netlink on every interface",
        ),
        "garp_group" => ctx.not_acted_on(
            node,
            "per-group GARP pacing is not implemented; vrrp_garp_interval / vrrp_gna_interval apply",
        ),
        "track_group" => ctx.not_acted_on(node, "track groups are not implemented"),
        "bfd_instance" => ctx.not_acted_on(node, "BFD is not implemented"),
        _ => return false,
    }
    true
}

/// Whether the garp keywords were written, to apply `vrrp_min_garp` and the lower-priority
/// defaults the way keepalived does.
#[derive(Default)]
struct GarpWritten {
    master_delay: bool,
    master_repeat: bool,
    master_refresh: bool,
    master_refresh_repeat: bool,
    lower_prio_delay: bool,
    lower_prio_repeat: bool,
    min_garp: bool,
}

fn single_text(ctx: &mut Ctx<'_>, c: &Node, what: &str) -> Option<String> {
    ctx.single(c, what).map(|t| t.text.clone())
}

fn uint(ctx: &mut Ctx<'_>, c: &Node, lo: u64, hi: u64, what: &str) -> Option<u64> {
    let t = ctx.single(c, what)?;
    ctx.uint_in(t, lo, hi, what)
}

fn whole_secs(ctx: &mut Ctx<'_>, c: &Node) -> Option<Micros> {
    uint(ctx, c, 0, u64::from(u32::MAX) / 1_000_000, c.word()).map(Micros::from_secs)
}

fn repeat(ctx: &mut Ctx<'_>, c: &Node) -> Option<u32> {
    let n = uint(ctx, c, 0, u64::from(u32::MAX), c.word())? as u32;
    if n == 0 {
        ctx.error(
            c.args[0].span,
            format!("{} must be greater than 0; keepalived uses 1", c.word()),
        );
        return Some(1);
    }
    Some(n)
}

/// `vrrp_garp_interval` / `vrrp_gna_interval`: seconds with µs resolution, at least 1 µs
/// (keepalived.md §2.1: 0 is rejected and the default kept).
fn pacing(ctx: &mut Ctx<'_>, c: &Node) -> Option<Micros> {
    let t = ctx.single(c, "a number of seconds")?;
    match t.text.parse::<Micros>() {
        Ok(Micros(0)) => {
            ctx.error(
                t.span,
                format!(
                    "{} 0 is outside range: the minimum is 0.000001 (1 µs); keepalived rejects it and keeps no pacing — remove the line to get that",
                    c.word()
                ),
            );
            None
        }
        _ => ctx.timer_in(t, Micros(1), Micros(u64::from(u32::MAX)), c.word()),
    }
}

fn fifo(ctx: &mut Ctx<'_>, c: &Node, slot: &mut Option<NotifyFifo>) {
    ctx.no_block(c);
    // `notify_fifo PATH [username [groupname]]`: the owner is accepted and not used.
    ctx.extra_tokens(c, 3);
    if let Some(t) = ctx.arg(c, 0, "a FIFO path") {
        let script = slot.take().and_then(|f| f.script);
        *slot = Some(NotifyFifo {
            path: PathBuf::from(&t.text),
            script,
        });
    }
}

fn fifo_script(ctx: &mut Ctx<'_>, c: &Node, slot: &mut Option<NotifyFifo>, fifo_kw: &str) {
    let Some(s) = ctx.script(c) else { return };
    match slot {
        Some(f) => f.script = Some(s),
        None => ctx.error(
            c.span(),
            format!("'{}' needs '{fifo_kw}' before it", c.word()),
        ),
    }
}

fn global_defs(ctx: &mut Ctx<'_>, node: &Node, g: &mut GlobalDefs) {
    let mut gw = GarpWritten::default();
    for c in ctx.block(node) {
        match c.word() {
            "router_id" => g.router_id = single_text(ctx, c, "a name").or(g.router_id.take()),
            "notification_email" => {
                ctx.extra_tokens(c, 0);
                for line in ctx.block(c) {
                    ctx.no_block(line);
                    g.email
                        .notification_email
                        .extend(line.words().map(|t| t.text.clone()));
                }
            }
            "notification_email_from" => {
                g.email.notification_email_from = single_text(ctx, c, "an email address")
                    .or(g.email.notification_email_from.take())
            }
            "smtp_server" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 2);
                if let Some(h) = ctx.arg(c, 0, "a host or address") {
                    let port = match c.args.get(1) {
                        Some(t) => ctx.port(t, "smtp port"),
                        None => Some(25),
                    };
                    if let Some(port) = port {
                        g.email.smtp_server = Some(SmtpServer {
                            host: h.text.clone(),
                            port,
                        });
                    }
                }
            }
            "smtp_helo_name" => {
                g.email.smtp_helo_name =
                    single_text(ctx, c, "a host name").or(g.email.smtp_helo_name.take())
            }
            "smtp_connect_timeout" => {
                if let Some(n) = repeat(ctx, c) {
                    g.email.smtp_connect_timeout = Micros::from_secs(u64::from(n).min(4294));
                }
            }
            "smtp_alert" => g.email.smtp_alert = Some(ctx.flag(c)),
            "smtp_alert_vrrp" => g.email.smtp_alert_vrrp = Some(ctx.flag(c)),
            "smtp_alert_checker" => g.email.smtp_alert_checker = Some(ctx.flag(c)),
            "no_email_faults" => g.email.no_email_faults = ctx.flag(c),
            "no_checker_emails" => g.email.no_checker_emails = ctx.flag(c),
            "checker_log_all_failures" => g.email.checker_log_all_failures = ctx.flag(c),
            "vrrp_strict" => g.vrrp_strict = ctx.flag(c),
            "vrrp_skip_check_adv_addr" => g.vrrp_skip_check_adv_addr = ctx.flag(c),
            "vrrp_version" => {
                if let Some(n) = uint(ctx, c, 2, 3, "vrrp_version") {
                    g.vrrp_version = if n == 2 {
                        VrrpVersion::V2
                    } else {
                        VrrpVersion::V3
                    };
                }
            }
            "vrrp_garp_master_delay" => {
                if let Some(t) = whole_secs(ctx, c) {
                    g.garp.master_delay = t;
                    gw.master_delay = true;
                }
            }
            "vrrp_garp_master_repeat" => {
                if let Some(n) = repeat(ctx, c) {
                    g.garp.master_repeat = n;
                    gw.master_repeat = true;
                }
            }
            "vrrp_garp_master_refresh" => {
                if let Some(t) = whole_secs(ctx, c) {
                    g.garp.master_refresh = t;
                    gw.master_refresh = true;
                }
            }
            "vrrp_garp_master_refresh_repeat" => {
                if let Some(n) = repeat(ctx, c) {
                    g.garp.master_refresh_repeat = n;
                    gw.master_refresh_repeat = true;
                }
            }
            "vrrp_garp_lower_prio_delay" => {
                if let Some(t) = whole_secs(ctx, c) {
                    g.garp.lower_prio_delay = t;
                    gw.lower_prio_delay = true;
                }
            }
            "vrrp_garp_lower_prio_repeat" => {
                if let Some(n) = uint(ctx, c, 0, i32::MAX as u64, "vrrp_garp_lower_prio_repeat") {
                    g.garp.lower_prio_repeat = n as u32;
                    gw.lower_prio_repeat = true;
                }
            }
            "vrrp_min_garp" => gw.min_garp = ctx.flag(c),
            "vrrp_garp_interval" => {
                g.vrrp_garp_interval = pacing(ctx, c).unwrap_or(g.vrrp_garp_interval)
            }
            "vrrp_gna_interval" => {
                g.vrrp_gna_interval = pacing(ctx, c).unwrap_or(g.vrrp_gna_interval)
            }
            "vrrp_mcast_group4" => {
                if let Some(t) = ctx.single(c, "an IPv4 multicast address") {
                    match ctx.ip(t, "vrrp_mcast_group4") {
                        Some(IpAddr::V4(ip)) if ip.is_multicast() => g.vrrp_mcast_group4 = ip,
                        Some(ip) => ctx.error(
                            t.span,
                            format!(
                                "vrrp_mcast_group4 {ip} is not an IPv4 multicast address; ignored"
                            ),
                        ),
                        None => {}
                    }
                }
            }
            "vrrp_mcast_group6" => {
                if let Some(t) = ctx.single(c, "an IPv6 multicast address") {
                    match ctx.ip(t, "vrrp_mcast_group6") {
                        Some(IpAddr::V6(ip)) if ip.is_multicast() => g.vrrp_mcast_group6 = ip,
                        Some(ip) => ctx.error(
                            t.span,
                            format!(
                                "vrrp_mcast_group6 {ip} is not an IPv6 multicast address; ignored"
                            ),
                        ),
                        None => {}
                    }
                }
            }
            "vrrp_check_unicast_src" => g.vrrp_check_unicast_src = ctx.flag(c),
            "vrrp_lower_prio_no_advert" => g.vrrp_lower_prio_no_advert = ctx.flag(c),
            "vrrp_higher_prio_send_advert" => g.vrrp_higher_prio_send_advert = ctx.flag(c),
            "vrrp_down_timer_adverts" => {
                if let Some(n) = uint(ctx, c, 1, 100, "vrrp_down_timer_adverts") {
                    g.vrrp_down_timer_adverts = n as u8;
                }
            }
            "vrrp_owner_ignore_adverts" => g.vrrp_owner_ignore_adverts = ctx.flag(c),
            "v3_checksum_as_v2" => g.v3_checksum_as_v2 = ctx.flag(c),
            "vrrp_startup_delay" | "vrrp_delay_after_boot" => {
                if let Some(t) = ctx.single(c, "a number of seconds") {
                    let max = Micros(u64::from(u32::MAX));
                    if let Some(d) = ctx.timer_in(t, Micros(1000), max, c.word()) {
                        if c.word() == "vrrp_startup_delay" {
                            g.vrrp_startup_delay = d;
                        } else {
                            g.vrrp_delay_after_boot = d;
                        }
                    }
                }
            }
            "vrrp_notify_priority_changes" => g.vrrp_notify_priority_changes = ctx.flag(c),
            "lvs_sync_daemon" => {
                g.lvs_sync_daemon = sync_daemon(ctx, c).or(g.lvs_sync_daemon.take())
            }
            "lvs_flush" => g.lvs_flush = ctx.flag(c),
            "lvs_flush_on_stop" | "lvs_flush_onstop" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 1);
                g.lvs_flush_on_stop = match c.args.first().map(|t| (t, t.text.as_str())) {
                    None => FlushOnStop::All,
                    Some((_, "VS")) => FlushOnStop::VirtualServers,
                    Some((t, other)) => {
                        ctx.error(
                            t.span,
                            format!("lvs_flush_on_stop takes nothing or 'VS', not '{other}'"),
                        );
                        g.lvs_flush_on_stop
                    }
                };
                if c.word() == "lvs_flush_onstop" {
                    ctx.warning(
                        c.span(),
                        "lvs_flush_onstop is deprecated; write lvs_flush_on_stop",
                    );
                }
            }
            "lvs_timeouts" => {
                ctx.no_block(c);
                let mut i = 0;
                while i < c.args.len() {
                    let k = &c.args[i];
                    let slot = match k.text.as_str() {
                        "tcp" => Some(&mut g.lvs_timeouts.tcp),
                        "tcpfin" => Some(&mut g.lvs_timeouts.tcpfin),
                        "udp" => Some(&mut g.lvs_timeouts.udp),
                        _ => None,
                    };
                    match (slot, c.args.get(i + 1)) {
                        (Some(slot), Some(v)) => {
                            if let Some(n) = ctx.uint_in(v, 0, 86400 * 31, k.text.as_str()) {
                                *slot = Some(n as u32);
                            }
                            i += 2;
                        }
                        _ => {
                            ctx.error(
                                k.span,
                                format!(
                                    "lvs_timeouts: expected 'tcp N', 'tcpfin N' or 'udp N' at '{}'",
                                    k.text
                                ),
                            );
                            break;
                        }
                    }
                }
            }
            "script_user" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 2);
                if let Some(u) = ctx.arg(c, 0, "a user name") {
                    g.script_user = Some(ScriptUser {
                        user: u.text.clone(),
                        group: c.arg_str(1).map(str::to_string),
                    });
                }
            }
            "enable_script_security" => g.enable_script_security = ctx.flag(c),
            "notify_fifo" => fifo(ctx, c, &mut g.notify_fifo),
            "notify_fifo_script" => fifo_script(ctx, c, &mut g.notify_fifo, "notify_fifo"),
            "vrrp_notify_fifo" => fifo(ctx, c, &mut g.vrrp_notify_fifo),
            "vrrp_notify_fifo_script" => {
                fifo_script(ctx, c, &mut g.vrrp_notify_fifo, "vrrp_notify_fifo")
            }
            "lvs_notify_fifo" => fifo(ctx, c, &mut g.lvs_notify_fifo),
            "lvs_notify_fifo_script" => {
                fifo_script(ctx, c, &mut g.lvs_notify_fifo, "lvs_notify_fifo")
            }
            "fifo_write_vrrp_states_on_reload" => g.fifo_write_vrrp_states_on_reload = ctx.flag(c),
            "dynamic_interfaces" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 1);
                g.dynamic_interfaces = match c.args.first().map(|t| (t, t.text.as_str())) {
                    None => DynamicInterfaces::On,
                    Some((_, "allow_if_changes")) => DynamicInterfaces::AllowIfChanges,
                    Some((t, other)) => {
                        ctx.error(
                            t.span,
                            format!("dynamic_interfaces takes nothing or 'allow_if_changes', not '{other}'"),
                        );
                        DynamicInterfaces::On
                    }
                };
            }
            "default_interface" => {
                if let Some(s) = single_text(ctx, c, "an interface name") {
                    g.default_interface = s;
                }
            }
            "reload_check_config" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 1);
                g.reload_check_config = Some(ReloadCheck {
                    log_file: c.arg_str(0).map(PathBuf::from),
                });
            }
            "reload_time_file" => {
                g.reload_time_file = single_text(ctx, c, "a file path")
                    .map(PathBuf::from)
                    .or(g.reload_time_file.take())
            }
            "reload_repeat" => g.reload_repeat = ctx.flag(c),
            kw if is_p2_global(kw) => ctx.not_acted_on(c, p2_reason(kw)),
            _ => ctx.unknown_keyword(c, "global_defs"),
        }
    }
    // keepalived: vrrp_min_garp lowers only the settings left at their defaults.
    if gw.min_garp {
        if !gw.master_repeat {
            g.garp.master_repeat = 1;
        }
        if !gw.master_refresh {
            g.garp.master_refresh = Micros(0);
        }
        if !gw.master_refresh_repeat {
            g.garp.master_refresh_repeat = 1;
        }
        if !gw.master_delay {
            g.garp.master_delay = Micros(0);
        }
    }
    if !gw.lower_prio_delay {
        g.garp.lower_prio_delay = g.garp.master_delay;
    }
    if !gw.lower_prio_repeat {
        g.garp.lower_prio_repeat = g.garp.master_repeat;
    }
}

/// `lvs_sync_daemon IF [VI] [id N] [maxlen N] [port N] [ttl N] [group IP]`.
fn sync_daemon(ctx: &mut Ctx<'_>, c: &Node) -> Option<LvsSyncDaemon> {
    ctx.no_block(c);
    let interface = ctx.arg(c, 0, "an interface")?.text.clone();
    let mut d = LvsSyncDaemon {
        interface,
        vrrp_instance: None,
        sync_id: 0,
        maxlen: None,
        port: 8848,
        ttl: None,
        group: None,
        origin: Origin::at(c.span()),
    };
    let mut i = 1;
    let args = &c.args;
    if let Some(t) = args.get(1)
        && !matches!(t.text.as_str(), "id" | "maxlen" | "port" | "ttl" | "group")
    {
        d.vrrp_instance = Some(t.text.clone());
        i = 2;
    }
    while i < args.len() {
        let k = &args[i];
        let Some(v) = args.get(i + 1) else {
            ctx.error(
                k.span,
                format!("lvs_sync_daemon option '{}' needs a value", k.text),
            );
            return None;
        };
        match k.text.as_str() {
            "id" => d.sync_id = ctx.uint_in(v, 0, 255, "sync id").map_or(0, |n| n as u8),
            "maxlen" => {
                d.maxlen = ctx
                    .uint_in(v, 1, 65535 - 20 - 8, "maxlen")
                    .map(|n| n as u16)
            }
            "port" => {
                d.port = ctx
                    .uint_in(v, 1, 65535, "sync port")
                    .map_or(8848, |n| n as u16)
            }
            "ttl" => d.ttl = ctx.uint_in(v, 1, 255, "ttl").map(|n| n as u8),
            "group" => d.group = ctx.ip(v, "sync group address"),
            other => {
                ctx.error(
                    k.span,
                    format!(
                        "unknown lvs_sync_daemon option '{other}' (id, maxlen, port, ttl, group)"
                    ),
                );
                return None;
            }
        }
        i += 2;
    }
    Some(d)
}

fn is_p2_global(kw: &str) -> bool {
    matches!(
        kw,
        "process_names"
            | "process_name"
            | "vrrp_process_name"
            | "checker_process_name"
            | "lvs_process_name"
            | "bfd_process_name"
            | "use_symlink_paths"
            | "set_supplementary_groups"
            | "startup_script"
            | "startup_script_timeout"
            | "shutdown_script"
            | "shutdown_script_timeout"
            | "max_auto_priority"
            | "min_auto_priority_delay"
            | "disable_local_igmp"
            | "vrrp_garp_extra_if"
            | "vrrp_vmac_garp_intvl"
            | "vrrp_iptables"
            | "vrrp_ipsets"
            | "nftables"
            | "nftables_priority"
            | "nftables_ifindex"
            | "nftables_ipvs"
            | "nftables_ipvs_priority"
            | "nftables_ipvs_start_fwmark"
            | "nftables_counters"
            | "snmp_socket"
            | "enable_traps"
            | "enable_snmp_vrrp"
            | "enable_snmp_keepalived"
            | "enable_snmp_rfc"
            | "enable_snmp_rfcv2"
            | "enable_snmp_rfcv3"
            | "enable_snmp_checker"
            | "snmp_vs_stats_update_interval"
            | "snmp_rs_stats_update_interval"
            | "enable_dbus"
            | "dbus_service_name"
            | "dbus_no_interface_name"
            | "rs_init_notifies"
            | "vrrp_rx_bufs_policy"
            | "vrrp_rx_bufs_multiplier"
            | "log_unknown_vrids"
            | "vmac_prefix"
            | "vmac_addr_prefix"
            | "umask"
            | "random_seed"
            | "reload_file"
            | "include_check"
            | "config_save_dir"
            | "tmp_config_directory"
            | "data_use_instance"
            | "json_version"
            | "iproute_usr_dir"
            | "iproute_etc_dir"
            | "state_dump_file"
            | "stats_dump_file"
            | "json_dump_file"
            | "linkbeat_use_polling"
    ) || kw.ends_with("_rcv_bufs")
        || kw.ends_with("_rcv_bufs_force")
        || (kw.starts_with("vrrp_") || kw.starts_with("checker_") || kw.starts_with("bfd_"))
            && (kw.ends_with("_priority")
                || kw.ends_with("_no_swap")
                || kw.ends_with("_rt_priority")
                || kw.ends_with("_cpu_affinity")
                || kw.ends_with("_rlimit_rttime")
                || kw.ends_with("_rlimit_rtime"))
}

fn p2_reason(kw: &str) -> &'static str {
    if kw.contains("snmp") || kw.contains("traps") {
        "SNMP is not implemented; flotilla exports Prometheus metrics"
    } else if kw.contains("dbus") {
        "DBus is not implemented"
    } else if kw.starts_with("nftables") || kw.starts_with("vrrp_ip") {
        "flotilla does not manage firewall rules"
    } else if kw.contains("priority")
        || kw.contains("no_swap")
        || kw.contains("affinity")
        || kw.contains("rlimit")
    {
        "process scheduling is set by the service manager"
    } else {
        "a keepalived process or debugging option with no flotilla equivalent"
    }
}

pub(crate) fn validate(cfg: &Config, ctx: &mut Ctx<'_>) {
    if let Some(d) = &cfg.global.lvs_sync_daemon
        && let (Some(vi), Some(span)) = (&d.vrrp_instance, d.origin.0)
        && cfg.vrrp.instance(vi).is_none()
    {
        ctx.error(
            span,
            format!("lvs_sync_daemon follows vrrp_instance '{vi}', which is not defined"),
        );
    }
}

/// Writes `global_defs` with only what differs from keepalived's defaults, so the block
/// says what the user chose and keepalived versions that predate a setting still read it.
pub(crate) fn print(cfg: &Config, p: &mut Printer) {
    let g = &cfg.global;
    let d = GlobalDefs::default();
    let mut b = p.child();
    global_lines(g, &d, &mut b);
    if !b.is_empty() {
        p.open(&["global_defs"]);
        p.splice(b);
        p.close();
        p.blank();
    }
}

fn global_lines(g: &GlobalDefs, d: &GlobalDefs, p: &mut Printer) {
    let line = |p: &mut Printer, kw: &str, v: String| p.line(&[kw.to_string(), v]);
    let onoff = |p: &mut Printer, kw: &str, b: bool| p.line(&[kw, if b { "on" } else { "off" }]);
    // All of these default to off and keepalived reads them without a value, so they are
    // written bare, and only when set.
    let flag = |p: &mut Printer, kw: &str, b: bool| {
        if b {
            p.line(&[kw]);
        }
    };
    let secs = |t: Micros| (t.0 / 1_000_000).to_string();
    if let Some(r) = &g.router_id {
        line(p, "router_id", word(r));
    }
    let e = &g.email;
    if !e.notification_email.is_empty() {
        p.open(&["notification_email"]);
        for a in &e.notification_email {
            p.line(&[word(a)]);
        }
        p.close();
    }
    if let Some(f) = &e.notification_email_from {
        line(p, "notification_email_from", word(f));
    }
    if let Some(s) = &e.smtp_server {
        let mut w = vec!["smtp_server".to_string(), word(&s.host)];
        if s.port != 25 {
            w.push(s.port.to_string());
        }
        p.line(&w);
    }
    if let Some(h) = &e.smtp_helo_name {
        line(p, "smtp_helo_name", word(h));
    }
    if e.smtp_connect_timeout != d.email.smtp_connect_timeout {
        line(p, "smtp_connect_timeout", secs(e.smtp_connect_timeout));
    }
    for (kw, v) in [
        ("smtp_alert", e.smtp_alert),
        ("smtp_alert_vrrp", e.smtp_alert_vrrp),
        ("smtp_alert_checker", e.smtp_alert_checker),
    ] {
        if let Some(b) = v {
            onoff(p, kw, b);
        }
    }
    flag(p, "no_email_faults", e.no_email_faults);
    flag(p, "no_checker_emails", e.no_checker_emails);
    flag(p, "checker_log_all_failures", e.checker_log_all_failures);
    flag(p, "vrrp_strict", g.vrrp_strict);
    flag(p, "vrrp_skip_check_adv_addr", g.vrrp_skip_check_adv_addr);
    if g.vrrp_version != d.vrrp_version {
        line(p, "vrrp_version", g.vrrp_version.number().to_string());
    }
    // The lower-priority GARP settings default to the master ones (read after them).
    let (ga, gd) = (&g.garp, &d.garp);
    for (kw, v, def) in [
        ("vrrp_garp_master_delay", ga.master_delay, gd.master_delay),
        (
            "vrrp_garp_master_refresh",
            ga.master_refresh,
            gd.master_refresh,
        ),
        (
            "vrrp_garp_lower_prio_delay",
            ga.lower_prio_delay,
            ga.master_delay,
        ),
    ] {
        if v != def {
            line(p, kw, secs(v));
        }
    }
    for (kw, v, def) in [
        (
            "vrrp_garp_master_repeat",
            ga.master_repeat,
            gd.master_repeat,
        ),
        (
            "vrrp_garp_master_refresh_repeat",
            ga.master_refresh_repeat,
            gd.master_refresh_repeat,
        ),
        (
            "vrrp_garp_lower_prio_repeat",
            ga.lower_prio_repeat,
            ga.master_repeat,
        ),
    ] {
        if v != def {
            line(p, kw, v.to_string());
        }
    }
    for (kw, t) in [
        ("vrrp_garp_interval", g.vrrp_garp_interval),
        ("vrrp_gna_interval", g.vrrp_gna_interval),
    ] {
        if t.0 > 0 {
            line(p, kw, t.keepalived_text());
        }
    }
    if g.vrrp_mcast_group4 != d.vrrp_mcast_group4 {
        line(p, "vrrp_mcast_group4", g.vrrp_mcast_group4.to_string());
    }
    if g.vrrp_mcast_group6 != d.vrrp_mcast_group6 {
        line(p, "vrrp_mcast_group6", g.vrrp_mcast_group6.to_string());
    }
    flag(p, "vrrp_check_unicast_src", g.vrrp_check_unicast_src);
    flag(p, "vrrp_lower_prio_no_advert", g.vrrp_lower_prio_no_advert);
    flag(
        p,
        "vrrp_higher_prio_send_advert",
        g.vrrp_higher_prio_send_advert,
    );
    if g.vrrp_down_timer_adverts != d.vrrp_down_timer_adverts {
        line(
            p,
            "vrrp_down_timer_adverts",
            g.vrrp_down_timer_adverts.to_string(),
        );
    }
    // keepalived 2.2.8 and later: written only when the file set it.
    flag(p, "vrrp_owner_ignore_adverts", g.vrrp_owner_ignore_adverts);
    flag(p, "v3_checksum_as_v2", g.v3_checksum_as_v2);
    for (kw, t) in [
        ("vrrp_startup_delay", g.vrrp_startup_delay),
        ("vrrp_delay_after_boot", g.vrrp_delay_after_boot),
    ] {
        if t.0 > 0 {
            line(p, kw, t.keepalived_text());
        }
    }
    flag(
        p,
        "vrrp_notify_priority_changes",
        g.vrrp_notify_priority_changes,
    );
    if let Some(s) = &g.lvs_sync_daemon {
        let mut w = vec!["lvs_sync_daemon".to_string(), word(&s.interface)];
        if let Some(vi) = &s.vrrp_instance {
            w.push(word(vi));
        }
        if s.sync_id != 0 {
            w.extend(["id".to_string(), s.sync_id.to_string()]);
        }
        if let Some(m) = s.maxlen {
            w.extend(["maxlen".to_string(), m.to_string()]);
        }
        if s.port != 8848 {
            w.extend(["port".to_string(), s.port.to_string()]);
        }
        if let Some(t) = s.ttl {
            w.extend(["ttl".to_string(), t.to_string()]);
        }
        if let Some(gr) = s.group {
            w.extend(["group".to_string(), gr.to_string()]);
        }
        p.line(&w);
    }
    flag(p, "lvs_flush", g.lvs_flush);
    match g.lvs_flush_on_stop {
        FlushOnStop::Off => {}
        FlushOnStop::All => p.line(&["lvs_flush_on_stop"]),
        FlushOnStop::VirtualServers => p.line(&["lvs_flush_on_stop", "VS"]),
    }
    let t = &g.lvs_timeouts;
    if t.tcp.is_some() || t.tcpfin.is_some() || t.udp.is_some() {
        let mut w = vec!["lvs_timeouts".to_string()];
        for (k, v) in [("tcp", t.tcp), ("tcpfin", t.tcpfin), ("udp", t.udp)] {
            if let Some(v) = v {
                w.extend([k.to_string(), v.to_string()]);
            }
        }
        p.line(&w);
    }
    if let Some(u) = &g.script_user {
        let mut w = vec!["script_user".to_string(), word(&u.user)];
        if let Some(gr) = &u.group {
            w.push(word(gr));
        }
        p.line(&w);
    }
    flag(p, "enable_script_security", g.enable_script_security);
    for (kw, f) in [
        ("notify_fifo", &g.notify_fifo),
        ("vrrp_notify_fifo", &g.vrrp_notify_fifo),
        ("lvs_notify_fifo", &g.lvs_notify_fifo),
    ] {
        if let Some(f) = f {
            line(p, kw, word(&f.path.to_string_lossy()));
            if let Some(s) = &f.script {
                line(p, &format!("{kw}_script"), s.keepalived_text());
            }
        }
    }
    flag(
        p,
        "fifo_write_vrrp_states_on_reload",
        g.fifo_write_vrrp_states_on_reload,
    );
    match g.dynamic_interfaces {
        DynamicInterfaces::Off => {}
        DynamicInterfaces::On => p.line(&["dynamic_interfaces"]),
        DynamicInterfaces::AllowIfChanges => p.line(&["dynamic_interfaces", "allow_if_changes"]),
    }
    if g.default_interface != d.default_interface {
        line(p, "default_interface", word(&g.default_interface));
    }
    if let Some(r) = &g.reload_check_config {
        let mut w = vec!["reload_check_config".to_string()];
        if let Some(l) = &r.log_file {
            w.push(word(&l.to_string_lossy()));
        }
        p.line(&w);
    }
    if let Some(f) = &g.reload_time_file {
        line(p, "reload_time_file", word(&f.to_string_lossy()));
    }
    flag(p, "reload_repeat", g.reload_repeat);
}
