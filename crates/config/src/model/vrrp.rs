//! The VRRP half of the model: instances, sync groups, the trackers they use and the static
//! addresses keepalived keeps on the node. Everything is resolved: keepalived's defaults and
//! the `global_defs` VRRP defaults are filled into each instance, and keepalived's
//! "cleared with a warning" rules are applied (e.g. `nopreempt` with `state MASTER` is off).

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::common::{Micros, Origin, Script};
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
    /// `notify_priority_changes` (or the global default).
    pub notify_priority_changes: bool,
    /// `smtp_alert`: `None` when not written (the global default applies).
    pub smtp_alert: Option<bool>,
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
    pub garp_master_delay: Option<Micros>,
    pub garp_master_repeat: Option<u32>,
    pub garp_master_refresh: Option<Micros>,
    pub garp_master_refresh_repeat: Option<u32>,
    pub garp_lower_prio_delay: Option<Micros>,
    pub garp_lower_prio_repeat: Option<u32>,
    pub strict_mode: Option<bool>,
    pub accept: Option<bool>,
    pub skip_check_adv_addr: Option<bool>,
    pub lower_prio_no_advert: Option<bool>,
    pub higher_prio_send_advert: Option<bool>,
    pub down_timer_adverts: Option<(u8, Span)>,
    pub owner_ignore_adverts: Option<bool>,
    pub v3_checksum_as_v2: Option<bool>,
    pub check_unicast_src: Option<bool>,
    pub notify_priority_changes: Option<bool>,
}

impl PartialEq for Written {
    fn eq(&self, _other: &Self) -> bool {
        true
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
