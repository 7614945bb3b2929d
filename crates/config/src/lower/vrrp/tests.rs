//! Tests of the VRRP and `global_defs` lowering: one per rule, the corpus samples, and a
//! print → load round trip over generated models.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::Path;

use crate::model::common::Micros;
use crate::model::vrrp::{
    AuthType, Broadcast, Family, InitialState, PreferredLifetime, RouteType, RuleAction, Scope,
    VrrpInstance, VrrpVersion,
};
use crate::{Config, LoadOptions, Loaded, Severity, load_str};

fn load(text: &str) -> Loaded {
    load_str(Path::new("t.conf"), text, &LoadOptions::default())
}

/// Diagnostics as `line:col: severity: message`, in file order.
fn diags(l: &Loaded) -> Vec<String> {
    l.diagnostics
        .sorted()
        .iter()
        .map(|d| {
            let s = d.span.unwrap();
            format!("{}:{}: {}: {}", s.line, s.col, d.severity, d.message)
        })
        .collect()
}

fn errors(l: &Loaded) -> Vec<String> {
    diags(l)
        .into_iter()
        .filter(|d| d.contains(": error: "))
        .collect()
}

/// Loads text that must produce no diagnostics at all.
fn clean(text: &str) -> Config {
    let l = load(text);
    assert!(l.diagnostics.is_empty(), "{}", l.report());
    l.config
}

/// Asserts one diagnostic starting with `prefix` (`line:col: severity: …`) contains `needle`.
fn has(l: &Loaded, prefix: &str, needle: &str) {
    let d = diags(l);
    assert!(
        d.iter()
            .any(|x| x.starts_with(prefix) && x.contains(needle)),
        "no '{prefix}…{needle}' in:\n{}",
        d.join("\n")
    );
}

fn inst<'a>(c: &'a Config, name: &str) -> &'a VrrpInstance {
    c.vrrp.instance(name).unwrap()
}

const BASIC: &str = "\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.168.200.16
    }
}
";

#[test]
fn defaults_are_resolved() {
    let c = clean(BASIC);
    let v = inst(&c, "VI_1");
    assert_eq!(v.interface.as_deref(), Some("eth0"));
    assert_eq!(v.vrid, 51);
    assert_eq!(v.priority, 100);
    assert!(!v.priority_set && !v.state_set);
    assert_eq!(v.state, InitialState::Backup);
    assert_eq!(v.advert_int, Micros::from_secs(1));
    assert_eq!(v.version, VrrpVersion::V2);
    assert_eq!(v.family, Family::Ipv4);
    assert!(v.preempt && v.accept && !v.strict_mode);
    assert_eq!(v.garp.master_delay, Micros::from_secs(5));
    assert_eq!(v.garp.master_repeat, 5);
    assert_eq!(v.garp.master_refresh, Micros(0));
    assert_eq!(v.garp.master_refresh_repeat, 1);
    assert_eq!(v.garp.lower_prio_delay, Micros::from_secs(5));
    assert_eq!(v.garp.lower_prio_repeat, 5);
    assert_eq!(v.down_timer_adverts, 3);
    assert_eq!(v.unicast_ttl, 255);
    let a = &v.virtual_addresses[0];
    assert_eq!(a.address, "192.168.200.16".parse::<IpAddr>().unwrap());
    assert_eq!(a.prefix_len, 32);
}

#[test]
fn state_master_without_priority_is_owner() {
    let c = clean(&BASIC.replace("interface eth0", "interface eth0\n    state MASTER"));
    let v = inst(&c, "VI_1");
    assert_eq!(v.priority, 255);
    assert!(v.state_set && !v.priority_set);
    assert_eq!(v.state, InitialState::Master);
}

#[test]
fn priority_255_without_state_starts_master() {
    let c = clean(&BASIC.replace("interface eth0", "interface eth0\n    priority 255"));
    assert_eq!(inst(&c, "VI_1").state, InitialState::Master);
}

#[test]
fn globals_fill_instances_even_when_written_after_them() {
    let text = format!(
        "{BASIC}global_defs {{\n    vrrp_version 3\n    vrrp_garp_master_repeat 2\n    vrrp_strict\n}}\n"
    );
    let c = clean(&text);
    let v = inst(&c, "VI_1");
    assert_eq!(v.version, VrrpVersion::V3);
    assert_eq!(v.garp.master_repeat, 2);
    assert_eq!(
        v.garp.lower_prio_repeat, 0,
        "strict: no lower-priority GARP repeats"
    );
    assert!(v.lower_prio_no_advert && v.strict_mode);
    assert!(!v.accept, "strict mode defaults non-owners to no_accept");
}

#[test]
fn ipv6_instances_use_version_3() {
    let c = clean(
        "vrrp_instance V6 {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress {\n  2001:db8::1/64\n }\n}\n",
    );
    let v = inst(&c, "V6");
    assert_eq!(v.family, Family::Ipv6);
    assert_eq!(v.version, VrrpVersion::V3);
    assert_eq!(v.virtual_addresses[0].prefix_len, 64);
}

#[test]
fn explicit_v2_with_ipv6_is_an_error() {
    let l = load(
        "vrrp_instance V6 {\n interface eth0\n virtual_router_id 3\n version 2\n virtual_ipaddress {\n  2001:db8::1\n }\n}\n",
    );
    has(&l, "4:2: error:", "VRRP version 2 cannot carry IPv6");
    assert_eq!(inst(&l.config, "V6").version, VrrpVersion::V3);
}

#[test]
fn vrid_is_required_and_ranged() {
    let l = load("vrrp_instance A {\n interface eth0\n}\n");
    has(&l, "1:1: error:", "needs 'virtual_router_id 1-255'");
    let l = load("vrrp_instance A {\n interface eth0\n virtual_router_id 256\n}\n");
    has(&l, "3:20: error:", "virtual_router_id 256 is out of range");
    let l = load("vrrp_instance A {\n interface eth0\n virtual_router_id 0\n}\n");
    has(&l, "3:20: error:", "out of range");
}

