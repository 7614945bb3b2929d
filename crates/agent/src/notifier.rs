//! The Notifier: runs notify scripts one at a time with a timeout, so a slow or failing
//! script is logged and never blocks VRRP (the instance actors only cast to it).

use std::time::Duration;

use flotilla_config::model::Script;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::process::Command;

/// How long a notify script may run before it is killed.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

pub enum NotifyMsg {
    /// Run `script` with `extra` appended to its arguments.
    Run { script: Script, extra: Vec<String> },
}

pub struct Notifier;

impl Actor for Notifier {
    type Msg = NotifyMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _me: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let NotifyMsg::Run { script, extra } = msg;
        run(&script, &extra).await;
        Ok(())
    }
}

async fn run(script: &Script, extra: &[String]) {
    let Some((program, args)) = script.argv.split_first() else {
        return;
    };
    if script.user.as_deref().is_some_and(|u| u != "root") {
        tracing::warn!(
            script = %program,
            user = ?script.user,
            "notify script user/group is not applied yet; running as the agent's user"
        );
    }
    let mut cmd = Command::new(program);
    cmd.args(args).args(extra).kill_on_drop(true);
    match tokio::time::timeout(SCRIPT_TIMEOUT, cmd.status()).await {
        Ok(Ok(status)) if status.success() => {
            tracing::debug!(script = %program, ?extra, "notify script ran")
        }
        Ok(Ok(status)) => {
            tracing::warn!(script = %program, ?extra, %status, "notify script failed")
        }
        Ok(Err(e)) => {
            tracing::warn!(script = %program, error = %e, "notify script could not start")
        }
        Err(_) => {
            tracing::warn!(script = %program, timeout = ?SCRIPT_TIMEOUT, "notify script timed out and was killed")
        }
    }
}
