//! The mesh over real QUIC on loopback (127.0.0.x), with certificates made by `cert`.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use super::wire::{self, Envelope, Heartbeat, Message, v0};
use super::*;
use crate::cert;

const WAIT: Duration = Duration::from_secs(5);

/// A CA and its directors' certificates in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(names: &[&str]) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        cert::init_ca(&dir.path().join("ca")).unwrap();
        let pki = Pki { dir };
        for name in names {
            cert::issue(&pki.ca_dir(), name, &pki.certs()).unwrap();
        }
        pki
    }

    fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    fn tls(&self, name: &str) -> MeshTls {
        let certs = self.certs();
        MeshTls::from_files(
            &self.ca_dir().join("ca.pem"),
            &certs.join(format!("{name}.pem")),
            &certs.join(format!("{name}-key.pem")),
        )
        .unwrap()
    }
}

fn addr(last: u8) -> SocketAddr {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
    let port = UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    SocketAddr::new(ip, port)
}

/// The fleet as the configuration's `cluster` block would give it.
fn cluster(directors: &[(&str, SocketAddr)]) -> Cluster {
    use flotilla_config::model::cluster::{Director, PlacementSettings};
    Cluster {
        name: "test".into(),
        directors: directors
            .iter()
            .map(|(name, a)| Director {
                name: name.to_string(),
                address: a.ip(),
                port: a.port(),
                interfaces: Default::default(),
                origin: Default::default(),
            })
            .collect(),
        tls: None,
        placement: PlacementSettings::default(),
        heartbeat: Default::default(),
        origin: Default::default(),
    }
}

fn config(cluster: &Cluster, me: &str) -> MeshConfig {
    let mut config = MeshConfig::from_cluster(cluster, me).unwrap();
    config.detector = DetectorConfig {
        interval: Duration::from_millis(20),
        suspect_after: 5,
        ..DetectorConfig::default()
    };
    config.reconnect_min = Duration::from_millis(20);
    config.reconnect_max = Duration::from_millis(200);
    config
}

/// Starts `me`, retrying the bind for a while: a restarted director reuses its port, which
/// its predecessor's socket may still hold for a moment.
async fn start(cluster: &Cluster, me: &str, tls: &MeshTls) -> (Mesh, UnboundedReceiver<Event>) {
    let deadline = Instant::now() + WAIT;
    loop {
        match Mesh::start(config(cluster, me), tls) {
            Ok(started) => return started,
            Err(MeshError::Bind { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{me}: {e}"),
        }
    }
}

/// Waits for an event matching `want`; returns it and when it arrived.
/// A `PeerDead` with its `last_heard` checked (a heartbeat did arrive, in the past) and then
/// cleared, for comparison.
fn heard_before(e: Event) -> Event {
    match e {
        Event::PeerDead {
            name,
            confirmed_by,
            last_heard,
        } => {
            assert!(
                last_heard.is_some_and(|t| t <= Instant::now()),
                "{name}: last heard {last_heard:?}"
            );
            Event::PeerDead {
                name,
                confirmed_by,
                last_heard: None,
            }
        }
        other => other,
    }
}

async fn wait_for(
    events: &mut UnboundedReceiver<Event>,
    mut want: impl FnMut(&Event) -> bool,
) -> (Event, Instant) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if want(&e) => return (e, Instant::now()),
            Ok(Some(_)) => {}
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("no matching event within {WAIT:?}"),
        }
    }
}

async fn wait_up(events: &mut UnboundedReceiver<Event>, names: &[&str]) {
    let mut missing: Vec<&str> = names.to_vec();
    while !missing.is_empty() {
        let (e, _) = wait_for(events, |e| matches!(e, Event::PeerUp { .. })).await;
        if let Event::PeerUp { name } = e {
            missing.retain(|m| *m != name);
        }
    }
}

