//! Applying `global_defs` and keepalived's completion rules to an instance (`vrrp.c`
//! `vrrp_complete_instance`), and the checks that need the whole configuration.

use std::collections::HashMap;
use std::net::IpAddr;

use super::super::Ctx;
use super::line_of;
use crate::model::Config;
use crate::model::common::Micros;
use crate::model::global::GlobalDefs;
use crate::model::vrrp::{
    AuthType, Family, InitialState, TrackRef, TrackedInterface, VrrpInstance, VrrpSection,
    VrrpVersion,
};
use crate::source::Span;

/// Something [`resolve`] changed or refused, to be reported once by [`validate`].
pub(crate) struct Finding {
    span: Span,
    error: bool,
    msg: String,
}

const VRRP_V3_MAX_ADVERT: Micros = Micros(40_950_000);

/// Fills the instance's resolved fields from what it wrote ([`VrrpInstance::written`]) and
/// the globals. Pure and repeatable: call it again when `global_defs` changes.
pub(crate) fn resolve(v: &mut VrrpInstance, g: &GlobalDefs) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = v.origin.0.unwrap_or_default();
    let name = v.name.clone();
    let mut note = |span: Span, error: bool, msg: String| {
        out.push(Finding {
            span,
            error,
            msg: format!("({name}) {msg}"),
        })
    };
    let w = v.written.clone();
    let strict = w.strict_mode.unwrap_or(g.vrrp_strict);
    v.strict_mode = strict;
    v.family = v
        .virtual_addresses
        .first()
        .map(|a| a.family())
        .unwrap_or(Family::Ipv4);

    v.version = match (v.family, w.version) {
        (Family::Ipv6, Some((VrrpVersion::V2, span))) => {
            note(
                span,
                true,
                "VRRP version 2 cannot carry IPv6 addresses; this IPv6 instance uses version 3"
                    .into(),
            );
            VrrpVersion::V3
        }
        (Family::Ipv6, _) => VrrpVersion::V3,
        (Family::Ipv4, Some((ver, _))) => ver,
        (Family::Ipv4, None) => g.vrrp_version,
    };

    // keepalived.md §2.2: a missing priority follows the state, a missing state the priority.
    v.priority_set = w.priority.is_some();
    v.state_set = w.state.is_some();
    v.priority = match (w.priority, w.state) {
        (Some((p, _)), _) => p,
        (None, Some((InitialState::Master, _))) => 255,
        (None, _) => 100,
    };
    let derived_state = if v.priority == 255 {
        InitialState::Master
    } else {
        InitialState::Backup
    };
    v.state = match w.state {
        Some((s, span)) => {
            if strict && (s == InitialState::Master) != (v.priority == 255) {
                note(
                    span,
                    true,
                    format!(
                        "State MASTER must match being address owner: in strict mode only priority 255 starts as MASTER (priority is {}); using {}",
                        v.priority,
                        if derived_state == InitialState::Master {
                            "MASTER"
                        } else {
                            "BACKUP"
                        }
                    ),
                );
                derived_state
            } else {
                s
            }
        }
        None => derived_state,
    };

    v.authentication = match w.authentication {
        Some((a, span)) => {
            if strict {
                note(
                    span,
                    true,
                    "Strict mode does not support authentication (RFC 5798 has none); it is ignored".into(),
                );
                None
            } else if v.version == VrrpVersion::V3 {
                note(
                    span,
                    true,
                    "VRRP version 3 does not support authentication; it is ignored".into(),
                );
                None
            } else if a.auth_type == AuthType::Ah && v.family == Family::Ipv6 {
                note(
                    span,
                    true,
                    "AH authentication cannot be used with IPv6; it is ignored".into(),
                );
                None
            } else {
                if a.auth_type == AuthType::Ah
                    && v.state == InitialState::Master
                    && v.priority != 255
                {
                    note(
                        span,
                        true,
                        "Initial state MASTER is incompatible with AH authentication (the AH sequence number must be learnt first); starting as BACKUP".into(),
                    );
                    v.state = InitialState::Backup;
                }
                Some(a)
            }
        }
        None => None,
    };

    v.no_virtual_ipaddress = match w.no_virtual_ipaddress {
        Some(span) if strict => {
            note(
                span,
                false,
                "no_virtual_ipaddress is incompatible with strict mode; cleared".into(),
            );
            false
        }
        Some(_) => true,
        None => false,
    };

    let mut nopreempt = w.nopreempt;
    if let Some(span) = nopreempt {
        if v.priority == 255 {
            note(
                span,
                false,
                "nopreempt does not apply to priority 255 (the address owner always takes over); cleared".into(),
            );
            nopreempt = None;
        } else if v.state == InitialState::Master {
            note(
                span,
                false,
                "nopreempt does not work with state MASTER; cleared (write 'state BACKUP' on every node to use it)".into(),
            );
            nopreempt = None;
        }
    }
    v.preempt = nopreempt.is_none();
    v.preempt_delay = Micros(0);
    if let Some((d, span)) = w.preempt_delay.filter(|(d, _)| d.0 > 0) {
        if v.state == InitialState::Master {
            note(
                span,
                false,
                "preempt_delay does not work with state MASTER; cleared".into(),
            );
        } else if strict {
            note(
                span,
                true,
                "preempt_delay is incompatible with strict mode; cleared".into(),
            );
        } else if nopreempt.is_some() {
            note(
                span,
                true,
                "preempt_delay is incompatible with nopreempt; cleared".into(),
            );
        } else {
            v.preempt_delay = d;
        }
    }

    v.timer_expired_backup = match w.timer_expired_backup {
        Some((_, span)) if v.preempt => {
            note(
                span,
                true,
                "timer_expired_backup requires nopreempt; ignored".into(),
            );
            None
        }
        other => other.map(|t| t.0),
    };

    v.down_timer_adverts = w
        .down_timer_adverts
        .map_or(g.vrrp_down_timer_adverts, |d| d.0);
    if strict && v.down_timer_adverts != 3 {
        let span = w.down_timer_adverts.map_or(at, |d| d.1);
        note(
            span,
            true,
            "down_timer_adverts other than 3 is incompatible with strict mode; using 3".into(),
        );
        v.down_timer_adverts = 3;
    }

    let owner = v.priority == 255;
    v.accept = w.accept.map_or(owner || !strict, |a| a.0);
    if v.accept && !owner && strict && v.version == VrrpVersion::V2 {
        note(
            w.accept.map_or(at, |a| a.1),
            false,
            "accept mode with VRRP version 2 does not comply with RFC 3768 in strict mode; using no_accept".into(),
        );
        v.accept = false;
    }

    v.advert_int = advert_int(v.version, w.advert_int, &mut note);

    let gd = &g.garp;
    v.garp.master_delay = w.garp_master_delay.unwrap_or(gd.master_delay);
    v.garp.master_repeat = w.garp_master_repeat.unwrap_or(gd.master_repeat);
    v.garp.master_refresh = w.garp_master_refresh.unwrap_or(gd.master_refresh);
    v.garp.master_refresh_repeat = w
        .garp_master_refresh_repeat
        .unwrap_or(gd.master_refresh_repeat);
    // keepalived's strict mode (RFC behaviour) changes the defaults of the lower-priority
    // reaction and refuses the non-RFC values.
    let mut strict_only = |written: Option<bool>, rfc: bool, global: bool, what: &str| match written
    {
        None if strict => rfc,
        None => global,
        Some(x) if strict && x != rfc => {
            note(at, true, format!("strict mode requires {what}; resetting"));
            rfc
        }
        Some(x) => x,
    };
    v.lower_prio_no_advert = strict_only(
        w.lower_prio_no_advert,
        true,
        g.vrrp_lower_prio_no_advert,
        "lower_prio_no_advert",
    );
    v.higher_prio_send_advert = strict_only(
        w.higher_prio_send_advert,
        false,
        g.vrrp_higher_prio_send_advert,
        "higher_prio_send_advert to be off",
    );
    v.garp.lower_prio_delay = match w.garp_lower_prio_delay {
        None if strict => Micros(0),
        None => gd.lower_prio_delay,
        Some(d) if strict && d.0 != 0 => {
            note(
                at,
                true,
                "strict mode requires garp_lower_prio_delay 0; resetting".into(),
            );
            Micros(0)
        }
        Some(d) => d,
    };
    v.garp.lower_prio_repeat = match w.garp_lower_prio_repeat {
        None if strict => 0,
        None => gd.lower_prio_repeat,
        Some(n) if strict && n != 0 => {
            note(
                at,
                true,
                "strict mode requires garp_lower_prio_repeat 0; resetting".into(),
            );
            0
        }
        Some(n) => n,
    };
    v.skip_check_adv_addr = w.skip_check_adv_addr.unwrap_or(g.vrrp_skip_check_adv_addr);
    v.owner_ignore_adverts = match w.owner_ignore_adverts {
        Some(true) if !owner => {
            note(
                at,
                true,
                "owner_ignore_adverts applies only to priority 255; ignored".into(),
            );
            false
        }
        Some(false) if owner && strict => {
            note(
                at,
                true,
                "strict mode with priority 255 requires owner_ignore_adverts; set".into(),
            );
            true
        }
        Some(x) => x,
        None if owner => strict || g.vrrp_owner_ignore_adverts,
        None => false,
    };
    if let (true, Some(span)) = (v.is_unicast(), w.mcast_dst_ip) {
        note(
            span,
            true,
            "mcast_dst_ip is meaningless with unicast peers; ignored".into(),
        );
        v.mcast_dst_ip = None;
    }
    v.v3_checksum_as_v2 = w.v3_checksum_as_v2.unwrap_or(g.v3_checksum_as_v2);
    v.check_unicast_src = w.check_unicast_src.unwrap_or(g.vrrp_check_unicast_src);
    v.notify_priority_changes = w
        .notify_priority_changes
        .or(w.group_notify_priority_changes)
        .unwrap_or(g.vrrp_notify_priority_changes);
    v.smtp_alert = w
        .smtp_alert
        .or(g.email.smtp_alert_vrrp)
        .or(g.email.smtp_alert)
        .unwrap_or(false);
    out
}

