//! Probe sockets: made with socket2 so the source address, device and mark are set before
//! the connection starts (as keepalived's `socket_bind_connect`), then handed to tokio.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::Instant;

use super::{Endpoint, ProbeError, Secs};

/// A non-blocking socket of `ep`'s family with its bind options applied.
pub(super) fn socket(ep: &Endpoint, ty: Type, proto: Protocol) -> io::Result<Socket> {
    // SOCK_NONBLOCK at creation: two fcntl calls fewer per probe (each a ptrace round trip
    // under User-Mode Linux, the same as keepalived's `socket(…| SOCK_NONBLOCK)`).
    let s = Socket::new(Domain::for_address(ep.addr), ty.nonblocking(), Some(proto))?;
    if let Some(mark) = ep.fwmark {
        s.set_mark(mark)?;
    }
    if let Some(dev) = &ep.bind_if {
        s.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(bind) = ep.bind {
        // A fixed source port is reused by every probe; without this the next probe would
        // wait for TIME_WAIT.
        if bind.port() != 0 {
            s.set_reuse_address(true)?;
        }
        s.bind(&bind.into())?;
    }
    Ok(s)
}

/// Connects to `ep` within its timeout.
pub(super) async fn connect_tcp(ep: &Endpoint) -> Result<TcpStream, ProbeError> {
    connect_tcp_from(ep, Instant::now()).await
}

/// Connects to `ep` within its timeout counted from `started`: a caller that has just read
/// the clock saves a read (a system call under User-Mode Linux, where there is no vDSO).
pub(super) async fn connect_tcp_from(
    ep: &Endpoint,
    started: Instant,
) -> Result<TcpStream, ProbeError> {
    let s = socket(ep, Type::STREAM, Protocol::TCP).map_err(ProbeError::Socket)?;
    let s = TcpSocket::from_std_stream(s.into());
    let connect = s.connect(ep.addr);
    let bounded = match started.checked_add(ep.timeout) {
        Some(deadline) => tokio::time::timeout_at(deadline, connect).await,
        None => tokio::time::timeout(ep.timeout, connect).await,
    };
    match bounded {
        Err(_) => Err(ProbeError::ConnectTimeout(Secs(ep.timeout))),
        Ok(Err(e)) => Err(connect_error(e)),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// A UDP socket connected to `ep`, so ICMP port unreachable comes back as ECONNREFUSED.
pub(super) async fn connect_udp(ep: &Endpoint) -> Result<UdpSocket, ProbeError> {
    let s = socket(ep, Type::DGRAM, Protocol::UDP).map_err(ProbeError::Socket)?;
    let s = UdpSocket::from_std(s.into()).map_err(ProbeError::Socket)?;
    s.connect(ep.addr).await.map_err(connect_error)?;
    Ok(s)
}

pub(super) fn connect_error(e: io::Error) -> ProbeError {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        ProbeError::Refused
    } else {
        ProbeError::Connect(e)
    }
}

/// `ip:port`, with brackets for IPv6 (RFC 3986 §3.2.2), as a Host header carries it.
pub(super) fn host_port(addr: SocketAddr) -> String {
    addr.to_string()
}