/// Everything that arrived within `window`.
async fn collect(events: &mut UnboundedReceiver<Event>, window: Duration) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + window;
    let mut seen = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
        seen.push(e);
    }
    seen
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_directors_heartbeat_and_agree_on_a_failure() {
    let pki = Pki::new(&["lb-1", "lb-2", "lb-3"]);
    let fleet = cluster(&[("lb-1", addr(11)), ("lb-2", addr(12)), ("lb-3", addr(13))]);
    let (a, mut a_events) = start(&fleet, "lb-1", &pki.tls("lb-1")).await;
    let (b, mut b_events) = start(&fleet, "lb-2", &pki.tls("lb-2")).await;
    let (mut c, mut c_events) = start(&fleet, "lb-3", &pki.tls("lb-3")).await;
    wait_up(&mut a_events, &["lb-2", "lb-3"]).await;
    wait_up(&mut b_events, &["lb-1", "lb-3"]).await;
    wait_up(&mut c_events, &["lb-1", "lb-2"]).await;
    assert_eq!(a.connected(), vec!["lb-2", "lb-3"]);

    // Health rides on the heartbeats.
    c.set_health(Health {
        version: "9.9.9".into(),
        load: 7,
        detail: vec![1],
    });
    wait_for(
        &mut a_events,
        |e| matches!(e, Event::PeerHealth { name, health } if name == "lb-3" && health.load == 7),
    )
    .await;

    // Heartbeats flowing: nobody is suspected while everybody runs.
    let quiet = collect(&mut a_events, Duration::from_millis(500)).await;
    assert!(
        !quiet
            .iter()
            .any(|e| matches!(e, Event::PeerSuspected { .. } | Event::PeerDead { .. })),
        "{quiet:?}"
    );

    let mut detection = Vec::new();
    for round in 0..5 {
        let closed = Instant::now();
        c.close().await;
        drop(c);
        let mut took = Vec::new();
        for (events, other) in [(&mut a_events, "lb-2"), (&mut b_events, "lb-1")] {
            let (_, suspected) = wait_for(
                events,
                |e| matches!(e, Event::PeerSuspected { name } if name == "lb-3"),
            )
            .await;
            let (dead, at) = wait_for(events, |e| matches!(e, Event::PeerDead { .. })).await;
            assert_eq!(
                heard_before(dead),
                Event::PeerDead {
                    name: "lb-3".into(),
                    confirmed_by: vec![other.into()],
                    last_heard: None
                }
            );
            took.push((suspected - closed, at - closed));
            detection.push(at - closed);
        }
        println!(
            "round {round}: lb-3 closed; lb-1 suspected after {:?}, dead after {:?}; lb-2 suspected after {:?}, dead after {:?}",
            took[0].0, took[0].1, took[1].0, took[1].1
        );
        for (_, dead) in &took {
            assert!(*dead < Duration::from_secs(2), "{dead:?}");
        }
        // The survivors still see each other.
        assert_eq!(a.connected(), vec!["lb-2"]);

        // lb-3 comes back on its address: both redial or are redialled, and it is up again.
        let restarted = start(&fleet, "lb-3", &pki.tls("lb-3")).await;
        c = restarted.0;
        wait_up(&mut a_events, &["lb-3"]).await;
        wait_up(&mut b_events, &["lb-3"]).await;
    }
    println!(
        "failure detection (interval 20 ms, k 5; close -> PeerDead at a survivor, 10 samples): median {:?}, min {:?}, max {:?}",
        median(detection.clone()),
        detection.iter().min().unwrap(),
        detection.iter().max().unwrap()
    );
    for m in [&a, &b, &c] {
        m.close().await;
    }
}

