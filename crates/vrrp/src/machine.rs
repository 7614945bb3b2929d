//! One VRRP router for one virtual router id, per RFC 5798 §6.4 with keepalived's
//! behaviours where they differ (keepalived.md §3). Sans-IO: the caller feeds adverts,
//! timer expiries, tracker results and shutdown, each with the current time, and drains
//! [`Action`]s and the next deadline.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::wire::{Advert, Auth, Version};

/// Priority of the address owner (RFC 5798 §5.2.4).
pub const OWNER_PRIORITY: u8 = 255;

/// The router's state (RFC 5798 §6.4, plus keepalived's FAULT and a stopped state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or stopped.
    Init,
    Backup,
    Master,
    /// A tracked interface, script or file says this router must not serve.
    Fault,
}

/// Why the state changed; what `flotilla status` shows as the last transition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Started as backup and waiting for a master.
    Startup,
    /// The address owner (priority 255) takes over at once (RFC 5798 §6.4.1).
    Owner,
    /// No advert from a master within Master_Down_Interval.
    MasterDown,
    /// The master sent a priority-0 advert (it is stopping); we waited only Skew_Time.
    MasterReleased,
    /// An advert with a higher priority arrived.
    HigherPriority {
        from: IpAddr,
        priority: u8,
    },
    /// An advert with our priority came from a higher address (RFC 5798 §6.4.3).
    EqualPriorityHigherAddress {
        from: IpAddr,
    },
    /// A tracker reported a fault.
    Fault,
    /// The fault cleared.
    FaultCleared,
    /// Another member of the sync group changed state and this one followed.
    SyncGroup,
    Shutdown,
    /// The cluster moved the unit here (a planned move, or its owner confirmed dead by the
    /// directors' heartbeats): master at once, without waiting for Master_Down_Interval.
    Takeover,
    /// The cluster saw another director, ranked above this one for the unit and alive, be
    /// master of it too (the VRRP path between them is cut): this one stands back.
    HeldBack,
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advert now with this priority (0 = "I am releasing").
    SendAdvert(Advert),
    /// Add the virtual addresses (becoming master).
    AddAddresses,
    /// Remove the virtual addresses (leaving master).
    RemoveAddresses,
    /// Send `count` gratuitous ARPs / unsolicited NAs for every virtual address.
    SendGarp { count: u32 },
    /// The state changed.
    StateChanged {
        from: State,
        to: State,
        reason: Reason,
    },
    /// As master, an advert with a lower priority arrived (keepalived's
    /// `notify_master_rx_lower_pri`): another router thinks it is master; we answered.
    MasterRxLowerPriority { from: IpAddr, priority: u8 },
}

/// Gratuitous ARP / NA schedule (keepalived.md §3.6). Defaults: 5 at once, 5 more after 5 s,
/// no refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpPolicy {
    pub master_repeat: u32,
    /// Delay of the second burst; zero disables it.
    pub master_delay: Duration,
    /// Periodic refresh while master; zero disables it.
    pub master_refresh: Duration,
    pub master_refresh_repeat: u32,
    pub lower_prio_repeat: u32,
    pub lower_prio_delay: Duration,
}

impl Default for GarpPolicy {
    fn default() -> Self {
        GarpPolicy {
            master_repeat: 5,
            master_delay: Duration::from_secs(5),
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
            lower_prio_repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
        }
    }
}

/// The configuration of one router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub vrid: u8,
    pub version: Version,
    /// Configured priority; 255 makes this router the address owner.
    pub priority: u8,
    /// Our advertisement interval in centiseconds (v2: a multiple of 100).
    pub advert_interval_cs: u16,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// The advertised virtual addresses.
    pub addresses: Vec<IpAddr>,
    /// Our source address, compared with a peer's at equal priority.
    pub source: IpAddr,
    pub auth: Auth,
    pub garp: GarpPolicy,
    /// keepalived `lower_prio_no_advert`: as master, do not answer a lower-priority advert.
    pub lower_prio_no_advert: bool,
    /// keepalived `higher_prio_send_advert`: send one advert before yielding to a higher one.
    pub higher_prio_send_advert: bool,
    /// Adverts missed before the master is declared down (RFC: 3; keepalived
    /// `down_timer_adverts`, 1–100).
    pub down_timer_adverts: u8,
    /// Fleet mode: on a takeover the cluster ordered ([`Router::take_over`]), the addresses
    /// go up and the gratuitous ARPs out first, and the first advert — on which the old
    /// master lets go of the addresses — follows when the caller reports the first GARP
    /// round sent ([`Router::announced`]), or this much later at the latest. With the advert
    /// first (RFC order, zero here) the old master drops the addresses a few milliseconds
    /// before the clients hear the new owner's GARP, and a request sent in between is lost.
    pub takeover_advert_delay: Duration,
    /// Fleet mode: however early the GARP is reported sent, that advert does not go before
    /// this much after the takeover (at most [`Self::takeover_advert_delay`]). The clients
    /// already send to the new owner; the old one keeps the addresses meanwhile, so its
    /// replies to requests it already has still leave (a host does not send from an address
    /// it no longer has).
    pub takeover_advert_min: Duration,
}

impl Params {
    /// A router with RFC defaults for the given id, priority, interval and addresses.
    pub fn new(
        vrid: u8,
        version: Version,
        priority: u8,
        advert_interval_cs: u16,
        source: IpAddr,
    ) -> Self {
        Params {
            vrid,
            version,
            priority,
            advert_interval_cs,
            preempt: true,
            preempt_delay: Duration::ZERO,
            addresses: Vec::new(),
            source,
            auth: Auth::None,
            garp: GarpPolicy::default(),
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            down_timer_adverts: 3,
            takeover_advert_delay: Duration::ZERO,
            takeover_advert_min: Duration::ZERO,
        }
    }
}

/// The state machine of one virtual router on one director.
#[derive(Debug, Clone)]
pub struct Router {
    params: Params,
    state: State,
    /// Priority after trackers, clamped to 1–254 (an owner stays 255).
    effective: u8,
    /// A tracker of this router says fault.
    fault: bool,
    /// Its sync group is in fault because of another member.
    group_fault: bool,
    /// Member of a sync group: an expired master-down timer only marks the wish to become
    /// master; the group decides (keepalived.md §2.3).
    gated: bool,
    wants_master: bool,
    /// Master_Adver_Interval: a v3 backup adopts the master's (RFC 5798 §6.4.2).
    master_interval_cs: u16,
    master: Option<IpAddr>,
    preempt_until: Option<Instant>,
    /// The master's last advert had priority 0: it is stopping.
    released: bool,
    /// The cluster asked for this router to be master ([`Router::take_over`]).
    takeover: bool,
    /// When this router became master on the cluster's word (a planned move). For one
    /// advert interval after that it advertises one above its priority (see
    /// [`Router::advert_priority`]).
    took_over_at: Option<Instant>,
    /// The cluster places this router's unit here (fleet mode, rank 0): a lower-priority
    /// master is preempted at once, not by timeout (see [`Router::backup_rx`]).
    cluster_owner: bool,
    /// Fleet mode: stay backup, whatever the timers say (see [`Router::hold_back`]).
    held_back: bool,
    advert_at: Option<Instant>,
    /// The first advert after a takeover waits for the first GARP round
    /// ([`Params::takeover_advert_delay`]).
    advert_awaits_garp: bool,
    /// That advert has not gone yet: nothing else sends one early.
    takeover_advert_pending: bool,
    master_down_at: Option<Instant>,
    garp_second_at: Option<Instant>,
    garp_refresh_at: Option<Instant>,
    garp_lower_at: Option<Instant>,
    actions: VecDeque<Action>,
}

