//! Configuration model → what each instance actor needs, checked before anything starts: a
//! configuration the agent cannot run is refused with a reason instead of being half run.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use flotilla_config::model::vrrp::{
    AuthType, Scope, TrackRef, VrrpInstance, VrrpSection, VrrpVersion,
};
use flotilla_config::model::{Config, Script};
use flotilla_net::vip::{self, Vip};
use flotilla_vrrp::machine::{GarpPolicy, Params};
use flotilla_vrrp::wire::{Auth, Version};

use crate::track::{Source, Tracked};
use crate::trackers::TrackerDef;

/// Everything one instance actor runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSetup {
    pub name: String,
    pub interface: String,
    pub params: Params,
    /// `unicast_src_ip` / `mcast_src_ip`; `None`: the interface's primary IPv4 address, or
    /// its link-local IPv6 address (RFC 5798 §5.1.2.1).
    pub source: Option<IpAddr>,
    /// Unicast peers; empty means multicast (224.0.0.18 or ff02::12).
    pub peers: Vec<IpAddr>,
    /// The family of the advertised addresses, and so of the adverts.
    pub ipv6: bool,
    /// Addresses to hold as master, each with its interface: the advertised VIPs, then
    /// `virtual_ipaddress_excluded`.
    pub vips: Vec<(String, Vip)>,
    pub notify: Notify,
    /// `check_unicast_src`: unicast adverts only from the configured peers.
    pub check_unicast_src: bool,
    /// `nopreempt` as configured (fleet mode runs VRRP with preemption and leaves it to
    /// placement never to move the unit back by itself).
    pub nopreempt: bool,
    /// `skip_check_adv_addr`: do not compare the advertised addresses with ours.
    pub skip_check_adv_addr: bool,
    /// What moves this instance: its own interface (unless `dont_track_primary`),
    /// `track_interface`, `track_script`, `track_file` and `track_process` entries, and its
    /// sync group's.
    pub tracked: Vec<Tracked>,
    /// The definitions of the scripts, files and processes in `tracked` (a changed
    /// definition makes a changed setup).
    pub trackers: Vec<TrackerDef>,
}

/// The notify scripts of an instance (keepalived's contract).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Notify {
    pub master: Option<Script>,
    pub backup: Option<Script>,
    pub fault: Option<Script>,
    pub stop: Option<Script>,
    /// `notify`: called with `INSTANCE NAME STATE PRIORITY` after the specific one.
    pub any: Option<Script>,
    pub master_rx_lower_pri: Option<Script>,
}

/// Why the agent will not run a configuration (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error(
        "the configuration has a cluster block: fleet mode is not implemented yet; remove the block to run standalone"
    )]
    ClusterMode,
    #[error("vrrp_instance {0}: {1} is of the other address family than the instance")]
    Family(String, IpAddr),
    #[error(
        "vrrp_instance {0}: AH authentication is not supported (non-standard; use PASS or none)"
    )]
    Ah(String),
    #[error("vrrp_instance {0} has no interface")]
    NoInterface(String),
    #[error("the configuration has no cluster block: run without --name (standalone)")]
    NotFleet,
    #[error("no director {0} in the cluster block")]
    UnknownDirector(String),
}

/// A unit of VRRP: one instance, or a sync group whose members share one state. One actor
/// runs each unit (and the fleet will place units, not instances).
#[derive(Debug, Clone, PartialEq)]
pub struct UnitSetup {
    pub name: String,
    /// `Some` for a `vrrp_sync_group`: its own notify scripts (`GROUP NAME STATE PRIO`).
    pub group: Option<Notify>,
    pub members: Vec<InstanceSetup>,
}

/// Builds the units of a standalone configuration: each sync group, then each instance in no
/// group, in file order.
pub fn units(cfg: &Config) -> Result<Vec<UnitSetup>, SetupError> {
    if cfg.cluster.is_some() {
        return Err(SetupError::ClusterMode);
    }
    all_units(cfg)
}

/// The priority of a unit on a director before placement has ranked it there.
pub const UNPLACED_PRIORITY: u8 = 50;

/// The VRRP priority for a director's rank in a unit's placement: the owner highest, then
/// descending, so when the owner dies the next-ranked director wins the ordinary election.
pub fn rank_priority(rank: usize) -> u8 {
    let r = u8::try_from(rank).unwrap_or(u8::MAX);
    250u8.saturating_sub(r.saturating_mul(10)).max(20)
}