/// The advert interval the version can carry (`vrrp.c`: v2 whole seconds 1–255, v3
/// centiseconds 0.01–40.95 s).
fn advert_int(
    version: VrrpVersion,
    written: Option<(Micros, Span)>,
    note: &mut impl FnMut(Span, bool, String),
) -> Micros {
    let Some((a, span)) = written else {
        return Micros::from_secs(1);
    };
    let (unit, max) = match version {
        VrrpVersion::V2 => (1_000_000, Micros::from_secs(255)),
        VrrpVersion::V3 => (10_000, VRRP_V3_MAX_ADVERT),
    };
    let v = version.number();
    if a > max {
        note(
            span,
            true,
            format!(
                "advert_int {} s is out of range for VRRPv{v} (at most {} s); using {} s",
                a.keepalived_text(),
                max.keepalived_text(),
                max.keepalived_text()
            ),
        );
        return max;
    }
    if a.0 % unit != 0 {
        let rounded = Micros(((a.0 + unit / 2) / unit * unit).clamp(unit, max.0));
        let what = if unit == 1_000_000 {
            "whole seconds"
        } else {
            "units of 10 ms"
        };
        note(
            span,
            false,
            format!(
                "VRRPv{v} advert_int must be in {what}: {} s is rounded to {} s",
                a.keepalived_text(),
                rounded.keepalived_text()
            ),
        );
        return rounded;
    }
    a
}

