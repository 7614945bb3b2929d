//! Configuration → desired IPVS state: each `virtual_server` (or each address and fwmark of
//! its `virtual_server_group`) becomes one service with its real servers as destinations.
//!
//! This is the state with every real server up, as keepalived installs it at start without
//! `alpha`. Health (checkers taking real servers out, `inhibit_on_failure` weight 0, quorum
//! and the sorry server) is applied on top by the checker layer, not here.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flotilla_config::model::lvs::{
    self, AddressFamily, ForwardingMethod, GroupEntry, LvsSection, RealServer,
    TunnelChecksum as CfgChecksum, TunnelType, VirtualServer, VirtualServerKey,
};
use thiserror::Error;

use crate::types::{
    Destination, Family, Forward, Granularity, Persistence, Protocol, Service, ServiceFlags,
    ServiceKey, ServiceSpec, Tunnel, TunnelChecksum, TunnelKind,
};

/// The most addresses one `virtual_server_group` line may expand to. An IPv6 CIDR block can
/// name 2^64 addresses; a service per address would exhaust memory long before IPVS.
pub const MAX_GROUP_RANGE: u128 = 65_536;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DesiredError {
    #[error("virtual_server group {group}: no virtual_server_group of that name")]
    NoSuchGroup { group: String },
    #[error(
        "virtual_server_group {group}: range {first}-{last} holds {count} addresses, more than {max} services flotilla will create from one line"
    )]
    RangeTooLarge {
        group: String,
        first: IpAddr,
        last: IpAddr,
        count: u128,
        max: u128,
    },
}

/// The desired services of a configuration, in configuration order. A key that appears
/// twice (the same address in two groups, say) keeps its first service, as keepalived
/// refuses the second one's `IPVS_CMD_NEW_SERVICE`.
pub fn desired_state(lvs: &LvsSection) -> Result<Vec<ServiceSpec>, DesiredError> {
    let mut out: Vec<ServiceSpec> = Vec::new();
    let mut seen = HashSet::new();
    for vs in &lvs.virtual_servers {
        for key in service_keys(lvs, vs)? {
            if seen.insert(key) {
                out.push(service_spec(vs, key));
            }
        }
    }
    Ok(out)
}

/// Every service key a virtual server stands for (one, or a group's expansion).
pub fn service_keys(lvs: &LvsSection, vs: &VirtualServer) -> Result<Vec<ServiceKey>, DesiredError> {
    Ok(match &vs.key {
        VirtualServerKey::Addr { ip, port, protocol } => vec![ServiceKey::Addr {
            protocol: protocol_of(*protocol),
            addr: *ip,
            port: *port,
        }],
        VirtualServerKey::Fwmark { mark, family } => vec![ServiceKey::Fwmark {
            mark: *mark,
            family: family_of(*family),
        }],
        VirtualServerKey::Group { name, protocol } => {
            let group = lvs.group(name).ok_or_else(|| DesiredError::NoSuchGroup {
                group: name.clone(),
            })?;
            let mut keys = Vec::new();
            for entry in &group.entries {
                match entry {
                    GroupEntry::Addresses {
                        first, last, port, ..
                    } => {
                        for addr in expand(name, *first, *last)? {
                            keys.push(ServiceKey::Addr {
                                protocol: protocol_of(*protocol),
                                addr,
                                port: *port,
                            });
                        }
                    }
                    GroupEntry::Fwmark { mark, family, .. } => keys.push(ServiceKey::Fwmark {
                        mark: *mark,
                        family: family
                            .map(family_of)
                            .unwrap_or_else(|| real_server_family(vs)),
                    }),
                }
            }
            keys
        }
    })
}

/// A group fwmark without a family takes the real servers' (keepalived's rule), IPv4 when
/// there are none.
fn real_server_family(vs: &VirtualServer) -> Family {
    vs.real_servers
        .first()
        .map(|r| Family::of(&r.ip))
        .unwrap_or(Family::Inet)
}

fn expand(group: &str, first: IpAddr, last: IpAddr) -> Result<Vec<IpAddr>, DesiredError> {
    let (a, b) = (key_of(&first), key_of(&last));
    if b < a || first.is_ipv4() != last.is_ipv4() {
        return Ok(Vec::new());
    }
    let count = b - a + 1;
    if count > MAX_GROUP_RANGE {
        return Err(DesiredError::RangeTooLarge {
            group: group.to_owned(),
            first,
            last,
            count,
            max: MAX_GROUP_RANGE,
        });
    }
    Ok((a..=b)
        .map(|k| match first {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(k as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(k)),
        })
        .collect())
}

fn key_of(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(*v)),
        IpAddr::V6(v) => u128::from(*v),
    }
}