#[test]
fn priority_is_ranged() {
    let l = load(&BASIC.replace("interface eth0", "interface eth0\n    priority 0"));
    has(&l, "3:14: error:", "priority 0 is out of range");
    let l = load(&BASIC.replace("interface eth0", "interface eth0\n    priority 256"));
    has(&l, "3:14: error:", "priority 256 is out of range");
}

#[test]
fn v2_advert_int_fraction_is_rounded_with_a_warning() {
    let l = load(&BASIC.replace("interface eth0", "interface eth0\n    advert_int 1.5"));
    has(
        &l,
        "3:16: warning:",
        "whole seconds: 1.5 s is rounded to 2 s",
    );
    assert!(l.is_ok());
    assert_eq!(inst(&l.config, "VI_1").advert_int, Micros::from_secs(2));
    let l = load(&BASIC.replace("interface eth0", "interface eth0\n    advert_int 0.1"));
    assert_eq!(inst(&l.config, "VI_1").advert_int, Micros::from_secs(1));
}

#[test]
fn v3_advert_int_is_centiseconds_up_to_40_95() {
    let v3 = BASIC.replace(
        "interface eth0",
        "interface eth0\n    version 3\n    advert_int",
    );
    let c = clean(&v3.replace("advert_int", "advert_int 0.05"));
    assert_eq!(inst(&c, "VI_1").advert_int, Micros(50_000));
    let l = load(&v3.replace("advert_int", "advert_int 41"));
    has(
        &l,
        "4:16: error:",
        "out of range for VRRPv3 (at most 40.95 s)",
    );
    let l = load(&v3.replace("advert_int", "advert_int 0.015"));
    has(
        &l,
        "4:16: warning:",
        "units of 10 ms: 0.015 s is rounded to 0.02 s",
    );
    let l = load(&v3.replace("advert_int", "advert_int 0.001"));
    has(&l, "4:16: error:", "out of range");
}

#[test]
fn tracker_weights_are_bounded() {
    let text = "vrrp_script chk {\n script \"/bin/true\"\n weight 254\n}\n";
    let l = load(text);
    has(
        &l,
        "3:9: error:",
        "weight 254 is out of range: it must be between -253 and 253",
    );
    let text = format!(
        "vrrp_script chk {{\n script \"/bin/true\"\n}}\n{}",
        BASIC.replace(
            "interface eth0",
            "interface eth0\n    track_script {\n        chk weight -254\n    }\n    track_interface {\n        eth1 weight 300\n    }"
        )
    );
    let l = load(&text);
    has(&l, "7:20: error:", "weight -254 is out of range");
    has(&l, "10:21: error:", "weight 300 is out of range");
}

#[test]
fn duplicate_vrid_on_one_interface_points_at_both() {
    let text = format!(
        "{BASIC}{}",
        BASIC.replace("VI_1", "VI_2").replace(".16", ".17")
    );
    let l = load(&text);
    has(
        &l,
        "8:1: error:",
        "VI_1 and VI_2 both use VRID 51 with IPv4 on interface eth0 (VI_1 is at line 1)",
    );
    assert_eq!(errors(&l).len(), 1);
}

#[test]
fn same_vrid_on_other_interface_or_family_is_fine() {
    let other_if = BASIC.replace("VI_1", "VI_2").replace("eth0", "eth1");
    clean(&format!("{BASIC}{other_if}"));
    let v6 = BASIC
        .replace("VI_1", "VI_3")
        .replace("192.168.200.16", "2001:db8::1");
    clean(&format!("{BASIC}{v6}"));
}

#[test]
fn unicast_vrids_conflict_only_with_shared_peers() {
    let uni = |name: &str, src: &str, peer: &str| {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id 9\n unicast_src_ip {src}\n unicast_peer {{\n  {peer}\n }}\n virtual_ipaddress {{\n  10.0.0.100\n }}\n}}\n"
        )
    };
    clean(&format!(
        "{}{}",
        uni("A", "10.0.0.1", "10.0.0.2"),
        uni("B", "10.0.0.1", "10.0.0.3")
    ));
    clean(&format!(
        "{}{}",
        uni("A", "10.0.0.1", "10.0.0.2"),
        uni("B", "10.0.0.5", "10.0.0.2")
    ));
    let l = load(&format!(
        "{}{}",
        uni("A", "10.0.0.1", "10.0.0.2"),
        uni("B", "10.0.0.1", "10.0.0.2")
    ));
    has(&l, "12:1: error:", "A and B both use VRID 9");
    // A unicast and a multicast instance never take each other's adverts.
    clean(&format!(
        "{}{}",
        uni("A", "10.0.0.1", "10.0.0.2"),
        BASIC.replace("51", "9")
    ));
}

#[test]
fn sync_group_members_must_exist_once() {
    let text = format!(
        "{BASIC}vrrp_sync_group G1 {{\n group {{\n  VI_1\n  VI_9\n }}\n}}\nvrrp_sync_group G2 {{\n group {{\n  VI_1\n }}\n}}\n"
    );
    let l = load(&text);
    has(
        &l,
        "8:1: error:",
        "sync group G1: member 'VI_9' is not a vrrp_instance",
    );
    has(
        &l,
        "14:1: error:",
        "instance VI_1 is already in sync group G1 (the first is at line 8)",
    );
    let g = &l.config.vrrp.sync_groups[0];
    assert_eq!(g.members, ["VI_1", "VI_9"]);
}

