//! The kernel backend against a real IPVS, for `tests/lab/uml-ipvs-netlink.sh` (run inside
//! User-Mode Linux, in a fresh network namespace with `lo` up, a veth `lab-v0` holding
//! 10.1.0.254/24 and a route to 10.0.0.0/24 through it, and `ipvsadm` on the PATH).
//!
//! Before it starts, the runbook has added with ipvsadm a foreign service
//! (TCP 10.9.9.9:443) and one that equals a desired one (TCP 10.0.0.1:80 wrr → 10.1.0.1:80
//! DR weight 2). Prints `PASS: ...` / `FAIL: ...` lines; exits 1 if any check failed.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::process::{Command, ExitCode};

use flotilla_ipvs::{
    DaemonRole, Dataplane, DataplaneError, DestKey, Destination, Forward, Granularity,
    KernelDataplane, Listing, MemoryDataplane, OwnedSet, Persistence, Protocol, Service,
    ServiceKey, ServiceSpec, SyncDaemon, Tunnel, TunnelChecksum, TunnelKind, apply, plan,
    reconcile, release, render_ipvsadm,
};

struct Checks {
    failed: usize,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            println!("PASS: {what}");
        } else {
            println!("FAIL: {what}");
            self.failed += 1;
        }
    }

    /// Equal, or both shown for the log.
    fn same<T: PartialEq + std::fmt::Debug>(&mut self, got: &T, want: &T, what: &str) {
        if got != want {
            println!("   got:  {got:#?}\n   want: {want:#?}");
        }
        self.check(got == want, what);
    }

    fn same_text(&mut self, got: &str, want: &str, what: &str) {
        if got != want {
            println!("   --- flotilla\n{got}   --- ipvsadm\n{want}");
        }
        self.check(got == want, what);
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn ipvsadm(args: &[&str]) -> String {
    match Command::new("ipvsadm").args(args).output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("ipvsadm failed to run: {e}"),
    }
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

fn dest(addr: &str, port: u16, forward: Forward, weight: u32) -> Destination {
    Destination::new(ip(addr), port, forward, weight)
}

/// TCP, UDP, SCTP, fwmark and IPv6 services; persistence; DR, NAT and all three tunnels;
/// weights (0 too) and thresholds.
fn desired() -> Vec<ServiceSpec> {
    let mut web = dest("10.1.0.2", 80, Forward::Route, 1);
    web.upper_threshold = 100;
    web.lower_threshold = 10;
    let mut dns = Service::new(
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: ip("10.0.0.2"),
            port: 53,
        },
        "rr",
    );
    dns.flags.one_packet = true;
    let mut fw = Service::new(
        ServiceKey::Fwmark {
            mark: 7,
            family: flotilla_ipvs::Family::Inet,
        },
        "sh",
    );
    fw.flags.sched_flag_1 = true;
    fw.flags.sched_flag_2 = true;
    fw.persistence = Some(Persistence {
        timeout: 300,
        granularity: Granularity::Netmask(Ipv4Addr::new(255, 255, 255, 0)),
    });
    let tun = |kind, checksum| Forward::Tunnel(Tunnel { kind, checksum });
    let mut v6 = Service::new(tcp("2001:db8::1", 443), "rr");
    v6.persistence = Some(Persistence {
        timeout: 600,
        granularity: Granularity::Prefix(64),
    });
    vec![
        ServiceSpec {
            service: Service::new(tcp("10.0.0.1", 80), "wrr"),
            destinations: vec![dest("10.1.0.1", 80, Forward::Route, 2), web],
        },
        ServiceSpec {
            service: dns,
            destinations: vec![
                dest("10.1.0.3", 5353, Forward::Masq, 1),
                dest("10.1.0.4", 5353, Forward::Masq, 0),
            ],
        },
        ServiceSpec {
            service: fw,
            destinations: vec![
                dest(
                    "10.1.0.5",
                    0,
                    tun(TunnelKind::Ipip, TunnelChecksum::NoCsum),
                    1,
                ),
                dest(
                    "10.1.0.6",
                    0,
                    tun(TunnelKind::Gue { port: 6080 }, TunnelChecksum::Csum),
                    2,
                ),
                dest(
                    "10.1.0.7",
                    0,
                    tun(TunnelKind::Gre, TunnelChecksum::RemCsum),
                    3,
                ),
            ],
        },
        ServiceSpec {
            service: v6,
            destinations: vec![
                dest("2001:db8:1::1", 443, Forward::Route, 1),
                dest("2001:db8:1::2", 8443, Forward::Masq, 5),
            ],
        },
        ServiceSpec {
            service: Service::new(
                ServiceKey::Addr {
                    protocol: Protocol::Sctp,
                    addr: ip("10.0.0.3"),
                    port: 9000,
                },
                "lc",
            ),
            destinations: vec![dest("10.1.0.8", 9000, Forward::Masq, 1)],
        },
    ]
}

