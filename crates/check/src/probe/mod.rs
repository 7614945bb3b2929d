//! One probe of each checker kind, run for real: sockets, TLS, processes, files.
//!
//! A [`CheckSpec`] is built once from the model (defaults resolved, names looked up, users
//! resolved, so a bad checker is refused before anything runs); [`Probe::run`] then does one
//! check and says pass or fail with the reason an operator reads. Probes never retry and
//! never decide up or down: that is [`crate::schedule`]'s job.

mod file;
mod http;
mod misc;
mod net;
mod ping;
mod udp;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use flotilla_config::Config;
use flotilla_config::model::lvs::{Checker, CheckerKind, RealServer};
use tokio::time::Instant;

pub use file::FileProbe;
pub use http::{BODY_LIMIT, Genhash, GenhashError, GenhashRequest, HttpProbe, UrlCheck, genhash};
pub use misc::MiscProbe;
pub use udp::{DnsProbe, ReplyPattern, UdpProbe};

use crate::dns::{DnsError, Rcode};
use crate::schedule::{Outcome, Schedule};

/// How often FILE_CHECK reads its file. keepalived watches it with inotify; a poll keeps this
/// crate free of a watcher and bounds the delay to a second.
pub const FILE_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The real server a checker probes, as the agent knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub ip: IpAddr,
    pub port: u16,
    /// The configured weight: what MISC_CHECK exit 0 and FILE_CHECK offsets start from.
    pub weight: u32,
}

impl Target {
    pub fn of(rs: &RealServer) -> Self {
        Target {
            ip: rs.ip,
            port: rs.port,
            weight: rs.weight,
        }
    }
}

/// Where and how a network probe connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `connect_ip`/`connect_port`, else the real server's.
    pub addr: SocketAddr,
    /// `bindto`/`bind_port`: the source address.
    pub bind: Option<SocketAddr>,
    /// `bind_if`: SO_BINDTODEVICE.
    pub bind_if: Option<String>,
    /// `fwmark`: SO_MARK.
    pub fwmark: Option<u32>,
    /// `connect_timeout`: for the connection, and for each exchange on it.
    pub timeout: Duration,
}

/// A probe that passed: why, and the weight it asks for, if its kind sets weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub reason: String,
    pub weight: Option<u32>,
}

impl Pass {
    fn new(reason: impl Into<String>) -> Self {
        Pass {
            reason: reason.into(),
            weight: None,
        }
    }
}

impl From<Result<Pass, ProbeError>> for Outcome {
    fn from(r: Result<Pass, ProbeError>) -> Self {
        match r {
            Ok(p) => Outcome::Pass {
                reason: p.reason,
                weight: p.weight,
            },
            Err(e) => Outcome::Fail {
                reason: e.to_string(),
            },
        }
    }
}

/// Seconds as an operator reads them: `3 s`, `0.5 s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.as_micros();
        if micros.is_multiple_of(1_000_000) {
            write!(f, "{} s", micros / 1_000_000)
        } else {
            let frac = format!("{:06}", micros % 1_000_000);
            write!(f, "{}.{} s", micros / 1_000_000, frac.trim_end_matches('0'))
        }
    }
}