#[test]
fn sync_group_members_on_one_line() {
    let text = format!(
        "{BASIC}{}vrrp_sync_group G {{\n group {{ VI_1 VI_2 }}\n notify_master \"/bin/echo master\"\n}}\n",
        BASIC.replace("VI_1", "VI_2").replace("51", "52")
    );
    let c = clean(&text);
    let g = &c.vrrp.sync_groups[0];
    assert_eq!(g.members, ["VI_1", "VI_2"]);
    assert_eq!(
        g.notify.master.as_ref().unwrap().argv,
        ["/bin/echo", "master"]
    );
    assert_eq!(c.vrrp.sync_group_of("VI_2").unwrap().name, "G");
}

#[test]
fn notify_priority_changes_and_smtp_alert_cascade() {
    let text = format!(
        "vrrp_sync_group G {{\n group {{\n  VI_1\n }}\n notify_priority_changes\n}}\n{BASIC}{}global_defs {{\n smtp_alert_vrrp\n}}\n",
        BASIC.replace("VI_1", "VI_2").replace("51", "52")
    );
    let c = clean(&text);
    assert!(inst(&c, "VI_1").notify_priority_changes);
    assert!(!inst(&c, "VI_2").notify_priority_changes);
    assert!(inst(&c, "VI_1").smtp_alert && inst(&c, "VI_2").smtp_alert);
}

#[test]
fn sync_group_without_group_block_is_reported() {
    // keepalived.conf.vrrp.lvs_syncd writes the members without 'group { }'.
    let l = load("vrrp_sync_group VG1 {\n VI_2\n VI_3\n}\n");
    has(
        &l,
        "2:2: warning:",
        "unknown keyword 'VI_2' in vrrp_sync_group",
    );
    has(&l, "1:1: error:", "sync group VG1 has no members");
}

#[test]
fn mixed_family_vips_are_an_error_but_excluded_may_mix() {
    let l = load(&BASIC.replace(
        "        192.168.200.16\n",
        "        192.168.200.16\n        2001:db8::5\n",
    ));
    has(
        &l,
        "6:9: error:",
        "virtual_ipaddress mixes families: 2001:db8::5 is IPv6",
    );
    clean(&BASIC.replace(
        "interface eth0",
        "interface eth0\n    virtual_ipaddress_excluded {\n        10.1.1.1/24\n        2001:db8::7/64\n    }",
    ));
}

#[test]
fn garp_and_gna_interval_zero_are_outside_range() {
    let l = load("global_defs {\n vrrp_garp_interval 0\n vrrp_gna_interval 0\n}\n");
    has(&l, "2:21: error:", "vrrp_garp_interval 0 is outside range");
    has(&l, "3:20: error:", "vrrp_gna_interval 0 is outside range");
    assert_eq!(l.config.global.vrrp_garp_interval, Micros(0));
    let c = clean("global_defs {\n vrrp_garp_interval 0.001\n vrrp_gna_interval 0.000001\n}\n");
    assert_eq!(c.global.vrrp_garp_interval, Micros(1000));
    assert_eq!(c.global.vrrp_gna_interval, Micros(1));
}

#[test]
fn long_pass_is_truncated_with_a_warning() {
    let l = load(&BASIC.replace(
        "interface eth0",
        "interface eth0\n    authentication {\n        auth_type PASS\n        auth_pass 1234567890\n    }",
    ));
    has(&l, "5:19: warning:", "longer than 8 characters");
    assert!(l.is_ok());
    let a = inst(&l.config, "VI_1").authentication.as_ref().unwrap();
    assert_eq!(
        (a.auth_type, a.password.as_str()),
        (AuthType::Pass, "12345678")
    );
}

#[test]
fn authentication_with_v3_is_an_error() {
    let l = load(&BASIC.replace(
        "interface eth0",
        "interface eth0\n    version 3\n    authentication {\n        auth_type PASS\n        auth_pass secret\n    }",
    ));
    has(
        &l,
        "4:5: error:",
        "VRRP version 3 does not support authentication",
    );
    assert!(inst(&l.config, "VI_1").authentication.is_none());
}

#[test]
fn undefined_trackers_are_errors() {
    let l = load(&BASIC.replace(
        "interface eth0",
        "interface eth0\n    track_script {\n        nope\n    }\n    track_file {\n        nofile weight 2\n    }\n    track_process {\n        noproc\n    }",
    ));
    has(
        &l,
        "4:9: error:",
        "track_script names 'nope', but no valid vrrp_script",
    );
    has(&l, "7:9: error:", "track_file names 'nofile'");
    has(&l, "10:9: error:", "track_process names 'noproc'");
}

#[test]
fn vrrp_script_needs_a_script() {
    let l = load("vrrp_script chk {\n interval 2\n}\n");
    has(&l, "1:1: error:", "vrrp_script chk has no 'script'");
    assert!(l.config.vrrp.scripts.is_empty());
}

