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
