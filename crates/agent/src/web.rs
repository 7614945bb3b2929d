//! The opt-in HTTP listener (`flotilla agent --listen ADDR`), read-only:
//!
//! * `/metrics` — Prometheus text exposition (format 0.0.4), names after Prometheus's
//!   conventions: `flotilla_` prefix, base units, `_total` for counters; the status families
//!   here, the agent's own measurements and the IPVS counters from [`crate::metrics`];
//! * `/api/status` — the same JSON `flotilla status --json` prints;
//! * `/` — a page that draws the director and its units and refreshes every second, so an
//!   operator watches a failover or a drain happen.
//!
//! The status is gathered from the actors at each request, as for the control socket.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use tokio::task::JoinHandle;

use crate::api::{DirectorStatus, Handles};
use crate::metrics::{Family, IpvsRead, Metrics};

type Shared = Handles;

/// Binds `addr` and serves until the task is aborted.
pub async fn serve(addr: SocketAddr, handles: Handles) -> std::io::Result<JoinHandle<()>> {
    let app = Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status_json))
        .with_state(handles);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "HTTP listener: /metrics, /api/status, /");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP listener stopped");
        }
    }))
}

async fn snapshot(s: &Shared) -> DirectorStatus {
    crate::api::status(s).await
}

async fn status_json(State(s): State<Shared>) -> Json<DirectorStatus> {
    Json(snapshot(&s).await)
}

async fn metrics(State(s): State<Shared>) -> impl IntoResponse {
    let status = snapshot(&s).await;
    let ipvs = crate::metrics::read_ipvs(&s.ipvs).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        exposition(&status, &s.metrics, &ipvs),
    )
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

const STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];

