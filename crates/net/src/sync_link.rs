//! The local path between the kernel's IPVS sync daemons and flotilla, inside the director's
//! network namespace, so that connection-sync messages never cross a wire unauthenticated.
//!
//! The kernel's sync daemons only speak UDP multicast, and the master's socket turns
//! multicast loopback off, so a local reader cannot hear it on the sending interface. Hence a
//! veth pair that leads nowhere but to itself:
//!
//! ```text
//!   master daemon ──▶ flsync0 (169.254.88.1) ══veth══▶ flsync1 (169.254.88.2) ──▶ relay reader
//!                     224.0.0.81:8848                    joined, accept_local=1, rp_filter=0
//!   relay injector ──▶ 224.0.0.81:8850 on flsync1, TTL 0, loopback on ──▶ backup daemon (flsync1)
//! ```
//!
//! The master's packets arrive on `flsync1` from an address of this host, which the kernel
//! takes for a martian unless `accept_local` is on and reverse-path filtering off there (a
//! strict `all.rp_filter` overrides the interface's, so it is refused). The injector's TTL 0
//! keeps its packets off every wire: the loopback copy is the only one.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use rtnetlink::LinkVeth;
use socket2::{Domain, Protocol, Socket, Type};

use crate::{NetError, ifindex};

/// The master daemon's interface.
pub const MASTER_IF: &str = "flsync0";
/// The relay's interface: the reader joins here, the backup daemon listens here.
pub const RELAY_IF: &str = "flsync1";
pub const MASTER_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 88, 1);
pub const RELAY_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 88, 2);
const PREFIX: u8 = 30;
/// The kernel's default sync group.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// Where the master daemon sends (one sync thread: `net.ipv4.vs.sync_ports` = 1).
pub const MASTER_PORT: u16 = 8848;
/// Where the backup daemon listens.
pub const BACKUP_PORT: u16 = 8850;

fn netlink(what: &'static str) -> impl Fn(rtnetlink::Error) -> NetError {
    move |e| NetError::Netlink(format!("{what}: {e}"))
}

fn sysctl(path: &str, value: &str) -> Result<(), NetError> {
    std::fs::write(path, value).map_err(NetError::io("writing a sysctl"))
}

/// Creates the veth pair with its addresses and sysctls (a pair left by an earlier run is
/// adopted) and brings both ends up.
pub async fn ensure() -> Result<(), NetError> {
    let strict = std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/rp_filter")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    if strict {
        return Err(NetError::Netlink(
            "net.ipv4.conf.all.rp_filter is 1 (strict): the sync link's own packets would be dropped; use 0 or 2".into(),
        ));
    }
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(NetError::io("opening rtnetlink"))?;
    let driver = tokio::spawn(conn);
    let result = async {
        if ifindex(MASTER_IF).is_err() {
            handle
                .link()
                .add(LinkVeth::new(MASTER_IF, RELAY_IF).build())
                .execute()
                .await
                .map_err(netlink("creating the sync veth pair"))?;
        }
        for (name, addr) in [(MASTER_IF, MASTER_ADDR), (RELAY_IF, RELAY_ADDR)] {
            let index = ifindex(name)?;
            match handle
                .address()
                .add(index, addr.into(), PREFIX)
                .execute()
                .await
            {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(m))
                    if m.code.map(|c| -c.get()) == Some(libc::EEXIST) => {}
                Err(e) => return Err(netlink("addressing the sync link")(e)),
            }
        }
        let relay = format!("/proc/sys/net/ipv4/conf/{RELAY_IF}");
        sysctl(&format!("{relay}/accept_local"), "1")?;
        sysctl(&format!("{relay}/rp_filter"), "0")?;
        for name in [MASTER_IF, RELAY_IF] {
            handle
                .link()
                .set(
                    rtnetlink::LinkUnspec::new_with_index(ifindex(name)?)
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(netlink("bringing the sync link up"))?;
        }
        Ok(())
    }
    .await;
    driver.abort();
    result?;
    wait_running().await
}

/// Until both ends are running (a veth pair just set up takes a moment to get its carrier:
/// a datagram sent before that is dropped). Gives up quietly after [`RUNNING_WAIT`]: the sync
/// daemons send again anyway.
async fn wait_running() -> Result<(), NetError> {
    let links = crate::link::Links::connect()?;
    let deadline = tokio::time::Instant::now() + RUNNING_WAIT;
    loop {
        let mut running = true;
        for name in [MASTER_IF, RELAY_IF] {
            running &= links.status(name).await?.is_up();
        }
        if running || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// How long [`ensure`] waits for the pair's carrier.
const RUNNING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Deletes the veth pair (both ends go together); absent is fine.
pub async fn remove() -> Result<(), NetError> {
    let Ok(index) = ifindex(MASTER_IF) else {
        return Ok(());
    };
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(NetError::io("opening rtnetlink"))?;
    let driver = tokio::spawn(conn);
    let result = handle
        .link()
        .del(index)
        .execute()
        .await
        .map_err(netlink("deleting the sync link"));
    driver.abort();
    result
}

/// The relay's receiving socket: the master daemon's group and port, joined on `flsync1`.
pub fn reader() -> Result<tokio::net::UdpSocket, NetError> {
    let index = ifindex(RELAY_IF)?;
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(NetError::io("sync reader socket"))?;
    s.set_reuse_address(true)
        .map_err(NetError::io("sync reader SO_REUSEADDR"))?;
    s.bind_device(Some(RELAY_IF.as_bytes()))
        .map_err(NetError::io("sync reader SO_BINDTODEVICE"))?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(GROUP, MASTER_PORT)).into())
        .map_err(NetError::io("binding the sync reader"))?;
    s.join_multicast_v4_n(&GROUP, &socket2::InterfaceIndexOrAddress::Index(index))
        .map_err(NetError::io("joining the sync group"))?;
    s.set_recv_buffer_size(1 << 20)
        .map_err(NetError::io("sync reader buffer"))?;
    s.set_nonblocking(true)
        .map_err(NetError::io("sync reader non-blocking"))?;
    tokio::net::UdpSocket::from_std(s.into()).map_err(NetError::io("sync reader on tokio"))
}

/// The relay's sending socket: to the backup daemon's group and port on `flsync1`, TTL 0 and
/// loopback on, so the local copy is the only one.
pub fn injector() -> Result<tokio::net::UdpSocket, NetError> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(NetError::io("sync injector socket"))?;
    s.set_multicast_if_v4(&RELAY_ADDR)
        .map_err(NetError::io("sync injector IP_MULTICAST_IF"))?;
    s.set_multicast_ttl_v4(0)
        .map_err(NetError::io("sync injector TTL"))?;
    s.set_multicast_loop_v4(true)
        .map_err(NetError::io("sync injector loopback"))?;
    s.connect(&SocketAddr::V4(SocketAddrV4::new(GROUP, BACKUP_PORT)).into())
        .map_err(NetError::io("connecting the sync injector"))?;
    s.set_nonblocking(true)
        .map_err(NetError::io("sync injector non-blocking"))?;
    tokio::net::UdpSocket::from_std(s.into()).map_err(NetError::io("sync injector on tokio"))
}