#[test]
fn trackers_are_read() {
    let text = format!(
        "vrrp_script chk {{\n script \"/usr/bin/check 'a b'\" nobody nogroup\n interval 0.5\n weight -20 reverse\n rise 2\n fall 3\n init_fail\n}}\n\
         track_file tf {{\n file /run/prio\n weight -3\n init_file 7 overwrite\n}}\n\
         vrrp_track_process tp {{\n process haproxy -f x\n param_match partial\n weight 5\n quorum 2\n quorum_max 4\n delay 1.5\n full_command\n}}\n{}",
        BASIC.replace(
            "interface eth0",
            "interface eth0\n    track_script {\n        chk weight 10 noreverse\n    }\n    track_file {\n        tf\n    }\n    track_process {\n        tp weight -7 reverse\n    }\n    track_interface {\n        eth1 weight -10 reverse\n        eth2\n    }"
        )
    );
    let c = clean(&text);
    let s = c.vrrp.script("chk").unwrap();
    assert_eq!(s.script.argv, ["/usr/bin/check", "a b"]);
    assert_eq!(s.script.user.as_deref(), Some("nobody"));
    assert_eq!(s.script.group.as_deref(), Some("nogroup"));
    assert_eq!((s.interval, s.timeout), (Micros(500_000), Micros(500_000)));
    assert_eq!(
        (s.weight, s.reverse, s.rise, s.fall, s.init_fail),
        (-20, true, 2, 3, true)
    );
    let f = c.vrrp.track_file("tf").unwrap();
    assert_eq!((f.weight, f.init_file.as_ref().unwrap().value), (-3, 7));
    let p = c.vrrp.track_process("tp").unwrap();
    assert_eq!(p.process, ["haproxy", "-f", "x"]);
    assert_eq!((p.quorum, p.quorum_max), (2, 4));
    assert_eq!(p.delay, Micros(1_500_000));
    assert_eq!(p.terminate_delay, Micros(1_500_000));
    let v = inst(&c, "VI_1");
    assert_eq!(c.vrrp.script_weight(&v.track_scripts[0]), (10, false));
    assert_eq!(c.vrrp.file_weight(&v.track_files[0]), (-3, false));
    assert_eq!(c.vrrp.process_weight(&v.track_processes[0]), (-7, true));
    assert_eq!(v.track_interfaces[0].weight, -10);
    assert!(v.track_interfaces[0].reverse);
    assert_eq!(v.track_interfaces[1].weight, 0);
}

#[test]
fn weights_on_owners_and_sync_members_are_errors() {
    let text = format!(
        "vrrp_script chk {{\n script /bin/true\n weight 10\n}}\n{}{}vrrp_sync_group G {{\n group {{\n  VI_2\n }}\n}}\n",
        BASIC.replace(
            "interface eth0",
            "interface eth0\n    priority 255\n    track_script {\n        chk\n    }"
        ),
        BASIC.replace("VI_1", "VI_2").replace("51", "52").replace(
            "interface eth0",
            "interface eth0\n    track_interface {\n        eth1 weight 5\n    }\n    track_script {\n        chk weight 0\n    }"
        ),
    );
    let l = load(&text);
    has(
        &l,
        "9:9: error:",
        "(VI_1) tracked script chk has weight 10, which keepalived ignores: the address owner's priority",
    );
    has(
        &l,
        "19:9: error:",
        "(VI_2) tracked interface eth1 has weight 5",
    );
    assert_eq!(errors(&l).len(), 2, "{}", l.report());
}

#[test]
fn strict_mode_rules_match_keepalived() {
    let text = "global_defs {\n vrrp_strict\n}\nvrrp_instance VI_1 {\n state MASTER\n interface eth0\n virtual_router_id 50\n priority 100\n authentication {\n  auth_type PASS\n  auth_pass 1111\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n";
    let l = load(text);
    has(
        &l,
        "5:2: error:",
        "State MASTER must match being address owner",
    );
    has(
        &l,
        "9:2: error:",
        "Strict mode does not support authentication",
    );
    let v = inst(&l.config, "VI_1");
    assert_eq!(v.state, InitialState::Backup);
    assert!(v.authentication.is_none());
}

#[test]
fn strict_ipv6_needs_a_link_local_first_vip() {
    let v6 = "vrrp_instance V6 {\n interface eth0\n virtual_router_id 3\n strict_mode\n virtual_ipaddress {\n  2001:db8::1\n  fe80::1\n }\n}\n";
    let l = load(v6);
    has(
        &l,
        "6:3: error:",
        "the first IPv6 VIP address must be link local",
    );
    clean(&v6.replace("  2001:db8::1\n  fe80::1", "  fe80::1\n  2001:db8::1"));
}

#[test]
fn strict_mode_refuses_unicast_and_preempt_delay() {
    let l = load(&BASIC.replace(
        "interface eth0",
        "interface eth0\n    strict_mode on\n    preempt_delay 10\n    unicast_peer {\n        10.0.0.2\n    }",
    ));
    has(
        &l,
        "4:5: error:",
        "preempt_delay is incompatible with strict mode",
    );
    has(
        &l,
        "5:5: error:",
        "Unicast peers are not supported in strict mode",
    );
}

#[test]
fn nopreempt_and_preempt_delay_with_master_are_cleared() {
    let l = load(&BASIC.replace(
        "interface eth0",
        "interface eth0\n    state MASTER\n    priority 150\n    nopreempt\n    preempt_delay 5",
    ));
    has(
        &l,
        "5:5: warning:",
        "nopreempt does not work with state MASTER; cleared",
    );
    has(
        &l,
        "6:5: warning:",
        "preempt_delay does not work with state MASTER; cleared",
    );
    assert!(l.is_ok());
    let v = inst(&l.config, "VI_1");
    assert!(v.preempt);
    assert_eq!(v.preempt_delay, Micros(0));
    let c = clean(&BASIC.replace("interface eth0", "interface eth0\n    nopreempt"));
    assert!(!inst(&c, "VI_1").preempt);
}

#[test]
fn timer_expired_backup_needs_nopreempt() {
    let c = clean(&BASIC.replace(
        "interface eth0",
        "interface eth0\n    nopreempt\n    timer_expired_backup\n    old_unicast_checksum never",
    ));
    let v = inst(&c, "VI_1");
    assert_eq!(v.timer_expired_backup, Some(254));
    assert_eq!(
        v.unicast_checksum_compat,
        crate::model::vrrp::ChecksumCompat::Never
    );
    let l = load(&BASIC.replace(
        "interface eth0",
        "interface eth0\n    thread_timer_expired 100",
    ));
    has(&l, "3:5: error:", "timer_expired_backup requires nopreempt");
    assert_eq!(inst(&l.config, "VI_1").timer_expired_backup, None);
}

