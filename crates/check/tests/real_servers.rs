//! Every checker kind against real servers on loopback, then whole checkers (scheduler +
//! probe on real time) watching a server go away and come back.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use flotilla_check::probe::{GenhashRequest, genhash};
use flotilla_check::{CheckEvent, CheckRunner, Health, ProbeError, ProbeReport, ProbeResult};
use flotilla_config::Config;
use flotilla_config::model::Script;
use flotilla_config::model::lvs::{
    CheckerKind, DnsCheck, DnsType, FileCheck, HttpCheck, HttpProtocol, MiscCheck, StatusRange,
    UdpCheck, Url, UrlRegex,
};
use flotilla_config::model::vrrp::TrackFile;
use flotilla_config::model::{Micros, Origin};
use md5::Digest;
use tokio::sync::mpsc;

use support::*;

const T: Duration = Duration::from_secs(1);

fn url(path: &str) -> Url {
    Url {
        path: path.into(),
        digest: None,
        status_codes: Vec::new(),
        virtualhost: None,
        regex: None,
        tls_compliant: false,
        origin: Origin::default(),
    }
}

fn http(urls: Vec<Url>) -> HttpCheck {
    HttpCheck {
        urls,
        ..HttpCheck::default()
    }
}

async fn run(kind: CheckerKind, addr: std::net::SocketAddr) -> Result<String, String> {
    let c = checker(kind, T);
    spec(&c, addr)
        .probe
        .run()
        .await
        .map(|p| p.reason)
        .map_err(|e| e.to_string())
}

// ---- TCP_CHECK ----

#[tokio::test]
async fn tcp_up_when_accepted_down_when_refused() {
    let server = http_server("127.0.0.1:0").await;
    let ok = run(CheckerKind::Tcp, server.addr).await.unwrap();
    assert!(ok.starts_with("TCP connect to"), "{ok}");
    let closed = closed_tcp_port("127.0.0.1").await;
    assert_eq!(
        run(CheckerKind::Tcp, closed).await,
        Err("connection refused".into())
    );
}

#[tokio::test]
async fn connect_ip_port_and_bindto_are_used() {
    let server = http_server("127.0.0.2:0").await;
    // The target is elsewhere; connect_ip/connect_port send the probe to the server, and
    // bindto makes it come from 127.0.0.3, which /from-127.0.0.3 checks.
    let mut c = checker(CheckerKind::Http(http(vec![url("/from-127.0.0.3")])), T);
    let conn = c.connection.as_mut().unwrap();
    conn.connect_ip = Some(server.addr.ip());
    conn.connect_port = Some(server.addr.port());
    conn.bindto = Some(ip("127.0.0.3"));
    let elsewhere = closed_tcp_port("127.0.0.1").await;
    let r = spec(&c, elsewhere).probe.run().await;
    assert!(r.is_ok(), "{r:?}");
    // Without bindto the server sees 127.0.0.1 and refuses.
    c.connection.as_mut().unwrap().bindto = None;
    let r = spec(&c, elsewhere).probe.run().await.unwrap_err();
    assert!(r.to_string().starts_with("HTTP status 403"), "{r}");
}

#[tokio::test]
async fn bind_if_and_fwmark_are_applied() {
    let server = http_server("127.0.0.1:0").await;
    let mut c = checker(CheckerKind::Tcp, T);
    let conn = c.connection.as_mut().unwrap();
    conn.bind_if = Some("lo".into());
    conn.fwmark = Some(7);
    assert!(spec(&c, server.addr).probe.run().await.is_ok());
    // A device that does not exist fails the probe, with the reason.
    c.connection.as_mut().unwrap().bind_if = Some("nosuchdev0".into());
    let e = spec(&c, server.addr).probe.run().await.unwrap_err();
    assert!(matches!(e, ProbeError::Socket(_)), "{e}");
}