/// The units of a fleet configuration as director `me` runs them: its interface names, its
/// address as the adverts' source, the other directors as unicast peers, and the unplaced
/// priority until placement ranks it.
pub fn units_for_director(cfg: &Config, me: &str) -> Result<Vec<UnitSetup>, SetupError> {
    let cluster = cfg.cluster.as_ref().ok_or(SetupError::NotFleet)?;
    let director = cluster
        .director(me)
        .ok_or_else(|| SetupError::UnknownDirector(me.to_string()))?;
    let mut units = all_units(cfg)?;
    for m in units.iter_mut().flat_map(|u| u.members.iter_mut()) {
        m.interface = director.interface(&m.interface).to_string();
        for (dev, _) in &mut m.vips {
            *dev = director.interface(dev).to_string();
        }
        for t in &mut m.tracked {
            if let Source::Interface(name) = &mut t.source {
                *name = director.interface(name).to_string();
            }
        }
        if director.address.is_ipv6() == m.ipv6 {
            m.source = Some(director.address);
            m.params.source = director.address;
            m.peers = cluster
                .directors
                .iter()
                .filter(|d| d.name != me && d.address.is_ipv6() == m.ipv6)
                .map(|d| d.address)
                .collect();
        }
        m.params.priority = UNPLACED_PRIORITY;
        // Placement decides who owns a unit; VRRP must follow it both ways.
        m.params.preempt = true;
        m.params.preempt_delay = Duration::ZERO;
    }
    Ok(units)
}

fn all_units(cfg: &Config) -> Result<Vec<UnitSetup>, SetupError> {
    let mut units = Vec::new();
    for g in &cfg.vrrp.sync_groups {
        let mut members = g
            .members
            .iter()
            .filter_map(|m| cfg.vrrp.instance(m))
            .map(|i| instance(&cfg.vrrp, i))
            .collect::<Result<Vec<_>, _>>()?;
        // A group's trackers apply to every member; keepalived only honours weight 0 there.
        let mut group_tracked: Vec<Tracked> = g
            .track_interfaces
            .iter()
            .map(|t| Tracked::interface(&t.name, 0, t.reverse))
            .collect();
        let mut group_defs = Vec::new();
        add_trackers(
            &cfg.vrrp,
            &g.track_scripts,
            &g.track_files,
            &g.track_processes,
            &mut group_tracked,
            &mut group_defs,
        );
        for t in &mut group_tracked {
            t.weight = 0;
        }
        for m in &mut members {
            m.tracked.extend(group_tracked.iter().cloned());
            for d in &group_defs {
                if !m.trackers.contains(d) {
                    m.trackers.push(d.clone());
                }
            }
        }
        units.push(UnitSetup {
            name: g.name.clone(),
            group: Some(Notify {
                master: g.notify.master.clone(),
                backup: g.notify.backup.clone(),
                fault: g.notify.fault.clone(),
                stop: g.notify.stop.clone(),
                any: g.notify.any.clone(),
                master_rx_lower_pri: None,
            }),
            members,
        });
    }
    for i in &cfg.vrrp.instances {
        if cfg.vrrp.sync_group_of(&i.name).is_none() {
            units.push(UnitSetup {
                name: i.name.clone(),
                group: None,
                members: vec![instance(&cfg.vrrp, i)?],
            });
        }
    }
    Ok(units)
}

/// The trackers named in `track_script`/`track_file`/`track_process` entries, with their
/// resolved weights. A name with no definition was reported by the configuration check and
/// is left out, as keepalived does.
fn add_trackers(
    vrrp: &VrrpSection,
    scripts: &[TrackRef],
    files: &[TrackRef],
    processes: &[TrackRef],
    tracked: &mut Vec<Tracked>,
    defs: &mut Vec<TrackerDef>,
) {
    let mut add = |def: TrackerDef, (weight, reverse): (i32, bool)| {
        tracked.push(Tracked {
            source: def.source(),
            weight,
            reverse,
        });
        if !defs.contains(&def) {
            defs.push(def);
        }
    };
    for r in scripts {
        if let Some(s) = vrrp.script(&r.name) {
            add(TrackerDef::Script(s.clone()), vrrp.script_weight(r));
        }
    }
    for r in files {
        if let Some(f) = vrrp.track_file(&r.name) {
            add(TrackerDef::File(f.clone()), vrrp.file_weight(r));
        }
    }
    for r in processes {
        if let Some(p) = vrrp.track_process(&r.name) {
            add(TrackerDef::Process(p.clone()), vrrp.process_weight(r));
        }
    }
}