fn sorted(mut v: Vec<ServiceSpec>) -> Vec<ServiceSpec> {
    v = v.into_iter().map(ServiceSpec::normalised).collect();
    v.sort_by_key(|s| s.service.key);
    v
}

fn main() -> ExitCode {
    let mut c = Checks { failed: 0 };
    let mut dp = match KernelDataplane::connect() {
        Ok(dp) => dp,
        Err(e) => {
            println!("FAIL: connect to IPVS: {e}");
            return ExitCode::FAILURE;
        }
    };
    c.check(true, "generic netlink family IPVS resolved");
    let info = dp.info();
    c.check(
        info.is_ok(),
        &format!("IPVS info: {:?}", info.as_ref().map(|i| i.version_text())),
    );
    let Ok(info) = info else {
        return ExitCode::FAILURE;
    };

    // 1. Reconcile from a fresh start over what ipvsadm left: adopt, never re-add.
    let before = dp.snapshot().unwrap_or_default();
    let foreign_key = tcp("10.9.9.9", 443);
    c.check(
        before.iter().any(|s| s.service.key == foreign_key)
            && before.iter().any(|s| s.service.key == tcp("10.0.0.1", 80)),
        "ipvsadm-added services read back (foreign 10.9.9.9:443, pre-existing 10.0.0.1:80)",
    );
    let want = desired();
    let mut owned = OwnedSet::new();
    let mut twin = MemoryDataplane::with_state(&before);
    match reconcile(&mut dp, &want, &mut owned) {
        Ok((changes, report)) => {
            let readded = changes.iter().any(|ch| {
                matches!(ch, flotilla_ipvs::Change::AddService(s) if s.key == tcp("10.0.0.1", 80))
                    || matches!(ch, flotilla_ipvs::Change::AddDestination(k, d)
                        if *k == tcp("10.0.0.1", 80) && d.addr == ip("10.1.0.1"))
            });
            for f in &report.failed {
                println!("   refused: {} — {}", f.change, f.error);
            }
            c.check(
                report.is_ok(),
                &format!(
                    "reconcile applied {} changes without errors",
                    report.applied
                ),
            );
            c.check(
                !readded,
                "pre-existing equal service and destination adopted, not re-added (#1772)",
            );
            let twin_report = apply(&mut twin, &changes);
            c.check(twin_report.is_ok(), "MemoryDataplane accepts the same plan");
        }
        Err(e) => c.check(false, &format!("reconcile: {e}")),
    }

    // 2. Read back: equal to desired plus the foreign service, and to the in-memory twin.
    let now = dp.snapshot().unwrap_or_default();
    let mut expect = want.clone();
    expect.extend(
        before
            .iter()
            .filter(|s| s.service.key == foreign_key)
            .cloned(),
    );
    c.same(
        &now,
        &sorted(expect),
        "kernel lists back exactly the desired services (TCP, UDP ops, SCTP, fwmark sh flags + persistence, IPv6 persistence) and destinations (DR, NAT, ipip/gue/gre, weights, thresholds)",
    );
    c.same(
        &now,
        &twin.state(),
        "kernel state equals MemoryDataplane state",
    );
    c.check(plan(&want, &now, &owned).is_empty(), "second plan is empty");

    // 3. The same text as ipvsadm.
    let status = dp.status().unwrap_or_default();
    c.same_text(
        &render_ipvsadm(&info, &status, Listing::Rules),
        &ipvsadm(&["-Ln"]),
        "render_ipvsadm equals `ipvsadm -Ln`",
    );

    // 4. Edit: scheduler, flags, persistence and destination changes in place.
    let mut edited = want.clone();
    edited[1].service.scheduler = "wrr".into();
    edited[1].service.flags.one_packet = false;
    edited[1].destinations[1].weight = 4;
    edited[2].service.persistence = None;
    edited[2].service.flags.sched_flag_2 = false;
    edited[3].destinations[0].forward = Forward::Masq;
    edited[0].destinations.pop();
    match reconcile(&mut dp, &edited, &mut owned) {
        Ok((changes, report)) => {
            let adds = changes
                .iter()
                .filter(|ch| matches!(ch, flotilla_ipvs::Change::AddService(_)))
                .count();
            c.check(
                report.is_ok() && adds == 0,
                &format!(
                    "edit reconcile: {} changes in place, {} errors, {adds} services re-added",
                    changes.len(),
                    report.failed.len(),
                ),
            );
        }
        Err(e) => c.check(false, &format!("edit reconcile: {e}")),
    }
    let now = dp.snapshot().unwrap_or_default();
    let mut expect = edited.clone();
    expect.extend(
        before
            .iter()
            .filter(|s| s.service.key == foreign_key)
            .cloned(),
    );
    c.same(&now, &sorted(expect), "edits read back");

    // 5. Counters: one UDP datagram from this namespace through the UDP service (IPVS
    // schedules local clients at LOCAL_OUT).
    let udp_key = edited[1].service.key;
    let sent = UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"flotilla", "10.0.0.2:53"));
    c.check(
        sent.is_ok(),
        &format!("UDP datagram sent to 10.0.0.2:53 ({sent:?})"),
    );
    // The kernel folds its per-CPU counters into what it reports every 2 s (estimator).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let svc_stats = dp
        .services()
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.service.key == udp_key)
        .map(|s| s.stats);
    let dest_conns: u64 = dp
        .destinations(&udp_key)
        .unwrap_or_default()
        .iter()
        .map(|d| d.stats.conns)
        .sum();
    c.check(
        svc_stats.is_some_and(|s| s.conns == 1 && s.inpkts == 1 && s.inbytes > 0)
            && dest_conns == 1,
        &format!("64-bit stats: service {svc_stats:?}, destinations' conns {dest_conns}"),
    );
    let status = dp.status().unwrap_or_default();
    c.same_text(
        &render_ipvsadm(&info, &status, Listing::Stats),
        &ipvsadm(&["-Ln", "--stats"]),
        "render_ipvsadm(Stats) equals `ipvsadm -Ln --stats`",
    );

    // 6. The kernel's refusals, in words.
    let nosuch = Service::new(tcp("10.0.0.50", 80), "nosuch");
    match dp.add_service(&nosuch) {
        Err(e @ DataplaneError::UnknownScheduler { .. }) => c.check(
            e.to_string().contains("\"nosuch\""),
            &format!("unknown scheduler refused, named: {e}"),
        ),
        other => c.check(false, &format!("unknown scheduler: {other:?}")),
    }
    // ip_vs_mh is not among the modules the lab loads: the kernel's module request fails.
    let mh = Service::new(tcp("10.0.0.51", 80), "mh");
    match dp.add_service(&mh) {
        Err(e @ DataplaneError::UnknownScheduler { .. }) => c.check(
            e.to_string().contains("\"mh\""),
            &format!("scheduler with no module refused, named: {e}"),
        ),
        Ok(()) => {
            let _ = dp.delete_service(&mh.key);
            println!("   note: ip_vs_mh loaded after all; the missing-module case was not seen");
        }
        Err(e) => c.check(false, &format!("scheduler mh: {e}")),
    }
    let web = Service::new(tcp("10.0.0.1", 80), "wrr");
    c.check(
        matches!(dp.add_service(&web), Err(DataplaneError::ServiceExists(_))),
        "adding an existing service: ServiceExists",
    );
    c.check(
        matches!(
            dp.delete_service(&tcp("10.0.0.99", 80)),
            Err(DataplaneError::NoSuchService(_))
        ),
        "deleting a missing service: NoSuchService",
    );
    c.check(
        matches!(
            dp.edit_service(&Service::new(tcp("10.0.0.99", 80), "rr")),
            Err(DataplaneError::NoSuchService(_))
        ),
        "editing a missing service: NoSuchService",
    );
    c.check(
        matches!(
            dp.add_destination(&web.key, &dest("10.1.0.1", 80, Forward::Route, 1)),
            Err(DataplaneError::DestinationExists { .. })
        ),
        "adding an existing destination: DestinationExists",
    );
    let missing = DestKey {
        addr: ip("10.1.0.77"),
        port: 80,
    };
    c.check(
        matches!(
            dp.delete_destination(&web.key, &missing),
            Err(DataplaneError::NoSuchDestination { .. })
        ),
        "deleting a missing destination: NoSuchDestination",
    );

    // 7. The sync daemon.
    let daemon = SyncDaemon {
        role: DaemonRole::Master,
        interface: "lab-v0".into(),
        sync_id: 7,
        max_len: None,
        group: None,
        port: None,
        ttl: None,
    };
    let started = dp.start_daemon(&daemon);
    c.check(
        started.is_ok(),
        &format!("sync daemon started ({started:?})"),
    );
    let listed = dp.daemons().unwrap_or_default();
    c.check(
        listed.len() == 1
            && listed[0].role == DaemonRole::Master
            && listed[0].interface == "lab-v0"
            && listed[0].sync_id == 7,
        &format!("sync daemon listed: {listed:?}"),
    );
    let text = ipvsadm(&["-L", "--daemon"]);
    c.check(
        text.contains("master sync daemon (mcast=lab-v0, syncid=7"),
        &format!("ipvsadm sees it: {}", text.trim()),
    );
    c.check(
        matches!(dp.start_daemon(&daemon), Err(DataplaneError::Daemon { .. })),
        "second master refused",
    );
    let stopped = dp.stop_daemon(DaemonRole::Master);
    c.check(
        stopped.is_ok() && dp.daemons().is_ok_and(|d| d.is_empty()),
        &format!("sync daemon stopped ({stopped:?})"),
    );

    // 8. Release: owned services go, the foreign one stays.
    match release(&mut dp, &mut owned) {
        Ok(r) => c.check(r.is_ok(), &format!("release: {} deletions", r.applied)),
        Err(e) => c.check(false, &format!("release: {e}")),
    }
    let left = dp.snapshot().unwrap_or_default();
    c.same(
        &left,
        &before
            .iter()
            .filter(|s| s.service.key == foreign_key)
            .cloned()
            .collect(),
        "only the foreign service is left",
    );
    c.check(
        ipvsadm(&["-Ln"]).contains("TCP  10.9.9.9:443 rr"),
        "ipvsadm still lists the foreign service 10.9.9.9:443",
    );

    // 9. Flush empties the table.
    let flushed = dp.flush();
    c.check(
        flushed.is_ok() && dp.services().is_ok_and(|s| s.is_empty()),
        "flush empties the table",
    );

    if c.failed > 0 {
        println!("FAIL: ipvs-selftest ({} failed checks)", c.failed);
        ExitCode::FAILURE
    } else {
        println!("PASS: ipvs-selftest");
        ExitCode::SUCCESS
    }
}