#[tokio::test]
async fn ipv6_http_sends_a_bracketed_host() {
    let server = http_server("[::1]:0").await;
    let r = run(CheckerKind::Http(http(vec![url("/vhost")])), server.addr).await;
    // /vhost answers 421 with the Host header it got as the body.
    assert_eq!(r, Err("HTTP status 421 not in 200-299 for /vhost".into()));
    let req = GenhashRequest::from_url(&format!("http://{}/vhost", server.addr)).unwrap();
    let g = genhash(&req).await.unwrap();
    let host = server.addr.to_string();
    assert!(host.starts_with("[::1]:"));
    let want: String = md5::Md5::digest(host.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(g.digest, Some(want), "Host header should be {host}");
}

// ---- HTTP_GET ----

#[tokio::test]
async fn http_status_ranges() {
    let server = http_server("127.0.0.1:0").await;
    assert_eq!(
        run(CheckerKind::Http(http(vec![url("/ok")])), server.addr).await,
        Ok("HTTP status 200 for /ok".into())
    );
    assert_eq!(
        run(
            CheckerKind::Http(http(vec![url("/forbidden")])),
            server.addr
        )
        .await,
        Err("HTTP status 403 not in 200-299 for /forbidden".into())
    );
    assert_eq!(
        run(CheckerKind::Http(http(vec![url("/nope")])), server.addr).await,
        Err("HTTP status 404 not in 200-299 for /nope".into())
    );
    // A 403 that is configured as fine.
    let mut u = url("/forbidden");
    u.status_codes = vec![
        StatusRange {
            first: 200,
            last: 200,
        },
        StatusRange {
            first: 400,
            last: 403,
        },
    ];
    assert!(
        run(CheckerKind::Http(http(vec![u])), server.addr)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn http_all_urls_must_pass() {
    let server = http_server("127.0.0.1:0").await;
    let both = http(vec![url("/ok"), url("/body")]);
    assert_eq!(
        run(CheckerKind::Http(both), server.addr).await,
        Ok("HTTP status 200 for /ok, 200 for /body".into())
    );
    let one_bad = http(vec![url("/ok"), url("/forbidden"), url("/body")]);
    assert_eq!(
        run(CheckerKind::Http(one_bad), server.addr).await,
        Err("HTTP status 403 not in 200-299 for /forbidden".into())
    );
}

#[tokio::test]
async fn http_digest() {
    let server = http_server("127.0.0.1:0").await;
    let mut good = url("/body");
    good.digest = Some(BODY_MD5.into());
    assert!(
        run(CheckerKind::Http(http(vec![good])), server.addr)
            .await
            .is_ok()
    );
    let mut bad = url("/body");
    bad.digest = Some("00000000000000000000000000000000".into());
    assert_eq!(
        run(CheckerKind::Http(http(vec![bad])), server.addr).await,
        Err(format!(
            "MD5 digest {BODY_MD5} is not 00000000000000000000000000000000 for /body"
        ))
    );
}

#[tokio::test]
async fn http_regex_on_the_body() {
    let server = http_server("127.0.0.1:0").await;
    let with = |pattern: &str, no_match| {
        let mut u = url("/body");
        u.regex = Some(UrlRegex {
            pattern: pattern.into(),
            no_match,
            options: Vec::new(),
            min_offset: None,
            max_offset: None,
        });
        CheckerKind::Http(http(vec![u]))
    };
    assert!(run(with("wor+ld$", false), server.addr).await.is_ok());
    assert_eq!(
        run(with("goodbye", false), server.addr).await,
        Err("regex 'goodbye' did not match the body of /body".into())
    );
    assert!(run(with("goodbye", true), server.addr).await.is_ok());
    assert_eq!(
        run(with("hello", true), server.addr).await,
        Err("regex 'hello' matched the body of /body".into())
    );
}

#[tokio::test]
async fn http_virtualhost_sets_host() {
    let server = http_server("127.0.0.1:0").await;
    // Without a virtualhost the Host header is the probed ip:port.
    let r = run(CheckerKind::Http(http(vec![url("/vhost")])), server.addr).await;
    assert_eq!(
        r,
        Err("HTTP status 421 not in 200-299 for /vhost".to_owned())
    );
    let mut h = http(vec![url("/vhost")]);
    h.virtualhost = Some("www.example.com".into());
    assert!(run(CheckerKind::Http(h), server.addr).await.is_ok());
    // A url's own virtualhost wins over the checker's.
    let mut u = url("/vhost");
    u.virtualhost = Some("www.example.com".into());
    let mut h = http(vec![u]);
    h.virtualhost = Some("other.example.com".into());
    assert!(run(CheckerKind::Http(h), server.addr).await.is_ok());
}

#[tokio::test]
async fn http_protocols() {
    let server = http_server("127.0.0.1:0").await;
    for p in [HttpProtocol::V1_0, HttpProtocol::V1_0C, HttpProtocol::V1_1] {
        let mut h = http(vec![url("/body")]);
        h.http_protocol = p;
        h.urls[0].digest = Some(BODY_MD5.into());
        assert!(
            run(CheckerKind::Http(h), server.addr).await.is_ok(),
            "{p:?}"
        );
    }
}

#[tokio::test]
async fn http_timeouts() {
    let server = http_server("127.0.0.1:0").await;
    // Answers after SLOW (3 s), beyond the 1 s timeout.
    assert_eq!(
        run(CheckerKind::Http(http(vec![url("/slow")])), server.addr).await,
        Err("HTTP timeout after 1 s for /slow".into())
    );
    let hang = hanging_server("127.0.0.1:0").await;
    assert_eq!(
        run(CheckerKind::Http(http(vec![url("/ok")])), hang.addr).await,
        Err("HTTP timeout after 1 s for /ok".into())
    );
    let closed = closed_tcp_port("127.0.0.1").await;
    assert_eq!(
        run(CheckerKind::Http(http(vec![url("/ok")])), closed).await,
        Err("connection refused".into())
    );
}

/// A listener whose accept queue is full drops further SYNs, so connect() hangs until the
/// checker's own timeout.
#[tokio::test]
async fn connect_timeout() {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.5:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    // Fill the queue (backlog 0 still admits one), never accepting.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        fillers.push(tokio::spawn(tokio::net::TcpStream::connect(addr)));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = checker(CheckerKind::Tcp, T);
    c.connection.as_mut().unwrap().connect_timeout = Micros::from_millis(300);
    let r = spec(&c, addr).probe.run().await.unwrap_err();
    assert_eq!(r.to_string(), "connect timeout after 0.3 s");
    assert!(matches!(r, ProbeError::ConnectTimeout(_)));
    drop(sock);
}

// ---- SSL_GET ----

#[tokio::test]
async fn ssl_get_with_a_self_signed_certificate() {
    let server = https_server("127.0.0.1:0").await;
    let mut u = url("/body");
    u.digest = Some(BODY_MD5.into());
    assert_eq!(
        run(CheckerKind::Ssl(http(vec![u, url("/ok")])), server.addr).await,
        Ok("HTTP status 200 for /body, 200 for /ok".into())
    );
    assert_eq!(
        run(CheckerKind::Ssl(http(vec![url("/forbidden")])), server.addr).await,
        Err("HTTP status 403 not in 200-299 for /forbidden".into())
    );
    // No SNI unless enable_sni.
    assert!(server.sni.lock().unwrap().iter().all(Option::is_none));
}

#[tokio::test]
async fn ssl_get_sends_sni_when_enabled() {
    let server = https_server("127.0.0.1:0").await;
    let mut h = http(vec![url("/vhost")]);
    h.virtualhost = Some("www.example.com".into());
    h.enable_sni = true;
    assert!(run(CheckerKind::Ssl(h.clone()), server.addr).await.is_ok());
    h.sni_name = Some("sni.example.com".into());
    assert!(run(CheckerKind::Ssl(h), server.addr).await.is_ok());
    assert_eq!(
        *server.sni.lock().unwrap(),
        vec![
            Some("www.example.com".to_owned()),
            Some("sni.example.com".to_owned())
        ]
    );
}

#[tokio::test]
async fn ssl_get_against_plain_http_fails_the_handshake() {
    let server = http_server("127.0.0.1:0").await;
    let r = run(CheckerKind::Ssl(http(vec![url("/ok")])), server.addr).await;
    assert!(
        r.as_ref().unwrap_err().starts_with("TLS handshake"),
        "{r:?}"
    );
}

#[tokio::test]
async fn genhash_gives_the_digest() {
    let server = http_server("127.0.0.1:0").await;
    let req = GenhashRequest::from_url(&format!("http://{}/body", server.addr)).unwrap();
    let g = genhash(&req).await.unwrap();
    assert_eq!((g.status, g.digest.as_deref()), (200, Some(BODY_MD5)));
    assert_eq!(g.bytes, BODY.len() as u64);
    let tls = https_server("127.0.0.1:0").await;
    let req = GenhashRequest::from_url(&format!("https://{}/body", tls.addr)).unwrap();
    assert_eq!(
        genhash(&req).await.unwrap().digest.as_deref(),
        Some(BODY_MD5)
    );
}

// ---- UDP_CHECK ----

#[tokio::test]
async fn udp_reply_and_icmp_unreachable() {
    let echo = udp_echo("127.0.0.1:0").await;
    let closed = closed_udp_port("127.0.0.1").await;
    let udp = |require_reply, reply: Option<&str>| {
        CheckerKind::Udp(UdpCheck {
            payload: b"\x0apingxx".to_vec(),
            require_reply,
            reply: reply.map(str::to_owned),
            ..UdpCheck::default()
        })
    };
    // Without require_reply: up unless the port is unreachable.
    assert!(run(udp(false, None), echo.addr).await.is_ok());
    assert_eq!(
        run(udp(false, None), closed).await,
        Err("connection refused".into())
    );
    // With require_reply: a reply, matching the pattern where one is given.
    assert!(run(udp(true, None), echo.addr).await.is_ok());
    assert!(run(udp(true, Some("0a70??6e67")), echo.addr).await.is_ok());
    assert_eq!(
        run(udp(true, Some("0b")), echo.addr).await,
        Err("UDP reply of 7 bytes does not match".into())
    );
    assert_eq!(
        run(udp(true, None), closed).await,
        Err("connection refused".into())
    );
}

#[tokio::test]
async fn udp_no_reply() {
    // A bound socket that never answers: no ICMP, no reply.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let mut c = checker(
        CheckerKind::Udp(UdpCheck {
            require_reply: true,
            ..UdpCheck::default()
        }),
        T,
    );
    c.connection.as_mut().unwrap().connect_timeout = Micros::from_millis(200);
    let r = spec(&c, addr).probe.run().await.unwrap_err();
    assert_eq!(r.to_string(), "no UDP reply after 0.2 s");
    c.kind = CheckerKind::Udp(UdpCheck::default());
    assert!(spec(&c, addr).probe.run().await.is_ok());
}

// ---- DNS_CHECK ----

#[tokio::test]
async fn dns_rcodes() {
    let server = dns_server("127.0.0.1:0").await;
    let dns = |name: &str| {
        CheckerKind::Dns(DnsCheck {
            record_type: DnsType::A,
            name: name.into(),
        })
    };
    assert_eq!(
        run(dns("good.example.com"), server.addr).await,
        Ok("DNS NOERROR for good.example.com A".into())
    );
    assert_eq!(
        run(dns("missing.example.com"), server.addr).await,
        Err("DNS NXDOMAIN for missing.example.com A".into())
    );
    assert_eq!(
        run(dns("broken.example.com"), server.addr).await,
        Err("DNS SERVFAIL for broken.example.com A".into())
    );
    assert_eq!(
        run(dns("silent.example.com"), server.addr).await,
        Err("no DNS response after 1 s".into())
    );
    let closed = closed_udp_port("127.0.0.1").await;
    assert_eq!(
        run(dns("good.example.com"), closed).await,
        Err("connection refused".into())
    );
}

// ---- PING_CHECK ----

#[tokio::test]
async fn ping_loopback_v4_and_v6() {
    let r = run(CheckerKind::Ping, "127.0.0.1:0".parse().unwrap()).await;
    assert_eq!(r, Ok("ICMP echo reply from 127.0.0.1".into()));
    let r = run(CheckerKind::Ping, "[::1]:0".parse().unwrap()).await;
    assert_eq!(r, Ok("ICMP echo reply from ::1".into()));
}

// ---- MISC_CHECK ----

fn script(dir: &Path, name: &str, body: &str) -> Script {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    // Run through sh: exec'ing a file just written races with forks in other test
    // threads that still hold it open for writing (ETXTBSY).
    Script {
        argv: vec!["/bin/sh".into(), path.display().to_string()],
        user: None,
        group: None,
    }
}

fn misc(path: Script, timeout: Duration, dynamic: bool) -> CheckerKind {
    CheckerKind::Misc(MiscCheck {
        path,
        timeout: Micros(timeout.as_micros() as u64),
        dynamic,
    })
}

async fn run_misc(kind: CheckerKind) -> Result<(String, Option<u32>), String> {
    let c = checker(kind, T);
    spec(&c, "127.0.0.1:80".parse().unwrap())
        .probe
        .run()
        .await
        .map(|p| (p.reason, p.weight))
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn misc_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        run_misc(misc(script(d, "ok", "exit 0"), T * 5, false)).await,
        Ok(("script exited with status 0".into(), None))
    );
    assert_eq!(
        run_misc(misc(script(d, "down", "exit 1"), T * 5, false)).await,
        Err("script exited with status 1".into())
    );
    assert_eq!(
        run_misc(misc(script(d, "five", "exit 5"), T * 5, false)).await,
        Err("script exited with status 5".into())
    );
    // misc_dynamic: 0 keeps the configured weight (10), 1 is down, 5 is weight 3.
    assert_eq!(
        run_misc(misc(script(d, "ok", "exit 0"), T * 5, true)).await,
        Ok(("script exited with status 0".into(), Some(10)))
    );
    assert_eq!(
        run_misc(misc(script(d, "down", "exit 1"), T * 5, true)).await,
        Err("script exited with status 1".into())
    );
    assert_eq!(
        run_misc(misc(script(d, "five", "exit 5"), T * 5, true)).await,
        Ok(("script exited with status 5".into(), Some(3)))
    );
}

/// Running, i.e. present and not a zombie (PID 1 in a container may never reap).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(") ").next().map(|rest| !rest.starts_with('Z')))
        .unwrap_or(false)
}

