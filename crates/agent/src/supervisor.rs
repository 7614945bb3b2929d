//! The supervisor: starts units linked to itself and, when one fails (its handler returned
//! an error or panicked), starts that one again from the same setup — alone, the others
//! never notice. A unit that keeps failing ([`MAX_RESTARTS`] within [`RESTART_WINDOW`]) is
//! given up on and logged, rather than restarted in a hot loop.
//!
//! The list of running children is shared ([`Children`]) so the control socket and the link
//! watch always reach the current actor after a restart. Whoever stops a child on purpose
//! takes it out of the list first, so the supervisor does not bring it back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, Message, RpcReplyPort, SupervisionEvent,
};

/// Failures tolerated per child within [`RESTART_WINDOW`].
pub const MAX_RESTARTS: usize = 5;
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// Pause before a restart, so a child failing at once does not spin.
pub const RESTART_DELAY: Duration = Duration::from_millis(100);

/// How to start one kind of child.
pub trait Spawner: Send + Sync + 'static {
    type Spec: Clone + Send + Sync + 'static;
    type Msg: Message;
    fn name(spec: &Self::Spec) -> String;
    fn spawn(
        &self,
        spec: Self::Spec,
        supervisor: ActorCell,
    ) -> impl Future<Output = Result<ActorRef<Self::Msg>, String>> + Send;
}

/// A running child and the setup it was started from.
pub struct Child<S, M> {
    pub spec: S,
    pub actor: ActorRef<M>,
    failures: Vec<Instant>,
}

pub type Children<S, M> = Arc<Mutex<Vec<Child<S, M>>>>;

pub enum SupervisorMsg<S, M> {
    /// Start a child and reply with its actor.
    Start(S, RpcReplyPort<Result<ActorRef<M>, String>>),
    /// Start a failed child again (after [`RESTART_DELAY`]).
    Restart(S, Vec<Instant>),
}

pub struct Supervisor<P: Spawner> {
    spawner: P,
}

impl<P: Spawner> Supervisor<P> {
    pub fn new(spawner: P) -> Self {
        Supervisor { spawner }
    }
}

impl<P: Spawner> Actor for Supervisor<P> {
    type Msg = SupervisorMsg<P::Spec, P::Msg>;
    type State = Children<P::Spec, P::Msg>;
    type Arguments = Children<P::Spec, P::Msg>;

    async fn pre_start(
        &self,
        _me: ActorRef<Self::Msg>,
        children: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(children)
    }

