//! The LVS model written back as keepalived syntax. A setting is written only where it
//! differs from what the reader fills in without it: keepalived's default, or what a real
//! server inherits from its service and a checker from both (`mod.rs` `resolve_rs`,
//! `check.rs` `CheckerDraft::resolve`). So the text says what the user chose, and keepalived
//! versions that predate a setting read it as long as it is not used.

use super::values::range_text;
use crate::model::Config;
use crate::model::common::{Micros, Script};
use crate::model::lvs::{
    AddressFamily, Checker, CheckerKind, DnsType, ForwardingMethod, Granularity, GroupEntry,
    HttpCheck, HttpProtocol, RealServer, SorryServer, SslContext, StatusRange, TunnelType,
    UdpCheck, Url, VirtualServer, VirtualServerGroup, VirtualServerKey,
};
use crate::print::{Printer, word};

pub(crate) fn print(cfg: &Config, p: &mut Printer) {
    let lvs = &cfg.lvs;
    if let Some(ssl) = &lvs.ssl {
        print_ssl(ssl, p);
    }
    for g in &lvs.virtual_server_groups {
        print_group(g, p);
    }
    for vs in &lvs.virtual_servers {
        print_vs(vs, p);
    }
}

fn kv(p: &mut Printer, key: &str, value: impl Into<String>) {
    p.line(&[key.to_string(), value.into()]);
}

fn timer(p: &mut Printer, key: &str, t: Micros) {
    kv(p, key, t.keepalived_text());
}

/// A switch that differs from its default: bare when on (the form every keepalived version
/// reads), `off` otherwise.
fn switch(p: &mut Printer, key: &str, on: bool, default: bool) {
    if on != default {
        if on {
            p.line(&[key]);
        } else {
            p.line(&[key, "off"]);
        }
    }
}

fn print_ssl(ssl: &SslContext, p: &mut Printer) {
    p.open(&["SSL"]);
    if let Some(pw) = &ssl.password {
        kv(p, "password", word(pw));
    }
    for (key, path) in [
        ("ca", &ssl.ca),
        ("certificate", &ssl.certificate),
        ("key", &ssl.key),
    ] {
        if let Some(path) = path {
            kv(p, key, word(&path.to_string_lossy()));
        }
    }
    p.close();
    p.blank();
}

fn print_group(g: &VirtualServerGroup, p: &mut Printer) {
    p.open(&["virtual_server_group".to_string(), word(&g.name)]);
    for e in &g.entries {
        match e {
            GroupEntry::Addresses {
                first, last, port, ..
            } => {
                let mut words = vec![range_text(first, last)];
                if *port != 0 {
                    words.push(port.to_string());
                }
                p.line(&words);
            }
            GroupEntry::Fwmark { mark, family, .. } => {
                let mut words = vec!["fwmark".to_string(), mark.to_string()];
                if let Some(f) = family {
                    words.push(f.keyword().to_string());
                }
                p.line(&words);
            }
        }
    }
    p.close();
    p.blank();
}

fn method_words(key: &str, m: &ForwardingMethod) -> Vec<String> {
    let mut w = vec![key.to_string()];
    match m {
        ForwardingMethod::Nat => w.push("NAT".into()),
        ForwardingMethod::Dr => w.push("DR".into()),
        ForwardingMethod::Tun(t) => {
            w.push("TUN".into());
            w.push("type".into());
            match t.kind {
                TunnelType::Ipip => w.push("ipip".into()),
                TunnelType::Gre => w.push("gre".into()),
                TunnelType::Gue { port } => {
                    w.push("gue".into());
                    w.push("port".into());
                    w.push(port.to_string());
                }
            }
            if t.kind != TunnelType::Ipip {
                w.push(t.checksum.keyword().into());
            }
        }
    }
    w
}

fn script(p: &mut Printer, key: &str, s: &Option<Script>) {
    if let Some(s) = s {
        kv(p, key, s.keepalived_text());
    }
}