/// Why a probe failed. The message is the reason the agent logs and reports.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot set up the probe socket: {0}")]
    Socket(io::Error),
    #[error("connect timeout after {0}")]
    ConnectTimeout(Secs),
    #[error("connection refused")]
    Refused,
    #[error("connect failed: {0}")]
    Connect(io::Error),
    #[error("TLS handshake timeout after {0}")]
    TlsTimeout(Secs),
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    #[error("HTTP timeout after {after} for {path}")]
    HttpTimeout { path: String, after: Secs },
    #[error("HTTP request for {path} failed: {source}")]
    Http {
        path: String,
        #[source]
        source: hyper::Error,
    },
    #[error("HTTP status {status} not in {expected} for {path}")]
    HttpStatus {
        path: String,
        status: u16,
        expected: String,
    },
    #[error("MD5 digest {got} is not {expected} for {path}")]
    Digest {
        path: String,
        got: String,
        expected: String,
    },
    #[error("regex '{pattern}' {} the body of {path}", if *.matched { "matched" } else { "did not match" })]
    Regex {
        path: String,
        pattern: String,
        /// It matched, and `regex_no_match` was set.
        matched: bool,
    },
    #[error("HTTP body of {path} longer than {limit} bytes")]
    BodyTooLong { path: String, limit: u64 },
    #[error("cannot start the script: {0}")]
    Spawn(io::Error),
    #[error("script exited with status {0}")]
    ScriptExit(i32),
    #[error("script killed by signal {0}")]
    ScriptSignal(i32),
    #[error("script timed out after {0}")]
    ScriptTimeout(Secs),
    #[error("cannot wait for the script: {0}")]
    ScriptWait(io::Error),
    #[error("send failed: {0}")]
    Send(io::Error),
    #[error("receive failed: {0}")]
    Recv(io::Error),
    #[error("no UDP reply after {0}")]
    UdpNoReply(Secs),
    #[error("UDP reply of {len} bytes does not match")]
    UdpMismatch { len: usize },
    #[error("no DNS response after {0}")]
    DnsTimeout(Secs),
    #[error("DNS {rcode} for {name} {qtype}")]
    DnsRcode {
        rcode: Rcode,
        name: String,
        qtype: &'static str,
    },
    #[error("no ICMP echo reply after {0}")]
    PingTimeout(Secs),
    #[error("{path} reads {value}: {why}")]
    FileFault {
        path: String,
        value: i64,
        why: &'static str,
    },
}

impl ProbeError {
    /// The probe gave up waiting (its own time bound ran out), rather than being answered
    /// wrongly or refused.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ProbeError::ConnectTimeout(_)
                | ProbeError::TlsTimeout(_)
                | ProbeError::HttpTimeout { .. }
                | ProbeError::ScriptTimeout(_)
                | ProbeError::UdpNoReply(_)
                | ProbeError::DnsTimeout(_)
                | ProbeError::PingTimeout(_)
        )
    }
}

