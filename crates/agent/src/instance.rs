//! One VRRP unit — a `vrrp_instance`, or a `vrrp_sync_group` whose members share one state —
//! as an actor around the pure state machines ([`Router`], [`SyncGroup`]). It feeds them
//! received adverts (TTL and wire checks first) and timer expiries, and carries out what comes
//! back: adverts on the raw sockets, VIPs through rtnetlink, gratuitous ARPs, notify scripts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_net::NetError;
use flotilla_net::vip::{Addresses, Removed};
use flotilla_net::vrrp_socket::{Delivery, VrrpSocketV4, VrrpSocketV6};
use flotilla_vrrp::machine::{Action, Drop, OWNER_PRIORITY, Reason, Router, State};
use flotilla_vrrp::sync::{GroupAction, SyncGroup};
use flotilla_vrrp::wire::{Advert, ChecksumMode, MULTICAST_V4, MULTICAST_V6, TTL};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;

use crate::announce::{Announce, Announcers, Sent};
use crate::metrics::Metrics;
use crate::moves::{MoveWatch, Takeover};
use crate::notifier::NotifyMsg;
use crate::setup::{InstanceSetup, Notify, UnitSetup};
use crate::track::{Reading, Source};
use crate::trackers::TrackerHub;

pub enum InstanceMsg {
    /// A datagram from member `usize`'s raw socket.
    Packet(usize, Packet),
    /// A timer armed with this generation fired (older generations are stale).
    Timer(u64),
    /// Member `i`'s first gratuitous ARP round after a takeover has gone out (see
    /// `Router::announced`).
    Announced(usize),
    /// Release (priority 0, VIPs removed) and report back.
    Stop(RpcReplyPort<()>),
    Status(RpcReplyPort<Vec<InstanceStatus>>),
    /// A link went up or down (or disappeared: down).
    Link {
        name: String,
        up: bool,
    },
    /// A script, file or process tracker has a new reading.
    Track(Source, Reading),
    /// Fleet mode: placement ranked this director; `priority` is that rank's, and
    /// `take_over` asks to become master now, saying why (this director owns the unit in a
    /// newer assignment, or its owner was confirmed dead); `owner`: this director is the
    /// unit's owner (rank 0, or next after a confirmed death) and preempts a lower master at
    /// once.
    Place {
        priority: u8,
        take_over: Option<Takeover>,
        owner: bool,
    },
    /// Fleet mode: `Some(director)`: that director, ranked above this one and alive, is master
    /// of the unit: stand back (see `Router::hold_back`); `None`: no longer.
    HoldBack(Option<String>),
    /// Fleet mode: directors were added or removed; member `i` now sends its unicast adverts
    /// to `peers[i]`. Only between non-empty lists: unicast stays unicast, so the socket and
    /// the state machine are untouched (no transition, no VIP flap).
    Peers(Vec<Vec<IpAddr>>),
}

/// A received VRRP datagram with what its IP header said, either family.
#[derive(Debug, Clone)]
pub struct Packet {
    src: IpAddr,
    dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    ttl: u8,
    payload: Vec<u8>,
}

/// The raw VRRP socket of one instance.
enum Sock {
    V4(VrrpSocketV4),
    V6(VrrpSocketV6),
}

impl Sock {
    async fn send(&self, payload: &[u8], dst: IpAddr) -> Result<(), NetError> {
        match (self, dst) {
            (Sock::V4(s), IpAddr::V4(d)) => s.send(payload, d).await,
            (Sock::V6(s), IpAddr::V6(d)) => s.send(payload, d).await,
            _ => Ok(()),
        }
    }