fn print_vs(vs: &VirtualServer, p: &mut Printer) {
    let header: Vec<String> = match &vs.key {
        VirtualServerKey::Addr { ip, port, .. } => {
            let mut h = vec!["virtual_server".to_string(), ip.to_string()];
            if *port != 0 {
                h.push(port.to_string());
            }
            h
        }
        VirtualServerKey::Fwmark { mark, .. } => {
            vec!["virtual_server".into(), "fwmark".into(), mark.to_string()]
        }
        VirtualServerKey::Group { name, .. } => {
            vec!["virtual_server".into(), "group".into(), word(name)]
        }
    };
    p.open(&header);
    match &vs.key {
        VirtualServerKey::Fwmark { family, .. } => {
            if *family != fwmark_family(vs) {
                kv(p, "ip_family", family.keyword());
            }
        }
        // Written even as the default: keepalived (2.2.7) reports an address service
        // without a protocol as a configuration error (and then uses UDP).
        key => {
            if let Some(proto) = key.protocol() {
                kv(p, "protocol", proto.keyword());
            }
        }
    }
    // Both written even as the default: flotilla warns of a service without a scheduler, and
    // keepalived (2.2.7) reports one whose servers have no forwarding method as an error.
    kv(p, "lvs_sched", vs.scheduler.name());
    p.line(&method_words("lvs_method", &vs.method));
    if let Some(pers) = &vs.persistence {
        kv(p, "persistence_timeout", pers.timeout.to_string());
        match pers.granularity {
            Some(Granularity::Netmask(m)) => kv(p, "persistence_granularity", m.to_string()),
            Some(Granularity::Prefix(n)) => kv(p, "persistence_granularity", n.to_string()),
            None => {}
        }
    }
    let d = VirtualServer::new(vs.key.clone());
    if vs.delay_loop != d.delay_loop {
        timer(p, "delay_loop", vs.delay_loop);
    }
    if vs.connect_timeout != d.connect_timeout {
        timer(p, "connect_timeout", vs.connect_timeout);
    }
    if let Some(r) = vs.retry {
        kv(p, "retry", r.to_string());
    }
    if let Some(t) = vs.delay_before_retry {
        timer(p, "delay_before_retry", t);
    }
    if let Some(t) = vs.warmup {
        timer(p, "warmup", t);
    }
    for (key, on) in [
        ("inhibit_on_failure", vs.inhibit_on_failure),
        ("alpha", vs.alpha),
        ("omega", vs.omega),
        ("ha_suspend", vs.ha_suspend),
    ] {
        if on {
            p.line(&[key]);
        }
    }
    for (key, v, def) in [
        ("quorum", vs.quorum, d.quorum),
        ("hysteresis", vs.hysteresis, d.hysteresis),
    ] {
        if v != def {
            kv(p, key, v.to_string());
        }
    }
    script(p, "quorum_up", &vs.quorum_up);
    script(p, "quorum_down", &vs.quorum_down);
    if vs.weight != d.weight {
        kv(p, "weight", vs.weight.to_string());
    }
    if let Some(v) = &vs.virtualhost {
        kv(p, "virtualhost", word(v));
    }
    if let Some(s) = &vs.sorry_server {
        print_sorry(s, &vs.method, p);
    }
    for rs in &vs.real_servers {
        print_rs(rs, vs, p);
    }
    p.close();
    p.blank();
}

fn print_sorry(s: &SorryServer, vs_method: &ForwardingMethod, p: &mut Printer) {
    let mut words = vec!["sorry_server".to_string(), s.ip.to_string()];
    if s.port != 0 {
        words.push(s.port.to_string());
    }
    p.line(&words);
    if s.inhibit {
        p.line(&["sorry_server_inhibit"]);
    }
    if s.method != *vs_method {
        p.line(&method_words("sorry_server_lvs_method", &s.method));
    }
}

