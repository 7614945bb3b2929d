//! The [`Dataplane`] trait: what flotilla asks of IPVS, with the kernel's answers as typed
//! errors. Two implementations: [`crate::kernel::KernelDataplane`] (generic netlink) and
//! [`crate::memory::MemoryDataplane`] (the kernel's semantics in memory, for tests).
//!
//! Synchronous on purpose: every call is one netlink round trip that the kernel answers
//! without waiting on the network (microseconds, or a few milliseconds for a dump of
//! thousands of destinations), so an actor calls it inline, or from `spawn_blocking` for a
//! large reconcile, and a `&mut self` receiver keeps the in-memory twin free of locks.

use std::net::IpAddr;

use thiserror::Error;

use crate::attr::{AttrError, IFNAME_MAX, SCHED_NAME_MAX};
use crate::types::{
    DaemonRole, DestKey, Destination, DestinationEntry, Family, Forward, Granularity, IpvsInfo,
    Service, ServiceEntry, ServiceKey, ServiceSpec, ServiceStatus, SyncDaemon,
};

/// What went wrong with an IPVS operation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DataplaneError {
    /// The kernel has no IPVS generic-netlink family (no `ip_vs` module, or the host kernel
    /// is built without it).
    #[error("IPVS not available in this kernel (generic netlink family \"IPVS\" not found)")]
    Unavailable,
    #[error("service {0} already exists")]
    ServiceExists(ServiceKey),
    #[error("no service {0}")]
    NoSuchService(ServiceKey),
    #[error("destination {dest} of service {service} already exists")]
    DestinationExists { service: ServiceKey, dest: DestKey },
    #[error("no destination {dest} in service {service}")]
    NoSuchDestination { service: ServiceKey, dest: DestKey },
    /// The kernel returns ENOENT for a scheduler whose `ip_vs_<name>` module is absent.
    #[error(
        "scheduler \"{scheduler}\" of service {service} is not available in this kernel (module ip_vs_{scheduler} missing?)"
    )]
    UnknownScheduler {
        service: ServiceKey,
        scheduler: String,
    },
    /// A request the kernel would refuse, caught before sending it.
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: String },
    /// `IP_VS_STATE_*` daemon already running or not running.
    #[error("sync daemon ({role:?}): {why}")]
    Daemon { role: DaemonRole, why: String },
    /// Any other refusal, with the operation and the kernel's errno.
    #[error("{op}: {reason} (errno {errno})")]
    Kernel {
        op: String,
        errno: i32,
        reason: String,
    },
    /// The netlink socket failed (not the kernel refusing a request).
    #[error("netlink: {0}")]
    Netlink(String),
    /// The kernel's reply did not decode.
    #[error("bad reply to {op}: {source}")]
    Decode {
        op: &'static str,
        #[source]
        source: AttrError,
    },
}

/// IPVS as flotilla uses it. Errors follow the kernel: adding what exists and changing or
/// deleting what does not are errors, never silent.
pub trait Dataplane {
    /// All services with their counters.
    fn services(&mut self) -> Result<Vec<ServiceEntry>, DataplaneError>;
    /// One service with its counters, `None` if the kernel has no such service. The default
    /// filters [`Dataplane::services`]; the kernel asks for the one service, so an update of
    /// one virtual server costs the same with 2 or 2,000 services in the table.
    fn service(&mut self, key: &ServiceKey) -> Result<Option<ServiceEntry>, DataplaneError> {
        Ok(self.services()?.into_iter().find(|s| s.service.key == *key))
    }
    /// The destinations of one service, with their counters.
    fn destinations(&mut self, key: &ServiceKey) -> Result<Vec<DestinationEntry>, DataplaneError>;
    fn add_service(&mut self, service: &Service) -> Result<(), DataplaneError>;
    /// Changes scheduler, flags or persistence of an existing service.
    fn edit_service(&mut self, service: &Service) -> Result<(), DataplaneError>;
    /// Deletes a service and its destinations.
    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), DataplaneError>;
    fn add_destination(
        &mut self,
        key: &ServiceKey,
        dest: &Destination,
    ) -> Result<(), DataplaneError>;
    fn edit_destination(
        &mut self,
        key: &ServiceKey,
        dest: &Destination,
    ) -> Result<(), DataplaneError>;
    fn delete_destination(
        &mut self,
        key: &ServiceKey,
        dest: &DestKey,
    ) -> Result<(), DataplaneError>;
    /// Deletes every service, flotilla's or not: for `lvs_flush` only.
    fn flush(&mut self) -> Result<(), DataplaneError>;
    fn info(&mut self) -> Result<IpvsInfo, DataplaneError>;
    fn start_daemon(&mut self, daemon: &SyncDaemon) -> Result<(), DataplaneError>;
    fn stop_daemon(&mut self, role: DaemonRole) -> Result<(), DataplaneError>;
    fn daemons(&mut self) -> Result<Vec<SyncDaemon>, DataplaneError>;

    /// Every service with its destinations, sorted: the current state for `plan`.
    fn snapshot(&mut self) -> Result<Vec<ServiceSpec>, DataplaneError> {
        Ok(self
            .status()?
            .into_iter()
            .map(|s| {
                ServiceSpec {
                    service: s.service,
                    destinations: s.destinations.into_iter().map(|d| d.destination).collect(),
                }
                .normalised()
            })
            .collect())
    }

    /// Every service with its destinations and all counters, sorted as ipvsadm sorts them.
    fn status(&mut self) -> Result<Vec<ServiceStatus>, DataplaneError> {
        let mut services = self.services()?;
        services.sort_by_key(|s| s.service.key);
        let mut out = Vec::with_capacity(services.len());
        for s in services {
            let mut destinations = self.destinations(&s.service.key)?;
            destinations.sort_by_key(|d| d.destination.key());
            out.push(ServiceStatus {
                service: s.service,
                stats: s.stats,
                destinations,
            });
        }
        Ok(out)
    }
}

