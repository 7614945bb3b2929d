//! The failure detector, sans-IO: heartbeats and gossip come in as calls, time is an
//! argument, verdicts come out of [`FailureDetector::poll_event`], and
//! [`FailureDetector::poll_timeout`] says when to call again.
//!
//! A peer heard from is up. Silent for `suspect_after` intervals it is *suspected*. It is
//! *dead* only once a second director, itself up, reports suspecting it too (gossip), so a
//! single lost path never triggers a takeover. In a fleet of two directors there is nobody
//! to ask: a suspicion is a death at once. With three or more directors and nobody else up
//! (every other peer silent), no death is ever confirmed: the survivors keep their last
//! ranks and VRRP's own timers decide (DESIGN "How VRRP and the cluster fit together" 5, 6).
//! Hearing from a suspected or dead peer brings it back up.
//!
//! The silence that raises suspicion adapts to the path: it is `suspect_after` intervals, or
//! twice the longest gap between a peer's heartbeats seen in the last [`GAP_WINDOW`] if that
//! is longer, never above `max_suspect_timeout`. A director starved of CPU (or a congested
//! path) sends late heartbeats; without this, such gaps are taken for deaths, each false death
//! moves units, the moves cost CPU, and the fleet flaps (seen with 3,000 VIPs in debug builds
//! on a loaded 2-core machine: ~1,200 false deaths in 3 minutes). Gaps longer than the maximum
//! are outages, not jitter, and are not learnt.
//!
//! A detector that itself runs late — called more than [`DetectorConfig::stall_slack`] after
//! the moment [`FailureDetector::poll_timeout`] asked for, because its own process was starved
//! or stopped — cannot tell its own stall from the peers' silence: their heartbeats may be
//! waiting unread in its sockets. It then suspects nobody for one more base suspicion timeout
//! (the *grace*), in which the queued heartbeats arrive. A peer that really died is suspected
//! that much later, and only after such a stall.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// Default heartbeat interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(20);
/// Default number of missed intervals before a peer is suspected.
pub const DEFAULT_SUSPECT_AFTER: u32 = 5;
/// Default ceiling of the adaptive suspicion timeout.
pub const DEFAULT_MAX_SUSPECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a long gap between a peer's heartbeats keeps its suspicion timeout raised.
pub const GAP_WINDOW: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorConfig {
    pub interval: Duration,
    /// Missed intervals before suspicion (`k`).
    pub suspect_after: u32,
    /// The adaptive suspicion timeout never exceeds this (nor falls below `k` intervals).
    pub max_suspect_timeout: Duration,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            interval: DEFAULT_INTERVAL,
            suspect_after: DEFAULT_SUSPECT_AFTER,
            max_suspect_timeout: DEFAULT_MAX_SUSPECT_TIMEOUT,
        }
    }
}

impl DetectorConfig {
    /// How long a peer with punctual heartbeats may stay silent before it is suspected.
    pub fn suspect_timeout(&self) -> Duration {
        self.interval.saturating_mul(self.suspect_after)
    }

    /// How late the detector may run before it takes itself for stalled: half the base
    /// suspicion timeout, at least one interval.
    pub fn stall_slack(&self) -> Duration {
        (self.suspect_timeout() / 2).max(self.interval)
    }