    /// The next datagram; `Ok(None)` for one whose IP header was unusable.
    async fn recv(&self) -> Result<Option<Packet>, NetError> {
        Ok(match self {
            Sock::V4(s) => match s.recv().await? {
                Ok(r) => Some(Packet {
                    src: IpAddr::V4(r.src),
                    dst: IpAddr::V4(r.dst),
                    ttl: r.ttl,
                    payload: r.payload,
                }),
                Err(e) => {
                    tracing::debug!(error = %e, "unusable datagram");
                    None
                }
            },
            Sock::V6(s) => match s.recv().await? {
                Ok(r) => Some(Packet {
                    src: IpAddr::V6(r.src),
                    dst: IpAddr::V6(r.dst),
                    ttl: r.hop_limit,
                    payload: r.payload,
                }),
                Err(e) => {
                    tracing::debug!(error = %e, "unusable datagram");
                    None
                }
            },
        })
    }
}

fn multicast_group(ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(MULTICAST_V6)
    } else {
        IpAddr::V4(MULTICAST_V4)
    }
}

/// What `flotilla status` shows of an instance.
#[derive(Debug, Clone)]
pub struct InstanceStatus {
    pub name: String,
    /// The sync group it belongs to.
    pub group: Option<String>,
    pub interface: String,
    pub vrid: u8,
    pub vips: Vec<IpAddr>,
    pub state: State,
    pub priority: u8,
    pub effective_priority: u8,
    pub master: Option<IpAddr>,
    pub since: Instant,
    pub reason: Option<Reason>,
    /// The tracker holding it in FAULT.
    pub fault_by: Option<String>,
    /// Adverts whose address list differs from ours (accepted, as keepalived does).
    pub address_list_errors: u64,
    /// State changes since start.
    pub transitions: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub dropped: HashMap<&'static str, u64>,
}

/// The actor.
pub struct VrrpInstance;

pub struct InstanceArgs {
    pub unit: UnitSetup,
    pub notifier: ActorRef<NotifyMsg>,
    pub trackers: TrackerHub,
    pub announcers: Announcers,
    pub metrics: Metrics,
}

/// One instance's sockets and bookkeeping.
struct Member {
    setup: InstanceSetup,
    socket: Arc<Sock>,
    ifindexes: HashMap<String, u32>,
    rx: JoinHandle<()>,
    status: InstanceStatus,
}

/// A single router or a sync group, behind one interface.
enum Machine {
    Single(Box<Router>),
    Group(SyncGroup),
}

/// What a machine asks for: a member's action, or the group's state change.
enum Out {
    Member(usize, Action),
    Group { to: State },
}

impl Machine {
    fn start(&mut self, now: Instant) {
        match self {
            Machine::Single(r) => r.start(now),
            Machine::Group(g) => g.start(now),
        }
    }

    fn shutdown(&mut self, now: Instant) {
        match self {
            Machine::Single(r) => r.shutdown(now),
            Machine::Group(g) => g.shutdown(now),
        }
    }

    fn handle_advert(
        &mut self,
        now: Instant,
        i: usize,
        from: IpAddr,
        a: &Advert,
    ) -> Result<(), Drop> {
        match self {
            Machine::Single(r) => r.handle_advert(now, from, a),
            Machine::Group(g) => g.handle_advert(now, i, from, a),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Machine::Single(r) => r.handle_timeout(now),
            Machine::Group(g) => g.handle_timeout(now),
        }
    }

    fn set_cluster_owner(&mut self, owner: bool) {
        match self {
            Machine::Single(r) => r.set_cluster_owner(owner),
            Machine::Group(g) => g.set_cluster_owner(owner),
        }
    }

    fn announce(&mut self, now: Instant) {
        match self {
            Machine::Single(r) => r.announce(now),
            Machine::Group(g) => g.announce(now),
        }
    }

    fn announced(&mut self, now: Instant, i: usize) {
        match self {
            Machine::Single(r) => {
                if i == 0 {
                    r.announced(now);
                    r.handle_timeout(now);
                }
            }
            Machine::Group(g) => g.announced(now, i),
        }
    }

    fn hold_back(&mut self, now: Instant, on: bool) {
        match self {
            Machine::Single(r) => r.hold_back(now, on),
            Machine::Group(g) => g.hold_back(now, on),
        }
    }

