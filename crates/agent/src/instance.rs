//! One `vrrp_instance`: an actor around [`flotilla_vrrp::machine::Router`]. It feeds the state
//! machine received adverts (TTL and wire checks first) and timer expiries, and carries out
//! what comes back: adverts on the raw socket, VIPs through rtnetlink, gratuitous ARPs, notify
//! scripts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_net::garp::Announcer;
use flotilla_net::vip::Addresses;
use flotilla_net::vrrp_socket::{Delivery, Received, VrrpSocketV4};
use flotilla_vrrp::machine::{Action, Reason, Router, State};
use flotilla_vrrp::wire::{Advert, ChecksumMode, MULTICAST_V4, TTL};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;

use crate::notifier::NotifyMsg;
use crate::setup::InstanceSetup;

pub enum InstanceMsg {
    /// A datagram from the raw socket.
    Packet(Received),
    /// A timer armed with this generation fired (older generations are stale).
    Timer(u64),
    /// Release (priority 0, VIPs removed) and report back.
    Stop(RpcReplyPort<()>),
    Status(RpcReplyPort<InstanceStatus>),
}

/// What `flotilla status` shows of an instance.
#[derive(Debug, Clone)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub vips: Vec<IpAddr>,
    pub state: State,
    pub priority: u8,
    pub effective_priority: u8,
    pub master: Option<IpAddr>,
    pub since: Instant,
    pub reason: Option<Reason>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub dropped: HashMap<&'static str, u64>,
}

pub struct VrrpInstance;

pub struct InstanceArgs {
    pub setup: InstanceSetup,
    pub notifier: ActorRef<NotifyMsg>,
}

pub struct InstanceState {
    setup: InstanceSetup,
    router: Router,
    socket: Arc<VrrpSocketV4>,
    source: Ipv4Addr,
    addrs: Addresses,
    announcer: Option<Announcer>,
    ifindexes: HashMap<String, u32>,
    notifier: ActorRef<NotifyMsg>,
    rx: JoinHandle<()>,
    timer_gen: u64,
    status: InstanceStatus,
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
            mut setup,
            notifier,
        } = args;
        let addrs = Addresses::connect()?;
        let mut ifindexes = HashMap::new();
        for dev in std::iter::once(&setup.interface).chain(setup.vips.iter().map(|(d, _)| d)) {
            if !ifindexes.contains_key(dev) {
                ifindexes.insert(dev.clone(), flotilla_net::ifindex(dev)?);
            }
        }
        let source = match setup.source {
            Some(s) => s,
            None => primary_v4(&addrs, ifindexes[&setup.interface], &setup).await?,
        };
        setup.params.source = IpAddr::V4(source);
        let delivery = if setup.peers.is_empty() {
            Delivery::Multicast
        } else {
            Delivery::Unicast
        };
        let socket = Arc::new(VrrpSocketV4::open_from(
            &setup.interface,
            delivery,
            setup.source,
        )?);
        let announcer = match Announcer::open(&setup.interface) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(instance = %setup.name, error = %e, "gratuitous ARP unavailable");
                None
            }
        };
        let rx = {
            let socket = socket.clone();
            let me = me.clone();
            tokio::spawn(async move {
                loop {
                    match socket.recv().await {
                        Ok(Ok(r)) => {
                            if me.cast(InstanceMsg::Packet(r)).is_err() {
                                return;
                            }
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "unusable datagram"),
                        Err(e) => {
                            tracing::error!(error = %e, "VRRP socket failed");
                            return;
                        }
                    }
                }
            })
        };
        let router = Router::new(setup.params.clone());
        let status = InstanceStatus {
            name: setup.name.clone(),
            interface: setup.interface.clone(),
            vrid: setup.params.vrid,
            vips: setup.vips.iter().map(|(_, v)| v.addr).collect(),
            state: State::Init,
            priority: setup.params.priority,
            effective_priority: setup.params.priority,
            master: None,
            since: Instant::now(),
            reason: None,
            adverts_sent: 0,
            adverts_received: 0,
            dropped: HashMap::new(),
        };
        tracing::info!(
            instance = %setup.name,
            interface = %setup.interface,
            vrid = setup.params.vrid,
            priority = setup.params.priority,
            %source,
            unicast_peers = setup.peers.len(),
            "starting"
        );
        let mut st = InstanceState {
            setup,
            router,
            socket,
            source,
            addrs,
            announcer,
            ifindexes,
            notifier,
            rx,
            timer_gen: 0,
            status,
        };
        st.reconcile_leftovers().await;
        st.router.start(Instant::now());
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
            InstanceMsg::Packet(r) => {
                st.receive(r);
                st.run_actions(&me).await;
            }
            InstanceMsg::Timer(generation) if generation == st.timer_gen => {
                st.router.handle_timeout(Instant::now());
                st.run_actions(&me).await;
            }
            InstanceMsg::Timer(_) => {}
            InstanceMsg::Stop(reply) => {
                st.router.shutdown(Instant::now());
                st.run_actions(&me).await;
                let _ = reply.send(());
            }
            InstanceMsg::Status(reply) => {
                st.status.state = st.router.state();
                st.status.effective_priority = st.router.effective_priority();
                st.status.master = st.router.master();
                let _ = reply.send(st.status.clone());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _me: ActorRef<Self::Msg>,
        st: &mut InstanceState,
    ) -> Result<(), ActorProcessingErr> {
        st.rx.abort();
        Ok(())
    }
}

