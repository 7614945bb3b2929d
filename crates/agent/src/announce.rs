//! Gratuitous ARPs and unsolicited NAs, paced per interface (keepalived's
//! `vrrp_garp_interval` / `vrrp_gna_interval`): one task per interface owns the sockets and a
//! [`Pacer`], and every instance on that interface queues its bursts there. So a takeover of
//! hundreds of VIPs on one segment goes out at the configured rate whatever the number of
//! instances, and an address released before its turn is not announced at all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_net::garp::{Announcer, Pacer};
use tokio::sync::mpsc;

pub enum Announce {
    /// `repeat` rounds over the addresses; `Some(sent)` is told once every address has been
    /// announced once.
    Burst(Vec<IpAddr>, u32, Option<Sent>),
    /// The addresses were released: drop what is still queued for them.
    Cancel(Vec<IpAddr>),
}

/// Said once a burst's first round has gone out — or when it never will (the interface has
/// no announcer, the addresses were released, the lane stopped): dropping it says so too.
/// The instance that took a unit over waits for it before the advert that makes the old
/// owner let go, so the clients' ARP caches point here first (make-before-break).
pub struct Sent(Option<Box<dyn FnOnce() + Send + Sync>>);

impl Sent {
    pub fn new(f: impl FnOnce() + Send + Sync + 'static) -> Sent {
        Sent(Some(Box::new(f)))
    }
}

impl Drop for Sent {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// Bursts whose first round is not out yet: the addresses still to go, and whom to tell.
#[derive(Default)]
struct Waiting(Vec<(Vec<IpAddr>, Sent)>);

impl Waiting {
    fn add(&mut self, ips: &[IpAddr], sent: Sent) {
        let mut left = ips.to_vec();
        left.sort();
        left.dedup();
        if !left.is_empty() {
            self.0.push((left, sent));
        }
    }

    /// `ip` went out, or will not: bursts waiting for nothing else are told (dropped).
    fn done(&mut self, ip: IpAddr) {
        self.0.retain_mut(|(left, _)| {
            left.retain(|x| *x != ip);
            !left.is_empty()
        });
    }
}

/// The per-interface announcers, started on first use.
#[derive(Clone)]
pub struct Announcers {
    garp_interval: Duration,
    gna_interval: Duration,
    lanes: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Announce>>>>,
}

impl Announcers {
    pub fn new(garp_interval: Duration, gna_interval: Duration) -> Announcers {
        Announcers {
            garp_interval,
            gna_interval,
            lanes: Arc::default(),
        }
    }

    /// Queues `cmd` on `interface`'s announcer. Must run inside a tokio runtime.
    pub fn send(&self, interface: &str, cmd: Announce) {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = lanes.get(interface)
            && !tx.is_closed()
        {
            let _ = tx.send(cmd);
            return;
        }
        let announcer = match Announcer::open(interface) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(%interface, error = %e, "gratuitous ARP / NA unavailable on this interface");
                return;
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(cmd);
        let pacer = Pacer::new(self.garp_interval, self.gna_interval);
        tokio::spawn(run(interface.to_string(), announcer, pacer, rx));
        lanes.insert(interface.to_string(), tx);
    }
}

async fn run(
    interface: String,
    announcer: Announcer,
    mut pacer: Pacer,
    mut rx: mpsc::UnboundedReceiver<Announce>,
) {
    let mut waiting = Waiting::default();
    loop {
        let now = Instant::now();
        while let Some(ip) = pacer.poll_transmit(now) {
            if let Err(e) = announcer.announce(ip) {
                tracing::debug!(%interface, %ip, error = %e, "announcement not sent");
            }
            waiting.done(ip);
        }
        let wake = pacer.poll_timeout();
        let cmd = match wake {
            Some(at) => tokio::select! {
                cmd = rx.recv() => cmd,
                _ = tokio::time::sleep_until(at.into()) => continue,
            },
            None => rx.recv().await,
        };
        let Some(cmd) = cmd else {
            return;
        };
        let now = Instant::now();
        match cmd {
            Announce::Burst(ips, repeat, sent) => {
                pacer.push_burst(&ips, repeat, now);
                // With no round queued, dropped here: nothing to wait for.
                if let Some(sent) = sent
                    && repeat > 0
                {
                    waiting.add(&ips, sent);
                }
            }
            Announce::Cancel(ips) => {
                for ip in ips {
                    pacer.cancel(ip);
                    waiting.done(ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counter() -> (Arc<AtomicUsize>, impl Fn() -> Sent) {
        let n = Arc::new(AtomicUsize::new(0));
        let m = n.clone();
        (n, move || {
            let m = m.clone();
            Sent::new(move || {
                m.fetch_add(1, Ordering::SeqCst);
            })
        })
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_burst_is_told_once_every_address_went_out_once() {
        let (told, sent) = counter();
        let mut w = Waiting::default();
        w.add(&[ip(1), ip(2), ip(1)], sent());
        w.done(ip(1));
        w.done(ip(3));
        assert_eq!(told.load(Ordering::SeqCst), 0, "ip 2 is still to go");
        w.done(ip(2));
        assert_eq!(told.load(Ordering::SeqCst), 1);
        w.done(ip(2));
        assert_eq!(told.load(Ordering::SeqCst), 1, "told once");
    }

    #[test]
    fn bursts_waiting_for_the_same_address_are_told_together_and_apart_from_others() {
        let (told, sent) = counter();
        let mut w = Waiting::default();
        w.add(&[ip(1)], sent());
        w.add(&[ip(1), ip(2)], sent());
        w.done(ip(1));
        assert_eq!(told.load(Ordering::SeqCst), 1);
        w.done(ip(2));
        assert_eq!(told.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn nothing_to_wait_for_or_nobody_left_to_send_tells_at_once() {
        let (told, sent) = counter();
        let mut w = Waiting::default();
        w.add(&[], sent());
        assert_eq!(
            told.load(Ordering::SeqCst),
            1,
            "no address: told when added"
        );
        w.add(&[ip(1)], sent());
        drop(w);
        assert_eq!(told.load(Ordering::SeqCst), 2, "the lane stopped: told");
        drop(sent());
        assert_eq!(told.load(Ordering::SeqCst), 3, "a burst never queued: told");
    }

    #[test]
    fn one_takeover_over_several_interfaces_is_told_after_the_last() {
        let (told, sent) = counter();
        let all = Arc::new(sent());
        let eth0 = Sent::new({
            let a = all.clone();
            move || drop(a)
        });
        let eth1 = Sent::new({
            let a = all.clone();
            move || drop(a)
        });
        drop(all);
        drop(eth0);
        assert_eq!(told.load(Ordering::SeqCst), 0);
        drop(eth1);
        assert_eq!(told.load(Ordering::SeqCst), 1);
    }
}
