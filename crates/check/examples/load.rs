//! CPU cost of many checkers: N real servers checked every second with TCP_CHECK or
//! HTTP_GET against local servers, measured from /proc.
//!
//!     cargo run --release -p flotilla-check --example load -- http 1000 10
//!
//! The servers run in a child process (this binary, `serve`), so the figure printed for
//! the checkers is theirs alone. Targets are spread over 16 loopback addresses so that
//! TIME_WAIT does not exhaust the ephemeral ports of one address pair.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flotilla_check::{CheckEvent, CheckRunner, CheckSpec, Target};
use flotilla_config::Config;
use flotilla_config::model::Micros;
use flotilla_config::model::lvs::{Checker, CheckerKind, Connection, HttpCheck, Timing, Url};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const ADDRS: u8 = 16;
const PORT: u16 = 18080;

fn addr(i: usize) -> SocketAddr {
    let n = (i % usize::from(ADDRS)) as u8 + 1;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 1, n)), PORT)
}

/// utime + stime of a process, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit(") ").next().unwrap();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from the state (field 3) here.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

async fn serve() {
    for i in 0..usize::from(ADDRS) {
        let l = tokio::net::TcpListener::bind(addr(i)).await.unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    // TCP_CHECK connects and closes; HTTP_GET sends a request.
                    if let Ok(n) = s.read(&mut buf).await
                        && n > 0
                    {
                        let _ = s
                            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .await;
                    }
                });
            }
        });
    }
    println!("ready");
    std::future::pending::<()>().await;
}

fn checker(http: bool) -> Checker {
    let kind = if http {
        CheckerKind::Http(HttpCheck {
            urls: vec![Url {
                path: "/".into(),
                digest: None,
                status_codes: Vec::new(),
                virtualhost: None,
                regex: None,
                tls_compliant: false,
                origin: Default::default(),
            }],
            ..HttpCheck::default()
        })
    } else {
        CheckerKind::Tcp
    };
    Checker {
        kind,
        connection: Some(Connection {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
            connect_timeout: Micros::from_secs(3),
        }),
        timing: Some(Timing {
            retry: 1,
            delay_before_retry: Micros::from_secs(1),
            warmup: Micros::from_secs(1),
            delay_loop: Micros::from_secs(1),
            alpha: false,
            log_all_failures: false,
        }),
        origin: Default::default(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        return serve().await;
    }
    let http = args.get(1).map(String::as_str) == Some("http");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);

    let mut server = Command::new(std::env::current_exe().unwrap())
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server_pid = server.id().to_string();

    let (tx, mut rx) = mpsc::channel(1024);
    let config = Config::default();
    let c = checker(http);
    let runners: Vec<CheckRunner> = (0..n)
        .map(|i| {
            let a = addr(i);
            let target = Target {
                ip: a.ip(),
                port: a.port(),
                weight: 1,
            };
            CheckRunner::spawn(CheckSpec::new(&c, target, &config).unwrap(), tx.clone())
        })
        .collect();
    let downs = tokio::spawn(async move {
        let mut downs = 0u64;
        while let Some(e) = rx.recv().await {
            if let CheckEvent::Down { reason } = e {
                if downs == 0 {
                    eprintln!("first down: {reason}");
                }
                downs += 1;
            }
        }
        downs
    });
    // Past the bootstrap delay and warmup, so every checker is in its steady loop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (c0, s0, t0) = (
        cpu_seconds("self"),
        cpu_seconds(&server_pid),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (c1, s1, wall) = (
        cpu_seconds("self"),
        cpu_seconds(&server_pid),
        t0.elapsed().as_secs_f64(),
    );
    drop(runners);
    drop(tx);
    let downs = downs.await.unwrap();
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "{} N={n}: {wall:.1} s wall, checkers {:.2} s CPU ({:.1}% of one core), servers {:.2} s CPU, {downs} down events",
        if http { "HTTP_GET" } else { "TCP_CHECK" },
        c1 - c0,
        100.0 * (c1 - c0) / wall,
        s1 - s0,
    );
}
