//! Desired state against what the kernel holds: [`plan`] lists the fewest changes that make
//! the kernel's rules equal the desired ones, [`apply`] carries them out through a
//! [`Dataplane`].
//!
//! Two rules keep flotilla from harming what it does not own and from tripping over what it
//! left behind:
//! * A service in the kernel equal to a desired one is adopted, not re-added (keepalived
//!   #1772: "Service already exists" after a restart); one that differs is edited in place.
//! * A service that is not desired is deleted only when flotilla owns it ([`OwnedSet`]):
//!   services of other tools (an operator's `ipvsadm`, another daemon) are never touched.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::dataplane::{Dataplane, DataplaneError};
use crate::types::{DestKey, Destination, Service, ServiceKey, ServiceSpec};

/// The services flotilla created or adopted from its configuration. Kept by the caller
/// across reloads; after a restart, the services of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedSet {
    keys: BTreeSet<ServiceKey>,
}

impl OwnedSet {
    pub fn new() -> Self {
        OwnedSet::default()
    }

    /// Owning exactly the services of `desired`.
    pub fn of(desired: &[ServiceSpec]) -> Self {
        OwnedSet {
            keys: desired.iter().map(|s| s.service.key).collect(),
        }
    }

    pub fn contains(&self, key: &ServiceKey) -> bool {
        self.keys.contains(key)
    }

    pub fn insert(&mut self, key: ServiceKey) {
        self.keys.insert(key);
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// What is owned once `changes` are applied on top of adopting `desired`: everything
    /// desired, minus what was deleted. Changes that failed are the caller's to retry.
    pub fn after(&self, desired: &[ServiceSpec], changes: &[Change]) -> Self {
        let mut keys = self.keys.clone();
        keys.extend(desired.iter().map(|s| s.service.key));
        for c in changes {
            if let Change::DeleteService(k) = c {
                keys.remove(k);
            }
        }
        OwnedSet { keys }
    }
}

/// One IPVS operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    AddService(Service),
    EditService(Service),
    DeleteService(ServiceKey),
    AddDestination(ServiceKey, Destination),
    EditDestination(ServiceKey, Destination),
    DeleteDestination(ServiceKey, DestKey),
}

impl Change {
    pub fn service_key(&self) -> &ServiceKey {
        match self {
            Change::AddService(s) | Change::EditService(s) => &s.key,
            Change::DeleteService(k)
            | Change::AddDestination(k, _)
            | Change::EditDestination(k, _)
            | Change::DeleteDestination(k, _) => k,
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::AddService(s) => write!(f, "add service {} {}", s.key, s.scheduler),
            Change::EditService(s) => write!(f, "edit service {} {}", s.key, s.scheduler),
            Change::DeleteService(k) => write!(f, "delete service {k}"),
            Change::AddDestination(k, d) => write!(f, "add destination {} to {k}", d.key()),
            Change::EditDestination(k, d) => write!(f, "edit destination {} of {k}", d.key()),
            Change::DeleteDestination(k, d) => write!(f, "delete destination {d} of {k}"),
        }
    }
}

/// Later duplicates of a service key or of a destination key within a service are ignored:
/// the first one written wins, as in the configuration.
fn index(
    specs: &[ServiceSpec],
) -> BTreeMap<ServiceKey, (&Service, BTreeMap<DestKey, &Destination>)> {
    let mut m = BTreeMap::new();
    for s in specs {
        m.entry(s.service.key).or_insert_with(|| {
            let mut dests = BTreeMap::new();
            for d in &s.destinations {
                dests.entry(d.key()).or_insert(d);
            }
            (&s.service, dests)
        });
    }
    m
}