fn report(ctx: &mut Ctx<'_>, f: Finding) {
    if f.error {
        ctx.error(f.span, f.msg);
    } else {
        ctx.warning(f.span, f.msg);
    }
}

pub(crate) fn validate(cfg: &Config, ctx: &mut Ctx<'_>) {
    let vrrp = &cfg.vrrp;
    let cluster = cfg.cluster.is_some();
    for v in &vrrp.instances {
        let mut copy = v.clone();
        for f in resolve(&mut copy, &cfg.global) {
            report(ctx, f);
        }
        instance_checks(v, cluster, ctx);
        tracker_refs(
            vrrp,
            &v.name,
            &v.track_scripts,
            &v.track_files,
            &v.track_processes,
            ctx,
        );
    }
    duplicate_vrids(vrrp, cluster, ctx);
    sync_groups(vrrp, ctx);
    unweighted_tracking(vrrp, ctx);
    debounce(vrrp, ctx);
}

/// keepalived.md §6: a link debounce must end before a peer's master-down timer does, i.e.
/// be shorter than (down_timer_adverts − 1) × advert_int.
fn debounce(vrrp: &VrrpSection, ctx: &mut Ctx<'_>) {
    for d in &vrrp.interface_delays {
        let Some(span) = d.origin.0 else { continue };
        for v in &vrrp.instances {
            if v.interface.as_deref() != Some(d.interface.as_str()) {
                continue;
            }
            let limit = Micros(v.advert_int.0 * u64::from(v.down_timer_adverts.saturating_sub(1)));
            if d.down >= limit {
                ctx.warning(
                    span,
                    format!(
                        "the down delay of {} ({} s) is not shorter than (down_timer_adverts − 1) × advert_int = {} s of {}: the peer takes over before this node notices the link is down",
                        d.interface,
                        d.down.keepalived_text(),
                        limit.keepalived_text(),
                        v.name
                    ),
                );
            }
        }
    }
}