#[test]
fn interface_is_required_except_for_unicast() {
    let l =
        load("vrrp_instance A {\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n");
    has(&l, "1:1: error:", "needs 'interface IF'");
    clean(
        "vrrp_instance A {\n virtual_router_id 1\n unicast_src_ip 10.0.0.1\n unicast_peer {\n  10.0.0.2\n }\n virtual_ipaddress {\n  10.0.0.100\n }\n}\n",
    );
}

#[test]
fn unicast_src_ip_family_must_match() {
    let l = load(&BASIC.replace(
        "interface eth0",
        "interface eth0\n    unicast_src_ip 2001:db8::1\n    unicast_peer {\n        10.0.0.2 min_ttl 250 max_ttl 255\n    }",
    ));
    has(
        &l,
        "3:5: error:",
        "unicast_src_ip 2001:db8::1 is IPv6 but the instance is IPv4",
    );
    let p = &inst(&l.config, "VI_1").unicast_peers[0];
    assert_eq!((p.min_ttl, p.max_ttl), (Some(250), Some(255)));
}

#[test]
fn vip_options_are_typed() {
    let c = clean(&BASIC.replace(
        "        192.168.200.16\n",
        "        192.168.200.16/24 brd 192.168.200.255 dev eth1 scope link label eth1:vip no_track\n        192.168.200.17/24 brd + peer 192.168.200.1/32 preferred_lft forever noprefixroute\n",
    ));
    let v = inst(&c, "VI_1");
    let a = &v.virtual_addresses[0];
    assert_eq!(a.prefix_len, 24);
    assert_eq!(
        a.broadcast,
        Some(Broadcast::Address("192.168.200.255".parse().unwrap()))
    );
    assert_eq!(a.dev.as_deref(), Some("eth1"));
    assert_eq!(a.scope, Some(Scope::Link));
    assert_eq!(a.label.as_deref(), Some("eth1:vip"));
    assert!(a.no_track);
    let b = &v.virtual_addresses[1];
    assert_eq!(b.broadcast, Some(Broadcast::Auto));
    assert_eq!(b.peer, Some(("192.168.200.1".parse().unwrap(), 32)));
    assert_eq!(b.preferred_lft, Some(PreferredLifetime::Forever));
    assert!(b.noprefixroute);
}

#[test]
fn two_addresses_on_one_line_are_an_error() {
    let l = load(&BASIC.replace("192.168.200.16", "192.168.200.16 192.168.200.17"));
    has(
        &l,
        "5:24: error:",
        "unknown address option '192.168.200.17' (one address per line",
    );
}

#[test]
fn extra_tokens_and_unknown_keywords_warn() {
    let l = load(&BASIC.replace("virtual_router_id 51", "virtual_router_id 51 priority 50"));
    has(
        &l,
        "3:26: warning:",
        "extra tokens after 'virtual_router_id' ignored: 'priority 50'",
    );
    assert_eq!(inst(&l.config, "VI_1").priority, 100);
    let l = load(&BASIC.replace("interface eth0", "interface eth0\n    bogus 1"));
    has(
        &l,
        "3:5: warning:",
        "unknown keyword 'bogus' in vrrp_instance",
    );
}

#[test]
fn p2_keywords_are_accepted_not_acted_on() {
    let l = load(&format!(
        "net_namespace blue\nglobal_defs {{\n enable_snmp_vrrp\n vrrp_rt_priority 50\n}}\nlinkbeat_interfaces {{\n eth0\n}}\n{}",
        BASIC.replace(
            "interface eth0",
            "interface eth0\n    use_vmac\n    track_src_ip"
        )
    ));
    assert!(l.is_ok(), "{}", l.report());
    for (at, kw) in [
        ("1:1:", "'net_namespace' accepted, not acted on"),
        ("3:2:", "'enable_snmp_vrrp' accepted, not acted on"),
        ("4:2:", "'vrrp_rt_priority' accepted, not acted on"),
        ("6:1:", "'linkbeat_interfaces' accepted, not acted on"),
        ("11:5:", "'use_vmac' accepted, not acted on"),
        ("12:5:", "'track_src_ip' accepted, not acted on"),
    ] {
        has(&l, &format!("{at} warning:"), kw);
    }
}

#[test]
fn global_defs_are_read() {
    let c = clean(
        "global_defs {\n router_id LVS_DEVEL\n notification_email {\n  acassen@firewall.loc\n  failover@firewall.loc\n }\n notification_email_from Alexandre.Cassen@firewall.loc\n smtp_server 192.168.200.1\n smtp_connect_timeout 30\n vrrp_skip_check_adv_addr\n vrrp_garp_master_delay 2\n vrrp_min_garp\n script_user keepalived_script\n enable_script_security\n lvs_sync_daemon eth0 VI_1 id 4 port 8849\n lvs_timeouts tcp 900 udp 30\n vrrp_notify_fifo /run/vrrp.fifo\n vrrp_notify_fifo_script \"/usr/bin/reader -v\"\n dynamic_interfaces allow_if_changes\n}\n"
            .to_string()
            .as_str()
            .replace("lvs_sync_daemon eth0 VI_1", "lvs_sync_daemon eth0")
            .as_str(),
    );
    let g = &c.global;
    assert_eq!(g.router_id.as_deref(), Some("LVS_DEVEL"));
    assert_eq!(g.email.notification_email.len(), 2);
    assert_eq!(g.email.smtp_server.as_ref().unwrap().port, 25);
    assert!(g.vrrp_skip_check_adv_addr && g.enable_script_security);
    assert_eq!(g.garp.master_delay, Micros::from_secs(2));
    assert_eq!(g.garp.master_repeat, 1, "vrrp_min_garp");
    assert_eq!(g.garp.lower_prio_delay, Micros::from_secs(2));
    let d = g.lvs_sync_daemon.as_ref().unwrap();
    assert_eq!((d.sync_id, d.port), (4, 8849));
    assert_eq!(g.lvs_timeouts.tcp, Some(900));
    let f = g.vrrp_notify_fifo.as_ref().unwrap();
    assert_eq!(f.script.as_ref().unwrap().argv, ["/usr/bin/reader", "-v"]);
}

