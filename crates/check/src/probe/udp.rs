//! UDP_CHECK and DNS_CHECK: a datagram out on a connected socket, an answer (or an ICMP
//! error, which a connected socket reports as ECONNREFUSED) back.

use tokio::net::UdpSocket;
use tokio::time::Instant;

use flotilla_config::model::lvs::{DnsCheck, UdpCheck};

use super::net::{connect_error, connect_udp};
use super::{Endpoint, Pass, ProbeError, Secs, SpecError};
use crate::dns::{self, Question, Verdict};

/// UDP_CHECK (`check_udp.c`).
#[derive(Debug)]
pub struct UdpProbe {
    pub endpoint: Endpoint,
    payload: Vec<u8>,
    require_reply: bool,
    pattern: Option<ReplyPattern>,
    min_len: usize,
    max_len: usize,
}

/// Expected reply bytes with don't-care nibbles (`require_reply 0a??ff`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPattern {
    data: Vec<u8>,
    /// Bits that must match.
    mask: Vec<u8>,
}

impl ReplyPattern {
    /// Hex digits, two per byte, `?` for any nibble.
    pub fn parse(hex: &str) -> Option<Self> {
        let nibbles: Vec<Option<u8>> = hex
            .chars()
            .map(|c| {
                if c == '?' {
                    Some(None)
                } else {
                    c.to_digit(16).map(|d| Some(d as u8))
                }
            })
            .collect::<Option<_>>()?;
        if !nibbles.len().is_multiple_of(2) {
            return None;
        }
        let (data, mask) = nibbles
            .chunks(2)
            .map(|pair| {
                let part = |n: Option<u8>| n.map_or((0, 0), |v| (v, 0xf));
                let (hi, hm) = part(pair[0]);
                let (lo, lm) = part(pair[1]);
                ((hi << 4) | lo, (hm << 4) | lm)
            })
            .unzip();
        Some(ReplyPattern { data, mask })
    }

    /// keepalived compares the shorter of the reply and the pattern.
    pub fn matches(&self, reply: &[u8]) -> bool {
        self.data
            .iter()
            .zip(&self.mask)
            .zip(reply)
            .all(|((d, m), r)| (d ^ r) & m == 0)
    }
}

impl UdpProbe {
    pub(super) fn new(endpoint: Endpoint, u: &UdpCheck) -> Result<Self, SpecError> {
        let pattern = match &u.reply {
            Some(hex) => Some(
                ReplyPattern::parse(hex).ok_or_else(|| SpecError::BadReplyPattern(hex.clone()))?,
            ),
            None => None,
        };
        Ok(UdpProbe {
            endpoint,
            payload: u.payload.clone(),
            require_reply: u.require_reply,
            pattern,
            min_len: usize::from(u.min_reply_length),
            max_len: usize::from(u.max_reply_length),
        })
    }

    pub(super) async fn run(&self) -> Result<Pass, ProbeError> {
        let sock = connect_udp(&self.endpoint).await?;
        sock.send(&self.payload).await.map_err(recv_error)?;
        // One byte more than allowed, so an overlong reply shows as overlong.
        let mut buf = vec![0u8; self.max_len + 1];
        let timeout = self.endpoint.timeout;
        match tokio::time::timeout(timeout, sock.recv(&mut buf)).await {
            Err(_) if self.require_reply => Err(ProbeError::UdpNoReply(Secs(timeout))),
            Err(_) => Ok(Pass::new(format!(
                "no ICMP error from {} within {}",
                self.endpoint.addr,
                Secs(timeout)
            ))),
            Ok(Err(e)) => Err(recv_error(e)),
            Ok(Ok(len)) => {
                // keepalived checks lengths and bytes only when a reply pattern is given.
                if self.require_reply
                    && let Some(p) = &self.pattern
                    && (len < self.min_len
                        || len > self.max_len
                        || !p.matches(buf.get(..len).unwrap_or_default()))
                {
                    return Err(ProbeError::UdpMismatch { len });
                }
                Ok(Pass::new(format!(
                    "UDP reply of {len} bytes from {}",
                    self.endpoint.addr
                )))
            }
        }
    }
}

fn recv_error(e: std::io::Error) -> ProbeError {
    match connect_error(e) {
        ProbeError::Connect(e) => ProbeError::Recv(e),
        other => other,
    }
}

/// DNS_CHECK (`check_dns.c`).
#[derive(Debug)]
pub struct DnsProbe {
    pub endpoint: Endpoint,
    name: String,
    type_name: &'static str,
    question: Question,
    /// The query with id 0; each probe writes a fresh id into its first two bytes.
    query: Vec<u8>,
}

impl DnsProbe {
    pub(super) fn new(endpoint: Endpoint, d: &DnsCheck) -> Result<Self, SpecError> {
        let qtype = dns::qtype(d.record_type);
        Ok(DnsProbe {
            endpoint,
            question: Question {
                name: dns::encode_name(&d.name)?,
                qtype,
                qclass: 1,
            },
            query: dns::encode_query(0, &d.name, qtype)?,
            name: d.name.clone(),
            type_name: d.record_type.keyword(),
        })
    }

    pub(super) async fn run(&self) -> Result<Pass, ProbeError> {
        let sock = connect_udp(&self.endpoint).await?;
        let id = crate::runner::random_u64() as u16;
        let mut query = self.query.clone();
        query.splice(..2, id.to_be_bytes());
        sock.send(&query).await.map_err(recv_error)?;
        let deadline = Instant::now() + self.endpoint.timeout;
        match tokio::time::timeout_at(deadline, self.answer(&sock, id)).await {
            Err(_) => Err(ProbeError::DnsTimeout(Secs(self.endpoint.timeout))),
            Ok(r) => r,
        }
    }

    /// Reads datagrams until one answers our query.
    async fn answer(&self, sock: &UdpSocket, id: u16) -> Result<Pass, ProbeError> {
        let mut buf = [0u8; dns::MAX_UDP_LEN];
        loop {
            let len = sock.recv(&mut buf).await.map_err(recv_error)?;
            match dns::judge(buf.get(..len).unwrap_or_default(), id, &self.question) {
                Verdict::Answered => {
                    return Ok(Pass::new(format!(
                        "DNS NOERROR for {} {}",
                        self.name, self.type_name
                    )));
                }
                Verdict::Error(rcode) => {
                    return Err(ProbeError::DnsRcode {
                        rcode,
                        name: self.name.clone(),
                        qtype: self.type_name,
                    });
                }
                Verdict::Ignore => {}
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reply_patterns_have_wildcard_nibbles() {
        let p = ReplyPattern::parse("0a?bff").unwrap();
        assert!(p.matches(&[0x0a, 0x1b, 0xff]));
        assert!(p.matches(&[0x0a, 0xfb]));
        assert!(!p.matches(&[0x0a, 0x1c]));
        // Only the shorter of pattern and reply is compared.
        assert!(p.matches(&[0x0a, 0x0b, 0xff, 0x99]));
        assert!(ReplyPattern::parse("0g").is_none());
        assert!(ReplyPattern::parse("abc").is_none());
    }
}
