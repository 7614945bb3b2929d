//! `global_defs`: node-wide settings, with keepalived's defaults filled in. The VRRP
//! defaults here (`vrrp_version`, GARP policy, strictness, …) are already folded into each
//! [`crate::model::vrrp::VrrpInstance`]; they are kept here so the configuration prints back
//! unchanged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::common::{Micros, Origin, Script};
use super::vrrp::VrrpVersion;

/// The multicast group of VRRP over IPv4 (RFC 5798 §5.1.1.2).
pub const VRRP_MCAST_GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The multicast group of VRRP over IPv6 (RFC 5798 §5.1.2.2).
pub const VRRP_MCAST_GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// `global_defs { … }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalDefs {
    /// `router_id`; `None` means the host name.
    pub router_id: Option<String>,
    pub email: EmailSettings,
    /// `vrrp_strict`: RFC strictness for every instance that does not say `strict_mode`.
    pub vrrp_strict: bool,
    /// `vrrp_skip_check_adv_addr`.
    pub vrrp_skip_check_adv_addr: bool,
    /// `vrrp_version` (2): the version of IPv4 instances that do not say `version`.
    pub vrrp_version: VrrpVersion,
    pub garp: GarpDefaults,
    /// `vrrp_garp_interval`: pause between GARPs on one interface; zero = no pause.
    pub vrrp_garp_interval: Micros,
    /// `vrrp_gna_interval`: pause between unsolicited NAs on one interface; zero = no pause.
    pub vrrp_gna_interval: Micros,
    /// `vrrp_mcast_group4` (224.0.0.18).
    pub vrrp_mcast_group4: Ipv4Addr,
    /// `vrrp_mcast_group6` (ff02::12).
    pub vrrp_mcast_group6: Ipv6Addr,
    /// `vrrp_check_unicast_src`.
    pub vrrp_check_unicast_src: bool,
    /// `vrrp_lower_prio_no_advert`.
    pub vrrp_lower_prio_no_advert: bool,
    /// `vrrp_higher_prio_send_advert`.
    pub vrrp_higher_prio_send_advert: bool,
    /// `vrrp_down_timer_adverts` 1–100 (3).
    pub vrrp_down_timer_adverts: u8,
    /// `vrrp_owner_ignore_adverts`.
    pub vrrp_owner_ignore_adverts: bool,
    /// `v3_checksum_as_v2`: VRRPv3 IPv4 checksum without the pseudo-header.
    pub v3_checksum_as_v2: bool,
    /// `vrrp_startup_delay`: adverts are ignored and no transition happens for this long.
    pub vrrp_startup_delay: Micros,
    /// `vrrp_delay_after_boot`: like `vrrp_startup_delay`, counted from boot.
    pub vrrp_delay_after_boot: Micros,
    /// `vrrp_notify_priority_changes`.
    pub vrrp_notify_priority_changes: bool,
    /// `lvs_sync_daemon`.
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// `lvs_flush`: flush IPVS at startup.
    pub lvs_flush: bool,
    /// `lvs_flush_on_stop`.
    pub lvs_flush_on_stop: FlushOnStop,
    /// `lvs_timeouts`: `None` leaves the kernel's value.
    pub lvs_timeouts: LvsTimeouts,
    /// `script_user USER [GROUP]`.
    pub script_user: Option<ScriptUser>,
    /// `enable_script_security`.
    pub enable_script_security: bool,
    /// `notify_fifo PATH [owner…]` + `notify_fifo_script`.
    pub notify_fifo: Option<NotifyFifo>,
    /// `vrrp_notify_fifo` + `vrrp_notify_fifo_script`.
    pub vrrp_notify_fifo: Option<NotifyFifo>,
    /// `lvs_notify_fifo` + `lvs_notify_fifo_script`.
    pub lvs_notify_fifo: Option<NotifyFifo>,
    /// `fifo_write_vrrp_states_on_reload`.
    pub fifo_write_vrrp_states_on_reload: bool,
    /// `dynamic_interfaces [allow_if_changes]`.
    pub dynamic_interfaces: DynamicInterfaces,
    /// `default_interface` (eth0): where static addresses without `dev` go.
    pub default_interface: String,
    /// `reload_check_config [LOG]`.
    pub reload_check_config: Option<ReloadCheck>,
    /// `reload_time_file PATH`.
    pub reload_time_file: Option<PathBuf>,
    /// `reload_repeat`.
    pub reload_repeat: bool,
    #[serde(skip)]
    pub origin: Origin,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            email: EmailSettings::default(),
            vrrp_strict: false,
            vrrp_skip_check_adv_addr: false,
            vrrp_version: VrrpVersion::V2,
            garp: GarpDefaults::default(),
            vrrp_garp_interval: Micros(0),
            vrrp_gna_interval: Micros(0),
            vrrp_mcast_group4: VRRP_MCAST_GROUP4,
            vrrp_mcast_group6: VRRP_MCAST_GROUP6,
            vrrp_check_unicast_src: false,
            vrrp_lower_prio_no_advert: false,
            vrrp_higher_prio_send_advert: false,
            vrrp_down_timer_adverts: 3,
            vrrp_owner_ignore_adverts: false,
            v3_checksum_as_v2: false,
            vrrp_startup_delay: Micros(0),
            vrrp_delay_after_boot: Micros(0),
            vrrp_notify_priority_changes: false,
            lvs_sync_daemon: None,
            lvs_flush: false,
            lvs_flush_on_stop: FlushOnStop::Off,
            lvs_timeouts: LvsTimeouts::default(),
            script_user: None,
            enable_script_security: false,
            notify_fifo: None,
            vrrp_notify_fifo: None,
            lvs_notify_fifo: None,
            fifo_write_vrrp_states_on_reload: false,
            dynamic_interfaces: DynamicInterfaces::Off,
            default_interface: "eth0".to_string(),
            reload_check_config: None,
            reload_time_file: None,
            reload_repeat: false,
            origin: Origin::default(),
        }
    }
}

