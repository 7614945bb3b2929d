//! Virtual addresses on interfaces through rtnetlink (`ip addr add/del`), idempotent so that a
//! restarted director adopts what a crashed predecessor left instead of failing or
//! duplicating it.

use std::net::IpAddr;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, AddressScope};

use crate::NetError;

/// Sets `net.ipv4.conf.IFNAME.promote_secondaries` to 1, as keepalived does for the
/// interfaces it puts VIPs on: without it, deleting the first address of a subnet deletes
/// every other address of that subnet with it (a VIP `10.0.1.1/16` released by one instance
/// would take `10.0.1.2/16` of another instance along). Returns whether it was off before.
pub fn promote_secondaries(ifname: &str) -> std::io::Result<bool> {
    if ifname.is_empty() || ifname.contains('/') || ifname.starts_with('.') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not an interface name: {ifname:?}"),
        ));
    }
    let path = format!("/proc/sys/net/ipv4/conf/{ifname}/promote_secondaries");
    let before = std::fs::read_to_string(&path)?;
    if before.trim() == "1" {
        return Ok(false);
    }
    std::fs::write(&path, "1")?;
    Ok(true)
}

/// One address to hold on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
    /// `ip addr ... label eth0:vip` (IPv4 only; must start with the interface name).
    pub label: Option<String>,
    pub scope: Scope,
}

impl Vip {
    /// A host address (/32 or /128) with no label, global scope.
    pub fn host(addr: IpAddr) -> Self {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Vip {
            addr,
            prefix,
            label: None,
            scope: Scope::Global,
        }
    }
}

/// Address scope (`ip addr ... scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    #[default]
    Global,
    Site,
    Link,
    Host,
}

impl From<Scope> for AddressScope {
    fn from(s: Scope) -> Self {
        match s {
            Scope::Global => AddressScope::Universe,
            Scope::Site => AddressScope::Site,
            Scope::Link => AddressScope::Link,
            Scope::Host => AddressScope::Host,
        }
    }
}

/// What [`Addresses::add`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    /// It was already there (left by a predecessor, or added twice): adopted.
    AlreadyPresent,
}

/// What [`Addresses::remove`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Removed,
    NotPresent,
}

/// An address as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub addr: IpAddr,
    pub prefix: u8,
    pub label: Option<String>,
}

/// A connection to the kernel's routing netlink in the caller's network namespace.
#[derive(Clone)]
pub struct Addresses {
    handle: rtnetlink::Handle,
}

impl Addresses {
    /// Opens the connection; its driver runs on the current tokio runtime.
    pub fn connect() -> Result<Self, NetError> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(NetError::io("opening rtnetlink"))?;
        tokio::spawn(conn);
        Ok(Addresses { handle })
    }

    /// Adds `vip` on interface `ifindex`; an address already there is adopted.
    pub async fn add(&self, ifindex: u32, vip: &Vip) -> Result<Added, NetError> {
        let mut req = self.handle.address().add(ifindex, vip.addr, vip.prefix);
        let msg = req.message_mut();
        msg.header.scope = vip.scope.into();
        if let Some(label) = &vip.label {
            msg.attributes.push(AddressAttribute::Label(label.clone()));
        }
        match req.execute().await {
            Ok(()) => Ok(Added::New),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(Added::AlreadyPresent),
            Err(e) => Err(NetError::Netlink(format!(
                "adding {}/{}: {e}",
                vip.addr, vip.prefix
            ))),
        }
    }

    /// Removes `addr/prefix` from interface `ifindex`; an absent address is not an error.
    pub async fn remove(
        &self,
        ifindex: u32,
        addr: IpAddr,
        prefix: u8,
    ) -> Result<Removed, NetError> {
        // Deleted by value, not found in a dump first: a dump of an interface whose addresses
        // other units change at the same moment may be inconsistent and miss it (a VIP was
        // left behind so, found with 3,000 VIPs on three directors), and dumping thousands of
        // addresses per removal is quadratic work. The kernel matches IFA_LOCAL, the prefix
        // length and IFA_ADDRESS, as the add builder fills them.
        let mut add = self.handle.address().add(ifindex, addr, prefix);
        let msg = add.message_mut().clone();
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(Removed::Removed),
            Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT)) => {
                Ok(Removed::NotPresent)
            }
            Err(e) => Err(NetError::Netlink(format!("removing {addr}/{prefix}: {e}"))),
        }
    }

    /// Every address on interface `ifindex`.
    pub async fn list(&self, ifindex: u32) -> Result<Vec<Listed>, NetError> {
        let msgs = self.messages(ifindex).await?;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                let addr = address_of(m)?;
                let label = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Label(l) => Some(l.clone()),
                    _ => None,
                });
                Some(Listed {
                    addr,
                    prefix: m.header.prefix_len,
                    label,
                })
            })
            .collect())
    }

    async fn messages(&self, ifindex: u32) -> Result<Vec<AddressMessage>, NetError> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_collect::<Vec<_>>()
            .await
            .map(|v| {
                v.into_iter()
                    .filter(|m| m.header.index == ifindex)
                    .collect()
            })
            .map_err(|e| NetError::Netlink(format!("listing addresses: {e}")))
    }
}

/// IFA_LOCAL for IPv4 point-to-point correctness, else IFA_ADDRESS.
fn address_of(m: &AddressMessage) -> Option<IpAddr> {
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}