/// One lost path (lb-1 stops hearing lb-3, lb-2 still does) makes lb-1 suspect lb-3 but
/// never declare it dead; when lb-2 loses it too (lb-3 silent, its connections still open:
/// a partition, not a clean close), both declare it dead; when the paths heal it is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lost_path_is_a_suspicion_not_a_death() {
    let pki = Pki::new(&["lb-1", "lb-2", "lb-3"]);
    let fleet = cluster(&[("lb-1", addr(61)), ("lb-2", addr(62)), ("lb-3", addr(63))]);
    let (a, mut a_events) = start(&fleet, "lb-1", &pki.tls("lb-1")).await;
    let (b, mut b_events) = start(&fleet, "lb-2", &pki.tls("lb-2")).await;
    let (c, _c_events) = start(&fleet, "lb-3", &pki.tls("lb-3")).await;
    wait_up(&mut a_events, &["lb-2", "lb-3"]).await;
    wait_up(&mut b_events, &["lb-1", "lb-3"]).await;

    a.set_deaf_to("lb-3", true);
    wait_for(
        &mut a_events,
        |e| matches!(e, Event::PeerSuspected { name } if name == "lb-3"),
    )
    .await;
    let a_later = collect(&mut a_events, Duration::from_millis(500)).await;
    assert!(
        !a_later.iter().any(|e| matches!(e, Event::PeerDead { .. })),
        "{a_later:?}"
    );
    let b_seen = collect(&mut b_events, Duration::from_millis(10)).await;
    assert!(
        !b_seen
            .iter()
            .any(|e| matches!(e, Event::PeerSuspected { .. } | Event::PeerDead { .. })),
        "{b_seen:?}"
    );

    let silent = Instant::now();
    b.set_deaf_to("lb-3", true);
    let (dead, at) = wait_for(&mut b_events, |e| matches!(e, Event::PeerDead { .. })).await;
    assert_eq!(
        heard_before(dead),
        Event::PeerDead {
            name: "lb-3".into(),
            confirmed_by: vec!["lb-1".into()],
            last_heard: None
        }
    );
    let (dead, _) = wait_for(&mut a_events, |e| matches!(e, Event::PeerDead { .. })).await;
    assert_eq!(
        heard_before(dead),
        Event::PeerDead {
            name: "lb-3".into(),
            confirmed_by: vec!["lb-2".into()],
            last_heard: None
        }
    );
    println!(
        "silent lb-3 (partition, connections open): dead at lb-2 {:?} after its last path was lost",
        at - silent
    );

    a.set_deaf_to("lb-3", false);
    b.set_deaf_to("lb-3", false);
    wait_up(&mut a_events, &["lb-3"]).await;
    wait_up(&mut b_events, &["lb-3"]).await;
    for m in [&a, &b, &c] {
        m.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_directors_requests_and_death_without_a_second_opinion() {
    let pki = Pki::new(&["lb-1", "lb-2"]);
    let fleet = cluster(&[("lb-1", addr(21)), ("lb-2", addr(22))]);
    let (a, mut a_events) = start(&fleet, "lb-1", &pki.tls("lb-1")).await;
    let (b, mut b_events) = start(&fleet, "lb-2", &pki.tls("lb-2")).await;
    wait_up(&mut a_events, &["lb-2"]).await;
    wait_up(&mut b_events, &["lb-1"]).await;

    b.set_request_handler(|peer, body| async move {
        if body == b"fail" {
            return Err("refused by handler".to_string());
        }
        let mut reply = format!("{peer}:").into_bytes();
        reply.extend(body.iter().rev());
        Ok(reply)
    });
    // Both directions: the dialler (lb-1) and the accepter (lb-2) can ask.
    assert_eq!(
        a.request("lb-2", b"ping".to_vec()).await.unwrap(),
        b"lb-1:gnip"
    );
    let big = vec![7u8; 1 << 20];
    assert_eq!(a.request("lb-2", big).await.unwrap().len(), (1 << 20) + 5);
    assert!(matches!(
        a.request("lb-2", b"fail".to_vec()).await,
        Err(RequestError::Remote(e)) if e == "refused by handler"
    ));
    assert!(matches!(
        b.request("lb-1", b"x".to_vec()).await,
        Err(RequestError::Remote(e)) if e.contains("no request handler")
    ));
    assert!(matches!(
        a.request("lb-9", vec![]).await,
        Err(RequestError::UnknownPeer(_))
    ));
    assert!(matches!(
        a.request("lb-1", vec![]).await,
        Err(RequestError::UnknownPeer(_))
    ));
    let t = Instant::now();
    let n = 200;
    for i in 0..n {
        a.request("lb-2", vec![i as u8]).await.unwrap();
    }
    println!(
        "request/response round trip on loopback: {:?} mean over {n}",
        t.elapsed() / n
    );

    let closed = Instant::now();
    b.close().await;
    let (dead, at) = wait_for(&mut a_events, |e| matches!(e, Event::PeerDead { .. })).await;
    assert_eq!(
        heard_before(dead),
        Event::PeerDead {
            name: "lb-2".into(),
            confirmed_by: vec![],
            last_heard: None
        }
    );
    println!(
        "two directors: lb-2 dead at lb-1 {:?} after close",
        at - closed
    );
    assert!(matches!(
        a.request("lb-2", vec![]).await,
        Err(RequestError::NotConnected(_) | RequestError::Connection(_))
    ));
    a.close().await;
}

/// A bare QUIC client presenting `tls`'s certificate to `server`, as a director or an
/// impostor would.
async fn raw_connect(
    tls: &MeshTls,
    from: IpAddr,
    server: SocketAddr,
    server_name: &str,
) -> (
    quinn::Endpoint,
    Result<quinn::Connection, quinn::ConnectionError>,
) {
    let endpoint = quinn::Endpoint::client(SocketAddr::new(from, 0)).unwrap();
    let config = tls
        .client_config(Arc::new(quinn::TransportConfig::default()))
        .unwrap();
    let conn = endpoint
        .connect_with(config, server, server_name)
        .unwrap()
        .await;
    (endpoint, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_of_another_ca_never_join() {
    let pki = Pki::new(&["lb-1", "lb-2"]);
    let other = Pki::new(&["lb-0", "lb-2"]);
    let fleet = cluster(&[("lb-0", addr(30)), ("lb-1", addr(31)), ("lb-2", addr(32))]);
    let (a, mut a_events) = start(&fleet, "lb-1", &pki.tls("lb-1")).await;
    // lb-2 runs with a certificate of another CA: lb-1 dials it and refuses its certificate.
    let (impostor, mut impostor_events) = start(&fleet, "lb-2", &other.tls("lb-2")).await;
    let (refused, _) = wait_for(&mut a_events, |e| matches!(e, Event::Refused { .. })).await;
    println!("lb-1 dialling an impostor lb-2: {refused:?}");
    assert!(
        matches!(&refused, Event::Refused { name: Some(n), .. } if n == "lb-2"),
        "{refused:?}"
    );

    // lb-0 dials lb-1 trusting lb-1's CA, but with a certificate of another CA: lb-1's
    // verifier fails the handshake.
    let client_tls = MeshTls {
        ca: pki.tls("lb-1").ca,
        ..other.tls("lb-0")
    };
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 30));
    let (_endpoint, conn) = raw_connect(&client_tls, ip, fleet_addr(&fleet, "lb-1"), "lb-1").await;
    let outcome = match conn {
        Err(e) => e,
        Ok(conn) => tokio::time::timeout(WAIT, conn.closed()).await.unwrap(),
    };
    println!("lb-0 with another CA's certificate: {outcome}");
    assert!(
        matches!(
            outcome,
            quinn::ConnectionError::ConnectionClosed(_) | quinn::ConnectionError::TransportError(_)
        ),
        "{outcome:?}"
    );
    let (refused, _) = wait_for(&mut a_events, |e| {
        matches!(e, Event::Refused { name: None, .. })
    })
    .await;
    println!("lb-1 accepting it: {refused:?}");

    let later = collect(&mut a_events, Duration::from_millis(300)).await;
    assert!(
        !later.iter().any(|e| matches!(e, Event::PeerUp { .. })),
        "{later:?}"
    );
    let seen = collect(&mut impostor_events, Duration::from_millis(10)).await;
    assert!(
        !seen.iter().any(|e| matches!(e, Event::PeerUp { .. })),
        "{seen:?}"
    );
    assert!(a.connected().is_empty());
    a.close().await;
    impostor.close().await;
}

fn fleet_addr(cluster: &Cluster, name: &str) -> SocketAddr {
    let d = cluster.director(name).unwrap();
    SocketAddr::new(d.address, d.port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_certificate_for_a_name_not_in_the_configuration_is_refused() {
    let pki = Pki::new(&["lb-1", "lb-2", "stranger"]);
    let fleet = cluster(&[("lb-1", addr(41)), ("lb-2", addr(42))]);
    let (a, mut a_events) = start(&fleet, "lb-1", &pki.tls("lb-1")).await;
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 40));
    for (cert_name, expect) in [
        ("stranger", "names no director"),
        ("lb-1", "this director's own name"),
    ] {
        let (_endpoint, conn) =
            raw_connect(&pki.tls(cert_name), ip, fleet_addr(&fleet, "lb-1"), "lb-1").await;
        // The handshake succeeds (same CA); then the director closes with the reason.
        let conn = conn.unwrap();
        let closed = tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
        println!("certificate {cert_name:?}: {closed}");
        match closed {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, CLOSE_REFUSED);
                assert!(
                    String::from_utf8_lossy(&close.reason).contains(expect),
                    "{close:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        let (refused, _) = wait_for(&mut a_events, |e| matches!(e, Event::Refused { .. })).await;
        assert!(
            matches!(&refused, Event::Refused { reason, .. } if reason.contains(expect)),
            "{refused:?}"
        );
    }
    let later = collect(&mut a_events, Duration::from_millis(200)).await;
    assert!(
        !later.iter().any(|e| matches!(e, Event::PeerUp { .. })),
        "{later:?}"
    );
    assert!(a.connected().is_empty());
    a.close().await;
}

fn peer_addrs(cluster: &Cluster) -> Vec<PeerAddr> {
    cluster
        .directors
        .iter()
        .map(|d| PeerAddr {
            name: d.name.clone(),
            addr: SocketAddr::new(d.address, d.port),
        })
        .collect()
}

fn leaving_events(seen: &[Event], name: &str) -> Vec<Event> {
    seen.iter()
        .filter(|e| match e {
            Event::PeerSuspected { name: n } | Event::PeerDead { name: n, .. } => n == name,
            _ => false,
        })
        .cloned()
        .collect()
}

/// Directors added to and removed from running meshes: lb-0 (it dials both: a lower name)
/// and lb-3 (dialled by both) join lb-1 and lb-2 without restarting them; lb-0 is refused
/// until the others know it. Then lb-3 is removed while it still runs: its connections
/// close, nobody suspects it or declares it dead, the rest heartbeat on and a later silence
/// of a remaining director is still detected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directors_join_and_leave_a_running_mesh() {
    let pki = Pki::new(&["lb-0", "lb-1", "lb-2", "lb-3"]);
    let (a0, a1, a2, a3) = (addr(80), addr(81), addr(82), addr(83));
    let first = cluster(&[("lb-1", a1), ("lb-2", a2)]);
    let grown = cluster(&[("lb-0", a0), ("lb-1", a1), ("lb-2", a2), ("lb-3", a3)]);
    let (one, mut one_events) = start(&first, "lb-1", &pki.tls("lb-1")).await;
    let (two, mut two_events) = start(&first, "lb-2", &pki.tls("lb-2")).await;
    wait_up(&mut one_events, &["lb-2"]).await;
    wait_up(&mut two_events, &["lb-1"]).await;

    // The new directors start with the grown configuration; lb-1 and lb-2 do not know them.
    let (zero, mut zero_events) = start(&grown, "lb-0", &pki.tls("lb-0")).await;
    let (three, mut three_events) = start(&grown, "lb-3", &pki.tls("lb-3")).await;
    let (refused, _) = wait_for(&mut one_events, |e| matches!(e, Event::Refused { .. })).await;
    println!("before the change: {refused:?}");

    let joined = Instant::now();
    assert!(one.set_peers(&peer_addrs(&grown)));
    assert!(two.set_peers(&peer_addrs(&grown)));
    assert!(
        !two.set_peers(&peer_addrs(&grown)),
        "the same set again changes nothing"
    );
    wait_up(&mut one_events, &["lb-0", "lb-3"]).await;
    wait_up(&mut two_events, &["lb-0", "lb-3"]).await;
    wait_up(&mut zero_events, &["lb-1", "lb-2", "lb-3"]).await;
    wait_up(&mut three_events, &["lb-0", "lb-1", "lb-2"]).await;
    println!(
        "lb-0 and lb-3 up everywhere {:?} after set_peers",
        joined.elapsed()
    );
    assert_eq!(one.connected(), vec!["lb-0", "lb-2", "lb-3"]);
    assert_eq!(
        one.peers()
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        vec!["lb-0", "lb-2", "lb-3"]
    );
    // Requests reach a new director.
    three.set_request_handler(
        |peer, body| async move { Ok([peer.as_bytes(), b":", &body].concat()) },
    );
    assert_eq!(
        one.request("lb-3", b"hi".to_vec()).await.unwrap(),
        b"lb-1:hi"
    );

    // lb-3 leaves the configuration while it still runs (it learns it last).
    let shrunk = cluster(&[("lb-0", a0), ("lb-1", a1), ("lb-2", a2)]);
    for m in [&zero, &one, &two] {
        assert!(m.set_peers(&peer_addrs(&shrunk)));
    }
    let seen_one = collect(&mut one_events, Duration::from_millis(600)).await;
    let seen_two = collect(&mut two_events, Duration::from_millis(10)).await;
    let seen_zero = collect(&mut zero_events, Duration::from_millis(10)).await;
    for (who, seen) in [
        ("lb-0", &seen_zero),
        ("lb-1", &seen_one),
        ("lb-2", &seen_two),
    ] {
        assert!(leaving_events(seen, "lb-3").is_empty(), "{who}: {seen:?}");
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e, Event::PeerSuspected { .. } | Event::PeerDead { .. })),
            "{who}: {seen:?}"
        );
    }
    assert_eq!(one.connected(), vec!["lb-0", "lb-2"]);
    assert!(matches!(
        one.request("lb-3", b"hi".to_vec()).await,
        Err(RequestError::UnknownPeer(_))
    ));
    // lb-3 is refused if it dials again, and never counted up.
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 84));
    let (_endpoint, conn) = raw_connect(&pki.tls("lb-3"), ip, a1, "lb-1").await;
    let closed = tokio::time::timeout(WAIT, conn.unwrap().closed())
        .await
        .unwrap();
    assert!(
        matches!(&closed, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == CLOSE_REFUSED),
        "{closed:?}"
    );
    // lb-3 itself, told last, leaves quietly too.
    assert!(three.set_peers(&[]));
    assert!(three.connected().is_empty());
    let seen_three = collect(&mut three_events, Duration::from_millis(300)).await;
    assert!(
        !seen_three
            .iter()
            .any(|e| matches!(e, Event::PeerDead { .. })),
        "{seen_three:?}"
    );

    // The remaining three still detect a real failure.
    zero.close().await;
    drop(zero);
    let (dead, _) = wait_for(&mut one_events, |e| matches!(e, Event::PeerDead { .. })).await;
    assert!(
        matches!(&dead, Event::PeerDead { name, confirmed_by, .. }
            if name == "lb-0" && confirmed_by == &vec!["lb-2".to_string()]),
        "{dead:?}"
    );
    for m in [&one, &two, &three] {
        m.close().await;
    }
}