async fn read_pid(path: &Path) -> i32 {
    for _ in 0..100 {
        if let Ok(s) = std::fs::read_to_string(path)
            && let Ok(pid) = s.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no pid in {}", path.display());
}

#[tokio::test]
async fn misc_timeout_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // The script's child would outlive a kill of the script alone.
    let body = format!("sleep 30 &\necho $! > {}\nwait", pidfile.display());
    let kind = misc(
        script(dir.path(), "slow", &body),
        Duration::from_millis(500),
        false,
    );
    assert_eq!(
        run_misc(kind).await,
        Err("script timed out after 0.5 s".into())
    );
    let child = read_pid(&pidfile).await;
    // SIGKILLed; give the kernel a moment to reap it through init.
    for _ in 0..50 {
        if !alive(child) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the script's child {child} survived the timeout");
}

// ---- FILE_CHECK ----

#[tokio::test]
async fn file_check_weights_and_faults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weight");
    let mut config = Config::default();
    config.vrrp.track_files.push(TrackFile {
        name: "tf".into(),
        file: file.clone(),
        weight: 2,
        reverse: false,
        init_file: None,
        origin: Origin::default(),
    });
    let c = |weight| {
        checker(
            CheckerKind::File(FileCheck {
                track_file: "tf".into(),
                weight,
                reverse: false,
            }),
            T,
        )
    };
    let addr = "127.0.0.1:80".parse().unwrap();
    // The track_file's weight (2): 10 + 3 × 2.
    std::fs::write(&file, "3\n").unwrap();
    let p = spec_with(&c(None), addr, &config)
        .probe
        .run()
        .await
        .unwrap();
    assert_eq!(p.weight, Some(16));
    // The checker's weight 0: non-zero is a fault, zero and a missing file are fine.
    let zero = spec_with(&c(Some(0)), addr, &config);
    let e = zero.probe.run().await.unwrap_err();
    assert!(
        e.to_string()
            .ends_with("reads 3: non-zero is a fault (weight 0)"),
        "{e}"
    );
    std::fs::write(&file, "0").unwrap();
    assert!(zero.probe.run().await.is_ok());
    std::fs::remove_file(&file).unwrap();
    assert!(zero.probe.run().await.is_ok());
    // An unknown track_file is refused up front.
    let mut bad = c(None);
    bad.kind = CheckerKind::File(FileCheck {
        track_file: "nope".into(),
        weight: None,
        reverse: false,
    });
    let target = flotilla_check::Target {
        ip: addr.ip(),
        port: 80,
        weight: 1,
    };
    assert!(flotilla_check::CheckSpec::new(&bad, target, &config).is_err());
}

