//! [`MemoryDataplane`]: IPVS in memory with the kernel's answers (exists, no such service,
//! unknown scheduler, one master and one backup daemon), so the reconciler and the agent
//! are tested without a kernel. Counters stay zero.

use std::collections::BTreeMap;

use crate::dataplane::{
    Dataplane, DataplaneError, validate_daemon, validate_destination, validate_service,
};
use crate::types::{
    DaemonRole, DestKey, Destination, DestinationEntry, IpvsInfo, Service, ServiceEntry,
    ServiceKey, ServiceSpec, Stats, SyncDaemon,
};

/// The schedulers a stock kernel ships as modules.
pub const KERNEL_SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    service: Service,
    dests: BTreeMap<DestKey, Destination>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryDataplane {
    services: BTreeMap<ServiceKey, Entry>,
    daemons: BTreeMap<u32, SyncDaemon>,
    schedulers: Vec<String>,
    /// Every mutating call, in order (`"add_service TCP 10.0.0.1:80"`), for tests that check
    /// what was done and not only the end state.
    pub log: Vec<String>,
}

impl Default for MemoryDataplane {
    fn default() -> Self {
        MemoryDataplane::new()
    }
}

impl MemoryDataplane {
    /// Empty, with the stock schedulers available.
    pub fn new() -> Self {
        MemoryDataplane {
            services: BTreeMap::new(),
            daemons: BTreeMap::new(),
            schedulers: KERNEL_SCHEDULERS.iter().map(|s| (*s).to_owned()).collect(),
            log: Vec::new(),
        }
    }

    /// Only these schedulers load (a kernel with some modules missing).
    pub fn with_schedulers(mut self, names: &[&str]) -> Self {
        self.schedulers = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Holding exactly `specs` (later duplicates of a key ignored), as if added one by one.
    pub fn with_state(specs: &[ServiceSpec]) -> Self {
        let mut m = MemoryDataplane::new();
        for s in specs {
            m.services.entry(s.service.key).or_insert_with(|| Entry {
                service: s.service.clone(),
                dests: s.destinations.iter().rev().map(|d| (d.key(), *d)).collect(),
            });
        }
        m
    }

    /// The current rules, sorted (no counters): compare with a desired state.
    pub fn state(&self) -> Vec<ServiceSpec> {
        self.services
            .values()
            .map(|e| ServiceSpec {
                service: e.service.clone(),
                destinations: e.dests.values().copied().collect(),
            })
            .collect()
    }

    fn entry(&mut self, key: &ServiceKey) -> Result<&mut Entry, DataplaneError> {
        self.services
            .get_mut(key)
            .ok_or(DataplaneError::NoSuchService(*key))
    }

    fn check_scheduler(&self, s: &Service) -> Result<(), DataplaneError> {
        if self.schedulers.contains(&s.scheduler) {
            Ok(())
        } else {
            Err(DataplaneError::UnknownScheduler {
                service: s.key,
                scheduler: s.scheduler.clone(),
            })
        }
    }
}

impl Dataplane for MemoryDataplane {
    fn services(&mut self) -> Result<Vec<ServiceEntry>, DataplaneError> {
        Ok(self
            .services
            .values()
            .map(|e| ServiceEntry {
                service: e.service.clone(),
                stats: Stats::default(),
            })
            .collect())
    }

    fn destinations(&mut self, key: &ServiceKey) -> Result<Vec<DestinationEntry>, DataplaneError> {
        Ok(self
            .entry(key)?
            .dests
            .values()
            .map(|d| DestinationEntry::idle(*d))
            .collect())
    }