fn frame_v0_heartbeat(seq: u64) -> Vec<u8> {
    let old = v0::Message::Heartbeat(v0::Heartbeat {
        seq,
        health: Health {
            version: "0.0.9".into(),
            load: 2,
            detail: vec![],
        },
    });
    postcard::to_allocvec(&(0u16, old)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_version_is_understood_newer_and_garbage_are_dropped_not_fatal() {
    let pki = Pki::new(&["lb-0", "lb-1"]);
    let fleet = cluster(&[("lb-0", addr(50)), ("lb-1", addr(51))]);
    let (a, mut a_events) = start(&fleet, "lb-1", &pki.tls("lb-1")).await;
    a.set_request_handler(|_, body| async move { Ok(body) });

    // lb-0 is played by hand: it opens the heartbeat stream and writes what it likes.
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 50));
    let (_endpoint, conn) =
        raw_connect(&pki.tls("lb-0"), ip, fleet_addr(&fleet, "lb-1"), "lb-1").await;
    let conn = conn.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&[STREAM_HEARTBEAT]).await.unwrap();
    let heartbeat = |seq| {
        Message::Heartbeat(Heartbeat {
            seq,
            health: Health::default(),
            suspects: vec![],
        })
    };
    let bad = [
        vec![0xff; 7],                                                         // garbage
        postcard::to_allocvec(&(PROTOCOL_VERSION + 1, heartbeat(1))).unwrap(), // version N+1
        vec![PROTOCOL_VERSION as u8, 9, 0],                                    // unknown variant
        wire::encode(&Message::Request(vec![1]), PROTOCOL_VERSION).unwrap(),   // misplaced
    ];
    for frame in &bad {
        wire::write_frame(&mut send, frame).await.unwrap();
    }
    // A version N−1 heartbeat after all that: understood, lb-0 is up.
    wire::write_frame(&mut send, &frame_v0_heartbeat(2))
        .await
        .unwrap();
    wait_up(&mut a_events, &["lb-0"]).await;
    let (health, _) = wait_for(&mut a_events, |e| matches!(e, Event::PeerHealth { .. })).await;
    assert!(
        matches!(&health, Event::PeerHealth { health, .. } if health.version == "0.0.9"),
        "{health:?}"
    );
    assert_eq!(a.rejected_frames(), 4);

    // lb-1 answers a version-0 peer in version 0.
    let deadline = Instant::now() + WAIT;
    loop {
        let frame = wire::read_frame(&mut recv, wire::MAX_FRAME)
            .await
            .unwrap()
            .unwrap();
        let Envelope { version, body } = wire::decode(&frame).unwrap();
        assert!(matches!(body, Message::Heartbeat(_)));
        if version == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "lb-1 never spoke version 0");
    }

    // A stream of a kind nobody knows is refused; the connection lives on.
    let (mut odd, _odd_recv) = conn.open_bi().await.unwrap();
    odd.write_all(b"X").await.unwrap();
    odd.finish().unwrap();
    let (mut req, mut resp) = conn.open_bi().await.unwrap();
    req.write_all(&[STREAM_REQUEST]).await.unwrap();
    let request = v0::Message::Request(b"still here".to_vec());
    wire::write_frame(&mut req, &postcard::to_allocvec(&(0u16, request)).unwrap())
        .await
        .unwrap();
    req.finish().unwrap();
    let reply = wire::read_frame(&mut resp, wire::MAX_FRAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        wire::decode(&reply).unwrap(),
        Envelope {
            version: 0,
            body: Message::Response(Ok(b"still here".to_vec()))
        }
    );
    assert_eq!(a.rejected_frames(), 5);
    // Heartbeats keep lb-0 up through all of it.
    wire::write_frame(
        &mut send,
        &wire::encode(&heartbeat(3), PROTOCOL_VERSION).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(a.connected(), vec!["lb-0"]);
    conn.close(VarInt::from_u32(0), b"done");
    a.close().await;
}