/// The fewest changes that turn `current` into `desired` for the services flotilla owns or
/// desires, leaving every other service alone. Deletions of services come first (freeing
/// what they held), then per service in key order: the service itself, its destination
/// deletions, edits and additions.
pub fn plan(desired: &[ServiceSpec], current: &[ServiceSpec], owned: &OwnedSet) -> Vec<Change> {
    let want = index(desired);
    let have = index(current);
    let mut changes = Vec::new();
    for key in have.keys() {
        if !want.contains_key(key) && owned.contains(key) {
            changes.push(Change::DeleteService(*key));
        }
    }
    for (key, (service, dests)) in &want {
        let none = BTreeMap::new();
        let have_dests = match have.get(key) {
            None => {
                changes.push(Change::AddService((*service).clone()));
                &none
            }
            Some((cur, cur_dests)) => {
                if cur != service {
                    changes.push(Change::EditService((*service).clone()));
                }
                cur_dests
            }
        };
        for dk in have_dests.keys() {
            if !dests.contains_key(dk) {
                changes.push(Change::DeleteDestination(*key, *dk));
            }
        }
        for (dk, d) in dests {
            match have_dests.get(dk) {
                Some(c) if c == d => {}
                Some(_) => changes.push(Change::EditDestination(*key, **d)),
                None => changes.push(Change::AddDestination(*key, **d)),
            }
        }
    }
    changes
}

