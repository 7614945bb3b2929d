//! The LVS half of a director: the IPVS writer and one supervised [`VsActor`] per
//! `virtual_server`, started from the configuration, reloaded by diff, released on stop.
//!
//! IPVS is programmed whatever the VRRP state (as keepalived does on backups), so a takeover
//! only adds the address. A kernel without IPVS is reported and leaves VRRP running.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use flotilla_config::Config;
use flotilla_ipvs::{Dataplane, KernelDataplane, MemoryDataplane};
use ractor::{Actor, ActorRef};

use crate::lvs_writer::{LvsWriter, WriterArgs, WriterMsg};
use crate::metrics::Metrics;
use crate::notifier::NotifyMsg;
use crate::supervisor::{Children, Supervisor, SupervisorMsg};
use crate::virtual_server::{VsMsg, VsSpawner, VsSpec};
use crate::vs_state::VsState;

/// Where IPVS rules go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpvsBackend {
    /// The kernel, over generic netlink.
    #[default]
    Kernel,
    /// An in-memory table with the kernel's semantics: for demos and tests on a kernel
    /// without IPVS; nothing reaches the kernel.
    Memory,
}

pub struct Lvs {
    writer: ActorRef<WriterMsg>,
    supervisor: ActorRef<SupervisorMsg<VsSpec, VsMsg>>,
    children: Children<VsSpec, VsMsg>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Lvs {
    /// Starts LVS for `cfg`, or returns `None` when it has no virtual servers or IPVS cannot
    /// be used (logged). `children` is where the running virtual servers are listed.
    pub async fn start(
        cfg: &Arc<Config>,
        notifier: &ActorRef<NotifyMsg>,
        backend: IpvsBackend,
        children: Children<VsSpec, VsMsg>,
        metrics: &Metrics,
    ) -> Option<Lvs> {
        if cfg.lvs.virtual_servers.is_empty() {
            return None;
        }
        let dataplane: Box<dyn Dataplane + Send> = match backend {
            IpvsBackend::Memory => {
                tracing::warn!(
                    "IPVS: in-memory table only (--ipvs memory); the kernel is not programmed"
                );
                Box::new(MemoryDataplane::new())
            }
            IpvsBackend::Kernel => match KernelDataplane::connect() {
                Ok(k) => Box::new(k),
                Err(e) => {
                    tracing::error!(error = %e, virtual_servers = cfg.lvs.virtual_servers.len(), "LVS not started; VRRP runs without it");
                    return None;
                }
            },
        };
        let specs = VsSpec::all(cfg);
        let mut initial = BTreeMap::new();
        let mut startable = Vec::new();
        for s in specs {
            match VsState::new(&s) {
                Ok(st) => {
                    initial.insert(s.name.clone(), st.desired());
                    startable.push(s);
                }
                Err(e) => {
                    tracing::error!(virtual_server = %s.name, error = %e, "virtual server not started")
                }
            }
        }
        let writer = match Actor::spawn(
            Some("ipvs-writer".into()),
            LvsWriter,
            WriterArgs { dataplane, initial },
        )
        .await
        {
            Ok((w, _)) => w,
            Err(e) => {
                tracing::error!(error = %e, "LVS not started: the IPVS table could not be set up");
                return None;
            }
        };
        let spawner = VsSpawner {
            writer: writer.clone(),
            notifier: notifier.clone(),
            metrics: metrics.clone(),
        };
        let supervisor = match Actor::spawn(
            Some("vs-supervisor".into()),
            Supervisor::new(spawner),
            children.clone(),
        )
        .await
        {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::error!(error = %e, "LVS not started: no supervisor");
                writer.stop(None);
                return None;
            }
        };
        let lvs = Lvs {
            writer,
            supervisor,
            children,
        };
        for s in startable {
            lvs.start_vs(s).await;
        }
        Some(lvs)
    }

    /// The IPVS writer (for reads: `/metrics` asks it for the table).
    pub fn writer(&self) -> ActorRef<WriterMsg> {
        self.writer.clone()
    }

    async fn start_vs(&self, spec: VsSpec) {
        let name = spec.name.clone();
        match ractor::call!(self.supervisor, SupervisorMsg::Start, spec) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(virtual_server = %name, error = %e, "virtual server not started")
            }
            Err(e) => {
                tracing::error!(virtual_server = %name, error = %e, "virtual server not started")
            }
        }
    }

    /// A new configuration (already validated): unchanged virtual servers keep running with
    /// their checkers' state and their connections; removed ones leave IPVS; new and changed
    /// ones start.
    pub async fn reload(&self, cfg: &Arc<Config>) {
        let wanted = VsSpec::all(cfg);
        let going: Vec<_> = {
            let mut list = lock(&self.children);
            let (go, stay): (Vec<_>, Vec<_>) = std::mem::take(&mut *list)
                .into_iter()
                .partition(|c| !wanted.contains(&c.spec));
            *list = stay;
            go
        };
        for c in &going {
            tracing::info!(virtual_server = %c.spec.name, "SIGHUP: removed or changed");
            c.actor.stop(None);
            let _ = self.writer.cast(WriterMsg::Set {
                vs: c.spec.name.clone(),
                specs: Vec::new(),
            });
        }
        let have: Vec<VsSpec> = lock(&self.children)
            .iter()
            .map(|c| c.spec.clone())
            .collect();
        let mut started = 0;
        for s in wanted {
            if !have.contains(&s) {
                self.start_vs(s).await;
                started += 1;
            }
        }
        tracing::info!(
            unchanged = have.len(),
            started,
            stopped = going.len(),
            "SIGHUP: LVS reloaded"
        );
    }

    /// Stops the checkers, then removes flotilla's IPVS services unless `keep`.
    pub async fn stop(self, keep: bool) {
        let all: Vec<_> = std::mem::take(&mut *lock(&self.children));
        for c in &all {
            c.actor.stop(None);
        }
        self.supervisor.stop(None);
        let released = ractor::call!(self.writer, |r| WriterMsg::Release { keep, reply: r });
        if released.is_err() {
            tracing::warn!("the IPVS writer did not confirm the release");
        }
        self.writer.stop(None);
    }
}
