//! What `/metrics` shows beyond a status snapshot: measurements the agent keeps between
//! scrapes (every probe's duration and result, takeovers by kind, failover durations) and
//! the IPVS counters read at scrape time, with the Prometheus text-format writer
//! ([`Family`]) that [`crate::web`] renders every family with.
//!
//! Recording never blocks on I/O: a probe adds to its series' atomic counters, a takeover
//! takes one short mutex. Nothing here
//! writes IPVS; the table is read through the LVS writer's `Table` request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_check::{ProbeObserver, ProbeReport, ProbeResult};
use flotilla_ipvs::{ServiceStatus, SocketText, Stats};
use ractor::ActorRef;

use crate::api::DirectorStatus;
use crate::lvs_writer::WriterMsg;
use crate::moves::{TakeoverKind, Took};

/// Upper bounds (seconds) of the probe-duration buckets: loopback answers in well under a
/// millisecond, a timeout takes its `connect_timeout` (default 5 s).
pub const PROBE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds (seconds) of the failover-duration buckets: a mesh failover takes about the
/// detector's 100 ms, a VRRP one 3 × advert_int plus skew.
pub const FAILOVER_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0, 30.0,
];
/// How long a scrape waits for the IPVS table.
const IPVS_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A Prometheus histogram with fixed buckets.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last one is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    pub fn observe(&mut self, d: Duration) {
        let v = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += v;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `NAME_bucket{…,le}` (cumulative), `NAME_sum`, `NAME_count`.
    fn render(&self, f: &mut Family, name: &str, labels: &[(&str, &str)]) {
        let mut cumulative = 0;
        let bucket = format!("{name}_bucket");
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c;
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let mut l = labels.to_vec();
            l.push(("le", &le));
            f.sample(&bucket, &l, cumulative);
        }
        f.sample(&format!("{name}_sum"), labels, self.sum);
        f.sample(&format!("{name}_count"), labels, cumulative);
    }
}

/// One checker series: virtual server, real server (`ip:port`, as `flotilla status` names
/// it) and checker keyword (`HTTP_GET` …). Several checkers of one kind on one real server
/// share it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CheckKey {
    virtual_server: String,
    real_server: String,
    checker: &'static str,
}

/// The counts of one checker series, kept without a lock: every probe of every checker
/// lands here (10,000 real servers checked every 6 s make 1,700 a second), so recording is
/// a few atomic additions on a series found once, when the checker starts.
#[derive(Debug)]
struct CheckSeries {
    /// Per bucket of [`PROBE_BUCKETS`] (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; PROBE_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    /// By [`ProbeResult`], in the order the family is rendered: fail, pass, timeout.
    results: [AtomicU64; 3],
}