impl Router {
    pub fn new(params: Params) -> Self {
        let effective = params.priority;
        let master_interval_cs = params.advert_interval_cs;
        Router {
            params,
            state: State::Init,
            effective,
            fault: false,
            group_fault: false,
            gated: false,
            wants_master: false,
            master_interval_cs,
            master: None,
            preempt_until: None,
            released: false,
            takeover: false,
            took_over_at: None,
            cluster_owner: false,
            held_back: false,
            advert_at: None,
            advert_awaits_garp: false,
            takeover_advert_pending: false,
            master_down_at: None,
            garp_second_at: None,
            garp_refresh_at: None,
            garp_lower_at: None,
            actions: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The priority this router advertises now.
    pub fn effective_priority(&self) -> u8 {
        self.effective
    }

    /// The current master's address as last seen (ours when we are master).
    pub fn master(&self) -> Option<IpAddr> {
        self.master
    }

    fn is_owner(&self) -> bool {
        self.params.priority == OWNER_PRIORITY
    }

    /// Skew_Time: RFC 3768 §6.1 for v2 ((256−P)/256 s), RFC 5798 §6.1 for v3
    /// ((256−P)·Master_Adver_Interval/256).
    pub fn skew(&self) -> Duration {
        let p = u64::from(if self.is_owner() {
            OWNER_PRIORITY
        } else {
            self.effective
        });
        match self.params.version {
            Version::V2 => Duration::from_micros((256 - p) * 1_000_000 / 256),
            Version::V3 => {
                Duration::from_micros((256 - p) * u64::from(self.master_interval_cs) * 10_000 / 256)
            }
        }
    }

    /// Master_Down_Interval = down_timer_adverts × Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        interval(self.master_interval_cs) * u32::from(self.params.down_timer_adverts.max(1))
            + self.skew()
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Router::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.advert_at,
            self.master_down_at,
            self.garp_second_at,
            self.garp_refresh_at,
            self.garp_lower_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Starts the router: FAULT if a tracker already failed, MASTER at once for the address
    /// owner, otherwise BACKUP waiting one Master_Down_Interval (keepalived.md §3.2).
    pub fn start(&mut self, now: Instant) {
        if self.state != State::Init {
            return;
        }
        if self.fault || self.group_fault {
            self.transition(State::Fault, Reason::Fault);
        } else if self.is_owner() && !self.gated {
            self.become_master(now, Reason::Owner);
        } else {
            self.become_backup(now, Reason::Startup);
            if self.is_owner() {
                // A gated owner asks its group at once instead of waiting.
                self.master_down_at = Some(now);
            }
        }
    }

    /// Stops the router. A master sends a priority-0 advert before it releases the addresses,
    /// so a backup takes over after Skew_Time only (keepalived.md §3.5).
    pub fn shutdown(&mut self, now: Instant) {
        if self.state == State::Master {
            self.send_advert(now, 0);
            self.actions.push_back(Action::RemoveAddresses);
        }
        if self.state != State::Init {
            self.transition(State::Init, Reason::Shutdown);
        }
        self.clear_timers();
    }

    /// A tracker result: `fault` takes the router out of service (a master sends priority 0
    /// first), clearing it returns to BACKUP.
    pub fn set_fault(&mut self, now: Instant, fault: bool) {
        self.fault = fault;
        self.apply_fault(now, Reason::Fault);
    }

    /// Whether a tracker of this router (not its group) reports a fault.
    pub fn own_fault(&self) -> bool {
        self.fault
    }

    fn apply_fault(&mut self, now: Instant, reason: Reason) {
        let faulty = self.fault || self.group_fault;
        match (faulty, self.state) {
            (_, State::Init) => {}
            (true, State::Master) => {
                self.send_advert(now, 0);
                self.actions.push_back(Action::RemoveAddresses);
                self.clear_timers();
                self.master = None;
                self.transition(State::Fault, reason);
            }
            (true, State::Backup) => {
                self.clear_timers();
                self.master = None;
                self.transition(State::Fault, reason);
            }
            (false, State::Fault) => {
                if self.is_owner() && !self.gated {
                    self.become_master(now, Reason::Owner);
                } else {
                    self.become_backup(now, Reason::FaultCleared);
                }
            }
            _ => {}
        }
    }

    /// Sets the priority after trackers (configured priority ± weights). It is clamped to
    /// 1–254; the owner's 255 never changes (keepalived.md §2.4).
    pub fn set_effective_priority(&mut self, priority: i32) {
        if self.is_owner() {
            return;
        }
        self.effective = priority.clamp(1, 254) as u8;
    }

    /// An advert that passed the wire checks and is for our VRID. Checks that need our
    /// configuration (version, v2 interval and authentication) are done here
    /// (keepalived.md §3.7); the error says why the advert was dropped.
    pub fn handle_advert(
        &mut self,
        now: Instant,
        from: IpAddr,
        advert: &Advert,
    ) -> Result<(), Drop> {
        if advert.vrid != self.params.vrid {
            return Err(Drop::OtherVrid);
        }
        if advert.version != self.params.version {
            return Err(Drop::Version);
        }
        if advert.version == Version::V2 {
            if advert.auth != self.params.auth {
                return Err(Drop::Auth);
            }
            // keepalived drops a v2 advert with another interval silently, "to prevent
            // concurrent VRID running" (keepalived.md §3.7).
            if advert.interval_cs != self.params.advert_interval_cs {
                return Err(Drop::Interval);
            }
        }
        match self.state {
            State::Init | State::Fault => Err(Drop::NotListening),
            State::Backup => {
                self.backup_rx(now, from, advert);
                Ok(())
            }
            State::Master => {
                self.master_rx(now, from, advert);
                Ok(())
            }
        }
    }

    /// The cluster says this router should be master now (make-before-break on a planned
    /// move, or fast failover when the owner is confirmed dead): a backup's master-down timer
    /// expires at `now` (call [`Self::handle_timeout`]). Nothing else changes: the adverts
    /// that follow, at this router's priority, settle the wire as usual (a higher-priority
    /// master still wins), and a sync-group member still waits for its group.
    pub fn take_over(&mut self, now: Instant) {
        self.held_back = false;
        if self.state == State::Backup {
            self.master_down_at = Some(now);
            self.takeover = true;
        }
    }

    /// Fleet mode: whether placement makes this director the unit's owner.
    pub fn set_cluster_owner(&mut self, owner: bool) {
        self.cluster_owner = owner;
    }

    /// Fleet mode: the directors' mesh sees another director, ranked above this one for the
    /// unit and alive, holding it as master while this one is master too — VRRP between the
    /// two is cut, each believes the other dead. Held back, a master steps down (addresses
    /// removed, no priority-0 advert: the other stays master) and a backup does not become
    /// master when its Master_Down timer runs out; a priority-0 advert (a master releasing),
    /// [`Self::take_over`] or `hold_back(false)` end it.
    pub fn hold_back(&mut self, now: Instant, on: bool) {
        self.held_back = on;
        if on && self.state == State::Master {
            self.actions.push_back(Action::RemoveAddresses);
            self.become_backup(now, Reason::HeldBack);
        }
    }

    pub fn held_back(&self) -> bool {
        self.held_back
    }

    /// Fleet mode: the first gratuitous ARP round of a takeover has left (or never will):
    /// the advert that makes the old master let go goes now — or at
    /// [`Params::takeover_advert_min`] after the takeover if that is later — instead of at
    /// the [`Params::takeover_advert_delay`] deadline (call [`Self::handle_timeout`]).
    pub fn announced(&mut self, now: Instant) {
        if self.advert_awaits_garp && self.state == State::Master {
            self.advert_awaits_garp = false;
            let earliest = self
                .took_over_at
                .map_or(now, |t| now.max(t + self.params.takeover_advert_min));
            self.advert_at = Some(self.advert_at.map_or(earliest, |t| t.min(earliest)));
        }
    }

    /// Whether the first advert after a takeover waits for [`Self::announced`].
    pub fn advert_awaits_garp(&self) -> bool {
        self.advert_awaits_garp
    }

    /// A master announces itself at once (an advert at its current priority), e.g. after the
    /// cluster lowered its priority: a new owner waiting as backup sees the lower priority and
    /// preempts now instead of one advert interval later. A takeover's first advert that
    /// is pending ([`Self::announced`]) is not sent early by this.
    pub fn announce(&mut self, now: Instant) {
        if self.state == State::Master && !self.takeover_advert_pending {
            self.send_advert(now, self.advert_priority(now));
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.master_down_at.is_some_and(|t| t <= now) && self.state == State::Backup {
            self.master_down_at = None;
            if self.held_back {
                self.master_down_at = Some(now + self.master_down_interval());
                return;
            }
            if self.gated {
                // Wait for the rest of the group; keep timing so the wish stays fresh.
                self.wants_master = true;
                self.master_down_at = Some(now + self.master_down_interval());
                return;
            }
            let reason = if self.takeover {
                Reason::Takeover
            } else if self.released {
                Reason::MasterReleased
            } else {
                Reason::MasterDown
            };
            self.become_master(now, reason);
        }
        if self.state != State::Master {
            return;
        }
        if self.advert_at.is_some_and(|t| t <= now) {
            self.send_advert(now, self.advert_priority(now));
        }
        if self.garp_second_at.is_some_and(|t| t <= now) {
            self.garp_second_at = None;
            self.garp(self.params.garp.master_repeat);
        }
        if self.garp_lower_at.is_some_and(|t| t <= now) {
            self.garp_lower_at = None;
            self.garp(self.params.garp.lower_prio_repeat);
        }
        if self.garp_refresh_at.is_some_and(|t| t <= now) {
            self.garp(self.params.garp.master_refresh_repeat);
            self.garp_refresh_at = Some(now + self.params.garp.master_refresh);
        }
    }

    fn backup_rx(&mut self, now: Instant, from: IpAddr, advert: &Advert) {
        // RFC 5798 §6.4.2: priority 0 → wait only Skew_Time. Only from the master this router
        // follows: a release from a router that is no longer master (a former owner leaving
        // after the fleet moved its unit, or a stale peer) would make every backup take over
        // at Skew_Time beside the live master, and the clients' ARP flap between them.
        if advert.priority == 0 {
            if self.master.is_some_and(|m| m != from) {
                return;
            }
            self.master_down_at = Some(now + self.skew());
            self.released = true;
            self.held_back = false;
            return;
        }
        let ours = self.effective;
        if advert.priority >= ours {
            self.preempt_until = None;
        } else if self.params.preempt
            && !self.params.preempt_delay.is_zero()
            && self.preempt_until.is_none()
        {
            // keepalived.md §3.4: the first lower-priority advert starts the delay; until it
            // runs out such adverts are accepted.
            self.preempt_until = Some(now + self.params.preempt_delay);
        }
        let delaying = self.preempt_until.is_some_and(|t| now < t);
        if self.cluster_owner && self.params.preempt && !delaying && advert.priority < ours {
            // The cluster placed the unit here and a lower-priority router is master (the old
            // owner has lowered its priority, or it won a tie on the way): take it now rather
            // than one Master_Down_Interval later, while the clients' ARP may point here.
            self.take_over(now);
            return;
        }
        if !self.params.preempt || advert.priority >= ours || delaying {
            if self.params.version == Version::V3 {
                self.master_interval_cs = advert.interval_cs;
            }
            self.master = Some(from);
            self.master_down_at = Some(now + self.master_down_interval());
            self.released = false;
            self.takeover = false;
            self.wants_master = false;
        }
        // Otherwise the advert is discarded and the timer keeps running: preemption happens by
        // timeout, as in keepalived.
    }

    fn master_rx(&mut self, now: Instant, from: IpAddr, advert: &Advert) {
        if advert.priority == 0 {
            // Another router released: make sure backups hear us at once.
            self.send_advert(now, self.advert_priority(now));
            return;
        }
        let ours = if self.is_owner() {
            OWNER_PRIORITY
        } else {
            self.advert_priority(now)
        };
        let higher = advert.priority > ours
            || (advert.priority == ours && addr_greater(from, self.params.source));
        if higher {
            if self.params.higher_prio_send_advert {
                self.send_advert(now, self.advert_priority(now));
            }
            self.actions.push_back(Action::RemoveAddresses);
            if self.params.version == Version::V3 {
                self.master_interval_cs = advert.interval_cs;
            }
            self.master = Some(from);
            let reason = if advert.priority > ours {
                Reason::HigherPriority {
                    from,
                    priority: advert.priority,
                }
            } else {
                Reason::EqualPriorityHigherAddress { from }
            };
            self.clear_timers();
            self.master_down_at = Some(now + self.master_down_interval());
            self.preempt_until = None;
            self.transition(State::Backup, reason);
        } else if from != self.params.source {
            // A lower-priority router believes it is master (split brain healing,
            // keepalived.md §3.3): answer at once and re-announce the addresses.
            // Not while a takeover's first advert is pending: that advert, soon, is the
            // answer (the old owner lets go on it, so it must not go before the GARP, nor
            // before `takeover_advert_min`).
            if !self.params.lower_prio_no_advert && !self.takeover_advert_pending {
                self.send_advert(now, self.advert_priority(now));
            }
            self.garp(self.params.garp.lower_prio_repeat);
            if !self.params.garp.lower_prio_delay.is_zero() {
                self.garp_lower_at = Some(now + self.params.garp.lower_prio_delay);
            }
            self.actions.push_back(Action::MasterRxLowerPriority {
                from,
                priority: advert.priority,
            });
        }
    }

    /// The priority our adverts carry. Just after a takeover on the cluster's word it is one
    /// above the effective priority, for one advert interval: the old owner may still be at
    /// the owner's priority until it applies the epoch that moved the unit (a few hundred
    /// ms later on a Raft follower). At equal priority the address tie-break could make the
    /// new owner yield (its GARP already sent the clients to it, the address gone) or leave
    /// both masters, the clients' ARP flapping between them. One above, the old owner yields
    /// on our first advert: make-before-break, one holder.
    fn advert_priority(&self, now: Instant) -> u8 {
        let fresh = self
            .took_over_at
            .is_some_and(|t| now < t + interval(self.params.advert_interval_cs));
        if fresh && !self.is_owner() {
            self.effective.saturating_add(1).min(OWNER_PRIORITY - 1)
        } else {
            self.effective
        }
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        // keepalived.md §3.5: the advert goes first so the old master can let go, then the
        // addresses, then the GARP burst.
        self.master_interval_cs = self.params.advert_interval_cs;
        self.clear_timers();
        self.took_over_at = self.takeover.then_some(now);
        let delay = self.params.takeover_advert_delay;
        if self.takeover && !delay.is_zero() {
            // Make-before-break: see `Params::takeover_advert_delay`.
            self.actions.push_back(Action::AddAddresses);
            self.garp(self.params.garp.master_repeat);
        } else {
            self.send_advert(now, self.advert_priority(now));
            self.actions.push_back(Action::AddAddresses);
            self.garp(self.params.garp.master_repeat);
        }
        let g = &self.params.garp;
        if !g.master_delay.is_zero() {
            self.garp_second_at = Some(now + g.master_delay);
        }
        if !g.master_refresh.is_zero() {
            self.garp_refresh_at = Some(now + g.master_refresh);
        }
        self.master = Some(self.params.source);
        self.preempt_until = None;
        self.released = false;
        if self.took_over_at.is_some() && !delay.is_zero() {
            // Without a GARP to wait for, the advert follows the addresses at once.
            let garp = self.params.garp.master_repeat > 0 && !self.params.addresses.is_empty();
            self.advert_at = Some(if garp { now + delay } else { now });
            self.advert_awaits_garp = garp;
            self.takeover_advert_pending = garp;
        }
        self.takeover = false;
        self.wants_master = false;
        self.transition(State::Master, reason);
    }

    fn become_backup(&mut self, now: Instant, reason: Reason) {
        self.clear_timers();
        self.master_interval_cs = self.params.advert_interval_cs;
        self.master = None;
        self.preempt_until = None;
        self.released = false;
        self.wants_master = false;
        self.master_down_at = Some(now + self.master_down_interval());
        self.transition(State::Backup, reason);
    }

    /// Makes this router a sync-group member (see [`crate::sync::SyncGroup`]).
    pub(crate) fn set_gated(&mut self, gated: bool) {
        self.gated = gated;
    }

    /// The master-down timer expired while the group was not ready.
    pub(crate) fn wants_master(&self) -> bool {
        self.wants_master
    }

    /// The group goes master: follow at once.
    pub(crate) fn force_master(&mut self, now: Instant) {
        if self.state == State::Backup {
            self.become_master(now, Reason::SyncGroup);
        }
    }

    /// The group goes backup: a master member leaves without a priority-0 advert, as on a
    /// higher-priority yield.
    pub(crate) fn force_backup(&mut self, now: Instant) {
        if self.state == State::Master {
            self.actions.push_back(Action::RemoveAddresses);
            self.become_backup(now, Reason::SyncGroup);
        }
    }

    /// Another member's fault takes this one out too, or gives it back.
    pub(crate) fn set_group_fault(&mut self, now: Instant, fault: bool) {
        if self.group_fault != fault {
            self.group_fault = fault;
            self.apply_fault(now, Reason::SyncGroup);
        }
    }

    fn send_advert(&mut self, now: Instant, priority: u8) {
        self.advert_awaits_garp = false;
        self.takeover_advert_pending = false;
        self.actions.push_back(Action::SendAdvert(Advert {
            version: self.params.version,
            vrid: self.params.vrid,
            priority,
            interval_cs: self.params.advert_interval_cs,
            addresses: self.params.addresses.clone(),
            auth: self.params.auth,
        }));
        if self.state == State::Master || priority != 0 {
            self.advert_at = Some(now + interval(self.params.advert_interval_cs));
        }
    }

    fn garp(&mut self, count: u32) {
        if count > 0 && !self.params.addresses.is_empty() {
            self.actions.push_back(Action::SendGarp { count });
        }
    }

    fn clear_timers(&mut self) {
        self.advert_at = None;
        self.advert_awaits_garp = false;
        self.takeover_advert_pending = false;
        self.master_down_at = None;
        self.garp_second_at = None;
        self.garp_refresh_at = None;
        self.garp_lower_at = None;
    }

    fn transition(&mut self, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        if from != to {
            self.actions
                .push_back(Action::StateChanged { from, to, reason });
        }
    }
}

/// Why an advert was not acted on; each is a counter in `flotilla status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Drop {
    #[error("advert for another virtual router id")]
    OtherVrid,
    #[error("VRRP version differs from ours")]
    Version,
    #[error("authentication does not match")]
    Auth,
    #[error("VRRPv2 advert interval differs from ours")]
    Interval,
    #[error("not listening (initialising, stopped or in fault)")]
    NotListening,
}

fn interval(cs: u16) -> Duration {
    Duration::from_millis(u64::from(cs) * 10)
}

/// keepalived compares addresses as unsigned numbers (keepalived.md §3.3).
fn addr_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a) > u32::from(b),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a) > u128::from(b),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 99, 0, last))
    }

    fn params(last: u8, priority: u8) -> Params {
        let mut p = Params::new(51, Version::V3, priority, 10, ip(last));
        p.addresses = vec![ip(100)];
        p
    }

    /// Routers on one shared segment with a fake clock: every advert reaches every other live
    /// router after `latency`.
    struct Segment {
        now: Instant,
        routers: Vec<Router>,
        alive: Vec<bool>,
        in_flight: Vec<(Instant, usize, IpAddr, Advert)>,
        log: Vec<(Duration, usize, Action)>,
        t0: Instant,
        latency: Duration,
    }

    impl Segment {
        fn new(routers: Vec<Params>) -> Self {
            let now = Instant::now();
            let n = routers.len();
            Segment {
                now,
                t0: now,
                routers: routers.into_iter().map(Router::new).collect(),
                alive: vec![true; n],
                in_flight: Vec::new(),
                log: Vec::new(),
                latency: Duration::from_micros(200),
            }
        }

        fn start(&mut self, i: usize) {
            self.alive[i] = true;
            self.routers[i].start(self.now);
            self.drain(i);
        }

        fn start_all(&mut self) {
            for i in 0..self.routers.len() {
                self.start(i);
            }
        }

        fn drain(&mut self, i: usize) {
            while let Some(a) = self.routers[i].poll_action() {
                if let Action::SendAdvert(adv) = &a {
                    let from = self.routers[i].params().source;
                    for j in 0..self.routers.len() {
                        if j != i {
                            self.in_flight
                                .push((self.now + self.latency, j, from, adv.clone()));
                        }
                    }
                }
                self.log.push((self.now - self.t0, i, a));
            }
        }

        /// Crash: the process dies without a word and its link goes down.
        fn crash(&mut self, i: usize) {
            self.alive[i] = false;
            self.routers[i] = Router::new(self.routers[i].params().clone());
        }

        fn shutdown(&mut self, i: usize) {
            self.routers[i].shutdown(self.now);
            self.drain(i);
            self.alive[i] = false;
        }

        fn run_for(&mut self, d: Duration) {
            let end = self.now + d;
            loop {
                let next_timer = (0..self.routers.len())
                    .filter(|&i| self.alive[i])
                    .filter_map(|i| self.routers[i].poll_timeout().map(|t| (t, i)))
                    .min();
                let next_packet = self.in_flight.iter().map(|(t, _, _, _)| *t).min();
                let t = match (next_timer.map(|x| x.0), next_packet) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(a), None) => a,
                    (None, Some(b)) => b,
                    (None, None) => break,
                };
                if t > end {
                    break;
                }
                self.now = self.now.max(t);
                if next_packet == Some(t) {
                    let k = self
                        .in_flight
                        .iter()
                        .position(|(pt, _, _, _)| *pt == t)
                        .unwrap();
                    let (_, to, from, adv) = self.in_flight.remove(k);
                    if self.alive[to] {
                        let _ = self.routers[to].handle_advert(self.now, from, &adv);
                        self.drain(to);
                    }
                } else if let Some((_, i)) = next_timer {
                    self.routers[i].handle_timeout(self.now);
                    self.drain(i);
                }
            }
            self.now = end;
        }

        fn masters(&self) -> Vec<usize> {
            (0..self.routers.len())
                .filter(|&i| self.alive[i] && self.routers[i].state() == State::Master)
                .collect()
        }

        fn became_master_at(&self, i: usize) -> Option<Duration> {
            self.log.iter().rev().find_map(|(t, r, a)| {
                matches!(a, Action::StateChanged { to: State::Master, .. } if *r == i).then_some(*t)
            })
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn timers_match_rfc_5798_and_keepalived() {
        let r = Router::new(params(1, 200));
        // v3, P=200, advert_int 0.1 s: MDI = 0.3 + 56·0.1/256 = 0.321875 s (keepalived.md §3.1).
        assert_eq!(r.master_down_interval(), Duration::from_micros(321_875));
        let mut p = Params::new(1, Version::V2, 100, 100, ip(1));
        p.addresses = vec![ip(100)];
        // v2, P=100, advert_int 1: skew 0.609 s, MDI 3.609 s.
        let r = Router::new(p);
        assert_eq!(r.skew(), Duration::from_micros(609_375));
        assert_eq!(r.master_down_interval(), Duration::from_micros(3_609_375));
    }

    #[test]
    fn the_higher_priority_becomes_master_after_one_master_down_interval() {
        let mut s = Segment::new(vec![params(1, 150), params(2, 100)]);
        s.start_all();
        s.run_for(ms(2_000));
        assert_eq!(s.masters(), [0]);
        let t = s.became_master_at(0).unwrap();
        assert_eq!(t, Router::new(params(1, 150)).master_down_interval());
        assert_eq!(s.routers[1].master(), Some(ip(1)));
    }

    #[test]
    fn take_over_makes_a_backup_master_at_once_and_the_old_master_yields_to_its_priority() {
        // Planned move: the old owner (150) drops to 100, the new one (now 200) takes over.
        let mut s = Segment::new(vec![params(1, 150), params(2, 100)]);
        s.start_all();
        s.run_for(ms(1_000));
        assert_eq!(s.masters(), [0]);
        s.routers[0].set_effective_priority(100);
        s.routers[1].set_effective_priority(200);
        let at = s.now - s.t0;
        s.routers[1].take_over(s.now);
        s.routers[1].handle_timeout(s.now);
        s.drain(1);
        assert_eq!(s.became_master_at(1), Some(at), "master at once");
        s.run_for(ms(1_000));
        assert_eq!(
            s.masters(),
            [1],
            "the old master stepped down on the higher advert"
        );
        assert!(s.log.iter().any(|(_, r, a)| *r == 1
            && matches!(
                a,
                Action::StateChanged {
                    reason: Reason::Takeover,
                    ..
                }
            )));
        // A take-over against a live higher-priority master is settled by the wire: it yields.
        s.routers[0].take_over(s.now);
        s.routers[0].handle_timeout(s.now);
        s.drain(0);
        s.run_for(ms(1_000));
        assert_eq!(s.masters(), [1]);
        // A master ignores it.
        s.routers[1].take_over(s.now);
        s.routers[1].handle_timeout(s.now);
        assert_eq!(s.routers[1].state(), State::Master);
    }

    #[test]
    fn a_release_from_a_router_that_is_not_the_master_is_ignored() {
        let mut s = Segment::new(vec![params(1, 150), params(2, 100)]);
        s.start_all();
        s.run_for(ms(5_000));
        assert_eq!(s.masters(), [0]);
        let release = Advert {
            priority: 0,
            ..advert_from(s.routers[0].params())
        };
        // From a stranger (not the master router 1 follows): nothing changes.
        s.routers[1]
            .handle_advert(s.now, ip(9), &release)
            .expect("accepted");
        s.run_for(ms(2_000));
        assert_eq!(s.masters(), [0]);
        // From the master: router 1 takes over after Skew_Time.
        s.routers[1]
            .handle_advert(s.now, ip(1), &release)
            .expect("accepted");
        let skew = s.routers[1].skew();
        s.routers[1].handle_timeout(s.now + skew);
        assert_eq!(s.routers[1].state(), State::Master);
    }

    #[test]
    fn a_held_back_router_steps_down_and_stays_backup_until_released() {
        // Two masters that cannot hear each other (VRRP cut): router 1 is held back.
        let mut s = Segment::new(vec![params(1, 150), params(2, 100)]);
        s.start_all();
        s.run_for(ms(1_000));
        s.routers[1].take_over(s.now);
        s.routers[1].handle_timeout(s.now);
        s.drain(1);
        s.run_for(ms(10));
        assert_eq!(s.masters(), [0], "router 1 yielded to the higher priority");
        // Now hold it back while it hears nothing: it stays backup past Master_Down.
        s.routers[1].hold_back(s.now, true);
        assert!(s.routers[1].held_back());
        let mut lone = Router::new(params(2, 100));
        lone.start(s.now);
        lone.hold_back(s.now, true);
        let down = lone.master_down_interval();
        lone.handle_timeout(s.now + down * 3);
        assert_eq!(lone.state(), State::Backup);
        // Released: the next expiry makes it master.
        lone.hold_back(s.now + down * 3, false);
        lone.handle_timeout(s.now + down * 5);
        assert_eq!(lone.state(), State::Master);
        // A held-back master steps down at once, addresses removed.
        lone.hold_back(s.now + down * 5, true);
        assert_eq!(lone.state(), State::Backup);
        let actions: Vec<Action> = std::iter::from_fn(|| lone.poll_action()).collect();
        assert!(actions.contains(&Action::RemoveAddresses), "{actions:?}");
        assert!(actions.iter().any(|a| matches!(
            a,
            Action::StateChanged {
                reason: Reason::HeldBack,
                ..
            }
        )));
        // A take-over ends the hold.
        lone.take_over(s.now + down * 6);
        assert!(!lone.held_back());
    }

    /// A planned move: router 0 (priority 150) is master, then the cluster makes router 1
    /// (`p1`) the owner — priorities 100 and 200 — and orders it to take over. Returns the
    /// segment and the takeover's time since the start.
    fn planned_takeover(p1: Params) -> (Segment, Duration) {
        let mut s = Segment::new(vec![params(1, 150), p1]);
        s.start_all();
        s.run_for(ms(1_000));
        assert_eq!(s.masters(), [0]);
        s.routers[0].set_effective_priority(100);
        s.routers[1].set_effective_priority(200);
        let at = s.now - s.t0;
        s.routers[1].take_over(s.now);
        s.routers[1].handle_timeout(s.now);
        s.drain(1);
        (s, at)
    }

    #[test]
    fn with_a_takeover_delay_addresses_and_garp_go_first_and_the_advert_follows() {
        let mut p1 = params(2, 100);
        p1.takeover_advert_delay = ms(20);
        let (mut s, at) = planned_takeover(p1);
        let mine: Vec<&Action> = s
            .log
            .iter()
            .filter(|(t, r, _)| *t == at && *r == 1)
            .map(|(_, _, a)| a)
            .collect();
        assert!(
            matches!(mine.first(), Some(Action::AddAddresses)),
            "{mine:?}"
        );
        assert!(
            matches!(mine.get(1), Some(Action::SendGarp { .. })),
            "{mine:?}"
        );
        assert!(!mine.iter().any(|a| matches!(a, Action::SendAdvert(_))));
        // Both hold the addresses until the advert, 20 ms later; then the old one yields.
        s.run_for(ms(19));
        assert_eq!(s.masters(), [0, 1]);
        s.run_for(ms(5));
        assert_eq!(s.masters(), [1]);
        assert!(s.log.iter().any(|(t, r, a)| *t == at + ms(20)
            && *r == 1
            && matches!(a, Action::SendAdvert(adv) if adv.priority == 201)));
        // An ordinary election (no takeover) keeps the RFC order: advert first.
        let mut p0 = params(1, 150);
        p0.takeover_advert_delay = ms(20);
        let mut s = Segment::new(vec![p0]);
        s.start_all();
        s.run_for(ms(5_000));
        let first: Vec<&Action> = s
            .log
            .iter()
            .filter(|(_, r, _)| *r == 0)
            .map(|(_, _, a)| a)
            .collect();
        let advert = first
            .iter()
            .position(|a| matches!(a, Action::SendAdvert(_)));
        let add = first.iter().position(|a| matches!(a, Action::AddAddresses));
        assert!(advert < add, "{first:?}");
    }

    #[test]
    fn the_takeover_advert_follows_the_first_garp_round_reported_sent_and_waits_for_nothing_else() {
        let advert_times = |s: &Segment| -> Vec<Duration> {
            s.log
                .iter()
                .filter(|(_, r, a)| *r == 1 && matches!(a, Action::SendAdvert(_)))
                .map(|(t, _, _)| *t)
                .collect()
        };
        let mut p1 = params(2, 100);
        // At most half the advert interval (100 ms here), as the agent sets it.
        p1.takeover_advert_delay = ms(40);
        // The GARP round is reported sent 3 ms later: the advert goes then, not at 40 ms.
        let (mut s, at) = planned_takeover(p1.clone());
        assert!(s.routers[1].advert_awaits_garp());
        // The old owner's periodic advert, lower now, is not answered before the GARP, and
        // the cluster asking for an announcement does not send it early either.
        s.routers[0].announce(s.now);
        s.drain(0);
        s.routers[1].announce(s.now);
        s.drain(1);
        s.run_for(ms(3));
        assert!(advert_times(&s).is_empty(), "{:?}", advert_times(&s));
        assert_eq!(
            s.masters(),
            [0, 1],
            "both hold the addresses until the advert"
        );
        s.routers[1].announced(s.now);
        assert!(!s.routers[1].advert_awaits_garp());
        s.routers[1].handle_timeout(s.now);
        s.drain(1);
        s.run_for(ms(5));
        assert_eq!(s.masters(), [1], "the old owner yielded on it");
        assert_eq!(advert_times(&s).first(), Some(&(at + ms(3))));
        // A report that comes late (after the deadline's advert) changes nothing.
        let sent = advert_times(&s).len();
        s.routers[1].announced(s.now);
        s.routers[1].handle_timeout(s.now);
        s.drain(1);
        assert_eq!(advert_times(&s).len(), sent, "no extra advert");
        // Reported early, with a minimum: the advert waits for the minimum; reported after
        // it: at once.
        let mut p2 = p1.clone();
        p2.takeover_advert_min = ms(10);
        let (mut s, at) = planned_takeover(p2.clone());
        s.run_for(ms(3));
        s.routers[1].announced(s.now);
        s.routers[1].handle_timeout(s.now);
        s.drain(1);
        s.routers[0].announce(s.now);
        s.drain(0);
        s.run_for(ms(5));
        assert!(
            advert_times(&s).is_empty(),
            "not before the minimum, not as an answer"
        );
        s.run_for(ms(5));
        assert_eq!(advert_times(&s).first(), Some(&(at + ms(10))));
        assert_eq!(s.masters(), [1]);
        let (mut s, at) = planned_takeover(p2);
        s.run_for(ms(15));
        s.routers[1].announced(s.now);
        s.routers[1].handle_timeout(s.now);
        s.drain(1);
        assert_eq!(advert_times(&s).first(), Some(&(at + ms(15))));
        // Never reported: the deadline.
        let (mut s, at) = planned_takeover(p1.clone());
        s.run_for(ms(39));
        assert_eq!(s.masters(), [0, 1]);
        s.run_for(ms(5));
        assert_eq!(s.masters(), [1]);
        assert_eq!(advert_times(&s).first(), Some(&(at + ms(40))));
        // No GARP configured: nothing to wait for, the advert follows the addresses at once.
        p1.garp.master_repeat = 0;
        let (s, at) = planned_takeover(p1);
        assert!(!s.routers[1].advert_awaits_garp());
        assert_eq!(advert_times(&s).first(), Some(&at));
    }

    #[test]
    fn a_planned_move_wins_against_the_old_owner_still_at_the_owner_priority() {
        // Placement moves the unit from router 1 (10.99.0.2, owner at 250) to router 0
        // (10.99.0.1). The new owner applies the epoch first: both are at 250 for a moment
        // and the old owner has the higher address. The takeover advert carries one more
        // (251): the old owner yields on it at once, and the new owner does not yield to the
        // old owner's adverts at 250 (no flapping, no address gone behind the clients' ARP).
        let mut s = Segment::new(vec![params(1, 240), params(2, 250)]);
        s.start_all();
        s.run_for(ms(5_000));
        assert_eq!(s.masters(), [1]);
        s.routers[0].set_effective_priority(250);
        // The old owner's periodic advert at 250 is on its way as the new owner takes over.
        s.routers[1].announce(s.now);
        s.drain(1);
        s.routers[0].take_over(s.now);
        s.routers[0].handle_timeout(s.now);
        s.drain(0);
        let took = s.now - s.t0;
        assert!(s.log.iter().any(|(t, r, a)| *t == took
            && *r == 0
            && matches!(a, Action::SendAdvert(adv) if adv.priority == 251)));
        s.run_for(ms(5));
        assert_eq!(s.masters(), [0], "old owner yielded on the first advert");
        // It applies the epoch later: nothing changes on the wire.
        s.routers[1].set_effective_priority(240);
        s.run_for(ms(10_000));
        assert_eq!(s.masters(), [0], "and it stays so");
        // After one advert interval the new owner advertises its own priority again.
        let last = s.log.iter().rev().find_map(|(_, r, a)| match a {
            Action::SendAdvert(adv) if *r == 0 => Some(adv.priority),
            _ => None,
        });
        assert_eq!(last, Some(250));
        // An ordinary master (no takeover) still yields to an equal priority from a higher
        // address (RFC 5798 §6.4.3).
        let tie = Advert {
            version: Version::V3,
            vrid: 51,
            priority: 250,
            interval_cs: 10,
            addresses: vec![ip(100)],
            auth: s.routers[0].params().auth,
        };
        let now = s.now;
        s.routers[0].handle_advert(now, ip(2), &tie).unwrap();
        assert_eq!(s.routers[0].state(), State::Backup);
    }

    #[test]
    fn the_cluster_owner_preempts_a_lower_master_at_once() {
        // Router 0 lost a tie on its way to master and waits as backup at 250; the master
        // (router 1) then lowers its priority to 240 and says so: router 0 takes over on
        // that advert, not one Master_Down_Interval later. Without the cluster's word the
        // RFC rule (preemption by timeout) stays.
        for owner in [true, false] {
            let mut s = Segment::new(vec![params(1, 100), params(2, 250)]);
            s.start_all();
            s.run_for(ms(5_000));
            assert_eq!(s.masters(), [1]);
            s.routers[0].set_effective_priority(250);
            s.routers[0].set_cluster_owner(owner);
            s.run_for(ms(500));
            s.routers[1].set_effective_priority(240);
            s.routers[1].announce(s.now);
            s.drain(1);
            s.run_for(ms(20));
            if owner {
                assert_eq!(s.masters(), [0], "taken over on the lower advert");
            } else {
                assert_eq!(s.masters(), [1], "RFC: preemption by timeout");
                s.run_for(ms(4_000));
                assert_eq!(s.masters(), [0]);
            }
        }
    }

    #[test]
    fn a_crashed_master_is_replaced_within_master_down_interval() {
        let mut s = Segment::new(vec![params(1, 150), params(2, 100)]);
        s.start_all();
        s.run_for(ms(1_000));
        let crash_at = s.now - s.t0;
        s.crash(0);
        s.run_for(ms(1_000));
        assert_eq!(s.masters(), [1]);
        let took = s.became_master_at(1).unwrap() - crash_at;
        let mdi = Router::new(params(2, 100)).master_down_interval();
        assert!(took <= mdi && took >= mdi - ms(100), "{took:?} vs {mdi:?}");
    }

    #[test]
    fn a_stopping_master_sends_priority_zero_first_and_the_backup_waits_only_skew() {
        let mut s = Segment::new(vec![params(1, 150), params(2, 100)]);
        s.start_all();
        s.run_for(ms(1_000));
        let stop_at = s.now - s.t0;
        s.shutdown(0);
        let actions: Vec<&Action> = s
            .log
            .iter()
            .filter(|(t, r, _)| *t == stop_at && *r == 0)
            .map(|(_, _, a)| a)
            .collect();
        assert!(
            matches!(actions[0], Action::SendAdvert(a) if a.priority == 0),
            "{actions:?}"
        );
        assert_eq!(actions[1], &Action::RemoveAddresses);
        s.run_for(ms(1_000));
        assert_eq!(s.masters(), [1]);
        let took = s.became_master_at(1).unwrap() - stop_at;
        let skew = Router::new(params(2, 100)).skew();
        assert_eq!(took, skew + s.latency);
        assert!(s.log.iter().any(|(_, r, a)| *r == 1
            && matches!(
                a,
                Action::StateChanged {
                    reason: Reason::MasterReleased,
                    ..
                }
            )));
    }

    #[test]
    fn a_higher_priority_router_preempts_by_timeout_and_the_master_yields_without_priority_zero() {
        let mut s = Segment::new(vec![params(1, 100), params(2, 200)]);
        s.start(0);
        s.run_for(ms(1_000));
        assert_eq!(s.masters(), [0]);
        s.start(1);
        s.run_for(ms(1_000));
        assert_eq!(s.masters(), [1]);
        // The yielding master sent no priority-0 advert.
        assert!(
            !s.log
                .iter()
                .any(|(_, r, a)| *r == 0
                    && matches!(a, Action::SendAdvert(adv) if adv.priority == 0))
        );
        assert!(s.log.iter().any(|(_, r, a)| *r == 0
            && matches!(
                a,
                Action::StateChanged {
                    to: State::Backup,
                    reason: Reason::HigherPriority { priority: 200, .. },
                    ..
                }
            )));
    }

    #[test]
    fn nopreempt_leaves_a_lower_master_in_place() {
        let mut high = params(2, 200);
        high.preempt = false;
        let mut s = Segment::new(vec![params(1, 100), high]);
        s.start(0);
        s.run_for(ms(1_000));
        s.start(1);
        s.run_for(ms(5_000));
        assert_eq!(s.masters(), [0]);
    }

    #[test]
    fn preempt_delay_postpones_the_takeover() {
        let mut high = params(2, 200);
        high.preempt_delay = ms(2_000);
        let mut s = Segment::new(vec![params(1, 100), high]);
        s.start(0);
        s.run_for(ms(1_000));
        let joined = s.now - s.t0;
        s.start(1);
        s.run_for(ms(1_900));
        assert_eq!(s.masters(), [0], "still delaying");
        s.run_for(ms(2_000));
        assert_eq!(s.masters(), [1]);
        let took = s.became_master_at(1).unwrap() - joined;
        assert!(took >= ms(2_000) && took <= ms(2_000) + ms(450), "{took:?}");
    }

    #[test]
    fn equal_priorities_are_decided_by_the_higher_address() {
        let mut s = Segment::new(vec![params(1, 100), params(2, 100)]);
        s.start_all();
        s.run_for(ms(3_000));
        assert_eq!(s.masters(), [1]);
        // An equal-priority advert is accepted by a backup, so the lower address stays backup
        // instead of timing out and flapping.
        let flaps = s
            .log
            .iter()
            .filter(|(t, r, a)| {
                *t > ms(1_000) && *r == 0 && matches!(a, Action::StateChanged { .. })
            })
            .count();
        assert_eq!(flaps, 0);
    }

    #[test]
    fn a_master_answers_a_lower_priority_advert_at_once() {
        let mut r = Router::new(params(1, 150));
        let now = Instant::now();
        r.start(now);
        r.handle_timeout(now + ms(400));
        assert_eq!(r.state(), State::Master);
        while r.poll_action().is_some() {}
        let lower = Advert {
            priority: 100,
            ..advert_from(&params(2, 100))
        };
        r.handle_advert(now + ms(450), ip(2), &lower).unwrap();
        let actions: Vec<Action> = std::iter::from_fn(|| r.poll_action()).collect();
        assert!(
            matches!(&actions[0], Action::SendAdvert(a) if a.priority == 150),
            "{actions:?}"
        );
        assert_eq!(actions[1], Action::SendGarp { count: 5 });
        assert_eq!(
            actions[2],
            Action::MasterRxLowerPriority {
                from: ip(2),
                priority: 100
            }
        );
        assert_eq!(r.state(), State::Master);
    }

    fn advert_from(p: &Params) -> Advert {
        Advert {
            version: p.version,
            vrid: p.vrid,
            priority: p.priority,
            interval_cs: p.advert_interval_cs,
            addresses: p.addresses.clone(),
            auth: p.auth,
        }
    }

    #[test]
    fn a_v3_backup_adopts_the_masters_interval() {
        let mut r = Router::new(params(1, 100));
        let now = Instant::now();
        r.start(now);
        let mut master = params(2, 200);
        master.advert_interval_cs = 100;
        r.handle_advert(now, ip(2), &advert_from(&master)).unwrap();
        assert_eq!(
            r.master_down_interval(),
            Duration::from_secs(3) + Duration::from_micros(156 * 1_000_000 / 256)
        );
    }

    #[test]
    fn v2_adverts_with_another_interval_or_password_are_dropped() {
        let mut p = Params::new(51, Version::V2, 100, 100, ip(1));
        p.auth = Auth::Pass(*b"secret\0\0");
        let mut r = Router::new(p.clone());
        let now = Instant::now();
        r.start(now);
        let mut other = p.clone();
        other.advert_interval_cs = 200;
        assert_eq!(
            r.handle_advert(now, ip(2), &advert_from(&other)),
            Err(Drop::Interval)
        );
        let mut other = p.clone();
        other.auth = Auth::Pass(*b"wrong\0\0\0");
        assert_eq!(
            r.handle_advert(now, ip(2), &advert_from(&other)),
            Err(Drop::Auth)
        );
        let mut other = p.clone();
        other.version = Version::V3;
        assert_eq!(
            r.handle_advert(now, ip(2), &advert_from(&other)),
            Err(Drop::Version)
        );
        assert_eq!(r.handle_advert(now, ip(2), &advert_from(&p)), Ok(()));
    }

    #[test]
    fn the_owner_is_master_at_once() {
        let mut r = Router::new(params(1, 255));
        r.start(Instant::now());
        assert_eq!(r.state(), State::Master);
        r.set_effective_priority(10);
        assert_eq!(r.effective_priority(), 255);
    }

    #[test]
    fn effective_priority_is_clamped() {
        let mut r = Router::new(params(1, 100));
        r.set_effective_priority(-50);
        assert_eq!(r.effective_priority(), 1);
        r.set_effective_priority(400);
        assert_eq!(r.effective_priority(), 254);
    }

    #[test]
    fn a_fault_releases_with_priority_zero_and_recovery_returns_to_backup() {
        let mut r = Router::new(params(1, 255));
        let now = Instant::now();
        r.start(now);
        while r.poll_action().is_some() {}
        r.set_fault(now, true);
        let actions: Vec<Action> = std::iter::from_fn(|| r.poll_action()).collect();
        assert!(matches!(&actions[0], Action::SendAdvert(a) if a.priority == 0));
        assert_eq!(actions[1], Action::RemoveAddresses);
        assert_eq!(
            actions[2],
            Action::StateChanged {
                from: State::Master,
                to: State::Fault,
                reason: Reason::Fault
            }
        );
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(
            r.handle_advert(now, ip(2), &advert_from(&params(2, 100))),
            Err(Drop::NotListening)
        );
        let mut b = Router::new(params(1, 100));
        b.start(now);
        b.set_fault(now, true);
        b.set_fault(now + ms(10), false);
        assert_eq!(b.state(), State::Backup);
        assert_eq!(
            b.poll_timeout(),
            Some(now + ms(10) + b.master_down_interval())
        );
    }

    #[test]
    fn garps_follow_the_schedule() {
        let mut p = params(1, 255);
        p.garp.master_refresh = Duration::from_secs(60);
        let mut r = Router::new(p);
        let now = Instant::now();
        r.start(now);
        let garps = |r: &mut Router| -> Vec<u32> {
            std::iter::from_fn(|| r.poll_action())
                .filter_map(|a| match a {
                    Action::SendGarp { count } => Some(count),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(garps(&mut r), [5]);
        r.handle_timeout(now + Duration::from_secs(5));
        assert_eq!(garps(&mut r), [5]);
        r.handle_timeout(now + Duration::from_secs(30));
        assert_eq!(garps(&mut r), Vec::<u32>::new());
        r.handle_timeout(now + Duration::from_secs(60));
        assert_eq!(garps(&mut r), [1]);
    }

    proptest! {
        /// With distinct priorities, any start order and any crashes and restarts, once
        /// adverts flow for a while there is exactly one master: the highest live priority.
        #[test]
        fn one_master_the_highest(
            prios in proptest::collection::btree_set(1u8..=254, 2..5),
            starts in proptest::collection::vec(0u64..2_000, 5),
            events in proptest::collection::vec((0usize..5, 0u64..1_500, any::<bool>()), 0..6),
        ) {
            let prios: Vec<u8> = prios.into_iter().collect();
            let n = prios.len();
            let ps: Vec<Params> = prios.iter().enumerate().map(|(i, &p)| params(i as u8 + 1, p)).collect();
            let mut s = Segment::new(ps);
            s.alive = vec![false; n];
            let mut order: Vec<(u64, usize)> = (0..n).map(|i| (starts[i], i)).collect();
            order.sort();
            let mut last = 0;
            for (t, i) in order {
                s.run_for(ms(t - last));
                last = t;
                s.start(i);
            }
            for (who, after, graceful) in events {
                let i = who % n;
                s.run_for(ms(after));
                if s.alive[i] {
                    if graceful { s.shutdown(i) } else { s.crash(i) }
                } else {
                    s.start(i);
                }
            }
            s.run_for(ms(3_000));
            let live: Vec<usize> = (0..n).filter(|&i| s.alive[i]).collect();
            if let Some(&best) = live.iter().max_by_key(|&&i| prios[i]) {
                prop_assert_eq!(s.masters(), vec![best]);
            } else {
                prop_assert!(s.masters().is_empty());
            }
        }

        /// A master always sends a priority-0 advert before releasing its addresses on stop.
        #[test]
        fn stop_sends_priority_zero_before_release(prio in 1u8..=255, run in 0u64..2_000) {
            let mut r = Router::new(params(1, prio));
            let now = Instant::now();
            r.start(now);
            r.handle_timeout(now + ms(run));
            let was_master = r.state() == State::Master;
            while r.poll_action().is_some() {}
            r.shutdown(now + ms(run));
            let actions: Vec<Action> = std::iter::from_fn(|| r.poll_action()).collect();
            let zero = actions.iter().position(|a| matches!(a, Action::SendAdvert(a) if a.priority == 0));
            let release = actions.iter().position(|a| *a == Action::RemoveAddresses);
            if was_master {
                prop_assert!(zero.is_some() && release.is_some() && zero < release, "{:?}", actions);
            } else {
                prop_assert_eq!(release, None);
            }
            prop_assert_eq!(r.state(), State::Init);
            prop_assert_eq!(r.poll_timeout(), None);
        }
    }
}
