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
    /// `repeat` rounds over the addresses.
    Burst(Vec<IpAddr>, u32),
    /// The addresses were released: drop what is still queued for them.
    Cancel(Vec<IpAddr>),
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
    loop {
        let now = Instant::now();
        while let Some(ip) = pacer.poll_transmit(now) {
            if let Err(e) = announcer.announce(ip) {
                tracing::debug!(%interface, %ip, error = %e, "announcement not sent");
            }
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
            Announce::Burst(ips, repeat) => pacer.push_burst(&ips, repeat, now),
            Announce::Cancel(ips) => {
                for ip in ips {
                    pacer.cancel(ip);
                }
            }
        }
    }
}