#[test]
fn lvs_sync_daemon_instance_must_exist() {
    let l = load("global_defs {\n lvs_sync_daemon eth0 VI_9\n}\n");
    has(
        &l,
        "2:2: error:",
        "lvs_sync_daemon follows vrrp_instance 'VI_9'",
    );
}

#[test]
fn second_global_defs_is_merged_with_a_warning() {
    let l = load("global_defs {\n router_id a\n}\nglobal_defs {\n vrrp_version 3\n}\n");
    has(
        &l,
        "4:1: warning:",
        "a second global_defs block (the first is at line 1)",
    );
    assert_eq!(l.config.global.router_id.as_deref(), Some("a"));
    assert_eq!(l.config.global.vrrp_version, VrrpVersion::V3);
}

#[test]
fn own_address_as_peer_warns() {
    let l = load(&BASIC.replace(
        "interface eth0",
        "interface eth0\n    unicast_src_ip 10.0.0.1\n    unicast_peer {\n        10.0.0.1\n        10.0.0.2\n    }",
    ));
    has(
        &l,
        "5:9: warning:",
        "unicast peer 10.0.0.1 is this instance's own unicast_src_ip",
    );
}

#[test]
fn duplicate_names_are_errors() {
    let l = load(&format!("{BASIC}{}", BASIC.replace("51", "52")));
    has(
        &l,
        "8:1: error:",
        "vrrp_instance VI_1 is declared twice (the first is at line 1)",
    );
}

const CLUSTER: &str = "cluster {\n name c\n director d1 { address 10.99.0.1 }\n director d2 { address 10.99.0.2 }\n}\n";

#[test]
fn cluster_mode_derives_priority_state_and_peers() {
    let text = format!(
        "{}{CLUSTER}",
        BASIC.replace(
            "interface eth0",
            "interface eth0\n    state MASTER\n    priority 150\n    unicast_src_ip 10.0.0.1\n    unicast_peer {\n        10.0.0.2\n    }"
        )
    );
    let l = load(&text);
    assert!(l.is_ok(), "{}", l.report());
    for (at, kw) in [
        (
            "3:5:",
            "state is derived from placement/membership in cluster mode",
        ),
        ("4:5:", "priority is derived"),
        ("5:5:", "unicast_src_ip is derived"),
        ("6:5:", "unicast_peer is derived"),
    ] {
        has(&l, &format!("{at} warning:"), kw);
    }
    // Without them nothing is said, and interface may even be omitted.
    let c = clean(&format!("{BASIC}{CLUSTER}"));
    assert!(c.cluster.is_some());
}

#[test]
fn cluster_mode_vrids_are_unique_per_interface() {
    let text = format!("{BASIC}{}{CLUSTER}", BASIC.replace("VI_1", "VI_2"));
    let l = load(&text);
    has(&l, "8:1: error:", "both use VRID 51");
}

#[test]
fn interface_delays_are_read_and_checked() {
    let l = load(&format!(
        "interface_up_down_delays {{\n eth0 2.5 1\n eth1 0.5\n}}\n{BASIC}"
    ));
    has(
        &l,
        "2:2: warning:",
        "the down delay of eth0 (2.5 s) is not shorter than (down_timer_adverts − 1) × advert_int = 2 s of VI_1",
    );
    assert!(l.is_ok());
    let d = &l.config.vrrp.interface_delays;
    assert_eq!(
        (d[0].down, d[0].up),
        (Micros(2_500_000), Micros::from_secs(1))
    );
    assert_eq!((d[1].interface.as_str(), d[1].up), ("eth1", Micros(0)));
}

#[test]
fn missing_vips_warn_and_no_virtual_ipaddress_allows_it() {
    let bare = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n}\n";
    let l = load(bare);
    has(
        &l,
        "1:1: warning:",
        "(A) No VIP specified; at least one is sensible",
    );
    assert!(l.is_ok());
    let l = load(&bare.replace("interface eth0", "interface eth0\n version 3"));
    has(
        &l,
        "1:1: error:",
        "(A) No VIP specified; at least one is required",
    );
    let c = clean(&bare.replace("interface eth0", "interface eth0\n no_virtual_ipaddress"));
    assert!(inst(&c, "A").no_virtual_ipaddress);
    let again = clean(&crate::to_keepalived(&c));
    assert_eq!(c, again);
}

#[test]
fn track_interface_on_instance_and_group_is_an_error() {
    let text = format!(
        "{}vrrp_sync_group G {{\n group {{\n  VI_1\n }}\n track_interface {{\n  eth1\n }}\n}}\n",
        BASIC.replace(
            "interface eth0",
            "interface eth0\n    track_interface {\n        eth1\n    }"
        )
    );
    let l = load(&text);
    has(
        &l,
        "4:9: error:",
        "(VI_1) track_interface eth1 is configured on the instance and on its sync group G",
    );
}

