//! The host layer against the real kernel: two network namespaces joined by a veth pair,
//! addresses added and removed through rtnetlink and VRRP adverts crossing the wire. Needs
//! root (CI runs as root); the namespaces are removed also when a test fails.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use flotilla_net::NetError;
use flotilla_net::garp::Announcer;
use flotilla_net::link::{LinkEvent, LinkWatch, Links, OperState};
use flotilla_net::vip::{Added, Addresses, Removed, Scope, Vip};
use flotilla_net::vrrp_socket::{Delivery, VrrpSocketV4, VrrpSocketV6};
use flotilla_vrrp::wire::{Advert, Auth, ChecksumMode, MULTICAST_V4, MULTICAST_V6, Version};

/// Two namespaces `lab-nt<id>a` / `lab-nt<id>b` with `eth0` in each, 10.250.0.1/24 and
/// .2/24. Dropping it deletes both.
struct Pair {
    a: String,
    b: String,
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sysctl -w key=value` inside namespace `ns`.
fn sysctl(ns: &str, key: &str, value: &str) {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("{key}={value}"),
        ])
        .output()
        .expect("run sysctl");
    assert!(
        out.status.success(),
        "sysctl {key}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `f` every 5 ms until it returns `Some`, or gives up after `limit`.
fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<(T, Duration)> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(t) = f() {
            return Some((t, start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Waits (up to 10 s) until `dev` in namespace `ns` runs: carrier on, which the kernel's
/// linkwatch sets some time after `link set up` (up to ~1 s, longer on a loaded machine).
/// A watch opened before that records the link as down, and a later `link set down` is no
/// transition to it.
fn wait_running(ns: &str, dev: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ip(&["-n", ns, "link", "show", dev]);
        if out.contains("LOWER_UP") && out.contains("state UP") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{dev} in {ns} not running after 10 s: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Pair {
    fn new(tag: &str) -> Pair {
        assert!(
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc"))
                == 0,
            "these tests create network namespaces and need root"
        );
        let id = format!("{}{tag}", std::process::id() % 100_000);
        let pair = Pair {
            a: format!("lab-nt{id}a"),
            b: format!("lab-nt{id}b"),
        };
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "-n", &pair.a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
            &pair.b,
        ]);
        for (ns, addr) in [(&pair.a, "10.250.0.1/24"), (&pair.b, "10.250.0.2/24")] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "addr", "add", addr, "dev", "eth0"]);
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
        }
        pair
    }

    /// Adds fd00::1/64 and fd00::2/64 (`nodad`, usable at once) and waits until both link-local
    /// addresses have finished duplicate address detection, as a VRRPv3 IPv6 sender must
    /// (RFC 5798 §5.1.2.1). Returns the link-local addresses of A and B and how long DAD took.
    fn with_ipv6(&self) -> (Ipv6Addr, Ipv6Addr, Duration) {
        ip(&[
            "-n",
            &self.a,
            "addr",
            "add",
            "fd00::1/64",
            "dev",
            "eth0",
            "nodad",
        ]);
        ip(&[
            "-n",
            &self.b,
            "addr",
            "add",
            "fd00::2/64",
            "dev",
            "eth0",
            "nodad",
        ]);
        let start = Instant::now();
        let mut lls = Vec::new();
        for ns in [&self.a, &self.b] {
            let (ll, _) = poll(Duration::from_secs(10), || {
                let out = ip(&[
                    "-n", ns, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
                ]);
                if out.contains("tentative") {
                    return None;
                }
                let word = out.split_whitespace().find(|w| w.starts_with("fe80::"))?;
                word.split('/').next()?.parse::<Ipv6Addr>().ok()
            })
            .expect("link-local address out of DAD within 10 s");
            lls.push(ll);
        }
        (lls[0], lls[1], start.elapsed())
    }

    /// eth0's MAC in namespace `ns`, as `ip link` shows it.
    fn mac(ns: &str) -> String {
        let out = ip(&["-n", ns, "-o", "link", "show", "dev", "eth0"]);
        let mut words = out.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .expect("link/ether in ip link output")
            .to_string()
    }

    /// Runs `f` on a fresh thread that has entered namespace `ns`, inside a tokio runtime.
    fn run<T: Send + 'static>(
        ns: &str,
        f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = File::open(&path).expect("open netns");
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(f())
        })
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn v4(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn vips_are_added_adopted_listed_and_removed_idempotently() {
    let pair = Pair::new("v");
    let done = Pair::run(&pair.a, || {
        Box::pin(async {
            let addrs = Addresses::connect().expect("rtnetlink");
            let idx = flotilla_net::ifindex("eth0").expect("eth0");
            let vip = Vip {
                addr: v4("10.250.0.100"),
                prefix: 24,
                label: Some("eth0:vip".into()),
                scope: Scope::Global,
            };
            assert_eq!(addrs.add(idx, &vip).await.expect("add"), Added::New);
            // A restart (or a crashed predecessor) finds it there and adopts it.
            assert_eq!(
                addrs.add(idx, &vip).await.expect("add again"),
                Added::AlreadyPresent
            );
            let listed = addrs.list(idx).await.expect("list");
            let found = listed.iter().find(|l| l.addr == vip.addr).expect("listed");
            assert_eq!(found.prefix, 24);
            assert_eq!(found.label.as_deref(), Some("eth0:vip"));
            let v6 = Vip::host(v4("fd00::100"));
            assert_eq!(addrs.add(idx, &v6).await.expect("add v6"), Added::New);
            assert_eq!(
                addrs.remove(idx, vip.addr, 24).await.expect("remove"),
                Removed::Removed
            );
            assert_eq!(
                addrs.remove(idx, vip.addr, 24).await.expect("remove again"),
                Removed::NotPresent
            );
            assert_eq!(
                addrs.remove(idx, v6.addr, 128).await.expect("remove v6"),
                Removed::Removed
            );
            let left = addrs.list(idx).await.expect("list");
            assert!(
                left.iter().all(|l| l.addr != vip.addr && l.addr != v6.addr),
                "{left:?}"
            );
            // The interface's own address was never touched.
            assert!(left.iter().any(|l| l.addr == v4("10.250.0.1")));
        })
    });
    done.join().expect("namespace thread");
    // What `ip` sees agrees: nothing of ours is left.
    let out = Command::new("ip")
        .args(["-n", &pair.a, "-o", "addr", "show", "dev", "eth0"])
        .output()
        .expect("ip addr");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("10.250.0.100"), "{text}");
}

fn advert(version: Version, auth: Auth) -> Advert {
    Advert {
        version,
        vrid: 51,
        priority: 150,
        interval_cs: 100,
        addresses: vec![v4("10.250.0.100")],
        auth,
    }
}

#[test]
fn adverts_cross_the_wire_with_ttl_255_multicast_and_unicast() {
    let pair = Pair::new("s");
    // The receiver joins the group first, then tells the sender to go.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done_rx = done.clone();
    let receiver = Pair::run(&pair.b, move || {
        Box::pin(async move {
            let multicast = VrrpSocketV4::open("eth0", Delivery::Multicast).expect("socket");
            let unicast = VrrpSocketV4::open("eth0", Delivery::Unicast).expect("socket");
            ready_tx.send(()).expect("signal");
            // A raw socket sees every VRRP datagram on the interface, multicast and unicast:
            // pick each kind from its socket.
            let first = |sock: VrrpSocketV4, want_multicast: bool| async move {
                loop {
                    let r = tokio::time::timeout(Duration::from_secs(5), sock.recv())
                        .await
                        .expect("an advert within 5 s")
                        .expect("recv")
                        .expect("VRRP datagram");
                    if (r.dst == MULTICAST_V4) == want_multicast {
                        return r;
                    }
                }
            };
            let got = first(multicast, true).await;
            let r = first(unicast, false).await;
            done_rx.store(true, std::sync::atomic::Ordering::SeqCst);
            (got, r)
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver ready");
    // Like a real master, advertise every 100 ms: a fresh veth drops what it sends until the
    // kernel's link watch activates its queue (up to a second after "up").
    let sender = Pair::run(&pair.a, move || {
        Box::pin(async move {
            let s = VrrpSocketV4::open("eth0", Delivery::Multicast).expect("socket");
            let m = advert(Version::V3, Auth::None).emit(
                v4("10.250.0.1"),
                IpAddr::V4(MULTICAST_V4),
                ChecksumMode::default(),
            );
            let u = advert(Version::V2, Auth::Pass(*b"secret\0\0")).emit(
                v4("10.250.0.1"),
                v4("10.250.0.2"),
                ChecksumMode::default(),
            );
            for _ in 0..50 {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                s.send(&m, MULTICAST_V4).await.expect("send multicast");
                s.send(&u, Ipv4Addr::new(10, 250, 0, 2))
                    .await
                    .expect("send unicast");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    sender.join().expect("sender");
    let (m, u) = receiver.join().expect("receiver");
    assert_eq!(m.ttl, 255, "RFC 5798 §5.1.1.3");
    assert_eq!(m.src, Ipv4Addr::new(10, 250, 0, 1));
    assert_eq!(m.dst, MULTICAST_V4);
    let parsed = Advert::parse(
        &m.payload,
        IpAddr::V4(m.src),
        IpAddr::V4(m.dst),
        ChecksumMode::default(),
    );
    assert_eq!(parsed, Ok(advert(Version::V3, Auth::None)));
    assert_eq!(u.ttl, 255);
    assert_eq!(u.dst, Ipv4Addr::new(10, 250, 0, 2));
    let parsed = Advert::parse(
        &u.payload,
        IpAddr::V4(u.src),
        IpAddr::V4(u.dst),
        ChecksumMode::default(),
    );
    assert_eq!(parsed, Ok(advert(Version::V2, Auth::Pass(*b"secret\0\0"))));
}

#[test]
fn ipv6_adverts_leave_from_the_link_local_address_with_hop_limit_255() {
    let pair = Pair::new("6");
    let (ll_a, ll_b, dad) = pair.with_ipv6();
    eprintln!("link-local addresses out of DAD after {dad:?}");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let receiver = Pair::run(&pair.b, move || {
        Box::pin(async move {
            let multicast = VrrpSocketV6::open("eth0", Delivery::Multicast).expect("socket");
            let unicast = VrrpSocketV6::open("eth0", Delivery::Unicast).expect("socket");
            ready_tx.send(()).expect("signal");
            let m = tokio::time::timeout(Duration::from_secs(5), multicast.recv())
                .await
                .expect("a multicast advert within 5 s")
                .expect("recv")
                .expect("hop limit and destination");
            // The unicast socket also sees the multicast copy; keep the two unicast ones.
            let mut unicast_got = Vec::new();
            while unicast_got.len() < 2 {
                let r = tokio::time::timeout(Duration::from_secs(5), unicast.recv())
                    .await
                    .expect("unicast adverts within 5 s")
                    .expect("recv")
                    .expect("hop limit and destination");
                if r.dst != MULTICAST_V6 {
                    unicast_got.push(r);
                }
            }
            (m, unicast_got)
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver ready");
    let sender = Pair::run(&pair.a, move || {
        Box::pin(async move {
            // No link-local address on lo: the error says so instead of sending from ::1.
            assert!(matches!(
                flotilla_net::link_local("lo"),
                Err(NetError::NoLinkLocal { .. })
            ));
            let s = VrrpSocketV6::open("eth0", Delivery::Multicast).expect("socket");
            let src = s.source();
            let m = advert6();
            let bytes = m.emit(
                IpAddr::V6(src),
                IpAddr::V6(MULTICAST_V6),
                ChecksumMode::default(),
            );
            s.send(&bytes, MULTICAST_V6).await.expect("send multicast");
            // Unicast peers: by link-local address and by global address.
            for peer in [ll_b, "fd00::2".parse().expect("address")] {
                let bytes = m.emit(IpAddr::V6(src), IpAddr::V6(peer), ChecksumMode::default());
                s.send(&bytes, peer).await.expect("send unicast");
            }
            // A source that is not on the interface is refused by the kernel, and said so.
            let stray = VrrpSocketV6::open_from(
                "eth0",
                Delivery::Unicast,
                "fd00::dead".parse().expect("address"),
            )
            .expect("socket");
            let bytes = m.emit(
                IpAddr::V6(stray.source()),
                IpAddr::V6(ll_b),
                ChecksumMode::default(),
            );
            assert!(matches!(
                stray.send(&bytes, ll_b).await,
                Err(NetError::SourceUnusable { .. })
            ));
            src
        })
    });
    let src = sender.join().expect("sender");
    assert_eq!(
        src, ll_a,
        "RFC 5798 §5.1.2.1: sent from the link-local address"
    );
    let (m, unicast) = receiver.join().expect("receiver");
    assert_eq!(m.hop_limit, 255, "RFC 5798 §5.1.2.3");
    assert_eq!(m.src, ll_a);
    assert_eq!(m.dst, MULTICAST_V6);
    let parsed = Advert::parse(
        &m.payload,
        IpAddr::V6(m.src),
        IpAddr::V6(m.dst),
        ChecksumMode::default(),
    );
    assert_eq!(
        parsed,
        Ok(advert6()),
        "checksum over the pseudo-header verifies"
    );
    let dsts: Vec<Ipv6Addr> = unicast.iter().map(|r| r.dst).collect();
    assert_eq!(dsts, vec![ll_b, "fd00::2".parse().expect("address")]);
    for r in unicast {
        assert_eq!(r.hop_limit, 255);
        assert_eq!(r.src, ll_a);
        let parsed = Advert::parse(
            &r.payload,
            IpAddr::V6(r.src),
            IpAddr::V6(r.dst),
            ChecksumMode::default(),
        );
        assert_eq!(parsed, Ok(advert6()));
    }
}

fn advert6() -> Advert {
    Advert {
        version: Version::V3,
        vrid: 52,
        priority: 200,
        interval_cs: 100,
        addresses: vec![v4("fd00::100")],
        auth: Auth::None,
    }
}

/// `ip neigh show` for `addr` on eth0 in `ns` holds `mac`.
fn neighbour_has(ns: &str, addr: &str, mac: &str) -> Option<()> {
    let out = ip(&["-n", ns, "neigh", "show", addr, "dev", "eth0"]);
    out.contains(mac).then_some(())
}

#[test]
fn gratuitous_arp_and_unsolicited_na_move_the_neighbours_entry_to_our_mac() {
    let pair = Pair::new("g");
    pair.with_ipv6();
    let mac_a = Pair::mac(&pair.a);
    // B believes the VIPs live elsewhere (the old master). Linux updates an existing entry
    // from a gratuitous ARP or an unsolicited NA with Override; it creates one from a GARP
    // only with arp_accept=1, checked with a second VIP.
    let old = "02:00:00:00:00:01";
    for vip in ["10.250.0.100", "fd00::100"] {
        ip(&[
            "-n", &pair.b, "neigh", "replace", vip, "lladdr", old, "dev", "eth0", "nud", "stale",
        ]);
    }
    sysctl(&pair.b, "net.ipv4.conf.eth0.arp_accept", "1");
    let sender = Pair::run(&pair.a, || {
        Box::pin(async {
            let a = Announcer::open("eth0").expect("announcer");
            a.garp("10.250.0.100".parse().expect("address"))
                .expect("send GARP");
            a.garp("10.250.0.101".parse().expect("address"))
                .expect("send GARP");
            a.unsolicited_na("fd00::100".parse().expect("address"))
                .expect("send NA");
            a.mac()
        })
    });
    let sent_mac = sender.join().expect("sender");
    let shown = sent_mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(shown, mac_a, "the announcement carries the interface's MAC");
    for vip in ["10.250.0.100", "10.250.0.101", "fd00::100"] {
        let (_, took) = poll(Duration::from_secs(2), || {
            neighbour_has(&pair.b, vip, &mac_a)
        })
        .unwrap_or_else(|| {
            panic!(
                "B's entry for {vip} never moved to {mac_a}: {}",
                ip(&["-n", &pair.b, "neigh", "show", vip])
            )
        });
        eprintln!("B's neighbour entry for {vip} at A's MAC after {took:?}");
    }
}

#[test]
fn link_watch_reports_down_within_a_second_and_up_again() {
    let pair = Pair::new("l");
    let ns = pair.a.clone();
    wait_running(&pair.a, "eth0");
    let took = Pair::run(&pair.a, move || {
        Box::pin(async move {
            let links = Links::connect().expect("rtnetlink");
            assert_eq!(
                links.oper_state("eth0").await.expect("state"),
                OperState::Up
            );
            assert!(matches!(
                links.status("nosuch0").await,
                Err(NetError::NoInterface { .. })
            ));
            let mut watch = LinkWatch::open().await.expect("watch");
            let mut took = Vec::new();
            // Down is reported at once (IFF_UP clears in the notification `ip link set down`
            // causes). Up needs IFF_RUNNING, which the kernel's linkwatch sets
            // (net/core/link_watch.c, at most one run a second host-wide): the notification
            // carrying it came 0.7-1 s after `ip link set up` here. The watch reads the link
            // back on every notification, and on this kernel (6.18) that read already shows
            // RUNNING a few ms after the admin-up notification; an older kernel may need the
            // slower path, hence 2 s.
            for (state, want_up, limit) in [("down", false, 1), ("up", true, 2)] {
                let start = Instant::now();
                ip(&["-n", &ns, "link", "set", "eth0", state]);
                let event = loop {
                    let e = tokio::time::timeout(Duration::from_secs(limit), watch.next())
                        .await
                        .unwrap_or_else(|_| panic!("no event within {limit} s of link {state}"))
                        .expect("watch open");
                    // lo and others stay quiet; anything else for eth0 is the answer.
                    match &e {
                        LinkEvent::Up(s) | LinkEvent::Down(s) if s.name == "eth0" => break e,
                        _ => continue,
                    }
                };
                took.push(start.elapsed());
                match (want_up, event) {
                    (true, LinkEvent::Up(s)) => assert_eq!(s.oper, OperState::Up),
                    (false, LinkEvent::Down(s)) => {
                        assert!(!s.admin_up);
                        assert_eq!(s.oper, OperState::Down);
                    }
                    (_, e) => panic!("after link {state}: {e:?}"),
                }
                let now = links.oper_state("eth0").await.expect("state");
                assert_eq!(now == OperState::Up, want_up, "{now:?}");
            }
            // Deleting the interface (the peer goes with it) is reported as such.
            ip(&["-n", &ns, "link", "del", "eth0"]);
            loop {
                let e = tokio::time::timeout(Duration::from_secs(1), watch.next())
                    .await
                    .expect("an event within 1 s of link del")
                    .expect("watch open");
                match e {
                    LinkEvent::Removed { name, .. } if name == "eth0" => break,
                    // It may go down on its way out.
                    LinkEvent::Down(_) => continue,
                    e => panic!("after link del: {e:?}"),
                }
            }
            took
        })
    })
    .join()
    .expect("namespace thread");
    eprintln!("link down seen after {:?}, up after {:?}", took[0], took[1]);
}

#[test]
fn link_watch_recovers_from_a_notification_flood() {
    let pair = Pair::new("f");
    let ns = pair.a.clone();
    wait_running(&pair.a, "eth0");
    let (overruns, last, count) = Pair::run(&pair.a, move || {
        Box::pin(async move {
            ip(&[
                "-n", &ns, "link", "add", "flapa", "type", "veth", "peer", "name", "flapb",
            ]);
            ip(&["-n", &ns, "link", "set", "flapb", "up"]);
            let mut watch = LinkWatch::open().await.expect("watch");
            // 2000 admin flaps while the watch is not read: far more notifications than the
            // netlink socket buffer holds, so the kernel drops some (ENOBUFS).
            let mut batch = String::new();
            for _ in 0..1000 {
                batch.push_str("link set flapa up\nlink set flapa down\n");
            }
            batch.push_str("link set flapa up\n");
            let path = std::env::temp_dir().join(format!("{ns}-flap.batch"));
            std::fs::write(&path, batch).expect("write batch");
            ip(&["-n", &ns, "-batch", path.to_str().expect("utf-8 path")]);
            let _ = std::fs::remove_file(&path);
            // Drain until quiet; up needs the kernel's linkwatch (up to ~1 s), so wait 2 s.
            let mut last = None;
            let mut count = 0;
            while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), watch.next()).await
            {
                match &e {
                    LinkEvent::Up(s) | LinkEvent::Down(s) if s.name == "flapa" => {
                        count += 1;
                        last = Some(e);
                    }
                    _ => {}
                }
            }
            (watch.overruns(), last, count)
        })
    })
    .join()
    .expect("namespace thread");
    eprintln!("{overruns} overrun(s), {count} flapa events, last {last:?}");
    assert!(
        overruns >= 1,
        "the flood was meant to overrun the socket buffer"
    );
    assert!(
        matches!(last, Some(LinkEvent::Up(ref s)) if s.oper == OperState::Up),
        "the watch ends where the link is: {last:?}"
    );
}

#[test]
fn link_watch_loses_nothing_when_next_is_cancelled() {
    let pair = Pair::new("c");
    let ns = pair.a.clone();
    // The watch must start from eth0 up, or the first `link set down` is no transition (CI
    // once opened it before the carrier came on, and no Down came).
    wait_running(&pair.a, "eth0");
    Pair::run(&pair.a, move || {
        Box::pin(async move {
            use futures_util::FutureExt;
            let mut watch = LinkWatch::open().await.expect("watch");
            for (state, want_up) in [("down", false), ("up", true)] {
                ip(&["-n", &ns, "link", "set", "eth0", state]);
                // Let the netlink driver queue the notification, then poll `next()` once and
                // drop it, as an actor's select! does when another branch wins: that poll
                // takes the notification and stops while the link is being read back.
                tokio::time::sleep(Duration::from_millis(50)).await;
                assert!(watch.next().now_or_never().is_none());
                let event = tokio::time::timeout(Duration::from_secs(2), watch.next())
                    .await
                    .unwrap_or_else(|_| panic!("the link {state} was lost with the dropped call"))
                    .expect("watch open");
                match (want_up, &event) {
                    (true, LinkEvent::Up(s)) | (false, LinkEvent::Down(s)) => {
                        assert_eq!(s.name, "eth0")
                    }
                    _ => panic!("after link {state}: {event:?}"),
                }
            }
        })
    })
    .join()
    .expect("namespace thread");
}

/// keepalived running in a namespace; stopped (SIGTERM, as an operator would) when dropped.
struct Keepalived {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Keepalived {
    fn start(ns: &str, config: &str) -> Keepalived {
        let dir = std::env::temp_dir().join(format!("{ns}-keepalived"));
        std::fs::create_dir_all(&dir).expect("keepalived dir");
        let conf = dir.join("keepalived.conf");
        std::fs::write(&conf, config).expect("keepalived.conf");
        let log = File::create(dir.join("log")).expect("keepalived log");
        let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
        // -n: stay in the foreground, -P: VRRP only, own pid files so that nothing else
        // running keepalived on this host is disturbed (LAB.md §B).
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "keepalived", "-n", "-l", "-D", "-P"])
            .args(["-f", &path("keepalived.conf")])
            .args(["-p", &path("keepalived.pid"), "-r", &path("vrrp.pid")])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start keepalived (installed by ops/ci/deps.sh)");
        Keepalived { child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // It did not stop: kill its VRRP child and itself, the two processes we started.
        if let Ok(p) = std::fs::read_to_string(self.dir.join("vrrp.pid"))
            && let Ok(p) = p.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn ipv6_adverts_interoperate_with_keepalived() {
    let pair = Pair::new("k");
    let (ll_a, ll_b, _) = pair.with_ipv6();
    let has_vip = |ns: &str| {
        ip(&["-n", ns, "-6", "-o", "addr", "show", "dev", "eth0"]).contains("fd00::100/")
    };
    // keepalived in B: IPv6 instance, VRID 52, priority 100, 0.1 s adverts. Alone, it becomes
    // master after Master_Down_Interval and advertises from B's link-local address.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let receiver = Pair::run(&pair.a, move || {
        Box::pin(async move {
            let s = VrrpSocketV6::open("eth0", Delivery::Multicast).expect("socket");
            tx.send(()).expect("signal");
            loop {
                let r = tokio::time::timeout(Duration::from_secs(5), s.recv())
                    .await
                    .expect("keepalived's advert within 5 s")
                    .expect("recv")
                    .expect("hop limit and destination");
                let parsed = Advert::parse(
                    &r.payload,
                    IpAddr::V6(r.src),
                    IpAddr::V6(r.dst),
                    ChecksumMode::default(),
                );
                if matches!(&parsed, Ok(a) if a.vrid == 52) {
                    return (r, parsed);
                }
            }
        })
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("receiver ready");
    let keepalived = Keepalived::start(
        &pair.b,
        "global_defs {\n  router_id lab-k\n  vrrp_version 3\n}\n\
         vrrp_instance VI6 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  \
         priority 100\n  advert_int 0.1\n  virtual_ipaddress {\n    fd00::100/64 dev eth0\n  }\n}\n",
    );
    let (r, parsed) = receiver.join().expect("receiver");
    assert_eq!(r.hop_limit, 255);
    assert_eq!(
        r.src, ll_b,
        "keepalived sends from the link-local address too"
    );
    assert_eq!(r.dst, MULTICAST_V6);
    let parsed = parsed.expect("keepalived's checksum verifies with flotilla's pseudo-header");
    assert_eq!((parsed.priority, parsed.interval_cs), (100, 10));
    assert_eq!(parsed.addresses, vec![v4("fd00::100")]);
    poll(Duration::from_secs(5), || has_vip(&pair.b).then_some(()))
        .unwrap_or_else(|| panic!("keepalived never took the VIP:\n{}", keepalived.log()));

    // Now A advertises priority 200: keepalived accepts the adverts (checksum, hop limit,
    // source) only if they are right, and then steps down and releases the VIP.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_sender = stop.clone();
    let sender = Pair::run(&pair.a, move || {
        Box::pin(async move {
            let s = VrrpSocketV6::open("eth0", Delivery::Multicast).expect("socket");
            assert_eq!(s.source(), ll_a);
            let mut a = advert6();
            a.interval_cs = 10;
            let bytes = a.emit(
                IpAddr::V6(s.source()),
                IpAddr::V6(MULTICAST_V6),
                ChecksumMode::default(),
            );
            while !stop_sender.load(std::sync::atomic::Ordering::Relaxed) {
                s.send(&bytes, MULTICAST_V6).await.expect("send");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let released = poll(Duration::from_secs(5), || (!has_vip(&pair.b)).then_some(()));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().expect("sender");
    let (_, took) = released.unwrap_or_else(|| {
        panic!(
            "keepalived kept the VIP despite priority 200 adverts:\n{}",
            keepalived.log()
        )
    });
    eprintln!("keepalived released the VIP {took:?} after flotilla started advertising");
    let log = keepalived.log();
    assert!(log.contains("Entering BACKUP STATE"), "{log}");
}

/// With `only_vrid`, the kernel hands a socket only its own virtual router's adverts: with
/// many instances on one interface, none wakes for the others' (IPv4 and IPv6). With
/// `except_vrids`, a socket sees only what no instance listens to.
#[test]
fn a_vrid_filter_lets_only_that_virtual_router_through() {
    let pair = Pair::new("f");
    let (_, _, _) = pair.with_ipv6();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done_rx = done.clone();
    let receiver = Pair::run(&pair.b, move || {
        Box::pin(async move {
            let v4 = VrrpSocketV4::open("eth0", Delivery::Multicast).expect("socket");
            v4.only_vrid(52).expect("filter");
            let v6 = VrrpSocketV6::open("eth0", Delivery::Multicast).expect("socket");
            v6.only_vrid(52).expect("filter");
            let rest = VrrpSocketV4::open("eth0", Delivery::Multicast).expect("socket");
            rest.except_vrids(&[51, 52]).expect("filter");
            ready_tx.send(()).expect("signal");
            let mut vrids = Vec::new();
            for _ in 0..3 {
                let r = tokio::time::timeout(Duration::from_secs(5), v4.recv())
                    .await
                    .expect("an IPv4 advert within 5 s")
                    .expect("recv")
                    .expect("datagram");
                vrids.push((4, r.payload.get(1).copied()));
                let r = tokio::time::timeout(Duration::from_secs(5), v6.recv())
                    .await
                    .expect("an IPv6 advert within 5 s")
                    .expect("recv")
                    .expect("datagram");
                vrids.push((6, r.payload.get(1).copied()));
                let r = tokio::time::timeout(Duration::from_secs(5), rest.recv())
                    .await
                    .expect("an unlisted advert within 5 s")
                    .expect("recv")
                    .expect("datagram");
                vrids.push((0, r.payload.get(1).copied()));
            }
            done_rx.store(true, std::sync::atomic::Ordering::SeqCst);
            vrids
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver ready");
    let sender = Pair::run(&pair.a, move || {
        Box::pin(async move {
            let s4 = VrrpSocketV4::open("eth0", Delivery::Multicast).expect("socket");
            let s6 = VrrpSocketV6::open("eth0", Delivery::Multicast).expect("socket");
            for _ in 0..50 {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                for vrid in [51, 52, 53] {
                    let mut a = advert(Version::V3, Auth::None);
                    a.vrid = vrid;
                    let b = a.emit(
                        v4("10.250.0.1"),
                        IpAddr::V4(MULTICAST_V4),
                        ChecksumMode::default(),
                    );
                    s4.send(&b, MULTICAST_V4).await.expect("send v4");
                    let mut a6 = advert6();
                    a6.vrid = vrid;
                    let b6 = a6.emit(
                        IpAddr::V6(s6.source()),
                        IpAddr::V6(MULTICAST_V6),
                        ChecksumMode::default(),
                    );
                    s6.send(&b6, MULTICAST_V6).await.expect("send v6");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    sender.join().expect("sender");
    let vrids = receiver.join().expect("receiver");
    assert!(
        vrids
            .iter()
            .all(|(s, v)| *v == Some(if *s == 0 { 53 } else { 52 })),
        "only VRID 52 may arrive, and 53 at the except-51-52 socket: {vrids:?}"
    );
}

#[test]
fn with_promote_secondaries_releasing_a_subnet_s_first_vip_keeps_the_others() {
    let pair = Pair::new("p");
    let done = Pair::run(&pair.a, || {
        Box::pin(async {
            let addrs = Addresses::connect().expect("rtnetlink");
            let idx = flotilla_net::ifindex("eth0").expect("eth0");
            let vip = |s: &str| Vip {
                addr: v4(s),
                prefix: 16,
                label: None,
                scope: Scope::Global,
            };
            // Without it (the kernel's default), the first address of 10.77/16 takes the
            // second along when it goes.
            let _ = std::fs::write("/proc/sys/net/ipv4/conf/eth0/promote_secondaries", "0");
            addrs.add(idx, &vip("10.77.0.1")).await.expect("add");
            addrs.add(idx, &vip("10.77.0.2")).await.expect("add");
            addrs
                .remove(idx, v4("10.77.0.1"), 16)
                .await
                .expect("remove");
            let left = addrs.list(idx).await.expect("list");
            assert!(left.iter().all(|l| l.addr != v4("10.77.0.2")), "{left:?}");
            // With it, only the released address goes.
            assert!(flotilla_net::vip::promote_secondaries("eth0").expect("sysctl"));
            assert!(
                !flotilla_net::vip::promote_secondaries("eth0").expect("sysctl"),
                "already on"
            );
            addrs.add(idx, &vip("10.77.0.1")).await.expect("add");
            addrs.add(idx, &vip("10.77.0.2")).await.expect("add");
            addrs
                .remove(idx, v4("10.77.0.1"), 16)
                .await
                .expect("remove");
            let left = addrs.list(idx).await.expect("list");
            assert!(left.iter().any(|l| l.addr == v4("10.77.0.2")), "{left:?}");
            assert!(flotilla_net::vip::promote_secondaries("../x").is_err());
        })
    });
    done.join().expect("namespace thread");
}

/// The connection-sync link: created (and adopted when it exists), a datagram sent the way
/// the kernel's master sync daemon sends (from flsync0's address, multicast loopback off,
/// TTL 1) reaches the reader on flsync1, and the injector's datagram reaches a socket made
/// the way the kernel's backup daemon makes its own (bound to the group and port, to flsync1,
/// joined there). Reverse-path filtering is loose (2) in the namespace, as systemd sets it.
#[test]
fn the_sync_link_carries_the_master_s_datagrams_to_the_reader_and_the_injector_s_to_the_backup() {
    use flotilla_net::sync_link::{self, BACKUP_PORT, GROUP, MASTER_ADDR, MASTER_PORT, RELAY_IF};
    use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
    use std::net::{SocketAddr, SocketAddrV4};

    let pair = Pair::new("s");
    sysctl(&pair.a, "net.ipv4.conf.all.rp_filter", "2");
    let done = Pair::run(&pair.a, || {
        Box::pin(async {
            sync_link::ensure().await.expect("sync link");
            sync_link::ensure().await.expect("sync link adopted");
            let reader = sync_link::reader().expect("reader");
            let injector = sync_link::injector().expect("injector");

            let master =
                Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket call");
            master
                .set_multicast_if_v4(&MASTER_ADDR)
                .expect("socket call");
            master.set_multicast_loop_v4(false).expect("socket call");
            master.set_multicast_ttl_v4(1).expect("socket call");
            master
                .bind(&SocketAddr::V4(SocketAddrV4::new(MASTER_ADDR, 0)).into())
                .expect("socket call");
            let to = SocketAddr::V4(SocketAddrV4::new(GROUP, MASTER_PORT));
            let mut buf = [0u8; 64];
            // UDP: sent again every 200 ms (as the daemons do) until one arrives, 2 s at most.
            let mut got = None;
            for _ in 0..10 {
                master
                    .send_to(b"from the master", &to.into())
                    .expect("socket call");
                if let Ok(r) =
                    tokio::time::timeout(Duration::from_millis(200), reader.recv(&mut buf)).await
                {
                    got = Some(r.expect("socket call"));
                    break;
                }
            }
            let n = got.expect("the master's datagram reaches the reader within 2 s");
            assert_eq!(&buf[..n], b"from the master");

            let backup =
                Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket call");
            backup.set_reuse_address(true).expect("socket call");
            backup
                .bind_device(Some(RELAY_IF.as_bytes()))
                .expect("socket call");
            backup
                .bind(&SocketAddr::V4(SocketAddrV4::new(GROUP, BACKUP_PORT)).into())
                .expect("socket call");
            let index = flotilla_net::ifindex(RELAY_IF).expect("socket call");
            backup
                .join_multicast_v4_n(&GROUP, &InterfaceIndexOrAddress::Index(index))
                .expect("socket call");
            backup.set_nonblocking(true).expect("socket call");
            let backup = tokio::net::UdpSocket::from_std(backup.into()).expect("socket call");
            let mut got = None;
            for _ in 0..10 {
                injector.send(b"to the backup").await.expect("socket call");
                if let Ok(r) =
                    tokio::time::timeout(Duration::from_millis(200), backup.recv(&mut buf)).await
                {
                    got = Some(r.expect("socket call"));
                    break;
                }
            }
            let n = got.expect("the injector's datagram reaches the backup socket within 2 s");
            assert_eq!(&buf[..n], b"to the backup");

            sync_link::remove().await.expect("remove");
            sync_link::remove().await.expect("remove again");
            assert!(flotilla_net::ifindex("flsync0").is_err());
        })
    });
    done.join().expect("namespace thread");
}
