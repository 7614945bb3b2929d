//! One checker on tokio: the [`Scheduler`] fed with real time and real probes.
//!
//! The agent spawns a [`CheckRunner`] per checker and hears its [`CheckEvent`]s through an
//! [`EventSink`] (a channel, or a call made on the checker's task); dropping the runner stops
//! the checker (a MISC_CHECK script that is running is
//! killed with its process group). Events are transitions only; a [`ProbeObserver`] given at
//! spawn hears every probe as it completes (what it took and how it ended), for metrics.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::probe::{CheckSpec, Pass, ProbeError};
use crate::schedule::{CheckEvent, Health, Outcome, Scheduler, first_delay};

/// One completed probe, as a [`ProbeObserver`] hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeReport {
    /// From the probe's start to its verdict (a timed-out probe: about its timeout).
    pub duration: Duration,
    pub result: ProbeResult,
}

/// How one probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Pass,
    /// Gave up waiting: connect, TLS, HTTP, script, UDP, DNS or ICMP timeout.
    Timeout,
    /// Any other failure (refused, wrong status, digest, script exit, …).
    Fail,
}

impl ProbeResult {
    fn of(r: &Result<Pass, ProbeError>) -> Self {
        match r {
            Ok(_) => ProbeResult::Pass,
            Err(e) if e.is_timeout() => ProbeResult::Timeout,
            Err(_) => ProbeResult::Fail,
        }
    }

    /// `pass`, `timeout`, `fail`: the word metrics label it with.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeResult::Pass => "pass",
            ProbeResult::Timeout => "timeout",
            ProbeResult::Fail => "fail",
        }
    }
}

/// Called on the checker's task after every probe; it must not block.
pub type ProbeObserver = Arc<dyn Fn(ProbeReport) + Send + Sync>;

/// Where a checker's events go. The checker stops once nobody listens any more.
pub enum EventSink {
    /// A channel; the checker waits while it is full.
    Channel(mpsc::Sender<CheckEvent>),
    /// Called on the checker's task for every event; it must not block, and returns false
    /// once nobody listens. Costs no channel and no task of its own per checker (an agent
    /// with tens of thousands of real servers runs one checker each).
    Call(Box<dyn Fn(CheckEvent) -> bool + Send + Sync>),
}

impl EventSink {
    async fn send(&self, e: CheckEvent) -> bool {
        match self {
            // Boxed: the send future is a quarter of a KB, kept in every checker's task
            // otherwise (the agent's checkers use `Call`).
            EventSink::Channel(tx) => Box::pin(tx.send(e)).await.is_ok(),
            EventSink::Call(f) => f(e),
        }
    }
}

impl From<mpsc::Sender<CheckEvent>> for EventSink {
    fn from(tx: mpsc::Sender<CheckEvent>) -> Self {
        EventSink::Channel(tx)
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EventSink::Channel(_) => "EventSink::Channel",
            EventSink::Call(_) => "EventSink::Call",
        })
    }
}

/// A running checker; dropping it cancels the checker.
#[derive(Debug)]
pub struct CheckRunner {
    task: JoinHandle<()>,
    initial: Health,
}

impl CheckRunner {
    /// Starts checking on the current tokio runtime. The first probe runs after
    /// keepalived's bootstrap delay plus a random share of `warmup`; events go to `events`
    /// until the receiver is dropped.
    pub fn spawn(spec: CheckSpec, events: impl Into<EventSink>) -> Self {
        Self::spawn_observed(spec, events, None)
    }

    /// As [`Self::spawn`]; `observer` also hears every probe's duration and result.
    pub fn spawn_observed(
        spec: CheckSpec,
        events: impl Into<EventSink>,
        observer: Option<ProbeObserver>,
    ) -> Self {
        let first = first_delay(spec.schedule.warmup, random_u64());
        Self::start(spec, events.into(), first, observer)
    }

    /// As [`Self::spawn`], with the first probe `first` from now (tests, or an agent that
    /// spreads its checkers itself).
    pub fn spawn_after(spec: CheckSpec, events: impl Into<EventSink>, first: Duration) -> Self {
        Self::start(spec, events.into(), first, None)
    }

    /// As [`Self::spawn_after`], with an observer (see [`Self::spawn_observed`]).
    pub fn spawn_observed_after(
        spec: CheckSpec,
        events: impl Into<EventSink>,
        first: Duration,
        observer: ProbeObserver,
    ) -> Self {
        Self::start(spec, events.into(), first, Some(observer))
    }

    fn start(
        spec: CheckSpec,
        events: EventSink,
        first: Duration,
        observer: Option<ProbeObserver>,
    ) -> Self {
        let initial = if spec.schedule.alpha {
            Health::Down
        } else {
            Health::Up
        };
        CheckRunner {
            task: tokio::spawn(run(spec, events, first, observer)),
            initial,
        }
    }

    /// The state the checker starts in, before any event: down with `alpha`, else up.
    pub fn initial_health(&self) -> Health {
        self.initial
    }
}

impl Drop for CheckRunner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a checker's task keeps between probes. It lives in one allocation of its own
/// ([`run`] boxes it for [`run_boxed`]): an async fn keeps its arguments and its locals apart in its
/// future, so passed by value they would take their room twice in every checker's task.
struct Checker {
    spec: CheckSpec,
    events: EventSink,
    observer: Option<ProbeObserver>,
    s: Scheduler,
}

fn run(
    spec: CheckSpec,
    events: EventSink,
    first: Duration,
    observer: Option<ProbeObserver>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    // Two clock reads per probe, when it starts and when it ends: under User-Mode Linux each
    // is a system call, and a probe makes only about seven others.
    let s = Scheduler::new(Instant::now().into_std(), spec.schedule, spec.weight, first);
    let c = Box::new(Checker {
        spec,
        events,
        observer,
        s,
    });
    run_boxed(c)
}

async fn run_boxed(mut c: Box<Checker>) {
    loop {
        while let Some(e) = c.s.poll_event() {
            if !c.events.send(e).await {
                return;
            }
        }
        let Some(at) = c.s.poll_timeout() else {
            // Unreachable: with no probe running a next one is always scheduled.
            return;
        };
        tokio::time::sleep_until(Instant::from_std(at)).await;
        let started = Instant::now();
        c.s.handle_timeout(started.into_std());
        let Some(attempt) = c.s.poll_probe() else {
            continue;
        };
        let result = c.spec.probe.run_from(started).await;
        let ended = Instant::now();
        if let Some(o) = &c.observer {
            o(ProbeReport {
                duration: ended.saturating_duration_since(started),
                result: ProbeResult::of(&result),
            });
        }
        if let Err(e) = &result {
            tracing::debug!(retry = attempt.retry, "probe failed: {e}");
        }
        c.s.probe_result(ended.into_std(), Outcome::from(result));
    }
}

/// Random enough for warmup spreading, DNS ids and ICMP identifiers (not for secrets):
/// std's per-process random hash keys, mixed with a counter.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}
