//! The VRRP section as keepalived syntax. A setting is written only where it differs from
//! what reading the text without it would give in its context (keepalived's default, the
//! `global_defs` value, the strict-mode value), so the text says what the user chose and
//! keepalived versions that predate a setting read it as long as it is not used. `priority`
//! and `state` are written only when the file wrote them, because keepalived derives each
//! from the other.

use super::addr::{address_words, peer_words};
use super::route::{route_words, rule_words};
use crate::model::Config;
use crate::model::common::{Micros, Script};
use crate::model::vrrp::{
    AuthType, ChecksumCompat, Family, InitialState, Notify, ParamMatch, SyncGroup, TrackRef,
    TrackedInterface, VirtualAddress, VrrpInstance,
};
use crate::print::{Printer, word};

pub(crate) fn print(cfg: &Config, p: &mut Printer) {
    let vrrp = &cfg.vrrp;
    if !vrrp.static_addresses.is_empty() {
        addresses(p, "static_ipaddress", &vrrp.static_addresses);
        p.blank();
    }
    if !vrrp.static_routes.is_empty() {
        block(
            p,
            "static_routes",
            vrrp.static_routes.iter().map(route_words),
        );
        p.blank();
    }
    if !vrrp.static_rules.is_empty() {
        block(p, "static_rules", vrrp.static_rules.iter().map(rule_words));
        p.blank();
    }
    if !vrrp.interface_delays.is_empty() {
        p.open(&["interface_up_down_delays"]);
        for d in &vrrp.interface_delays {
            p.line(&[
                word(&d.interface),
                d.down.keepalived_text(),
                d.up.keepalived_text(),
            ]);
        }
        p.close();
        p.blank();
    }
    for s in &vrrp.scripts {
        p.open(&["vrrp_script".to_string(), word(&s.name)]);
        script(p, "script", &s.script);
        if s.interval != Micros::from_secs(1) {
            secs(p, "interval", s.interval);
        }
        if s.timeout != s.interval {
            secs(p, "timeout", s.timeout);
        }
        weight(p, s.weight, s.reverse, 0);
        for (kw, n) in [("rise", s.rise), ("fall", s.fall)] {
            if n != 1 {
                p.line(&[kw.to_string(), n.to_string()]);
            }
        }
        if s.init_fail {
            p.line(&["init_fail"]);
        }
        p.close();
        p.blank();
    }
    for f in &vrrp.track_files {
        p.open(&["track_file".to_string(), word(&f.name)]);
        p.line(&["file".to_string(), word(&f.file.to_string_lossy())]);
        weight(p, f.weight, f.reverse, 1);
        if let Some(i) = &f.init_file {
            let mut w = vec!["init_file".to_string(), i.value.to_string()];
            if i.overwrite {
                w.push("overwrite".into());
            }
            p.line(&w);
        }
        p.close();
        p.blank();
    }
    for t in &vrrp.track_processes {
        p.open(&["vrrp_track_process".to_string(), word(&t.name)]);
        let mut w = vec!["process".to_string()];
        w.extend(t.process.iter().map(|s| word(s)));
        p.line(&w);
        match t.param_match {
            ParamMatch::Exact => {}
            ParamMatch::Initial => p.line(&["param_match", "initial"]),
            ParamMatch::Partial => p.line(&["param_match", "partial"]),
        }
        weight(p, t.weight, t.reverse, 0);
        if t.quorum_max != 65535 {
            p.line(&["quorum_max".to_string(), t.quorum_max.to_string()]);
        }
        if t.quorum != 1 {
            p.line(&["quorum".to_string(), t.quorum.to_string()]);
        }
        // `delay` sets all three; the specific ones refine it.
        if t.delay.0 != 0 {
            secs(p, "delay", t.delay);
        }
        for (kw, d) in [
            ("terminate_delay", t.terminate_delay),
            ("fork_delay", t.fork_delay),
        ] {
            if d != t.delay {
                secs(p, kw, d);
            }
        }
        if t.full_command {
            p.line(&["full_command"]);
        }
        p.close();
        p.blank();
    }
    for v in &vrrp.instances {
        instance(p, v, cfg);
        p.blank();
    }
    for g in &vrrp.sync_groups {
        sync_group(p, g);
        p.blank();
    }
}

