//! The VRRP half of the model: instances, sync groups, the trackers they use and the static
//! addresses keepalived keeps on the node. Everything is resolved: keepalived's defaults and
//! the `global_defs` VRRP defaults are filled into each instance, and keepalived's
//! "cleared with a warning" rules are applied (e.g. `nopreempt` with `state MASTER` is off).

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::common::{Micros, Origin, Script};
use super::global::GlobalDefs;
use crate::source::Span;

/// Everything VRRP in one configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpSection {
    /// `vrrp_instance NAME { … }`, in file order.
    pub instances: Vec<VrrpInstance>,
    /// `vrrp_sync_group NAME { … }`.
    pub sync_groups: Vec<SyncGroup>,
    /// `vrrp_script NAME { … }`.
    pub scripts: Vec<VrrpScript>,
    /// `track_file NAME { … }` (and its old name `vrrp_track_file`).
    pub track_files: Vec<TrackFile>,
    /// `vrrp_track_process NAME { … }`.
    pub track_processes: Vec<TrackProcess>,
    /// `static_ipaddress { … }`: addresses kept on the node whatever the VRRP state.
    pub static_addresses: Vec<VirtualAddress>,
    /// `interface_up_down_delays { IF DOWN [UP] }`: link changes are acted on only after
    /// they have lasted this long.
    #[serde(default)]
    pub interface_delays: Vec<InterfaceDelay>,
    /// `static_routes { … }`.
    #[serde(default)]
    pub static_routes: Vec<Route>,
    /// `static_rules { … }`.
    #[serde(default)]
    pub static_rules: Vec<Rule>,
}

/// One line of `virtual_routes` / `static_routes` (`ip route` syntax, the common subset:
/// `[TYPE] DEST[/LEN] [src IP] [via IP] [dev IF] [scope S] [table N] [metric N] [onlink]
/// [no_track]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub kind: RouteType,
    pub destination: IpAddr,
    pub prefix_len: u8,
    pub src: Option<IpAddr>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub scope: Option<Scope>,
    /// Routing table id (`main` = 254, `local` = 255, `default` = 253).
    pub table: Option<u32>,
    /// `metric` (also written `priority` or `preference`).
    pub metric: Option<u32>,
    pub onlink: bool,
    /// The route going away does not put the instance in FAULT.
    pub no_track: bool,
    #[serde(skip)]
    pub origin: Origin,
}

/// `ip route` route types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteType {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
    Local,
    Broadcast,
    Anycast,
    Multicast,
}

impl RouteType {
    pub const ALL: [RouteType; 9] = [
        RouteType::Unicast,
        RouteType::Blackhole,
        RouteType::Unreachable,
        RouteType::Prohibit,
        RouteType::Throw,
        RouteType::Local,
        RouteType::Broadcast,
        RouteType::Anycast,
        RouteType::Multicast,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            RouteType::Unicast => "unicast",
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
            RouteType::Throw => "throw",
            RouteType::Local => "local",
            RouteType::Broadcast => "broadcast",
            RouteType::Anycast => "anycast",
            RouteType::Multicast => "multicast",
        }
    }
}

/// One line of `virtual_rules` / `static_rules` (`ip rule` syntax, the common subset:
/// `[from P] [to P] [fwmark M[/MASK]] [iif IF] [oif IF] [preference N] ACTION [no_track]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    pub fwmark: Option<(u32, Option<u32>)>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// `preference` (also `priority`, `order`); `None` lets the kernel choose.
    pub preference: Option<u32>,
    pub action: RuleAction,
    pub no_track: bool,
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleAction {
    /// `table N` / `lookup N`.
    Table(u32),
    Blackhole,
    Prohibit,
    Unreachable,
}

/// One line of `interface_up_down_delays`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceDelay {
    pub interface: String,
    /// How long the link must stay down (0–255 s).
    pub down: Micros,
    /// How long the link must stay up (0–255 s; 0 when not written).
    pub up: Micros,
    #[serde(skip)]
    pub origin: Origin,
}

impl VrrpSection {
    pub fn instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.instances.iter().find(|i| i.name == name)
    }

    pub fn script(&self, name: &str) -> Option<&VrrpScript> {
        self.scripts.iter().find(|s| s.name == name)
    }

    pub fn track_file(&self, name: &str) -> Option<&TrackFile> {
        self.track_files.iter().find(|s| s.name == name)
    }

    pub fn track_process(&self, name: &str) -> Option<&TrackProcess> {
        self.track_processes.iter().find(|s| s.name == name)
    }

    /// The sync group an instance belongs to.
    pub fn sync_group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == instance))
    }

    /// The weight and reverse flag a `track_script` entry acts with: its own, else the
    /// script's.
    pub fn script_weight(&self, r: &TrackRef) -> (i32, bool) {
        let own = self.script(&r.name).map(|s| (s.weight, s.reverse));
        resolve_weight(r, own.unwrap_or((0, false)))
    }

    /// As [`Self::script_weight`] for a `track_file` entry.
    pub fn file_weight(&self, r: &TrackRef) -> (i32, bool) {
        let own = self.track_file(&r.name).map(|s| (s.weight, s.reverse));
        resolve_weight(r, own.unwrap_or((1, false)))
    }

    /// As [`Self::script_weight`] for a `track_process` entry.
    pub fn process_weight(&self, r: &TrackRef) -> (i32, bool) {
        let own = self.track_process(&r.name).map(|s| (s.weight, s.reverse));
        resolve_weight(r, own.unwrap_or((0, false)))
    }
}

fn resolve_weight(r: &TrackRef, tracker: (i32, bool)) -> (i32, bool) {
    (
        r.weight.unwrap_or(tracker.0),
        r.reverse.unwrap_or(tracker.1),
    )
}

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VrrpVersion {
    /// RFC 3768: whole-second adverts, optional PASS/AH authentication, IPv4 only.
    V2,
    /// RFC 5798: centisecond adverts, IPv4 and IPv6.
    V3,
}