/// Email alerting (parsed; flotilla does not send mail yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailSettings {
    /// `notification_email { ADDR… }`.
    pub notification_email: Vec<String>,
    /// `notification_email_from`.
    pub notification_email_from: Option<String>,
    /// `smtp_server HOST [PORT]`.
    pub smtp_server: Option<SmtpServer>,
    /// `smtp_helo_name`.
    pub smtp_helo_name: Option<String>,
    /// `smtp_connect_timeout` in whole seconds (30).
    pub smtp_connect_timeout: Micros,
    /// `smtp_alert`, `smtp_alert_vrrp`, `smtp_alert_checker`: `None` when not written.
    pub smtp_alert: Option<bool>,
    pub smtp_alert_vrrp: Option<bool>,
    pub smtp_alert_checker: Option<bool>,
    /// `no_email_faults`.
    pub no_email_faults: bool,
    /// `no_checker_emails`.
    pub no_checker_emails: bool,
    /// `checker_log_all_failures`.
    pub checker_log_all_failures: bool,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_helo_name: None,
            smtp_connect_timeout: Micros::from_secs(30),
            smtp_alert: None,
            smtp_alert_vrrp: None,
            smtp_alert_checker: None,
            no_email_faults: false,
            no_checker_emails: false,
            checker_log_all_failures: false,
        }
    }
}

/// `smtp_server HOST [PORT]`: an address or a host name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpServer {
    pub host: String,
    /// 25 when not written.
    pub port: u16,
}

/// The global GARP/NA policy (keepalived.md §3.6), resolved: `vrrp_min_garp` and the
/// lower-priority defaults are already applied. Instances copy what they do not override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GarpDefaults {
    /// `vrrp_garp_master_delay` (5 s; 0 = no second burst).
    pub master_delay: Micros,
    /// `vrrp_garp_master_repeat` (5).
    pub master_repeat: u32,
    /// `vrrp_garp_master_refresh` (0 = off).
    pub master_refresh: Micros,
    /// `vrrp_garp_master_refresh_repeat` (1).
    pub master_refresh_repeat: u32,
    /// `vrrp_garp_lower_prio_delay` (= master_delay).
    pub lower_prio_delay: Micros,
    /// `vrrp_garp_lower_prio_repeat` (= master_repeat).
    pub lower_prio_repeat: u32,
}

impl Default for GarpDefaults {
    fn default() -> Self {
        GarpDefaults {
            master_delay: Micros::from_secs(5),
            master_repeat: 5,
            master_refresh: Micros(0),
            master_refresh_repeat: 1,
            lower_prio_delay: Micros::from_secs(5),
            lower_prio_repeat: 5,
        }
    }
}

