//! PING_CHECK: one ICMP (or ICMPv6) echo request, passed when its reply arrives within
//! `connect_timeout`.
//!
//! An unprivileged ping socket (`SOCK_DGRAM`/`IPPROTO_ICMP`, allowed to the groups in
//! `net.ipv4.ping_group_range`) is tried first: the kernel then owns the identifier and
//! delivers only our replies. Where that is not allowed a raw socket is used (needs
//! CAP_NET_RAW): it sees every ICMP message (on loopback, our own request too), carries the
//! IPv4 header, and needs our checksum, so replies are matched on type, identifier and
//! sequence.

use std::io;
use std::net::SocketAddr;

use socket2::{Protocol, Type};
use tokio::net::UdpSocket;

use super::net::{connect_error, socket};
use super::{Endpoint, Pass, ProbeError, Secs};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
const PAYLOAD: &[u8] = b"flotilla PING_CHECK";

pub(super) async fn ping(ep: &Endpoint) -> Result<Pass, ProbeError> {
    let v6 = ep.addr.is_ipv6();
    let proto = if v6 {
        Protocol::ICMPV6
    } else {
        Protocol::ICMPV4
    };
    let (sock, raw) = match socket(ep, Type::DGRAM, proto) {
        Ok(s) => (s, false),
        Err(_) => (
            socket(ep, Type::RAW, proto).map_err(ProbeError::Socket)?,
            true,
        ),
    };
    // Connected: the kernel filters replies by source (raw sockets too).
    sock.connect(&SocketAddr::new(ep.addr.ip(), 0).into())
        .map_err(connect_error)?;
    // tokio's UdpSocket is a datagram socket wrapper whose send/recv are the plain
    // syscalls, which is all an ICMP socket needs; it registers the descriptor with the
    // reactor safely (AsyncFd's constructor is now unsafe).
    let sock = UdpSocket::from_std(sock.into()).map_err(ProbeError::Socket)?;
    let seed = crate::runner::random_u64();
    let (ident, seq) = (seed as u16, (seed >> 16) as u16);
    let request = echo_request(v6, ident, seq);
    let exchange = async {
        sock.send(&request).await.map_err(send_error)?;
        let mut buf = [0u8; 1500];
        loop {
            let len = sock.recv(&mut buf).await.map_err(send_error)?;
            let packet = buf.get(..len).unwrap_or_default();
            // Ping sockets rewrite the identifier to their port and filter on it.
            if is_reply(packet, v6, raw, raw.then_some(ident), seq) {
                return Ok::<(), ProbeError>(());
            }
        }
    };
    match tokio::time::timeout(ep.timeout, exchange).await {
        Err(_) => Err(ProbeError::PingTimeout(Secs(ep.timeout))),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(Pass::new(format!("ICMP echo reply from {}", ep.addr.ip()))),
    }
}

fn send_error(e: io::Error) -> ProbeError {
    match connect_error(e) {
        ProbeError::Connect(e) => ProbeError::Send(e),
        other => other,
    }
}

fn echo_request(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + PAYLOAD.len());
    p.push(if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    // ICMPv6's checksum covers a pseudo-header the kernel fills in; ICMPv4's is ours
    // (ping sockets recompute it, raw sockets send it as is).
    if !v6 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// Whether `packet` is the echo reply to `seq` (and `ident`, when given). Raw IPv4 sockets
/// deliver the IP header first.
fn is_reply(packet: &[u8], v6: bool, raw: bool, ident: Option<u16>, seq: u16) -> bool {
    let icmp = if raw && !v6 {
        let Some(first) = packet.first() else {
            return false;
        };
        let ihl = usize::from(first & 0x0f) * 4;
        packet.get(ihl..).unwrap_or_default()
    } else {
        packet
    };
    let Some(h) = icmp.get(..8) else {
        return false;
    };
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    h[0] == want
        && h[1] == 0
        && ident.is_none_or(|id| u16::from_be_bytes([h[4], h[5]]) == id)
        && u16::from_be_bytes([h[6], h[7]]) == seq
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksums_to_zero() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&p), 0);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn matches_only_our_reply() {
        let mut reply = echo_request(false, 9, 5);
        reply[0] = ECHO_REPLY_V4;
        assert!(is_reply(&reply, false, false, None, 5));
        assert!(!is_reply(&reply, false, false, None, 6));
        assert!(!is_reply(&echo_request(false, 9, 5), false, false, None, 5));
        // Raw IPv4: behind a 20-byte header, identifier checked.
        let mut raw = vec![0x45; 1];
        raw.extend_from_slice(&[0; 19]);
        raw.extend_from_slice(&reply);
        assert!(is_reply(&raw, false, true, Some(9), 5));
        assert!(!is_reply(&raw, false, true, Some(8), 5));
        assert!(!is_reply(&raw[..22], false, true, Some(9), 5));
        assert!(!is_reply(&[], false, true, Some(9), 5));
    }
}