fn invalid(what: impl Into<String>, why: impl Into<String>) -> DataplaneError {
    DataplaneError::Invalid {
        what: what.into(),
        why: why.into(),
    }
}

/// What the kernel would refuse in a service (checked before a request is sent, so the
/// error names the field rather than an errno).
pub fn validate_service(s: &Service) -> Result<(), DataplaneError> {
    let what = || format!("service {}", s.key);
    if s.scheduler.is_empty() || s.scheduler.len() >= SCHED_NAME_MAX || s.scheduler.contains('\0') {
        return Err(invalid(
            what(),
            format!(
                "scheduler name {:?} must be 1-{} bytes without NUL",
                s.scheduler,
                SCHED_NAME_MAX - 1
            ),
        ));
    }
    if let ServiceKey::Fwmark { mark: 0, .. } = s.key {
        return Err(invalid(what(), "fwmark 0 marks no traffic"));
    }
    if let Some(p) = s.persistence {
        match (s.key.family(), p.granularity) {
            (Family::Inet, Granularity::Netmask(_)) => {}
            (Family::Inet6, Granularity::Prefix(1..=128)) => {}
            (f, g) => {
                return Err(invalid(
                    what(),
                    format!("persistence granularity {g:?} does not fit family {f:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// What the kernel would refuse in a destination of a service of `family`.
pub fn validate_destination(family: Family, d: &Destination) -> Result<(), DataplaneError> {
    let what = || format!("destination {}", d.key());
    if d.weight > i32::MAX as u32 {
        return Err(invalid(
            what(),
            format!("weight {} above {}", d.weight, i32::MAX),
        ));
    }
    // The kernel answers ERANGE to a lower threshold above the upper one, even when the
    // upper one is 0 (none).
    if d.lower_threshold > d.upper_threshold {
        return Err(invalid(
            what(),
            format!(
                "lower threshold {} above upper threshold {}",
                d.lower_threshold, d.upper_threshold
            ),
        ));
    }
    if Family::of(&d.addr) != family && !matches!(d.forward, Forward::Tunnel(_)) {
        return Err(invalid(
            what(),
            "only a tunnelled destination may be of another family than its service",
        ));
    }
    if d.forward == Forward::Local {
        return Err(invalid(
            what(),
            "Local forwarding is the kernel's to choose",
        ));
    }
    Ok(())
}

/// What the kernel would refuse in a sync daemon.
pub fn validate_daemon(d: &SyncDaemon) -> Result<(), DataplaneError> {
    if d.interface.is_empty() || d.interface.len() >= IFNAME_MAX || d.interface.contains('\0') {
        return Err(DataplaneError::Daemon {
            role: d.role,
            why: format!(
                "interface name {:?} must be 1-{} bytes",
                d.interface,
                IFNAME_MAX - 1
            ),
        });
    }
    if let Some(IpAddr::V4(g)) = d.group
        && !g.is_multicast()
    {
        return Err(DataplaneError::Daemon {
            role: d.role,
            why: format!("group {g} is not multicast"),
        });
    }
    Ok(())
}