/// Every tracker entry of an instance or a sync group with its effective weight: where it is
/// written, what it tracks, the weight.
fn tracker_weights(
    vrrp: &VrrpSection,
    interfaces: &[TrackedInterface],
    scripts: &[TrackRef],
    files: &[TrackRef],
    processes: &[TrackRef],
) -> Vec<(Option<Span>, String, i32)> {
    let mut weighted: Vec<(Option<Span>, String, i32)> = interfaces
        .iter()
        .map(|t| (t.origin.0, format!("interface {}", t.name), t.weight))
        .collect();
    let refs = [
        (
            "script",
            scripts,
            VrrpSection::script_weight as fn(&VrrpSection, &TrackRef) -> (i32, bool),
        ),
        ("file", files, VrrpSection::file_weight),
        ("process", processes, VrrpSection::process_weight),
    ];
    for (kind, list, weight) in refs {
        for r in list {
            weighted.push((r.origin.0, format!("{kind} {}", r.name), weight(vrrp, r).0));
        }
    }
    weighted
}

/// keepalived ignores tracker weights on sync-group members (`sync_group_tracking_weight`
/// is not supported) and on the address owner, whose priority never changes (`vrrp.c`,
/// "ignoring tracked script … with weights"). Reported so the file says what happens.
fn unweighted_tracking(vrrp: &VrrpSection, ctx: &mut Ctx<'_>) {
    for v in &vrrp.instances {
        let why = if v.priority == 255 {
            "the address owner's priority (255) never changes"
        } else if vrrp.sync_group_of(&v.name).is_some() {
            "a sync-group member's trackers can only put it in FAULT (weights would split the group's priorities)"
        } else {
            continue;
        };
        let weighted = tracker_weights(
            vrrp,
            &v.track_interfaces,
            &v.track_scripts,
            &v.track_files,
            &v.track_processes,
        );
        for (span, what, w) in weighted {
            if let (Some(span), true) = (span, w != 0) {
                ctx.error(
                    span,
                    format!(
                        "({}) tracked {what} has weight {w}, which keepalived ignores: {why}; write 'weight 0'",
                        v.name
                    ),
                );
            }
        }
    }
    for g in &vrrp.sync_groups {
        if !g
            .members
            .iter()
            .any(|m| vrrp.instance(m).is_some_and(|v| v.priority == 255))
        {
            continue;
        }
        let weighted = tracker_weights(
            vrrp,
            &g.track_interfaces,
            &g.track_scripts,
            &g.track_files,
            &g.track_processes,
        );
        for (span, what, w) in weighted {
            if let (Some(span), true) = (span, w != 0) {
                ctx.error(
                    span,
                    format!(
                        "(sync group {}) tracked {what} has weight {w}, but a member has priority 255 (the address owner's priority never changes); write 'weight 0'",
                        g.name
                    ),
                );
            }
        }
    }
}

