//! Probe sockets: made with socket2 so the source address, device and mark are set before
//! the connection starts (as keepalived's `socket_bind_connect`), then handed to tokio.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use super::{Endpoint, ProbeError, Secs};

/// A non-blocking socket of `ep`'s family with its bind options applied.
pub(super) fn socket(ep: &Endpoint, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(ep.addr), ty, Some(proto))?;
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
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Connects to `ep` within its timeout.
pub(super) async fn connect_tcp(ep: &Endpoint) -> Result<TcpStream, ProbeError> {
    let s = socket(ep, Type::STREAM, Protocol::TCP).map_err(ProbeError::Socket)?;
    let s = TcpSocket::from_std_stream(s.into());
    match tokio::time::timeout(ep.timeout, s.connect(ep.addr)).await {
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