    fn add_service(&mut self, service: &Service) -> Result<(), DataplaneError> {
        validate_service(service)?;
        if self.services.contains_key(&service.key) {
            return Err(DataplaneError::ServiceExists(service.key));
        }
        self.check_scheduler(service)?;
        self.log.push(format!("add_service {}", service.key));
        self.services.insert(
            service.key,
            Entry {
                service: service.clone(),
                dests: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn edit_service(&mut self, service: &Service) -> Result<(), DataplaneError> {
        validate_service(service)?;
        self.entry(&service.key)?;
        self.check_scheduler(service)?;
        self.log.push(format!("edit_service {}", service.key));
        self.entry(&service.key)?.service = service.clone();
        Ok(())
    }

    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), DataplaneError> {
        self.services
            .remove(key)
            .ok_or(DataplaneError::NoSuchService(*key))?;
        self.log.push(format!("delete_service {key}"));
        Ok(())
    }

    fn add_destination(
        &mut self,
        key: &ServiceKey,
        dest: &Destination,
    ) -> Result<(), DataplaneError> {
        validate_destination(key.family(), dest)?;
        let e = self.entry(key)?;
        if e.dests.contains_key(&dest.key()) {
            return Err(DataplaneError::DestinationExists {
                service: *key,
                dest: dest.key(),
            });
        }
        e.dests.insert(dest.key(), *dest);
        self.log
            .push(format!("add_destination {key} {}", dest.key()));
        Ok(())
    }

    fn edit_destination(
        &mut self,
        key: &ServiceKey,
        dest: &Destination,
    ) -> Result<(), DataplaneError> {
        validate_destination(key.family(), dest)?;
        let e = self.entry(key)?;
        let d = e
            .dests
            .get_mut(&dest.key())
            .ok_or(DataplaneError::NoSuchDestination {
                service: *key,
                dest: dest.key(),
            })?;
        *d = *dest;
        self.log
            .push(format!("edit_destination {key} {}", dest.key()));
        Ok(())
    }

    fn delete_destination(
        &mut self,
        key: &ServiceKey,
        dest: &DestKey,
    ) -> Result<(), DataplaneError> {
        self.entry(key)?
            .dests
            .remove(dest)
            .ok_or(DataplaneError::NoSuchDestination {
                service: *key,
                dest: *dest,
            })?;
        self.log.push(format!("delete_destination {key} {dest}"));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DataplaneError> {
        self.services.clear();
        self.log.push("flush".into());
        Ok(())
    }

    fn info(&mut self) -> Result<IpvsInfo, DataplaneError> {
        Ok(IpvsInfo {
            version: 0x010201,
            conn_tab_size: 4096,
        })
    }

    fn start_daemon(&mut self, daemon: &SyncDaemon) -> Result<(), DataplaneError> {
        validate_daemon(daemon)?;
        let state = daemon.role.state();
        if self.daemons.contains_key(&state) {
            return Err(DataplaneError::Daemon {
                role: daemon.role,
                why: "already running".into(),
            });
        }
        self.daemons.insert(state, daemon.clone());
        self.log.push(format!("start_daemon {:?}", daemon.role));
        Ok(())
    }

    fn stop_daemon(&mut self, role: DaemonRole) -> Result<(), DataplaneError> {
        self.daemons
            .remove(&role.state())
            .ok_or(DataplaneError::Daemon {
                role,
                why: "not running".into(),
            })?;
        self.log.push(format!("stop_daemon {role:?}"));
        Ok(())
    }

    fn daemons(&mut self) -> Result<Vec<SyncDaemon>, DataplaneError> {
        Ok(self.daemons.values().cloned().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::{Forward, Protocol};

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        }
    }

    #[test]
    fn looks_one_service_up() {
        let mut m = MemoryDataplane::new();
        assert_eq!(m.service(&key()), Ok(None));
        let s = Service::new(key(), "rr");
        m.add_service(&s).unwrap();
        assert_eq!(m.service(&key()).unwrap().map(|e| e.service), Some(s));
    }

    #[test]
    fn follows_the_kernel() {
        let mut m = MemoryDataplane::new();
        let s = Service::new(key(), "rr");
        m.add_service(&s).unwrap();
        assert_eq!(m.add_service(&s), Err(DataplaneError::ServiceExists(key())));
        let d = Destination::new("10.0.1.1".parse().unwrap(), 80, Forward::Route, 1);
        m.add_destination(&key(), &d).unwrap();
        assert!(matches!(
            m.add_destination(&key(), &d),
            Err(DataplaneError::DestinationExists { .. })
        ));
        m.delete_service(&key()).unwrap();
        assert_eq!(
            m.delete_service(&key()),
            Err(DataplaneError::NoSuchService(key()))
        );
        assert!(matches!(
            m.add_destination(&key(), &d),
            Err(DataplaneError::NoSuchService(_))
        ));
        let err = m.add_service(&Service::new(key(), "nosuch")).unwrap_err();
        assert!(err.to_string().contains("\"nosuch\""), "{err}");
    }

    #[test]
    fn one_daemon_per_role() {
        let mut m = MemoryDataplane::new();
        let d = SyncDaemon {
            role: DaemonRole::Master,
            interface: "eth0".into(),
            sync_id: 1,
            max_len: None,
            group: None,
            port: None,
            ttl: None,
        };
        m.start_daemon(&d).unwrap();
        assert!(m.start_daemon(&d).is_err());
        assert_eq!(m.daemons().unwrap(), vec![d]);
        m.stop_daemon(DaemonRole::Master).unwrap();
        assert!(m.stop_daemon(DaemonRole::Master).is_err());
    }
}
