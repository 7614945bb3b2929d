//! The only writer to IPVS (DESIGN.md "Dataplane"): virtual-server actors send it what their
//! services should look like, it changes the kernel by the fewest steps.
//!
//! At start it reconciles the whole desired table once, adopting rules that already match
//! (a restart leaves traffic alone, keepalived #1772). After that each update touches only the
//! services of the virtual server that sent it: their current state is read back from the
//! kernel and planned against, so a rule someone else changed is put right on the next update
//! instead of failing. On stop it removes only the services it owns, unless told to keep them
//! (`--keep-ipvs`, keepalived's `-I`).

use std::collections::{BTreeMap, BTreeSet};

use flotilla_ipvs::{
    Change, Dataplane, DataplaneError, OwnedSet, ServiceKey, ServiceSpec, ServiceStatus, apply,
    plan, reconcile, release,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

pub enum WriterMsg {
    /// The services virtual server `vs` (by name) should have now; none removes them.
    Set { vs: String, specs: Vec<ServiceSpec> },
    /// Remove what flotilla owns (unless keeping), then reply.
    Release { keep: bool, reply: RpcReplyPort<()> },
    /// The kernel's table now, for `flotilla ipvs` / status.
    Table(RpcReplyPort<Result<Vec<ServiceStatus>, String>>),
}

pub struct LvsWriter;

pub struct WriterArgs {
    pub dataplane: Box<dyn Dataplane + Send>,
    /// Every virtual server's initial services, by name.
    pub initial: BTreeMap<String, Vec<ServiceSpec>>,
}

pub struct WriterState {
    dp: Box<dyn Dataplane + Send>,
    owned: OwnedSet,
    by_vs: BTreeMap<String, Vec<ServiceSpec>>,
}

impl Actor for LvsWriter {
    type Msg = WriterMsg;
    type State = WriterState;
    type Arguments = WriterArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<WriterMsg>,
        args: WriterArgs,
    ) -> Result<WriterState, ActorProcessingErr> {
        let WriterArgs {
            mut dataplane,
            initial,
        } = args;
        let all: Vec<ServiceSpec> = initial.values().flatten().cloned().collect();
        // Owning what we want: a leftover equal rule is adopted, a foreign one left alone.
        let mut owned = OwnedSet::of(&all);
        let (changes, report) = reconcile(dataplane.as_mut(), &all, &mut owned)?;
        log_report("start", &changes, &report);
        tracing::info!(
            services = all.len(),
            changes = changes.len(),
            "IPVS table reconciled"
        );
        Ok(WriterState {
            dp: dataplane,
            owned,
            by_vs: initial,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<WriterMsg>,
        msg: WriterMsg,
        st: &mut WriterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WriterMsg::Set { vs, specs } => {
                let before = st
                    .by_vs
                    .insert(vs.clone(), specs.clone())
                    .unwrap_or_default();
                let keys: BTreeSet<ServiceKey> =
                    before.iter().chain(&specs).map(|s| s.service.key).collect();
                match current_of(st.dp.as_mut(), &keys) {
                    Ok(current) => {
                        for s in &specs {
                            st.owned.insert(s.service.key);
                        }
                        let changes = plan(&specs, &current, &st.owned);
                        let report = apply(st.dp.as_mut(), &changes);
                        log_report("update", &changes, &report);
                        st.owned = st.owned.after(&specs, &changes);
                    }
                    Err(e) => {
                        tracing::error!(%vs, error = %e, "cannot read IPVS back; update not applied")
                    }
                }
            }
            WriterMsg::Release { keep, reply } => {
                if keep {
                    tracing::info!(
                        services = st.owned.len(),
                        "keeping the IPVS rules (--keep-ipvs)"
                    );
                } else {
                    match release(st.dp.as_mut(), &mut st.owned) {
                        Ok(r) if r.is_ok() => tracing::info!("IPVS services removed"),
                        Ok(r) => {
                            tracing::warn!(failed = ?r.failed, "some IPVS services could not be removed")
                        }
                        Err(e) => tracing::error!(error = %e, "cannot remove the IPVS services"),
                    }
                }
                let _ = reply.send(());
            }
            WriterMsg::Table(reply) => {
                let _ = reply.send(st.dp.status().map_err(|e| e.to_string()));
            }
        }
        Ok(())
    }
}

/// The kernel's current state of the services `keys` (absent ones are simply missing).
fn current_of(
    dp: &mut dyn Dataplane,
    keys: &BTreeSet<ServiceKey>,
) -> Result<Vec<ServiceSpec>, DataplaneError> {
    let mut out = Vec::new();
    // One lookup per key, not a dump of the whole table: at start every virtual server sends
    // its services once, and a dump each would make that quadratic in the number of services.
    for key in keys {
        let Some(s) = dp.service(key)? else {
            continue;
        };
        let destinations = dp
            .destinations(&s.service.key)?
            .into_iter()
            .map(|d| d.destination)
            .collect();
        out.push(
            ServiceSpec {
                service: s.service,
                destinations,
            }
            .normalised(),
        );
    }
    Ok(out)
}

fn log_report(when: &str, changes: &[Change], report: &flotilla_ipvs::Report) {
    for c in changes {
        tracing::debug!(when, change = ?c, "IPVS");
    }
    for f in &report.failed {
        tracing::error!(when, change = ?f.change, error = %f.error, "IPVS change refused");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::IpAddr;
    use std::path::Path;

    use flotilla_config::{LoadOptions, load_str};
    use flotilla_ipvs::{MemoryDataplane, desired_state};

    use super::*;

    fn specs(text: &str) -> Vec<ServiceSpec> {
        let l = load_str(Path::new("t.conf"), text, &LoadOptions::default());
        assert!(l.is_ok(), "{}", l.report());
        desired_state(&l.config.lvs).unwrap()
    }

    const TWO: &str = "virtual_server 10.0.0.100 80 {\n lb_algo wrr\n lb_kind DR\n real_server 10.0.1.1 80 {\n  weight 2\n }\n real_server 10.0.1.2 80 {\n  weight 1\n }\n}\n";

    /// A dataplane whose state the test can read while the actor owns it.
    #[derive(Clone)]
    struct Shared(
        std::sync::Arc<std::sync::Mutex<MemoryDataplane>>,
        /// How many times the whole table was listed.
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    );

    impl Shared {
        fn new(mem: MemoryDataplane) -> Self {
            Shared(
                std::sync::Arc::new(std::sync::Mutex::new(mem)),
                Default::default(),
            )
        }
        fn dumps(&self) -> usize {
            self.1.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    macro_rules! delegate {
        ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
            $(fn $name(&mut self, $($arg: $ty),*) -> $ret { self.0.lock().unwrap().$name($($arg),*) })*
        };
    }

    impl Dataplane for Shared {
        fn services(&mut self) -> Result<Vec<flotilla_ipvs::ServiceEntry>, DataplaneError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.lock().unwrap().services()
        }
        delegate! {
            service(key: &ServiceKey) -> Result<Option<flotilla_ipvs::ServiceEntry>, DataplaneError>;
            destinations(key: &ServiceKey) -> Result<Vec<flotilla_ipvs::DestinationEntry>, DataplaneError>;
            add_service(service: &flotilla_ipvs::Service) -> Result<(), DataplaneError>;
            edit_service(service: &flotilla_ipvs::Service) -> Result<(), DataplaneError>;
            delete_service(key: &ServiceKey) -> Result<(), DataplaneError>;
            add_destination(key: &ServiceKey, d: &flotilla_ipvs::Destination) -> Result<(), DataplaneError>;
            edit_destination(key: &ServiceKey, d: &flotilla_ipvs::Destination) -> Result<(), DataplaneError>;
            delete_destination(key: &ServiceKey, d: &flotilla_ipvs::DestKey) -> Result<(), DataplaneError>;
            flush() -> Result<(), DataplaneError>;
            info() -> Result<flotilla_ipvs::IpvsInfo, DataplaneError>;
            start_daemon(d: &flotilla_ipvs::SyncDaemon) -> Result<(), DataplaneError>;
            stop_daemon(role: flotilla_ipvs::DaemonRole) -> Result<(), DataplaneError>;
            daemons() -> Result<Vec<flotilla_ipvs::SyncDaemon>, DataplaneError>;
        }
    }

    #[tokio::test]
    async fn adopts_at_start_updates_one_virtual_server_and_releases_only_its_own() {
        let want = specs(TWO);
        let foreign = specs(
            "virtual_server 10.9.9.9 443 {\n lb_algo rr\n real_server 10.0.2.1 443 {\n }\n}\n",
        );
        let mut start = want.clone();
        start.extend(foreign.clone());
        let mem = Shared::new(MemoryDataplane::with_state(&start));
        let initial = BTreeMap::from([("TCP 10.0.0.100:80".to_string(), want.clone())]);
        let (w, _) = Actor::spawn(
            None,
            LvsWriter,
            WriterArgs {
                dataplane: Box::new(mem.clone()),
                initial,
            },
        )
        .await
        .unwrap();
        let calls = |m: &Shared| m.0.lock().unwrap().log.len();
        let _ = ractor::call!(w, WriterMsg::Table).unwrap();
        assert_eq!(calls(&mem), 0, "equal rules adopted: no change at start");
        // b2 fails: one destination deleted, nothing else touched.
        let mut one = want.clone();
        one[0]
            .destinations
            .retain(|d| d.addr != "10.0.1.2".parse::<IpAddr>().unwrap());
        w.cast(WriterMsg::Set {
            vs: "TCP 10.0.0.100:80".into(),
            specs: one.clone(),
        })
        .unwrap();
        let table = ractor::call!(w, WriterMsg::Table).unwrap().unwrap();
        assert_eq!(calls(&mem), 1, "{:?}", mem.0.lock().unwrap().log);
        let ours = table
            .iter()
            .find(|s| s.service.key == want[0].service.key)
            .unwrap();
        assert_eq!(ours.destinations.len(), 1);
        ractor::call!(w, |r| WriterMsg::Release {
            keep: false,
            reply: r
        })
        .unwrap();
        let left: Vec<_> = mem.0.lock().unwrap().state();
        assert_eq!(left, foreign, "only the foreign service is left");
    }

    /// keepalived-sized tables: at start every virtual server sends its services once; each
    /// update must look up its own services, not list the whole table (2,000 virtual servers
    /// made 2,000 dumps of 2,000 services, and the agent took minutes to start and to stop).
    #[tokio::test]
    async fn an_update_looks_up_its_own_services_without_listing_the_table() {
        let want = specs(TWO);
        let mem = Shared::new(MemoryDataplane::with_state(&want));
        let initial = BTreeMap::from([("TCP 10.0.0.100:80".to_string(), want.clone())]);
        let (w, _) = Actor::spawn(
            None,
            LvsWriter,
            WriterArgs {
                dataplane: Box::new(mem.clone()),
                initial,
            },
        )
        .await
        .unwrap();
        let at_start = mem.dumps();
        let mut one = want.clone();
        one[0]
            .destinations
            .retain(|d| d.addr != "10.0.1.2".parse::<IpAddr>().unwrap());
        for specs in [want.clone(), one.clone(), want.clone()] {
            w.cast(WriterMsg::Set {
                vs: "TCP 10.0.0.100:80".into(),
                specs,
            })
            .unwrap();
        }
        ractor::call!(w, |r| WriterMsg::Release {
            keep: true,
            reply: r
        })
        .unwrap();
        assert_eq!(mem.dumps(), at_start, "updates listed the whole table");
        assert_eq!(mem.0.lock().unwrap().state(), want, "updates applied");
        assert_eq!(
            mem.0.lock().unwrap().log.len(),
            2,
            "{:?}",
            mem.0.lock().unwrap().log
        );
    }
}