    fn take_over(&mut self, now: Instant) {
        match self {
            Machine::Single(r) => {
                r.take_over(now);
                r.handle_timeout(now);
            }
            Machine::Group(g) => g.take_over(now),
        }
    }

    /// Applies what the trackers of member `i` say.
    fn track(&mut self, now: Instant, i: usize, fault: bool, priority: i32) {
        match self {
            Machine::Single(r) => {
                r.set_effective_priority(priority);
                r.set_fault(now, fault);
            }
            Machine::Group(g) => {
                g.set_effective_priority(i, priority);
                g.set_fault(now, i, fault);
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Machine::Single(r) => r.poll_timeout(),
            Machine::Group(g) => g.poll_timeout(),
        }
    }

    fn poll(&mut self) -> Option<Out> {
        match self {
            Machine::Single(r) => r.poll_action().map(|a| Out::Member(0, a)),
            Machine::Group(g) => g.poll_action().map(|a| match a {
                GroupAction::Member(i, a) => Out::Member(i, a),
                GroupAction::StateChanged { to, .. } => Out::Group { to },
            }),
        }
    }

    fn router(&self, i: usize) -> Option<&Router> {
        match self {
            Machine::Single(r) => (i == 0).then_some(&**r),
            Machine::Group(g) => g.member(i),
        }
    }
}

pub struct InstanceState {
    name: String,
    group: Option<Notify>,
    machine: Machine,
    members: Vec<Member>,
    addrs: Addresses,
    notifier: ActorRef<NotifyMsg>,
    announcers: Announcers,
    timer_gen: u64,
    /// Last known reading of everything the members track.
    readings: HashMap<Source, Reading>,
    /// Tasks forwarding tracker readings to this actor.
    subscriptions: Vec<JoinHandle<()>>,
    /// The tracker that holds a member in FAULT, by member.
    faults: Vec<Option<Source>>,
    /// Takeovers of this unit, for the metrics.
    moves: MoveWatch,
    metrics: Metrics,
}

impl Actor for VrrpInstance {
    type Msg = InstanceMsg;
    type State = InstanceState;
    type Arguments = InstanceArgs;

    async fn pre_start(
        &self,
        me: ActorRef<Self::Msg>,
        args: InstanceArgs,
    ) -> Result<InstanceState, ActorProcessingErr> {
        let InstanceArgs {
            unit,
            notifier,
            trackers,
            announcers,
            metrics,
        } = args;
        let addrs = Addresses::connect()?;
        let group_name = unit.group.as_ref().map(|_| unit.name.clone());
        let mut members = Vec::new();
        for (i, setup) in unit.members.into_iter().enumerate() {
            members.push(open_member(i, setup, group_name.clone(), &addrs, &me).await?);
        }
        let params: Vec<_> = members.iter().map(|m| m.setup.params.clone()).collect();
        let machine = match &unit.group {
            None => Machine::Single(Box::new(Router::new(
                params
                    .into_iter()
                    .next()
                    .ok_or("a unit without instances")?,
            ))),
            Some(_) => Machine::Group(SyncGroup::new(params)),
        };
        let mut readings = HashMap::new();
        let watch = flotilla_net::link::Links::connect()?;
        let mut subscriptions = Vec::new();
        for m in &members {
            for t in &m.setup.tracked {
                if let Source::Interface(name) = &t.source
                    && !readings.contains_key(&t.source)
                {
                    // An interface that cannot be read (absent) counts as down.
                    let up = watch.status(name).await.map(|s| s.is_up()).unwrap_or(false);
                    readings.insert(t.source.clone(), Reading::Up(up));
                }
            }
            for def in &m.setup.trackers {
                let source = def.source();
                if readings.contains_key(&source) {
                    continue;
                }
                let mut rx = trackers.subscribe(def).await;
                readings.insert(source.clone(), *rx.borrow_and_update());
                let me = me.clone();
                subscriptions.push(tokio::spawn(async move {
                    while rx.changed().await.is_ok() {
                        let r = *rx.borrow_and_update();
                        if me.cast(InstanceMsg::Track(source.clone(), r)).is_err() {
                            return;
                        }
                    }
                }));
            }
        }
        let mut st = InstanceState {
            name: unit.name,
            group: unit.group,
            machine,
            members,
            addrs,
            notifier,
            announcers,
            timer_gen: 0,
            readings,
            subscriptions,
            faults: Vec::new(),
            moves: MoveWatch::default(),
            metrics,
        };
        st.reconcile_leftovers().await;
        // Trackers first, so an instance whose interface is down starts in FAULT.
        st.apply_tracking(Instant::now());
        st.machine.start(Instant::now());
        st.run_actions(&me).await;
        Ok(st)
    }