fn instance(p: &mut Printer, v: &VrrpInstance, cfg: &Config) {
    let g = &cfg.global;
    let strict = v.strict_mode;
    let owner = v.is_owner();
    p.open(&["vrrp_instance".to_string(), word(&v.name)]);
    if let Some(i) = &v.interface {
        p.line(&["interface".to_string(), word(i)]);
    }
    p.line(&["virtual_router_id".to_string(), v.vrid.to_string()]);
    if v.state_set {
        let s = match v.state {
            InitialState::Master => "MASTER",
            InitialState::Backup => "BACKUP",
        };
        p.line(&["state", s]);
    }
    if v.priority_set {
        p.line(&["priority".to_string(), v.priority.to_string()]);
    }
    // An IPv6 instance is always version 3.
    if v.family == Family::Ipv4 && v.version != g.vrrp_version {
        p.line(&["version".to_string(), v.version.number().to_string()]);
    }
    if v.advert_int != Micros::from_secs(1) {
        secs(p, "advert_int", v.advert_int);
    }
    switch(p, "strict_mode", strict, g.vrrp_strict);
    if !v.preempt {
        p.line(&["nopreempt"]);
    }
    if v.preempt_delay.0 > 0 {
        secs(p, "preempt_delay", v.preempt_delay);
    }
    if let Some(a) = &v.authentication {
        p.open(&["authentication"]);
        let t = match a.auth_type {
            AuthType::Pass => "PASS",
            AuthType::Ah => "AH",
        };
        p.line(&["auth_type", t]);
        p.line(&["auth_pass".to_string(), word(&a.password)]);
        p.close();
    }
    if !v.virtual_addresses.is_empty() {
        addresses(p, "virtual_ipaddress", &v.virtual_addresses);
    }
    if !v.excluded_addresses.is_empty() {
        addresses(p, "virtual_ipaddress_excluded", &v.excluded_addresses);
    }
    if !v.virtual_routes.is_empty() {
        block(
            p,
            "virtual_routes",
            v.virtual_routes.iter().map(route_words),
        );
    }
    if !v.virtual_rules.is_empty() {
        block(p, "virtual_rules", v.virtual_rules.iter().map(rule_words));
    }
    if v.no_virtual_ipaddress {
        p.line(&["no_virtual_ipaddress"]);
    }
    if let Some(ip) = v.unicast_src_ip {
        p.line(&["unicast_src_ip".to_string(), ip.to_string()]);
    }
    if !v.unicast_peers.is_empty() {
        p.open(&["unicast_peer"]);
        for peer in &v.unicast_peers {
            p.line(&peer_words(peer));
        }
        p.close();
    }
    // keepalived resets (and reports) a unicast_ttl written without unicast peers.
    if v.unicast_ttl != 255 {
        p.line(&["unicast_ttl".to_string(), v.unicast_ttl.to_string()]);
    }
    // keepalived's check_unicast_src takes no value; "off" is only needed (and only read by
    // flotilla) to override a global vrrp_check_unicast_src.
    switch(
        p,
        "check_unicast_src",
        v.check_unicast_src,
        g.vrrp_check_unicast_src,
    );
    if v.unicast_fault_no_peer {
        p.line(&["unicast_fault_no_peer"]);
    }
    match v.unicast_checksum_compat {
        ChecksumCompat::Auto => {}
        ChecksumCompat::Old => p.line(&["old_unicast_checksum"]),
        ChecksumCompat::Never => p.line(&["old_unicast_checksum", "never"]),
    }
    if let Some(prio) = v.timer_expired_backup {
        p.line(&["timer_expired_backup".to_string(), prio.to_string()]);
    }
    if let Some(ip) = v.mcast_src_ip {
        p.line(&["mcast_src_ip".to_string(), ip.to_string()]);
    }
    if let Some(ip) = v.mcast_dst_ip {
        p.line(&["mcast_dst_ip".to_string(), ip.to_string()]);
    }
    interfaces(p, &v.track_interfaces);
    if v.dont_track_primary {
        p.line(&["dont_track_primary"]);
    }
    refs(p, "track_script", &v.track_scripts);
    refs(p, "track_file", &v.track_files);
    refs(p, "track_process", &v.track_processes);
    notify(p, &v.notify);
    if let Some(s) = &v.notify_deleted {
        script(p, "notify_deleted", s);
    }
    if let Some(s) = &v.notify_master_rx_lower_pri {
        script(p, "notify_master_rx_lower_pri", s);
    }
    // Instance, then its sync group, then global_defs.
    let group_changes = cfg
        .vrrp
        .sync_group_of(&v.name)
        .and_then(|s| s.notify_priority_changes);
    switch(
        p,
        "notify_priority_changes",
        v.notify_priority_changes,
        group_changes.unwrap_or(g.vrrp_notify_priority_changes),
    );
    let alert = g.email.smtp_alert_vrrp.or(g.email.smtp_alert);
    switch(p, "smtp_alert", v.smtp_alert, alert.unwrap_or(false));
    // Strict mode (RFC behaviour) sends no GARP at lower priority unless told to.
    let (ga, gd) = (&v.garp, &g.garp);
    let lower_delay = if strict {
        Micros(0)
    } else {
        gd.lower_prio_delay
    };
    let lower_repeat = if strict { 0 } else { gd.lower_prio_repeat };
    for (kw, t, def) in [
        ("garp_master_delay", ga.master_delay, gd.master_delay),
        ("garp_master_refresh", ga.master_refresh, gd.master_refresh),
        ("garp_lower_prio_delay", ga.lower_prio_delay, lower_delay),
    ] {
        if t != def {
            whole(p, kw, t);
        }
    }
    for (kw, n, def) in [
        ("garp_master_repeat", ga.master_repeat, gd.master_repeat),
        (
            "garp_master_refresh_repeat",
            ga.master_refresh_repeat,
            gd.master_refresh_repeat,
        ),
        ("garp_lower_prio_repeat", ga.lower_prio_repeat, lower_repeat),
    ] {
        if n != def {
            p.line(&[kw.to_string(), n.to_string()]);
        }
    }
    // Accept mode is on except for a non-owner in strict mode.
    if v.accept != (owner || !strict) {
        p.line(&[if v.accept { "accept" } else { "no_accept" }]);
    }
    switch(
        p,
        "skip_check_adv_addr",
        v.skip_check_adv_addr,
        g.vrrp_skip_check_adv_addr,
    );
    switch(
        p,
        "lower_prio_no_advert",
        v.lower_prio_no_advert,
        strict || g.vrrp_lower_prio_no_advert,
    );
    switch(
        p,
        "higher_prio_send_advert",
        v.higher_prio_send_advert,
        !strict && g.vrrp_higher_prio_send_advert,
    );
    if v.down_timer_adverts != g.vrrp_down_timer_adverts {
        p.line(&[
            "down_timer_adverts".to_string(),
            v.down_timer_adverts.to_string(),
        ]);
    }
    // keepalived 2.2.8 and later; the address owner ignores adverts in strict mode.
    switch(
        p,
        "owner_ignore_adverts",
        v.owner_ignore_adverts,
        owner && (strict || g.vrrp_owner_ignore_adverts),
    );
    switch(
        p,
        "v3_checksum_as_v2",
        v.v3_checksum_as_v2,
        g.v3_checksum_as_v2,
    );
    p.close();
}