/// A change the dataplane refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub change: Change,
    pub error: DataplaneError,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: usize,
    pub failed: Vec<Failure>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Carries out `changes` in order. A refused change does not stop the others (one bad
/// real server must not keep the rest of the configuration out of the kernel); the changes
/// that depend on a refused service fail in turn and are reported with it.
pub fn apply(dp: &mut dyn Dataplane, changes: &[Change]) -> Report {
    let mut report = Report::default();
    let mut broken: BTreeSet<ServiceKey> = BTreeSet::new();
    for c in changes {
        let key = *c.service_key();
        // Destinations of a service that could not be added would only fail again.
        if broken.contains(&key) {
            report.failed.push(Failure {
                change: c.clone(),
                error: DataplaneError::NoSuchService(key),
            });
            continue;
        }
        let r = match c {
            Change::AddService(s) => dp.add_service(s),
            Change::EditService(s) => dp.edit_service(s),
            Change::DeleteService(k) => dp.delete_service(k),
            Change::AddDestination(k, d) => dp.add_destination(k, d),
            Change::EditDestination(k, d) => dp.edit_destination(k, d),
            Change::DeleteDestination(k, d) => dp.delete_destination(k, d),
        };
        match r {
            Ok(()) => report.applied += 1,
            Err(error) => {
                if matches!(c, Change::AddService(_)) {
                    broken.insert(key);
                }
                report.failed.push(Failure {
                    change: c.clone(),
                    error,
                });
            }
        }
    }
    report
}

/// Reads the dataplane, plans against `desired` and applies: one reconcile pass. Returns the
/// plan with its report; `owned` is updated to what flotilla owns afterwards.
pub fn reconcile(
    dp: &mut dyn Dataplane,
    desired: &[ServiceSpec],
    owned: &mut OwnedSet,
) -> Result<(Vec<Change>, Report), DataplaneError> {
    let current = dp.snapshot()?;
    let changes = plan(desired, &current, owned);
    let report = apply(dp, &changes);
    let done: Vec<Change> = changes
        .iter()
        .filter(|c| !report.failed.iter().any(|f| &f.change == *c))
        .cloned()
        .collect();
    *owned = owned.after(desired, &done);
    // A service the kernel refused to add is not there to own: should someone else add that
    // key later, it is theirs.
    for f in &report.failed {
        if let Change::AddService(s) = &f.change {
            owned.keys.remove(&s.key);
        }
    }
    Ok((changes, report))
}

/// Stops managing IPVS: removes every owned service and nothing else.
pub fn release(dp: &mut dyn Dataplane, owned: &mut OwnedSet) -> Result<Report, DataplaneError> {
    reconcile(dp, &[], owned).map(|(_, r)| r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::memory::MemoryDataplane;
    use crate::types::{Family, Forward, Granularity, Persistence, Protocol};

    fn tcp(last: u8, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            port,
        }
    }

    fn spec(key: ServiceKey, sched: &str, dests: &[(u8, u32)]) -> ServiceSpec {
        ServiceSpec {
            service: Service::new(key, sched),
            destinations: dests
                .iter()
                .map(|&(last, w)| {
                    Destination::new(
                        IpAddr::V4(Ipv4Addr::new(10, 1, 0, last)),
                        80,
                        Forward::Route,
                        w,
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn adopts_equal_rules_after_a_restart() {
        let desired = vec![spec(tcp(1, 80), "wrr", &[(1, 2), (2, 1)])];
        let mut dp = MemoryDataplane::with_state(&desired);
        let mut owned = OwnedSet::new();
        let (changes, report) = reconcile(&mut dp, &desired, &mut owned).unwrap();
        assert!(changes.is_empty(), "{changes:?}");
        assert!(report.is_ok());
        assert!(dp.log.is_empty(), "nothing re-added: {:?}", dp.log);
        assert!(owned.contains(&tcp(1, 80)));
    }

    #[test]
    fn edits_in_place_and_leaves_foreign_services() {
        let foreign = spec(tcp(9, 443), "rr", &[(9, 1)]);
        let old = spec(tcp(1, 80), "rr", &[(1, 1), (2, 1), (3, 1)]);
        let gone = spec(tcp(2, 80), "rr", &[(1, 1)]);
        let mut dp = MemoryDataplane::with_state(&[foreign.clone(), old.clone(), gone.clone()]);
        let mut owned = OwnedSet::of(&[old, gone]);
        let desired = vec![spec(tcp(1, 80), "wrr", &[(1, 1), (2, 5), (4, 1)])];
        let (changes, report) = reconcile(&mut dp, &desired, &mut owned).unwrap();
        assert!(report.is_ok(), "{report:?}");
        let text: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            text,
            [
                "delete service TCP 10.0.0.2:80",
                "edit service TCP 10.0.0.1:80 wrr",
                "delete destination 10.1.0.3:80 of TCP 10.0.0.1:80",
                "edit destination 10.1.0.2:80 of TCP 10.0.0.1:80",
                "add destination 10.1.0.4:80 to TCP 10.0.0.1:80",
            ]
        );
        let mut want = desired.clone();
        want.push(foreign.clone());
        want.sort_by_key(|s| s.service.key);
        assert_eq!(dp.state(), want);
        release(&mut dp, &mut owned).unwrap();
        assert_eq!(dp.state(), vec![foreign]);
        assert!(owned.is_empty());
    }

    #[test]
    fn a_refused_service_fails_its_destinations_but_not_the_rest() {
        let desired = vec![
            spec(tcp(1, 80), "nosuch", &[(1, 1)]),
            spec(tcp(2, 80), "rr", &[(1, 1)]),
        ];
        let mut dp = MemoryDataplane::new();
        let mut owned = OwnedSet::new();
        let (_, report) = reconcile(&mut dp, &desired, &mut owned).unwrap();
        assert_eq!(report.applied, 2);
        assert_eq!(report.failed.len(), 2);
        assert!(matches!(
            report.failed[0].error,
            DataplaneError::UnknownScheduler { .. }
        ));
        assert_eq!(dp.state(), vec![desired[1].clone()]);
        assert!(!owned.contains(&tcp(1, 80)) && owned.contains(&tcp(2, 80)));
    }

    fn arb_service(key: ServiceKey) -> impl Strategy<Value = Service> {
        let sched = prop_oneof![Just("rr"), Just("wrr"), Just("sh")];
        (sched, any::<bool>(), proptest::option::of(1u32..1000)).prop_map(move |(s, ops, pers)| {
            let mut svc = Service::new(key, s);
            svc.flags.one_packet = ops;
            svc.persistence = pers.map(|timeout| Persistence {
                timeout,
                granularity: Granularity::host(key.family()),
            });
            svc
        })
    }

    fn arb_key() -> impl Strategy<Value = ServiceKey> {
        prop_oneof![
            (1u8..6, prop_oneof![Just(80u16), Just(443)]).prop_map(|(a, p)| tcp(a, p)),
            (1u32..4).prop_map(|mark| ServiceKey::Fwmark {
                mark,
                family: Family::Inet
            }),
        ]
    }

    fn arb_dest() -> impl Strategy<Value = Destination> {
        (
            1u8..8,
            prop_oneof![Just(Forward::Masq), Just(Forward::Route)],
            0u32..4,
            0u32..3,
        )
            .prop_map(|(last, fwd, w, th)| {
                let mut d = Destination::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, last)), 80, fwd, w);
                d.upper_threshold = th * 10;
                d.lower_threshold = th * 5;
                d
            })
    }

    fn arb_spec() -> impl Strategy<Value = ServiceSpec> {
        arb_key().prop_flat_map(|k| {
            (arb_service(k), proptest::collection::vec(arb_dest(), 0..5)).prop_map(
                |(service, destinations)| {
                    ServiceSpec {
                        service,
                        destinations,
                    }
                    .normalised()
                },
            )
        })
    }

    fn arb_state() -> impl Strategy<Value = Vec<ServiceSpec>> {
        proptest::collection::vec(arb_spec(), 0..6).prop_map(|v| {
            let mut m = BTreeMap::new();
            for s in v {
                m.entry(s.service.key).or_insert(s);
            }
            m.into_values().collect()
        })
    }

    proptest! {
        /// After applying the plan, owned and desired services are exactly as desired and
        /// every foreign service is untouched.
        #[test]
        fn apply_plan_reaches_desired(
            desired in arb_state(),
            current in arb_state(),
            owned_bits in proptest::collection::vec(any::<bool>(), 6),
        ) {
            let owned = OwnedSet {
                keys: current
                    .iter()
                    .zip(owned_bits.iter().cycle())
                    .filter(|(_, o)| **o)
                    .map(|(s, _)| s.service.key)
                    .collect(),
            };
            let mut dp = MemoryDataplane::with_state(&current);
            let changes = plan(&desired, &current, &owned);
            let report = apply(&mut dp, &changes);
            prop_assert!(report.is_ok(), "{:?}", report);
            let after = dp.state();
            let desired_keys: BTreeSet<_> = desired.iter().map(|s| s.service.key).collect();
            let mut expect: Vec<ServiceSpec> = desired.clone();
            for c in &current {
                let k = c.service.key;
                if !desired_keys.contains(&k) && !owned.contains(&k) {
                    expect.push(c.clone());
                }
            }
            expect.sort_by_key(|s| s.service.key);
            prop_assert_eq!(after, expect);
            // A second pass has nothing left to do.
            let again = plan(&desired, &dp.state(), &owned.after(&desired, &changes));
            prop_assert!(again.is_empty(), "{:?}", again);
        }

        #[test]
        fn plan_of_equal_states_is_empty(state in arb_state(), all in any::<bool>()) {
            let owned = if all { OwnedSet::of(&state) } else { OwnedSet::new() };
            prop_assert!(plan(&state, &state, &owned).is_empty());
        }

        /// No change touches a destination that is the same in both states, and no service
        /// equal in both is edited.
        #[test]
        fn plan_is_minimal(desired in arb_state(), current in arb_state()) {
            let changes = plan(&desired, &current, &OwnedSet::of(&current));
            let cur = index(&current);
            let want = index(&desired);
            for c in &changes {
                match c {
                    Change::EditService(s) => {
                        prop_assert!(cur.get(&s.key).map(|(c, _)| *c) != Some(s));
                    }
                    Change::AddDestination(k, d) | Change::EditDestination(k, d) => {
                        let same = cur.get(k).and_then(|(_, ds)| ds.get(&d.key())) == Some(&d);
                        prop_assert!(!same, "unchanged {} re-sent", d.key());
                    }
                    Change::DeleteDestination(k, dk) => {
                        prop_assert!(want.get(k).is_some_and(|(_, ds)| !ds.contains_key(dk)));
                    }
                    Change::AddService(s) => prop_assert!(!cur.contains_key(&s.key)),
                    Change::DeleteService(k) => prop_assert!(!want.contains_key(k)),
                }
            }
        }
    }
}
