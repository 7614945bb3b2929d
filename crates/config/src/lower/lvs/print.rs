//! The LVS model written back as keepalived syntax. Every resolved value is written out, so
//! the text lowers to an equal model whatever defaults the reader applies.

use super::values::range_text;
use crate::model::Config;
use crate::model::common::{Micros, Script};
use crate::model::lvs::{
    Checker, CheckerKind, ForwardingMethod, Granularity, GroupEntry, HttpCheck, RealServer,
    SorryServer, SslContext, TunnelType, Url, VirtualServer, VirtualServerGroup, VirtualServerKey,
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

fn switch(p: &mut Printer, key: &str, on: bool) {
    kv(p, key, if on { "on" } else { "off" });
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
        VirtualServerKey::Fwmark { family, .. } => kv(p, "ip_family", family.keyword()),
        key => {
            if let Some(proto) = key.protocol() {
                kv(p, "protocol", proto.keyword());
            }
        }
    }
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
    timer(p, "delay_loop", vs.delay_loop);
    timer(p, "connect_timeout", vs.connect_timeout);
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
    kv(p, "quorum", vs.quorum.to_string());
    kv(p, "hysteresis", vs.hysteresis.to_string());
    script(p, "quorum_up", &vs.quorum_up);
    script(p, "quorum_down", &vs.quorum_down);
    kv(p, "weight", vs.weight.to_string());
    if let Some(v) = &vs.virtualhost {
        kv(p, "virtualhost", word(v));
    }
    if let Some(s) = &vs.sorry_server {
        print_sorry(s, p);
    }
    for rs in &vs.real_servers {
        print_rs(rs, vs, p);
    }
    p.close();
    p.blank();
}

fn print_sorry(s: &SorryServer, p: &mut Printer) {
    let mut words = vec!["sorry_server".to_string(), s.ip.to_string()];
    if s.port != 0 {
        words.push(s.port.to_string());
    }
    p.line(&words);
    if s.inhibit {
        p.line(&["sorry_server_inhibit"]);
    }
    p.line(&method_words("sorry_server_lvs_method", &s.method));
}

fn print_rs(rs: &RealServer, vs: &VirtualServer, p: &mut Printer) {
    let mut header = vec!["real_server".to_string(), rs.ip.to_string()];
    if rs.port != 0 {
        header.push(rs.port.to_string());
    }
    p.open(&header);
    kv(p, "weight", rs.weight.to_string());
    p.line(&method_words("lvs_method", &rs.method));
    switch(p, "inhibit_on_failure", rs.inhibit_on_failure);
    switch(p, "alpha", rs.alpha);
    script(p, "notify_up", &rs.notify_up);
    script(p, "notify_down", &rs.notify_down);
    kv(p, "uthreshold", rs.uthreshold.to_string());
    kv(p, "lthreshold", rs.lthreshold.to_string());
    if let Some(v) = &rs.virtualhost {
        kv(p, "virtualhost", word(v));
    }
    for c in &rs.checkers {
        print_checker(c, vs, p);
    }
    p.close();
}

fn print_checker(c: &Checker, vs: &VirtualServer, p: &mut Printer) {
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
        timer(p, "connect_timeout", conn.connect_timeout);
    }
    if let Some(t) = &c.timing {
        kv(p, "retry", t.retry.to_string());
        timer(p, "delay_before_retry", t.delay_before_retry);
        timer(p, "warmup", t.warmup);
        timer(p, "delay_loop", t.delay_loop);
        switch(p, "alpha", t.alpha);
        switch(p, "log_all_failures", t.log_all_failures);
    }
    match &c.kind {
        CheckerKind::Tcp | CheckerKind::Ping => {}
        CheckerKind::Http(h) | CheckerKind::Ssl(h) => print_http(h, p),
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
            kv(p, "type", d.record_type.keyword());
            kv(p, "name", word(&d.name));
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
            kv(p, "min_reply_length", u.min_reply_length.to_string());
            kv(p, "max_reply_length", u.max_reply_length.to_string());
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

fn print_http(h: &HttpCheck, p: &mut Printer) {
    for u in &h.urls {
        print_url(u, p);
    }
    kv(p, "http_protocol", h.http_protocol.keyword());
    if let Some(v) = &h.virtualhost {
        kv(p, "virtualhost", word(v));
    }
    // sni_name turns SNI on, so it comes before the explicit enable_sni.
    if let Some(n) = &h.sni_name {
        kv(p, "sni_name", word(n));
    }
    switch(p, "enable_sni", h.enable_sni);
    switch(p, "fast_recovery", h.fast_recovery);
    switch(p, "tls_compliant", h.tls_compliant);
}

fn print_url(u: &Url, p: &mut Printer) {
    p.open(&["url"]);
    kv(p, "path", word(&u.path));
    if let Some(d) = &u.digest {
        kv(p, "digest", d.clone());
    }
    let mut codes = vec!["status_code".to_string()];
    codes.extend(u.status_codes.iter().map(|r| {
        if r.first == r.last {
            r.first.to_string()
        } else {
            format!("{}-{}", r.first, r.last)
        }
    }));
    p.line(&codes);
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
    switch(p, "tls_compliant", u.tls_compliant);
    p.close();
}