fn instance(vrrp: &VrrpSection, i: &VrrpInstance) -> Result<InstanceSetup, SetupError> {
    let name = i.name.clone();
    let interface = i
        .interface
        .clone()
        .ok_or_else(|| SetupError::NoInterface(name.clone()))?;
    let ipv6 = i
        .virtual_addresses
        .first()
        .is_some_and(|a| a.address.is_ipv6());
    let same_family = |ip: IpAddr| {
        if ip.is_ipv6() == ipv6 {
            Ok(ip)
        } else {
            Err(SetupError::Family(name.clone(), ip))
        }
    };
    let auth = match &i.authentication {
        None => Auth::None,
        Some(a) if a.auth_type == AuthType::Ah => return Err(SetupError::Ah(name.clone())),
        Some(a) => {
            let mut pw = [0u8; 8];
            for (d, s) in pw.iter_mut().zip(a.password.bytes()) {
                *d = s;
            }
            Auth::Pass(pw)
        }
    };
    let mut addresses = Vec::new();
    let mut vips = Vec::new();
    for (advertised, list) in [(true, &i.virtual_addresses), (false, &i.excluded_addresses)] {
        for a in list {
            if advertised {
                same_family(a.address)?;
                addresses.push(a.address);
            }
            let dev = a.dev.clone().unwrap_or_else(|| interface.clone());
            vips.push((
                dev,
                Vip {
                    addr: a.address,
                    prefix: a.prefix_len,
                    label: a.label.clone(),
                    scope: match a.scope {
                        None | Some(Scope::Global) | Some(Scope::Nowhere) => vip::Scope::Global,
                        Some(Scope::Site) => vip::Scope::Site,
                        Some(Scope::Link) => vip::Scope::Link,
                        Some(Scope::Host) => vip::Scope::Host,
                    },
                },
            ));
        }
    }
    let source = match i.unicast_src_ip.or(i.mcast_src_ip) {
        Some(ip) => Some(same_family(ip)?),
        None => None,
    };
    let peers = i
        .unicast_peers
        .iter()
        .map(|p| same_family(p.address))
        .collect::<Result<Vec<_>, _>>()?;
    let version = match i.version {
        VrrpVersion::V2 => Version::V2,
        VrrpVersion::V3 => Version::V3,
    };
    let interval_cs = u16::try_from(i.advert_int.0 / 10_000)
        .unwrap_or(u16::MAX)
        .max(1);
    let g = &i.garp;
    let us = |m: flotilla_config::model::Micros| Duration::from_micros(m.0);
    let mut params = Params::new(
        i.vrid,
        version,
        i.priority,
        interval_cs,
        // Replaced by the interface's own address when no source is configured.
        source.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    );
    params.preempt = i.preempt;
    params.preempt_delay = us(i.preempt_delay);
    params.addresses = addresses;
    params.auth = auth;
    params.garp = GarpPolicy {
        master_repeat: g.master_repeat,
        master_delay: us(g.master_delay),
        master_refresh: us(g.master_refresh),
        master_refresh_repeat: g.master_refresh_repeat,
        lower_prio_repeat: g.lower_prio_repeat,
        lower_prio_delay: us(g.lower_prio_delay),
    };
    params.lower_prio_no_advert = i.lower_prio_no_advert;
    params.higher_prio_send_advert = i.higher_prio_send_advert;
    params.down_timer_adverts = i.down_timer_adverts;
    // Only used on a takeover the fleet orders: the advert that makes the old owner let go
    // waits for the first GARP round to leave (the instance reports it, after the addresses
    // were added); this is the deadline should the report not come: half an advert interval.
    // A timed guess alone (it was 30 ms + 2 ms per address) is not enough on a busy machine,
    // where the announcer's task may run later than that.
    params.takeover_advert_delay = Duration::from_millis(u64::from(interval_cs) * 5);
    // And not before this, however early the GARP left: the old owner keeps the addresses
    // so long after the clients were told, and its replies to requests it already has
    // still leave (with the advert right after the GARP they would have about a millisecond).
    params.takeover_advert_min = (Duration::from_millis(30)
        + Duration::from_millis(2)
            .saturating_mul(u32::try_from(params.addresses.len()).unwrap_or(u32::MAX)))
    .min(params.takeover_advert_delay);
    let mut tracked = Vec::new();
    if !i.dont_track_primary {
        tracked.push(Tracked::interface(&interface, 0, false));
    }
    tracked.extend(
        i.track_interfaces
            .iter()
            .map(|t| Tracked::interface(&t.name, t.weight, t.reverse)),
    );
    let mut trackers = Vec::new();
    add_trackers(
        vrrp,
        &i.track_scripts,
        &i.track_files,
        &i.track_processes,
        &mut tracked,
        &mut trackers,
    );
    Ok(InstanceSetup {
        name,
        interface,
        tracked,
        trackers,
        params,
        source,
        peers,
        ipv6,
        vips,
        check_unicast_src: i.check_unicast_src,
        nopreempt: !i.preempt,
        skip_check_adv_addr: i.skip_check_adv_addr,
        notify: Notify {
            master: i.notify.master.clone(),
            backup: i.notify.backup.clone(),
            fault: i.notify.fault.clone(),
            stop: i.notify.stop.clone(),
            any: i.notify.any.clone(),
            master_rx_lower_pri: i.notify_master_rx_lower_pri.clone(),
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use flotilla_config::{LoadOptions, load_str};

    use super::*;

    fn setups(text: &str) -> Result<Vec<InstanceSetup>, SetupError> {
        let l = load_str(Path::new("t.conf"), text, &LoadOptions::default());
        assert!(l.is_ok(), "{}", l.report());
        units(&l.config).map(|u| u.into_iter().flat_map(|u| u.members).collect())
    }

    const PAIR: &str = "vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    nopreempt
    authentication {
        auth_type PASS
        auth_pass secret
    }
    unicast_src_ip 10.0.0.1
    unicast_peer {
        10.0.0.2
    }
    virtual_ipaddress {
        10.0.0.100/24 dev eth0 label eth0:vip
    }
    virtual_ipaddress_excluded {
        10.0.1.100/32 dev eth1
    }
    notify_master /bin/true
    notify /usr/local/bin/n
}
";

    #[test]
    fn a_keepalived_instance_maps_to_router_parameters() {
        let s = setups(PAIR).unwrap();
        let s = &s[0];
        assert_eq!(s.name, "VI_1");
        assert_eq!(s.interface, "eth0");
        let p = &s.params;
        assert_eq!((p.vrid, p.priority, p.advert_interval_cs), (51, 150, 100));
        assert_eq!(p.version, Version::V2);
        assert!(!p.preempt);
        assert_eq!(p.auth, Auth::Pass(*b"secret\0\0"));
        assert_eq!(
            p.addresses,
            vec![IpAddr::from([10, 0, 0, 100])],
            "only advertised VIPs"
        );
        assert_eq!(s.source, Some(IpAddr::from([10, 0, 0, 1])));
        assert_eq!(s.peers, vec![IpAddr::from([10, 0, 0, 2])]);
        assert!(!s.ipv6);
        assert_eq!(s.vips.len(), 2);
        assert_eq!(s.vips[0].0, "eth0");
        assert_eq!(s.vips[0].1.label.as_deref(), Some("eth0:vip"));
        assert_eq!((s.vips[1].0.as_str(), s.vips[1].1.prefix), ("eth1", 32));
        assert_eq!(p.garp.master_repeat, 5, "keepalived's GARP defaults");
        assert_eq!(s.notify.master.as_ref().unwrap().argv, ["/bin/true"]);
        assert_eq!(s.notify.any.as_ref().unwrap().argv, ["/usr/local/bin/n"]);
    }

    #[test]
    fn an_instance_tracks_its_own_interface_unless_told_not_to() {
        let names = |text: &str| -> Vec<(String, i32)> {
            setups(text).unwrap()[0]
                .tracked
                .iter()
                .map(|t| (t.source.to_string(), t.weight))
                .collect()
        };
        assert_eq!(names(PAIR), [("interface eth0".to_string(), 0)]);
        let with = PAIR.replace(
            "    nopreempt\n",
            "    nopreempt\n    dont_track_primary\n    track_interface {\n        eth1 weight -20\n    }\n",
        );
        assert_eq!(names(&with), [("interface eth1".to_string(), -20)]);
    }

    #[test]
    fn sync_groups_are_one_unit_and_other_instances_their_own() {
        let second = PAIR
            .replace("VI_1", "VI_2")
            .replace("virtual_router_id 51", "virtual_router_id 52")
            .replace("10.0.0.100/24", "10.0.0.101/24")
            .replace("10.0.1.100/32", "10.0.1.101/32");
        let third = PAIR
            .replace("VI_1", "VI_3")
            .replace("virtual_router_id 51", "virtual_router_id 53")
            .replace("10.0.0.100/24", "10.0.0.103/24")
            .replace("10.0.1.100/32", "10.0.1.103/32");
        let text = format!(
            "{PAIR}{second}{third}vrrp_sync_group G {{\n group {{\n VI_2\n VI_1\n }}\n notify_master /bin/true\n}}\n"
        );
        let l = load_str(Path::new("t.conf"), &text, &LoadOptions::default());
        assert!(l.is_ok(), "{}", l.report());
        let u = units(&l.config).unwrap();
        let shape: Vec<(&str, bool, Vec<&str>)> = u
            .iter()
            .map(|u| {
                (
                    u.name.as_str(),
                    u.group.is_some(),
                    u.members.iter().map(|m| m.name.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("G", true, vec!["VI_2", "VI_1"]),
                ("VI_3", false, vec!["VI_3"])
            ]
        );
        assert!(u[0].group.as_ref().unwrap().master.is_some());
    }

    #[test]
    fn scripts_files_and_processes_are_tracked_with_resolved_weights() {
        let defs = "vrrp_script chk {\n script /bin/true\n weight -30\n}\n\
                    track_file tf {\n file /run/w\n}\n\
                    vrrp_track_process haproxy {\n process haproxy\n weight 10\n}\n";
        let inst = PAIR.replace(
            "    nopreempt\n",
            "    nopreempt\n    track_script {\n        chk\n    }\n    track_file {\n        tf weight 5 reverse\n    }\n    track_process {\n        haproxy\n    }\n",
        );
        let s = setups(&format!("{defs}{inst}")).unwrap();
        let got: Vec<_> = s[0]
            .tracked
            .iter()
            .map(|t| (t.source.clone(), t.weight, t.reverse))
            .collect();
        assert_eq!(
            got,
            [
                (Source::Interface("eth0".into()), 0, false),
                (Source::Script("chk".into()), -30, false),
                (Source::File("tf".into()), 5, true),
                (Source::Process("haproxy".into()), 10, false),
            ],
            "the script's own weight, or the entry's override"
        );
        assert_eq!(s[0].trackers.len(), 3);
        // In a sync group the group's trackers reach every member, with weight 0.
        let group = format!(
            "{defs}{PAIR}vrrp_sync_group G {{\n group {{\n VI_1\n }}\n track_script {{\n chk weight 20\n }}\n}}\n"
        );
        let s = setups(&group).unwrap();
        assert!(s[0].tracked.contains(&Tracked {
            source: Source::Script("chk".into()),
            weight: 0,
            reverse: false
        }));
    }

    #[test]
    fn a_fleet_config_is_run_with_the_directors_addresses_and_interfaces() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster-configs/lab.conf");
        let l = flotilla_config::load_file(&path, &LoadOptions::default());
        assert!(l.is_ok(), "{}", l.report());
        let fleet = units_for_director(&l.config, "d2").unwrap();
        assert_eq!(fleet.len(), 10, "8 instances alone and 2 sync groups");
        let m = &fleet[0].members[0];
        assert_eq!(m.source, Some(IpAddr::from([10, 99, 0, 2])));
        assert_eq!(
            m.peers,
            [IpAddr::from([10, 99, 0, 1]), IpAddr::from([10, 99, 0, 3])]
        );
        assert_eq!(m.params.priority, UNPLACED_PRIORITY);
        assert!(m.params.preempt);
        assert_eq!(
            units_for_director(&l.config, "d9"),
            Err(SetupError::UnknownDirector("d9".into()))
        );
        assert_eq!(units(&l.config), Err(SetupError::ClusterMode));
        assert_eq!(
            (rank_priority(0), rank_priority(1), rank_priority(2)),
            (250, 240, 230)
        );
        assert_eq!(rank_priority(100), 20);
    }

    #[test]
    fn other_families_and_cluster_mode_are_handled() {
        let v6 = "vrrp_instance V6 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n fd00::1/64\n }\n}\n";
        let s = setups(v6).unwrap();
        assert!(s[0].ipv6);
        assert_eq!(s[0].params.version, Version::V3, "IPv6 is always VRRPv3");
        let cluster =
            format!("{PAIR}cluster {{\n name x\n director a {{ address 10.0.0.1 }}\n}}\n");
        let l = load_str(Path::new("t.conf"), &cluster, &LoadOptions::default());
        assert_eq!(units(&l.config), Err(SetupError::ClusterMode));
    }
}
