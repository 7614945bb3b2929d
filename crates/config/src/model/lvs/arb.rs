//! Proptest strategies for valid LVS sections: unique keys, defined groups, values within
//! keepalived's ranges, and everything already resolved the way lowering resolves it, so a
//! generated section prints and reads back to itself with no diagnostics.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::*;
use crate::model::common::{Micros, Origin, Script};

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_.-]{0,10}"
}

fn timer(lo: u64, hi: u64) -> impl Strategy<Value = Micros> {
    prop_oneof![
        (lo.div_ceil(1_000_000)..=hi / 1_000_000).prop_map(Micros::from_secs),
        (lo..=hi).prop_map(Micros),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    (
        vec("[a-z/._-]{1,8}|[a-z ]{1,6}|'[a-z]{0,3}", 1..4),
        option::of((ident(), option::of(ident()))),
    )
        .prop_map(|(argv, who)| {
            let (user, group) = match who {
                Some((u, g)) => (Some(u), g),
                None => (None, None),
            };
            Script { argv, user, group }
        })
}

fn ip_of(family: AddressFamily) -> BoxedStrategy<IpAddr> {
    match family {
        AddressFamily::Inet => any::<u32>()
            .prop_map(|n| IpAddr::V4(Ipv4Addr::from(n)))
            .boxed(),
        AddressFamily::Inet6 => any::<u128>()
            .prop_map(|n| IpAddr::V6(Ipv6Addr::from(n)))
            .boxed(),
    }
}

fn family() -> impl Strategy<Value = AddressFamily> {
    prop_oneof![Just(AddressFamily::Inet), Just(AddressFamily::Inet6)]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Sctp)
    ]
}

fn method() -> impl Strategy<Value = ForwardingMethod> {
    let checksum = prop_oneof![
        Just(TunnelChecksum::NoCsum),
        Just(TunnelChecksum::Csum),
        Just(TunnelChecksum::RemCsum)
    ];
    let tunnel = prop_oneof![
        Just(Tunnel::default()),
        prop_oneof![Just(TunnelChecksum::NoCsum), Just(TunnelChecksum::Csum)].prop_map(|c| {
            Tunnel {
                kind: TunnelType::Gre,
                checksum: c,
            }
        }),
        (1u16.., checksum).prop_map(|(port, c)| Tunnel {
            kind: TunnelType::Gue { port },
            checksum: c,
        }),
    ];
    prop_oneof![
        Just(ForwardingMethod::Nat),
        Just(ForwardingMethod::Dr),
        tunnel.prop_map(ForwardingMethod::Tun),
    ]
}

