//! The standalone director: one actor per unit under the [`Supervisor`], the notifier and
//! the tracker runners, until SIGTERM or SIGINT; then every master sends priority 0 and
//! removes its VIPs before the process exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_config::Config;
use ractor::{Actor, ActorCell, ActorRef};
use tokio::signal::unix::{SignalKind, signal};

use crate::announce::Announcers;
use crate::api::Handles;
use crate::conn_sync::ConnSync;
use crate::instance::{InstanceArgs, InstanceMsg, STOP_TIMEOUT, VrrpInstance};
use crate::lvs::{IpvsBackend, Lvs};
use crate::metrics::{IpvsSource, Metrics, set_ipvs};
use crate::notifier::{Notifier, NotifyMsg};
use crate::sd_notify::SdNotify;
use crate::setup::{self, SetupError, UnitSetup};
use crate::supervisor::{Children, Spawner, Supervisor, SupervisorMsg};
use crate::trackers::TrackerHub;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("starting {what}: {reason}")]
    Spawn { what: String, reason: String },
    #[error(transparent)]
    Api(#[from] crate::api::ApiError),
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("HTTP listener on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("fleet mode: {0}")]
    Fleet(String),
}

/// How the standalone director runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The control socket `flotilla status` talks to.
    pub api_socket: PathBuf,
    /// The opt-in HTTP listener (`/metrics`, `/api/status`, the status page).
    pub listen: Option<SocketAddr>,
    /// Leave the IPVS rules in place on stop (keepalived's `-I`).
    pub keep_ipvs: bool,
    pub ipvs: IpvsBackend,
    /// Fleet mode: this director's name (a `director` of the cluster block) and where its
    /// Raft state lives.
    pub fleet: Option<FleetArgs>,
}

#[derive(Debug, Clone)]
pub struct FleetArgs {
    pub name: String,
    pub state_dir: PathBuf,
}

/// The running units the control socket and the link watch talk to; the supervisor
/// replaces an actor it restarts, a reload the units it changes.
pub type Running = Children<UnitSetup, InstanceMsg>;

/// The current unit actors.
pub fn actors(running: &Running) -> Vec<ActorRef<InstanceMsg>> {
    lock(running).iter().map(|c| c.actor.clone()).collect()
}

/// The current unit actors with their unit names.
pub fn actors_by_name(running: &Running) -> Vec<(String, ActorRef<InstanceMsg>)> {
    lock(running)
        .iter()
        .map(|c| (c.spec.name.clone(), c.actor.clone()))
        .collect()
}

