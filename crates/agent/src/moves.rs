//! Planned and unplanned moves as one director sees them: when a unit becomes master here,
//! why (a committed assignment, the owner's confirmed death, or VRRP's own master-down
//! timer), and for an unplanned takeover how long the unit had no live master before its
//! VIPs were up here. Pure: time is an argument; the instance actor feeds it and hands what
//! comes out to [`crate::metrics::Metrics`].

use std::time::{Duration, Instant};

use flotilla_vrrp::machine::Reason;

/// Why fleet mode asks a unit to become master now (carried by `InstanceMsg::Place`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// A committed assignment made this director the unit's owner.
    Planned,
    /// The owner was confirmed dead by the mesh; `owner_last_heard` is when its last
    /// heartbeat arrived here.
    Failover { owner_last_heard: Option<Instant> },
}

/// How a unit came to be master here: the `kind` label of the takeover metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TakeoverKind {
    Planned,
    Failover,
    Vrrp,
}

impl TakeoverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TakeoverKind::Planned => "planned",
            TakeoverKind::Failover => "failover",
            TakeoverKind::Vrrp => "vrrp",
        }
    }
}

/// A takeover that completed: the unit is master here with its VIPs added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Took {
    pub kind: TakeoverKind,
    /// Unplanned takeovers only: from the previous master's last sign of life (its last
    /// heartbeat for `Failover`, its last advert for `Vrrp`) to now.
    pub outage: Option<Duration>,
}

/// What the members' transitions to master said during one round of actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cause {
    /// Followed its sync group (the member that started it may say more).
    Group,
    /// The master-down timer expired (or was cut short by a priority-0 advert).
    Timer,
    /// The cluster asked (`Router::take_over`).
    Cluster,
}

/// What an advert says about the master that sent it, as a backup here sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// A master this backup waits on (priority at least ours, or we do not preempt).
    Alive,
    /// A lower-priority master this backup will preempt when its timer runs out: alive, and
    /// replaced on purpose.
    Preempted,
    /// Priority 0: the master is releasing.
    Released,
}

/// One unit's watch, owned by its instance actor.
#[derive(Debug, Default)]
pub struct MoveWatch {
    /// The last `Place` asked for a takeover that has not happened yet.
    pending: Option<Takeover>,
    /// The last advert accepted while not master, and what it said of its sender.
    last_advert: Option<(Instant, Sender)>,
    /// The unit was master (every member) when last settled.
    master: bool,
    /// The strongest cause seen since the unit was last settled.
    cause: Option<Cause>,
}

impl MoveWatch {
    /// Fleet mode placed the unit: `Some` asks for a takeover now, `None` withdraws an earlier
    /// request. A unit already master here takes nothing over.
    pub fn placed(&mut self, takeover: Option<Takeover>) {
        self.pending = if self.master { None } else { takeover };
    }

    /// An advert at `priority` passed every check; `ours` is this router's effective
    /// priority and `preempt` whether it preempts a lower master.
    pub fn advert(&mut self, now: Instant, priority: u8, ours: u8, preempt: bool) {
        if self.master {
            return;
        }
        let sender = if priority == 0 {
            Sender::Released
        } else if preempt && priority < ours {
            Sender::Preempted
        } else {
            Sender::Alive
        };
        self.last_advert = Some((now, sender));
    }

    /// A member's state machine went to MASTER for `reason`.
    pub fn member_master(&mut self, reason: &Reason) {
        let cause = match reason {
            Reason::Takeover => Cause::Cluster,
            Reason::MasterDown | Reason::MasterReleased => Cause::Timer,
            Reason::SyncGroup => Cause::Group,
            // The address owner at start, a fault clearing on it: nothing taken from anybody.
            _ => return,
        };
        self.cause = self.cause.max(Some(cause));
    }

