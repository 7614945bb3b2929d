//! The Notifier: runs notify scripts one at a time with a timeout, as their configured user,
//! so a slow or failing script is logged and never blocks VRRP (the instance actors only
//! cast to it).

use std::time::Duration;

use flotilla_config::model::Script;
use flotilla_config::model::global::ScriptUser;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::script::Outcome;

/// How long a notify script may run before it is killed.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

pub enum NotifyMsg {
    /// Run `script` with `extra` appended to its arguments.
    Run { script: Script, extra: Vec<String> },
}

pub struct Notifier;

impl Actor for Notifier {
    type Msg = NotifyMsg;
    /// `global_defs { script_user }`: who runs scripts that name no user.
    type State = Option<ScriptUser>;
    type Arguments = Option<ScriptUser>;

    async fn pre_start(
        &self,
        _me: ActorRef<Self::Msg>,
        script_user: Option<ScriptUser>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(script_user)
    }

    async fn handle(
        &self,
        _me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        script_user: &mut Option<ScriptUser>,
    ) -> Result<(), ActorProcessingErr> {
        let NotifyMsg::Run { script, extra } = msg;
        let program = script.argv.first().cloned().unwrap_or_default();
        match crate::script::run(&script, &extra, SCRIPT_TIMEOUT, script_user.as_ref()).await {
            Outcome::Exited(0) => tracing::debug!(script = %program, ?extra, "notify script ran"),
            o => tracing::warn!(script = %program, ?extra, outcome = %o, "notify script failed"),
        }
        Ok(())
    }
}
