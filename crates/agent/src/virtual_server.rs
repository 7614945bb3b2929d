//! One actor per `virtual_server` (DESIGN.md: VirtualServer ×V): it owns the real servers'
//! checkers ([`CheckRunner`]s, one per configured check), folds their transitions into a
//! [`VsState`], and whenever that changes what IPVS should hold it sends the new services to
//! the [`LvsWriter`](crate::lvs_writer::LvsWriter). It runs `notify_up`/`notify_down` of a
//! real server and `quorum_up`/`quorum_down` of the service through the Notifier.

use std::sync::Arc;

use flotilla_check::{CheckEvent, CheckRunner, CheckSpec, EventSink, Target};
use flotilla_config::Config;
use flotilla_config::model::lvs::{Protocol, RealServer, VirtualServer, VirtualServerKey};
use flotilla_ipvs::ServiceSpec;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};

use crate::lvs_writer::WriterMsg;
use crate::metrics::Metrics;
use crate::notifier::NotifyMsg;
use crate::supervisor::Spawner;
use crate::vs_state::{VsEvent, VsState};

/// How a virtual server is named in logs, status and the writer: `TCP 10.0.0.100:80`,
/// `fwmark 6`, `group web`.
pub fn vs_name(vs: &VirtualServer) -> String {
    match &vs.key {
        VirtualServerKey::Addr { ip, port, protocol } => {
            let p = match protocol {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
                Protocol::Sctp => "SCTP",
            };
            match ip {
                std::net::IpAddr::V6(v6) => format!("{p} [{v6}]:{port}"),
                v4 => format!("{p} {v4}:{port}"),
            }
        }
        other => other.to_string(),
    }
}

/// How a real server is named in status and metrics: `10.0.1.1:80`.
fn rs_address(rs: &RealServer) -> String {
    format!("{}:{}", rs.ip, rs.port)
}

pub enum VsMsg {
    /// Checker `check` of real server `rs` reported.
    Check {
        rs: usize,
        check: usize,
        event: CheckEvent,
    },
    Status(RpcReplyPort<VsReport>),
}

/// What `flotilla status` shows of a virtual server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsReport {
    pub name: String,
    pub scheduler: String,
    pub quorum_up: bool,
    pub sorry_server_active: bool,
    pub real_servers: Vec<RsReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsReport {
    pub address: String,
    pub alive: bool,
    /// The weight IPVS has for it now (0 when out, or inhibited).
    pub weight: u32,
    /// The last transition's reason, if any.
    pub reason: Option<String>,
}

pub struct VsActor;

/// What the supervisor restarts a virtual server from. Two specs are equal when the virtual
/// server and the groups it may use are (a reload leaves an equal one running untouched).
///
/// A spec points into the shared configuration rather than holding a copy of its virtual
/// server: with tens of thousands of real servers, every copy of the model costs megabytes.
#[derive(Clone)]
pub struct VsSpec {
    pub name: String,
    /// The whole configuration, for groups and the checkers' global settings.
    pub config: Arc<Config>,
    /// Which of `config`'s virtual servers this is.
    index: usize,
}

impl std::fmt::Debug for VsSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VsSpec")
            .field("name", &self.name)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl PartialEq for VsSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.vs() == other.vs()
            && self.config.lvs.virtual_server_groups == other.config.lvs.virtual_server_groups
    }
}

impl VsSpec {
    /// One spec per virtual server of `config`.
    pub fn all(config: &Arc<Config>) -> Vec<VsSpec> {
        config
            .lvs
            .virtual_servers
            .iter()
            .enumerate()
            .map(|(index, vs)| VsSpec {
                name: vs_name(vs),
                config: config.clone(),
                index,
            })
            .collect()
    }

    /// The virtual server.
    pub fn vs(&self) -> &VirtualServer {
        // `index` came from this configuration, which nothing mutates behind its Arc.
        &self.config.lvs.virtual_servers[self.index]
    }
}

pub struct VsArgs {
    pub spec: VsSpec,
    pub writer: ActorRef<WriterMsg>,
    pub notifier: ActorRef<NotifyMsg>,
    pub metrics: Metrics,
}

pub struct VsActorState {
    name: String,
    state: VsState,
    writer: ActorRef<WriterMsg>,
    notifier: ActorRef<NotifyMsg>,
    /// Dropping a runner stops its checker.
    runners: Vec<CheckRunner>,
    reasons: Vec<Option<String>>,
    last: Vec<ServiceSpec>,
}

impl Actor for VsActor {
    type Msg = VsMsg;
    type State = VsActorState;
    type Arguments = VsArgs;

