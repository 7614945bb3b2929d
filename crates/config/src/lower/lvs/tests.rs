#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;

use crate::model::common::Micros;
use crate::model::lvs::*;
use crate::model::{Config, lvs::arb};
use crate::{LoadOptions, Loaded, Severity};

fn load(text: &str) -> Loaded {
    crate::load_str(Path::new("t.conf"), text, &LoadOptions::default())
}

/// `line:col: message` of every diagnostic of `severity`, in file order.
fn diags(l: &Loaded, severity: Severity) -> Vec<String> {
    l.diagnostics
        .sorted()
        .into_iter()
        .filter(|d| d.severity == severity)
        .map(|d| {
            let s = d.span.unwrap();
            format!("{}:{}: {}", s.line, s.col, d.message)
        })
        .collect()
}

fn errors(l: &Loaded) -> Vec<String> {
    diags(l, Severity::Error)
}

fn warnings(l: &Loaded) -> Vec<String> {
    diags(l, Severity::Warning)
}

fn ok(text: &str) -> LvsSection {
    let l = load(text);
    assert!(l.is_ok(), "unexpected errors:\n{}", l.report());
    l.config.lvs
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A service around `inner` (real servers and settings), with a scheduler so no warning.
fn vs(inner: &str) -> String {
    format!("virtual_server 10.0.0.1 80 {{\n  lvs_sched rr\n{inner}\n}}\n")
}

const RS_HTTP: &str =
    "  real_server 10.0.1.1 80 {\n    HTTP_GET {\n      url {\n        path /\n      }\n    }\n  }";

fn checker(lvs: &LvsSection) -> &Checker {
    &lvs.virtual_servers[0].real_servers[0].checkers[0]
}

#[test]
fn http_get_without_timing_gets_keepalived_defaults() {
    let lvs = ok(&vs(RS_HTTP));
    let c = checker(&lvs);
    let t = c.timing.unwrap();
    assert_eq!(t.retry, 1);
    assert_eq!(t.delay_before_retry, Micros::from_secs(3));
    assert_eq!(t.delay_loop, Micros::from_secs(60));
    assert_eq!(t.warmup, Micros::from_secs(60));
    assert!(!t.alpha);
    assert_eq!(
        c.connection.as_ref().unwrap().connect_timeout,
        Micros::from_secs(5)
    );
    let CheckerKind::Http(h) = &c.kind else {
        panic!("not HTTP_GET: {:?}", c.kind)
    };
    assert_eq!(h.urls[0].path, "/");
    assert_eq!(h.urls[0].status_codes, vec![StatusRange::DEFAULT]);
    assert_eq!(h.http_protocol, HttpProtocol::V1_0);
    let v = &lvs.virtual_servers[0];
    assert_eq!(v.quorum, 1);
    assert_eq!(v.hysteresis, 0);
    assert_eq!(v.real_servers[0].weight, 1);
    assert_eq!(v.real_servers[0].method, ForwardingMethod::Nat);
}

#[test]
fn timing_inherits_service_then_real_server_then_checker() {
    let text = vs(
        "  delay_loop 10\n  retry 2\n  connect_timeout 7\n  alpha\n  real_server 10.0.1.1 80 {\n    retry 4\n    delay_before_retry 0.5\n    TCP_CHECK {\n    }\n    TCP_CHECK {\n      delay_loop 2\n      retry 0\n      alpha off\n      connect_timeout 1.5\n    }\n  }\n  real_server 10.0.1.2 80 {\n    TCP_CHECK {\n    }\n  }",
    );
    let lvs = ok(&text);
    let v = &lvs.virtual_servers[0];
    let a = v.real_servers[0].checkers[0].timing.unwrap();
    assert_eq!(
        (
            a.delay_loop,
            a.retry,
            a.delay_before_retry,
            a.warmup,
            a.alpha
        ),
        (
            Micros::from_secs(10),
            4,
            Micros(500_000),
            Micros::from_secs(10),
            true
        )
    );
    assert_eq!(
        v.real_servers[0].checkers[0]
            .connection
            .as_ref()
            .unwrap()
            .connect_timeout,
        Micros::from_secs(7)
    );
    let b = v.real_servers[0].checkers[1].timing.unwrap();
    assert_eq!(
        (b.delay_loop, b.retry, b.warmup, b.alpha),
        (Micros::from_secs(2), 0, Micros::from_secs(2), false)
    );
    assert_eq!(
        v.real_servers[0].checkers[1]
            .connection
            .as_ref()
            .unwrap()
            .connect_timeout,
        Micros(1_500_000)
    );
    let c = v.real_servers[1].checkers[0].timing.unwrap();
    assert_eq!((c.retry, c.delay_before_retry), (2, Micros::from_secs(1)));
    assert!(v.real_servers[1].alpha);
}

#[test]
fn misc_and_dns_have_their_own_defaults() {
    let text = vs(
        "  delay_loop 6\n  real_server 10.0.1.1 80 {\n    MISC_CHECK {\n      misc_path \"/bin/check arg1\"\n      user nobody nogroup\n      misc_dynamic\n    }\n    DNS_CHECK {\n      delay_loop 9\n    }\n    MISC_CHECK {\n      misc_path /bin/true\n      misc_timeout 3\n    }\n  }",
    );
    let lvs = ok(&text);
    let rs = &lvs.virtual_servers[0].real_servers[0];
    let CheckerKind::Misc(m) = &rs.checkers[0].kind else {
        panic!()
    };
    assert_eq!(m.path.argv, ["/bin/check", "arg1"]);
    assert_eq!(m.path.user.as_deref(), Some("nobody"));
    assert_eq!(m.path.group.as_deref(), Some("nogroup"));
    assert!(m.dynamic);
    assert_eq!(m.timeout, Micros::from_secs(6));
    assert!(rs.checkers[0].connection.is_none());
    assert_eq!(rs.checkers[0].timing.unwrap().retry, 0);
    let d = rs.checkers[1].timing.unwrap();
    assert_eq!((d.retry, d.delay_before_retry), (3, Micros::from_secs(9)));
    let CheckerKind::Dns(dns) = &rs.checkers[1].kind else {
        panic!()
    };
    assert_eq!((dns.record_type, dns.name.as_str()), (DnsType::Soa, "."));
    let CheckerKind::Misc(m) = &rs.checkers[2].kind else {
        panic!()
    };
    assert_eq!(m.timeout, Micros::from_secs(3));
}

#[test]
fn service_settings_and_synonyms() {
    let text = "virtual_server 10.0.0.1 443 {\n  lb_algo wrr\n  lb_kind DR\n  protocol udp\n  persistence_timeout\n  persistence_granularity 255.255.255.0\n  quorum 2\n  hysteresis 1\n  quorum_up \"/bin/up now\"\n  omega\n  ha_suspend\n  inhibit_on_failure\n  weight 5\n  virtualhost example.com\n  sorry_server 10.0.9.9 8443\n  sorry_server_inhibit\n  real_server 10.0.1.1 {\n  }\n  real_server 10.0.1.2 {\n    weight 0\n    lvs_method TUN type gue port 6080 csum\n    inhibit_on_failure off\n  }\n}\n";
    let l = load(text);
    assert_eq!(errors(&l), Vec::<String>::new());
    let v = &l.config.lvs.virtual_servers[0];
    assert_eq!(
        v.key,
        VirtualServerKey::Addr {
            ip: ip("10.0.0.1"),
            port: 443,
            protocol: Protocol::Udp
        }
    );
    assert_eq!(v.scheduler, Scheduler::Wrr);
    assert_eq!(v.method, ForwardingMethod::Dr);
    assert_eq!(
        v.persistence,
        Some(Persistence {
            timeout: 360,
            granularity: Some(Granularity::Netmask("255.255.255.0".parse().unwrap()))
        })
    );
    assert_eq!(
        (
            v.quorum,
            v.hysteresis,
            v.omega,
            v.ha_suspend,
            v.inhibit_on_failure,
            v.weight
        ),
        (2, 1, true, true, true, 5)
    );
    assert_eq!(v.quorum_up.as_ref().unwrap().argv, ["/bin/up", "now"]);
    assert_eq!(v.virtualhost.as_deref(), Some("example.com"));
    let s = v.sorry_server.as_ref().unwrap();
    // A DR sorry server uses the service's port (keepalived resets it, with a warning).
    assert_eq!(
        (s.ip, s.port, s.method, s.inhibit),
        (ip("10.0.9.9"), 443, ForwardingMethod::Dr, true)
    );
    let a = &v.real_servers[0];
    assert_eq!(
        (a.port, a.weight, a.method, a.inhibit_on_failure),
        (443, 5, ForwardingMethod::Dr, true)
    );
    let b = &v.real_servers[1];
    assert_eq!(
        b.method,
        ForwardingMethod::Tun(Tunnel {
            kind: TunnelType::Gue { port: 6080 },
            checksum: TunnelChecksum::Csum
        })
    );
    assert_eq!((b.weight, b.inhibit_on_failure), (0, false));
    assert_eq!(warnings(&l), vec!["15:3: the sorry server's port 8443 differs from the service's 443; a non-NAT sorry server uses the service's port (keepalived resets it too)".to_string()]);
}

#[test]
fn missing_scheduler_warns_and_uses_wlc() {
    let l = load("virtual_server 10.0.0.1 80 {\n  real_server 10.0.1.1 80 {\n  }\n}\n");
    assert!(l.is_ok());
    assert_eq!(l.config.lvs.virtual_servers[0].scheduler, Scheduler::Wlc);
    assert_eq!(
        warnings(&l),
        vec![
            "1:1: virtual_server 10.0.0.1 80 has no lvs_sched; using wlc, as keepalived does"
                .to_string()
        ]
    );
}

#[test]
fn protocol_on_fwmark_is_ignored_with_a_warning() {
    let l = load(
        "virtual_server fwmark 7 {\n  lvs_sched rr\n  protocol UDP\n  real_server 2001:db8::1 {\n    TCP_CHECK {\n      connect_port 80\n    }\n  }\n}\n",
    );
    assert!(l.is_ok());
    assert_eq!(warnings(&l), vec!["3:3: 'protocol' is ignored for a fwmark virtual server: the mark selects the traffic (keepalived ignores it too)".to_string()]);
    assert_eq!(
        l.config.lvs.virtual_servers[0].key,
        VirtualServerKey::Fwmark {
            mark: 7,
            family: AddressFamily::Inet6
        }
    );
}

#[test]
fn nb_get_retry_is_read_as_retry_with_a_warning() {
    let l = load(&vs(
        "  real_server 10.0.1.1 80 {\n    HTTP_GET {\n      nb_get_retry 4\n      url {\n        path /\n      }\n    }\n  }",
    ));
    assert!(l.is_ok());
    assert_eq!(checker(&l.config.lvs).timing.unwrap().retry, 4);
    assert_eq!(
        warnings(&l),
        vec![
            "5:7: 'nb_get_retry' is deprecated; it is read as 'retry' (write 'retry' instead)"
                .to_string()
        ]
    );
}

#[test]
fn p2_and_unknown_keywords_are_reported_not_dropped() {
    let l = load(&vs(
        "  ops\n  smtp_alert\n  bogus 1\n  real_server 10.0.1.1 80 {\n    SMTP_CHECK {\n    }\n    FOO_CHECK {\n    }\n  }",
    ));
    assert!(l.is_ok());
    let w = warnings(&l);
    assert_eq!(w.len(), 5, "{w:?}");
    assert!(
        w[0].starts_with("3:3: 'ops' accepted, not acted on"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("4:3: 'smtp_alert' accepted, not acted on"),
        "{w:?}"
    );
    assert_eq!(
        w[2],
        "5:3: unknown keyword 'bogus' in virtual_server; the line is ignored"
    );
    assert!(
        w[3].starts_with("7:5: 'SMTP_CHECK' accepted, not acted on"),
        "{w:?}"
    );
    assert_eq!(
        w[4],
        "9:5: unknown keyword 'FOO_CHECK' in real_server; the line is ignored"
    );
}

#[test]
fn group_entries() {
    let lvs = ok(
        "virtual_server_group G {\n  10.0.0.1 80\n  10.0.0.3-10 80\n  10.0.1.0/24\n  10.0.2.250-10.0.3.4 443\n  fwmark 5 inet\n  fwmark 6\n}\nvirtual_server group G {\n  lvs_sched rr\n  real_server 10.0.1.1 80 {\n  }\n}\n",
    );
    let g = &lvs.virtual_server_groups[0];
    let ranges: Vec<(IpAddr, IpAddr, u16)> = g
        .entries
        .iter()
        .filter_map(|e| match e {
            GroupEntry::Addresses {
                first, last, port, ..
            } => Some((*first, *last, *port)),
            GroupEntry::Fwmark { .. } => None,
        })
        .collect();
    assert_eq!(
        ranges,
        vec![
            (ip("10.0.0.1"), ip("10.0.0.1"), 80),
            (ip("10.0.0.3"), ip("10.0.0.10"), 80),
            (ip("10.0.1.0"), ip("10.0.1.255"), 0),
            (ip("10.0.2.250"), ip("10.0.3.4"), 443),
        ]
    );
    assert!(matches!(
        g.entries[4],
        GroupEntry::Fwmark {
            mark: 5,
            family: Some(AddressFamily::Inet),
            ..
        }
    ));
    assert!(matches!(
        g.entries[5],
        GroupEntry::Fwmark {
            mark: 6,
            family: None,
            ..
        }
    ));
    assert_eq!(
        lvs.virtual_servers[0].key,
        VirtualServerKey::Group {
            name: "G".into(),
            protocol: Protocol::Tcp
        }
    );
}

#[test]
fn range_text_is_the_shortest_form() {
    use super::values::range_text;
    assert_eq!(range_text(&ip("10.0.0.1"), &ip("10.0.0.1")), "10.0.0.1");
    assert_eq!(range_text(&ip("10.0.0.3"), &ip("10.0.0.10")), "10.0.0.3-10");
    assert_eq!(
        range_text(&ip("10.0.1.0"), &ip("10.0.1.255")),
        "10.0.1.0/24"
    );
    assert_eq!(
        range_text(&ip("10.0.2.250"), &ip("10.0.3.4")),
        "10.0.2.250-10.0.3.4"
    );
    assert_eq!(
        range_text(&ip("2001:db8::1"), &ip("2001:db8::ff")),
        "2001:db8::1-ff"
    );
    assert_eq!(
        range_text(&ip("0.0.0.0"), &ip("255.255.255.255")),
        "0.0.0.0-255.255.255.255"
    );
}

#[test]
fn value_errors_have_positions_and_reasons() {
    let text = "virtual_server 10.0.0.1 70000 {\n}\nvirtual_server fwmark 0 {\n}\nvirtual_server 10.0.0.2 80 {\n  lvs_sched fastest\n  lvs_method TUN type gue\n  persistence_timeout 99999999\n  quorum 0\n  weight 0\n  real_server 10.0.1.1 80 {\n    weight 2147483648\n    HTTP_GET {\n      url {\n        path /\n        digest 12345\n        status_code 200-299 99 300-250 abc\n      }\n    }\n  }\n}\n";
    let l = load(text);
    assert_eq!(
        errors(&l),
        vec![
            "1:25: virtual server port 70000 is out of range: it must be between 0 and 65535",
            "3:23: fwmark 0 is out of range: it must be between 1 and 4294967295",
            "6:13: unknown scheduler 'fastest': it must be one of rr wrr lc wlc lblc sh mh dh fo ovf lblcr sed nq twos",
            "7:3: a gue tunnel needs 'port N', and only a gue tunnel takes a port",
            "8:23: persistence_timeout 99999999 is out of range: it must be between 1 and 2678400",
            "9:10: quorum 0 is out of range: it must be between 1 and 4294967295",
            "10:10: virtual server weight 0 is out of range: it must be between 1 and 2147483647",
            "12:12: real server weight 2147483648 is out of range: it must be between 0 and 2147483647",
            "16:16: digest '12345' is not an MD5 digest: it must be 32 hexadecimal digits (genhash prints it)",
            "17:29: status_code '99' is not a code or range within 100-599 (e.g. 200 or 200-299, first ≤ last)",
            "17:32: status_code '300-250' is not a code or range within 100-599 (e.g. 200 or 200-299, first ≤ last)",
            "17:40: status_code 'abc' is not a code or range within 100-599 (e.g. 200 or 200-299, first ≤ last)",
        ]
    );
}

#[test]
fn cross_checks() {
    let text = "virtual_server group MISSING {\n  lvs_sched rr\n  real_server 10.0.1.1 80 {\n  }\n}\nvirtual_server 10.0.0.1 80 {\n  lvs_sched rr\n  sorry_server 2001:db8::9 80\n  real_server 10.0.1.1 80 {\n    uthreshold 5\n    lthreshold 10\n  }\n  real_server 10.0.1.1 80 {\n  }\n  real_server 2001:db8::1 80 {\n  }\n  real_server 2001:db8::2 80 {\n    lvs_method TUN\n  }\n}\nvirtual_server 10.0.0.1 80 {\n  lvs_sched rr\n  real_server 10.0.1.1 80 {\n  }\n}\nvirtual_server 10.0.0.1 80 {\n  lvs_sched rr\n  protocol UDP\n  real_server 10.0.1.1 80 {\n  }\n}\nvirtual_server 10.0.0.5 {\n  lvs_sched rr\n  real_server 10.0.1.1 {\n  }\n}\n";
    let l = load(text);
    assert_eq!(
        errors(&l),
        vec![
            "1:1: virtual_server group MISSING: no virtual_server_group named MISSING is defined",
            "8:3: sorry server 2001:db8::9 is IPv6 but virtual_server 10.0.0.1 80 is IPv4; only a tunnelled (TUN) sorry server may differ",
            "9:3: real server 10.0.1.1: uthreshold 5 is below lthreshold 10; the upper connection limit must not be below the lower",
            "13:3: real_server 10.0.1.1 80 appears twice in virtual_server 10.0.0.1 80 (the first is at line 9)",
            "15:3: real server 2001:db8::1 is IPv6 but virtual_server 10.0.0.1 80 is IPv4; only tunnelled (TUN) real servers may differ",
            "21:1: virtual_server 10.0.0.1 80 (TCP) is defined twice (the first is at line 6)",
            "32:1: virtual_server 10.0.0.5 needs a port: only a persistent service (persistence_timeout) may omit it to cover all ports",
        ]
    );
}

#[test]
fn port_less_persistent_service_is_valid() {
    let lvs = ok(
        "virtual_server 10.0.0.5 {\n  lvs_sched rr\n  persistence_timeout 60\n  real_server 10.0.1.1 {\n  }\n}\n",
    );
    let v = &lvs.virtual_servers[0];
    assert_eq!(
        v.key,
        VirtualServerKey::Addr {
            ip: ip("10.0.0.5"),
            port: 0,
            protocol: Protocol::Tcp
        }
    );
    assert_eq!(v.real_servers[0].port, 0);
}

#[test]
fn incomplete_checkers_are_errors() {
    let l = load(&vs(
        "  real_server 10.0.1.1 80 {\n    HTTP_GET {\n    }\n    MISC_CHECK {\n    }\n    FILE_CHECK {\n    }\n    SSL_GET {\n      url {\n        digest 640205b7b0fc66c1ea91c463fac6334d\n      }\n    }\n  }",
    ));
    assert_eq!(
        errors(&l),
        vec![
            "4:5: HTTP_GET needs at least one 'url { path … }' block; keepalived drops the checker",
            "6:5: MISC_CHECK needs 'misc_path \"command\"'; keepalived drops the checker",
            "8:5: FILE_CHECK needs 'track_file NAME'; keepalived drops the checker",
            "10:5: SSL_GET needs at least one 'url { path … }' block; keepalived drops the checker",
            "11:7: url needs 'path'; keepalived drops a url without one",
        ]
    );
}

#[test]
fn udp_file_and_http_details() {
    let lvs = ok(&format!(
        "track_file tf1 {{\n  file /run/tf1\n}}\n{}",
        vs(
            "  real_server 10.0.1.1 80 {\n    UDP_CHECK {\n      payload 01 02 ff\n      require_reply 0a??\n      min_reply_length 2\n      max_reply_length 300\n    }\n    FILE_CHECK {\n      track_file tf1\n      weight -10 reverse\n    }\n    SSL_GET {\n      url {\n        path /x\n        digest 640205B7B0FC66C1EA91C463FAC6334D\n        status_code 500 200-299 300\n        regex \"ok here\"\n        regex_no_match\n      }\n      http_protocol 1.1\n      sni_name www.example.com\n      fast_recovery\n    }\n  }",
        )
    ));
    let rs = &lvs.virtual_servers[0].real_servers[0];
    let CheckerKind::Udp(u) = &rs.checkers[0].kind else {
        panic!()
    };
    assert_eq!(
        (
            u.payload.as_slice(),
            u.require_reply,
            u.reply.as_deref(),
            u.min_reply_length,
            u.max_reply_length
        ),
        (&[1u8, 2, 255][..], true, Some("0a??"), 2, 300)
    );
    let CheckerKind::File(f) = &rs.checkers[1].kind else {
        panic!()
    };
    assert_eq!(
        (f.track_file.as_str(), f.weight, f.reverse),
        ("tf1", Some(-10), true)
    );
    assert!(rs.checkers[1].timing.is_none());
    let CheckerKind::Ssl(h) = &rs.checkers[2].kind else {
        panic!()
    };
    let u = &h.urls[0];
    assert_eq!(
        u.digest.as_deref(),
        Some("640205b7b0fc66c1ea91c463fac6334d")
    );
    assert_eq!(
        u.status_codes,
        vec![
            StatusRange {
                first: 200,
                last: 300
            },
            StatusRange {
                first: 500,
                last: 500
            }
        ]
    );
    let r = u.regex.as_ref().unwrap();
    assert_eq!((r.pattern.as_str(), r.no_match), ("ok here", true));
    assert_eq!(
        (
            h.http_protocol,
            h.enable_sni,
            h.sni_name.as_deref(),
            h.fast_recovery
        ),
        (HttpProtocol::V1_1, true, Some("www.example.com"), true)
    );
}

#[test]
fn ssl_block() {
    let lvs = ok(
        "SSL {\n  password secret\n  ca /etc/ca.pem\n  certificate /etc/c.pem\n  key /etc/k.pem\n}\n",
    );
    let s = lvs.ssl.unwrap();
    assert_eq!(s.password.as_deref(), Some("secret"));
    assert_eq!(s.key.unwrap(), Path::new("/etc/k.pem"));
}

#[test]
fn quorum_above_total_weight_is_lowered() {
    let l = load(&vs(
        "  quorum 5\n  hysteresis 9\n  real_server 10.0.1.1 80 {\n    weight 3\n  }",
    ));
    assert!(l.is_ok());
    let v = &l.config.lvs.virtual_servers[0];
    assert_eq!((v.quorum, v.hysteresis), (3, 2));
    assert_eq!(warnings(&l).len(), 2);
}

#[test]
fn real_server_ports_follow_keepalived() {
    let lvs = ok(&vs(
        "  real_server 10.0.1.1 {\n  }\n  real_server 10.0.1.2 8080 {\n  }",
    ));
    let ports: Vec<u16> = lvs.virtual_servers[0]
        .real_servers
        .iter()
        .map(|r| r.port)
        .collect();
    assert_eq!(ports, [80, 8080]);
    let l = load(
        "virtual_server fwmark 3 {\n  lvs_sched rr\n  lvs_method DR\n  real_server 10.0.1.1 80 {\n  }\n}\n",
    );
    assert!(l.is_ok());
    assert_eq!(l.config.lvs.virtual_servers[0].real_servers[0].port, 0);
    assert_eq!(warnings(&l).len(), 1);
}

#[test]
fn printed_text_reads_back_equal() {
    let text = format!(
        "SSL {{\n  ca /etc/ca.pem\n}}\nvirtual_server_group G {{\n  10.0.0.3-10 80\n  fwmark 4 inet\n}}\n{}virtual_server group G {{\n  lvs_sched sh\n  real_server 10.0.1.9 80 {{\n    MISC_CHECK {{\n      misc_path \"/bin/x 'a b'\"\n      misc_timeout 4\n    }}\n    UDP_CHECK {{\n      require_reply\n    }}\n  }}\n}}\n",
        vs(&format!(
            "{RS_HTTP}\n  sorry_server 10.0.9.9\n  sorry_server_lvs_method TUN type gre csum"
        ))
    );
    let first = ok(&text);
    let cfg = Config {
        lvs: first.clone(),
        ..Config::default()
    };
    let printed = crate::to_keepalived(&cfg);
    let again = load(&printed);
    assert!(
        again.diagnostics.is_empty(),
        "{}\n{printed}",
        again.report()
    );
    assert_eq!(again.config.lvs, first, "{printed}");
}

/// The LVS-related samples from keepalived's repository. Their VRRP and global blocks
/// belong to other lowering modules; only errors from this module's part fail the test.
#[test]
fn corpus_samples() {
    let dir = crate::test_support::corpus_dir();
    let dir = dir.as_path();
    if !dir.is_dir() {
        eprintln!("skipping: {} is absent", dir.display());
        return;
    }
    let read = |name: &str| {
        let path = dir.join(format!("keepalived.conf.{name}"));
        let l = crate::load_file(&path, &LoadOptions::default());
        // The VRRP half of SSL_GET has a real error (state MASTER with AH); it is that half's.
        let lvs_errors = l
            .diagnostics
            .iter()
            .filter(|d| d.severity == crate::Severity::Error && !d.message.starts_with("(VI_"))
            .count();
        assert_eq!(lvs_errors, 0, "{name}:\n{}", l.report());
        l.config.lvs
    };
    let http = read("HTTP_GET.port");
    assert!(!http.virtual_servers.is_empty());
    let ssl = read("SSL_GET");
    let first = &ssl.virtual_servers[0];
    assert_eq!(
        first.key,
        VirtualServerKey::Addr {
            ip: ip("192.168.200.100"),
            port: 443,
            protocol: Protocol::Tcp
        }
    );
    assert_eq!(
        (first.scheduler, first.method, first.delay_loop),
        (Scheduler::Rr, ForwardingMethod::Nat, Micros::from_secs(6))
    );
    assert_eq!(first.persistence.map(|p| p.timeout), Some(50));
    let c = &first.real_servers[0].checkers[0];
    let CheckerKind::Ssl(h) = &c.kind else {
        panic!()
    };
    assert_eq!(h.urls.len(), 2);
    assert_eq!(
        h.urls[0].digest.as_deref(),
        Some("ff20ad2481f97b1754ef3e12ecd3a9cc")
    );
    let t = c.timing.unwrap();
    assert_eq!(
        (t.retry, t.delay_before_retry, t.delay_loop),
        (3, Micros::from_secs(3), Micros::from_secs(6))
    );
    assert_eq!(
        c.connection.as_ref().unwrap().connect_timeout,
        Micros::from_secs(3)
    );

    let ping = read("PING_CHECK");
    assert!(
        ping.virtual_servers
            .iter()
            .flat_map(|v| &v.real_servers)
            .flat_map(|r| &r.checkers)
            .any(|c| c.kind == CheckerKind::Ping)
    );
    let udp = read("UDP_CHECK");
    assert!(
        udp.virtual_servers
            .iter()
            .flat_map(|v| &v.real_servers)
            .flat_map(|r| &r.checkers)
            .any(|c| matches!(c.kind, CheckerKind::Udp(_)))
    );
    let misc = read("misc_check");
    assert!(
        misc.virtual_servers
            .iter()
            .flat_map(|v| &v.real_servers)
            .flat_map(|r| &r.checkers)
            .any(|c| matches!(c.kind, CheckerKind::Misc(_)))
    );
    let arg = read("misc_check_arg");
    let CheckerKind::Misc(m) = &arg.virtual_servers[0].real_servers[0].checkers[0].kind else {
        panic!()
    };
    assert_eq!(m.path.argv, ["/usr/local/bin/script.sh", "arg1", "arg2"]);
    let q = read("quorum");
    let v = &q.virtual_servers[0];
    assert_eq!(
        (v.quorum, v.hysteresis, v.alpha, v.omega),
        (7, 2, true, true)
    );
    assert_eq!(
        v.quorum_up.as_ref().unwrap().argv,
        ["/usr/local/sbin/quorum-up.sh"]
    );
    let inhibit = read("inhibit");
    assert!(
        inhibit
            .virtual_servers
            .iter()
            .flat_map(|v| &v.real_servers)
            .any(|r| r.inhibit_on_failure)
    );
    let sc = read("status_code");
    let CheckerKind::Ssl(h) = &sc.virtual_servers[0].real_servers[0].checkers[0].kind else {
        panic!()
    };
    assert_eq!(
        h.urls[0].status_codes,
        vec![
            StatusRange {
                first: 200,
                last: 299
            },
            StatusRange {
                first: 400,
                last: 499
            },
            StatusRange {
                first: 503,
                last: 503
            },
            StatusRange {
                first: 505,
                last: 505
            }
        ]
    );
    let vsg = read("virtual_server_group");
    assert_eq!(vsg.virtual_server_groups[0].name, "VSG_1");
    assert_eq!(vsg.virtual_server_groups[0].entries.len(), 6);
    assert!(matches!(
        vsg.virtual_servers[0].key,
        VirtualServerKey::Group { .. }
    ));
    let vh = read("virtualhost");
    assert!(!vh.virtual_servers.is_empty());
    let fw = read("fwmark");
    assert!(matches!(
        fw.virtual_servers[0].key,
        VirtualServerKey::Fwmark {
            mark: 1,
            family: AddressFamily::Inet
        }
    ));
    let sample = read("sample");
    assert!(!sample.virtual_servers.is_empty());
    let smtp = read("SMTP_CHECK");
    assert!(!smtp.virtual_servers.is_empty());
    let v6 = read("IPv6");
    assert!(matches!(
        v6.virtual_servers[0].key,
        VirtualServerKey::Addr {
            ip: IpAddr::V6(_),
            ..
        }
    ));
    let installed = crate::load_file(&dir.join("etc/keepalived.conf"), &LoadOptions::default());
    assert!(
        errors(&installed)
            .iter()
            .all(|e| !e.contains("virtual") && !e.contains("real")),
        "{}",
        installed.report()
    );
    assert_eq!(installed.config.lvs.virtual_servers.len(), 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn generated_sections_round_trip(section in arb::lvs_section()) {
        let cfg = with_track_files(&section);
        let printed = crate::to_keepalived(&cfg);
        let l = load(&printed);
        prop_assert!(l.diagnostics.is_empty(), "{}\n{}", l.report(), printed);
        prop_assert_eq!(&l.config.lvs, &section, "{}", printed);
    }

    #[test]
    fn sections_survive_serde(section in arb::lvs_section()) {
        let json = serde_json::to_string(&section).unwrap();
        let back: LvsSection = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, section);
    }
}

#[test]
fn link_local_targets_need_bind_if() {
    let l = load(
        "virtual_server 2001:db8::1 80 {\n  lvs_sched rr\n  real_server fe80::5 80 {\n    TCP_CHECK {\n    }\n    TCP_CHECK {\n      bind_if eth1\n    }\n  }\n}\n",
    );
    assert_eq!(
        errors(&l),
        vec![
            "4:5: TCP_CHECK probes the link-local address fe80::5, which needs 'bind_if' to name the interface",
        ]
    );
}

/// One service around `inner`, then every diagnostic as `severity line:col: message`.
/// A config holding `section` and a `track_file` block for every name its FILE_CHECKs use.
pub(crate) fn with_track_files(section: &LvsSection) -> Config {
    let mut names: Vec<&str> = section
        .virtual_servers
        .iter()
        .flat_map(|v| &v.real_servers)
        .flat_map(|r| &r.checkers)
        .filter_map(|c| match &c.kind {
            CheckerKind::File(f) => Some(f.track_file.as_str()),
            _ => None,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut cfg = Config {
        lvs: section.clone(),
        ..Config::default()
    };
    cfg.vrrp.track_files = names
        .into_iter()
        .map(|n| crate::model::vrrp::TrackFile {
            name: n.to_string(),
            file: format!("/run/{n}").into(),
            weight: 1,
            reverse: false,
            init_file: None,
            origin: crate::model::Origin::default(),
        })
        .collect();
    cfg
}

fn findings(text: &str) -> Vec<String> {
    let l = load(text);
    l.diagnostics
        .sorted()
        .into_iter()
        .map(|d| {
            let s = d.span.unwrap();
            format!("{} {}:{}: {}", d.severity, s.line, s.col, d.message)
        })
        .collect()
}

#[test]
fn smaller_rules() {
    let rs = "  real_server 10.0.1.1 80 {\n  }";
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            vs(&format!("  sorry_server_inhibit\n{rs}")),
            vec!["error 3:3: 'sorry_server_inhibit' before or without 'sorry_server' is ignored (keepalived ignores it too)"],
        ),
        (
            vs(&format!("  sorry_server_lvs_method DR\n{rs}")),
            vec!["error 3:3: 'sorry_server_lvs_method' before or without 'sorry_server' is ignored (keepalived ignores it too)"],
        ),
        (
            vs(&format!("  ip_family inet6\n{rs}")),
            vec!["error 1:1: ip_family inet6 contradicts the virtual server address 10.0.0.1"],
        ),
        (
            vs(&format!("  protocol ICMP\n{rs}")),
            vec!["error 3:12: unknown protocol 'ICMP': it must be TCP, UDP or SCTP"],
        ),
        (
            vs(&format!("  delay_loop 6 7\n{rs}")),
            vec!["warning 3:16: extra tokens after 'delay_loop' ignored: '7' (one keyword per line; keepalived ignores them silently)"],
        ),
        (
            vs(&format!("  lvs_method TUN type ipip csum\n{rs}")),
            vec!["error 3:3: ipip tunnels have no checksum option"],
        ),
        (
            vs(&format!("  lvs_method TUN type gre remcsum\n{rs}")),
            vec!["error 3:3: gre tunnels do not support remcsum"],
        ),
        (
            vs(&format!("  lvs_method BRIDGE\n{rs}")),
            vec!["error 3:14: unknown forwarding method 'BRIDGE': it must be NAT, DR or TUN"],
        ),
        (
            vs(""),
            vec!["warning 1:1: virtual_server 10.0.0.1 80 has no real servers; keepalived ignores it, and so does flotilla"],
        ),
        (
            "virtual_server_group G {\n}\n".to_string(),
            vec!["warning 1:1: virtual_server_group G has no entries; keepalived drops it, and so does flotilla"],
        ),
        (
            "virtual_server_group G {\n  10.0.0.1 80\n  2001:db8::1 80\n  fwmark 3\n}\n".to_string(),
            vec!["error 1:1: virtual_server_group G mixes IPv4 and IPv6 addresses with a fwmark that has no family; write 'fwmark N inet' or 'fwmark N inet6'"],
        ),
        (
            "virtual_server_group G {\n  10.0.0.1 80\n}\nvirtual_server_group G {\n  10.0.0.2 80\n}\n".to_string(),
            vec!["error 4:1: virtual_server_group G is defined twice (the first is at line 1)"],
        ),
        (
            "virtual_server_group G {\n  10.0.0.9-3 80\n  10.0.0.0/33\n  10.0.0.1/24\n  fwmark 2 inet7\n}\n".to_string(),
            vec![
                "error 2:3: address range '10.0.0.9-3' ends before it starts",
                "error 3:3: '10.0.0.0/33' is not an address, an address range (10.0.0.1-10) or a CIDR block (10.0.0.0/24) in virtual_server_group",
                "error 4:3: '10.0.0.1/24' is not an address, an address range (10.0.0.1-10) or a CIDR block (10.0.0.0/24) in virtual_server_group",
                "error 5:12: unknown address family 'inet7': it must be inet or inet6",
                "warning 1:1: virtual_server_group G has no entries; keepalived drops it, and so does flotilla",
            ],
        ),
        (
            "SSL {\n  ca /a\n}\nSSL {\n  ca /b\n}\n".to_string(),
            vec!["warning 4:1: a second 'SSL' block replaces the first at line 1, as keepalived does"],
        ),
        (
            vs("  real_server 10.0.1.1 80 {\n    DNS_CHECK {\n      type ANY\n      name a..b\n    }\n  }"),
            vec![
                "error 5:12: unknown DNS_CHECK type 'ANY': it must be one of A NS CNAME SOA MX TXT AAAA RRSIG DNSKEY",
                "error 6:12: DNS_CHECK name 'a..b' has an empty label",
            ],
        ),
        (
            vs("  real_server 10.0.1.1 80 {\n    UDP_CHECK {\n      payload 0g\n      require_reply abc\n      min_reply_length 9\n      max_reply_length 4\n    }\n  }"),
            vec![
                "error 5:7: 'payload' must be an even number of hex digits",
                "error 6:7: 'require_reply' must be an even number of hex digits ('?' matches any nibble)",
                "warning 4:5: min_reply_length 9 > max_reply_length 4: the check will always fail",
            ],
        ),
        (
            vs("  real_server 10.0.1.1 80 {\n    FILE_CHECK {\n      track_file f\n      weight 3 sideways\n    }\n  }"),
            vec![
                "error 4:5: FILE_CHECK names track_file 'f', but no track_file block of that name is defined",
                "error 6:16: unknown weight option 'sideways': it must be reverse or noreverse",
            ],
        ),
        (
            vs("  real_server 10.0.1.1 80 {\n    HTTP_GET {\n      url {\n        path /\n        regex_no_match\n      }\n      http_protocol 2\n    }\n  }"),
            vec![
                "error 9:21: unknown http_protocol '2': it must be 1.0, 1.0C or 1.1",
                "warning 7:9: regex settings without 'regex' are ignored, as keepalived does",
            ],
        ),
        (
            vs("  real_server 10.0.1.1 80 {\n    notify_up /a\n    notify_up /b\n    TCP_CHECK {\n      connect_ip 10.0.0.1\n      bindto 2001:db8::1\n    }\n  }"),
            vec![
                "error 8:7: connect_ip 10.0.0.1 and bindto 2001:db8::1 are of different address families",
                "warning 5:5: 'notify_up' is already set; this one is ignored, as keepalived does",
            ],
        ),
    ];
    let mut wrong = Vec::new();
    for (text, want) in cases {
        let mut got = findings(&text);
        // Errors first, then warnings, each in file order.
        got.sort_by_key(|f| !f.starts_with("error"));
        if got != want {
            wrong.push(format!("{text}\n  got:  {got:?}\n  want: {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn tunnelled_real_servers_may_differ_in_family() {
    let lvs = ok(&vs(
        "  real_server 2001:db8::2 80 {\n    lvs_method TUN\n  }",
    ));
    assert_eq!(
        lvs.virtual_servers[0].real_servers[0].method,
        ForwardingMethod::Tun(Tunnel::default())
    );
}

#[test]
fn http_host_comes_from_checker_then_real_server_then_service() {
    let lvs = ok(&vs(
        "  virtualhost vs.example\n  real_server 10.0.1.1 80 {\n    virtualhost rs.example\n    HTTP_GET {\n      url {\n        path /\n      }\n    }\n    HTTP_GET {\n      virtualhost own.example\n      url {\n        path /\n      }\n    }\n  }\n  real_server 10.0.1.2 80 {\n    HTTP_GET {\n      url {\n        path /\n      }\n    }\n  }",
    ));
    let hosts: Vec<Option<String>> = lvs.virtual_servers[0]
        .real_servers
        .iter()
        .flat_map(|r| &r.checkers)
        .map(|c| match &c.kind {
            CheckerKind::Http(h) => h.virtualhost.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(
        hosts,
        [
            Some("rs.example".into()),
            Some("own.example".into()),
            Some("vs.example".into())
        ]
    );
}

#[test]
fn group_services_warn_about_ignored_ports() {
    let l = load(
        "virtual_server_group G {\n  10.0.0.1 80\n  10.0.0.2 8080\n}\nvirtual_server group G {\n  lvs_sched rr\n  lvs_method DR\n  real_server 10.0.1.1 80 {\n  }\n  real_server 10.0.1.2 {\n  }\n}\n",
    );
    assert!(l.is_ok());
    assert_eq!(warnings(&l), vec![
        "8:3: real server 10.0.1.1 port 80 is ignored for group entry 10.0.0.2 port 8080 of G: without NAT, IPVS forwards to the port the client used".to_string(),
    ]);
}