fn connection() -> impl Strategy<Value = Connection> {
    (
        option::of(ip_of(AddressFamily::Inet)),
        option::of(1u16..),
        option::of(1u16..),
        option::of("[a-z][a-z0-9]{0,14}"),
        option::of(any::<u32>()),
        timer(1, u64::from(u32::MAX)),
    )
        .prop_map(
            |(ip, connect_port, bind_port, bind_if, fwmark, connect_timeout)| Connection {
                connect_ip: ip,
                connect_port,
                // Same family as connect_ip, which is always IPv4 here.
                bindto: ip.map(|_| IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                bind_port,
                bind_if,
                fwmark,
                connect_timeout,
            },
        )
}

fn timing() -> impl Strategy<Value = Timing> {
    (
        any::<u32>(),
        timer(0, 3_600_000_000),
        timer(0, 3_600_000_000),
        timer(1, 3_600_000_000),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(retry, delay_before_retry, warmup, delay_loop, alpha, log_all_failures)| Timing {
                retry,
                delay_before_retry,
                warmup,
                delay_loop,
                alpha,
                log_all_failures,
            },
        )
}

fn status_codes() -> impl Strategy<Value = Vec<StatusRange>> {
    vec((100u16..=599, 0u16..50), 1..4).prop_map(|v| {
        StatusRange::normalise(
            v.into_iter()
                .map(|(first, len)| StatusRange {
                    first,
                    last: (first + len).min(599),
                })
                .collect(),
        )
    })
}

fn url() -> impl Strategy<Value = Url> {
    let regex = (
        "[a-z.*+^$]{1,8}",
        any::<bool>(),
        vec("[A-Z_]{1,8}", 0..3),
        option::of(0u64..1000),
        option::of(0u64..1000),
    )
        .prop_map(|(pattern, no_match, options, a, b)| {
            let (min_offset, max_offset) = match (a, b) {
                (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                x => x,
            };
            UrlRegex {
                pattern,
                no_match,
                options,
                min_offset,
                max_offset,
            }
        });
    (
        "/[a-z0-9/._-]{0,12}",
        option::of("[0-9a-f]{32}"),
        status_codes(),
        option::of(ident()),
        option::of(regex),
        any::<bool>(),
    )
        .prop_map(
            |(path, digest, status_codes, virtualhost, regex, tls_compliant)| Url {
                path,
                digest,
                status_codes,
                virtualhost,
                regex,
                tls_compliant,
                origin: Origin::default(),
            },
        )
}

fn http() -> impl Strategy<Value = HttpCheck> {
    (
        vec(url(), 1..3),
        prop_oneof![
            Just(HttpProtocol::V1_0),
            Just(HttpProtocol::V1_0C),
            Just(HttpProtocol::V1_1)
        ],
        option::of(ident()),
        any::<bool>(),
        option::of(ident()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(urls, http_protocol, virtualhost, enable_sni, sni_name, fast_recovery, tls)| {
                HttpCheck {
                    urls,
                    http_protocol,
                    virtualhost,
                    enable_sni,
                    sni_name,
                    fast_recovery,
                    tls_compliant: tls,
                }
            },
        )
}

/// A checker; MISC_CHECK's timeout is fixed up by the caller, which knows the service's
/// delay_loop.
fn checker() -> impl Strategy<Value = Checker> {
    let kind = prop_oneof![
        Just(CheckerKind::Tcp),
        Just(CheckerKind::Ping),
        http().prop_map(CheckerKind::Http),
        http().prop_map(CheckerKind::Ssl),
        (script(), 1u64..1000, any::<bool>()).prop_map(|(path, secs, dynamic)| {
            CheckerKind::Misc(MiscCheck {
                path,
                timeout: Micros::from_secs(secs),
                dynamic,
            })
        }),
        (
            proptest::sample::select(DnsType::ALL.to_vec()),
            prop_oneof![Just(".".to_string()), "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}\\.?"]
        )
            .prop_map(|(record_type, name)| CheckerKind::Dns(DnsCheck { record_type, name })),
        (
            vec(any::<u8>(), 0..6),
            any::<bool>(),
            option::of("([0-9a-f?]{2}){1,4}"),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(payload, req, reply, a, b)| CheckerKind::Udp(UdpCheck {
                payload,
                require_reply: req || reply.is_some(),
                reply,
                min_reply_length: a.min(b),
                max_reply_length: a.max(b),
            })),
        (
            ident(),
            option::of(-(MAX_WEIGHT as i32)..=(MAX_WEIGHT as i32)),
            any::<bool>()
        )
            .prop_map(
                |(track_file, weight, reverse)| CheckerKind::File(FileCheck {
                    track_file,
                    reverse: reverse && weight.is_some(),
                    weight,
                })
            ),
    ];
    (kind, connection(), timing()).prop_map(|(kind, c, t)| Checker {
        connection: kind.has_connection().then_some(c),
        timing: kind.has_timing().then_some(t),
        kind,
        origin: Origin::default(),
    })
}

#[derive(Debug)]
struct RsSeed {
    ip_bits: u128,
    port: u16,
    weight: u32,
    method: ForwardingMethod,
    inhibit: bool,
    alpha: bool,
    notify_up: Option<Script>,
    notify_down: Option<Script>,
    uthreshold: u32,
    lthreshold: u32,
    virtualhost: Option<String>,
    checkers: Vec<Checker>,
}

fn rs_seed() -> impl Strategy<Value = RsSeed> {
    (
        (any::<u128>(), any::<u16>(), 0..=MAX_WEIGHT, method()),
        (any::<bool>(), any::<bool>()),
        (option::of(script()), option::of(script())),
        (any::<u32>(), any::<u32>()),
        option::of(ident()),
        vec(checker(), 0..3),
    )
        .prop_map(
            |(
                (ip_bits, port, weight, method),
                (inhibit, alpha),
                (up, down),
                (a, b),
                vh,
                checkers,
            )| {
                RsSeed {
                    ip_bits,
                    port,
                    weight,
                    method,
                    inhibit,
                    alpha,
                    notify_up: up,
                    notify_down: down,
                    uthreshold: a.max(b),
                    lthreshold: a.min(b),
                    virtualhost: vh,
                    checkers,
                }
            },
        )
}

fn ip_from(family: AddressFamily, bits: u128) -> IpAddr {
    match family {
        AddressFamily::Inet => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

/// How a service constrains its real servers' ports (keepalived's resolution).
#[derive(Clone, Copy)]
enum PortRule {
    /// Address service: non-NAT servers use the service's port; NAT ones any non-zero port.
    Service(u16),
    /// fwmark service: non-NAT servers have no port.
    Fwmark,
    /// Group service: NAT servers any port; others none (a port would be ignored).
    Free,
}

fn server_port(rule: PortRule, method: ForwardingMethod, seed: u16) -> u16 {
    match (rule, method) {
        (PortRule::Service(_), ForwardingMethod::Nat) => seed.max(1),
        (PortRule::Service(p), _) => p,
        (PortRule::Fwmark | PortRule::Free, ForwardingMethod::Nat) => seed,
        (PortRule::Free, _) => 0,
        (PortRule::Fwmark, _) => 0,
    }
}

#[derive(Debug)]
struct VsSeed {
    scheduler: Scheduler,
    method: ForwardingMethod,
    persistence: Option<Persistence>,
    delay_loop: Micros,
    connect_timeout: Micros,
    retry: Option<u32>,
    delay_before_retry: Option<Micros>,
    warmup: Option<Micros>,
    flags: (bool, bool, bool, bool),
    quorum: (u32, u32),
    scripts: (Option<Script>, Option<Script>),
    weight: u32,
    virtualhost: Option<String>,
    sorry: Option<(u128, u16, ForwardingMethod, bool)>,
    real_servers: Vec<RsSeed>,
}

fn vs_seed() -> impl Strategy<Value = VsSeed> {
    let granularity = prop_oneof![
        any::<u32>().prop_map(|n| Granularity::Netmask(Ipv4Addr::from(n))),
        (1u8..=128).prop_map(Granularity::Prefix),
    ];
    let persistence = option::of(
        (1..=MAX_PERSISTENCE_TIMEOUT, option::of(granularity)).prop_map(
            |(timeout, granularity)| Persistence {
                timeout,
                granularity,
            },
        ),
    );
    (
        (
            proptest::sample::select(Scheduler::ALL.to_vec()),
            method(),
            persistence,
            timer(1, 600_000_000),
            timer(1, u64::from(u32::MAX)),
        ),
        (
            option::of(1u32..),
            option::of(timer(0, 600_000_000)),
            option::of(timer(0, 600_000_000)),
        ),
        any::<(bool, bool, bool, bool)>(),
        (any::<u32>(), any::<u32>()),
        (option::of(script()), option::of(script())),
        (1..=MAX_WEIGHT, option::of(ident())),
        option::of((any::<u128>(), any::<u16>(), method(), any::<bool>())),
        vec(rs_seed(), 1..4),
    )
        .prop_map(
            |(
                (scheduler, method, persistence, delay_loop, connect_timeout),
                (retry, delay_before_retry, warmup),
                flags,
                quorum,
                scripts,
                (weight, virtualhost),
                sorry,
                real_servers,
            )| VsSeed {
                scheduler,
                method,
                persistence,
                delay_loop,
                connect_timeout,
                retry,
                delay_before_retry,
                warmup,
                flags,
                quorum,
                scripts,
                weight,
                virtualhost,
                sorry,
                real_servers,
            },
        )
}

fn build_vs(
    key: VirtualServerKey,
    family: AddressFamily,
    rule: PortRule,
    s: VsSeed,
) -> VirtualServer {
    let mut vs = VirtualServer::new(key);
    vs.scheduler = s.scheduler;
    vs.method = s.method;
    vs.persistence = s.persistence;
    vs.delay_loop = s.delay_loop;
    vs.connect_timeout = s.connect_timeout;
    vs.retry = s.retry;
    vs.delay_before_retry = s.delay_before_retry;
    vs.warmup = s.warmup;
    (vs.inhibit_on_failure, vs.alpha, vs.omega, vs.ha_suspend) = s.flags;
    (vs.quorum_up, vs.quorum_down) = s.scripts;
    vs.weight = s.weight;
    vs.virtualhost = s.virtualhost;
    vs.sorry_server = s.sorry.map(|(bits, port, method, inhibit)| SorryServer {
        ip: ip_from(family, bits),
        port: match (rule, method) {
            (PortRule::Service(p), m) if m != ForwardingMethod::Nat => p,
            (PortRule::Fwmark | PortRule::Free, m) if m != ForwardingMethod::Nat => 0,
            _ => port,
        },
        method,
        inhibit,
        origin: Origin::default(),
    });
    let mut seen = BTreeSet::new();
    for r in s.real_servers {
        let ip = ip_from(family, r.ip_bits);
        let port = server_port(rule, r.method, r.port);
        if !seen.insert((ip, port)) {
            continue;
        }
        let mut checkers = r.checkers;
        let link_local = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
        let vhost = r.virtualhost.clone().or(vs.virtualhost.clone());
        for c in &mut checkers {
            if let CheckerKind::Http(h) | CheckerKind::Ssl(h) = &mut c.kind
                && h.virtualhost.is_none()
            {
                h.virtualhost = vhost.clone();
            }
            if let Some(conn) = &mut c.connection
                && link_local
                && conn.connect_ip.is_none()
            {
                conn.bind_if = Some("eth0".into());
            }
            if let CheckerKind::Misc(m) = &mut c.kind
                && m.timeout.0 % 3 == 0
            {
                m.timeout = vs.delay_loop;
            }
        }
        vs.real_servers.push(RealServer {
            ip,
            port,
            weight: r.weight,
            method: r.method,
            inhibit_on_failure: r.inhibit,
            alpha: r.alpha,
            notify_up: r.notify_up,
            notify_down: r.notify_down,
            uthreshold: r.uthreshold,
            lthreshold: r.lthreshold,
            virtualhost: r.virtualhost,
            checkers,
            origin: Origin::default(),
        });
    }
    let sum: u64 = vs.real_servers.iter().map(|r| u64::from(r.weight)).sum();
    let cap = sum.clamp(1, u64::from(u32::MAX)) as u32;
    vs.quorum = 1 + s.quorum.0 % cap;
    vs.hysteresis = s.quorum.1 % vs.quorum;
    vs
}

fn group(family: AddressFamily) -> impl Strategy<Value = Vec<GroupEntry>> {
    let addresses = (ip_of(family), 0u8..20, any::<u16>()).prop_map(|(first, n, port)| {
        let last = match first {
            IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(u32::from(v).saturating_add(u32::from(n)))),
            IpAddr::V6(v) => {
                IpAddr::V6(Ipv6Addr::from(u128::from(v).saturating_add(u128::from(n))))
            }
        };
        GroupEntry::Addresses {
            first,
            last,
            port,
            origin: Origin::default(),
        }
    });
    let fwmark = (1u32.., any::<bool>()).prop_map(move |(mark, with_family)| GroupEntry::Fwmark {
        mark,
        family: with_family.then_some(family),
        origin: Origin::default(),
    });
    vec(prop_oneof![3 => addresses, 1 => fwmark], 1..4)
}

#[derive(Debug, Clone)]
enum KeySeed {
    Addr(u128, u16, Protocol),
    Fwmark(u32),
    Group(usize, Protocol),
}

fn key_seed() -> impl Strategy<Value = KeySeed> {
    prop_oneof![
        3 => (any::<u128>(), 1u16.., protocol()).prop_map(|(b, p, pr)| KeySeed::Addr(b, p, pr)),
        1 => (1u32..).prop_map(KeySeed::Fwmark),
        1 => (any::<usize>(), protocol()).prop_map(|(i, p)| KeySeed::Group(i, p)),
    ]
}

fn ssl() -> impl Strategy<Value = SslContext> {
    let path = || option::of("/etc/[a-z]{1,8}\\.pem".prop_map(PathBuf::from));
    (option::of(ident()), path(), path(), path()).prop_map(|(password, ca, certificate, key)| {
        SslContext {
            password,
            ca,
            certificate,
            key,
            origin: Origin::default(),
        }
    })
}

/// Valid LVS sections (see the module comment).
pub(crate) fn lvs_section() -> impl Strategy<Value = LvsSection> {
    let groups = vec((family(), family().prop_flat_map(group)), 0..3);
    (
        groups,
        vec((key_seed(), family(), vs_seed()), 0..4),
        option::of(ssl()),
    )
        .prop_map(|(groups, services, ssl)| {
            // Each group has entries of one family, so its services know their family.
            let groups: Vec<(AddressFamily, VirtualServerGroup)> = groups
                .into_iter()
                .enumerate()
                .map(|(i, (_, entries))| {
                    let fam = entries
                        .iter()
                        .find_map(GroupEntry::family)
                        .unwrap_or(AddressFamily::Inet);
                    (
                        fam,
                        VirtualServerGroup {
                            name: format!("group_{i}"),
                            entries,
                            origin: Origin::default(),
                        },
                    )
                })
                .collect();
            let mut keys = BTreeSet::new();
            let mut virtual_servers = Vec::new();
            for (key, fam, seed) in services {
                let (key, family, rule) = match key {
                    KeySeed::Addr(bits, port, protocol) => (
                        VirtualServerKey::Addr {
                            ip: ip_from(fam, bits),
                            port,
                            protocol,
                        },
                        fam,
                        PortRule::Service(port),
                    ),
                    KeySeed::Fwmark(mark) => (
                        VirtualServerKey::Fwmark { mark, family: fam },
                        fam,
                        PortRule::Fwmark,
                    ),
                    KeySeed::Group(i, protocol) => {
                        let Some((gfam, g)) = groups.get(i % groups.len().max(1)) else {
                            continue;
                        };
                        (
                            VirtualServerKey::Group {
                                name: g.name.clone(),
                                protocol,
                            },
                            *gfam,
                            PortRule::Free,
                        )
                    }
                };
                if !keys.insert(format!("{key:?}")) {
                    continue;
                }
                let vs = build_vs(key, family, rule, seed);
                virtual_servers.push(vs);
            }
            LvsSection {
                virtual_server_groups: groups.into_iter().map(|(_, g)| g).collect(),
                virtual_servers,
                ssl,
            }
        })
}