// ---- whole checkers ----

async fn next(rx: &mut mpsc::Receiver<CheckEvent>) -> CheckEvent {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an event within 20 s")
        .expect("the checker runs")
}

/// The agent's way: events as calls on the checker's task, no channel. The checker stops
/// once the call says nobody listens.
#[tokio::test]
async fn a_call_sink_hears_transitions_and_a_refusal_stops_the_checker() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = http_server("127.0.0.4:0").await;
    let addr = server.addr;
    let mut c = checker(CheckerKind::Http(http(vec![url("/ok")])), T);
    c.timing = Some(timing(
        Duration::from_millis(100),
        0,
        Duration::from_millis(100),
        true,
    ));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let sink = flotilla_check::EventSink::Call(Box::new(move |e| {
        counted.fetch_add(1, Ordering::SeqCst);
        tx.send(e).is_ok()
    }));
    let _runner = CheckRunner::spawn_after(spec(&c, addr), sink, Duration::ZERO);
    let first = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
    assert_eq!(
        first.expect("an event within 20 s"),
        Some(CheckEvent::Up {
            reason: "HTTP status 200 for /ok".into()
        })
    );
    // Nobody listens any more: the next transition's call returns false and ends the checker.
    drop(rx);
    drop(server);
    let t0 = tokio::time::Instant::now();
    while calls.load(Ordering::SeqCst) < 2 && t0.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the down transition was offered"
    );
    // With the server back the checker would go up again; it has stopped, so no third call.
    let _server = http_server(&addr.to_string()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the checker stopped");
}