    /// After a round of actions (VIPs added already): `master` is whether every member is
    /// MASTER now. Returns the takeover that just completed, if one did.
    pub fn settled(&mut self, now: Instant, master: bool) -> Option<Took> {
        let was = std::mem::replace(&mut self.master, master);
        if !master {
            if was {
                self.pending = None;
            }
            return None;
        }
        if was {
            return None;
        }
        let cause = self.cause.take()?;
        let pending = self.pending.take();
        let since_advert = match self.last_advert.take() {
            Some((t, Sender::Alive)) => Some(now.saturating_duration_since(t)),
            // A released or preempted master was replaced on purpose: not an outage.
            _ => None,
        };
        Some(match (pending, cause) {
            (Some(Takeover::Failover { owner_last_heard }), _) => Took {
                kind: TakeoverKind::Failover,
                outage: owner_last_heard
                    .map(|t| now.saturating_duration_since(t))
                    .or(since_advert),
            },
            (Some(Takeover::Planned), _) | (None, Cause::Cluster) => Took {
                kind: TakeoverKind::Planned,
                outage: None,
            },
            (None, Cause::Timer | Cause::Group) => Took {
                kind: TakeoverKind::Vrrp,
                outage: since_advert,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn master_down_after_adverts_is_a_vrrp_takeover_timed_from_the_last_advert() {
        let t0 = Instant::now();
        let mut w = MoveWatch::default();
        assert_eq!(w.settled(t0, false), None);
        w.advert(t0 + 100 * MS, 150, 100, true);
        w.advert(t0 + 1100 * MS, 150, 100, true);
        w.member_master(&Reason::MasterDown);
        let took = w.settled(t0 + 4200 * MS, true);
        assert_eq!(
            took,
            Some(Took {
                kind: TakeoverKind::Vrrp,
                outage: Some(3100 * MS)
            })
        );
        // Staying master is not another takeover.
        w.advert(t0 + 4300 * MS, 100, 150, true);
        assert_eq!(w.settled(t0 + 4400 * MS, true), None);
    }

    #[test]
    fn a_cold_start_or_a_released_master_counts_without_an_outage() {
        let t0 = Instant::now();
        let mut w = MoveWatch::default();
        w.member_master(&Reason::MasterDown);
        assert_eq!(
            w.settled(t0, true),
            Some(Took {
                kind: TakeoverKind::Vrrp,
                outage: None
            })
        );
        w.member_master(&Reason::HigherPriority {
            from: std::net::Ipv4Addr::new(10, 0, 0, 9).into(),
            priority: 200,
        });
        assert_eq!(w.settled(t0 + MS, false), None);
        w.advert(t0 + 2 * MS, 200, 100, true);
        w.advert(t0 + 3 * MS, 0, 100, true);
        w.member_master(&Reason::MasterReleased);
        assert_eq!(
            w.settled(t0 + 4 * MS, true),
            Some(Took {
                kind: TakeoverKind::Vrrp,
                outage: None
            })
        );
    }

    #[test]
    fn preempting_a_live_lower_master_is_no_outage_unless_we_do_not_preempt() {
        let t0 = Instant::now();
        let mut w = MoveWatch::default();
        w.advert(t0, 100, 150, true);
        w.member_master(&Reason::MasterDown);
        assert_eq!(
            w.settled(t0 + 3 * MS, true),
            Some(Took {
                kind: TakeoverKind::Vrrp,
                outage: None
            })
        );
        assert_eq!(w.settled(t0 + 4 * MS, false), None);
        // Without preemption a lower master is the one waited on: its silence is an outage.
        w.advert(t0 + 5 * MS, 100, 150, false);
        w.member_master(&Reason::MasterDown);
        assert_eq!(
            w.settled(t0 + 3005 * MS, true).and_then(|t| t.outage),
            Some(3000 * MS)
        );
    }

    #[test]
    fn a_failover_is_timed_from_the_owners_last_heartbeat() {
        let t0 = Instant::now();
        let mut w = MoveWatch::default();
        w.advert(t0, 200, 100, true);
        w.placed(Some(Takeover::Failover {
            owner_last_heard: Some(t0 + 500 * MS),
        }));
        w.member_master(&Reason::Takeover);
        assert_eq!(
            w.settled(t0 + 620 * MS, true),
            Some(Took {
                kind: TakeoverKind::Failover,
                outage: Some(120 * MS)
            })
        );
    }

    #[test]
    fn a_planned_takeover_and_a_cluster_owner_preempting_are_planned() {
        let t0 = Instant::now();
        let mut w = MoveWatch::default();
        w.advert(t0, 200, 100, true);
        w.placed(Some(Takeover::Planned));
        // A sync group: every member follows the group.
        w.member_master(&Reason::SyncGroup);
        w.member_master(&Reason::SyncGroup);
        let planned = Some(Took {
            kind: TakeoverKind::Planned,
            outage: None,
        });
        assert_eq!(w.settled(t0 + MS, true), planned);
        assert_eq!(w.settled(t0 + 2 * MS, false), None);
        w.member_master(&Reason::Takeover);
        assert_eq!(w.settled(t0 + 3 * MS, true), planned);
    }

    #[test]
    fn a_request_withdrawn_or_made_while_master_takes_nothing_over() {
        let t0 = Instant::now();
        let mut w = MoveWatch::default();
        w.placed(Some(Takeover::Planned));
        w.placed(None);
        w.member_master(&Reason::MasterDown);
        let took = w.settled(t0, true).map(|t| t.kind);
        assert_eq!(took, Some(TakeoverKind::Vrrp));
        w.placed(Some(Takeover::Failover {
            owner_last_heard: None,
        }));
        assert_eq!(w.settled(t0 + MS, false), None);
        w.member_master(&Reason::MasterDown);
        let took = w.settled(t0 + 2 * MS, true).map(|t| t.kind);
        assert_eq!(took, Some(TakeoverKind::Vrrp));
    }

    #[test]
    fn a_member_reaching_master_alone_is_not_the_unit_taking_over() {
        let t0 = Instant::now();
        let mut w = MoveWatch::default();
        w.member_master(&Reason::MasterDown);
        assert_eq!(w.settled(t0, false), None);
        w.member_master(&Reason::SyncGroup);
        assert_eq!(
            w.settled(t0 + MS, true).map(|t| t.kind),
            Some(TakeoverKind::Vrrp)
        );
    }
}
