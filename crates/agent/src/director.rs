//! The standalone director: one actor per instance plus the notifier, until SIGTERM or
//! SIGINT; then every master sends priority 0 and removes its VIPs before the process exits.

use std::path::Path;
use std::sync::{Arc, Mutex};

use flotilla_config::Config;
use ractor::{Actor, ActorRef};
use tokio::signal::unix::{SignalKind, signal};

use crate::instance::{InstanceArgs, InstanceMsg, STOP_TIMEOUT, VrrpInstance};
use crate::notifier::{Notifier, NotifyMsg};
use crate::setup::{self, SetupError, UnitSetup};

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
}

/// The actors the control socket and the link watch talk to; replaced on reload.
pub type Running = Arc<Mutex<Vec<ActorRef<InstanceMsg>>>>;

/// Runs a standalone configuration until SIGTERM/SIGINT. SIGHUP calls `reload` for a new
/// configuration: a bad one changes nothing (its diagnostics are logged); otherwise units
/// whose setup is unchanged keep running untouched (no transition, no VIP flap), removed
/// units release (priority 0, VIPs removed) and stop, new and changed units start.
pub async fn run_standalone(
    cfg: &Config,
    reload: impl Fn() -> Result<Config, String>,
    api_socket: &Path,
) -> Result<(), AgentError> {
    let units = setup::units(cfg)?;
    let mut term = signal(SignalKind::terminate()).map_err(AgentError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AgentError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(AgentError::Signals)?;
    let (notifier, notifier_task) = Actor::spawn(Some("notifier".into()), Notifier, ())
        .await
        .map_err(|e| AgentError::Spawn {
            what: "the notifier".into(),
            reason: e.to_string(),
        })?;
    let mut current: Vec<(UnitSetup, ActorRef<InstanceMsg>)> = Vec::new();
    for unit in units {
        match spawn_unit(unit.clone(), &notifier).await {
            Ok(actor) => current.push((unit, actor)),
            Err(e) => {
                stop_all(current.iter().map(|(_, a)| a)).await;
                return Err(e);
            }
        }
    }
    let running: Running = Arc::new(Mutex::new(current.iter().map(|(_, a)| a.clone()).collect()));
    let api = match crate::api::serve(api_socket, running.clone()) {
        Ok(task) => task,
        Err(e) => {
            stop_all(current.iter().map(|(_, a)| a)).await;
            return Err(AgentError::Api(e));
        }
    };
    // The thread ends with the process; it holds no state that needs releasing.
    let _links = watch_links(running.clone());
    tracing::info!(units = current.len(), api = %api_socket.display(), "running standalone");
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: releasing"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: releasing"); break; }
            _ = hup.recv() => {
                current = apply_reload(current, &reload, &notifier).await;
                if let Ok(mut r) = running.lock() {
                    *r = current.iter().map(|(_, a)| a.clone()).collect();
                }
            }
        }
    }
    api.abort();
    let _ = std::fs::remove_file(api_socket);
    stop_all(current.iter().map(|(_, a)| a)).await;
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

async fn spawn_unit(
    unit: UnitSetup,
    notifier: &ActorRef<NotifyMsg>,
) -> Result<ActorRef<InstanceMsg>, AgentError> {
    let name = unit.name.clone();
    Actor::spawn(
        None,
        VrrpInstance,
        InstanceArgs {
            unit,
            notifier: notifier.clone(),
        },
    )
    .await
    .map(|(actor, _)| actor)
    .map_err(|e| AgentError::Spawn {
        what: format!("VRRP unit {name}"),
        reason: e.to_string(),
    })
}

/// SIGHUP: the new configuration is validated first; only what changed is touched.
async fn apply_reload(
    current: Vec<(UnitSetup, ActorRef<InstanceMsg>)>,
    reload: &impl Fn() -> Result<Config, String>,
    notifier: &ActorRef<NotifyMsg>,
) -> Vec<(UnitSetup, ActorRef<InstanceMsg>)> {
    let wanted = match reload()
        .map_err(|e| e.to_string())
        .and_then(|cfg| setup::units(&cfg).map_err(|e| e.to_string()))
    {
        Ok(u) => u,
        Err(why) => {
            tracing::error!("SIGHUP: the new configuration is not used, nothing changed:\n{why}");
            return current;
        }
    };
    let (kept, gone): (Vec<_>, Vec<_>) = current.into_iter().partition(|(s, _)| wanted.contains(s));
    for (s, _) in &gone {
        tracing::info!(unit = %s.name, "SIGHUP: removed or changed; releasing");
    }
    stop_all(gone.iter().map(|(_, a)| a)).await;
    let mut next = kept;
    let unchanged = next.len();
    for unit in wanted {
        if next.iter().any(|(s, _)| *s == unit) {
            continue;
        }
        tracing::info!(unit = %unit.name, "SIGHUP: new or changed; starting");
        match spawn_unit(unit.clone(), notifier).await {
            Ok(actor) => next.push((unit, actor)),
            Err(e) => tracing::error!(error = %e, "SIGHUP: a unit did not start"),
        }
    }
    tracing::info!(
        unchanged,
        started = next.len() - unchanged,
        stopped = gone.len(),
        "SIGHUP: reloaded"
    );
    next
}

async fn stop_all<'a>(instances: impl Iterator<Item = &'a ActorRef<InstanceMsg>>) {
    for actor in instances {
        let released = actor.call(InstanceMsg::Stop, Some(STOP_TIMEOUT)).await;
        if !matches!(released, Ok(ractor::rpc::CallResult::Success(()))) {
            tracing::warn!(actor = ?actor.get_name(), "instance did not confirm its release");
        }
        actor.stop(None);
    }
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
                    let targets = units.lock().map(|u| u.clone()).unwrap_or_default();
                    for u in &targets {
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