#[tokio::test]
async fn a_server_that_stops_goes_down_and_comes_back_up() {
    let server = http_server("127.0.0.4:0").await;
    let addr = server.addr;
    let mut c = checker(CheckerKind::Http(http(vec![url("/ok")])), T);
    c.timing = Some(timing(
        Duration::from_millis(200),
        1,
        Duration::from_millis(100),
        true,
    ));
    let (tx, mut rx) = mpsc::channel(8);
    let runner = CheckRunner::spawn_after(spec(&c, addr), tx, Duration::ZERO);
    assert_eq!(runner.initial_health(), Health::Down);
    assert_eq!(
        next(&mut rx).await,
        CheckEvent::Up {
            reason: "HTTP status 200 for /ok".into()
        }
    );
    drop(server);
    assert_eq!(
        next(&mut rx).await,
        CheckEvent::Down {
            reason: "connection refused".into()
        }
    );
    let _server = http_server(&addr.to_string()).await;
    assert_eq!(
        next(&mut rx).await,
        CheckEvent::Up {
            reason: "HTTP status 200 for /ok".into()
        }
    );
}

#[tokio::test]
async fn dynamic_weights_arrive_as_events() {
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status");
    std::fs::write(&status, "5").unwrap();
    let body = format!("exit $(cat {})", status.display());
    let mut c = checker(misc(script(dir.path(), "dyn", &body), T * 5, true), T);
    c.timing = Some(timing(
        Duration::from_millis(100),
        0,
        Duration::from_millis(100),
        true,
    ));
    let (tx, mut rx) = mpsc::channel(8);
    let _runner = CheckRunner::spawn_after(
        spec(&c, "127.0.0.1:80".parse().unwrap()),
        tx,
        Duration::ZERO,
    );
    assert_eq!(next(&mut rx).await, CheckEvent::Weight(3));
    assert!(matches!(next(&mut rx).await, CheckEvent::Up { .. }));
    std::fs::write(&status, "9").unwrap();
    assert_eq!(next(&mut rx).await, CheckEvent::Weight(7));
    std::fs::write(&status, "1").unwrap();
    assert_eq!(
        next(&mut rx).await,
        CheckEvent::Down {
            reason: "script exited with status 1".into()
        }
    );
}

