//! `vrrp_sync_group`: member routers that must share one state, e.g. a public VIP and the
//! real servers' gateway address of a LVS-NAT director (keepalived.md §2.3):
//! - the group goes MASTER only when every member wants to (prefer backup, avoid thrashing);
//! - a member leaving MASTER for BACKUP takes the others to BACKUP;
//! - a fault in any member puts every member in FAULT (masters send priority 0 first), and
//!   they return to BACKUP together when it clears.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use crate::machine::{Action, Drop, Params, Router, State};
use crate::wire::Advert;

/// What the caller must do: a member's action, or the group's own state change (for the
/// group's notify scripts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupAction {
    Member(usize, Action),
    StateChanged { from: State, to: State },
}

#[derive(Debug, Clone)]
pub struct SyncGroup {
    members: Vec<Router>,
    state: State,
    actions: VecDeque<GroupAction>,
}

impl SyncGroup {
    pub fn new(members: Vec<Params>) -> Self {
        let members = members
            .into_iter()
            .map(|p| {
                let mut r = Router::new(p);
                r.set_gated(true);
                r
            })
            .collect();
        SyncGroup {
            members,
            state: State::Init,
            actions: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn member(&self, i: usize) -> Option<&Router> {
        self.members.get(i)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn start(&mut self, now: Instant) {
        for m in &mut self.members {
            m.start(now);
        }
        self.settle(now);
    }

    pub fn shutdown(&mut self, now: Instant) {
        for m in &mut self.members {
            m.shutdown(now);
        }
        self.settle(now);
    }

    /// An advert for member `i` (the caller dispatches by interface and VRID).
    pub fn handle_advert(
        &mut self,
        now: Instant,
        i: usize,
        from: IpAddr,
        advert: &Advert,
    ) -> Result<(), Drop> {
        let r = match self.members.get_mut(i) {
            Some(m) => m.handle_advert(now, from, advert),
            None => Err(Drop::OtherVrid),
        };
        self.settle(now);
        r
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for m in &mut self.members {
            if m.poll_timeout().is_some_and(|t| t <= now) {
                m.handle_timeout(now);
            }
        }
        self.settle(now);
    }

    /// The cluster moved the group here: every member's master-down timer expires now (see
    /// [`Router::take_over`]), and the group rules decide as for any takeover.
    pub fn take_over(&mut self, now: Instant) {
        for m in &mut self.members {
            m.take_over(now);
        }
        self.handle_timeout(now);
    }

    /// Fleet mode: whether placement makes this director the group's owner.
    pub fn set_cluster_owner(&mut self, owner: bool) {
        for m in &mut self.members {
            m.set_cluster_owner(owner);
        }
    }

    /// Every member is held back, or released ([`Router::hold_back`]).
    pub fn hold_back(&mut self, now: Instant, on: bool) {
        for m in &mut self.members {
            m.hold_back(now, on);
        }
        self.handle_timeout(now);
    }

    /// Member `i`'s first GARP round after a takeover has left ([`Router::announced`]).
    pub fn announced(&mut self, now: Instant, i: usize) {
        if let Some(m) = self.members.get_mut(i) {
            m.announced(now);
        }
        self.handle_timeout(now);
    }

    /// Every master member announces itself at once ([`Router::announce`]).
    pub fn announce(&mut self, now: Instant) {
        for m in &mut self.members {
            m.announce(now);
        }
    }

    /// A tracker result for member `i`.
    pub fn set_fault(&mut self, now: Instant, i: usize, fault: bool) {
        if let Some(m) = self.members.get_mut(i) {
            m.set_fault(now, fault);
        }
        self.settle(now);
    }

    pub fn set_effective_priority(&mut self, i: usize, priority: i32) {
        if let Some(m) = self.members.get_mut(i) {
            m.set_effective_priority(priority);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.members.iter().filter_map(Router::poll_timeout).min()
    }

    pub fn poll_action(&mut self) -> Option<GroupAction> {
        self.actions.pop_front()
    }

    /// Applies the group rules until nothing changes, then queues what happened.
    fn settle(&mut self, now: Instant) {
        let any_fault = self.members.iter().any(Router::own_fault);
        for m in &mut self.members {
            m.set_group_fault(now, any_fault && !m.own_fault());
        }
        if !any_fault {
            let leaving_master = self.state == State::Master
                && self.members.iter().any(|m| m.state() == State::Backup);
            if leaving_master {
                for m in &mut self.members {
                    m.force_backup(now);
                }
            } else if self.state != State::Master
                && self.members.iter().any(Router::wants_master)
                && self
                    .members
                    .iter()
                    .all(|m| m.wants_master() || m.state() == State::Master)
            {
                for m in &mut self.members {
                    m.force_master(now);
                }
            }
        }
        for (i, m) in self.members.iter_mut().enumerate() {
            while let Some(a) = m.poll_action() {
                self.actions.push_back(GroupAction::Member(i, a));
            }
        }
        let states: Vec<State> = self.members.iter().map(Router::state).collect();
        let to = if states.contains(&State::Fault) {
            State::Fault
        } else if !states.is_empty() && states.iter().all(|s| *s == State::Master) {
            State::Master
        } else if states.iter().all(|s| *s == State::Init) {
            State::Init
        } else {
            State::Backup
        };
        if to != self.state {
            self.actions.push_back(GroupAction::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::wire::Version;

    fn ip(a: u8, b: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 99, a, b))
    }

    /// One director's sync group of two members (VRID 1 on "eth0", VRID 2 on "eth1").
    fn director(host: u8, priority: u8) -> SyncGroup {
        let members = (1..=2u8)
            .map(|vrid| {
                let mut p = Params::new(vrid, Version::V3, priority, 10, ip(vrid, host));
                p.addresses = vec![ip(vrid, 100)];
                p
            })
            .collect();
        SyncGroup::new(members)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Directors on two segments (one per member index): adverts of member i reach member i
    /// of every other live director.
    struct Fleet {
        now: Instant,
        groups: Vec<SyncGroup>,
        alive: Vec<bool>,
        in_flight: Vec<(Instant, usize, usize, IpAddr, Advert)>,
        log: Vec<(usize, GroupAction)>,
    }

    impl Fleet {
        fn new(groups: Vec<SyncGroup>) -> Self {
            let n = groups.len();
            Fleet {
                now: Instant::now(),
                groups,
                alive: vec![false; n],
                in_flight: Vec::new(),
                log: Vec::new(),
            }
        }

        fn drain(&mut self, g: usize) {
            while let Some(a) = self.groups[g].poll_action() {
                if let GroupAction::Member(i, Action::SendAdvert(adv)) = &a {
                    let from = self.groups[g].member(*i).unwrap().params().source;
                    for h in 0..self.groups.len() {
                        if h != g {
                            self.in_flight
                                .push((self.now + ms(1), h, *i, from, adv.clone()));
                        }
                    }
                }
                self.log.push((g, a));
            }
        }

        fn start(&mut self, g: usize) {
            self.alive[g] = true;
            self.groups[g].start(self.now);
            self.drain(g);
        }

        fn act(&mut self, g: usize, f: impl FnOnce(&mut SyncGroup, Instant)) {
            f(&mut self.groups[g], self.now);
            self.drain(g);
        }

        fn run_for(&mut self, d: Duration) {
            let end = self.now + d;
            loop {
                let timer = (0..self.groups.len())
                    .filter(|&g| self.alive[g])
                    .filter_map(|g| self.groups[g].poll_timeout().map(|t| (t, g)))
                    .min();
                let packet = self.in_flight.iter().map(|p| p.0).min();
                let t = match (timer.map(|x| x.0), packet) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => match a.or(b) {
                        Some(t) => t,
                        None => break,
                    },
                };
                if t > end {
                    break;
                }
                self.now = self.now.max(t);
                if packet == Some(t) {
                    let k = self.in_flight.iter().position(|p| p.0 == t).unwrap();
                    let (_, g, i, from, adv) = self.in_flight.remove(k);
                    if self.alive[g] {
                        let _ = self.groups[g].handle_advert(self.now, i, from, &adv);
                        self.drain(g);
                    }
                } else if let Some((_, g)) = timer {
                    self.groups[g].handle_timeout(self.now);
                    self.drain(g);
                }
            }
            self.now = end;
        }

        fn member_states(&self, g: usize) -> Vec<State> {
            (0..2)
                .map(|i| self.groups[g].member(i).unwrap().state())
                .collect()
        }
    }

    #[test]
    fn the_group_goes_master_as_a_whole() {
        let mut f = Fleet::new(vec![director(1, 150), director(2, 100)]);
        f.start(0);
        f.start(1);
        f.run_for(ms(2_000));
        assert_eq!(f.groups[0].state(), State::Master);
        assert_eq!(f.member_states(0), [State::Master, State::Master]);
        assert_eq!(f.member_states(1), [State::Backup, State::Backup]);
        assert!(f.log.iter().any(|(g, a)| *g == 0
            && *a
                == GroupAction::StateChanged {
                    from: State::Backup,
                    to: State::Master
                }));
    }

    #[test]
    fn a_fault_in_one_member_moves_the_whole_group() {
        let mut f = Fleet::new(vec![director(1, 150), director(2, 100)]);
        f.start(0);
        f.start(1);
        f.run_for(ms(2_000));
        f.act(0, |g, now| g.set_fault(now, 1, true));
        assert_eq!(f.groups[0].state(), State::Fault);
        assert_eq!(f.member_states(0), [State::Fault, State::Fault]);
        // Both members released with priority 0.
        for i in 0..2 {
            assert!(f.log.iter().any(|(g, a)| *g == 0
                && matches!(a, GroupAction::Member(m, Action::SendAdvert(adv)) if *m == i && adv.priority == 0)));
        }
        f.run_for(ms(1_000));
        assert_eq!(f.member_states(1), [State::Master, State::Master]);
        f.act(0, |g, now| g.set_fault(now, 1, false));
        assert_eq!(f.member_states(0), [State::Backup, State::Backup]);
        f.run_for(ms(2_000));
        // Director 0 has the higher priority and preempts again, as a group.
        assert_eq!(f.member_states(0), [State::Master, State::Master]);
        assert_eq!(f.member_states(1), [State::Backup, State::Backup]);
    }

    #[test]
    fn a_member_yielding_to_a_higher_priority_takes_the_group_to_backup() {
        let mut f = Fleet::new(vec![director(1, 100)]);
        f.start(0);
        f.run_for(ms(2_000));
        assert_eq!(f.member_states(0), [State::Master, State::Master]);
        let adv = Advert {
            version: Version::V3,
            vrid: 1,
            priority: 200,
            interval_cs: 10,
            addresses: vec![ip(1, 100)],
            auth: crate::wire::Auth::None,
        };
        f.act(0, |g, now| {
            g.handle_advert(now, 0, ip(1, 9), &adv).unwrap();
        });
        assert_eq!(f.member_states(0), [State::Backup, State::Backup]);
        assert_eq!(f.groups[0].state(), State::Backup);
    }

    proptest! {
        /// Whatever the start times and faults, once things settle the members of one
        /// director's group are never split between directors: one director is master of
        /// both, the highest-priority healthy one.
        #[test]
        fn groups_never_split(
            prios in proptest::collection::btree_set(1u8..=254, 2..4),
            starts in proptest::collection::vec(0u64..1_500, 4),
            faults in proptest::collection::vec((0usize..4, 0usize..2, 0u64..800, any::<bool>()), 0..5),
        ) {
            let prios: Vec<u8> = prios.into_iter().collect();
            let n = prios.len();
            let mut f = Fleet::new(prios.iter().enumerate().map(|(i, &p)| director(i as u8 + 1, p)).collect());
            let mut order: Vec<(u64, usize)> = (0..n).map(|g| (starts[g], g)).collect();
            order.sort();
            let mut last = 0;
            for (t, g) in order {
                f.run_for(ms(t - last));
                last = t;
                f.start(g);
            }
            for (g, m, after, fault) in faults {
                f.run_for(ms(after));
                f.act(g % n, |grp, now| grp.set_fault(now, m, fault));
            }
            f.run_for(ms(3_000));
            let healthy: Vec<usize> = (0..n).filter(|&g| f.groups[g].state() != State::Fault).collect();
            for g in 0..n {
                let s = f.member_states(g);
                prop_assert!(s[0] == s[1], "director {} split: {:?}", g, s);
            }
            let masters: Vec<usize> = (0..n).filter(|&g| f.groups[g].state() == State::Master).collect();
            match healthy.iter().max_by_key(|&&g| prios[g]) {
                Some(&best) => prop_assert_eq!(masters, vec![best]),
                None => prop_assert!(masters.is_empty()),
            }
        }
    }
}