impl VrrpVersion {
    pub fn number(self) -> u8 {
        match self {
            VrrpVersion::V2 => 2,
            VrrpVersion::V3 => 3,
        }
    }
}

/// Address family of an instance (that of its `virtual_ipaddress` list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        }
    }
}

/// `state MASTER|BACKUP`: the state an instance wants at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitialState {
    Master,
    Backup,
}

/// `authentication { auth_type …; auth_pass … }` (VRRPv2 only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    pub auth_type: AuthType,
    /// At most 8 bytes (longer passwords are truncated, as keepalived does).
    pub password: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthType {
    /// Simple text password (RFC 2338 §5.3.6.1).
    Pass,
    /// IPsec AH (IPv4 only; not standard).
    Ah,
}

/// One `vrrp_instance`.
///
/// `priority` and `state` are always resolved; `priority_set` / `state_set` record whether
/// the file wrote them, because keepalived derives each from the other (`state MASTER` with
/// no priority means 255; priority 255 with no state means MASTER), and in cluster mode both
/// come from placement instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpInstance {
    pub name: String,
    /// `interface`; `None` only for unicast instances.
    pub interface: Option<String>,
    /// `virtual_router_id` 1–255.
    pub vrid: u8,
    pub state: InitialState,
    pub state_set: bool,
    /// `priority` 1–255 (100; 255 with `state MASTER`).
    pub priority: u8,
    pub priority_set: bool,
    /// `advert_int` (1 s): whole seconds for v2, centiseconds for v3.
    pub advert_int: Micros,
    /// `version`, else `vrrp_version` for IPv4; always 3 for IPv6.
    pub version: VrrpVersion,
    /// The family of the virtual addresses (IPv4 when there are none).
    pub family: Family,
    /// False with `nopreempt` (never with `state MASTER` or priority 255).
    pub preempt: bool,
    /// `preempt_delay` 0–1000 s.
    pub preempt_delay: Micros,
    pub authentication: Option<Authentication>,
    /// `virtual_ipaddress { … }`: advertised, all of `family`.
    pub virtual_addresses: Vec<VirtualAddress>,
    /// `virtual_ipaddress_excluded { … }`: not advertised; any family.
    pub excluded_addresses: Vec<VirtualAddress>,
    /// `no_virtual_ipaddress`: an instance without addresses is intended.
    #[serde(default)]
    pub no_virtual_ipaddress: bool,
    /// `virtual_routes { … }`: added on MASTER, removed otherwise.
    #[serde(default)]
    pub virtual_routes: Vec<Route>,
    /// `virtual_rules { … }`: added on MASTER, removed otherwise.
    #[serde(default)]
    pub virtual_rules: Vec<Rule>,
    /// `unicast_src_ip`.
    pub unicast_src_ip: Option<IpAddr>,
    /// `unicast_peer { … }`; empty = multicast.
    pub unicast_peers: Vec<UnicastPeer>,
    /// `unicast_ttl` (255).
    pub unicast_ttl: u8,
    /// `check_unicast_src` (or the global `vrrp_check_unicast_src`).
    pub check_unicast_src: bool,
    /// `unicast_fault_no_peer`.
    pub unicast_fault_no_peer: bool,
    /// `old_unicast_checksum [never]`: the VRRPv3 unicast checksum of keepalived ≤ 1.3.6.
    #[serde(default = "ChecksumCompat::auto")]
    pub unicast_checksum_compat: ChecksumCompat,
    /// `timer_expired_backup [PRIO]` (also `thread_timer_expired`): after a scheduling stall
    /// long enough for a peer to have taken over, go BACKUP if a peer may have priority PRIO
    /// (254 when not written). Only with nopreempt.
    #[serde(default)]
    pub timer_expired_backup: Option<u8>,
    /// `mcast_src_ip`.
    pub mcast_src_ip: Option<IpAddr>,
    /// `mcast_dst_ip`, else the global group of the family.
    pub mcast_dst_ip: Option<IpAddr>,
    /// `track_interface { … }`.
    pub track_interfaces: Vec<TrackedInterface>,
    /// `dont_track_primary`.
    pub dont_track_primary: bool,
    /// `track_script { … }`.
    pub track_scripts: Vec<TrackRef>,
    /// `track_file { … }`.
    pub track_files: Vec<TrackRef>,
    /// `track_process { … }`.
    pub track_processes: Vec<TrackRef>,
    pub notify: Notify,
    /// `notify_deleted`.
    pub notify_deleted: Option<Script>,
    /// `notify_master_rx_lower_pri`.
    pub notify_master_rx_lower_pri: Option<Script>,
    /// `notify_priority_changes`, else its sync group's, else the global
    /// `vrrp_notify_priority_changes`.
    pub notify_priority_changes: bool,
    /// `smtp_alert`, else the global `smtp_alert_vrrp`, else `smtp_alert` (off).
    pub smtp_alert: bool,
    /// GARP policy, the instance's overrides applied over the globals.
    pub garp: Garp,
    /// `accept` / `no_accept`; default accept, except in strict mode for non-owners.
    pub accept: bool,
    /// `strict_mode`, else `vrrp_strict`.
    pub strict_mode: bool,
    /// `skip_check_adv_addr`, else the global.
    pub skip_check_adv_addr: bool,
    /// `lower_prio_no_advert`, else the global.
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`, else the global.
    pub higher_prio_send_advert: bool,
    /// `down_timer_adverts` 1–100, else the global (3).
    pub down_timer_adverts: u8,
    /// `owner_ignore_adverts`, else the global.
    pub owner_ignore_adverts: bool,
    /// `v3_checksum_as_v2`, else the global.
    pub v3_checksum_as_v2: bool,
    #[serde(skip)]
    pub origin: Origin,
    /// What the file itself wrote, for re-resolving against `global_defs` and for
    /// diagnostics. Provenance like `origin`: never serialised, never makes instances differ.
    #[serde(skip)]
    pub written: Written,
}

impl VrrpInstance {
    /// An instance with keepalived's defaults, those `global_defs` sets included: what an
    /// empty `vrrp_instance NAME { }` block means before its keywords are read.
    pub fn with_defaults(name: String, origin: Origin, g: &GlobalDefs) -> VrrpInstance {
        VrrpInstance {
            name,
            interface: None,
            vrid: 0,
            state: InitialState::Backup,
            state_set: false,
            priority: 100,
            priority_set: false,
            advert_int: Micros::from_secs(1),
            version: g.vrrp_version,
            family: Family::Ipv4,
            preempt: true,
            preempt_delay: Micros(0),
            authentication: None,
            virtual_addresses: Vec::new(),
            excluded_addresses: Vec::new(),
            no_virtual_ipaddress: false,
            virtual_routes: Vec::new(),
            virtual_rules: Vec::new(),
            unicast_src_ip: None,
            unicast_peers: Vec::new(),
            unicast_ttl: 255,
            check_unicast_src: false,
            unicast_fault_no_peer: false,
            unicast_checksum_compat: ChecksumCompat::Auto,
            timer_expired_backup: None,
            mcast_src_ip: None,
            mcast_dst_ip: None,
            track_interfaces: Vec::new(),
            dont_track_primary: false,
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            track_processes: Vec::new(),
            notify: Notify::default(),
            notify_deleted: None,
            notify_master_rx_lower_pri: None,
            notify_priority_changes: false,
            smtp_alert: false,
            garp: Garp {
                master_delay: g.garp.master_delay,
                master_repeat: g.garp.master_repeat,
                master_refresh: g.garp.master_refresh,
                master_refresh_repeat: g.garp.master_refresh_repeat,
                lower_prio_delay: g.garp.lower_prio_delay,
                lower_prio_repeat: g.garp.lower_prio_repeat,
            },
            accept: true,
            strict_mode: false,
            skip_check_adv_addr: false,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            down_timer_adverts: 3,
            owner_ignore_adverts: false,
            v3_checksum_as_v2: false,
            origin,
            written: Written::default(),
        }
    }

    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }

    /// True when this node owns the virtual addresses (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }
}

/// The settings an instance wrote itself, with where (see [`VrrpInstance::written`]).
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub state: Option<(InitialState, Span)>,
    pub priority: Option<(u8, Span)>,
    pub advert_int: Option<(Micros, Span)>,
    pub version: Option<(VrrpVersion, Span)>,
    pub nopreempt: Option<Span>,
    pub preempt_delay: Option<(Micros, Span)>,
    pub authentication: Option<(Authentication, Span)>,
    pub interface: Option<Span>,
    pub unicast_src_ip: Option<Span>,
    pub unicast_peer: Option<Span>,
    pub no_virtual_ipaddress: Option<Span>,
    pub timer_expired_backup: Option<(u8, Span)>,
    pub mcast_dst_ip: Option<Span>,
    pub garp_master_delay: Option<Micros>,
    pub garp_master_repeat: Option<u32>,
    pub garp_master_refresh: Option<Micros>,
    pub garp_master_refresh_repeat: Option<u32>,
    pub garp_lower_prio_delay: Option<Micros>,
    pub garp_lower_prio_repeat: Option<u32>,
    pub strict_mode: Option<bool>,
    pub accept: Option<(bool, Span)>,
    pub skip_check_adv_addr: Option<bool>,
    pub lower_prio_no_advert: Option<bool>,
    pub higher_prio_send_advert: Option<bool>,
    pub down_timer_adverts: Option<(u8, Span)>,
    pub owner_ignore_adverts: Option<bool>,
    pub v3_checksum_as_v2: Option<bool>,
    pub check_unicast_src: Option<bool>,
    pub notify_priority_changes: Option<bool>,
    /// The sync group's `notify_priority_changes`, used when the instance has none.
    pub group_notify_priority_changes: Option<bool>,
    pub smtp_alert: Option<bool>,
}

impl PartialEq for Written {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// How the VRRPv3 unicast checksum copes with keepalived ≤ 1.3.6, which computed it over
/// the multicast group (keepalived.md §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumCompat {
    /// Use the correct checksum; accept the old one from a peer and switch to it.
    Auto,
    /// `old_unicast_checksum`: send the old checksum.
    Old,
    /// `old_unicast_checksum never`: never accept the old one.
    Never,
}

impl ChecksumCompat {
    fn auto() -> Self {
        ChecksumCompat::Auto
    }
}

/// The transition scripts of an instance or a sync group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub master: Option<Script>,
    pub backup: Option<Script>,
    pub fault: Option<Script>,
    pub stop: Option<Script>,
    /// `notify`: run after the specific script with `TYPE NAME STATE PRIORITY`.
    pub any: Option<Script>,
}

/// GARP / unsolicited NA policy of one instance (keepalived.md §3.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Garp {
    /// `garp_master_delay`: delay of the second burst; zero = none.
    pub master_delay: Micros,
    /// `garp_master_repeat`: packets per burst.
    pub master_repeat: u32,
    /// `garp_master_refresh`: period of refreshes while master; zero = off.
    pub master_refresh: Micros,
    /// `garp_master_refresh_repeat`.
    pub master_refresh_repeat: u32,
    /// `garp_lower_prio_delay`.
    pub lower_prio_delay: Micros,
    /// `garp_lower_prio_repeat`.
    pub lower_prio_repeat: u32,
}

/// One address line of `virtual_ipaddress`, `virtual_ipaddress_excluded` or
/// `static_ipaddress`: `ADDR[/LEN] [brd X] [dev IF] [scope S] [label L] [peer X] …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualAddress {
    pub address: IpAddr,
    /// 32 / 128 when not written.
    pub prefix_len: u8,
    pub broadcast: Option<Broadcast>,
    /// `dev`; `None` = the instance's interface (`default_interface` for static addresses).
    pub dev: Option<String>,
    pub scope: Option<Scope>,
    pub label: Option<String>,
    /// `peer ADDR[/LEN]`: point-to-point peer.
    pub peer: Option<(IpAddr, u8)>,
    /// `home` (IPv6).
    pub home: bool,
    /// `-nodad` (IPv6).
    pub nodad: bool,
    /// `mngtmpaddr` (IPv6).
    pub mngtmpaddr: bool,
    /// `noprefixroute`.
    pub noprefixroute: bool,
    /// `autojoin`.
    pub autojoin: bool,
    /// `no_track`: the address going away does not put the instance in FAULT.
    pub no_track: bool,
    /// `preferred_lft`.
    pub preferred_lft: Option<PreferredLifetime>,
    #[serde(skip)]
    pub origin: Origin,
}