    async fn handle(
        &self,
        me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut InstanceState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            InstanceMsg::Packet(i, r) => {
                st.receive(i, r);
                st.run_actions(&me).await;
            }
            InstanceMsg::Timer(generation) if generation == st.timer_gen => {
                st.machine.handle_timeout(Instant::now());
                st.run_actions(&me).await;
            }
            InstanceMsg::Timer(_) => {}
            InstanceMsg::Announced(i) => {
                st.machine.announced(Instant::now(), i);
                st.run_actions(&me).await;
            }
            InstanceMsg::Link { name, up } => {
                st.track(&me, Source::Interface(name), Reading::Up(up))
                    .await;
            }
            InstanceMsg::Track(source, reading) => {
                st.track(&me, source, reading).await;
            }
            InstanceMsg::Place {
                priority,
                take_over,
                owner,
            } => {
                let now = Instant::now();
                let lowered = st
                    .members
                    .iter()
                    .any(|m| priority < m.setup.params.priority);
                for m in &mut st.members {
                    m.setup.params.priority = priority;
                    m.status.priority = priority;
                }
                st.apply_tracking(now);
                st.machine.set_cluster_owner(owner);
                st.moves.placed(take_over);
                if lowered {
                    // No longer the owner: say so on the wire now, so the new owner takes
                    // over at once (see Router::announce).
                    st.machine.announce(now);
                }
                if take_over.is_some() {
                    tracing::info!(unit = %st.name, priority, ?take_over, "placement: taking over now");
                    st.machine.take_over(now);
                }
                st.run_actions(&me).await;
            }
            InstanceMsg::HoldBack(behind) => {
                match &behind {
                    Some(d) => {
                        tracing::warn!(unit = %st.name, director = %d, "held back: a higher-ranked director is master too (VRRP between us cut?)")
                    }
                    None => tracing::info!(unit = %st.name, "no longer held back"),
                }
                st.machine.hold_back(Instant::now(), behind.is_some());
                st.run_actions(&me).await;
            }
            InstanceMsg::Peers(peers) => {
                for (m, peers) in st.members.iter_mut().zip(peers) {
                    if m.setup.peers != peers && !m.setup.peers.is_empty() && !peers.is_empty() {
                        tracing::info!(instance = %m.setup.name, ?peers, "unicast peers changed");
                        m.setup.peers = peers;
                    }
                }
            }
            InstanceMsg::Stop(reply) => {
                st.machine.shutdown(Instant::now());
                st.run_actions(&me).await;
                let _ = reply.send(());
            }
            InstanceMsg::Status(reply) => {
                let statuses = (0..st.members.len())
                    .map(|i| {
                        let mut s = st.members[i].status.clone();
                        if let Some(r) = st.machine.router(i) {
                            s.state = r.state();
                            s.effective_priority = r.effective_priority();
                            s.master = r.master();
                        }
                        s.fault_by = st
                            .faults
                            .get(i)
                            .and_then(|f| f.as_ref().map(|f| f.to_string()));
                        s
                    })
                    .collect();
                let _ = reply.send(statuses);
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _me: ActorRef<Self::Msg>,
        st: &mut InstanceState,
    ) -> Result<(), ActorProcessingErr> {
        for m in &st.members {
            m.rx.abort();
        }
        for s in &st.subscriptions {
            s.abort();
        }
        Ok(())
    }
}

async fn open_member(
    index: usize,
    mut setup: InstanceSetup,
    group: Option<String>,
    addrs: &Addresses,
    me: &ActorRef<InstanceMsg>,
) -> Result<Member, ActorProcessingErr> {
    let mut ifindexes = HashMap::new();
    for dev in std::iter::once(&setup.interface).chain(setup.vips.iter().map(|(d, _)| d)) {
        if !ifindexes.contains_key(dev) {
            ifindexes.insert(dev.clone(), flotilla_net::ifindex(dev)?);
        }
    }
    for dev in setup
        .vips
        .iter()
        .filter(|(_, v)| v.addr.is_ipv4())
        .map(|(d, _)| d)
        .collect::<std::collections::BTreeSet<_>>()
    {
        match flotilla_net::vip::promote_secondaries(dev) {
            Ok(true) => {
                tracing::info!(interface = %dev, "promote_secondaries set (a released VIP must not take its subnet's other addresses along)")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(interface = %dev, error = %e, "cannot set promote_secondaries: releasing a subnet's first VIP may remove its other VIPs")
            }
        }
    }
    let delivery = if setup.peers.is_empty() {
        Delivery::Multicast
    } else {
        Delivery::Unicast
    };
    let (socket, source) = if setup.ipv6 {
        // RFC 5798 §5.1.2.1: IPv6 adverts leave from the link-local address.
        let s = match setup.source {
            Some(IpAddr::V6(src)) => VrrpSocketV6::open_from(&setup.interface, delivery, src)?,
            _ => VrrpSocketV6::open(&setup.interface, delivery)?,
        };
        s.only_vrid(setup.params.vrid)?;
        let src = IpAddr::V6(s.source());
        (Sock::V6(s), src)
    } else {
        let src = match setup.source {
            Some(IpAddr::V4(s)) => s,
            _ => {
                let idx = ifindexes.get(&setup.interface).copied().unwrap_or(0);
                primary_v4(addrs, idx, &setup).await?
            }
        };
        let bind = setup.source.map(|_| src);
        let s = VrrpSocketV4::open_from(&setup.interface, delivery, bind)?;
        s.only_vrid(setup.params.vrid)?;
        (Sock::V4(s), IpAddr::V4(src))
    };
    setup.params.source = source;
    let socket = Arc::new(socket);
    let rx = {
        let socket = socket.clone();
        let me = me.clone();
        tokio::spawn(async move {
            loop {
                match socket.recv().await {
                    Ok(Some(p)) => {
                        if me.cast(InstanceMsg::Packet(index, p)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "VRRP socket failed");
                        return;
                    }
                }
            }
        })
    };
    let status = InstanceStatus {
        name: setup.name.clone(),
        group,
        interface: setup.interface.clone(),
        vrid: setup.params.vrid,
        vips: setup.vips.iter().map(|(_, v)| v.addr).collect(),
        state: State::Init,
        priority: setup.params.priority,
        effective_priority: setup.params.priority,
        master: None,
        since: Instant::now(),
        reason: None,
        fault_by: None,
        address_list_errors: 0,
        transitions: 0,
        adverts_sent: 0,
        adverts_received: 0,
        dropped: HashMap::new(),
    };
    tracing::info!(
        instance = %setup.name,
        group = ?status.group,
        interface = %setup.interface,
        vrid = setup.params.vrid,
        priority = setup.params.priority,
        %source,
        unicast_peers = setup.peers.len(),
        "starting"
    );
    Ok(Member {
        setup,
        socket,
        ifindexes,
        rx,
        status,
    })
}

impl InstanceState {
    /// A tracker's new reading, if any member tracks it.
    async fn track(&mut self, me: &ActorRef<InstanceMsg>, source: Source, reading: Reading) {
        let tracked = self
            .members
            .iter()
            .any(|m| m.setup.tracked.iter().any(|t| t.source == source));
        if tracked && self.readings.insert(source.clone(), reading) != Some(reading) {
            tracing::info!(unit = %self.name, tracker = %source, ?reading, "tracker changed");
            self.apply_tracking(Instant::now());
            self.run_actions(me).await;
        }
    }

