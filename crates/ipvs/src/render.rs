//! `ipvsadm -Ln` and `ipvsadm -Ln --stats` text from IPVS state, so operators read
//! flotilla's view in the format they already know (and tests compare it with ipvsadm's).
//! Layouts follow ipvsadm 1.31's `print_title` / `print_service_entry`.

use std::fmt::Write as _;

use crate::types::{
    DestinationEntry, Family, Granularity, IpvsInfo, ServiceKey, ServiceSpec, ServiceStatus,
    SocketText, Stats,
};

/// Which of ipvsadm's listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `ipvsadm -Ln`: scheduler, flags, forwarding method, weight, connections.
    Rules,
    /// `ipvsadm -Ln --stats`: connection, packet and byte counters.
    Stats,
}

/// Specs without counters, for rendering desired state.
pub fn idle_status(specs: &[ServiceSpec]) -> Vec<ServiceStatus> {
    specs
        .iter()
        .map(|s| ServiceStatus {
            service: s.service.clone(),
            stats: Stats::default(),
            destinations: s
                .destinations
                .iter()
                .map(|d| DestinationEntry::idle(*d))
                .collect(),
        })
        .collect()
}

/// The `ipvsadm -Ln` text (or `--stats` with [`Listing::Stats`]) for `services`, sorted as
/// ipvsadm sorts (services by fwmark, family, protocol, address, port; destinations by
/// address and port).
pub fn render_ipvsadm(info: &IpvsInfo, services: &[ServiceStatus], listing: Listing) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "IP Virtual Server version {} (size={})",
        info.version_text(),
        info.conn_tab_size
    );
    match listing {
        Listing::Rules => out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        ),
        Listing::Stats => {
            let _ = writeln!(
                out,
                "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
                "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
            );
        }
    }
    let mut sorted: Vec<&ServiceStatus> = services.iter().collect();
    sorted.sort_by_key(|s| s.service.key);
    for s in sorted {
        let name = service_name(&s.service.key);
        let mut dests: Vec<&DestinationEntry> = s.destinations.iter().collect();
        dests.sort_by_key(|d| d.destination.key());
        match listing {
            Listing::Rules => {
                let _ = write!(out, "{name} {}", s.service.scheduler);
                let flags = sched_flags(&s.service.scheduler, s.service.flags);
                if !flags.is_empty() {
                    let _ = write!(out, " ({})", flags.join(","));
                }
                if let Some(p) = s.service.persistence {
                    let _ = write!(out, " persistent {}", p.timeout);
                    match p.granularity {
                        Granularity::Netmask(m) if m.to_bits() != u32::MAX => {
                            let _ = write!(out, " mask {m}");
                        }
                        Granularity::Prefix(n) if n != 128 => {
                            let _ = write!(out, " mask {n}");
                        }
                        _ => {}
                    }
                }
                if s.service.flags.one_packet {
                    out.push_str(" ops");
                }
                out.push('\n');
                for d in dests {
                    let dd = &d.destination;
                    let _ = writeln!(
                        out,
                        "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                        SocketText(dd.addr, dd.port).to_string(),
                        dd.forward.name(),
                        dd.weight,
                        d.active_conns,
                        d.inactive_conns
                    );
                }
            }
            Listing::Stats => {
                let _ = write!(out, "{name:<33}");
                counters(&mut out, &s.stats);
                for d in dests {
                    let dd = &d.destination;
                    let _ = write!(out, "  -> {:<28}", SocketText(dd.addr, dd.port).to_string());
                    counters(&mut out, &d.stats);
                }
            }
        }
    }
    out
}

/// `TCP  10.0.0.1:80`, `SCTP 10.0.0.1:80`, `FWM  7`, `FWM  7 IPv6`: the protocol padded to
/// four columns, as ipvsadm writes it.
fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => format!("{:<4} {}", protocol.name(), SocketText(*addr, *port)),
        ServiceKey::Fwmark { mark, family } => match family {
            Family::Inet => format!("FWM  {mark}"),
            Family::Inet6 => format!("FWM  {mark} IPv6"),
        },
    }
}

fn sched_flags(scheduler: &str, f: crate::types::ServiceFlags) -> Vec<&'static str> {
    let names: [&str; 3] = match scheduler {
        "sh" => ["sh-fallback", "sh-port", "flag-3"],
        "mh" => ["mh-fallback", "mh-port", "flag-3"],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    [f.sched_flag_1, f.sched_flag_2, f.sched_flag_3]
        .iter()
        .zip(names)
        .filter(|(on, _)| **on)
        .map(|(_, n)| n)
        .collect()
}

fn counters(out: &mut String, s: &Stats) {
    for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
        large_number(out, v);
    }
    out.push('\n');
}

/// ipvsadm's `print_largenum`: 9 columns, scaled to K/M/G/T past 100 million.
fn large_number(out: &mut String, n: u64) {
    let _ = match n {
        0..100_000_000 => write!(out, "{n:>9}"),
        100_000_000..1_000_000_000 => write!(out, "{:>8}K", n / 1_000),
        1_000_000_000..100_000_000_000 => write!(out, "{:>8}M", n / 1_000_000),
        100_000_000_000..100_000_000_000_000 => write!(out, "{:>8}G", n / 1_000_000_000),
        _ => write!(out, "{:>8}T", n / 1_000_000_000_000),
    };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::{Destination, Forward, Persistence, Protocol, Service};

    #[test]
    fn rules_listing_matches_ipvsadm() {
        let key = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.99.0.100".parse().unwrap(),
            port: 80,
        };
        let mut svc = Service::new(key, "wrr");
        svc.persistence = Some(Persistence {
            timeout: 300,
            granularity: Granularity::Netmask("255.255.255.0".parse().unwrap()),
        });
        let spec = ServiceSpec {
            service: svc,
            destinations: vec![
                Destination::new("10.99.0.12".parse().unwrap(), 80, Forward::Route, 1),
                Destination::new("10.99.0.11".parse().unwrap(), 80, Forward::Route, 2),
            ],
        };
        let info = IpvsInfo {
            version: 0x010201,
            conn_tab_size: 4096,
        };
        let text = render_ipvsadm(&info, &idle_status(&[spec]), Listing::Rules);
        assert_eq!(
            text,
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  10.99.0.100:80 wrr persistent 300 mask 255.255.255.0\n\
             \x20 -> 10.99.0.11:80                Route   2      0          0         \n\
             \x20 -> 10.99.0.12:80                Route   1      0          0         \n"
        );
    }

    #[test]
    fn service_names_pad_the_protocol() {
        let sctp = ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr: "2001:db8::1".parse().unwrap(),
            port: 9000,
        };
        assert_eq!(service_name(&sctp), "SCTP [2001:db8::1]:9000");
        let fw = ServiceKey::Fwmark {
            mark: 7,
            family: Family::Inet6,
        };
        assert_eq!(service_name(&fw), "FWM  7 IPv6");
    }

    #[test]
    fn large_numbers_scale() {
        let mut s = String::new();
        for n in [5, 123_456_789, 12_345_678_901, 123_456_789_012_345_678] {
            large_number(&mut s, n);
        }
        assert_eq!(s, "        5  123456K   12345M  123456T");
    }
}