#[test]
fn from_cluster_needs_this_director_in_the_list() {
    let fleet = cluster(&[(
        "lb-1",
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7180),
    )]);
    assert!(matches!(
        MeshConfig::from_cluster(&fleet, "lb-2"),
        Err(MeshError::NotADirector(_))
    ));
    let config = MeshConfig::from_cluster(&fleet, "lb-1").unwrap();
    assert_eq!(config.listen.port(), 7180);
    assert!(config.peers.is_empty());
}

#[test]
fn tls_files_are_named_in_errors() {
    let err = MeshTls::from_files(
        Path::new("/nonexistent/ca.pem"),
        Path::new("/nonexistent/a.pem"),
        Path::new("/nonexistent/a-key.pem"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conn_sync_messages_arrive_unanswered_both_directions() {
    let pki = Pki::new(&["lb-1", "lb-2"]);
    let fleet = cluster(&[("lb-1", addr(71)), ("lb-2", addr(72))]);
    let (a, mut a_events) = start(&fleet, "lb-1", &pki.tls("lb-1")).await;
    let (b, mut b_events) = start(&fleet, "lb-2", &pki.tls("lb-2")).await;
    wait_up(&mut a_events, &["lb-2"]).await;
    wait_up(&mut b_events, &["lb-1"]).await;

    let (tx, mut rx) = mpsc::unbounded_channel();
    let tx_b = tx.clone();
    b.set_conn_sync_handler(move |peer, body| {
        let _ = tx_b.send((format!("at lb-2 from {peer}"), body));
    });
    a.set_conn_sync_handler(move |peer, body| {
        let _ = tx.send((format!("at lb-1 from {peer}"), body));
    });
    for i in 0..20u8 {
        a.send_conn_sync("lb-2", vec![i; 100]).await.unwrap();
    }
    b.send_conn_sync("lb-1", vec![9; 60_000]).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 21 {
        let m = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("conn sync message lost")
            .unwrap();
        got.push(m);
    }
    let from_a: Vec<u8> = got
        .iter()
        .filter(|(w, _)| w == "at lb-2 from lb-1")
        .map(|(_, b)| b[0])
        .collect();
    assert_eq!(from_a.len(), 20);
    assert!(
        got.iter()
            .any(|(w, b)| w == "at lb-1 from lb-2" && b.len() == 60_000)
    );
    assert!(matches!(
        a.send_conn_sync("lb-9", vec![]).await,
        Err(RequestError::NotConnected(_))
    ));
    assert_eq!(a.rejected_frames() + b.rejected_frames(), 0);
    a.close().await;
    b.close().await;
}