fn sync_group(p: &mut Printer, g: &SyncGroup) {
    p.open(&["vrrp_sync_group".to_string(), word(&g.name)]);
    p.open(&["group"]);
    for m in &g.members {
        p.line(&[word(m)]);
    }
    p.close();
    notify(p, &g.notify);
    // Written only when the group wrote them (they pass to its members), as the group's
    // own on/off.
    for (kw, v) in [
        ("smtp_alert", g.smtp_alert),
        ("notify_priority_changes", g.notify_priority_changes),
    ] {
        if let Some(b) = v {
            p.line(&[kw, if b { "on" } else { "off" }]);
        }
    }
    interfaces(p, &g.track_interfaces);
    refs(p, "track_script", &g.track_scripts);
    refs(p, "track_file", &g.track_files);
    refs(p, "track_process", &g.track_processes);
    p.close();
}

fn addresses(p: &mut Printer, kw: &str, list: &[VirtualAddress]) {
    p.open(&[kw]);
    for a in list {
        p.line(&address_words(a));
    }
    p.close();
}

fn block(p: &mut Printer, kw: &str, lines: impl Iterator<Item = Vec<String>>) {
    p.open(&[kw]);
    for l in lines {
        p.line(&l);
    }
    p.close();
}

fn notify(p: &mut Printer, n: &Notify) {
    for (kw, s) in [
        ("notify_master", &n.master),
        ("notify_backup", &n.backup),
        ("notify_fault", &n.fault),
        ("notify_stop", &n.stop),
        ("notify", &n.any),
    ] {
        if let Some(s) = s {
            script(p, kw, s);
        }
    }
}