    async fn handle(
        &self,
        me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        children: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Start(spec, reply) => {
                let started = self.spawner.spawn(spec.clone(), me.get_cell()).await;
                if let Ok(actor) = &started {
                    lock(children).push(Child {
                        spec,
                        actor: actor.clone(),
                        failures: Vec::new(),
                    });
                }
                let _ = reply.send(started);
            }
            SupervisorMsg::Restart(spec, failures) => {
                let name = P::name(&spec);
                match self.spawner.spawn(spec.clone(), me.get_cell()).await {
                    Ok(actor) => {
                        tracing::warn!(unit = %name, restarts = failures.len(), "restarted after a failure");
                        lock(children).push(Child {
                            spec,
                            actor,
                            failures,
                        });
                    }
                    Err(e) => {
                        tracing::error!(unit = %name, error = %e, "could not restart; retrying");
                        me.send_after(RESTART_DELAY * 10, move || {
                            SupervisorMsg::Restart(spec, failures)
                        });
                    }
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        children: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            // Stopped on purpose (taken out of the list first) or by its own choice.
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let mut list = lock(children);
                if let Some(i) = list.iter().position(|c| c.actor.get_id() == cell.get_id()) {
                    let c = list.remove(i);
                    tracing::warn!(unit = %P::name(&c.spec), ?reason, "stopped by itself; not restarted");
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        let failed = {
            let mut list = lock(children);
            let i = list.iter().position(|c| c.actor.get_id() == cell.get_id());
            i.map(|i| list.remove(i))
        };
        let Some(mut child) = failed else {
            return Ok(());
        };
        let name = P::name(&child.spec);
        let now = Instant::now();
        child
            .failures
            .retain(|t| now.duration_since(*t) < RESTART_WINDOW);
        child.failures.push(now);
        if child.failures.len() > MAX_RESTARTS {
            tracing::error!(unit = %name, error = %why, failures = child.failures.len(), "failed too often; given up (fix the cause and reload)");
            return Ok(());
        }
        tracing::error!(unit = %name, error = %why, "failed; restarting it alone");
        let (spec, failures) = (child.spec, child.failures);
        me.send_after(RESTART_DELAY, move || {
            SupervisorMsg::Restart(spec, failures)
        });
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A child that fails on demand.
    struct Fragile;

    enum FragileMsg {
        Fail,
        Panic,
        Ping(RpcReplyPort<u32>),
    }

    impl Actor for Fragile {
        type Msg = FragileMsg;
        type State = u32;
        type Arguments = u32;

        async fn pre_start(
            &self,
            _me: ActorRef<FragileMsg>,
            id: u32,
        ) -> Result<u32, ActorProcessingErr> {
            Ok(id)
        }

        async fn handle(
            &self,
            _me: ActorRef<FragileMsg>,
            msg: FragileMsg,
            id: &mut u32,
        ) -> Result<(), ActorProcessingErr> {
            match msg {
                FragileMsg::Fail => Err("asked to fail".into()),
                FragileMsg::Panic => panic!("asked to panic"),
                FragileMsg::Ping(r) => {
                    let _ = r.send(*id);
                    Ok(())
                }
            }
        }
    }

    struct Spawn;

    impl Spawner for Spawn {
        type Spec = u32;
        type Msg = FragileMsg;
        fn name(spec: &u32) -> String {
            format!("child-{spec}")
        }
        async fn spawn(&self, spec: u32, sup: ActorCell) -> Result<ActorRef<FragileMsg>, String> {
            Actor::spawn_linked(None, Fragile, spec, sup)
                .await
                .map(|(a, _)| a)
                .map_err(|e| e.to_string())
        }
    }

    fn actor_of(children: &Children<u32, FragileMsg>, spec: u32) -> Option<ActorRef<FragileMsg>> {
        lock(children)
            .iter()
            .find(|c| c.spec == spec)
            .map(|c| c.actor.clone())
    }

    async fn replaced(
        children: &Children<u32, FragileMsg>,
        spec: u32,
        old: &ActorRef<FragileMsg>,
    ) -> ActorRef<FragileMsg> {
        for _ in 0..200 {
            if let Some(a) = actor_of(children, spec)
                && a.get_id() != old.get_id()
            {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("child {spec} was not restarted");
    }

    #[tokio::test]
    async fn a_failed_child_is_restarted_alone_and_a_stopped_one_is_not() {
        let children: Children<u32, FragileMsg> = Arc::default();
        let (sup, _) = Actor::spawn(None, Supervisor::new(Spawn), children.clone())
            .await
            .unwrap();
        for id in [1, 2, 3] {
            let started = ractor::call!(sup, SupervisorMsg::Start, id).unwrap();
            assert!(started.is_ok());
        }
        let one = actor_of(&children, 1).unwrap();
        let two = actor_of(&children, 2).unwrap();
        one.cast(FragileMsg::Fail).unwrap();
        let one_again = replaced(&children, 1, &one).await;
        assert_eq!(ractor::call!(one_again, FragileMsg::Ping).unwrap(), 1);
        // A panic is a failure too.
        one_again.cast(FragileMsg::Panic).unwrap();
        let one_third = replaced(&children, 1, &one_again).await;
        assert_eq!(ractor::call!(one_third, FragileMsg::Ping).unwrap(), 1);
        assert_eq!(
            actor_of(&children, 2).unwrap().get_id(),
            two.get_id(),
            "the others are untouched"
        );
        // Stopped on purpose: taken out of the list first, never brought back.
        let three = actor_of(&children, 3).unwrap();
        lock(&children).retain(|c| c.spec != 3);
        three.stop(None);
        tokio::time::sleep(RESTART_DELAY * 3).await;
        assert!(actor_of(&children, 3).is_none());
        assert_eq!(sup.get_status(), ractor::ActorStatus::Running);
    }

    #[tokio::test]
    async fn a_child_failing_again_and_again_is_given_up() {
        let children: Children<u32, FragileMsg> = Arc::default();
        let (sup, _) = Actor::spawn(None, Supervisor::new(Spawn), children.clone())
            .await
            .unwrap();
        ractor::call!(sup, SupervisorMsg::Start, 7)
            .unwrap()
            .unwrap();
        let mut current = actor_of(&children, 7).unwrap();
        for _ in 0..MAX_RESTARTS {
            current.cast(FragileMsg::Fail).unwrap();
            current = replaced(&children, 7, &current).await;
        }
        current.cast(FragileMsg::Fail).unwrap();
        tokio::time::sleep(RESTART_DELAY * 3).await;
        assert!(
            actor_of(&children, 7).is_none(),
            "given up after {MAX_RESTARTS} restarts"
        );
        assert_eq!(sup.get_status(), ractor::ActorStatus::Running);
    }
}