#[test]
fn routes_and_rules_are_typed() {
    let c = clean(&format!(
        "static_routes {{\n 10.1.0.0/16 via 10.0.0.1 dev eth0 table main metric 5 onlink\n}}\nstatic_rules {{\n from 10.1.0.0/16 to all fwmark 0x10/0xff iif eth0 preference 100 lookup 7 no_track\n}}\n{}",
        BASIC.replace(
            "interface eth0",
            "interface eth0\n    virtual_routes {\n        default via 2001:db8::1 dev eth1\n        unreachable 10.9.0.0/16\n    }\n    virtual_rules {\n        to 10.2.0.0/16 priority 5 prohibit\n    }"
        )
    ));
    let r = &c.vrrp.static_routes[0];
    assert_eq!((r.table, r.metric, r.onlink), (Some(254), Some(5), true));
    assert_eq!(r.via, Some("10.0.0.1".parse().unwrap()));
    let u = &c.vrrp.static_rules[0];
    assert_eq!(u.fwmark, Some((16, Some(255))));
    assert_eq!(
        (u.action, u.preference, u.no_track),
        (RuleAction::Table(7), Some(100), true)
    );
    assert_eq!(u.to, None);
    let v = inst(&c, "VI_1");
    assert_eq!(
        v.virtual_routes[0].destination,
        "::".parse::<IpAddr>().unwrap()
    );
    assert_eq!(v.virtual_routes[1].kind, RouteType::Unreachable);
    assert_eq!(v.virtual_rules[0].action, RuleAction::Prohibit);
    assert_eq!(c, clean(&crate::to_keepalived(&c)));
}

#[test]
fn bad_routes_and_rules_are_reported() {
    let l = load(
        "static_routes {\n 10.1.0.0/16 via 2001:db8::1\n 10.2.0.0/16 mtu 1400\n via 10.0.0.1\n}\nstatic_rules {\n from 10.0.0.0/8 preference 1\n from 10.0.0.0/8 preference 2 table 1 blackhole\n}\n",
    );
    has(
        &l,
        "2:2: error:",
        "via 2001:db8::1 is not of the destination's family",
    );
    has(
        &l,
        "3:14: warning:",
        "route option 'mtu' is not supported by flotilla; this route is left out",
    );
    has(&l, "4:2: error:", "route without a destination");
    has(&l, "7:2: error:", "rule without an action");
    has(&l, "8:39: error:", "a rule takes one action");
    assert!(l.config.vrrp.static_routes.is_empty() && l.config.vrrp.static_rules.is_empty());
}

#[test]
fn static_ipaddress_is_read() {
    let c = clean("static_ipaddress {\n 192.168.1.98/24 dev eth0 scope global\n}\n");
    let a = &c.vrrp.static_addresses[0];
    assert_eq!(a.scope, Some(Scope::Global));
    assert_eq!(a.dev.as_deref(), Some("eth0"));
}

#[test]
fn all_errors_are_reported_in_one_run() {
    let l = load(
        "global_defs {\n vrrp_garp_interval 0\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n priority 300\n track_script {\n  missing\n }\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 1\n}\n",
    );
    let e = errors(&l);
    assert_eq!(e.len(), 4, "{}", e.join("\n"));
    assert_eq!(
        l.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count(),
        4
    );
}

#[test]
fn printed_config_loads_back_equal() {
    let text = format!(
        "global_defs {{\n vrrp_version 3\n vrrp_garp_interval 0.001\n}}\nvrrp_script chk {{\n script \"/bin/check x\"\n}}\n{}vrrp_sync_group G {{\n group {{\n  VI_1\n }}\n track_script {{\n  chk\n }}\n}}\n",
        BASIC.replace(
            "interface eth0",
            "interface eth0\n    state MASTER\n    track_script {\n        chk weight 0 reverse\n    }"
        )
    );
    let c = clean(&text);
    let printed = crate::to_keepalived(&c);
    let again = clean(&printed);
    assert_eq!(c, again, "{printed}");
}

mod corpus {
    use super::*;

    fn read(name: &str) -> Option<Loaded> {
        let path = crate::test_support::corpus_dir().join(name);
        if !path.exists() {
            eprintln!("skipping: {} is absent", path.display());
            return None;
        }
        Some(crate::load_file(&path, &LoadOptions::default()))
    }

    /// Errors that come from the VRRP/global half (the LVS half reports its own).
    fn vrrp_errors(l: &Loaded) -> Vec<String> {
        errors(l)
            .into_iter()
            .filter(|e| !e.contains("virtual_server") && !e.contains("real_server"))
            .collect()
    }

    #[test]
    fn clean_samples_have_no_vrrp_errors() {
        for name in [
            "keepalived.conf.vrrp",
            "keepalived.conf.vrrp.scripts",
            "keepalived.conf.vrrp.sync",
            "keepalived.conf.IPv6",
            "keepalived.conf.sample",
            "keepalived.conf.quorum",
            "keepalived.conf.inhibit",
            "keepalived.conf.vrrp.localcheck",
            "keepalived.conf.vrrp.static_ipaddress",
            "keepalived.conf.vrrp.routes",
            "docker/keepalived.conf",
        ] {
            let Some(l) = read(name) else { return };
            let e = vrrp_errors(&l);
            assert!(e.is_empty(), "{name}:\n{}", e.join("\n"));
        }
    }

    /// Every sample's VRRP half prints and loads back to the same model.
    #[test]
    fn samples_round_trip() {
        let base = crate::test_support::corpus_dir();
        let Ok(dir) = std::fs::read_dir(&base) else {
            eprintln!("skipping: {} is absent", base.display());
            return;
        };
        let mut files: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.push(base.join("etc/keepalived.conf"));
        files.push(base.join("docker/keepalived.conf"));
        for path in files {
            let name = path.file_name().unwrap().to_string_lossy();
            if !path.is_file() || !name.starts_with("keepalived.conf") {
                continue;
            }
            let l = crate::load_file(&path, &LoadOptions::default());
            if !vrrp_errors(&l).is_empty() {
                continue;
            }
            let mut c = l.config;
            c.lvs = Default::default();
            c.cluster = None;
            let text = crate::to_keepalived(&c);
            let again = load(&text);
            assert!(
                again.is_ok(),
                "{}:\n{}\n{text}",
                path.display(),
                again.report()
            );
            assert_eq!(again.config.vrrp, c.vrrp, "{}", path.display());
            assert_eq!(again.config.global, c.global, "{}", path.display());
        }
    }