fn specs(running: &Running) -> Vec<UnitSetup> {
    lock(running).iter().map(|c| c.spec.clone()).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts VRRP units for the supervisor.
struct Units {
    notifier: ActorRef<NotifyMsg>,
    trackers: TrackerHub,
    announcers: Announcers,
    metrics: Metrics,
}

impl Spawner for Units {
    type Spec = UnitSetup;
    type Msg = InstanceMsg;

    fn name(spec: &UnitSetup) -> String {
        spec.name.clone()
    }

    async fn spawn(
        &self,
        unit: UnitSetup,
        supervisor: ActorCell,
    ) -> Result<ActorRef<InstanceMsg>, String> {
        let args = InstanceArgs {
            unit,
            notifier: self.notifier.clone(),
            trackers: self.trackers.clone(),
            announcers: self.announcers.clone(),
            metrics: self.metrics.clone(),
        };
        Actor::spawn_linked(None, VrrpInstance, args, supervisor)
            .await
            .map(|(actor, _)| actor)
            .map_err(|e| e.to_string())
    }
}

/// How long a director removed from the fleet's configuration keeps its units, so that the
/// leader's next assignment gives them to others first (make-before-break).
pub const HANDOVER_WAIT: Duration = Duration::from_secs(2);

type SupervisorRef = ActorRef<SupervisorMsg<UnitSetup, InstanceMsg>>;

/// Runs a standalone configuration until SIGTERM/SIGINT. SIGHUP calls `reload` for a new
/// configuration: a bad one changes nothing (its diagnostics are logged); otherwise units
/// whose setup is unchanged keep running untouched (no transition, no VIP flap), removed
/// units release (priority 0, VIPs removed) and stop, new and changed units start.
pub async fn run_standalone(
    cfg: Arc<Config>,
    reload: impl Fn() -> Result<Config, String>,
    options: &Options,
) -> Result<(), AgentError> {
    let api_socket = options.api_socket.as_path();
    // The configuration in effect here: a committed one is compared with this, not with the
    // file the director started from, or a return to that file (a director removed and then
    // added back while it runs) would be taken for "no change" and leave its units stopped.
    let mut in_effect = cfg;
    let cfg: &Config = &in_effect;
    let units = match &options.fleet {
        None => setup::units(cfg)?,
        Some(f) => setup::units_for_director(cfg, &f.name)?,
    };
    let unit_setups = units.clone();
    // Each running health check holds a socket: at a soft limit of 1,024 a large LVS
    // configuration runs out, and every check that cannot open one fails its real server.
    match flotilla_net::limits::raise_open_files() {
        Ok((before, after)) if after > before => {
            tracing::info!(before, after, "open files limit raised to the hard limit");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "open files limit not raised"),
    }
    let mut term = signal(SignalKind::terminate()).map_err(AgentError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AgentError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(AgentError::Signals)?;
    let (notifier, notifier_task) = Actor::spawn(
        Some("notifier".into()),
        Notifier,
        cfg.global.script_user.clone(),
    )
    .await
    .map_err(|e| AgentError::Spawn {
        what: "the notifier".into(),
        reason: e.to_string(),
    })?;
    let running: Running = Arc::default();
    let metrics = Metrics::default();
    let spawner = Units {
        metrics: metrics.clone(),
        notifier: notifier.clone(),
        trackers: TrackerHub::new(cfg.global.script_user.clone()),
        announcers: Announcers::new(
            Duration::from_micros(cfg.global.vrrp_garp_interval.0),
            Duration::from_micros(cfg.global.vrrp_gna_interval.0),
        ),
    };
    let (supervisor, _) = Actor::spawn(
        Some("supervisor".into()),
        Supervisor::new(spawner),
        running.clone(),
    )
    .await
    .map_err(|e| AgentError::Spawn {
        what: "the supervisor".into(),
        reason: e.to_string(),
    })?;
    for unit in units {
        if let Err(e) = start_unit(&supervisor, unit).await {
            stop_all(&running, |_| true).await;
            return Err(e);
        }
    }
    let mut handles = Handles {
        units: running.clone(),
        metrics: metrics.clone(),
        ..Handles::default()
    };
    if let Some(f) = &options.fleet {
        let started = crate::fleet::start(crate::fleet::FleetStart {
            config: cfg,
            name: &f.name,
            state_dir: &f.state_dir,
            units: running.clone(),
            unit_setups: &unit_setups,
        })
        .await;
        match started {
            Ok(h) => handles.fleet = Some(h),
            Err(e) => {
                stop_all(&running, |_| true).await;
                return Err(AgentError::Fleet(e.to_string()));
            }
        }
    }
    let mut fleet_watch = handles.fleet.as_ref().map(|f| f.watch());
    let mut config_version = fleet_watch
        .as_ref()
        .map(|w| w.borrow().config_version)
        .unwrap_or(0);
    let strays = handles.strays.clone();
    strays.watch(&specs(&running));
    let mut lvs = Lvs::start(
        &in_effect,
        &notifier,
        options.ipvs,
        handles.virtual_servers.clone(),
        &handles.metrics,
    )
    .await;
    ipvs_source(&handles, &lvs, cfg);
    let conn_sync = match (&handles.fleet, &lvs) {
        (Some(f), Some(_))
            if options.ipvs == IpvsBackend::Kernel && crate::conn_sync::wanted(cfg) =>
        {
            match ConnSync::start(f.mesh(), cfg, &metrics).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "connection sync not started: flows will not survive a move");
                    None
                }
            }
        }
        _ => None,
    };
    let api = match crate::api::serve(api_socket, handles.clone()) {
        Ok(task) => task,
        Err(e) => {
            stop_all(&running, |_| true).await;
            if let Some(l) = lvs.take() {
                l.stop(options.keep_ipvs).await;
            }
            return Err(AgentError::Api(e));
        }
    };
    let web = match options.listen {
        None => None,
        Some(addr) => match crate::web::serve(addr, handles.clone()).await {
            Ok(task) => Some(task),
            Err(e) => {
                api.abort();
                stop_all(&running, |_| true).await;
                if let Some(l) = lvs.take() {
                    l.stop(options.keep_ipvs).await;
                }
                return Err(AgentError::Listen(addr, e));
            }
        },
    };
    // The thread ends with the process; it holds no state that needs releasing.
    let _links = watch_links(running.clone());
    let systemd = SdNotify::from_env();
    if let Some(sd) = &systemd {
        sd.ready();
        if let Some(every) = crate::sd_notify::watchdog_interval() {
            let (sd, supervisor) = (sd.clone(), supervisor.clone());
            // Pings only while the supervisor runs and the runtime is responsive.
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if supervisor.get_status() == ractor::ActorStatus::Running {
                        sd.watchdog();
                    }
                }
            });
        }
    }
    // What loading and starting freed (the file's syntax tree above all) goes back now.
    flotilla_net::heap::release_free_memory();
    tracing::info!(units = lock(&running).len(), api = %api_socket.display(), "running standalone");
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: releasing"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: releasing"); break; }
            _ = hup.recv() => {
                if let Some(sd) = &systemd {
                    sd.reloading();
                }
                match (&handles.fleet, reload()) {
                    (_, Err(why)) => tracing::error!("SIGHUP: the new configuration is not used, nothing changed:\n{why}"),
                    // Fleet mode: the file goes to the leader and reaches every director
                    // through Raft (this one included, below).
                    (Some(f), Ok(new)) => match serde_json::to_string(&new) {
                        Ok(json) => {
                            let a = f.control(crate::api::Request::ConfigApply { json }).await;
                            tracing::info!(ok = a.ok, message = ?a.message, error = ?a.error, "SIGHUP: configuration sent to the fleet");
                        }
                        Err(e) => tracing::error!(error = %e, "SIGHUP: cannot encode the configuration"),
                    },
                    (None, Ok(new)) => {
                        apply_config(&Arc::new(new), &running, &supervisor, &strays, &mut lvs, &notifier, options, &handles).await;
                    }
                }
                if let Some(sd) = &systemd {
                    sd.ready();
                }
            }
            changed = next_state(&mut fleet_watch) => {
                if !changed {
                    fleet_watch = None;
                    continue;
                }
                let state = fleet_watch.as_mut().map(|w| w.borrow_and_update().clone());
                if let Some(state) = state && state.config_version != config_version {
                    config_version = state.config_version;
                    match state.config() {
                        Ok(Some(mut new)) if new != *in_effect => {
                            tracing::info!(version = config_version, "fleet configuration changed");
                            // Kept for as long as it is in effect: without the room its
                            // vectors grew into while decoding (other decodes are dropped).
                            new.shrink_to_fit();
                            let new = Arc::new(new);
                            if apply_config(&new, &running, &supervisor, &strays, &mut lvs, &notifier, options, &handles).await {
                                in_effect = new;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "the fleet's configuration does not decode; not applied"),
                    }
                }
            }
        }
    }
    if let Some(sd) = &systemd {
        sd.stopping();
    }
    api.abort();
    if let Some(w) = web {
        w.abort();
    }
    strays.stop();
    let _ = std::fs::remove_file(api_socket);
    stop_all(&running, |_| true).await;
    supervisor.stop(None);
    set_ipvs(&handles.ipvs, IpvsSource::NotConfigured);
    if let Some(c) = conn_sync {
        c.stop().await;
    }
    if let Some(l) = lvs {
        l.stop(options.keep_ipvs).await;
    }
    if let Some(f) = &handles.fleet {
        f.stop().await;
    }
    // Let queued notify scripts (STOP among them) run before the process exits.
    if notifier.drain().is_err() {
        notifier.stop(None);
    }
    if tokio::time::timeout(crate::notifier::SCRIPT_TIMEOUT * 2, notifier_task)
        .await
        .is_err()
    {
        tracing::warn!("notify scripts still running at exit");
    }
    Ok(())
}

