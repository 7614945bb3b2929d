//! One checker on tokio: the [`Scheduler`] fed with real time and real probes.
//!
//! The agent spawns a [`CheckRunner`] per checker and reads [`CheckEvent`]s from its
//! channel; dropping the runner stops the checker (a MISC_CHECK script that is running is
//! killed with its process group).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::probe::CheckSpec;
use crate::schedule::{CheckEvent, Health, Outcome, Scheduler, first_delay};

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
    pub fn spawn(spec: CheckSpec, events: mpsc::Sender<CheckEvent>) -> Self {
        let first = first_delay(spec.schedule.warmup, random_u64());
        Self::spawn_after(spec, events, first)
    }

    /// As [`Self::spawn`], with the first probe `first` from now (tests, or an agent that
    /// spreads its checkers itself).
    pub fn spawn_after(spec: CheckSpec, events: mpsc::Sender<CheckEvent>, first: Duration) -> Self {
        let initial = if spec.schedule.alpha {
            Health::Down
        } else {
            Health::Up
        };
        CheckRunner {
            task: tokio::spawn(run(spec, events, first)),
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

async fn run(spec: CheckSpec, events: mpsc::Sender<CheckEvent>, first: Duration) {
    let now = || Instant::now().into_std();
    let mut s = Scheduler::new(now(), spec.schedule, spec.weight, first);
    loop {
        while let Some(e) = s.poll_event() {
            if events.send(e).await.is_err() {
                return;
            }
        }
        if let Some(attempt) = s.poll_probe() {
            let result = spec.probe.run().await;
            if let Err(e) = &result {
                tracing::debug!(retry = attempt.retry, "probe failed: {e}");
            }
            s.probe_result(now(), Outcome::from(result));
            continue;
        }
        let Some(at) = s.poll_timeout() else {
            // Unreachable: with no probe running a next one is always scheduled.
            return;
        };
        tokio::time::sleep_until(Instant::from_std(at)).await;
        s.handle_timeout(now());
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