/// The family keepalived gives a fwmark service without `ip_family`: that of the first
/// server that is not tunnelled, else of the tunnelled ones when they agree, else IPv4.
fn fwmark_family(vs: &VirtualServer) -> AddressFamily {
    let methods = vs
        .real_servers
        .iter()
        .map(|r| (r.ip, &r.method))
        .chain(vs.sorry_server.iter().map(|s| (s.ip, &s.method)));
    let direct = methods
        .clone()
        .find(|(_, m)| !matches!(m, ForwardingMethod::Tun(_)))
        .map(|(ip, _)| AddressFamily::of(&ip));
    let mut tunnelled = methods.map(|(ip, _)| AddressFamily::of(&ip));
    let first = tunnelled.next();
    let uniform = first.filter(|f| tunnelled.all(|g| g == *f));
    direct.or(uniform).unwrap_or(AddressFamily::Inet)
}

fn print_rs(rs: &RealServer, vs: &VirtualServer, p: &mut Printer) {
    let mut header = vec!["real_server".to_string(), rs.ip.to_string()];
    if rs.port != 0 {
        header.push(rs.port.to_string());
    }
    p.open(&header);
    if rs.weight != vs.weight {
        kv(p, "weight", rs.weight.to_string());
    }
    if rs.method != vs.method {
        p.line(&method_words("lvs_method", &rs.method));
    }
    switch(
        p,
        "inhibit_on_failure",
        rs.inhibit_on_failure,
        vs.inhibit_on_failure,
    );
    switch(p, "alpha", rs.alpha, vs.alpha);
    script(p, "notify_up", &rs.notify_up);
    script(p, "notify_down", &rs.notify_down);
    for (key, v) in [("uthreshold", rs.uthreshold), ("lthreshold", rs.lthreshold)] {
        if v != 0 {
            kv(p, key, v.to_string());
        }
    }
    if let Some(v) = &rs.virtualhost {
        kv(p, "virtualhost", word(v));
    }
    let vhost = rs.virtualhost.as_ref().or(vs.virtualhost.as_ref());
    for c in &rs.checkers {
        print_checker(c, rs, vs, vhost, p);
    }
    p.close();
}

fn print_checker(
    c: &Checker,
    rs: &RealServer,
    vs: &VirtualServer,
    vhost: Option<&String>,
    p: &mut Printer,
) {
    p.open(&[c.kind.keyword()]);
    if let Some(conn) = &c.connection {
        if let Some(ip) = conn.connect_ip {
            kv(p, "connect_ip", ip.to_string());
        }
        if let Some(port) = conn.connect_port {
            kv(p, "connect_port", port.to_string());
        }
        if let Some(ip) = conn.bindto {
            kv(p, "bindto", ip.to_string());
        }
        if let Some(port) = conn.bind_port {
            kv(p, "bind_port", port.to_string());
        }
        if let Some(i) = &conn.bind_if {
            kv(p, "bind_if", word(i));
        }
        if let Some(m) = conn.fwmark {
            kv(p, "fwmark", m.to_string());
        }
        if conn.connect_timeout != vs.connect_timeout {
            timer(p, "connect_timeout", conn.connect_timeout);
        }
    }
    // What the checker inherits: the service's timing (the real server's own is folded
    // into its checkers when read), else the checker type's defaults.
    if let Some(t) = &c.timing {
        if t.retry != vs.retry.unwrap_or(c.kind.default_retry()) {
            kv(p, "retry", t.retry.to_string());
        }
        let before_retry = vs
            .delay_before_retry
            .or(c.kind.default_delay_before_retry())
            .unwrap_or(t.delay_loop);
        if t.delay_before_retry != before_retry {
            timer(p, "delay_before_retry", t.delay_before_retry);
        }
        if t.warmup != vs.warmup.unwrap_or(t.delay_loop) {
            timer(p, "warmup", t.warmup);
        }
        if t.delay_loop != vs.delay_loop {
            timer(p, "delay_loop", t.delay_loop);
        }
        switch(p, "alpha", t.alpha, rs.alpha);
        switch(p, "log_all_failures", t.log_all_failures, false);
    }
    match &c.kind {
        CheckerKind::Tcp | CheckerKind::Ping => {}
        CheckerKind::Http(h) | CheckerKind::Ssl(h) => print_http(h, vhost, p),
        CheckerKind::Misc(m) => {
            let command = Script {
                argv: m.path.argv.clone(),
                user: None,
                group: None,
            };
            kv(p, "misc_path", command.keepalived_text());
            if m.timeout != vs.delay_loop {
                kv(p, "misc_timeout", (m.timeout.0 / 1_000_000).to_string());
            }
            if m.dynamic {
                p.line(&["misc_dynamic"]);
            }
            if let Some(u) = &m.path.user {
                let mut words = vec!["user".to_string(), word(u)];
                if let Some(g) = &m.path.group {
                    words.push(word(g));
                }
                p.line(&words);
            }
        }
        CheckerKind::Dns(d) => {
            if d.record_type != DnsType::Soa {
                kv(p, "type", d.record_type.keyword());
            }
            if d.name != "." {
                kv(p, "name", word(&d.name));
            }
        }
        CheckerKind::Udp(u) => {
            if !u.payload.is_empty() {
                let hex: String = u.payload.iter().map(|b| format!("{b:02x}")).collect();
                kv(p, "payload", hex);
            }
            if u.require_reply {
                let mut words = vec!["require_reply".to_string()];
                if let Some(r) = &u.reply {
                    words.push(r.clone());
                }
                p.line(&words);
            }
            let d = UdpCheck::default();
            for (key, v, def) in [
                ("min_reply_length", u.min_reply_length, d.min_reply_length),
                ("max_reply_length", u.max_reply_length, d.max_reply_length),
            ] {
                if v != def {
                    kv(p, key, v.to_string());
                }
            }
        }
        CheckerKind::File(f) => {
            kv(p, "track_file", word(&f.track_file));
            if let Some(w) = f.weight {
                let mut words = vec!["weight".to_string(), w.to_string()];
                if f.reverse {
                    words.push("reverse".into());
                }
                p.line(&words);
            }
        }
    }
    p.close();
}