fn interfaces(p: &mut Printer, list: &[TrackedInterface]) {
    if list.is_empty() {
        return;
    }
    p.open(&["track_interface"]);
    for t in list {
        let mut w = vec![word(&t.name)];
        if t.weight != 0 || t.reverse {
            w.extend(["weight".to_string(), t.weight.to_string()]);
        }
        if t.reverse {
            w.push("reverse".into());
        }
        p.line(&w);
    }
    p.close();
}

fn refs(p: &mut Printer, kw: &str, list: &[TrackRef]) {
    if list.is_empty() {
        return;
    }
    p.open(&[kw]);
    for r in list {
        let mut w = vec![word(&r.name)];
        // A reverse flag needs a weight in keepalived's syntax; the model never holds one
        // without the other when read from a file.
        if let Some(wt) = r.weight {
            w.extend(["weight".to_string(), wt.to_string()]);
            match r.reverse {
                Some(true) => w.push("reverse".into()),
                Some(false) => w.push("noreverse".into()),
                None => {}
            }
        }
        p.line(&w);
    }
    p.close();
}

/// `weight N [reverse]`, unless it is the tracker's default (`default`, not reversed).
pub(super) fn weight(p: &mut Printer, weight: i32, reverse: bool, default: i32) {
    if weight == default && !reverse {
        return;
    }
    let mut w = vec!["weight".to_string(), weight.to_string()];
    if reverse {
        w.push("reverse".into());
    }
    p.line(&w);
}

pub(super) fn script(p: &mut Printer, kw: &str, s: &Script) {
    p.line(&[kw.to_string(), s.keepalived_text()]);
}

pub(super) fn secs(p: &mut Printer, kw: &str, t: Micros) {
    p.line(&[kw.to_string(), t.keepalived_text()]);
}

/// Whole seconds (keepalived's GARP delays are whole seconds).
fn whole(p: &mut Printer, kw: &str, t: Micros) {
    p.line(&[kw.to_string(), (t.0 / 1_000_000).to_string()]);
}

/// A switch that differs from its default: bare when on (the form every keepalived
/// version reads), `off` otherwise.
fn switch(p: &mut Printer, kw: &str, b: bool, default: bool) {
    if b != default {
        if b {
            p.line(&[kw]);
        } else {
            p.line(&[kw, "off"]);
        }
    }
}