    /// The suspicion timeout for a peer whose longest recent gap is `worst_gap`.
    pub fn adaptive_timeout(&self, worst_gap: Duration) -> Duration {
        let base = self.suspect_timeout();
        base.max(worst_gap.saturating_mul(2))
            .min(self.max_suspect_timeout.max(base))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStatus {
    /// Never heard from.
    Unknown,
    Up,
    Suspected,
    Dead,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Up(String),
    Suspected(String),
    /// `confirmed_by` names the directors, up at the time, that suspected it too; empty in a
    /// two-director fleet. `last_heard`: its last heartbeat before this verdict.
    Dead {
        name: String,
        confirmed_by: Vec<String>,
        last_heard: Option<Instant>,
    },
}

#[derive(Debug)]
struct Peer {
    status: PeerStatus,
    last_heard: Option<Instant>,
    /// Directors whose latest gossip says they suspect this peer.
    suspected_by: BTreeSet<String>,
    /// The longest gap between its heartbeats within [`GAP_WINDOW`], and when it ended.
    worst_gap: Option<(Duration, Instant)>,
}

impl Peer {
    fn timeout(&self, config: &DetectorConfig, now: Instant) -> Duration {
        let gap = match self.worst_gap {
            Some((gap, at)) if now.saturating_duration_since(at) < GAP_WINDOW => gap,
            _ => Duration::ZERO,
        };
        config.adaptive_timeout(gap)
    }

    fn learn_gap(&mut self, config: &DetectorConfig, now: Instant) {
        let Some(last) = self.last_heard else {
            return;
        };
        let gap = now.saturating_duration_since(last);
        if gap > config.max_suspect_timeout.max(config.suspect_timeout()) {
            return; // an outage, not jitter
        }
        let current = match self.worst_gap {
            Some((g, at)) if now.saturating_duration_since(at) < GAP_WINDOW => g,
            _ => Duration::ZERO,
        };
        if gap >= current {
            self.worst_gap = Some((gap, now));
        }
    }
}

#[derive(Debug)]
pub struct FailureDetector {
    config: DetectorConfig,
    peers: BTreeMap<String, Peer>,
    verdicts: VecDeque<Verdict>,
    /// When this detector asked to be called next (its `poll_timeout` after the last call).
    due: Option<Instant>,
    /// After a stall of this detector: nobody is suspected before this instant.
    grace_until: Option<Instant>,
    /// How many times this detector found itself stalled.
    stalls: u64,
}

impl FailureDetector {
    /// `peers` are the other directors of the fleet (not this one).
    pub fn new(config: DetectorConfig, peers: impl IntoIterator<Item = String>) -> Self {
        let peers = peers
            .into_iter()
            .map(|name| {
                (
                    name,
                    Peer {
                        status: PeerStatus::Unknown,
                        last_heard: None,
                        suspected_by: BTreeSet::new(),
                        worst_gap: None,
                    },
                )
            })
            .collect();
        FailureDetector {
            config,
            peers,
            verdicts: VecDeque::new(),
            due: None,
            grace_until: None,
            stalls: 0,
        }
    }

    /// How many times this detector ran late enough to take itself for stalled (and granted
    /// the peers a grace period).
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// A heartbeat from `peer` arrived at `now`, carrying the peers it suspects. Returns
    /// false (and changes nothing) for a name that is not a peer.
    pub fn heard(&mut self, peer: &str, suspects: &[String], now: Instant) -> bool {
        if !self.peers.contains_key(peer) {
            return false;
        }
        // Judge lateness before this heartbeat moves the deadline.
        self.check_stall(now);
        let Some(p) = self.peers.get_mut(peer) else {
            return false;
        };
        p.learn_gap(&self.config, now);
        p.last_heard = Some(p.last_heard.map_or(now, |t| t.max(now)));
        if p.status != PeerStatus::Up {
            p.status = PeerStatus::Up;
            self.verdicts.push_back(Verdict::Up(peer.to_string()));
        }
        for (name, other) in self.peers.iter_mut() {
            if name == peer {
                continue;
            }
            if suspects.iter().any(|s| s == name) {
                other.suspected_by.insert(peer.to_string());
            } else {
                other.suspected_by.remove(peer);
            }
        }
        self.handle_timeout(now);
        true
    }

    /// Starts watching `peer` (a director added to the fleet): never heard from yet, so
    /// unknown, never suspected before its first heartbeat. A known peer is left as it is.
    pub fn add_peer(&mut self, peer: String, now: Instant) {
        self.peers.entry(peer).or_insert(Peer {
            status: PeerStatus::Unknown,
            last_heard: None,
            suspected_by: BTreeSet::new(),
            worst_gap: None,
        });
        // One peer fewer or more changes whether a second opinion exists.
        self.handle_timeout(now);
    }

    /// Forgets `gone` (directors removed from the fleet, all at once) without a verdict,
    /// and their gossip about the others with them. Their verdicts still queued are dropped.
    /// The survivors are judged on the new set only after the whole batch is gone, so a
    /// fleet shrinking from many to two does not pass through a state of one peer.
    pub fn remove_peers(&mut self, gone: &[String], now: Instant) {
        let before = self.peers.len();
        self.peers.retain(|name, _| !gone.contains(name));
        if self.peers.len() == before {
            return;
        }
        for other in self.peers.values_mut() {
            other.suspected_by.retain(|s| !gone.contains(s));
        }
        self.verdicts.retain(|v| match v {
            Verdict::Up(name) | Verdict::Suspected(name) | Verdict::Dead { name, .. } => {
                !gone.contains(name)
            }
        });
        self.handle_timeout(now);
    }

    /// Called later than it asked to be (see the module notes): grants the grace.
    fn check_stall(&mut self, now: Instant) {
        if let Some(due) = self.due
            && now > due + self.config.stall_slack()
        {
            self.stalls += 1;
            self.grace_until = Some(now + self.config.suspect_timeout());
        }
        self.due = None;
    }

    /// Advances time: suspects the silent, confirms deaths.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_stall(now);
        let in_grace = self.grace_until.is_some_and(|g| now < g);
        for (name, p) in self.peers.iter_mut() {
            let timeout = p.timeout(&self.config, now);
            if p.status == PeerStatus::Up
                && !in_grace
                && p.last_heard
                    .is_some_and(|t| now.saturating_duration_since(t) >= timeout)
            {
                p.status = PeerStatus::Suspected;
                self.verdicts.push_back(Verdict::Suspected(name.clone()));
            }
        }
        let up: BTreeSet<&String> = self
            .peers
            .iter()
            .filter(|(_, p)| p.status == PeerStatus::Up)
            .map(|(n, _)| n)
            .collect();
        let alone_with_it = self.peers.len() == 1;
        let mut dead = Vec::new();
        for (name, p) in &self.peers {
            if p.status != PeerStatus::Suspected {
                continue;
            }
            let confirmed_by: Vec<String> = p
                .suspected_by
                .iter()
                .filter(|s| up.contains(s))
                .cloned()
                .collect();
            if alone_with_it || !confirmed_by.is_empty() {
                dead.push((name.clone(), confirmed_by, p.last_heard));
            }
        }
        for (name, confirmed_by, last_heard) in dead {
            if let Some(p) = self.peers.get_mut(&name) {
                p.status = PeerStatus::Dead;
            }
            self.verdicts.push_back(Verdict::Dead {
                name,
                confirmed_by,
                last_heard,
            });
        }
        self.due = self.poll_timeout();
    }

    pub fn poll_event(&mut self) -> Option<Verdict> {
        self.verdicts.pop_front()
    }

    /// When `handle_timeout` must next be called: the earliest moment an up peer becomes
    /// suspect. Deaths are confirmed by gossip, which arrives through `heard`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let next = self
            .peers
            .values()
            .filter(|p| p.status == PeerStatus::Up)
            .filter_map(|p| {
                let t = p.last_heard?;
                // The timeout as it will be then (a raised one may have expired by then).
                Some(t + p.timeout(&self.config, t))
            })
            .min()?;
        // Not before a grace period ends (suspecting is what waits for it).
        Some(self.grace_until.map_or(next, |g| next.max(g)))
    }