impl VirtualAddress {
    pub fn family(&self) -> Family {
        Family::of(&self.address)
    }
}

/// `brd X`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Broadcast {
    /// `brd +`: derived from the prefix.
    Auto,
    /// `brd -`: none.
    None,
    Address(IpAddr),
}

/// `scope S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
}

impl Scope {
    pub fn keyword(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Site => "site",
            Scope::Link => "link",
            Scope::Host => "host",
            Scope::Nowhere => "nowhere",
        }
    }
}

/// `preferred_lft N|forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreferredLifetime {
    Forever,
    Seconds(u32),
}

/// One `unicast_peer` line: `IP [min_ttl N] [max_ttl N]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnicastPeer {
    pub address: IpAddr,
    pub min_ttl: Option<u8>,
    pub max_ttl: Option<u8>,
    #[serde(skip)]
    pub origin: Origin,
}

/// A `track_interface` entry: `IF [weight ±253 [reverse]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedInterface {
    pub name: String,
    /// 0 = the interface going down puts the instance in FAULT.
    pub weight: i32,
    pub reverse: bool,
    #[serde(skip)]
    pub origin: Origin,
}

/// A `track_script` / `track_file` / `track_process` entry: `NAME [weight ±N
/// [reverse|noreverse]]`. `None` fields take the tracker's own value; see
/// [`VrrpSection::script_weight`] and friends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackRef {
    pub name: String,
    pub weight: Option<i32>,
    pub reverse: Option<bool>,
    #[serde(skip)]
    pub origin: Origin,
}