impl InstanceState {
    /// A crashed predecessor (flotilla or keepalived) may have left our VIPs on the
    /// interfaces. We start as backup, so they go now; if we become master they come back
    /// through the normal path. The owner (priority 255) is master at once and adopts them.
    async fn reconcile_leftovers(&mut self) {
        if self.setup.params.priority == flotilla_vrrp::machine::OWNER_PRIORITY {
            return;
        }
        for (dev, vip) in &self.setup.vips {
            let idx = self.ifindexes.get(dev).copied().unwrap_or(0);
            match self.addrs.remove(idx, vip.addr, vip.prefix).await {
                Ok(flotilla_net::vip::Removed::Removed) => tracing::warn!(
                    instance = %self.setup.name,
                    vip = %vip.addr,
                    "removed a VIP left by a previous run (we start as backup)"
                ),
                Ok(flotilla_net::vip::Removed::NotPresent) => {}
                Err(e) => {
                    tracing::error!(instance = %self.setup.name, vip = %vip.addr, error = %e, "cannot check for a leftover VIP")
                }
            }
        }
    }

    fn drop_packet(&mut self, why: &'static str) {
        *self.status.dropped.entry(why).or_insert(0) += 1;
    }

    /// RFC 5798 §7.1 checks that need the IP header, then the wire checks, then the state
    /// machine's own (version, interval, authentication).
    fn receive(&mut self, r: Received) {
        if r.src == self.source {
            return;
        }
        let multicast = r.dst == MULTICAST_V4;
        if multicast != self.setup.peers.is_empty() {
            // keepalived.md §3.7: a multicast advert on a unicast instance (or the reverse).
            return self.drop_packet("delivery_mismatch");
        }
        if multicast && r.ttl != TTL {
            return self.drop_packet("ttl");
        }
        let advert = match Advert::parse(
            &r.payload,
            IpAddr::V4(r.src),
            IpAddr::V4(r.dst),
            ChecksumMode::PseudoHeader,
        ) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(instance = %self.setup.name, from = %r.src, error = %e, "bad advert");
                return self.drop_packet("malformed");
            }
        };
        if advert.vrid != self.setup.params.vrid {
            return;
        }
        self.status.adverts_received += 1;
        if let Err(why) = self
            .router
            .handle_advert(Instant::now(), IpAddr::V4(r.src), &advert)
        {
            tracing::debug!(instance = %self.setup.name, from = %r.src, %why, "advert dropped");
            self.drop_packet(match why {
                flotilla_vrrp::machine::Drop::OtherVrid => "vrid",
                flotilla_vrrp::machine::Drop::Version => "version",
                flotilla_vrrp::machine::Drop::Auth => "auth",
                flotilla_vrrp::machine::Drop::Interval => "interval",
                flotilla_vrrp::machine::Drop::NotListening => "not_listening",
            });
        }
    }

    async fn run_actions(&mut self, me: &ActorRef<InstanceMsg>) {
        while let Some(action) = self.router.poll_action() {
            match action {
                Action::SendAdvert(a) => self.send_advert(&a).await,
                Action::AddAddresses => {
                    for (dev, vip) in &self.setup.vips {
                        let idx = self.ifindexes.get(dev).copied().unwrap_or(0);
                        if let Err(e) = self.addrs.add(idx, vip).await {
                            tracing::error!(instance = %self.setup.name, vip = %vip.addr, error = %e, "cannot add VIP");
                        }
                    }
                }
                Action::RemoveAddresses => {
                    for (dev, vip) in &self.setup.vips {
                        let idx = self.ifindexes.get(dev).copied().unwrap_or(0);
                        if let Err(e) = self.addrs.remove(idx, vip.addr, vip.prefix).await {
                            tracing::error!(instance = %self.setup.name, vip = %vip.addr, error = %e, "cannot remove VIP");
                        }
                    }
                }
                Action::SendGarp { count } => self.garp(count),
                Action::StateChanged { from, to, reason } => {
                    self.status.since = Instant::now();
                    self.status.reason = Some(reason);
                    tracing::info!(instance = %self.setup.name, ?from, ?to, ?reason, "transition");
                    self.notify_state(to);
                }
                Action::MasterRxLowerPriority { from, priority } => {
                    tracing::info!(instance = %self.setup.name, %from, priority, "lower-priority advert while master; answered");
                    if let Some(s) = &self.setup.notify.master_rx_lower_pri {
                        let _ = self.notifier.cast(NotifyMsg::Run {
                            script: s.clone(),
                            extra: Vec::new(),
                        });
                    }
                }
            }
        }
        if let Some(at) = self.router.poll_timeout() {
            self.timer_gen += 1;
            let generation = self.timer_gen;
            let wait = at.saturating_duration_since(Instant::now());
            me.send_after(wait, move || InstanceMsg::Timer(generation));
        }
    }

    async fn send_advert(&mut self, a: &Advert) {
        let dsts: Vec<Ipv4Addr> = if self.setup.peers.is_empty() {
            vec![MULTICAST_V4]
        } else {
            self.setup.peers.clone()
        };
        for dst in dsts {
            let bytes = a.emit(
                IpAddr::V4(self.source),
                IpAddr::V4(dst),
                ChecksumMode::PseudoHeader,
            );
            match self.socket.send(&bytes, dst).await {
                Ok(()) => self.status.adverts_sent += 1,
                Err(e) => {
                    tracing::warn!(instance = %self.setup.name, %dst, error = %e, "advert not sent")
                }
            }
        }
    }

    fn garp(&self, count: u32) {
        let Some(announcer) = &self.announcer else {
            return;
        };
        for _ in 0..count {
            for (_, vip) in &self.setup.vips {
                if let Err(e) = announcer.announce(vip.addr) {
                    tracing::debug!(vip = %vip.addr, error = %e, "gratuitous ARP not sent");
                }
            }
        }
    }

    /// keepalived's contract: the state's own script, then `notify INSTANCE NAME STATE PRIO`.
    fn notify_state(&self, to: State) {
        let n = &self.setup.notify;
        let (specific, word) = match to {
            State::Master => (&n.master, "MASTER"),
            State::Backup => (&n.backup, "BACKUP"),
            State::Fault => (&n.fault, "FAULT"),
            State::Init => (&n.stop, "STOP"),
        };
        if let Some(s) = specific {
            let _ = self.notifier.cast(NotifyMsg::Run {
                script: s.clone(),
                extra: Vec::new(),
            });
        }
        if let Some(s) = &n.any {
            let _ = self.notifier.cast(NotifyMsg::Run {
                script: s.clone(),
                extra: vec![
                    "INSTANCE".into(),
                    self.setup.name.clone(),
                    word.into(),
                    self.router.effective_priority().to_string(),
                ],
            });
        }
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

/// How long to wait for instances to release on shutdown.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
