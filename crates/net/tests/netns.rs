//! The host layer against the real kernel: two network namespaces joined by a veth pair,
//! addresses added and removed through rtnetlink and VRRP adverts crossing the wire. Needs
//! root (CI runs as root); the namespaces are removed also when a test fails.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use flotilla_net::vip::{Added, Addresses, Removed, Scope, Vip};
use flotilla_net::vrrp_socket::{Delivery, VrrpSocketV4};
use flotilla_vrrp::wire::{Advert, Auth, ChecksumMode, MULTICAST_V4, Version};

/// Two namespaces `lab-nt<id>a` / `lab-nt<id>b` with `eth0` in each, 10.250.0.1/24 and
/// .2/24. Dropping it deletes both.
struct Pair {
    a: String,
    b: String,
}

fn ip(args: &[&str]) {
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
    let receiver = Pair::run(&pair.b, move || {
        Box::pin(async move {
            let multicast = VrrpSocketV4::open("eth0", Delivery::Multicast).expect("socket");
            let unicast = VrrpSocketV4::open("eth0", Delivery::Unicast).expect("socket");
            ready_tx.send(()).expect("signal");
            let got = tokio::time::timeout(Duration::from_secs(5), multicast.recv())
                .await
                .expect("a multicast advert within 5 s")
                .expect("recv")
                .expect("VRRP datagram");
            // A raw socket also sees the multicast copy: wait for the unicast one.
            loop {
                let r = tokio::time::timeout(Duration::from_secs(5), unicast.recv())
                    .await
                    .expect("a unicast advert within 5 s")
                    .expect("recv")
                    .expect("VRRP datagram");
                if r.dst != MULTICAST_V4 {
                    return (got, r);
                }
            }
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver ready");
    let sender = Pair::run(&pair.a, || {
        Box::pin(async {
            let s = VrrpSocketV4::open("eth0", Delivery::Multicast).expect("socket");
            let m = advert(Version::V3, Auth::None);
            let bytes = m.emit(
                v4("10.250.0.1"),
                IpAddr::V4(MULTICAST_V4),
                ChecksumMode::default(),
            );
            s.send(&bytes, MULTICAST_V4).await.expect("send multicast");
            let u = advert(Version::V2, Auth::Pass(*b"secret\0\0"));
            let bytes = u.emit(v4("10.250.0.1"), v4("10.250.0.2"), ChecksumMode::default());
            s.send(&bytes, Ipv4Addr::new(10, 250, 0, 2))
                .await
                .expect("send unicast");
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