    #[test]
    fn vrrp_sample_is_read() {
        let Some(l) = read("keepalived.conf.vrrp") else {
            return;
        };
        let c = &l.config;
        assert!(!c.vrrp.instances.is_empty());
        for v in &c.vrrp.instances {
            assert!(v.vrid >= 1);
            assert!(v.interface.is_some());
            assert!(!v.virtual_addresses.is_empty() || !v.excluded_addresses.is_empty());
        }
    }

    #[test]
    fn sync_sample_has_groups() {
        let Some(l) = read("keepalived.conf.vrrp.sync") else {
            return;
        };
        let c = &l.config;
        assert!(!c.vrrp.sync_groups.is_empty());
        for g in &c.vrrp.sync_groups {
            for m in &g.members {
                assert!(c.vrrp.instance(m).is_some(), "{m}");
            }
        }
    }

    #[test]
    fn etc_sample_reports_what_keepalived_reports() {
        let Some(l) = read("etc/keepalived.conf") else {
            return;
        };
        let e = vrrp_errors(&l).join("\n");
        for needle in [
            "vrrp_garp_interval 0 is outside range",
            "vrrp_gna_interval 0 is outside range",
            "State MASTER must match being address owner",
            "Strict mode does not support authentication",
        ] {
            assert!(e.contains(needle), "missing '{needle}' in:\n{e}");
        }
    }

    #[test]
    fn rules_sample_reports_the_bad_address() {
        let Some(l) = read("keepalived.conf.vrrp.rules") else {
            return;
        };
        let e = vrrp_errors(&l);
        assert!(
            !e.is_empty()
                && e.iter()
                    .all(|x| x.contains("'192.168.100./24'") || x.contains("'192.168.200./24'")),
            "{}",
            e.join("\n")
        );
        let d = diags(&l).join("\n");
        assert!(d.contains("rule has no preference"), "{d}");
        assert_eq!(l.config.vrrp.static_rules.len(), 1);
    }

    #[test]
    fn routes_sample_is_typed() {
        let Some(l) = read("keepalived.conf.vrrp.routes") else {
            return;
        };
        let c = &l.config;
        assert_eq!(c.vrrp.static_routes.len(), 5);
        let r = &c.vrrp.static_routes[0];
        assert_eq!(r.src, Some("192.168.100.1".parse().unwrap()));
        assert_eq!(r.prefix_len, 24);
        let v = &c.vrrp.instances[0];
        // The 'or' route is left out with a warning; the rest are typed.
        assert_eq!(v.virtual_routes.len(), 6);
        assert!(
            v.virtual_routes
                .iter()
                .any(|r| r.kind == RouteType::Blackhole)
        );
        assert!(
            v.virtual_routes
                .iter()
                .any(|r| r.table == Some(100) && r.prefix_len == 0)
        );
        let d = diags(&l).join("\n");
        assert!(d.contains("route option 'or' is not supported"), "{d}");
        assert!(d.contains("'gw' is deprecated"), "{d}");
    }

    #[test]
    fn ssl_get_sample_reports_ah_with_master() {
        let Some(l) = read("keepalived.conf.SSL_GET") else {
            return;
        };
        let e = vrrp_errors(&l).join("\n");
        assert!(
            e.contains("Initial state MASTER is incompatible with AH"),
            "{e}"
        );
    }

    #[test]
    fn conditional_sample_reports_the_dangling_script() {
        let Some(l) = read("keepalived.conf.conditional_conf") else {
            return;
        };
        let e = vrrp_errors(&l).join("\n");
        assert!(
            e.contains("no 'script'") || e.contains("track_script names"),
            "{e}"
        );
    }

    #[test]
    fn lvs_syncd_sample_reports_the_groupless_sync_group() {
        let Some(l) = read("keepalived.conf.vrrp.lvs_syncd") else {
            return;
        };
        let d = diags(&l).join("\n");
        assert!(
            d.contains("unknown keyword 'VI_2' in vrrp_sync_group"),
            "{d}"
        );
    }
}

mod roundtrip {
    use proptest::prelude::*;

    use super::*;
    use crate::model::global::arb::global_defs;
    use crate::model::vrrp::arb::vrrp_section;

    fn round_trip(cfg: &Config) -> Result<(), TestCaseError> {
        let text = crate::to_keepalived(cfg);
        let l = load(&text);
        prop_assert!(l.diagnostics.is_empty(), "{}\n{text}", l.report());
        prop_assert_eq!(&l.config, cfg, "{}", text);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn vrrp_section_round_trips(vrrp in vrrp_section()) {
            round_trip(&Config { vrrp, ..Config::default() })?;
        }

        #[test]
        fn global_defs_round_trip(global in global_defs()) {
            round_trip(&Config { global, ..Config::default() })?;
        }

        #[test]
        fn cluster_mode_round_trips(vrrp in crate::model::vrrp::arb::vrrp_section_for_cluster()) {
            let cluster = load(CLUSTER).config.cluster;
            round_trip(&Config { vrrp, cluster, ..Config::default() })?;
        }

        /// The model is replicated as JSON: it must survive serialisation unchanged.
        #[test]
        fn model_survives_json(global in global_defs(), vrrp in vrrp_section()) {
            let cfg = Config { global, vrrp, ..Config::default() };
            let json = serde_json::to_string(&cfg).unwrap();
            let back: Config = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, cfg);
        }

        #[test]
        fn both_round_trip(global in global_defs(), vrrp in vrrp_section()) {
            round_trip(&Config { global, vrrp, ..Config::default() })?;
        }
    }
}