/// Why a checker cannot be run as configured.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0} needs a connection (connect_ip, connect_timeout…)")]
    MissingConnection(&'static str),
    #[error("{0} needs its timing (delay_loop, retry…)")]
    MissingTiming(&'static str),
    #[error("FILE_CHECK refers to an unknown track_file '{0}'")]
    UnknownTrackFile(String),
    #[error("MISC_CHECK has an empty command")]
    EmptyCommand,
    #[error("unknown user '{0}'")]
    UnknownUser(String),
    #[error("unknown group '{0}'")]
    UnknownGroup(String),
    #[error("cannot look up user or group '{name}': {source}")]
    UserLookup {
        name: String,
        #[source]
        source: nix::Error,
    },
    #[error("url path '{0}' is not a valid request target")]
    BadPath(String),
    #[error("header value '{0}' is not valid")]
    BadHeader(String),
    #[error("url {path}: regex '{pattern}' is not supported: {reason}")]
    Regex {
        path: String,
        pattern: String,
        reason: String,
    },
    #[error("url {path}: regex option '{option}' is not supported")]
    RegexOption { path: String, option: String },
    #[error("UDP_CHECK reply pattern '{0}' is not hex")]
    BadReplyPattern(String),
    #[error("DNS_CHECK name: {0}")]
    DnsName(#[from] DnsError),
    #[error("TLS set-up failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("url '{0}' is not http://IP[:PORT]/PATH or https://…")]
    BadUrl(String),
}

/// One probe, ready to run.
#[derive(Debug)]
pub enum Probe {
    /// TCP_CHECK: the connection is accepted.
    Tcp {
        endpoint: Endpoint,
        /// The reason of every pass, written once: formatting the address per probe cost
        /// more instructions than the rest of the probe's user-space work.
        passed: String,
    },
    /// HTTP_GET and SSL_GET.
    Http(Box<HttpProbe>),
    Misc(MiscProbe),
    Dns(DnsProbe),
    Udp(UdpProbe),
    /// PING_CHECK: an ICMP or ICMPv6 echo is answered.
    Ping(Endpoint),
    File(FileProbe),
}

impl Probe {
    /// Runs one check. Each kind bounds its own time (connect_timeout, misc_timeout), so
    /// this always finishes.
    pub async fn run(&self) -> Result<Pass, ProbeError> {
        self.run_from(Instant::now()).await
    }

    /// As [`Self::run`] for a probe that started at `started`, a clock reading the caller
    /// has just taken (under User-Mode Linux every clock read is a system call).
    ///
    /// Every kind but TCP_CHECK runs boxed: a checker's task holds this future for its
    /// whole life, and inline it would be as large as the largest kind's (HTTP over TLS,
    /// kilobytes) for every TCP_CHECK too.
    pub async fn run_from(&self, started: Instant) -> Result<Pass, ProbeError> {
        match self {
            Probe::Tcp { endpoint, passed } => {
                net::connect_tcp_from(endpoint, started).await?;
                Ok(Pass::new(passed.clone()))
            }
            Probe::Http(h) => Box::pin(h.run()).await,
            Probe::Misc(m) => Box::pin(m.run()).await,
            Probe::Dns(d) => Box::pin(d.run()).await,
            Probe::Udp(u) => Box::pin(u.run()).await,
            Probe::Ping(ep) => Box::pin(ping::ping(ep)).await,
            Probe::File(f) => Box::pin(f.run()).await,
        }
    }
}

/// Everything needed to run one checker: the probe and its timing.
#[derive(Debug)]
pub struct CheckSpec {
    pub probe: Probe,
    pub schedule: Schedule,
    /// The real server's configured weight.
    pub weight: u32,
}

impl CheckSpec {
    /// Resolves `checker` of the real server `target`; `config` supplies what checkers refer
    /// to by name (FILE_CHECK's `track_file`).
    ///
    /// Not supported yet: the `SSL { }` client certificate and CA (SSL_GET connects without
    /// a client certificate and, like keepalived by default, without verifying the
    /// server's). A url `regex` is Rust's `regex` syntax, which covers PCRE2's common
    /// subset; lookaround, backreferences and unknown options are refused here.
    pub fn new(checker: &Checker, target: Target, config: &Config) -> Result<Self, SpecError> {
        let keyword = checker.kind.keyword();
        let endpoint = || {
            checker
                .connection
                .as_ref()
                .map(|c| endpoint(c, &target))
                .ok_or(SpecError::MissingConnection(keyword))
        };
        let probe = match &checker.kind {
            CheckerKind::Tcp => {
                let endpoint = endpoint()?;
                let passed = format!("TCP connect to {} succeeded", endpoint.addr);
                Probe::Tcp { endpoint, passed }
            }
            CheckerKind::Http(h) => Probe::Http(Box::new(HttpProbe::new(endpoint()?, h, false)?)),
            CheckerKind::Ssl(h) => Probe::Http(Box::new(HttpProbe::new(endpoint()?, h, true)?)),
            CheckerKind::Misc(m) => Probe::Misc(MiscProbe::new(m, target.weight)?),
            CheckerKind::Dns(d) => Probe::Dns(DnsProbe::new(endpoint()?, d)?),
            CheckerKind::Udp(u) => Probe::Udp(UdpProbe::new(endpoint()?, u)?),
            CheckerKind::Ping => Probe::Ping(endpoint()?),
            CheckerKind::File(f) => {
                let tf = config
                    .vrrp
                    .track_file(&f.track_file)
                    .ok_or_else(|| SpecError::UnknownTrackFile(f.track_file.clone()))?;
                Probe::File(FileProbe::new(
                    tf.file.clone(),
                    f.weight.unwrap_or(tf.weight),
                    f.reverse,
                    target.weight,
                ))
            }
        };
        let schedule = match (&checker.kind, &checker.timing) {
            // Driven by the file: every read is decisive, no retries, no warmup.
            (CheckerKind::File(_), _) => Schedule {
                delay_loop: FILE_POLL_INTERVAL,
                retry: 0,
                delay_before_retry: FILE_POLL_INTERVAL,
                warmup: Duration::ZERO,
                alpha: false,
            },
            (_, Some(t)) => Schedule::from(t),
            (_, None) => return Err(SpecError::MissingTiming(keyword)),
        };
        Ok(CheckSpec {
            probe,
            schedule,
            weight: target.weight,
        })
    }
}

fn endpoint(c: &flotilla_config::model::lvs::Connection, target: &Target) -> Endpoint {
    let ip = c.connect_ip.unwrap_or(target.ip);
    let bind = match (c.bindto, c.bind_port) {
        (None, None) => None,
        (addr, port) => {
            let unspecified = match ip {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            Some(SocketAddr::new(
                addr.unwrap_or(unspecified),
                port.unwrap_or(0),
            ))
        }
    };
    Endpoint {
        addr: SocketAddr::new(ip, c.connect_port.unwrap_or(target.port)),
        bind,
        bind_if: c.bind_if.clone(),
        fwmark: c.fwmark,
        timeout: c.connect_timeout.as_duration(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use flotilla_config::model::Micros;
    use flotilla_config::model::lvs::{Connection, FileCheck, Timing};

    fn connection() -> Connection {
        Connection {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
            connect_timeout: Micros::from_secs(5),
        }
    }

    const TARGET: Target = Target {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        port: 80,
        weight: 3,
    };

    #[test]
    fn endpoints_default_to_the_real_server() {
        let ep = endpoint(&connection(), &TARGET);
        assert_eq!(ep.addr, "10.0.0.1:80".parse().unwrap());
        assert_eq!((ep.bind, ep.timeout), (None, Duration::from_secs(5)));
        let mut c = connection();
        c.connect_ip = Some("10.0.0.2".parse().unwrap());
        c.connect_port = Some(8080);
        c.bind_port = Some(999);
        let ep = endpoint(&c, &TARGET);
        assert_eq!(ep.addr, "10.0.0.2:8080".parse().unwrap());
        // A bind port alone binds the unspecified address of the target's family.
        assert_eq!(ep.bind, Some("0.0.0.0:999".parse().unwrap()));
        c.connect_ip = Some("fd00::1".parse().unwrap());
        c.bindto = Some("fd00::2".parse().unwrap());
        c.bind_port = None;
        assert_eq!(
            endpoint(&c, &TARGET).bind,
            Some("[fd00::2]:0".parse().unwrap())
        );
    }

    #[test]
    fn specs_need_what_their_kind_needs() {
        let config = Config::default();
        let timing = Timing {
            retry: 1,
            delay_before_retry: Micros::from_secs(1),
            warmup: Micros::from_secs(0),
            delay_loop: Micros::from_secs(6),
            alpha: false,
            log_all_failures: false,
        };
        let tcp = Checker {
            kind: CheckerKind::Tcp,
            connection: None,
            timing: Some(timing),
            origin: Default::default(),
        };
        assert!(matches!(
            CheckSpec::new(&tcp, TARGET, &config),
            Err(SpecError::MissingConnection("TCP_CHECK"))
        ));
        let tcp = Checker {
            connection: Some(connection()),
            ..tcp
        };
        let spec = CheckSpec::new(&tcp, TARGET, &config).unwrap();
        assert_eq!(spec.schedule.delay_loop, Duration::from_secs(6));
        assert_eq!(spec.weight, 3);
        let file = Checker {
            kind: CheckerKind::File(FileCheck {
                track_file: "x".into(),
                weight: None,
                reverse: false,
            }),
            connection: None,
            timing: None,
            origin: Default::default(),
        };
        assert!(matches!(
            CheckSpec::new(&file, TARGET, &config),
            Err(SpecError::UnknownTrackFile(_))
        ));
    }

    #[test]
    fn seconds_read_naturally() {
        assert_eq!(Secs(Duration::from_secs(3)).to_string(), "3 s");
        assert_eq!(Secs(Duration::from_millis(500)).to_string(), "0.5 s");
        assert_eq!(
            Secs(Duration::from_micros(2_000_005)).to_string(),
            "2.000005 s"
        );
    }
}