    async fn pre_start(
        &self,
        me: ActorRef<VsMsg>,
        args: VsArgs,
    ) -> Result<VsActorState, ActorProcessingErr> {
        let VsArgs {
            spec,
            writer,
            notifier,
            metrics,
        } = args;
        let cfg = &spec.config;
        let vs = spec.vs();
        let state = VsState::new(&spec)?;
        let mut runners = Vec::new();
        for (i, rs) in vs.real_servers.iter().enumerate() {
            for (c, checker) in rs.checkers.iter().enumerate() {
                let check = CheckSpec::new(checker, Target::of(rs), cfg)
                    .map_err(|e| format!("{}: real server {}: {e}", spec.name, rs.ip))?;
                let observer =
                    metrics.probe_observer(&spec.name, &rs_address(rs), checker.kind.keyword());
                let me = me.clone();
                let events = EventSink::Call(Box::new(move |event| {
                    me.cast(VsMsg::Check {
                        rs: i,
                        check: c,
                        event,
                    })
                    .is_ok()
                }));
                runners.push(CheckRunner::spawn_observed(check, events, Some(observer)));
            }
        }
        let last = state.desired();
        // Idempotent at start (the writer reconciled the table), needed after a restart.
        writer.cast(WriterMsg::Set {
            vs: spec.name.clone(),
            specs: last.clone(),
        })?;
        tracing::info!(
            virtual_server = %spec.name,
            real_servers = vs.real_servers.len(),
            checkers = runners.len(),
            quorum_up = state.quorum_up(),
            "virtual server started"
        );
        let reasons = vec![None; vs.real_servers.len()];
        Ok(VsActorState {
            name: spec.name,
            reasons,
            state,
            writer,
            notifier,
            runners,
            last,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<VsMsg>,
        msg: VsMsg,
        st: &mut VsActorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            VsMsg::Check { rs, check, event } => {
                let events = match &event {
                    CheckEvent::Up { reason } => {
                        st.note(rs, reason);
                        st.state.check(rs, check, true, reason)
                    }
                    CheckEvent::Down { reason } => {
                        st.note(rs, reason);
                        st.state.check(rs, check, false, reason)
                    }
                    CheckEvent::Weight(w) => st.state.set_weight(rs, *w),
                };
                for e in &events {
                    st.announce(e);
                }
                let now = st.state.desired();
                if now != st.last {
                    st.writer.cast(WriterMsg::Set {
                        vs: st.name.clone(),
                        specs: now.clone(),
                    })?;
                    st.last = now;
                }
            }
            VsMsg::Status(reply) => {
                let _ = reply.send(st.report());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _me: ActorRef<VsMsg>,
        st: &mut VsActorState,
    ) -> Result<(), ActorProcessingErr> {
        // Stops every checker now, not when ractor drops the state.
        st.runners.clear();
        Ok(())
    }
}

impl VsActorState {
    fn note(&mut self, rs: usize, reason: &str) {
        if let Some(r) = self.reasons.get_mut(rs) {
            *r = Some(reason.to_string());
        }
    }

    fn announce(&self, e: &VsEvent) {
        let vs = self.state.virtual_server();
        let rs_name = |i: usize| {
            vs.real_servers
                .get(i)
                .map(|r| format!("{}:{}", r.ip, r.port))
                .unwrap_or_default()
        };
        let script = match e {
            VsEvent::RealServerUp { rs } => {
                tracing::info!(virtual_server = %self.name, real_server = %rs_name(*rs), "real server up: added");
                vs.real_servers.get(*rs).and_then(|r| r.notify_up.clone())
            }
            VsEvent::RealServerDown { rs, reason } => {
                tracing::warn!(virtual_server = %self.name, real_server = %rs_name(*rs), %reason, "real server down: removed");
                vs.real_servers.get(*rs).and_then(|r| r.notify_down.clone())
            }
            VsEvent::QuorumUp { weight } => {
                tracing::info!(virtual_server = %self.name, weight, "quorum gained");
                vs.quorum_up.clone()
            }
            VsEvent::QuorumDown { weight } => {
                tracing::warn!(virtual_server = %self.name, weight, sorry_server = vs.sorry_server.is_some(), "quorum lost");
                vs.quorum_down.clone()
            }
        };
        if let Some(script) = script {
            let _ = self.notifier.cast(NotifyMsg::Run {
                script,
                extra: Vec::new(),
            });
        }
    }

    fn report(&self) -> VsReport {
        let vs = self.state.virtual_server();
        let desired = self.state.desired();
        let weight_of = |ip, port| {
            desired
                .first()
                .and_then(|s| {
                    s.destinations
                        .iter()
                        .find(|d| d.addr == ip && d.port == port)
                })
                .map(|d| d.weight)
                .unwrap_or(0)
        };
        let sorry_active = !self.state.quorum_up() && vs.sorry_server.is_some();
        VsReport {
            name: self.name.clone(),
            scheduler: vs.scheduler.name().to_string(),
            quorum_up: self.state.quorum_up(),
            sorry_server_active: sorry_active,
            real_servers: vs
                .real_servers
                .iter()
                .enumerate()
                .map(|(i, r)| RsReport {
                    address: rs_address(r),
                    alive: self.state.alive(i),
                    weight: if sorry_active {
                        0
                    } else {
                        weight_of(r.ip, r.port)
                    },
                    reason: self.reasons.get(i).cloned().flatten(),
                })
                .collect(),
        }
    }
}

/// Starts virtual-server actors for the supervisor.
pub struct VsSpawner {
    pub writer: ActorRef<WriterMsg>,
    pub notifier: ActorRef<NotifyMsg>,
    pub metrics: Metrics,
}

impl Spawner for VsSpawner {
    type Spec = VsSpec;
    type Msg = VsMsg;

    fn name(spec: &VsSpec) -> String {
        spec.name.clone()
    }

    async fn spawn(&self, spec: VsSpec, supervisor: ActorCell) -> Result<ActorRef<VsMsg>, String> {
        let args = VsArgs {
            spec,
            writer: self.writer.clone(),
            notifier: self.notifier.clone(),
            metrics: self.metrics.clone(),
        };
        Actor::spawn_linked(None, VsActor, args, supervisor)
            .await
            .map(|(a, _)| a)
            .map_err(|e| e.to_string())
    }
}