impl CheckSeries {
    fn new() -> Self {
        CheckSeries {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            results: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    const RESULTS: [ProbeResult; 3] = [ProbeResult::Fail, ProbeResult::Pass, ProbeResult::Timeout];

    fn observe(&self, r: ProbeReport) {
        let v = r.duration.as_secs_f64();
        let i = PROBE_BUCKETS
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(PROBE_BUCKETS.len());
        if let Some(c) = self.buckets.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(r.duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        let k = match r.result {
            ProbeResult::Fail => 0,
            ProbeResult::Pass => 1,
            ProbeResult::Timeout => 2,
        };
        if let Some(c) = self.results.get(k) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The durations as a [`Histogram`], for rendering.
    fn histogram(&self) -> Histogram {
        Histogram {
            bounds: PROBE_BUCKETS,
            counts: self
                .buckets
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    checks: BTreeMap<CheckKey, Arc<CheckSeries>>,
    takeovers: BTreeMap<(String, TakeoverKind), u64>,
    failovers: BTreeMap<(String, TakeoverKind), Histogram>,
    conn_sync: BTreeMap<&'static str, u64>,
}

/// The agent's measurements, shared by the actors that record and the listener that renders.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Mutex<Inner>>);

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An observer for the checker `checker` of `real_server` in `virtual_server`. Its series
    /// is looked up (or made, at zero) here, once, so that a probe never searches for it.
    pub fn probe_observer(
        &self,
        virtual_server: &str,
        real_server: &str,
        checker: &'static str,
    ) -> ProbeObserver {
        let key = CheckKey {
            virtual_server: virtual_server.to_string(),
            real_server: real_server.to_string(),
            checker,
        };
        let series = self
            .lock()
            .checks
            .entry(key)
            .or_insert_with(|| Arc::new(CheckSeries::new()))
            .clone();
        Arc::new(move |r: ProbeReport| series.observe(r))
    }

    /// Unit `unit` became master here.
    pub fn took(&self, unit: &str, t: &Took) {
        let mut inner = self.lock();
        *inner
            .takeovers
            .entry((unit.to_string(), t.kind))
            .or_insert(0) += 1;
        if let Some(d) = t.outage {
            inner
                .failovers
                .entry((unit.to_string(), t.kind))
                .or_insert_with(|| Histogram::new(FAILOVER_BUCKETS))
                .observe(d);
        }
    }

    /// Connection sync: `n` more of `event` (see [`crate::conn_sync::Event`]).
    pub fn conn_sync(&self, event: &'static str, n: u64) {
        *self.lock().conn_sync.entry(event).or_insert(0) += n;
    }

    /// The checker, takeover and failover families. Checker series are shown for the
    /// virtual servers and real servers `status` lists (a removed one's series go).
    pub fn render(&self, f: &mut Family, status: &DirectorStatus) {
        let inner = self.lock();
        let current = |k: &CheckKey| {
            status.virtual_servers.iter().any(|v| {
                v.name == k.virtual_server
                    && v.real_servers.iter().any(|r| r.address == k.real_server)
            })
        };
        let checks: Vec<_> = inner.checks.iter().filter(|(k, _)| current(k)).collect();
        f.head(
            "flotilla_checker_duration_seconds",
            "histogram",
            "Health-check probes: seconds from a probe's start to its verdict (pass or fail), every probe.",
        );
        for (k, s) in &checks {
            s.histogram().render(
                f,
                "flotilla_checker_duration_seconds",
                &[
                    ("virtual_server", &k.virtual_server),
                    ("real_server", &k.real_server),
                    ("checker", k.checker),
                ],
            );
        }
        f.head(
            "flotilla_checker_probes_total",
            "counter",
            "Health-check probes by result: pass, timeout (the probe's own time bound ran out), fail (any other failure).",
        );
        for (k, s) in &checks {
            for (result, n) in CheckSeries::RESULTS.iter().zip(&s.results) {
                f.sample(
                    "flotilla_checker_probes_total",
                    &[
                        ("virtual_server", &k.virtual_server),
                        ("real_server", &k.real_server),
                        ("checker", k.checker),
                        ("result", result.as_str()),
                    ],
                    n.load(Ordering::Relaxed),
                );
            }
        }
        f.head(
            "flotilla_unit_takeovers_total",
            "counter",
            "Times a unit (a VRRP instance or sync group) became MASTER here, by kind: planned (a committed placement made this director its owner), failover (its owner was confirmed dead by the mesh), vrrp (VRRP's own master-down timer, or a master releasing with priority 0).",
        );
        for ((unit, kind), n) in &inner.takeovers {
            f.sample(
                "flotilla_unit_takeovers_total",
                &[("unit", unit), ("kind", kind.as_str())],
                n,
            );
        }
        f.head(
            "flotilla_failover_duration_seconds",
            "histogram",
            "Unplanned takeovers of a unit here: seconds from the previous master's last sign of life to this director being MASTER with the unit's VIPs added (before the gratuitous ARPs). kind=failover: from the last heartbeat received from the director the mesh confirmed dead; kind=vrrp: from the last VRRP advert received from the master the unit waited on (no sample after a priority-0 release, when a live lower-priority master was preempted, or when no advert was heard).",
        );
        for ((unit, kind), h) in &inner.failovers {
            h.render(
                f,
                "flotilla_failover_duration_seconds",
                &[("unit", unit), ("kind", kind.as_str())],
            );
        }
        if !inner.conn_sync.is_empty() {
            f.head(
                "flotilla_conn_sync_total",
                "counter",
                "IPVS connection sync over the mesh. Entries: read (from this kernel's master daemon), forwarded (sent to a peer, once per peer), received (from peers), injected (handed to this kernel's backup daemon), not_a_vip (received for an address this configuration does not serve: dropped). Messages: malformed (failed the sync-message checks: dropped), send_failed (a peer could not be sent one), inject_failed (the local backup daemon's socket refused one).",
            );
            for (event, n) in &inner.conn_sync {
                f.sample("flotilla_conn_sync_total", &[("event", event)], n);
            }
        }
    }
}

/// Where a scrape reads IPVS from; the director keeps it current as LVS starts and stops.
#[derive(Clone, Default)]
pub enum IpvsSource {
    /// No virtual server is configured: no IPVS families at all.
    #[default]
    NotConfigured,
    /// Virtual servers are configured but LVS could not start (no IPVS in the kernel …).
    Unavailable,
    Writer(ActorRef<WriterMsg>),
}

pub type IpvsSlot = Arc<Mutex<IpvsSource>>;

/// What a scrape found.
pub enum IpvsRead {
    NotConfigured,
    Down,
    Table(Vec<ServiceStatus>),
}

pub fn set_ipvs(slot: &IpvsSlot, source: IpvsSource) {
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = source;
}

/// The IPVS table with its counters, read through the writer (the only IPVS user).
pub async fn read_ipvs(slot: &IpvsSlot) -> IpvsRead {
    let source = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let writer = match source {
        IpvsSource::NotConfigured => return IpvsRead::NotConfigured,
        IpvsSource::Unavailable => return IpvsRead::Down,
        IpvsSource::Writer(w) => w,
    };
    match writer.call(WriterMsg::Table, Some(IPVS_READ_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(Ok(table))) => IpvsRead::Table(table),
        Ok(ractor::rpc::CallResult::Success(Err(e))) => {
            tracing::warn!(error = %e, "/metrics: cannot read the IPVS table");
            IpvsRead::Down
        }
        _ => IpvsRead::Down,
    }
}

/// The IPVS families: `flotilla_ipvs_up`, then per service and per destination the kernel's
/// counters (since the service was created) and its rate estimates.
pub fn render_ipvs(f: &mut Family, read: &IpvsRead) {
    let table = match read {
        IpvsRead::NotConfigured => return,
        IpvsRead::Down => {
            f.head(
                "flotilla_ipvs_up",
                "gauge",
                "1 when the IPVS table was read for this scrape, 0 when IPVS is unavailable.",
            );
            f.sample("flotilla_ipvs_up", &[], 0);
            return;
        }
        IpvsRead::Table(t) => t,
    };
    f.head(
        "flotilla_ipvs_up",
        "gauge",
        "1 when the IPVS table was read for this scrape, 0 when IPVS is unavailable.",
    );
    f.sample("flotilla_ipvs_up", &[], 1);
    let services: Vec<(String, &Stats)> = table
        .iter()
        .map(|s| (s.service.key.to_string(), &s.stats))
        .collect();
    let destinations: Vec<(String, String, &flotilla_ipvs::DestinationEntry)> = table
        .iter()
        .flat_map(|s| {
            let vs = s.service.key.to_string();
            s.destinations.iter().map(move |d| {
                let rs = SocketText(d.destination.addr, d.destination.port).to_string();
                (vs.clone(), rs, d)
            })
        })
        .collect();
    for (scope, what) in [
        ("service", "virtual service"),
        ("destination", "real server"),
    ] {
        for (suffix, kind, help, field) in STATS {
            let name = format!("flotilla_ipvs_{scope}_{suffix}");
            f.head(
                &name,
                kind,
                &format!("{help} ({what}, from the kernel; virtual_server is the IPVS service as ipvsadm names it)."),
            );
            if scope == "service" {
                for (vs, st) in &services {
                    for (dir, v) in field(st) {
                        sample_dir(f, &name, &[("virtual_server", vs)], dir, v);
                    }
                }
            } else {
                for (vs, rs, d) in &destinations {
                    for (dir, v) in field(&d.stats) {
                        sample_dir(
                            f,
                            &name,
                            &[("virtual_server", vs), ("real_server", rs)],
                            dir,
                            v,
                        );
                    }
                }
            }
        }
    }
    f.head(
        "flotilla_ipvs_destination_connections",
        "gauge",
        "Connections to the real server now, by state: active (established), inactive (others), persistent (persistence templates).",
    );
    for (vs, rs, d) in &destinations {
        for (state, n) in [
            ("active", d.active_conns),
            ("inactive", d.inactive_conns),
            ("persistent", d.persistent_conns),
        ] {
            f.sample(
                "flotilla_ipvs_destination_connections",
                &[
                    ("virtual_server", vs),
                    ("real_server", rs),
                    ("state", state),
                ],
                n,
            );
        }
    }
}

type StatsField = fn(&Stats) -> Vec<(Option<&'static str>, u64)>;

/// Per scope: name suffix, type, help, the values (with their `direction` if any).
const STATS: [(&str, &str, &str, StatsField); 6] = [
    (
        "connections_total",
        "counter",
        "Connections scheduled",
        |s| vec![(None, s.conns)],
    ),
    (
        "packets_total",
        "counter",
        "Packets, by direction (in: from clients, out: replies through the director)",
        |s| vec![(Some("in"), s.inpkts), (Some("out"), s.outpkts)],
    ),
    ("bytes_total", "counter", "Bytes, by direction", |s| {
        vec![(Some("in"), s.inbytes), (Some("out"), s.outbytes)]
    }),
    (
        "connections_per_second",
        "gauge",
        "Connection rate as the kernel's estimator computes it",
        |s| vec![(None, s.cps)],
    ),
    (
        "packets_per_second",
        "gauge",
        "Packet rate by direction, the kernel's estimate",
        |s| vec![(Some("in"), s.inpps), (Some("out"), s.outpps)],
    ),
    (
        "bytes_per_second",
        "gauge",
        "Byte rate by direction, the kernel's estimate",
        |s| vec![(Some("in"), s.inbps), (Some("out"), s.outbps)],
    ),
];

fn sample_dir(f: &mut Family, name: &str, labels: &[(&str, &str)], dir: Option<&str>, v: u64) {
    let mut l = labels.to_vec();
    if let Some(d) = dir {
        l.push(("direction", d));
    }
    f.sample(name, &l, v);
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes families in the Prometheus text format (0.0.4).
pub struct Family<'a> {
    pub out: &'a mut String,
}

impl Family<'_> {
    pub fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
            .collect();
        if l.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", l.join(","));
        }
    }
}