/// `vrrp_sync_group NAME { group { … } … }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncGroup {
    pub name: String,
    /// Instance names, in the order written.
    pub members: Vec<String>,
    pub notify: Notify,
    /// `smtp_alert`.
    pub smtp_alert: Option<bool>,
    /// `notify_priority_changes`.
    pub notify_priority_changes: Option<bool>,
    /// Trackers applied to every member.
    pub track_interfaces: Vec<TrackedInterface>,
    pub track_scripts: Vec<TrackRef>,
    pub track_files: Vec<TrackRef>,
    pub track_processes: Vec<TrackRef>,
    #[serde(skip)]
    pub origin: Origin,
}

/// `vrrp_script NAME { … }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpScript {
    pub name: String,
    /// `script` (with `user USER [GROUP]` folded into its user and group).
    pub script: Script,
    /// `interval` (1 s, ms resolution).
    pub interval: Micros,
    /// `timeout` (= interval).
    pub timeout: Micros,
    /// `weight` ±253 (0 = failure means FAULT).
    pub weight: i32,
    /// `weight N reverse`.
    pub reverse: bool,
    /// `rise` (1).
    pub rise: u32,
    /// `fall` (1).
    pub fall: u32,
    /// `init_fail`: start in the failed state.
    pub init_fail: bool,
    #[serde(skip)]
    pub origin: Origin,
}

/// `track_file NAME { file PATH; weight N [reverse]; init_file [V] [overwrite] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackFile {
    pub name: String,
    pub file: PathBuf,
    /// `weight` ±254 (1).
    pub weight: i32,
    pub reverse: bool,
    /// `init_file [VALUE] [overwrite]`: create the file with VALUE (0) at startup.
    pub init_file: Option<InitFile>,
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitFile {
    pub value: i64,
    /// Write it even when the file exists.
    pub overwrite: bool,
}

/// `vrrp_track_process NAME { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackProcess {
    pub name: String,
    /// `process NAME [ARGS…]`.
    pub process: Vec<String>,
    /// `param_match initial|partial`; `Exact` when not written.
    pub param_match: ParamMatch,
    /// `weight` ±254 (0).
    pub weight: i32,
    pub reverse: bool,
    /// `quorum` (1) and `quorum_max` (65535): the process count considered up.
    pub quorum: u32,
    pub quorum_max: u32,
    /// `delay`, `terminate_delay`, `fork_delay`: debounce of changes.
    pub delay: Micros,
    pub terminate_delay: Micros,
    pub fork_delay: Micros,
    /// `full_command`: match the whole command line rather than the process name.
    pub full_command: bool,
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamMatch {
    Exact,
    Initial,
    Partial,
}

#[cfg(test)]
pub(crate) mod arb {
    use std::collections::BTreeSet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;
    use crate::model::global::arb::ident;

    fn script_cmd() -> impl Strategy<Value = Script> {
        (
            "/usr/(s?bin|lib)/[a-z]{1,8}",
            vec("[a-zA-Z0-9_.=-]{1,6}", 0..3),
            proptest::option::of((ident(), proptest::option::of(ident()))),
        )
            .prop_map(|(cmd, args, who)| {
                let mut argv = vec![cmd];
                argv.extend(args);
                let (user, group) = match who {
                    Some((u, g)) => (Some(u), g),
                    None => (None, None),
                };
                Script { argv, user, group }
            })
    }

    fn ms(lo: u64, hi: u64) -> impl Strategy<Value = Micros> {
        (lo..=hi).prop_map(Micros::from_millis)
    }

    fn addr_of(v6: bool) -> BoxedStrategy<(IpAddr, u8)> {
        if v6 {
            (any::<u128>(), 0u8..=128)
                .prop_map(|(a, l)| (IpAddr::V6(Ipv6Addr::from(a | 1 << 127)), l))
                .boxed()
        } else {
            (any::<u32>(), 0u8..=32)
                .prop_map(|(a, l)| (IpAddr::V4(Ipv4Addr::from(a)), l))
                .boxed()
        }
    }