/// The service `key` of `vs` with every real server as a destination (all healthy).
pub fn service_spec(vs: &VirtualServer, key: ServiceKey) -> ServiceSpec {
    let family = key.family();
    let persistence = vs.persistence.map(|p| Persistence {
        timeout: p.timeout,
        granularity: match (family, p.granularity) {
            (_, None) => Granularity::host(family),
            (Family::Inet, Some(lvs::Granularity::Netmask(m))) => Granularity::Netmask(m),
            (Family::Inet6, Some(lvs::Granularity::Prefix(p))) => Granularity::Prefix(p),
            // A form that does not fit the family (possible for group services of both
            // families): the same width in the other form.
            (Family::Inet, Some(lvs::Granularity::Prefix(p))) => Granularity::Netmask(
                Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(p.min(32))).unwrap_or(0)),
            ),
            (Family::Inet6, Some(lvs::Granularity::Netmask(m))) => {
                Granularity::Prefix((u32::from(m).leading_ones() as u8).max(1))
            }
        },
    });
    // A real server written twice keeps its first entry, as the kernel refuses the second.
    let mut seen = HashSet::new();
    let destinations: Vec<Destination> = vs
        .real_servers
        .iter()
        .map(destination)
        .filter(|d| seen.insert(d.key()))
        .collect();
    ServiceSpec {
        service: Service {
            key,
            scheduler: vs.scheduler.name().to_owned(),
            flags: ServiceFlags::default(),
            persistence,
        },
        destinations,
    }
}

/// A real server as an IPVS destination at its configured weight.
pub fn destination(rs: &RealServer) -> Destination {
    Destination {
        addr: rs.ip,
        port: rs.port,
        forward: forward_of(rs.method),
        weight: rs.weight,
        upper_threshold: rs.uthreshold,
        lower_threshold: rs.lthreshold,
    }
}

/// The sorry server as a destination of service `key`: with no port written, a non-NAT
/// sorry server of an address service takes the service's port (keepalived's rule).
pub fn sorry_destination(vs: &VirtualServer, key: ServiceKey) -> Option<Destination> {
    let s = vs.sorry_server.as_ref()?;
    let port = match (s.port, key, s.method) {
        (0, ServiceKey::Addr { port, .. }, m) if m != ForwardingMethod::Nat => port,
        (p, _, _) => p,
    };
    Some(Destination {
        addr: s.ip,
        port,
        forward: forward_of(s.method),
        weight: 1,
        upper_threshold: 0,
        lower_threshold: 0,
    })
}

fn forward_of(m: ForwardingMethod) -> Forward {
    match m {
        ForwardingMethod::Nat => Forward::Masq,
        ForwardingMethod::Dr => Forward::Route,
        ForwardingMethod::Tun(t) => Forward::Tunnel(Tunnel {
            kind: match t.kind {
                TunnelType::Ipip => TunnelKind::Ipip,
                TunnelType::Gue { port } => TunnelKind::Gue { port },
                TunnelType::Gre => TunnelKind::Gre,
            },
            checksum: match t.checksum {
                CfgChecksum::NoCsum => TunnelChecksum::NoCsum,
                CfgChecksum::Csum => TunnelChecksum::Csum,
                CfgChecksum::RemCsum => TunnelChecksum::RemCsum,
            },
        }),
    }
}

fn protocol_of(p: lvs::Protocol) -> Protocol {
    match p {
        lvs::Protocol::Tcp => Protocol::Tcp,
        lvs::Protocol::Udp => Protocol::Udp,
        lvs::Protocol::Sctp => Protocol::Sctp,
    }
}

