//! systemd's notify protocol (sd_notify(3)) without libsystemd: one datagram per state change
//! to the socket named in `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
//! `Type=notify` units start when the director says READY=1, reload around RELOADING=1, and
//! with `WatchdogSec=` are restarted if the WATCHDOG=1 pings stop.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where to send notifications; `None` when not started by systemd.
#[derive(Clone)]
pub struct SdNotify {
    addr: SocketAddr,
}

impl SdNotify {
    /// From `$NOTIFY_SOCKET`; `None` if unset or unusable.
    pub fn from_env() -> Option<SdNotify> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        SdNotify::new(path.to_str()?)
    }

    pub fn new(path: &str) -> Option<SdNotify> {
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
            None => SocketAddr::from_pathname(path).ok()?,
        };
        Some(SdNotify { addr })
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines).
    pub fn send(&self, state: &str) -> std::io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        sock.send_to_addr(state.as_bytes(), &self.addr).map(|_| ())
    }

    pub fn ready(&self) {
        self.log(self.send("READY=1\nSTATUS=running"));
    }

    /// RELOADING=1 must carry the monotonic time it started at (systemd ≥ 253 checks it).
    pub fn reloading(&self) {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
            .unwrap_or(0);
        self.log(self.send(&format!("RELOADING=1\nMONOTONIC_USEC={now}")));
    }

    pub fn stopping(&self) {
        self.log(self.send("STOPPING=1"));
    }

    pub fn watchdog(&self) {
        self.log(self.send("WATCHDOG=1"));
    }

    fn log(&self, r: std::io::Result<()>) {
        if let Err(e) = r {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }
}

/// Half of `$WATCHDOG_USEC` (systemd's advice), if the watchdog is on for this process.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn states_arrive_as_datagrams_on_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = SdNotify::new(path.to_str().unwrap()).unwrap();
        n.ready();
        n.watchdog();
        let mut buf = [0u8; 256];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=running");
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        n.reloading();
        let len = listener.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..len]).unwrap();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");

        let name = format!("flotilla-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abs = UnixDatagram::bind_addr(&addr).unwrap();
        SdNotify::new(&format!("@{name}")).unwrap().stopping();
        let len = abs.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1");
    }
}