/// Tells `/metrics` where IPVS is read from now that LVS started (or did not).
fn ipvs_source(handles: &Handles, lvs: &Option<Lvs>, cfg: &Config) {
    let source = match lvs {
        Some(l) => IpvsSource::Writer(l.writer()),
        None if cfg.lvs.virtual_servers.is_empty() => IpvsSource::NotConfigured,
        None => IpvsSource::Unavailable,
    };
    set_ipvs(&handles.ipvs, source);
}

async fn start_unit(supervisor: &SupervisorRef, unit: UnitSetup) -> Result<(), AgentError> {
    let name = unit.name.clone();
    let failed = |reason: String| AgentError::Spawn {
        what: format!("VRRP unit {name}"),
        reason,
    };
    match ractor::call!(supervisor, SupervisorMsg::Start, unit) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(failed(e)),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// The next change of the fleet's committed state; `false` when there is none to wait for.
async fn next_state(
    w: &mut Option<tokio::sync::watch::Receiver<flotilla_cluster::raft::FleetState>>,
) -> bool {
    match w {
        Some(w) => w.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// A new, validated configuration: units and virtual servers are diffed, only what changed
/// is touched. Returns whether it was applied (`false`: it cannot be run here, nothing
/// changed).
#[allow(clippy::too_many_arguments)]
async fn apply_config(
    new: &Arc<Config>,
    running: &Running,
    supervisor: &SupervisorRef,
    strays: &crate::strays::Strays,
    lvs: &mut Option<Lvs>,
    notifier: &ActorRef<NotifyMsg>,
    options: &Options,
    handles: &Handles,
) -> bool {
    let wanted = match &options.fleet {
        None => setup::units(new),
        Some(f) => match setup::units_for_director(new, &f.name) {
            // Removed from the fleet while running: it owns nothing in the assignments to
            // come, and the others stop sending it their adverts, so it would never hear that
            // its units have new owners. It gives the leader HANDOVER_WAIT to place them
            // elsewhere (their new owners take over at once: make), then lets go of
            // everything (break); without a leader its backups take over on its priority-0
            // adverts.
            Err(SetupError::UnknownDirector(_)) => {
                tracing::warn!(director = %f.name, wait = ?HANDOVER_WAIT, "this director is not in the fleet's configuration any more: releasing every unit after the hand-over wait");
                // Meanwhile it must not win against the new owners: their adverts no longer
                // reach it, and at its old rank's priority it would beat a new owner at equal
                // priority (higher address) once the takeover's +1 runs out, which then drops
                // the VIPs its GARPs had just pulled the clients to. At the lowest priority it
                // holds on only until the release.
                for (_, actor) in actors_by_name(running) {
                    let _ = actor.cast(InstanceMsg::Place {
                        priority: crate::fleet::UNRANKED_PRIORITY,
                        take_over: None,
                        owner: false,
                    });
                }
                tokio::time::sleep(HANDOVER_WAIT).await;
                Ok(Vec::new())
            }
            other => other,
        },
    };
    let wanted = match wanted {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "the new configuration cannot be run; nothing changed");
            return false;
        }
    };
    apply_reload(running, wanted, supervisor).await;
    strays.watch(&specs(running));
    match lvs {
        Some(l) => l.reload(new).await,
        None => {
            *lvs = Lvs::start(
                new,
                notifier,
                options.ipvs,
                handles.virtual_servers.clone(),
                &handles.metrics,
            )
            .await;
            ipvs_source(handles, lvs, new);
        }
    }
    if let Some(f) = &handles.fleet {
        f.reapply();
    }
    flotilla_net::heap::release_free_memory();
    true
}

/// SIGHUP: the new configuration was validated first; only what changed is touched.
async fn apply_reload(running: &Running, wanted: Vec<UnitSetup>, supervisor: &SupervisorRef) {
    let repeered = update_peers(running, &wanted);
    if repeered > 0 {
        tracing::info!(units = repeered, "unicast peers updated in place");
    }
    let stopped = stop_all(running, |s| !wanted.contains(s)).await;
    let have = specs(running);
    let unchanged = have.len();
    let mut started = 0;
    for unit in wanted {
        if have.contains(&unit) {
            continue;
        }
        tracing::info!(unit = %unit.name, "SIGHUP: new or changed; starting");
        match start_unit(supervisor, unit).await {
            Ok(()) => started += 1,
            Err(e) => tracing::error!(error = %e, "SIGHUP: a unit did not start"),
        }
    }
    tracing::info!(unchanged, started, stopped, "SIGHUP: reloaded");
}

/// Units whose new setup differs only in their unicast peers (fleet mode: a director added
/// or removed) are told their new peers and keep running; their running spec becomes the
/// new one, so a restart by the supervisor uses it. Returns how many.
fn update_peers(running: &Running, wanted: &[UnitSetup]) -> usize {
    let mut list = lock(running);
    let mut updated = 0;
    for c in list.iter_mut() {
        let Some(new) = wanted.iter().find(|w| w.name == c.spec.name) else {
            continue;
        };
        if *new == c.spec || !only_peers_differ(&c.spec, new) {
            continue;
        }
        let peers = new.members.iter().map(|m| m.peers.clone()).collect();
        if c.actor.cast(InstanceMsg::Peers(peers)).is_ok() {
            c.spec = new.clone();
            updated += 1;
        }
    }
    updated
}

/// The same unit but for the unicast peers of its members, each list non-empty before and
/// after (a change between multicast and unicast needs a new socket: a restart).
fn only_peers_differ(old: &UnitSetup, new: &UnitSetup) -> bool {
    if old.name != new.name || old.group != new.group || old.members.len() != new.members.len() {
        return false;
    }
    old.members.iter().zip(&new.members).all(|(o, n)| {
        let mut o = o.clone();
        if o.peers.is_empty() || n.peers.is_empty() {
            return o == *n;
        }
        o.peers = n.peers.clone();
        o == *n
    })
}

/// Releases and stops the units `which` selects, taking them out of the running list first
/// so the supervisor does not restart them. Returns how many.
async fn stop_all(running: &Running, which: impl Fn(&UnitSetup) -> bool) -> usize {
    let going: Vec<_> = {
        let mut list = lock(running);
        let (go, stay): (Vec<_>, Vec<_>) = std::mem::take(&mut *list)
            .into_iter()
            .partition(|c| which(&c.spec));
        *list = stay;
        go
    };
    for c in &going {
        tracing::info!(unit = %c.spec.name, "releasing");
        let released = c.actor.call(InstanceMsg::Stop, Some(STOP_TIMEOUT)).await;
        if !matches!(released, Ok(ractor::rpc::CallResult::Success(()))) {
            tracing::warn!(unit = %c.spec.name, "unit did not confirm its release");
        }
        c.actor.stop(None);
    }
    going.len()
}

/// Forwards link up/down events to every unit (each picks the interfaces it tracks). The
/// watch's netlink stream is not `Sync`, so it runs on a thread of its own with a
/// single-threaded runtime; casting to actors works from any thread.
fn watch_links(units: Running) -> Option<std::thread::JoinHandle<()>> {
    use flotilla_net::link::{LinkEvent, LinkWatch};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch links: interface faults will not be seen");
            return None;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("link-watch".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut watch = match LinkWatch::open().await {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot watch links: interface faults will not be seen");
                        return;
                    }
                };
                while let Some(event) = watch.next().await {
                    let (name, up) = match event {
                        LinkEvent::Up(s) => (s.name, true),
                        LinkEvent::Down(s) => (s.name, false),
                        LinkEvent::Removed { name, .. } => (name, false),
                    };
                    for u in &actors(&units) {
                        let _ = u.cast(InstanceMsg::Link {
                            name: name.clone(),
                            up,
                        });
                    }
                }
            })
        });
    match spawned {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the link watch thread");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use flotilla_config::{LoadOptions, load_str};

    use super::*;

    fn fleet(directors: &[&str], me: &str) -> Vec<UnitSetup> {
        let list: String = directors
            .iter()
            .enumerate()
            .map(|(i, d)| format!("director {d} {{ address 10.0.0.{} }}\n", i + 1))
            .collect();
        let text = format!(
            "cluster {{\n name t\n {list} }}\n\
             vrrp_sync_group G {{ group {{ A B }} }}\n\
             vrrp_instance A {{ interface eth0\n virtual_router_id 1\n virtual_ipaddress {{ 10.1.0.1/24 }} }}\n\
             vrrp_instance B {{ interface eth0\n virtual_router_id 2\n virtual_ipaddress {{ 10.1.0.2/24 }} }}\n\
             vrrp_instance C {{ interface eth0\n virtual_router_id 3\n virtual_ipaddress {{ 10.1.0.3/24 }} }}\n"
        );
        let l = load_str(Path::new("t.conf"), &text, &LoadOptions::default());
        assert!(l.is_ok(), "{}", l.report());
        setup::units_for_director(&l.config, me).unwrap()
    }

    #[test]
    fn directors_added_or_removed_change_only_the_peers_of_running_units() {
        let three = fleet(&["d1", "d2", "d3"], "d1");
        let six = fleet(&["d1", "d2", "d3", "d4", "d5", "d6"], "d1");
        assert_eq!(three.len(), 2);
        for (old, new) in three.iter().zip(&six) {
            assert_ne!(old, new);
            assert!(only_peers_differ(old, new), "{}", old.name);
            assert!(only_peers_differ(new, old), "{}", old.name);
        }
        // Alone, a director's units run multicast: growing needs new sockets.
        let alone = fleet(&["d1"], "d1");
        assert!(alone[0].members[0].peers.is_empty());
        assert!(!only_peers_differ(&alone[0], &three[0]));
        // Anything else that changed is a real change.
        let mut other = six[1].clone();
        other.members[0].params.vrid = 9;
        assert!(!only_peers_differ(&three[1], &other));
        assert!(!only_peers_differ(&three[0], &six[1]));
    }
}
