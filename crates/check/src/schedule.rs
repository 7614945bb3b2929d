//! When to probe and what a probe's outcome means: keepalived's checker state machine,
//! sans-IO.
//!
//! Time is an argument and nothing here touches a socket or a clock, so the tests drive
//! hours of checking in microseconds. The caller loops:
//!
//! 1. drain [`Scheduler::poll_event`] (transitions only: [`CheckEvent`]);
//! 2. if [`Scheduler::poll_probe`] says so, run one probe and hand its outcome to
//!    [`Scheduler::probe_result`];
//! 3. otherwise sleep until [`Scheduler::poll_timeout`] and call [`Scheduler::handle_timeout`].
//!
//! The rules, from keepalived's `check_tcp.c` `tcp_epilog` (the other checkers share them)
//! and `check_data.c` (start-up):
//!
//! * The first probe runs `BOOTSTRAP_DELAY` (1 s) plus a random part of `warmup` after start,
//!   so that many checkers of one real server do not fire together.
//! * Without `alpha` a checker starts up; with `alpha` it starts down.
//! * The **first** probe decides on its own: keepalived starts every checker with its retry
//!   counter already at `retry` ("for non alpha mode, one failure is enough initially"), so a
//!   failed first probe is down at once, with or without alpha.
//! * After that, while up, a failure is retried after `delay_before_retry`; the checker goes
//!   down on the (retry + 1)-th consecutive failure. Any success resets the count.
//! * While down, probes run every `delay_loop` and one success brings the checker up.
//! * After a success, or after the failure that decides "down", the next probe is
//!   `delay_loop` later.
//!
//! Delays run from the end of a probe (keepalived registers the next timer in the epilog);
//! MISC_CHECK in keepalived counts from the script's start, which differs only by the
//! script's run time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use flotilla_config::model::lvs::Timing;

/// keepalived's `BOOTSTRAP_DELAY` (`lib/scheduler.h`): the fixed part of the first delay.
pub const BOOTSTRAP_DELAY: Duration = Duration::from_secs(1);

/// What the agent hears from a checker: transitions and weight changes, never every probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckEvent {
    /// The checker passed after being down (or at its first probe with `alpha`).
    Up { reason: String },
    /// The checker failed for good: on its first probe, or retry + 1 times in a row.
    Down { reason: String },
    /// The real server's weight as this checker wants it now (MISC_CHECK `misc_dynamic`,
    /// FILE_CHECK). Sent before the `Up` it comes with.
    Weight(u32),
}

/// Whether a checker currently counts its real server as alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up,
    Down,
}

/// The outcome of one probe, as the scheduler needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass {
        /// Why it passed, e.g. "HTTP status 200 for /index.html".
        reason: String,
        /// The weight the probe asks for, if the checker sets weights.
        weight: Option<u32>,
    },
    Fail {
        /// Why it failed, e.g. "connection refused".
        reason: String,
    },
}

/// One probe to run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 0 for a regular check, n for the n-th retry after a failure while up.
    pub retry: u32,
}

/// The timing of one checker, as durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub delay_loop: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub warmup: Duration,
    pub alpha: bool,
}

impl From<&Timing> for Schedule {
    fn from(t: &Timing) -> Self {
        Schedule {
            delay_loop: t.delay_loop.as_duration(),
            retry: t.retry,
            delay_before_retry: t.delay_before_retry.as_duration(),
            warmup: t.warmup.as_duration(),
            alpha: t.alpha,
        }
    }
}

/// The delay before a checker's first probe: [`BOOTSTRAP_DELAY`] plus a uniform share of
/// `warmup` chosen by `seed` (keepalived: `warmup * random() / RAND_MAX`). The seed is an
/// argument so tests pick it; the runner passes a random one.
pub fn first_delay(warmup: Duration, seed: u64) -> Duration {
    let micros = u64::try_from(warmup.as_micros()).unwrap_or(u64::MAX);
    // Widening multiply: micros * (mixed / 2^64) without overflow, covering 0..=micros.
    let share = ((u128::from(micros) + 1) * u128::from(splitmix64(seed))) >> 64;
    BOOTSTRAP_DELAY + Duration::from_micros(u64::try_from(share).unwrap_or(micros))
}

/// SplitMix64: spreads nearby seeds (0, 1, 2…) over the whole range.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One checker's state machine.
#[derive(Debug, Clone)]
pub struct Scheduler {
    schedule: Schedule,
    up: bool,
    /// keepalived's `has_run`: a probe has completed.
    has_run: bool,
    /// keepalived's `retry_it`: failures so far in the current run of retries.
    retry_it: u32,
    /// When the next probe is due; `None` while one is due now or running.
    next_probe: Option<Instant>,
    due: bool,
    in_flight: bool,
    weight: u32,
    events: VecDeque<CheckEvent>,
}