fn family_of(f: AddressFamily) -> Family {
    match f {
        AddressFamily::Inet => Family::Inet,
        AddressFamily::Inet6 => Family::Inet6,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::{Path, PathBuf};

    use flotilla_config::LoadOptions;

    use super::*;

    /// keepalived's sample configurations, found as the config crate's tests find them:
    /// `../shared/corpus/keepalived-samples` beside the repository, or `FLOTILLA_CORPUS`.
    fn corpus_dir() -> PathBuf {
        match std::env::var_os("FLOTILLA_CORPUS") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/corpus/keepalived-samples"
            )),
        }
    }

    fn load(text: &str) -> LvsSection {
        let l = flotilla_config::load_str(Path::new("t.conf"), text, &LoadOptions::default());
        assert!(l.is_ok(), "{}", l.report());
        l.config.lvs
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn virtual_server_maps_to_one_service() {
        let lvs = load(
            "virtual_server 10.0.0.1 80 {\n lb_algo wrr\n lb_kind DR\n persistence_timeout 600\n persistence_granularity 255.255.255.0\n protocol UDP\n real_server 10.0.1.1 80 { weight 3\n uthreshold 100\n lthreshold 10 }\n real_server 10.0.1.2 8080 { lvs_method TUN type gue port 6080 csum }\n}\n",
        );
        let d = desired_state(&lvs).unwrap();
        assert_eq!(d.len(), 1);
        let s = &d[0];
        assert_eq!(
            s.service.key,
            ServiceKey::Addr {
                protocol: Protocol::Udp,
                addr: ip("10.0.0.1"),
                port: 80
            }
        );
        assert_eq!(s.service.scheduler, "wrr");
        assert_eq!(
            s.service.persistence,
            Some(Persistence {
                timeout: 600,
                granularity: Granularity::Netmask(Ipv4Addr::new(255, 255, 255, 0))
            })
        );
        assert_eq!(
            s.destinations[0],
            Destination {
                addr: ip("10.0.1.1"),
                port: 80,
                forward: Forward::Route,
                weight: 3,
                upper_threshold: 100,
                lower_threshold: 10
            }
        );
        assert_eq!(
            s.destinations[1].forward,
            Forward::Tunnel(Tunnel {
                kind: TunnelKind::Gue { port: 6080 },
                checksum: TunnelChecksum::Csum
            })
        );
        // keepalived forwards DR and TUN to the service's port whatever the real server says.
        assert_eq!(s.destinations[1].port, 80);
    }

    #[test]
    fn groups_expand_ranges_and_fwmarks() {
        let lvs = load(
            "virtual_server_group G {\n 10.0.0.1-3 80\n 2001:db8::/127 443\n fwmark 7 inet\n}\nvirtual_server group G {\n lb_algo rr\n real_server 10.0.1.1 80 { }\n}\n",
        );
        let d = desired_state(&lvs).unwrap();
        let keys: Vec<String> = d.iter().map(|s| s.service.key.to_string()).collect();
        assert_eq!(
            keys,
            [
                "TCP 10.0.0.1:80",
                "TCP 10.0.0.2:80",
                "TCP 10.0.0.3:80",
                "TCP [2001:db8::]:443",
                "TCP [2001:db8::1]:443",
                "FWM 7"
            ]
        );
        assert!(d.iter().all(|s| s.destinations.len() == 1));
    }

    #[test]
    fn huge_ranges_are_refused() {
        let lvs = load(
            "virtual_server_group G {\n 2001:db8::/64 443\n}\nvirtual_server group G {\n lb_algo rr\n real_server 2001:db8:1::1 443 { }\n}\n",
        );
        assert!(matches!(
            desired_state(&lvs),
            Err(DesiredError::RangeTooLarge { .. })
        ));
    }

    /// Every sample of keepalived's corpus maps without panicking, and a few known ones map
    /// to exactly what they say.
    #[test]
    fn corpus_samples() {
        let dir = corpus_dir();
        if !dir.is_dir() {
            eprintln!("skipping: {} is absent", dir.display());
            return;
        }
        let mut files: Vec<PathBuf> = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    if !p.ends_with("not-keepalived-grammar") {
                        stack.push(p);
                    }
                } else if p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("keepalived.conf"))
                {
                    files.push(p);
                }
            }
        }
        files.sort();
        assert!(files.len() >= 25, "only {} samples", files.len());
        let mut services = 0;
        for f in &files {
            let l = flotilla_config::load_file(f, &LoadOptions::default());
            let d = desired_state(&l.config.lvs).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            services += d.len();
        }
        assert!(services > 20, "{services} services in the corpus");

        let read = |name: &str| {
            let l = flotilla_config::load_file(
                &dir.join(format!("keepalived.conf.{name}")),
                &LoadOptions::default(),
            );
            desired_state(&l.config.lvs).unwrap()
        };
        // SSL_GET: 192.168.200.100:443, rr, NAT, persistence 50 s.
        let ssl = read("SSL_GET");
        let first = &ssl[0];
        assert_eq!(
            first.service.key,
            ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: ip("192.168.200.100"),
                port: 443
            }
        );
        assert_eq!(first.service.scheduler, "rr");
        assert_eq!(first.service.persistence.map(|p| p.timeout), Some(50));
        assert!(
            first
                .destinations
                .iter()
                .all(|d| d.forward == Forward::Masq)
        );
        // fwmark: the sample's services are fwmark-keyed.
        let fw = read("fwmark");
        assert!(
            fw.iter()
                .any(|s| matches!(s.service.key, ServiceKey::Fwmark { .. })),
            "{fw:?}"
        );
        // virtual_server_group: group services expand to one service per address.
        let g = read("virtual_server_group");
        assert!(g.len() > 1, "{g:?}");
    }
}