#[tokio::test]
async fn dropping_the_runner_kills_a_running_script() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let body = format!("sleep 30 &\necho $! > {}\nwait", pidfile.display());
    let c = checker(misc(script(dir.path(), "hang", &body), T * 60, false), T);
    let (tx, _rx) = mpsc::channel(8);
    let runner = CheckRunner::spawn_after(
        spec(&c, "127.0.0.1:80".parse().unwrap()),
        tx,
        Duration::ZERO,
    );
    let child = read_pid(&pidfile).await;
    assert!(alive(child));
    drop(runner);
    for _ in 0..100 {
        if !alive(child) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the script's child {child} survived the runner");
}

/// Waits for the observer's first report.
async fn first_report(seen: &std::sync::Arc<std::sync::Mutex<Vec<ProbeReport>>>) -> ProbeReport {
    for _ in 0..200 {
        if let Some(r) = seen.lock().unwrap().first() {
            return *r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no probe reported within 4 s");
}

#[tokio::test]
async fn the_observer_hears_every_probe_with_its_duration_and_result() {
    let server = http_server("127.0.0.1:0").await;
    let hang = hanging_server("127.0.0.1:0").await;
    let closed = closed_tcp_port("127.0.0.1").await;
    let mut c = checker(CheckerKind::Http(http(vec![url("/ok")])), T);
    c.connection.as_mut().unwrap().connect_timeout = Micros::from_millis(300);
    c.timing = Some(timing(
        Duration::from_millis(100),
        0,
        Duration::from_millis(100),
        false,
    ));
    let mut out = Vec::new();
    for addr in [server.addr, hang.addr, closed] {
        let seen: std::sync::Arc<std::sync::Mutex<Vec<ProbeReport>>> = Default::default();
        let s = seen.clone();
        let (tx, _rx) = mpsc::channel(8);
        let _runner = CheckRunner::spawn_observed_after(
            spec(&c, addr),
            tx,
            Duration::ZERO,
            std::sync::Arc::new(move |r| s.lock().unwrap().push(r)),
        );
        out.push(first_report(&seen).await);
    }
    assert_eq!(out[0].result, ProbeResult::Pass);
    assert!(
        out[0].duration > Duration::ZERO && out[0].duration < T,
        "{out:?}"
    );
    assert_eq!(out[1].result, ProbeResult::Timeout);
    assert!(out[1].duration >= Duration::from_millis(300), "{out:?}");
    assert_eq!(out[2].result, ProbeResult::Fail);
    // Probes keep being reported, not only transitions.
    let seen: std::sync::Arc<std::sync::Mutex<Vec<ProbeReport>>> = Default::default();
    let s = seen.clone();
    let (tx, _rx) = mpsc::channel(8);
    let _runner = CheckRunner::spawn_observed_after(
        spec(&c, server.addr),
        tx,
        Duration::ZERO,
        std::sync::Arc::new(move |r| s.lock().unwrap().push(r)),
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let n = seen.lock().unwrap().len();
    assert!(n >= 3, "{n} probes reported in 0.7 s at a 0.1 s delay_loop");
}
