//! Link state: the current state of an interface and a stream of up/down transitions, read
//! from rtnetlink (`ip monitor link`). A VRRP instance whose interface goes down enters FAULT
//! (keepalived.md §3.5); this module only reports, the state machine decides.

use std::collections::{HashMap, HashSet, VecDeque};

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
            .map_err(|e| match errno(&e) {
                Some(libc::ENODEV) => NetError::NoInterface {
                    name: ifname.to_string(),
                    reason: "no such device".to_string(),
                },
                _ => NetError::Netlink(format!("reading link {ifname}: {e}")),
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
/// [`LinkStatus::is_up`], starting from the state listed when it was opened. Each
/// notification triggers a read of the link's current state, and if the kernel drops
/// notifications because the socket buffer overran (ENOBUFS), the watch lists all links again
/// and reports what changed in the meantime: the reported state always ends where the link
/// is, even after a flood. A link that flapped between two reads may show no transition.
pub struct LinkWatch {
    messages: BoxStream<'static, NetlinkMessage<RouteNetlinkMessage>>,
    handle: rtnetlink::Handle,
    driver: tokio::task::JoinHandle<()>,
    known: Transitions,
    /// Transitions found but not yet returned.
    pending: VecDeque<LinkEvent>,
    /// Links notified about and still to be read back, with what the notification said (used
    /// only if the read fails). Kept here, not in a local, so that a `next()` dropped while
    /// it awaits the kernel (a `select!` in the caller) loses nothing.
    recheck: VecDeque<LinkStatus>,
    /// An overrun was seen and the links are still to be listed again.
    resync: bool,
    overruns: u64,
}

impl LinkWatch {
    /// Subscribes to link notifications, then lists the links once so that the first event
    /// for an interface is a real change.
    pub async fn open() -> Result<Self, NetError> {
        let (conn, handle, messages) = rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
            .map_err(NetError::io("subscribing to link notifications"))?;
        let driver = tokio::spawn(conn);
        let mut known = Transitions::default();
        known.resync(list_links(&handle).await?);
        Ok(LinkWatch {
            messages: messages.map(|(m, _)| m).boxed(),
            handle,
            driver,
            known,
            pending: VecDeque::new(),
            recheck: VecDeque::new(),
            resync: false,
            overruns: 0,
        })
    }

    /// The next transition; `None` if the netlink connection ended or the links could not be
    /// listed again after an overrun (reopen the watch then). Cancel-safe: dropping the
    /// future loses no transition, it is reported by the next call.
    pub async fn next(&mut self) -> Option<LinkEvent> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.resync {
                let listed = list_links(&self.handle).await.ok()?;
                self.resync = false;
                self.pending.extend(self.known.resync(listed));
                continue;
            }
            // A notification is only a trigger: the state reported is read back from the
            // kernel, because the notification may be stale. After an overrun, queued
            // notifications older than the re-listing still follow it, and the one for the
            // last change may have been the one dropped; trusting their contents could leave
            // the watch on a state the link has already left.
            if let Some(noted) = self.recheck.front() {
                let ifindex = noted.ifindex;
                let live = self.live(ifindex).await;
                let Some(noted) = self.recheck.pop_front() else {
                    continue;
                };
                let event = match live {
                    Ok(Some(s)) => self.known.status(s),
                    Ok(None) => self.known.removed(ifindex),
                    // Cannot ask: the notification is the best there is.
                    Err(_) => self.known.status(noted),
                };
                if let Some(e) = event {
                    return Some(e);
                }
                continue;
            }
            let msg = self.messages.next().await?;
            match msg.payload {
                NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewLink(m) | RouteNetlinkMessage::DelLink(m),
                ) => {
                    let noted = LinkStatus::from_message(&m);
                    // One read answers for every notification queued for the same link.
                    match self.recheck.iter_mut().find(|s| s.ifindex == noted.ifindex) {
                        Some(queued) => *queued = noted,
                        None => self.recheck.push_back(noted),
                    }
                }
                NetlinkPayload::Overrun(_) => {
                    self.overruns += 1;
                    self.resync = true;
                }
                _ => {}
            }
        }
    }

    /// How often notifications were lost to a full socket buffer and the state re-read (worth
    /// a metric: a steady count means the reader falls behind).
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// Interface `ifindex` as it is now; `None` if it no longer exists.
    async fn live(&self, ifindex: u32) -> Result<Option<LinkStatus>, NetError> {
        match self
            .handle
            .link()
            .get()
            .match_index(ifindex)
            .execute()
            .try_next()
            .await
        {
            Ok(m) => Ok(m.map(|m| LinkStatus::from_message(&m))),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(NetError::Netlink(format!("reading link {ifindex}: {e}"))),
        }
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

async fn list_links(handle: &rtnetlink::Handle) -> Result<Vec<LinkStatus>, NetError> {
    let listed: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| NetError::Netlink(format!("listing links: {e}")))?;
    Ok(listed.iter().map(LinkStatus::from_message).collect())
}