    /// One address of the family; `v6` picks it.
    pub(crate) fn address(v6: bool) -> impl Strategy<Value = VirtualAddress> {
        (
            addr_of(v6),
            prop_oneof![
                Just(None),
                Just(Some(Broadcast::Auto)),
                Just(Some(Broadcast::None)),
                addr_of(v6).prop_map(|(a, _)| Some(Broadcast::Address(a))),
            ],
            proptest::option::of("eth[0-9]"),
            proptest::option::of(prop_oneof![
                Just(Scope::Global),
                Just(Scope::Site),
                Just(Scope::Link),
                Just(Scope::Host),
                Just(Scope::Nowhere)
            ]),
            proptest::option::of("eth[0-9]:[a-z0-9]{1,4}"),
            proptest::option::of(addr_of(v6)),
            any::<[bool; 6]>(),
            proptest::option::of(prop_oneof![
                Just(PreferredLifetime::Forever),
                any::<u32>().prop_map(PreferredLifetime::Seconds)
            ]),
        )
            .prop_map(
                |((address, prefix_len), broadcast, dev, scope, label, peer, f, preferred_lft)| {
                    VirtualAddress {
                        address,
                        prefix_len,
                        broadcast,
                        dev,
                        scope,
                        label,
                        peer,
                        home: f[0],
                        nodad: f[1],
                        mngtmpaddr: f[2],
                        noprefixroute: f[3],
                        autojoin: f[4],
                        no_track: f[5],
                        preferred_lft,
                        origin: Origin::default(),
                    }
                },
            )
    }

    fn route_of(v6: bool) -> impl Strategy<Value = Route> {
        (
            proptest::sample::select(RouteType::ALL.to_vec()),
            addr_of(v6),
            proptest::option::of(addr_of(v6)),
            proptest::option::of(addr_of(v6)),
            proptest::option::of("eth[0-9]"),
            proptest::option::of(prop_oneof![Just(Scope::Global), Just(Scope::Link)]),
            proptest::option::of(1u32..),
            proptest::option::of(any::<u32>()),
            any::<[bool; 2]>(),
        )
            .prop_map(
                |(kind, (destination, prefix_len), src, via, dev, scope, table, metric, f)| Route {
                    kind,
                    destination,
                    prefix_len,
                    src: src.map(|a| a.0),
                    via: via.map(|a| a.0),
                    dev,
                    scope,
                    table,
                    metric,
                    onlink: f[0],
                    no_track: f[1],
                    origin: Origin::default(),
                },
            )
    }

    fn route() -> impl Strategy<Value = Route> {
        any::<bool>().prop_flat_map(route_of)
    }

    fn rule_of(v6: bool) -> impl Strategy<Value = Rule> {
        (
            proptest::option::of(addr_of(v6)),
            proptest::option::of(addr_of(v6)),
            proptest::option::of((any::<u32>(), proptest::option::of(any::<u32>()))),
            proptest::option::of("eth[0-9]"),
            proptest::option::of("eth[0-9]"),
            any::<u32>(),
            prop_oneof![
                (1u32..).prop_map(RuleAction::Table),
                Just(RuleAction::Blackhole),
                Just(RuleAction::Prohibit),
                Just(RuleAction::Unreachable)
            ],
            any::<bool>(),
        )
            .prop_map(
                |(from, to, fwmark, iif, oif, pref, action, no_track)| Rule {
                    from,
                    to,
                    fwmark,
                    iif,
                    oif,
                    preference: Some(pref),
                    action,
                    no_track,
                    origin: Origin::default(),
                },
            )
    }

    fn rule() -> impl Strategy<Value = Rule> {
        any::<bool>().prop_flat_map(rule_of)
    }

    fn any_address() -> impl Strategy<Value = VirtualAddress> {
        any::<bool>().prop_flat_map(address)
    }

    fn vrrp_script() -> impl Strategy<Value = VrrpScript> {
        (
            script_cmd(),
            ms(1, 100_000),
            ms(1, 100_000),
            -253i32..=253,
            any::<bool>(),
            1u32..100,
            1u32..100,
            any::<bool>(),
        )
            .prop_map(
                |(script, interval, timeout, weight, reverse, rise, fall, init_fail)| VrrpScript {
                    name: String::new(),
                    script,
                    interval,
                    timeout,
                    weight,
                    reverse,
                    rise,
                    fall,
                    init_fail,
                    origin: Origin::default(),
                },
            )
    }

    fn track_file() -> impl Strategy<Value = TrackFile> {
        (
            "/run/[a-z]{1,8}",
            -254i32..=254,
            any::<bool>(),
            proptest::option::of((any::<i32>(), any::<bool>())),
        )
            .prop_map(|(file, weight, reverse, init)| TrackFile {
                name: String::new(),
                file: PathBuf::from(file),
                weight,
                reverse,
                init_file: init.map(|(v, overwrite)| InitFile {
                    value: i64::from(v),
                    overwrite,
                }),
                origin: Origin::default(),
            })
    }

    fn track_process() -> impl Strategy<Value = TrackProcess> {
        (
            vec("[a-z][a-z0-9_.-]{0,8}", 1..3),
            prop_oneof![
                Just(ParamMatch::Exact),
                Just(ParamMatch::Initial),
                Just(ParamMatch::Partial)
            ],
            -254i32..=254,
            any::<bool>(),
            (1u32..=65535, 0u32..=65535),
            (ms(0, 60_000), ms(0, 60_000), ms(0, 60_000)),
            any::<bool>(),
        )
            .prop_map(
                |(process, param_match, weight, reverse, q, d, full_command)| {
                    let (quorum, quorum_max) = (q.0.min(q.1.max(1)), q.1.max(q.0.min(q.1.max(1))));
                    TrackProcess {
                        name: String::new(),
                        process,
                        param_match,
                        weight,
                        reverse,
                        quorum,
                        quorum_max,
                        delay: d.0,
                        terminate_delay: d.1,
                        fork_delay: d.2,
                        full_command,
                        origin: Origin::default(),
                    }
                },
            )
    }

