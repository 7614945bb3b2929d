//! Health checkers of a real server, with the timing they run with.
//!
//! State machine (keepalived `check_tcp.c`, the other checkers match): while up, each failure
//! waits `delay_before_retry`, and the checker goes down after `retry` retries (retry + 1
//! failed attempts); while down, one success brings it up. A real server is alive only when
//! all its checkers are up.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::common::{Micros, Origin, Script};

/// One checker block inside a `real_server`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checker {
    pub kind: CheckerKind,
    /// Where to probe; `None` for MISC_CHECK and FILE_CHECK, which open no connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Connection>,
    /// When to probe; `None` for FILE_CHECK, which is driven by file changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckerKind {
    Tcp,
    Http(HttpCheck),
    Ssl(HttpCheck),
    Misc(MiscCheck),
    Dns(DnsCheck),
    Udp(UdpCheck),
    Ping,
    File(FileCheck),
}

impl CheckerKind {
    /// The block keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            CheckerKind::Tcp => "TCP_CHECK",
            CheckerKind::Http(_) => "HTTP_GET",
            CheckerKind::Ssl(_) => "SSL_GET",
            CheckerKind::Misc(_) => "MISC_CHECK",
            CheckerKind::Dns(_) => "DNS_CHECK",
            CheckerKind::Udp(_) => "UDP_CHECK",
            CheckerKind::Ping => "PING_CHECK",
            CheckerKind::File(_) => "FILE_CHECK",
        }
    }

    /// keepalived's `retry` when neither checker, real server nor service sets one.
    pub fn default_retry(&self) -> u32 {
        match self {
            CheckerKind::Misc(_) => 0,
            CheckerKind::Dns(_) => 3,
            _ => 1,
        }
    }

    /// keepalived's `delay_before_retry` default; `None` means "the checker's delay_loop".
    pub fn default_delay_before_retry(&self) -> Option<Micros> {
        match self {
            CheckerKind::Http(_) | CheckerKind::Ssl(_) => Some(Micros::from_secs(3)),
            CheckerKind::Dns(_) => None,
            _ => Some(Micros::from_secs(1)),
        }
    }

    pub fn has_connection(&self) -> bool {
        !matches!(self, CheckerKind::Misc(_) | CheckerKind::File(_))
    }

    pub fn has_timing(&self) -> bool {
        !matches!(self, CheckerKind::File(_))
    }
}

/// Connection options (`check_api.c` common keywords).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// `None`: the real server's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ip: Option<IpAddr>,
    /// `None`: the real server's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindto: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_if: Option<String>,
    /// SO_MARK on the probe socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// Effective: checker, else real server, else service (5 s).
    pub connect_timeout: Micros,
}

/// Effective timing (checker, else real server, else service, else the checker type's
/// default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub retry: u32,
    pub delay_before_retry: Micros,
    /// Upper bound of the random delay before the first check.
    pub warmup: Micros,
    pub delay_loop: Micros,
    pub alpha: bool,
    pub log_all_failures: bool,
}

/// `HTTP_GET` / `SSL_GET`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCheck {
    /// All must pass.
    pub urls: Vec<Url>,
    pub http_protocol: HttpProtocol,
    /// Host header for urls without their own: effective, i.e. the checker's, else the
    /// real server's, else the service's `virtualhost`; `None` sends the probed address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
    pub enable_sni: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni_name: Option<String>,
    pub fast_recovery: bool,
    pub tls_compliant: bool,
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            urls: Vec::new(),
            http_protocol: HttpProtocol::V1_0,
            virtualhost: None,
            enable_sni: false,
            sni_name: None,
            fast_recovery: false,
            tls_compliant: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HttpProtocol {
    /// `1.0`: HTTP/1.0 request.
    #[default]
    #[serde(rename = "1.0")]
    V1_0,
    /// `1.0C`: HTTP/1.0 with `Connection: close`.
    #[serde(rename = "1.0C")]
    V1_0C,
    #[serde(rename = "1.1")]
    V1_1,
}