    /// Feeds every member's tracker verdict to the state machine.
    fn apply_tracking(&mut self, now: Instant) {
        self.faults.resize(self.members.len(), None);
        for (i, m) in self.members.iter().enumerate() {
            let v = crate::track::evaluate(&m.setup.tracked, &self.readings);
            if v.fault != self.faults[i] {
                match &v.fault {
                    Some(why) => {
                        tracing::info!(instance = %m.setup.name, tracker = %why, "held in FAULT by a tracker")
                    }
                    None => {
                        tracing::info!(instance = %m.setup.name, "no tracker holds it in FAULT")
                    }
                }
            }
            let priority = i32::from(m.setup.params.priority) + v.delta;
            self.machine.track(now, i, v.fault.is_some(), priority);
            self.faults[i] = v.fault;
        }
    }

    /// A crashed predecessor (flotilla or keepalived) may have left our VIPs on the
    /// interfaces. We start as backup, so they go now; if we become master they come back
    /// through the normal path. The owner (priority 255) is master at once and adopts them.
    async fn reconcile_leftovers(&mut self) {
        for m in &self.members {
            if m.setup.params.priority == OWNER_PRIORITY {
                continue;
            }
            for (dev, vip) in &m.setup.vips {
                let idx = m.ifindexes.get(dev).copied().unwrap_or(0);
                match self.addrs.remove(idx, vip.addr, vip.prefix).await {
                    Ok(Removed::Removed) => tracing::warn!(
                        instance = %m.setup.name,
                        vip = %vip.addr,
                        "removed a VIP left by a previous run (we start as backup)"
                    ),
                    Ok(Removed::NotPresent) => {}
                    Err(e) => {
                        tracing::error!(instance = %m.setup.name, vip = %vip.addr, error = %e, "cannot check for a leftover VIP")
                    }
                }
            }
        }
    }

