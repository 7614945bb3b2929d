//! Real servers on loopback for the checker tests: small hand-written tokio servers, so
//! each misbehaviour (slow, hanging, refusing, wrong answer) is one line to arrange.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use flotilla_check::{CheckSpec, Target};
use flotilla_config::Config;
use flotilla_config::model::Micros;
use flotilla_config::model::lvs::{Checker, CheckerKind, Connection, Timing};

/// The body `/body` serves and its MD5 (`printf 'hello world' | md5sum`).
pub const BODY: &[u8] = b"hello world";
pub const BODY_MD5: &str = "5eb63bbbe01eeed093cb22bb8f5acdc3";

/// How long `/slow` waits before answering.
pub const SLOW: Duration = Duration::from_secs(3);

/// A server task, stopped (listener closed) when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
    /// SNI names seen by a TLS server, in order.
    pub sni: Arc<Mutex<Vec<Option<String>>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The answer to one request: by path, with the request's Host header and the peer.
fn respond(path: &str, host: &str, peer: SocketAddr) -> (u16, Vec<u8>, Option<Duration>) {
    match path {
        "/ok" | "/" => (200, b"ok".to_vec(), None),
        "/body" => (200, BODY.to_vec(), None),
        "/forbidden" => (403, b"no".to_vec(), None),
        "/slow" => (200, b"late".to_vec(), Some(SLOW)),
        "/vhost" if host == "www.example.com" => (200, b"vhost".to_vec(), None),
        "/vhost" => (421, host.as_bytes().to_vec(), None),
        "/from-127.0.0.3" if peer.ip() == ip("127.0.0.3") => (200, b"ok".to_vec(), None),
        "/from-127.0.0.3" => (403, peer.to_string().into_bytes(), None),
        _ => (404, b"not found".to_vec(), None),
    }
}

/// Serves one HTTP/1.x request on `io` and closes, as keepalived's HTTP/1.0 client expects.
async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, peer: SocketAddr) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let host = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("host: ")
                .or_else(|| l.strip_prefix("Host: "))
        })
        .unwrap_or("")
        .to_owned();
    let (status, body, delay) = respond(&path, &host, peer);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let head = format!(
        "HTTP/1.0 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = io.write_all(head.as_bytes()).await;
    let _ = io.write_all(&body).await;
    let _ = io.shutdown().await;
}

/// An HTTP server on `addr` (port 0: any).
pub async fn http_server(addr: &str) -> Server {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, peer)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_http(s, peer));
        }
    });
    Server {
        addr,
        task,
        sni: Arc::default(),
    }
}

/// An HTTPS server with a self-signed certificate made now; records the SNI it is sent.
pub async fn https_server(addr: &str) -> Server {
    let ck = rcgen::generate_simple_self_signed(vec!["www.example.com".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sni: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = sni.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, peer)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    let name = tls.get_ref().1.server_name().map(str::to_owned);
                    seen.lock().unwrap().push(name);
                    serve_http(tls, peer).await;
                }
            });
        }
    });
    Server { addr, task, sni }
}

/// Accepts connections and never answers: every read times out.
pub async fn hanging_server(addr: &str) -> Server {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    Server {
        addr,
        task,
        sni: Arc::default(),
    }
}

/// A port on `ip` with nothing listening (bound once, then released).
pub async fn closed_tcp_port(ip: &str) -> SocketAddr {
    let l = TcpListener::bind((self::ip(ip), 0)).await.unwrap();
    l.local_addr().unwrap()
}

pub async fn closed_udp_port(ip: &str) -> SocketAddr {
    let s = UdpSocket::bind((self::ip(ip), 0)).await.unwrap();
    s.local_addr().unwrap()
}

/// Echoes every datagram back.
pub async fn udp_echo(addr: &str) -> Server {
    let sock = UdpSocket::bind(addr).await.unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let _ = sock.send_to(&buf[..n], from).await;
        }
    });
    Server {
        addr,
        task,
        sni: Arc::default(),
    }
}

/// A DNS server answering by the first label of the question: `good` NOERROR, `missing`
/// NXDOMAIN, `broken` SERVFAIL, `silent` nothing. Before each real answer it sends a decoy
/// with another id, which the checker must ignore.
pub async fn dns_server(addr: &str) -> Server {
    let sock = UdpSocket::bind(addr).await.unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let q = &buf[..n];
            if q.len() < 13 {
                continue;
            }
            let label_len = usize::from(q[12]);
            let label = q.get(13..13 + label_len).unwrap_or_default();
            let rcode = match label {
                b"good" => 0,
                b"missing" => 3,
                b"broken" => 2,
                _ => continue,
            };
            let mut answer = q.to_vec();
            answer[2] |= 0x80; // QR
            answer[3] = (answer[3] & 0xf0) | rcode;
            let mut decoy = answer.clone();
            decoy[0] ^= 0xff;
            decoy[3] &= 0xf0;
            let _ = sock.send_to(&decoy, from).await;
            let _ = sock.send_to(&answer, from).await;
        }
    });
    Server {
        addr,
        task,
        sni: Arc::default(),
    }
}

pub fn connection(timeout: Duration) -> Connection {
    Connection {
        connect_ip: None,
        connect_port: None,
        bindto: None,
        bind_port: None,
        bind_if: None,
        fwmark: None,
        connect_timeout: Micros(timeout.as_micros() as u64),
    }
}

pub fn timing(
    delay_loop: Duration,
    retry: u32,
    delay_before_retry: Duration,
    alpha: bool,
) -> Timing {
    Timing {
        retry,
        delay_before_retry: Micros(delay_before_retry.as_micros() as u64),
        warmup: Micros(0),
        delay_loop: Micros(delay_loop.as_micros() as u64),
        alpha,
        log_all_failures: false,
    }
}

/// A checker of `kind` against `addr` with a 1 s connect timeout and slow default timing.
pub fn checker(kind: CheckerKind, timeout: Duration) -> Checker {
    let has_connection = kind.has_connection();
    Checker {
        kind,
        connection: has_connection.then(|| connection(timeout)),
        timing: Some(timing(
            Duration::from_secs(60),
            1,
            Duration::from_secs(1),
            false,
        )),
        origin: Default::default(),
    }
}

pub fn spec(c: &Checker, addr: SocketAddr) -> CheckSpec {
    spec_with(c, addr, &Config::default())
}

pub fn spec_with(c: &Checker, addr: SocketAddr, config: &Config) -> CheckSpec {
    let target = Target {
        ip: addr.ip(),
        port: addr.port(),
        weight: 10,
    };
    CheckSpec::new(c, target, config).unwrap()
}