/// The last known up/down state of each interface; turns observations into transitions.
#[derive(Debug, Default)]
struct Transitions {
    last: HashMap<u32, (String, bool)>,
}

impl Transitions {
    fn status(&mut self, s: LinkStatus) -> Option<LinkEvent> {
        let up = s.is_up();
        let before = self.last.insert(s.ifindex, (s.name.clone(), up));
        if before.map(|(_, was)| was) == Some(up) {
            return None;
        }
        Some(if up {
            LinkEvent::Up(s)
        } else {
            LinkEvent::Down(s)
        })
    }

    fn removed(&mut self, ifindex: u32) -> Option<LinkEvent> {
        let (name, _) = self.last.remove(&ifindex)?;
        Some(LinkEvent::Removed { ifindex, name })
    }

    /// Replaces what is known with a fresh listing; returns the transitions missed.
    fn resync(&mut self, listed: Vec<LinkStatus>) -> Vec<LinkEvent> {
        let present: HashSet<u32> = listed.iter().map(|s| s.ifindex).collect();
        let mut gone: Vec<u32> = self
            .last
            .keys()
            .filter(|i| !present.contains(i))
            .copied()
            .collect();
        gone.sort_unstable();
        let mut events: Vec<LinkEvent> = gone.into_iter().filter_map(|i| self.removed(i)).collect();
        events.extend(listed.into_iter().filter_map(|s| self.status(s)));
        events
    }
}

impl Drop for LinkWatch {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(ifindex: u32, name: &str, up: bool) -> LinkStatus {
        LinkStatus {
            ifindex,
            name: name.to_string(),
            admin_up: true,
            running: up,
            oper: if up { OperState::Up } else { OperState::Down },
        }
    }

    #[test]
    fn only_changes_of_up_or_down_are_reported() {
        let mut t = Transitions::default();
        assert_eq!(
            t.resync(vec![link(2, "eth0", true)]),
            vec![LinkEvent::Up(link(2, "eth0", true))],
            "first sight (LinkWatch::open discards these)"
        );
        assert_eq!(
            t.status(link(2, "eth0", true)),
            None,
            "MTU change, still up"
        );
        assert_eq!(
            t.status(link(2, "eth0", false)),
            Some(LinkEvent::Down(link(2, "eth0", false)))
        );
        assert_eq!(t.status(link(2, "eth0", false)), None);
        assert_eq!(
            t.removed(2),
            Some(LinkEvent::Removed {
                ifindex: 2,
                name: "eth0".to_string()
            })
        );
        assert_eq!(
            t.removed(2),
            None,
            "unknown interfaces are not reported twice"
        );
    }

    #[test]
    fn a_resync_after_lost_notifications_reports_what_was_missed() {
        let mut t = Transitions::default();
        t.resync(vec![
            link(2, "eth0", true),
            link(3, "eth1", true),
            link(4, "eth2", false),
        ]);
        // While notifications were lost: eth0 went down, eth1 was deleted, eth2 is unchanged
        // and eth3 appeared.
        let missed = t.resync(vec![
            link(2, "eth0", false),
            link(4, "eth2", false),
            link(5, "eth3", true),
        ]);
        assert_eq!(
            missed,
            vec![
                LinkEvent::Removed {
                    ifindex: 3,
                    name: "eth1".to_string()
                },
                LinkEvent::Down(link(2, "eth0", false)),
                LinkEvent::Up(link(5, "eth3", true)),
            ]
        );
    }
}
