//! The standalone director: one actor per instance plus the notifier, until SIGTERM or
//! SIGINT; then every master sends priority 0 and removes its VIPs before the process exits.

use std::path::Path;

use flotilla_config::Config;
use ractor::{Actor, ActorRef};
use tokio::signal::unix::{SignalKind, signal};

use crate::instance::{InstanceArgs, InstanceMsg, STOP_TIMEOUT, VrrpInstance};
use crate::notifier::Notifier;
use crate::setup::{self, SetupError};

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

/// Runs a standalone configuration until SIGTERM/SIGINT.
pub async fn run_standalone(cfg: &Config, api_socket: &Path) -> Result<(), AgentError> {
    let units = setup::units(cfg)?;
    let mut term = signal(SignalKind::terminate()).map_err(AgentError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AgentError::Signals)?;
    let (notifier, notifier_task) = Actor::spawn(Some("notifier".into()), Notifier, ())
        .await
        .map_err(|e| AgentError::Spawn {
            what: "the notifier".into(),
            reason: e.to_string(),
        })?;
    let mut instances: Vec<ActorRef<InstanceMsg>> = Vec::new();
    for unit in units {
        let name = unit.name.clone();
        let spawned = Actor::spawn(
            Some(format!("vrrp/{name}")),
            VrrpInstance,
            InstanceArgs {
                unit,
                notifier: notifier.clone(),
            },
        )
        .await;
        match spawned {
            Ok((actor, _)) => instances.push(actor),
            Err(e) => {
                stop_all(&instances).await;
                return Err(AgentError::Spawn {
                    what: format!("VRRP unit {name}"),
                    reason: e.to_string(),
                });
            }
        }
    }
    let api = match crate::api::serve(api_socket, instances.clone()) {
        Ok(task) => task,
        Err(e) => {
            stop_all(&instances).await;
            return Err(AgentError::Api(e));
        }
    };
    // The thread ends with the process; it holds no state that needs releasing.
    let _links = watch_links(instances.clone());
    tracing::info!(instances = instances.len(), api = %api_socket.display(), "running standalone");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: releasing"),
        _ = int.recv() => tracing::info!("SIGINT: releasing"),
    }
    api.abort();
    let _ = std::fs::remove_file(api_socket);
    stop_all(&instances).await;
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

async fn stop_all(instances: &[ActorRef<InstanceMsg>]) {
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
fn watch_links(units: Vec<ActorRef<InstanceMsg>>) -> Option<std::thread::JoinHandle<()>> {
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
                    for u in &units {
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
