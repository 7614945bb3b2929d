//! Link state: the current state of an interface and a stream of up/down transitions, read
//! from rtnetlink (`ip monitor link`). A VRRP instance whose interface goes down enters FAULT
//! (keepalived.md §3.5); this module only reports, the state machine decides.

use std::collections::HashMap;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};

use crate::NetError;

/// RFC 2863 operational state (`ip link`'s `state`), as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
}

impl From<&State> for OperState {
    fn from(s: &State) -> Self {
        match s {
            State::NotPresent => OperState::NotPresent,
            State::Down => OperState::Down,
            State::LowerLayerDown => OperState::LowerLayerDown,
            State::Testing => OperState::Testing,
            State::Dormant => OperState::Dormant,
            State::Up => OperState::Up,
            _ => OperState::Unknown,
        }
    }
}

/// One interface as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    pub ifindex: u32,
    pub name: String,
    /// IFF_UP: the administrator set it up.
    pub admin_up: bool,
    /// IFF_RUNNING: the kernel considers it operational (carrier, and for a veth a peer that
    /// is up).
    pub running: bool,
    pub oper: OperState,
}

impl LinkStatus {
    /// Usable for VRRP: administratively up and running, keepalived's test. Oper state alone
    /// is not enough: drivers without carrier reporting (dummy, some tunnels) stay `Unknown`
    /// while running.
    pub fn is_up(&self) -> bool {
        self.admin_up && self.running
    }

    fn from_message(m: &LinkMessage) -> LinkStatus {
        let mut name = String::new();
        let mut oper = OperState::Unknown;
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => name.clone_from(n),
                LinkAttribute::OperState(s) => oper = s.into(),
                _ => {}
            }
        }
        LinkStatus {
            ifindex: m.header.index,
            name,
            admin_up: m.header.flags.contains(LinkFlags::Up),
            running: m.header.flags.contains(LinkFlags::Running),
            oper,
        }
    }
}

/// A transition seen by [`LinkWatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    Up(LinkStatus),
    Down(LinkStatus),
    /// The interface was deleted (or moved to another namespace).
    Removed {
        ifindex: u32,
        name: String,
    },
}

/// Reads link state on demand.
#[derive(Clone)]
pub struct Links {
    handle: rtnetlink::Handle,
}

impl Links {
    /// Opens the connection; its driver runs on the current tokio runtime.
    pub fn connect() -> Result<Self, NetError> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(NetError::io("opening rtnetlink"))?;
        tokio::spawn(conn);
        Ok(Links { handle })
    }

    /// The current state of interface `ifname`.
    pub async fn status(&self, ifname: &str) -> Result<LinkStatus, NetError> {
        let msg = self
            .handle
            .link()
            .get()
            .match_name(ifname.to_string())
            .execute()
            .try_next()
            .await
            .map_err(|e| match e {
                rtnetlink::Error::NetlinkError(m)
                    if m.code.map(|c| -c.get()) == Some(libc::ENODEV) =>
                {
                    NetError::NoInterface {
                        name: ifname.to_string(),
                        reason: "no such device".to_string(),
                    }
                }
                e => NetError::Netlink(format!("reading link {ifname}: {e}")),
            })?;
        msg.map(|m| LinkStatus::from_message(&m))
            .ok_or_else(|| NetError::NoInterface {
                name: ifname.to_string(),
                reason: "not listed".to_string(),
            })
    }

    /// The current operational state of interface `ifname`.
    pub async fn oper_state(&self, ifname: &str) -> Result<OperState, NetError> {
        Ok(self.status(ifname).await?.oper)
    }
}

/// Up/down transitions of every interface in the namespace, as they happen.
///
/// The kernel sends RTM_NEWLINK for many changes (MTU, addresses of a slave, statistics
/// flags); the watch keeps the last state of each interface and reports only changes of
/// [`LinkStatus::is_up`], starting from the state listed when it was opened.
pub struct LinkWatch {
    messages: BoxStream<'static, NetlinkMessage<RouteNetlinkMessage>>,
    driver: tokio::task::JoinHandle<()>,
    last: HashMap<u32, bool>,
}

impl LinkWatch {
    /// Subscribes to link notifications, then lists the links once so that the first event
    /// for an interface is a real change.
    pub async fn open() -> Result<Self, NetError> {
        let (conn, handle, messages) = rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
            .map_err(NetError::io("subscribing to link notifications"))?;
        let driver = tokio::spawn(conn);
        let listed: Vec<LinkMessage> = handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetError::Netlink(format!("listing links: {e}")))?;
        let last = listed
            .iter()
            .map(|m| {
                let s = LinkStatus::from_message(m);
                (s.ifindex, s.is_up())
            })
            .collect();
        Ok(LinkWatch {
            messages: messages.map(|(m, _)| m).boxed(),
            driver,
            last,
        })
    }

    /// The next transition; `None` if the netlink connection ended.
    pub async fn next(&mut self) -> Option<LinkEvent> {
        while let Some(msg) = self.messages.next().await {
            let NetlinkPayload::InnerMessage(inner) = msg.payload else {
                continue;
            };
            if let Some(event) = self.observe(inner) {
                return Some(event);
            }
        }
        None
    }

    fn observe(&mut self, msg: RouteNetlinkMessage) -> Option<LinkEvent> {
        match msg {
            RouteNetlinkMessage::NewLink(m) => {
                let s = LinkStatus::from_message(&m);
                let up = s.is_up();
                if self.last.insert(s.ifindex, up) == Some(up) {
                    return None;
                }
                Some(if up {
                    LinkEvent::Up(s)
                } else {
                    LinkEvent::Down(s)
                })
            }
            RouteNetlinkMessage::DelLink(m) => {
                let s = LinkStatus::from_message(&m);
                self.last.remove(&s.ifindex)?;
                Some(LinkEvent::Removed {
                    ifindex: s.ifindex,
                    name: s.name,
                })
            }
            _ => None,
        }
    }
}

impl Drop for LinkWatch {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