/// The Prometheus text for a director: its status, the agent's measurements, IPVS.
pub fn exposition(s: &DirectorStatus, metrics: &Metrics, ipvs: &IpvsRead) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    f.head(
        "flotilla_vrrp_state",
        "gauge",
        "VRRP state of the instance: 1 for the state it is in, 0 for the others.",
    );
    for i in &s.instances {
        for st in STATES {
            let v = u8::from(i.state == st);
            f.sample(
                "flotilla_vrrp_state",
                &[("instance", &i.name), ("state", &st.to_lowercase())],
                v,
            );
        }
    }
    type Field = fn(&crate::api::InstanceReport) -> u64;
    let per_instance: [(&str, &str, &str, Field); 6] = [
        (
            "flotilla_vrrp_priority",
            "gauge",
            "Configured VRRP priority.",
            |i| u64::from(i.priority),
        ),
        (
            "flotilla_vrrp_effective_priority",
            "gauge",
            "Priority advertised now (configured plus trackers, 1-254).",
            |i| u64::from(i.effective_priority),
        ),
        (
            "flotilla_vrrp_transitions_total",
            "counter",
            "VRRP state changes since the agent started the instance.",
            |i| i.transitions,
        ),
        (
            "flotilla_vrrp_adverts_sent_total",
            "counter",
            "VRRP adverts sent.",
            |i| i.adverts_sent,
        ),
        (
            "flotilla_vrrp_adverts_received_total",
            "counter",
            "VRRP adverts received and accepted by the wire checks.",
            |i| i.adverts_received,
        ),
        (
            "flotilla_vrrp_address_list_errors_total",
            "counter",
            "Adverts whose address list differs from the configured one.",
            |i| i.address_list_errors,
        ),
    ];
    for (name, kind, help, field) in per_instance {
        f.head(name, kind, help);
        for i in &s.instances {
            let vrid = i.vrid.to_string();
            f.sample(
                name,
                &[
                    ("instance", &i.name),
                    ("interface", &i.interface),
                    ("vrid", &vrid),
                ],
                field(i),
            );
        }
    }
    f.head(
        "flotilla_vrrp_vips_held",
        "gauge",
        "Virtual addresses the instance holds on this director now.",
    );
    for i in &s.instances {
        f.sample(
            "flotilla_vrrp_vips_held",
            &[("instance", &i.name)],
            i.vips_held.len(),
        );
    }
    f.head(
        "flotilla_vrrp_dropped_total",
        "counter",
        "VRRP packets dropped, by reason.",
    );
    for i in &s.instances {
        for (reason, n) in &i.dropped {
            f.sample(
                "flotilla_vrrp_dropped_total",
                &[("instance", &i.name), ("reason", reason)],
                n,
            );
        }
    }
    f.head(
        "flotilla_lvs_quorum_up",
        "gauge",
        "1 while the virtual server has quorum (else the sorry server serves, if any).",
    );
    for v in &s.virtual_servers {
        f.sample(
            "flotilla_lvs_quorum_up",
            &[("virtual_server", &v.name)],
            u8::from(v.quorum_up),
        );
    }
    f.head(
        "flotilla_lvs_real_server_up",
        "gauge",
        "1 while every checker of the real server passes.",
    );
    for v in &s.virtual_servers {
        for r in &v.real_servers {
            f.sample(
                "flotilla_lvs_real_server_up",
                &[("virtual_server", &v.name), ("real_server", &r.address)],
                u8::from(r.alive),
            );
        }
    }
    f.head(
        "flotilla_lvs_real_server_weight",
        "gauge",
        "The weight IPVS gives the real server now (0 when out or inhibited).",
    );
    for v in &s.virtual_servers {
        for r in &v.real_servers {
            f.sample(
                "flotilla_lvs_real_server_weight",
                &[("virtual_server", &v.name), ("real_server", &r.address)],
                r.weight,
            );
        }
    }
    if let Some(fl) = &s.fleet {
        f.head(
            "flotilla_fleet_raft_term",
            "gauge",
            "Raft term as this director sees it.",
        );
        f.sample("flotilla_fleet_raft_term", &[], fl.term);
        f.head(
            "flotilla_fleet_raft_commit_index",
            "gauge",
            "Raft commit index on this director.",
        );
        f.sample(
            "flotilla_fleet_raft_commit_index",
            &[],
            fl.commit_index.unwrap_or(0),
        );
        f.head(
            "flotilla_fleet_placement_epoch",
            "gauge",
            "Epoch of the placement assignment applied here.",
        );
        f.sample("flotilla_fleet_placement_epoch", &[], fl.epoch);
        f.head(
            "flotilla_fleet_director_up",
            "gauge",
            "1 while a director is alive as this one sees it (heartbeats).",
        );
        for m in &fl.members {
            f.sample(
                "flotilla_fleet_director_up",
                &[("director", &m.name)],
                u8::from(m.alive),
            );
        }
        f.head(
            "flotilla_fleet_vips_owned",
            "gauge",
            "VIPs of the units placement gives each director.",
        );
        for m in &fl.members {
            f.sample(
                "flotilla_fleet_vips_owned",
                &[("director", &m.name)],
                m.weight,
            );
        }
    }
    f.head(
        "flotilla_vrrp_unknown_vrid_adverts_total",
        "counter",
        "Adverts for virtual routers not configured on this director.",
    );
    for u in &s.unknown_vrids {
        let vrid = u.vrid.to_string();
        let family = if u.ipv6 { "ipv6" } else { "ipv4" };
        f.sample(
            "flotilla_vrrp_unknown_vrid_adverts_total",
            &[
                ("interface", &u.interface),
                ("family", family),
                ("vrid", &vrid),
            ],
            u.count,
        );
    }
    metrics.render(&mut f, s);
    crate::metrics::render_ipvs(&mut f, ipvs);
    out
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flotilla</title>
<style>
 body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
 h1 { font-size: 1.3em; } .dir { display: inline-block; vertical-align: top; border: 1px solid #ccc;
 border-radius: 6px; padding: .6em 1em; margin: 0 1em 1em 0; min-width: 22em; }
 .unit { border-radius: 4px; padding: .3em .5em; margin: .3em 0; }
 .MASTER { background: #cdeccf; } .BACKUP { background: #eee; } .FAULT { background: #f6c9c9; }
 .INIT { background: #f3e6b3; } small { color: #666; } #err { color: #a00; }
 h2 { font-size: 1.1em; } .dir.FAULT { border-color: #c33; }
</style></head><body>
<h1>flotilla <small id="mode"></small></h1><div id="err"></div><div id="map"></div>
<script>
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c])); }
async function tick() {
  try {
    const r = await fetch('/api/status'); const s = await r.json();
    document.getElementById('mode').textContent = s.mode;
    let h = '';
    if (s.fleet) {
      const f = s.fleet;
      h += `<p>fleet: this is <b>${esc(f.director)}</b>, leader ${esc(f.leader || 'none')}, term ${f.term}, placement epoch ${f.epoch}</p><div id="fleet">`;
      for (const m of f.members) {
        const st = !m.alive ? 'FAULT' : m.drained ? 'INIT' : 'BACKUP';
        h += `<div class="dir ${st}" data-director="${esc(m.name)}" data-alive="${m.alive}"><b>${esc(m.name)}</b>` +
          ` <small>${m.alive ? 'up' : 'DOWN'}${m.drained ? ', drained' : ''}${m.leader ? ', leader' : ''}, ${m.owns} units, ${m.weight} VIPs</small>`;
        for (const u of f.units.filter(u => u.owner === m.name)) {
          h += `<div class="unit MASTER" data-unit="${esc(u.name)}" data-owner="${esc(m.name)}">${esc(u.name)} <small>${u.weight} VIP${u.weight === 1 ? '' : 's'}; then ${u.ranks.slice(1).map(esc).join(', ') || 'nobody'}</small></div>`;
        }
        h += '</div>';
      }
      h += '</div><h2>this director\'s instances</h2>';
    }
    h += '<div class="dir"><b>instances here</b>';
    for (const i of s.instances) {
      h += `<div class="unit ${esc(i.state)}" data-instance="${esc(i.name)}" data-state="${esc(i.state)}">` +
        `<b>${esc(i.name)}</b> ${esc(i.state)} <small>${esc(i.interface)} VRID ${i.vrid}, prio ${i.effective_priority}` +
        `${i.group ? ', group ' + esc(i.group) : ''}, since ${i.since_seconds.toFixed(1)} s` +
        `${i.fault_by ? ', fault: ' + esc(i.fault_by) : ''}</small><br>` +
        `${i.vips_held.map(esc).join(' ') || '<small>no VIPs held</small>'}</div>`;
    }
    h += '</div>';
    for (const v of (s.virtual_servers || [])) {
      h += `<div class="dir" data-vs="${esc(v.name)}"><b>${esc(v.name)}</b> <small>${esc(v.scheduler)}` +
        `${v.quorum_up ? '' : ', quorum lost'}${v.sorry_server_active ? ', sorry server serving' : ''}</small>`;
      for (const r of v.real_servers) {
        h += `<div class="unit ${r.alive ? 'MASTER' : 'FAULT'}">${esc(r.address)} ${r.alive ? 'UP' : 'DOWN'}` +
          ` <small>weight ${r.weight}${r.reason ? ', ' + esc(r.reason) : ''}</small></div>`;
      }
      h += '</div>';
    }
    document.getElementById('map').innerHTML = h;
    document.getElementById('err').textContent = '';
  } catch (e) { document.getElementById('err').textContent = 'no answer from the agent: ' + e; }
}
tick(); setInterval(tick, 1000);
</script></body></html>
"#;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::InstanceReport;

    fn report() -> DirectorStatus {
        DirectorStatus {
            mode: "standalone".into(),
            instances: vec![InstanceReport {
                name: "VI_\"1\"".into(),
                group: None,
                interface: "eth0".into(),
                vrid: 51,
                state: "MASTER".into(),
                priority: 150,
                effective_priority: 90,
                master: None,
                vips_held: vec!["10.0.0.1".into()],
                vips: vec!["10.0.0.1".into()],
                since_seconds: 1.0,
                last_reason: None,
                fault_by: None,
                address_list_errors: 0,
                transitions: 2,
                adverts_sent: 7,
                adverts_received: 3,
                dropped: BTreeMap::from([("ttl".to_string(), 4)]),
            }],
            unknown_vrids: Vec::new(),
            virtual_servers: Vec::new(),
            fleet: None,
        }
    }

    /// Every sample belongs to the family declared last before it (a histogram's
    /// `_bucket`/`_sum`/`_count` to its histogram), each family is declared once, counters
    /// and only counters end in `_total`, no series appears twice.
    fn assert_well_formed(text: &str) {
        let mut declared: Vec<(String, String)> = Vec::new();
        let mut series = std::collections::BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split(' ');
                let name = words.next().unwrap_or_default().to_string();
                let kind = words.next().unwrap_or_default().to_string();
                assert!(!declared.iter().any(|(n, _)| *n == name), "{name} twice");
                assert_eq!(name.ends_with("_total"), kind == "counter", "{name} {kind}");
                declared.push((name, kind));
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let (family, kind) = declared.last().cloned().unwrap_or_default();
                let own = name == family
                    || (kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name.strip_suffix(s) == Some(family.as_str())));
                assert!(own, "{line} outside its family {family}");
                let key = line.rsplit_once(' ').map(|(k, _)| k).unwrap_or(line);
                assert!(series.insert(key.to_string()), "duplicate series {key}");
            }
        }
    }

    #[test]
    fn exposition_is_well_formed_prometheus_text() {
        let text = exposition(&report(), &Metrics::default(), &IpvsRead::NotConfigured);
        assert!(
            text.contains("flotilla_vrrp_state{instance=\"VI_\\\"1\\\"\",state=\"master\"} 1\n")
        );
        assert!(
            text.contains("flotilla_vrrp_state{instance=\"VI_\\\"1\\\"\",state=\"backup\"} 0\n")
        );
        assert!(text.contains("flotilla_vrrp_effective_priority{instance=\"VI_\\\"1\\\"\",interface=\"eth0\",vrid=\"51\"} 90\n"));
        assert!(
            text.contains(
                "flotilla_vrrp_dropped_total{instance=\"VI_\\\"1\\\"\",reason=\"ttl\"} 4\n"
            )
        );
        assert!(
            !text.contains("flotilla_ipvs"),
            "no virtual servers: no IPVS families"
        );
        assert_well_formed(&text);
    }

    #[test]
    fn probes_takeovers_failovers_and_ipvs_counters_are_exposed() {
        use std::time::Duration;

        use flotilla_check::{ProbeReport, ProbeResult};
        use flotilla_ipvs::{
            Dataplane, DestinationEntry, Forward, MemoryDataplane, Service, ServiceKey,
            ServiceSpec, Stats,
        };

        use crate::moves::{TakeoverKind, Took};
        use crate::virtual_server::{RsReport, VsReport};

        let mut status = report();
        status.virtual_servers = vec![VsReport {
            name: "TCP 10.0.0.100:80".into(),
            scheduler: "wrr".into(),
            quorum_up: true,
            sorry_server_active: false,
            real_servers: vec![RsReport {
                address: "10.0.1.1:80".into(),
                alive: true,
                weight: 2,
                reason: None,
            }],
        }];
        let m = Metrics::default();
        let probe = m.probe_observer("TCP 10.0.0.100:80", "10.0.1.1:80", "HTTP_GET");
        for (ms, result) in [
            (3, ProbeResult::Pass),
            (7, ProbeResult::Pass),
            (1000, ProbeResult::Timeout),
        ] {
            probe(ProbeReport {
                duration: Duration::from_millis(ms),
                result,
            });
        }
        // A virtual server no longer running: not shown.
        m.probe_observer("TCP 10.0.0.200:80", "10.0.1.1:80", "TCP_CHECK")(ProbeReport {
            duration: Duration::from_millis(1),
            result: ProbeResult::Fail,
        });
        m.took(
            "VI_1",
            &Took {
                kind: TakeoverKind::Failover,
                outage: Some(Duration::from_millis(180)),
            },
        );
        m.took(
            "VI_1",
            &Took {
                kind: TakeoverKind::Planned,
                outage: None,
            },
        );
        let service = Service::new(
            ServiceKey::Addr {
                protocol: flotilla_ipvs::Protocol::Tcp,
                addr: "10.0.0.100".parse().unwrap(),
                port: 80,
            },
            "wrr",
        );
        let dest =
            flotilla_ipvs::Destination::new("10.0.1.1".parse().unwrap(), 80, Forward::Route, 2);
        let mut mem = MemoryDataplane::with_state(&[ServiceSpec {
            service,
            destinations: vec![dest],
        }]);
        let mut table = mem.status().unwrap();
        table[0].stats = Stats {
            conns: 5,
            inpkts: 40,
            outpkts: 0,
            inbytes: 4000,
            ..Stats::default()
        };
        table[0].destinations[0] = DestinationEntry {
            active_conns: 2,
            ..table[0].destinations[0]
        };
        let text = exposition(&status, &m, &IpvsRead::Table(table));
        assert_well_formed(&text);
        let vs =
            "virtual_server=\"TCP 10.0.0.100:80\",real_server=\"10.0.1.1:80\",checker=\"HTTP_GET\"";
        for want in [
            format!("flotilla_checker_duration_seconds_bucket{{{vs},le=\"0.005\"}} 1\n"),
            format!("flotilla_checker_duration_seconds_bucket{{{vs},le=\"0.01\"}} 2\n"),
            format!("flotilla_checker_duration_seconds_bucket{{{vs},le=\"+Inf\"}} 3\n"),
            format!("flotilla_checker_duration_seconds_sum{{{vs}}} 1.01\n"),
            format!("flotilla_checker_duration_seconds_count{{{vs}}} 3\n"),
            format!("flotilla_checker_probes_total{{{vs},result=\"pass\"}} 2\n"),
            format!("flotilla_checker_probes_total{{{vs},result=\"timeout\"}} 1\n"),
            format!("flotilla_checker_probes_total{{{vs},result=\"fail\"}} 0\n"),
            "flotilla_unit_takeovers_total{unit=\"VI_1\",kind=\"planned\"} 1\n".into(),
            "flotilla_unit_takeovers_total{unit=\"VI_1\",kind=\"failover\"} 1\n".into(),
            "flotilla_failover_duration_seconds_bucket{unit=\"VI_1\",kind=\"failover\",le=\"0.1\"} 0\n".into(),
            "flotilla_failover_duration_seconds_bucket{unit=\"VI_1\",kind=\"failover\",le=\"0.2\"} 1\n".into(),
            "flotilla_failover_duration_seconds_count{unit=\"VI_1\",kind=\"failover\"} 1\n".into(),
            "flotilla_ipvs_up 1\n".into(),
            "flotilla_ipvs_service_connections_total{virtual_server=\"TCP 10.0.0.100:80\"} 5\n".into(),
            "flotilla_ipvs_service_packets_total{virtual_server=\"TCP 10.0.0.100:80\",direction=\"in\"} 40\n".into(),
            "flotilla_ipvs_service_bytes_total{virtual_server=\"TCP 10.0.0.100:80\",direction=\"in\"} 4000\n".into(),
            "flotilla_ipvs_destination_connections_total{virtual_server=\"TCP 10.0.0.100:80\",real_server=\"10.0.1.1:80\"} 0\n".into(),
            "flotilla_ipvs_destination_connections{virtual_server=\"TCP 10.0.0.100:80\",real_server=\"10.0.1.1:80\",state=\"active\"} 2\n".into(),
        ] {
            assert!(text.contains(&want), "missing {want}in\n{text}");
        }
        assert!(
            !text.contains("10.0.0.200"),
            "a stopped virtual server's checker shown"
        );
        assert!(
            !text.contains("kind=\"planned\",le="),
            "planned moves have no outage"
        );
        let down = exposition(&status, &m, &IpvsRead::Down);
        assert_well_formed(&down);
        assert!(down.contains("flotilla_ipvs_up 0\n"));
        assert!(!down.contains("flotilla_ipvs_service"));
    }
}