    /// RFC 5798 §7.1 checks that need the IP header, then the wire checks, then the state
    /// machine's own (version, interval, authentication).
    fn receive(&mut self, i: usize, r: Packet) {
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        if r.src == m.setup.params.source {
            return;
        }
        let drop = |m: &mut Member, why: &'static str| {
            *m.status.dropped.entry(why).or_insert(0) += 1;
        };
        let multicast = r.dst == multicast_group(m.setup.ipv6);
        if multicast != m.setup.peers.is_empty() {
            // keepalived.md §3.7: a multicast advert on a unicast instance (or the reverse).
            return drop(m, "delivery_mismatch");
        }
        if multicast && r.ttl != TTL {
            return drop(m, "ttl");
        }
        let advert = match Advert::parse(&r.payload, r.src, r.dst, ChecksumMode::PseudoHeader) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(instance = %m.setup.name, from = %r.src, error = %e, "bad advert");
                return drop(m, "malformed");
            }
        };
        if advert.vrid != m.setup.params.vrid {
            return;
        }
        if !multicast && m.setup.check_unicast_src && !m.setup.peers.contains(&r.src) {
            return drop(m, "unknown_peer");
        }
        m.status.adverts_received += 1;
        // keepalived.md §3: a different address list is logged and counted, not dropped
        // (keepalived's addr_list_err); it usually means the two configs disagree.
        if !m.setup.skip_check_adv_addr
            && !same_addresses(&advert.addresses, &m.setup.params.addresses)
        {
            m.status.address_list_errors += 1;
            if m.status.address_list_errors == 1 {
                tracing::warn!(instance = %m.setup.name, from = %r.src, advertised = ?advert.addresses, "the advert's address list differs from ours (check both configurations)");
            }
        }
        let now = Instant::now();
        if let Err(why) = self.machine.handle_advert(now, i, r.src, &advert) {
            tracing::debug!(instance = %m.setup.name, from = %r.src, %why, "advert dropped");
            drop(
                m,
                match why {
                    Drop::OtherVrid => "vrid",
                    Drop::Version => "version",
                    Drop::Auth => "auth",
                    Drop::Interval => "interval",
                    Drop::NotListening => "not_listening",
                },
            );
        } else {
            let ours = self
                .machine
                .router(i)
                .map(Router::effective_priority)
                .unwrap_or(0);
            self.moves
                .advert(now, advert.priority, ours, m.setup.params.preempt);
        }
    }

    async fn run_actions(&mut self, me: &ActorRef<InstanceMsg>) {
        while let Some(out) = self.machine.poll() {
            match out {
                Out::Member(i, action) => self.member_action(me, i, action).await,
                Out::Group { to } => {
                    tracing::info!(group = %self.name, ?to, "sync group transition");
                    if let Some(n) = &self.group {
                        let prio = self
                            .machine
                            .router(0)
                            .map(Router::effective_priority)
                            .unwrap_or(0);
                        notify_state(&self.notifier, n, "GROUP", &self.name, to, prio);
                    }
                }
            }
        }
        // Every action ran: a master's VIPs are on its interfaces now.
        let master = (0..self.members.len()).all(|i| {
            self.machine
                .router(i)
                .is_some_and(|r| r.state() == State::Master)
        });
        if let Some(took) = self.moves.settled(Instant::now(), master) {
            tracing::info!(unit = %self.name, kind = took.kind.as_str(), outage = ?took.outage, "unit taken over");
            self.metrics.took(&self.name, &took);
        }
        if let Some(at) = self.machine.poll_timeout() {
            self.timer_gen += 1;
            let generation = self.timer_gen;
            let wait = at.saturating_duration_since(Instant::now());
            me.send_after(wait, move || InstanceMsg::Timer(generation));
        }
    }

    async fn member_action(&mut self, me: &ActorRef<InstanceMsg>, i: usize, action: Action) {
        let router = self.machine.router(i);
        let prio = router.map(Router::effective_priority).unwrap_or(0);
        let awaits_garp = router.is_some_and(Router::advert_awaits_garp);
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        match action {
            Action::SendAdvert(a) => send_advert(m, &a).await,
            Action::AddAddresses => {
                for (dev, vip) in &m.setup.vips {
                    let idx = m.ifindexes.get(dev).copied().unwrap_or(0);
                    if let Err(e) = self.addrs.add(idx, vip).await {
                        tracing::error!(instance = %m.setup.name, vip = %vip.addr, error = %e, "cannot add VIP");
                    }
                }
            }
            Action::RemoveAddresses => {
                for (dev, ips) in by_device(&m.setup) {
                    self.announcers.send(&dev, Announce::Cancel(ips));
                }
                for (dev, vip) in &m.setup.vips {
                    let idx = m.ifindexes.get(dev).copied().unwrap_or(0);
                    if let Err(e) = self.addrs.remove(idx, vip.addr, vip.prefix).await {
                        tracing::error!(instance = %m.setup.name, vip = %vip.addr, error = %e, "cannot remove VIP");
                    }
                }
            }
            Action::SendGarp { count } => {
                // After a takeover the advert waits for the first round on every interface
                // (the last of these to be dropped tells the actor).
                let all = awaits_garp.then(|| {
                    let me = me.clone();
                    Arc::new(Sent::new(move || {
                        let _ = me.cast(InstanceMsg::Announced(i));
                    }))
                });
                for (dev, ips) in by_device(&m.setup) {
                    let sent = all.clone().map(|all| Sent::new(move || drop(all)));
                    self.announcers
                        .send(&dev, Announce::Burst(ips, count, sent));
                }
            }
            Action::StateChanged { from, to, reason } => {
                if to == State::Master {
                    self.moves.member_master(&reason);
                }
                m.status.since = Instant::now();
                m.status.reason = Some(reason);
                m.status.transitions += 1;
                tracing::info!(instance = %m.setup.name, ?from, ?to, ?reason, "transition");
                notify_state(
                    &self.notifier,
                    &m.setup.notify,
                    "INSTANCE",
                    &m.setup.name,
                    to,
                    prio,
                );
            }
            Action::MasterRxLowerPriority { from, priority } => {
                tracing::info!(instance = %m.setup.name, %from, priority, "lower-priority advert while master; answered");
                if let Some(s) = &m.setup.notify.master_rx_lower_pri {
                    let _ = self.notifier.cast(NotifyMsg::Run {
                        script: s.clone(),
                        extra: Vec::new(),
                    });
                }
            }
        }
    }
}