impl HttpProtocol {
    pub fn keyword(self) -> &'static str {
        match self {
            HttpProtocol::V1_0 => "1.0",
            HttpProtocol::V1_0C => "1.0C",
            HttpProtocol::V1_1 => "1.1",
        }
    }
}

/// `url { path; digest; status_code; virtualhost; regex… }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Url {
    pub path: String,
    /// MD5 of the body, 32 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Accepted status codes: sorted, merged ranges within 100–599; 200–299 when none given.
    pub status_codes: Vec<StatusRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<UrlRegex>,
    pub tls_compliant: bool,
    #[serde(skip)]
    pub origin: Origin,
}

/// An inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StatusRange {
    pub first: u16,
    pub last: u16,
}

impl StatusRange {
    /// keepalived's default: 200-299.
    pub const DEFAULT: StatusRange = StatusRange {
        first: 200,
        last: 299,
    };

    /// Sorts and merges overlapping or adjacent ranges.
    pub fn normalise(mut ranges: Vec<StatusRange>) -> Vec<StatusRange> {
        ranges.sort();
        let mut out: Vec<StatusRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match out.last_mut() {
                Some(prev) if r.first <= prev.last.saturating_add(1) => {
                    prev.last = prev.last.max(r.last);
                }
                _ => out.push(r),
            }
        }
        out
    }
}

/// Body matching of a url (PCRE2 in keepalived).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlRegex {
    pub pattern: String,
    /// Pass when the pattern does NOT match.
    pub no_match: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_offset: Option<u64>,
}

/// `MISC_CHECK`: exit 0 = up, 1 = down; with `dynamic`, 2–255 sets weight = status − 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MiscCheck {
    /// The command; `user`/`group` come from the `user` keyword.
    pub path: Script,
    /// How long the script may run: `misc_timeout` (whole seconds), else the checker's
    /// delay_loop.
    pub timeout: Micros,
    pub dynamic: bool,
}

/// `DNS_CHECK { type; name }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsCheck {
    pub record_type: DnsType,
    /// The name queried; `.` (the root) by default.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsType {
    A,
    Ns,
    Cname,
    #[default]
    Soa,
    Mx,
    Txt,
    Aaaa,
    Rrsig,
    Dnskey,
}

impl DnsType {
    pub const ALL: [DnsType; 9] = [
        DnsType::A,
        DnsType::Ns,
        DnsType::Cname,
        DnsType::Soa,
        DnsType::Mx,
        DnsType::Txt,
        DnsType::Aaaa,
        DnsType::Rrsig,
        DnsType::Dnskey,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            DnsType::A => "A",
            DnsType::Ns => "NS",
            DnsType::Cname => "CNAME",
            DnsType::Soa => "SOA",
            DnsType::Mx => "MX",
            DnsType::Txt => "TXT",
            DnsType::Aaaa => "AAAA",
            DnsType::Rrsig => "RRSIG",
            DnsType::Dnskey => "DNSKEY",
        }
    }

    pub fn from_keyword(s: &str) -> Option<Self> {
        DnsType::ALL.into_iter().find(|t| t.keyword() == s)
    }
}

/// `UDP_CHECK`: up on a reply (or on no ICMP unreachable when no reply is required).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UdpCheck {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payload: Vec<u8>,
    pub require_reply: bool,
    /// Expected reply bytes as hex, lowercase; nibbles may be `?` (any value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    pub min_reply_length: u16,
    pub max_reply_length: u16,
}

impl Default for UdpCheck {
    fn default() -> Self {
        UdpCheck {
            payload: Vec::new(),
            require_reply: false,
            reply: None,
            min_reply_length: 0,
            max_reply_length: u16::from(u8::MAX),
        }
    }
}

/// `FILE_CHECK { track_file NAME; weight N [reverse] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileCheck {
    /// Name of a top-level `track_file` block.
    pub track_file: String,
    /// `None`: the track_file's own weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    pub reverse: bool,
}