    fn blank() -> VrrpInstance {
        VrrpInstance {
            vrid: 1,
            ..VrrpInstance::with_defaults(String::new(), Origin::default(), &GlobalDefs::default())
        }
    }

    /// Picks of tracker entries before names exist: (which, weight, reverse).
    type RefDraft = (Index, Option<i32>, Option<bool>);

    fn ref_drafts() -> impl Strategy<Value = Vec<RefDraft>> {
        vec(
            (
                any::<Index>(),
                proptest::option::of(-253i32..=253),
                proptest::option::of(any::<bool>()),
            ),
            0..3,
        )
    }

    fn refs(drafts: &[RefDraft], names: &[String]) -> Vec<TrackRef> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        if names.is_empty() {
            return out;
        }
        for (i, weight, reverse) in drafts {
            let name = names[i.index(names.len())].clone();
            if seen.insert(name.clone()) {
                out.push(TrackRef {
                    name,
                    weight: *weight,
                    reverse: weight.and(*reverse),
                    origin: Origin::default(),
                });
            }
        }
        out
    }

    fn interfaces() -> impl Strategy<Value = Vec<TrackedInterface>> {
        vec(("eth[0-9]", -253i32..=253, any::<bool>()), 0..3).prop_map(|v| {
            let mut seen = BTreeSet::new();
            v.into_iter()
                .filter(|(n, _, _)| seen.insert(n.clone()))
                .map(|(name, weight, reverse)| TrackedInterface {
                    name,
                    weight,
                    reverse,
                    origin: Origin::default(),
                })
                .collect()
        })
    }

    fn notify() -> impl Strategy<Value = Notify> {
        (
            proptest::option::of(script_cmd()),
            proptest::option::of(script_cmd()),
            proptest::option::of(script_cmd()),
            proptest::option::of(script_cmd()),
            proptest::option::of(script_cmd()),
        )
            .prop_map(|(master, backup, fault, stop, any)| Notify {
                master,
                backup,
                fault,
                stop,
                any,
            })
    }

    /// An instance with random fields; [`fix_instance`] makes it consistent.
    #[derive(Debug, Clone)]
    struct Draft {
        v: VrrpInstance,
        v6: bool,
        v4_vips: Vec<VirtualAddress>,
        v6_vips: Vec<VirtualAddress>,
        unicast: bool,
        peers4: Vec<Ipv4Addr>,
        peers6: Vec<Ipv6Addr>,
        src: (Ipv4Addr, Ipv6Addr),
        want: (bool, u8, bool, bool, u64),
        strict: bool,
        compat: (ChecksumCompat, Option<u8>),
        scripts: Vec<RefDraft>,
        files: Vec<RefDraft>,
        processes: Vec<RefDraft>,
    }

    fn draft() -> impl Strategy<Value = Draft> {
        let addresses = (
            any::<bool>(),
            vec(address(false), 1..3),
            vec(address(true), 1..3),
            vec(any_address(), 0..3),
            any::<bool>(),
            vec(any::<u32>(), 1..3),
            vec(any::<u128>(), 1..3),
            (any::<u32>(), any::<u128>()),
        );
        let state = (
            // priority_set, priority, state_set, master, advert ticks
            (
                any::<bool>(),
                1u8..=255,
                any::<bool>(),
                any::<bool>(),
                1u64..=255,
            ),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of((any::<bool>(), "[a-zA-Z0-9]{1,8}")),
            any::<bool>(),
            ms(0, 1_000_000),
        );
        let more = (
            proptest::option::of("eth[0-3]"),
            any::<u8>(),
            any::<[bool; 10]>(),
            interfaces(),
            (ref_drafts(), ref_drafts(), ref_drafts()),
            notify(),
            (
                proptest::option::of(script_cmd()),
                proptest::option::of(script_cmd()),
                proptest::option::of(any::<bool>()),
                vec(route(), 0..3),
                vec(rule(), 0..3),
            ),
            (0u64..20, 1u32..10, 0u64..100, 1u32..5, 0u64..20, 0u32..10),
            1u8..=100,
            (
                any::<bool>(),
                any::<bool>(),
                any::<u8>(),
                (
                    prop_oneof![
                        Just(ChecksumCompat::Auto),
                        Just(ChecksumCompat::Old),
                        Just(ChecksumCompat::Never)
                    ],
                    proptest::option::of(1u8..=254),
                ),
            ),
        );
        (addresses, state, more).prop_map(|(a, s, m)| {
            let (v6, v4_vips, v6_vips, excluded, unicast, p4, p6, src) = a;
            let (want, v3, nopreempt, auth, strict, preempt_delay) = s;
            let (interface, ttl, f, track_interfaces, trk, notify, extra, garp, down, mc) = m;
            let mut v = blank();
            v.interface = interface;
            v.version = if v3 { VrrpVersion::V3 } else { VrrpVersion::V2 };
            v.preempt = !nopreempt;
            v.preempt_delay = preempt_delay;
            v.authentication = auth.map(|(ah, password)| Authentication {
                auth_type: if ah { AuthType::Ah } else { AuthType::Pass },
                password,
            });
            v.excluded_addresses = excluded;
            v.unicast_ttl = ttl;
            v.check_unicast_src = f[0];
            v.unicast_fault_no_peer = f[1];
            v.dont_track_primary = f[2];
            v.notify_priority_changes = f[3];
            v.accept = f[4];
            v.skip_check_adv_addr = f[5];
            v.lower_prio_no_advert = f[6];
            v.higher_prio_send_advert = f[7];
            v.owner_ignore_adverts = f[8];
            v.v3_checksum_as_v2 = f[9];
            v.track_interfaces = track_interfaces;
            v.notify = notify;
            v.notify_deleted = extra.0;
            v.notify_master_rx_lower_pri = extra.1;
            v.smtp_alert = extra.2.unwrap_or(false);
            v.virtual_routes = extra.3;
            v.virtual_rules = extra.4;
            v.garp = Garp {
                master_delay: Micros::from_secs(garp.0),
                master_repeat: garp.1,
                master_refresh: Micros::from_secs(garp.2),
                master_refresh_repeat: garp.3,
                lower_prio_delay: Micros::from_secs(garp.4),
                lower_prio_repeat: garp.5,
            };
            v.down_timer_adverts = down;
            if mc.0 {
                v.mcast_src_ip = Some(if v6 {
                    IpAddr::V6(Ipv6Addr::from(src.1))
                } else {
                    IpAddr::V4(Ipv4Addr::from(src.0))
                });
            }
            if mc.1 {
                v.mcast_dst_ip = Some(if v6 {
                    IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, u16::from(mc.2)))
                } else {
                    IpAddr::V4(Ipv4Addr::new(224, 0, 0, mc.2))
                });
            }
            Draft {
                v,
                v6,
                v4_vips,
                v6_vips,
                unicast,
                peers4: p4.into_iter().map(Ipv4Addr::from).collect(),
                peers6: p6.into_iter().map(Ipv6Addr::from).collect(),
                src: (Ipv4Addr::from(src.0), Ipv6Addr::from(src.1)),
                want,
                strict,
                compat: mc.3,
                scripts: trk.0,
                files: trk.1,
                processes: trk.2,
            }
        })
    }

    /// Applies keepalived's rules so that the instance is what loading its text gives.
    fn fix_instance(d: Draft, i: usize, s: &VrrpSection) -> VrrpInstance {
        let mut v = d.v;
        v.name = format!("vi_{i}");
        v.vrid = (i % 255 + 1) as u8;
        v.virtual_addresses = if d.v6 { d.v6_vips } else { d.v4_vips };
        let v6 = d.v6 && !v.virtual_addresses.is_empty();
        v.family = if v6 { Family::Ipv6 } else { Family::Ipv4 };
        if v6 {
            v.version = VrrpVersion::V3;
        }
        let fam_ok = |ip: &IpAddr| ip.is_ipv6() == v6;
        if !v.mcast_src_ip.as_ref().is_none_or(fam_ok) {
            v.mcast_src_ip = None;
        }
        if !v.mcast_dst_ip.as_ref().is_none_or(fam_ok) {
            v.mcast_dst_ip = None;
        }
        if d.unicast {
            let peers: Vec<IpAddr> = if v6 {
                d.peers6.into_iter().map(IpAddr::V6).collect()
            } else {
                d.peers4.into_iter().map(IpAddr::V4).collect()
            };
            let src = if v6 {
                IpAddr::V6(d.src.1)
            } else {
                IpAddr::V4(d.src.0)
            };
            // The instance's own address is never one of its peers.
            let mut seen = BTreeSet::from([src]);
            v.unicast_peers = peers
                .into_iter()
                .filter(|p| seen.insert(*p))
                .map(|address| UnicastPeer {
                    address,
                    min_ttl: None,
                    max_ttl: Some(255),
                    origin: Origin::default(),
                })
                .collect();
            v.unicast_src_ip = (!v.unicast_peers.is_empty()).then_some(src);
        }
        if v.unicast_peers.is_empty() && v.interface.is_none() {
            v.interface = Some("eth0".into());
        }
        let (priority_set, prio, state_set, master, ticks) = d.want;
        v.priority_set = priority_set;
        v.state_set = state_set;
        let state = if master {
            InitialState::Master
        } else {
            InitialState::Backup
        };
        v.priority = match (priority_set, state_set, state) {
            (true, _, _) => prio,
            (false, true, InitialState::Master) => 255,
            _ => 100,
        };
        v.state = if state_set {
            state
        } else if v.priority == 255 {
            InitialState::Master
        } else {
            InitialState::Backup
        };
        v.advert_int = match v.version {
            VrrpVersion::V2 => Micros::from_secs(ticks),
            VrrpVersion::V3 => Micros(ticks * 16 * 10_000),
        };
        if v.version == VrrpVersion::V3 || v6 {
            v.authentication = None;
        }
        if matches!(&v.authentication, Some(a) if a.auth_type == AuthType::Ah)
            && v.state == InitialState::Master
            && v.priority != 255
        {
            v.authentication = None;
        }
        if v.state == InitialState::Master || v.priority == 255 {
            v.preempt = true;
        }
        if v.state == InitialState::Master || !v.preempt {
            v.preempt_delay = Micros(0);
        }
        if v.priority != 255 {
            v.owner_ignore_adverts = false;
        }
        v.unicast_checksum_compat = d.compat.0;
        v.timer_expired_backup = if v.preempt { None } else { d.compat.1 };
        if v.is_unicast() {
            v.mcast_dst_ip = None;
        }
        if d.strict && !v.is_unicast() {
            // keepalived's strict mode (RFC behaviour): see lower::vrrp::resolve.
            v.strict_mode = true;
            v.authentication = None;
            if v.state_set {
                v.state = if v.priority == 255 {
                    InitialState::Master
                } else {
                    InitialState::Backup
                };
            }
            if v.priority == 255 {
                v.preempt = true;
                v.owner_ignore_adverts = true;
            } else if v.version == VrrpVersion::V2 {
                v.accept = false;
            }
            v.preempt_delay = Micros(0);
            v.down_timer_adverts = 3;
            v.lower_prio_no_advert = true;
            v.higher_prio_send_advert = false;
            v.garp.lower_prio_delay = Micros(0);
            v.garp.lower_prio_repeat = 0;
            if let Some(IpAddr::V6(a)) = v.virtual_addresses.first().map(|a| a.address) {
                let seg = a.segments();
                let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, seg[4], seg[5], seg[6], seg[7]);
                v.virtual_addresses[0].address = IpAddr::V6(ll);
            }
        }
        let names = |it: Vec<String>| it;
        v.track_scripts = refs(
            &d.scripts,
            &names(s.scripts.iter().map(|x| x.name.clone()).collect()),
        );
        v.track_files = refs(
            &d.files,
            &names(s.track_files.iter().map(|x| x.name.clone()).collect()),
        );
        v.track_processes = refs(
            &d.processes,
            &names(s.track_processes.iter().map(|x| x.name.clone()).collect()),
        );
        v
    }

    /// keepalived ignores tracker weights on owners and sync-group members.
    fn unweight(s: &mut VrrpSection) {
        fn zero(r: &mut [TrackRef]) {
            for x in r {
                x.weight = Some(0);
            }
        }
        let grouped: BTreeSet<String> = s
            .sync_groups
            .iter()
            .flat_map(|g| g.members.iter().cloned())
            .collect();
        let owners: BTreeSet<String> = s
            .instances
            .iter()
            .filter(|v| v.priority == 255)
            .map(|v| v.name.clone())
            .collect();
        for v in &mut s.instances {
            if v.priority == 255 || grouped.contains(&v.name) {
                v.track_interfaces.iter_mut().for_each(|t| t.weight = 0);
                zero(&mut v.track_scripts);
                zero(&mut v.track_files);
                zero(&mut v.track_processes);
            }
        }
        for g in &mut s.sync_groups {
            if g.members.iter().any(|m| owners.contains(m)) {
                g.track_interfaces.iter_mut().for_each(|t| t.weight = 0);
                zero(&mut g.track_scripts);
                zero(&mut g.track_files);
                zero(&mut g.track_processes);
            }
        }
    }

    /// A valid VRRP section: unique names, unique VRIDs, references that exist, values in
    /// range, keepalived's completion rules (strict mode included) already applied.
    pub(crate) fn vrrp_section() -> impl Strategy<Value = VrrpSection> {
        (
            vec(vrrp_script(), 0..3),
            vec(track_file(), 0..3),
            vec(track_process(), 0..3),
            vec(draft(), 0..5),
            vec(
                (
                    vec(any::<Index>(), 1..3),
                    notify(),
                    proptest::option::of(any::<bool>()),
                    proptest::option::of(any::<bool>()),
                    interfaces(),
                    (ref_drafts(), ref_drafts(), ref_drafts()),
                ),
                0..3,
            ),
            vec(any_address(), 0..3),
            vec(("lo[0-9]", ms(0, 255_000), ms(0, 255_000)), 0..3),
        )
            .prop_map(
                |(scripts, files, processes, drafts, groups, statics, delays)| {
                    let mut seen = BTreeSet::new();
                    let interface_delays = delays
                        .into_iter()
                        .filter(|d| seen.insert(d.0.clone()))
                        .map(|(interface, down, up)| InterfaceDelay {
                            interface,
                            down,
                            up,
                            origin: Origin::default(),
                        })
                        .collect();
                    let mut s = VrrpSection {
                        static_addresses: statics,
                        interface_delays,
                        ..VrrpSection::default()
                    };
                    for (i, mut x) in scripts.into_iter().enumerate() {
                        x.name = format!("chk_{i}");
                        s.scripts.push(x);
                    }
                    for (i, mut x) in files.into_iter().enumerate() {
                        x.name = format!("file_{i}");
                        s.track_files.push(x);
                    }
                    for (i, mut x) in processes.into_iter().enumerate() {
                        x.name = format!("proc_{i}");
                        s.track_processes.push(x);
                    }
                    let instances: Vec<VrrpInstance> = drafts
                        .into_iter()
                        .enumerate()
                        .map(|(i, d)| fix_instance(d, i, &s))
                        .collect();
                    s.instances = instances;
                    let mut taken = BTreeSet::new();
                    for (i, (picks, notify, smtp, npc, tifs, trk)) in groups.into_iter().enumerate()
                    {
                        if s.instances.is_empty() {
                            break;
                        }
                        let members: Vec<String> = picks
                            .iter()
                            .map(|p| s.instances[p.index(s.instances.len())].name.clone())
                            .filter(|n| taken.insert(n.clone()))
                            .collect();
                        if members.is_empty() {
                            continue;
                        }
                        let scripts: Vec<String> =
                            s.scripts.iter().map(|x| x.name.clone()).collect();
                        let files: Vec<String> =
                            s.track_files.iter().map(|x| x.name.clone()).collect();
                        let procs: Vec<String> =
                            s.track_processes.iter().map(|x| x.name.clone()).collect();
                        s.sync_groups.push(SyncGroup {
                            name: format!("group_{i}"),
                            members,
                            notify,
                            smtp_alert: smtp,
                            notify_priority_changes: npc,
                            // Instances track eth*; an interface on both is an error.
                            track_interfaces: tifs
                                .into_iter()
                                .map(|t| TrackedInterface {
                                    name: t.name.replace("eth", "bond"),
                                    ..t
                                })
                                .collect(),
                            track_scripts: refs(&trk.0, &scripts),
                            track_files: refs(&trk.1, &files),
                            track_processes: refs(&trk.2, &procs),
                            origin: Origin::default(),
                        });
                    }
                    unweight(&mut s);
                    s
                },
            )
    }

    /// [`vrrp_section`] for cluster mode: priority, state and unicast peers are left to
    /// placement (writing them there draws a warning), with what follows from that.
    pub(crate) fn vrrp_section_for_cluster() -> impl Strategy<Value = VrrpSection> {
        vrrp_section().prop_map(|mut s| {
            for v in &mut s.instances {
                v.priority_set = false;
                v.state_set = false;
                v.priority = 100;
                v.state = InitialState::Backup;
                v.unicast_src_ip = None;
                v.unicast_peers.clear();
                v.owner_ignore_adverts = false;
                if v.strict_mode && v.version == VrrpVersion::V2 {
                    v.accept = false;
                }
            }
            s
        })
    }
}