fn instance_checks(v: &VrrpInstance, cluster: bool, ctx: &mut Ctx<'_>) {
    let Some(at) = v.origin.0 else { return };
    let name = &v.name;
    let w = &v.written;
    if cluster {
        let derived = "derived from placement/membership in cluster mode; the configured value is used only in standalone mode";
        for (span, what) in [
            (w.priority.map(|p| p.1), "priority"),
            (w.state.map(|s| s.1), "state"),
            (w.unicast_src_ip, "unicast_src_ip"),
            (w.unicast_peer, "unicast_peer"),
        ] {
            if let Some(span) = span {
                ctx.warning(span, format!("({name}) {what} is {derived}"));
            }
        }
    } else {
        if v.interface.is_none() && !v.is_unicast() {
            ctx.error(
                at,
                format!(
                    "({name}) needs 'interface IF': only unicast instances (with unicast_peer) may omit it"
                ),
            );
        }
        if v.interface.is_none() && v.is_unicast() && v.unicast_src_ip.is_none() {
            ctx.error(
                at,
                format!("({name}) a unicast instance without 'interface' needs 'unicast_src_ip'"),
            );
        }
        if let (Some(span), true) = (
            w.unicast_src_ip.or(w.unicast_peer),
            v.unicast_peers.is_empty(),
        ) && !v.unicast_fault_no_peer
        {
            ctx.warning(
                    span,
                    format!(
                        "({name}) unicast is configured but there is no unicast_peer: keepalived falls back to multicast (deprecated); add peers or use unicast_fault_no_peer"
                    ),
                );
        }
    }
    let fam = v.family;
    if let Some(first) = v.virtual_addresses.first() {
        for a in &v.virtual_addresses[1..] {
            if a.family() != fam {
                ctx.error(
                    a.origin.0.unwrap_or(at),
                    format!(
                        "({name}) virtual_ipaddress mixes families: {} is {} but the first address {} is {}; one advert carries one family (use virtual_ipaddress_excluded or a second instance)",
                        a.address,
                        a.family().name(),
                        first.address,
                        fam.name()
                    ),
                );
            }
        }
    }
    if v.virtual_addresses.is_empty() && !v.no_virtual_ipaddress {
        if v.version == VrrpVersion::V3 || v.strict_mode {
            ctx.error(
                at,
                format!(
                    "({name}) No VIP specified; at least one is required with VRRPv3 or strict mode (keepalived drops the instance)"
                ),
            );
        } else {
            ctx.warning(
                at,
                format!(
                    "({name}) No VIP specified; at least one is sensible (write no_virtual_ipaddress if this is intended)"
                ),
            );
        }
    }
    // RFC 5798 §5.2.9: the first IPv6 address of an advert is the link-local one.
    if let Some(first) = v.virtual_addresses.first()
        && let IpAddr::V6(a) = first.address
        && v.strict_mode
        && !v.is_unicast()
        && !a.is_unicast_link_local()
    {
        ctx.error(
            first.origin.0.unwrap_or(at),
            format!(
                "({name}) the first IPv6 VIP address must be link local in strict mode (RFC 5798 §5.2.9); {a} is not"
            ),
        );
    }
    if v.virtual_addresses.len() > 255 {
        ctx.warning(
            at,
            format!(
                "({name}) {} virtual addresses: an advert carries at most 255; keepalived moves the rest to virtual_ipaddress_excluded",
                v.virtual_addresses.len()
            ),
        );
    }
    if let Some(src) = v.unicast_src_ip
        && Family::of(&src) != fam
    {
        ctx.error(
                w.unicast_src_ip.unwrap_or(at),
                format!(
                    "({name}) unicast_src_ip {src} is {} but the instance is {} (its virtual addresses)",
                    Family::of(&src).name(),
                    fam.name()
                ),
            );
    }
    for p in &v.unicast_peers {
        if Some(p.address) == v.unicast_src_ip {
            ctx.warning(
                p.origin.0.unwrap_or(at),
                format!(
                    "({name}) unicast peer {} is this instance's own unicast_src_ip; adverts to itself are useless (a shared peer list belongs in cluster mode)",
                    p.address
                ),
            );
        }
        if Family::of(&p.address) != fam {
            ctx.error(
                p.origin.0.unwrap_or(at),
                format!(
                    "({name}) unicast peer {} is {} but the instance is {}",
                    p.address,
                    Family::of(&p.address).name(),
                    fam.name()
                ),
            );
        }
    }
    if let Some(m) = v.mcast_dst_ip
        && Family::of(&m) != fam
    {
        ctx.error(
            at,
            format!("({name}) mcast_dst_ip {m} is not {}", fam.name()),
        );
    }
    if v.strict_mode && v.is_unicast() && !cluster {
        ctx.error(
            w.unicast_peer.unwrap_or(at),
            format!("({name}) Unicast peers are not supported in strict mode"),
        );
    }
}