    /// The silence after which `peer` is suspected now (adaptive; see the module notes).
    pub fn suspect_timeout(&self, peer: &str, now: Instant) -> Option<Duration> {
        self.peers.get(peer).map(|p| p.timeout(&self.config, now))
    }

    /// The peers this director suspects or holds dead: its gossip.
    pub fn suspects(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|(_, p)| matches!(p.status, PeerStatus::Suspected | PeerStatus::Dead))
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn status(&self, peer: &str) -> Option<PeerStatus> {
        self.peers.get(peer).map(|p| p.status)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("d{i}")).collect()
    }

    fn drain(fd: &mut FailureDetector) -> Vec<Verdict> {
        std::iter::from_fn(|| fd.poll_event()).collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn unknown_names_and_never_heard_peers_change_nothing() {
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(2));
        assert!(!fd.heard("stranger", &[], t0));
        fd.handle_timeout(t0 + Duration::from_secs(3600));
        assert!(drain(&mut fd).is_empty());
        assert_eq!(fd.status("d1"), Some(PeerStatus::Unknown));
        assert_eq!(fd.poll_timeout(), None);
    }

    #[test]
    fn late_heartbeats_raise_the_suspicion_timeout_for_a_while() {
        let t0 = Instant::now();
        let cfg = DetectorConfig::default();
        let mut fd = FailureDetector::new(cfg, names(2));
        let mut t = t0;
        for _ in 0..10 {
            fd.heard("d1", &[], t);
            fd.heard("d2", &[], t);
            t += ms(20);
        }
        assert_eq!(fd.suspect_timeout("d1", t), Some(ms(100)));
        // d1 is starved once: a 90 ms gap (under the 100 ms timeout); d2 stays punctual.
        for _ in 0..3 {
            fd.heard("d2", &[], t);
            t += ms(20);
        }
        t += ms(10);
        fd.heard("d1", &[], t);
        fd.heard("d2", &[], t);
        assert_eq!(fd.suspect_timeout("d1", t), Some(ms(180)));
        assert_eq!(fd.suspect_timeout("d2", t), Some(ms(100)));
        drain(&mut fd);
        // 150 ms of silence now is jitter for d1, not for d2.
        fd.handle_timeout(t + ms(150));
        assert_eq!(drain(&mut fd), vec![Verdict::Suspected("d2".into())]);
        fd.handle_timeout(t + ms(180));
        assert_eq!(drain(&mut fd), vec![Verdict::Suspected("d1".into())]);
        // The learnt gap is forgotten after GAP_WINDOW.
        let later = t + GAP_WINDOW + ms(1);
        assert_eq!(fd.suspect_timeout("d1", later), Some(ms(100)));
    }

    #[test]
    fn the_adaptive_timeout_has_a_ceiling_and_outages_are_not_learnt() {
        let t0 = Instant::now();
        let cfg = DetectorConfig::default();
        let mut fd = FailureDetector::new(cfg, names(1));
        fd.heard("d1", &[], t0);
        fd.heard("d1", &[], t0 + ms(400)); // a 400 ms gap: timeout 800 ms → capped
        assert_eq!(
            fd.suspect_timeout("d1", t0 + ms(400)),
            Some(DEFAULT_MAX_SUSPECT_TIMEOUT)
        );
        let mut fd = FailureDetector::new(cfg, names(1));
        fd.heard("d1", &[], t0);
        fd.heard("d1", &[], t0 + ms(5000)); // down for 5 s and back: not jitter
        assert_eq!(fd.suspect_timeout("d1", t0 + ms(5000)), Some(ms(100)));
        assert_eq!(cfg.adaptive_timeout(ms(10)), ms(100));
        assert_eq!(cfg.adaptive_timeout(ms(120)), ms(240));
    }

    #[test]
    fn three_directors_one_dies_and_both_survivors_agree() {
        // Seen from d0, with peers d1, d2; d2 stops at 40 ms.
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(2));
        for i in 0..=2 {
            fd.heard("d1", &[], t0 + ms(20 * i));
            fd.heard("d2", &[], t0 + ms(20 * i));
        }
        assert_eq!(
            drain(&mut fd),
            vec![Verdict::Up("d1".into()), Verdict::Up("d2".into())]
        );
        for i in 3..=6 {
            fd.heard("d1", &[], t0 + ms(20 * i));
        }
        assert!(drain(&mut fd).is_empty());
        fd.handle_timeout(t0 + ms(140));
        assert_eq!(drain(&mut fd), vec![Verdict::Suspected("d2".into())]);
        assert_eq!(fd.suspects(), vec!["d2".to_string()]);
        fd.heard("d1", &["d2".into()], t0 + ms(141));
        assert_eq!(
            drain(&mut fd),
            vec![Verdict::Dead {
                name: "d2".into(),
                confirmed_by: vec!["d1".into()],
                last_heard: Some(t0 + ms(40)),
            }]
        );
        fd.heard("d2", &[], t0 + ms(150));
        assert_eq!(drain(&mut fd), vec![Verdict::Up("d2".into())]);
        assert!(fd.suspects().is_empty());
    }

    #[test]
    fn gossip_before_own_suspicion_confirms_at_suspicion() {
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(2));
        fd.heard("d2", &[], t0);
        fd.heard("d1", &["d2".into()], t0 + ms(90));
        assert_eq!(fd.status("d2"), Some(PeerStatus::Up));
        drain(&mut fd);
        fd.handle_timeout(t0 + ms(100));
        assert_eq!(
            drain(&mut fd),
            vec![
                Verdict::Suspected("d2".into()),
                Verdict::Dead {
                    name: "d2".into(),
                    confirmed_by: vec!["d1".into()],
                    last_heard: Some(t0),
                }
            ]
        );
    }

    #[test]
    fn an_added_peer_is_unknown_until_heard_then_watched_like_the_others() {
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(2));
        fd.heard("d1", &[], t0);
        fd.heard("d2", &[], t0);
        drain(&mut fd);
        fd.add_peer("d3".into(), t0 + ms(10));
        // Never heard: never suspected, however long it stays away.
        for i in 1..=10 {
            fd.heard("d1", &[], t0 + ms(20 * i));
            fd.heard("d2", &[], t0 + ms(20 * i));
        }
        assert!(drain(&mut fd).is_empty());
        assert_eq!(fd.status("d3"), Some(PeerStatus::Unknown));
        fd.heard("d3", &[], t0 + ms(210));
        assert_eq!(drain(&mut fd), vec![Verdict::Up("d3".into())]);
        // Added again: nothing changes.
        fd.add_peer("d3".into(), t0 + ms(215));
        assert_eq!(fd.status("d3"), Some(PeerStatus::Up));
        // It stops after 210 ms: suspected, and dead since d1 suspects it too.
        for i in 12..=15 {
            fd.heard("d1", &["d3".into()], t0 + ms(20 * i));
            fd.heard("d2", &[], t0 + ms(20 * i));
        }
        fd.handle_timeout(t0 + ms(310));
        let v = drain(&mut fd);
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0], Verdict::Suspected("d3".into()));
        assert!(
            matches!(&v[1], Verdict::Dead { name, confirmed_by, .. }
                if name == "d3" && confirmed_by == &vec!["d1".to_string()]),
            "{v:?}"
        );
    }

    #[test]
    fn a_removed_peer_gets_no_verdict_and_its_gossip_goes_with_it() {
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(3));
        for n in ["d1", "d2", "d3"] {
            fd.heard(n, &[], t0);
        }
        drain(&mut fd);
        // d3 leaves the fleet and falls silent; d2 suspects d1 (a path of its own).
        fd.heard("d3", &["d1".into()], t0 + ms(20));
        fd.remove_peers(&["d3".into()], t0 + ms(30));
        fd.remove_peers(&["d3".into()], t0 + ms(30));
        for i in 2..=20 {
            fd.heard("d1", &[], t0 + ms(20 * i));
            fd.heard("d2", &[], t0 + ms(20 * i));
        }
        fd.handle_timeout(t0 + ms(1000));
        // d1 and d2 fall silent too: only they are judged, d3 never.
        let verdicts = drain(&mut fd);
        assert!(
            verdicts
                .iter()
                .all(|v| !matches!(v, Verdict::Suspected(n) | Verdict::Up(n) if n == "d3")),
            "{verdicts:?}"
        );
        assert!(
            !verdicts
                .iter()
                .any(|v| matches!(v, Verdict::Dead { name, .. } if name == "d3"))
        );
        assert_eq!(fd.status("d3"), None);
        assert!(!fd.heard("d3", &[], t0 + ms(1001)));
        assert!(!fd.suspects().contains(&"d3".to_string()));
    }

    #[test]
    fn removing_all_but_one_suspected_peer_at_once_declares_nothing_on_the_way() {
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(3));
        for n in ["d1", "d2", "d3"] {
            fd.heard(n, &[], t0);
        }
        fd.handle_timeout(t0 + ms(100));
        drain(&mut fd);
        fd.remove_peers(&["d1".into(), "d2".into(), "d3".into()], t0 + ms(110));
        assert!(drain(&mut fd).is_empty());
        assert!(fd.suspects().is_empty());
    }

    #[test]
    fn shrinking_to_two_directors_makes_a_suspicion_a_death() {
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(2));
        fd.heard("d1", &[], t0);
        fd.heard("d2", &[], t0);
        fd.heard("d2", &[], t0 + ms(90));
        drain(&mut fd);
        fd.handle_timeout(t0 + ms(100));
        assert_eq!(drain(&mut fd), vec![Verdict::Suspected("d1".into())]);
        // d2 leaves: nobody is left to confirm, so d1 is dead at once.
        fd.remove_peers(&["d2".into()], t0 + ms(110));
        let v = drain(&mut fd);
        assert!(
            matches!(v.as_slice(), [Verdict::Dead { name, confirmed_by, .. }]
                if name == "d1" && confirmed_by.is_empty()),
            "{v:?}"
        );
    }

    #[test]
    fn withdrawn_gossip_does_not_confirm() {
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(2));
        fd.heard("d2", &[], t0);
        fd.heard("d1", &["d2".into()], t0 + ms(50));
        fd.heard("d1", &[], t0 + ms(90));
        fd.handle_timeout(t0 + ms(100));
        assert_eq!(fd.status("d2"), Some(PeerStatus::Suspected));
    }

    #[test]
    fn gossip_from_a_peer_gone_silent_confirms_nothing() {
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(2));
        fd.heard("d1", &[], t0);
        fd.heard("d2", &["d1".into()], t0);
        fd.handle_timeout(t0 + ms(100));
        assert_eq!(fd.status("d1"), Some(PeerStatus::Suspected));
        assert_eq!(fd.status("d2"), Some(PeerStatus::Suspected));
        fd.handle_timeout(t0 + ms(10_000));
        assert_eq!(fd.status("d1"), Some(PeerStatus::Suspected));
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Advance time by this many ms, then a heartbeat from peer `from` suspecting the
        /// peers in the mask.
        Heard {
            after: u64,
            from: usize,
            mask: u8,
        },
        Tick {
            after: u64,
        },
    }

    fn op(peers: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..60, 0..peers, any::<u8>()).prop_map(|(after, from, mask)| Op::Heard {
                after,
                from,
                mask
            }),
            (0u64..200).prop_map(|after| Op::Tick { after }),
        ]
    }

    #[test]
    fn a_detector_called_late_grants_a_grace_before_suspecting() {
        let config = DetectorConfig::default(); // 20 ms × 5; slack 50 ms
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(config, names(2));
        fd.heard("d1", &[], t0);
        fd.heard("d2", &[], t0);
        assert_eq!(fd.poll_timeout(), Some(t0 + ms(100)));
        // This process was stopped for 400 ms: nobody is suspected yet...
        fd.handle_timeout(t0 + ms(500));
        assert_eq!(fd.stalls(), 1);
        assert_eq!(fd.status("d1"), Some(PeerStatus::Up));
        assert_eq!(fd.poll_timeout(), Some(t0 + ms(600)));
        // ...d2's queued heartbeat is read (not late: the grace moved the deadline)...
        fd.heard("d2", &[], t0 + ms(505));
        assert_eq!(fd.stalls(), 1);
        // ...and d1, still silent when the grace ends, is suspected then, on time.
        fd.handle_timeout(t0 + ms(599));
        assert_eq!(fd.status("d1"), Some(PeerStatus::Up));
        fd.handle_timeout(t0 + ms(600));
        assert_eq!(fd.status("d1"), Some(PeerStatus::Suspected));
        assert_eq!(fd.status("d2"), Some(PeerStatus::Up));
        assert_eq!(fd.stalls(), 1);
    }

    #[test]
    fn a_heartbeat_read_late_is_a_stall_too_and_a_punctual_detector_has_none() {
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(2));
        fd.heard("d1", &[], t0);
        fd.heard("d2", &[], t0);
        for i in 1..=20 {
            fd.heard("d1", &[], t0 + ms(20 * i));
            fd.heard("d2", &[], t0 + ms(20 * i));
        }
        assert_eq!(fd.stalls(), 0);
        // The first thing after a 300 ms stop is d2's queued heartbeat; d1's follows.
        let late = t0 + ms(400 + 300);
        fd.heard("d2", &[], late);
        assert_eq!(fd.stalls(), 1);
        assert_eq!(fd.status("d1"), Some(PeerStatus::Up));
        fd.heard("d1", &[], late + ms(1));
        assert_eq!(drain(&mut fd).len(), 2); // the two first Ups only
    }

    #[test]
    fn a_real_death_is_found_on_time_by_a_punctual_detector() {
        // The stall check must not delay a death seen by a detector that runs on time:
        // the only calls are the ones poll_timeout asks for.
        let t0 = Instant::now();
        let mut fd = FailureDetector::new(DetectorConfig::default(), names(1));
        fd.heard("d1", &[], t0);
        let due = fd.poll_timeout().expect("a deadline");
        fd.handle_timeout(due + ms(3)); // a timer a little late
        assert_eq!(fd.status("d1"), Some(PeerStatus::Dead));
        assert_eq!(fd.stalls(), 0);
    }

    proptest! {
        /// A peer whose heartbeats are never further apart than the timeout is never
        /// suspected, whatever the clock does in between.
        #[test]
        fn a_peer_on_time_is_never_suspected(
            interval in 1u64..50, k in 1u32..10,
            gaps in proptest::collection::vec((0.0f64..1.0, any::<bool>()), 1..100),
        ) {
            let config = DetectorConfig { interval: ms(interval), suspect_after: k, ..DetectorConfig::default() };
            let timeout = config.suspect_timeout();
            let t0 = Instant::now();
            let mut fd = FailureDetector::new(config, names(3));
            let mut t = t0;
            fd.heard("d1", &[], t);
            for (fraction, tick_between) in gaps {
                let gap = timeout.mul_f64(fraction).min(timeout - Duration::from_nanos(1));
                if tick_between {
                    fd.handle_timeout(t + gap / 2);
                }
                t += gap;
                fd.handle_timeout(t);
                fd.heard("d1", &[], t);
            }
            fd.handle_timeout(t + timeout - Duration::from_nanos(1));
            prop_assert_eq!(fd.status("d1"), Some(PeerStatus::Up));
            prop_assert!(drain(&mut fd).iter().all(|v| v == &Verdict::Up("d1".into())));
        }

        /// Silent after its last heartbeat, a peer is suspected at exactly k intervals, and
        /// `poll_timeout` names that instant.
        #[test]
        fn a_silent_peer_is_suspected_after_exactly_k_intervals(
            interval in 1u64..100, k in 1u32..20, start in 0u64..1000,
        ) {
            let config = DetectorConfig { interval: ms(interval), suspect_after: k, ..DetectorConfig::default() };
            let t0 = Instant::now() + ms(start);
            let mut fd = FailureDetector::new(config, names(3));
            fd.heard("d1", &[], t0);
            let deadline = t0 + ms(interval) * k;
            prop_assert_eq!(fd.poll_timeout(), Some(deadline));
            fd.handle_timeout(deadline - Duration::from_nanos(1));
            prop_assert_eq!(fd.status("d1"), Some(PeerStatus::Up));
            fd.handle_timeout(deadline);
            prop_assert_eq!(fd.status("d1"), Some(PeerStatus::Suspected));
            prop_assert_eq!(drain(&mut fd), vec![Verdict::Up("d1".into()), Verdict::Suspected("d1".into())]);
            prop_assert_eq!(fd.poll_timeout(), None);
        }

        /// With three or more directors a suspicion stays a suspicion for ever unless a
        /// second director that is up suspects the peer too; in a fleet of two it is a death
        /// at once.
        #[test]
        fn death_needs_a_second_opinion_unless_the_fleet_is_two(
            others in 1usize..6, wait in 0u64..100_000,
        ) {
            let t0 = Instant::now();
            let peers = names(others);
            let mut fd = FailureDetector::new(DetectorConfig::default(), peers.clone());
            fd.heard("d1", &[], t0);
            // On time at the deadline (a detector called late grants a grace first), then
            // any time later.
            fd.handle_timeout(t0 + ms(100));
            fd.handle_timeout(t0 + ms(100 + wait));
            let verdicts = drain(&mut fd);
            if others == 1 {
                prop_assert_eq!(fd.status("d1"), Some(PeerStatus::Dead));
                prop_assert_eq!(verdicts.last(), Some(&Verdict::Dead { name: "d1".into(), confirmed_by: vec![], last_heard: Some(t0) }));
            } else {
                prop_assert_eq!(fd.status("d1"), Some(PeerStatus::Suspected));
                let late = t0 + ms(100 + wait);
                fd.heard("d2", &["d1".into()], late);
                prop_assert_eq!(fd.status("d1"), Some(PeerStatus::Dead));
                let verdicts = drain(&mut fd);
                prop_assert_eq!(verdicts.last(), Some(&Verdict::Dead { name: "d1".into(), confirmed_by: vec!["d2".into()], last_heard: Some(t0) }));
            }
        }

        /// Any sequence of heartbeats, gossip and ticks: verdicts follow the lifecycle
        /// (up → suspected → dead, any → up on a heartbeat), gossip is exactly the suspected
        /// and dead, a death in a fleet larger than two names an up confirmer, and a peer
        /// heard from within the timeout is up.
        #[test]
        fn lifecycle_invariants(others in 1usize..5, ops in proptest::collection::vec(op(4), 1..200)) {
            let config = DetectorConfig::default();
            let peers = names(others);
            let mut fd = FailureDetector::new(config, peers.clone());
            let mut now = Instant::now();
            let mut status: BTreeMap<String, PeerStatus> =
                peers.iter().map(|p| (p.clone(), PeerStatus::Unknown)).collect();
            let mut last_heard: BTreeMap<String, Instant> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Heard { after, from, mask } => {
                        now += ms(after);
                        let Some(from) = peers.get(from % others) else { continue };
                        let suspects: Vec<String> = peers.iter().enumerate()
                            .filter(|(i, _)| mask & (1 << i) != 0).map(|(_, p)| p.clone()).collect();
                        prop_assert!(fd.heard(from, &suspects, now));
                        last_heard.insert(from.clone(), now);
                    }
                    Op::Tick { after } => { now += ms(after); fd.handle_timeout(now); }
                }
                while let Some(v) = fd.poll_event() {
                    match v {
                        Verdict::Up(n) => {
                            prop_assert_ne!(status[&n], PeerStatus::Up);
                            status.insert(n, PeerStatus::Up);
                        }
                        Verdict::Suspected(n) => {
                            prop_assert_eq!(status[&n], PeerStatus::Up);
                            status.insert(n, PeerStatus::Suspected);
                        }
                        Verdict::Dead { name, confirmed_by, last_heard: heard } => {
                            prop_assert_eq!(status[&name], PeerStatus::Suspected);
                            prop_assert_eq!(heard, last_heard.get(&name).copied());
                            if others == 1 {
                                prop_assert!(confirmed_by.is_empty());
                            } else {
                                prop_assert!(!confirmed_by.is_empty());
                                for c in &confirmed_by {
                                    prop_assert_eq!(status[c], PeerStatus::Up);
                                    prop_assert_ne!(c, &name);
                                }
                            }
                            status.insert(name, PeerStatus::Dead);
                        }
                    }
                }
                for p in &peers {
                    prop_assert_eq!(fd.status(p), Some(status[p]));
                    if let Some(t) = last_heard.get(p)
                        && now.duration_since(*t) < config.suspect_timeout()
                    {
                        prop_assert_eq!(status[p], PeerStatus::Up);
                    }
                }
                let gossip: Vec<String> = status.iter()
                    .filter(|(_, s)| matches!(s, PeerStatus::Suspected | PeerStatus::Dead))
                    .map(|(n, _)| n.clone()).collect();
                prop_assert_eq!(fd.suspects(), gossip);
            }
        }
    }
}