impl Scheduler {
    /// A checker started at `now` whose first probe runs `first_delay` later (see
    /// [`first_delay`]). `weight` is the real server's configured weight, so that a probe
    /// asking for that same weight is not reported as a change.
    pub fn new(now: Instant, schedule: Schedule, weight: u32, first_delay: Duration) -> Self {
        Scheduler {
            schedule,
            up: !schedule.alpha,
            has_run: false,
            // keepalived `check_data.c`: "For non alpha mode, one failure is enough
            // initially."
            retry_it: schedule.retry,
            next_probe: Some(now + first_delay),
            due: false,
            in_flight: false,
            weight,
            events: VecDeque::new(),
        }
    }

    pub fn health(&self) -> Health {
        if self.up { Health::Up } else { Health::Down }
    }

    /// The weight last reported (or the configured one).
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// When to call [`Self::handle_timeout`] next; `None` while a probe is due or running.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_probe
    }

    /// Marks the probe due once its time has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(at) = self.next_probe
            && now >= at
        {
            self.next_probe = None;
            self.due = true;
        }
    }

    /// A probe to start now, at most once per due time.
    pub fn poll_probe(&mut self) -> Option<Attempt> {
        if !self.due {
            return None;
        }
        self.due = false;
        self.in_flight = true;
        let retry = if self.up && self.has_run {
            self.retry_it
        } else {
            0
        };
        Some(Attempt { retry })
    }

    /// The outcome of the probe [`Self::poll_probe`] started, completed at `now`. An
    /// outcome without a probe running is ignored.
    pub fn probe_result(&mut self, now: Instant, outcome: Outcome) {
        if !self.in_flight {
            return;
        }
        self.in_flight = false;
        let delay = match outcome {
            Outcome::Pass { reason, weight } => {
                if let Some(w) = weight
                    && w != self.weight
                {
                    self.weight = w;
                    self.events.push_back(CheckEvent::Weight(w));
                }
                self.retry_it = 0;
                if !self.up {
                    self.up = true;
                    self.events.push_back(CheckEvent::Up { reason });
                }
                self.schedule.delay_loop
            }
            Outcome::Fail { reason } => {
                if (self.up || !self.has_run) && self.retry_it >= self.schedule.retry {
                    self.retry_it = 0;
                    if self.up {
                        self.up = false;
                        self.events.push_back(CheckEvent::Down { reason });
                    }
                    self.schedule.delay_loop
                } else if self.up {
                    self.retry_it += 1;
                    self.schedule.delay_before_retry
                } else {
                    self.schedule.delay_loop
                }
            }
        };
        self.has_run = true;
        self.next_probe = Some(now + delay);
    }

    /// The next transition or weight change, oldest first.
    pub fn poll_event(&mut self) -> Option<CheckEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: Duration = Duration::from_secs(1);

    fn schedule(retry: u32, alpha: bool) -> Schedule {
        Schedule {
            delay_loop: 10 * SEC,
            retry,
            delay_before_retry: 2 * SEC,
            warmup: 10 * SEC,
            alpha,
        }
    }

    fn pass() -> Outcome {
        Outcome::Pass {
            reason: "ok".into(),
            weight: None,
        }
    }

    fn fail(n: u32) -> Outcome {
        Outcome::Fail {
            reason: format!("fail {n}"),
        }
    }

    /// Advances to the next due time, runs a probe with `outcome`, returns the gap waited
    /// and the events it produced.
    fn step(s: &mut Scheduler, now: &mut Instant, outcome: Outcome) -> (Duration, Vec<CheckEvent>) {
        let at = s.poll_timeout().unwrap();
        let gap = at - *now;
        // Not a microsecond early.
        s.handle_timeout(at - Duration::from_micros(1));
        assert_eq!(s.poll_probe(), None);
        *now = at;
        s.handle_timeout(*now);
        assert!(s.poll_probe().is_some());
        assert_eq!(s.poll_probe(), None, "one probe per due time");
        assert_eq!(s.poll_timeout(), None, "no timer while probing");
        s.probe_result(*now, outcome);
        let mut events = Vec::new();
        while let Some(e) = s.poll_event() {
            events.push(e);
        }
        (gap, events)
    }

    #[test]
    fn without_alpha_starts_up_and_a_first_success_is_silent() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, schedule(1, false), 1, SEC);
        assert_eq!(s.health(), Health::Up);
        let mut now = t0;
        let (gap, ev) = step(&mut s, &mut now, pass());
        assert_eq!(gap, SEC);
        assert!(ev.is_empty());
        assert_eq!(s.poll_timeout(), Some(now + 10 * SEC));
    }

    #[test]
    fn with_alpha_starts_down_and_the_first_success_is_up() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, schedule(3, true), 1, SEC);
        assert_eq!(s.health(), Health::Down);
        let mut now = t0;
        let (_, ev) = step(&mut s, &mut now, pass());
        assert_eq!(
            ev,
            vec![CheckEvent::Up {
                reason: "ok".into()
            }]
        );
        assert_eq!(s.health(), Health::Up);
    }

    #[test]
    fn a_failed_first_probe_is_down_at_once_without_retries() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, schedule(3, false), 1, SEC);
        let mut now = t0;
        let (_, ev) = step(&mut s, &mut now, fail(1));
        assert_eq!(
            ev,
            vec![CheckEvent::Down {
                reason: "fail 1".into()
            }]
        );
        // Down: the next probe is a delay_loop away, not a retry.
        let (gap, ev) = step(&mut s, &mut now, fail(2));
        assert_eq!(gap, 10 * SEC);
        assert!(ev.is_empty());
    }

    #[test]
    fn with_alpha_failures_before_the_first_success_are_silent() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, schedule(2, true), 1, SEC);
        let mut now = t0;
        for n in 0..4 {
            let (gap, ev) = step(&mut s, &mut now, fail(n));
            assert!(ev.is_empty());
            assert_eq!(gap, if n == 0 { SEC } else { 10 * SEC });
        }
        let (_, ev) = step(&mut s, &mut now, pass());
        assert_eq!(
            ev,
            vec![CheckEvent::Up {
                reason: "ok".into()
            }]
        );
    }

    #[test]
    fn down_after_exactly_retry_plus_one_failures_spaced_by_delay_before_retry() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, schedule(3, false), 1, SEC);
        let mut now = t0;
        step(&mut s, &mut now, pass());
        let (gap, ev) = step(&mut s, &mut now, fail(1));
        assert_eq!((gap, ev.len()), (10 * SEC, 0));
        for n in 2..=3 {
            let (gap, ev) = step(&mut s, &mut now, fail(n));
            assert_eq!((gap, ev.len()), (2 * SEC, 0));
        }
        let (gap, ev) = step(&mut s, &mut now, fail(4));
        assert_eq!(gap, 2 * SEC);
        assert_eq!(
            ev,
            vec![CheckEvent::Down {
                reason: "fail 4".into()
            }]
        );
        assert_eq!(s.poll_timeout(), Some(now + 10 * SEC));
    }

    #[test]
    fn a_success_between_failures_resets_the_count() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, schedule(1, false), 1, SEC);
        let mut now = t0;
        step(&mut s, &mut now, pass());
        for _ in 0..5 {
            assert!(step(&mut s, &mut now, fail(0)).1.is_empty());
            assert!(step(&mut s, &mut now, pass()).1.is_empty());
        }
        assert_eq!(s.health(), Health::Up);
    }

    #[test]
    fn retry_zero_is_down_on_the_first_failure() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, schedule(0, false), 1, SEC);
        let mut now = t0;
        step(&mut s, &mut now, pass());
        let (_, ev) = step(&mut s, &mut now, fail(7));
        assert_eq!(
            ev,
            vec![CheckEvent::Down {
                reason: "fail 7".into()
            }]
        );
    }

    #[test]
    fn weight_changes_are_reported_once_and_before_up() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, schedule(0, true), 5, SEC);
        let mut now = t0;
        let w = |w| Outcome::Pass {
            reason: "ok".into(),
            weight: Some(w),
        };
        let (_, ev) = step(&mut s, &mut now, w(3));
        assert_eq!(
            ev,
            vec![
                CheckEvent::Weight(3),
                CheckEvent::Up {
                    reason: "ok".into()
                }
            ]
        );
        assert!(step(&mut s, &mut now, w(3)).1.is_empty());
        assert_eq!(step(&mut s, &mut now, w(5)).1, vec![CheckEvent::Weight(5)]);
        assert_eq!(s.weight(), 5);
    }

    #[test]
    fn an_outcome_without_a_probe_is_ignored() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, schedule(0, false), 1, SEC);
        s.probe_result(t0, fail(1));
        assert_eq!(s.poll_event(), None);
        assert_eq!(s.health(), Health::Up);
        assert_eq!(s.poll_timeout(), Some(t0 + SEC));
    }

    #[test]
    fn retries_are_numbered() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, schedule(2, false), 1, Duration::ZERO);
        let mut attempts = Vec::new();
        for o in [pass(), fail(0), fail(0), fail(0), fail(0)] {
            let now = s.poll_timeout().unwrap();
            s.handle_timeout(now);
            attempts.push(s.poll_probe().unwrap().retry);
            s.probe_result(now, o);
        }
        // First probe, regular, retry 1, retry 2, then down (regular again).
        assert_eq!(attempts, vec![0, 0, 1, 2, 0]);
    }

    #[test]
    fn first_delay_covers_the_warmup_range() {
        assert_eq!(first_delay(Duration::ZERO, 42), BOOTSTRAP_DELAY);
        let w = Duration::from_secs(60);
        let delays: Vec<_> = (0..1000).map(|seed| first_delay(w, seed)).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= BOOTSTRAP_DELAY && *d <= BOOTSTRAP_DELAY + w)
        );
        // Spread, not clustered: both ends of the range are used.
        assert!(delays.iter().any(|d| *d < BOOTSTRAP_DELAY + w / 10));
        assert!(delays.iter().any(|d| *d > BOOTSTRAP_DELAY + w * 9 / 10));
        assert_eq!(first_delay(w, 7), first_delay(w, 7));
    }

    fn arb_schedule() -> impl Strategy<Value = Schedule> {
        (1u64..100, 0u32..6, 1u64..100, 0u64..100, any::<bool>()).prop_map(
            |(loop_s, retry, dbr, warm, alpha)| Schedule {
                delay_loop: Duration::from_millis(loop_s * 100),
                retry,
                delay_before_retry: Duration::from_millis(dbr * 100),
                warmup: Duration::from_millis(warm * 100),
                alpha,
            },
        )
    }

    proptest! {
        /// Replays any sequence of outcomes against a direct statement of the rules:
        /// the health after each probe, the events, and the gap before each probe.
        #[test]
        fn follows_keepalived_rules(
            sch in arb_schedule(),
            seed in any::<u64>(),
            outcomes in proptest::collection::vec(any::<bool>(), 1..60),
        ) {
            let t0 = Instant::now();
            let first = first_delay(sch.warmup, seed);
            prop_assert!(first >= BOOTSTRAP_DELAY && first <= BOOTSTRAP_DELAY + sch.warmup);
            let mut s = Scheduler::new(t0, sch, 1, first);
            let mut now = t0;
            let mut up = !sch.alpha;
            // Consecutive failures while up, since the last success or transition.
            let mut failures = 0u32;
            let mut expected_gap = first;
            for (i, ok) in outcomes.into_iter().enumerate() {
                let outcome = if ok { pass() } else { fail(i as u32) };
                let (gap, ev) = step(&mut s, &mut now, outcome);
                prop_assert_eq!(gap, expected_gap);
                let mut want = Vec::new();
                if ok {
                    failures = 0;
                    if !up {
                        up = true;
                        want.push(CheckEvent::Up { reason: "ok".into() });
                    }
                    expected_gap = sch.delay_loop;
                } else if up {
                    failures += 1;
                    // The first probe decides alone; later ones after retry + 1 failures.
                    if i == 0 || failures > sch.retry {
                        up = false;
                        failures = 0;
                        want.push(CheckEvent::Down { reason: format!("fail {i}") });
                        expected_gap = sch.delay_loop;
                    } else {
                        expected_gap = sch.delay_before_retry;
                    }
                } else {
                    expected_gap = sch.delay_loop;
                }
                prop_assert_eq!(ev, want);
                prop_assert_eq!(s.health() == Health::Up, up);
            }
        }

        /// Transitions alternate and never repeat the current state.
        #[test]
        fn transitions_alternate(
            sch in arb_schedule(),
            outcomes in proptest::collection::vec(any::<bool>(), 1..80),
        ) {
            let t0 = Instant::now();
            let mut s = Scheduler::new(t0, sch, 1, Duration::ZERO);
            let mut now = t0;
            let mut up = !sch.alpha;
            for ok in outcomes {
                for e in step(&mut s, &mut now, if ok { pass() } else { fail(0) }).1 {
                    match e {
                        CheckEvent::Up { .. } => { prop_assert!(!up); up = true; }
                        CheckEvent::Down { .. } => { prop_assert!(up); up = false; }
                        CheckEvent::Weight(_) => prop_assert!(false, "no weights given"),
                    }
                }
            }
        }
    }
}