/// Every tracker an instance or a sync group names must be defined.
fn tracker_refs(
    vrrp: &VrrpSection,
    owner: &str,
    scripts: &[TrackRef],
    files: &[TrackRef],
    processes: &[TrackRef],
    ctx: &mut Ctx<'_>,
) {
    type Exists = fn(&VrrpSection, &str) -> bool;
    let lists: [(&[TrackRef], &str, &str, Exists); 3] = [
        (scripts, "track_script", "vrrp_script", |s, n| {
            s.script(n).is_some()
        }),
        (files, "track_file", "track_file", |s, n| {
            s.track_file(n).is_some()
        }),
        (processes, "track_process", "vrrp_track_process", |s, n| {
            s.track_process(n).is_some()
        }),
    ];
    for (refs, kw, def, exists) in lists {
        for r in refs {
            if !exists(vrrp, &r.name)
                && let Some(span) = r.origin.0
            {
                ctx.error(
                    span,
                    format!(
                        "({owner}) {kw} names '{}', but no valid {def} of that name is defined",
                        r.name
                    ),
                );
            }
        }
    }
}

fn sync_groups(vrrp: &VrrpSection, ctx: &mut Ctx<'_>) {
    let mut owner: HashMap<&str, &crate::model::vrrp::SyncGroup> = HashMap::new();
    for g in &vrrp.sync_groups {
        let Some(at) = g.origin.0 else { continue };
        for m in &g.members {
            if vrrp.instance(m).is_none() {
                ctx.error(
                    at,
                    format!(
                        "sync group {}: member '{m}' is not a vrrp_instance (keepalived: \"Unable to find vrrp instance\")",
                        g.name
                    ),
                );
                continue;
            }
            if let Some(first) = owner.get(m.as_str()) {
                ctx.error(
                    at,
                    format!(
                        "sync group {}: instance {m} is already in sync group {}{}; an instance belongs to at most one group",
                        g.name,
                        first.name,
                        line_of(first.origin)
                    ),
                );
            } else {
                owner.insert(m, g);
            }
        }
        tracker_refs(
            vrrp,
            &g.name,
            &g.track_scripts,
            &g.track_files,
            &g.track_processes,
            ctx,
        );
        for m in g.members.iter().filter_map(|m| vrrp.instance(m)) {
            for t in &m.track_interfaces {
                if let (Some(span), true) = (
                    t.origin.0,
                    g.track_interfaces.iter().any(|x| x.name == t.name),
                ) {
                    ctx.error(
                        span,
                        format!(
                            "({}) track_interface {} is configured on the instance and on its sync group {}; remove one",
                            m.name, t.name, g.name
                        ),
                    );
                }
            }
        }
    }
}

/// keepalived.md §2.2/§3.7: a VRID must be unique per interface, family and multicast group;
/// unicast instances may share one when their source addresses differ or their peers are
/// disjoint. In cluster mode all instances are unicast among the same directors.
fn duplicate_vrids(vrrp: &VrrpSection, cluster: bool, ctx: &mut Ctx<'_>) {
    for (i, b) in vrrp.instances.iter().enumerate() {
        let Some(span) = b.origin.0 else { continue };
        for a in &vrrp.instances[..i] {
            if a.vrid != b.vrid || a.family != b.family {
                continue;
            }
            let conflict = if cluster {
                same_or_unset(&a.interface, &b.interface)
            } else {
                match (a.is_unicast(), b.is_unicast()) {
                    (false, false) => {
                        a.interface.is_some()
                            && a.interface == b.interface
                            && a.mcast_dst_ip == b.mcast_dst_ip
                    }
                    (true, true) => {
                        same_or_unset(&a.interface, &b.interface)
                            && same_or_unset(&a.unicast_src_ip, &b.unicast_src_ip)
                            && a.unicast_peers
                                .iter()
                                .any(|p| b.unicast_peers.iter().any(|q| q.address == p.address))
                    }
                    _ => false,
                }
            };
            if conflict {
                let on = b
                    .interface
                    .as_deref()
                    .map(|i| format!(" on interface {i}"))
                    .unwrap_or_default();
                ctx.error(
                    span,
                    format!(
                        "{} and {} both use VRID {} with {}{on}{}: their adverts would be taken for each other's",
                        a.name,
                        b.name,
                        b.vrid,
                        b.family.name(),
                        line_of(a.origin).replace("the first", a.name.as_str()),
                    ),
                );
            }
        }
    }
}

fn same_or_unset<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}