async fn send_advert(m: &mut Member, a: &Advert) {
    let dsts: Vec<IpAddr> = if m.setup.peers.is_empty() {
        vec![multicast_group(m.setup.ipv6)]
    } else {
        m.setup.peers.clone()
    };
    for dst in dsts {
        let bytes = a.emit(m.setup.params.source, dst, ChecksumMode::PseudoHeader);
        match m.socket.send(&bytes, dst).await {
            Ok(()) => m.status.adverts_sent += 1,
            Err(e) => tracing::warn!(instance = %m.setup.name, %dst, error = %e, "advert not sent"),
        }
    }
}

/// The same addresses in any order.
fn same_addresses(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// The instance's addresses grouped by the interface they live on, where they are announced.
fn by_device(setup: &InstanceSetup) -> Vec<(String, Vec<IpAddr>)> {
    let mut out: Vec<(String, Vec<IpAddr>)> = Vec::new();
    for (dev, vip) in &setup.vips {
        match out.iter_mut().find(|(d, _)| d == dev) {
            Some((_, ips)) => ips.push(vip.addr),
            None => out.push((dev.clone(), vec![vip.addr])),
        }
    }
    out
}

/// keepalived's contract: the state's own script, then `notify KIND NAME STATE PRIO`.
fn notify_state(
    notifier: &ActorRef<NotifyMsg>,
    n: &Notify,
    kind: &str,
    name: &str,
    to: State,
    priority: u8,
) {
    let (specific, word) = match to {
        State::Master => (&n.master, "MASTER"),
        State::Backup => (&n.backup, "BACKUP"),
        State::Fault => (&n.fault, "FAULT"),
        State::Init => (&n.stop, "STOP"),
    };
    if let Some(s) = specific {
        let _ = notifier.cast(NotifyMsg::Run {
            script: s.clone(),
            extra: Vec::new(),
        });
    }
    if let Some(s) = &n.any {
        let _ = notifier.cast(NotifyMsg::Run {
            script: s.clone(),
            extra: vec![kind.into(), name.into(), word.into(), priority.to_string()],
        });
    }
}

/// The interface's primary IPv4 address: the source the kernel uses, which equal-priority
/// elections compare (keepalived.md §3.3).
async fn primary_v4(
    addrs: &Addresses,
    ifindex: u32,
    setup: &InstanceSetup,
) -> Result<Ipv4Addr, ActorProcessingErr> {
    let vips: Vec<IpAddr> = setup.vips.iter().map(|(_, v)| v.addr).collect();
    for l in addrs.list(ifindex).await? {
        if let IpAddr::V4(a) = l.addr
            && !vips.contains(&l.addr)
        {
            return Ok(a);
        }
    }
    Err(format!(
        "interface {} has no IPv4 address to send adverts from (set unicast_src_ip or mcast_src_ip)",
        setup.interface
    )
    .into())
}

/// How long to wait for a unit to release on shutdown.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