/// `vhost` is the Host the check inherits from its real server or service.
fn print_http(h: &HttpCheck, vhost: Option<&String>, p: &mut Printer) {
    for u in &h.urls {
        print_url(u, p);
    }
    if h.http_protocol != HttpProtocol::V1_0 {
        kv(p, "http_protocol", h.http_protocol.keyword());
    }
    if let Some(v) = h.virtualhost.as_ref().filter(|v| Some(*v) != vhost) {
        kv(p, "virtualhost", word(v));
    }
    // sni_name turns SNI on, so it comes before an explicit enable_sni.
    if let Some(n) = &h.sni_name {
        kv(p, "sni_name", word(n));
    }
    switch(p, "enable_sni", h.enable_sni, h.sni_name.is_some());
    switch(p, "fast_recovery", h.fast_recovery, false);
    // keepalived 2.2.8 and later.
    switch(p, "tls_compliant", h.tls_compliant, false);
}

fn print_url(u: &Url, p: &mut Printer) {
    p.open(&["url"]);
    kv(p, "path", word(&u.path));
    if let Some(d) = &u.digest {
        kv(p, "digest", d.clone());
    }
    if u.status_codes != [StatusRange::DEFAULT] {
        let mut codes = vec!["status_code".to_string()];
        codes.extend(u.status_codes.iter().map(|r| {
            if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}-{}", r.first, r.last)
            }
        }));
        p.line(&codes);
    }
    if let Some(v) = &u.virtualhost {
        kv(p, "virtualhost", word(v));
    }
    if let Some(r) = &u.regex {
        kv(
            p,
            "regex",
            crate::quote::join_quoted(std::slice::from_ref(&r.pattern)),
        );
        if r.no_match {
            p.line(&["regex_no_match"]);
        }
        if !r.options.is_empty() {
            let mut words = vec!["regex_options".to_string()];
            words.extend(r.options.iter().map(|o| word(o)));
            p.line(&words);
        }
        if let Some(v) = r.min_offset {
            kv(p, "regex_min_offset", v.to_string());
        }
        if let Some(v) = r.max_offset {
            kv(p, "regex_max_offset", v.to_string());
        }
    }
    switch(p, "tls_compliant", u.tls_compliant, false);
    p.close();
}