/// `lvs_sync_daemon IF [VI] [id N] [maxlen N] [port N] [ttl N] [group IP]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvsSyncDaemon {
    pub interface: String,
    /// The VRRP instance whose state picks master or backup; `None` runs both.
    pub vrrp_instance: Option<String>,
    /// `id` 0–255 (0 when not written, as in the kernel).
    pub sync_id: u8,
    pub maxlen: Option<u16>,
    /// `port` (8848).
    pub port: u16,
    pub ttl: Option<u8>,
    pub group: Option<IpAddr>,
    #[serde(skip)]
    pub origin: Origin,
}

/// `lvs_flush_on_stop [VS]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlushOnStop {
    /// Not written: real servers are removed one by one.
    Off,
    /// `lvs_flush_on_stop`: the whole IPVS table.
    All,
    /// `lvs_flush_on_stop VS`: each configured virtual server.
    VirtualServers,
}

/// `lvs_timeouts [tcp N] [tcpfin N] [udp N]`, seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvsTimeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

/// `script_user USER [GROUP]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

/// A FIFO for line-based events, and an optional script reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyFifo {
    pub path: PathBuf,
    pub script: Option<Script>,
}

/// `dynamic_interfaces [allow_if_changes]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DynamicInterfaces {
    Off,
    On,
    AllowIfChanges,
}

/// `reload_check_config [LOGFILE]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadCheck {
    pub log_file: Option<PathBuf>,
}

#[cfg(test)]
pub(crate) mod arb {
    use proptest::prelude::*;

    use super::*;

    pub(crate) fn ident() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_]{0,8}"
    }

    fn micros_secs(max: u64) -> impl Strategy<Value = Micros> {
        (0..=max).prop_map(Micros::from_secs)
    }

    fn fifo() -> impl Strategy<Value = Option<NotifyFifo>> {
        proptest::option::of(
            (
                "/run/[a-z]{1,6}",
                proptest::option::of(proptest::collection::vec(ident(), 1..3)),
            )
                .prop_map(|(p, argv)| NotifyFifo {
                    path: PathBuf::from(p),
                    script: argv.map(|argv| Script {
                        argv,
                        user: None,
                        group: None,
                    }),
                }),
        )
    }

    fn email() -> impl Strategy<Value = EmailSettings> {
        (
            proptest::collection::vec("[a-z]{1,5}@[a-z]{1,5}\\.com", 0..3),
            proptest::option::of("[a-z]{1,5}@[a-z]{1,5}\\.com"),
            proptest::option::of(("[a-z]{1,6}\\.example|10\\.0\\.0\\.[1-9]", 1u16..)),
            proptest::option::of(ident()),
            1u64..100,
            (
                proptest::option::of(any::<bool>()),
                proptest::option::of(any::<bool>()),
                proptest::option::of(any::<bool>()),
            ),
            (any::<bool>(), any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |(to, from, server, helo, timeout, alerts, flags)| EmailSettings {
                    notification_email: to,
                    notification_email_from: from,
                    smtp_server: server.map(|(host, port)| SmtpServer { host, port }),
                    smtp_helo_name: helo,
                    smtp_connect_timeout: Micros::from_secs(timeout),
                    smtp_alert: alerts.0,
                    smtp_alert_vrrp: alerts.1,
                    smtp_alert_checker: alerts.2,
                    no_email_faults: flags.0,
                    no_checker_emails: flags.1,
                    checker_log_all_failures: flags.2,
                },
            )
    }

    fn garp() -> impl Strategy<Value = GarpDefaults> {
        (
            micros_secs(20),
            1u32..10,
            micros_secs(100),
            1u32..5,
            micros_secs(20),
            0u32..10,
        )
            .prop_map(|(d, r, rf, rfr, ld, lr)| GarpDefaults {
                master_delay: d,
                master_repeat: r,
                master_refresh: rf,
                master_refresh_repeat: rfr,
                lower_prio_delay: ld,
                lower_prio_repeat: lr,
            })
    }

    fn sync_daemon() -> impl Strategy<Value = Option<LvsSyncDaemon>> {
        proptest::option::of(
            (
                "eth[0-3]",
                any::<u8>(),
                proptest::option::of(1u16..1500),
                1u16..,
                proptest::option::of(1u8..),
                proptest::option::of(Just(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81)))),
            )
                .prop_map(|(interface, sync_id, maxlen, port, ttl, group)| {
                    LvsSyncDaemon {
                        interface,
                        vrrp_instance: None,
                        sync_id,
                        maxlen,
                        port,
                        ttl,
                        group,
                        origin: Origin::default(),
                    }
                }),
        )
    }

    /// Valid `global_defs`. `lvs_sync_daemon` never names an instance (the instance would
    /// have to exist); the VRRP proptest adds one.
    pub(crate) fn global_defs() -> impl Strategy<Value = GlobalDefs> {
        (
            (
                proptest::option::of(ident()),
                email(),
                any::<bool>(),
                any::<bool>(),
                prop_oneof![Just(VrrpVersion::V2), Just(VrrpVersion::V3)],
                garp(),
                (1u64..2_000_000).prop_map(Micros),
                (1u64..2_000_000).prop_map(Micros),
            ),
            (
                any::<[bool; 6]>(),
                1u8..=100,
                // Unset (0) or at least keepalived's minimum of 1 ms.
                prop_oneof![Just(0u64), 1_000u64..100_000_000].prop_map(Micros),
                prop_oneof![Just(0u64), 1_000u64..100_000_000].prop_map(Micros),
                sync_daemon(),
                prop_oneof![
                    Just(FlushOnStop::Off),
                    Just(FlushOnStop::All),
                    Just(FlushOnStop::VirtualServers)
                ],
                (
                    proptest::option::of(1u32..86400),
                    proptest::option::of(1u32..86400),
                    proptest::option::of(1u32..86400),
                ),
            ),
            (
                proptest::option::of((ident(), proptest::option::of(ident()))),
                any::<[bool; 4]>(),
                fifo(),
                fifo(),
                fifo(),
                prop_oneof![
                    Just(DynamicInterfaces::Off),
                    Just(DynamicInterfaces::On),
                    Just(DynamicInterfaces::AllowIfChanges)
                ],
                "eth[0-9]",
                proptest::option::of(proptest::option::of("/var/log/[a-z]{1,5}")),
                proptest::option::of("/run/[a-z]{1,5}"),
            ),
        )
            .prop_map(|(a, b, c)| {
                let (router_id, email, strict, skip, version, garp, gi, gn) = a;
                let (flags, down, sd, dab, lsd, flush_stop, timeouts) = b;
                let (su, flags2, nf, vnf, lnf, dynamic, defif, rcc, rtf) = c;
                GlobalDefs {
                    router_id,
                    email,
                    vrrp_strict: strict,
                    vrrp_skip_check_adv_addr: skip,
                    vrrp_version: version,
                    garp,
                    vrrp_garp_interval: gi,
                    vrrp_gna_interval: gn,
                    vrrp_mcast_group4: VRRP_MCAST_GROUP4,
                    vrrp_mcast_group6: VRRP_MCAST_GROUP6,
                    vrrp_check_unicast_src: flags[0],
                    vrrp_lower_prio_no_advert: flags[1],
                    vrrp_higher_prio_send_advert: flags[2],
                    vrrp_down_timer_adverts: down,
                    vrrp_owner_ignore_adverts: flags[3],
                    v3_checksum_as_v2: flags[4],
                    vrrp_startup_delay: sd,
                    vrrp_delay_after_boot: dab,
                    vrrp_notify_priority_changes: flags[5],
                    lvs_sync_daemon: lsd,
                    lvs_flush: flags2[0],
                    lvs_flush_on_stop: flush_stop,
                    lvs_timeouts: LvsTimeouts {
                        tcp: timeouts.0,
                        tcpfin: timeouts.1,
                        udp: timeouts.2,
                    },
                    script_user: su.map(|(user, group)| ScriptUser { user, group }),
                    enable_script_security: flags2[1],
                    notify_fifo: nf,
                    vrrp_notify_fifo: vnf,
                    lvs_notify_fifo: lnf,
                    fifo_write_vrrp_states_on_reload: flags2[2],
                    dynamic_interfaces: dynamic,
                    default_interface: defif,
                    reload_check_config: rcc.map(|l| ReloadCheck {
                        log_file: l.map(PathBuf::from),
                    }),
                    reload_time_file: rtf.map(PathBuf::from),
                    reload_repeat: flags2[3],
                    origin: Origin::default(),
                }
            })
    }
}
