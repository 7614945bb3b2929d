//! [`KernelDataplane`]: the [`Dataplane`] over the kernel's "IPVS" generic-netlink family.
//!
//! neli carries the messages (socket, sequence numbers, acks, multi-part dumps, error
//! packets); the generic-netlink header and the attributes are built and read by
//! [`crate::attr`], so every byte the kernel sends goes through the one checked, fuzzed
//! decoder.

use std::io;

use neli::consts::nl::NlmF;
use neli::consts::socket::NlFamily;
use neli::err::RouterError;
use neli::nl::NlPayload;
use neli::router::synchronous::NlRouter;
use neli::types::Buffer;
use neli::utils::Groups;

use crate::attr::{self, cmd, cmd_attr};
use crate::dataplane::{
    Dataplane, DataplaneError, validate_daemon, validate_destination, validate_service,
};
use crate::types::{
    DaemonRole, DestKey, Destination, DestinationEntry, IpvsInfo, Service, ServiceEntry,
    ServiceKey, SyncDaemon,
};

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EEXIST: i32 = 17;

/// The kernel's IPVS table of the network namespace the process runs in.
pub struct KernelDataplane {
    router: NlRouter,
    family: u16,
}

impl std::fmt::Debug for KernelDataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelDataplane")
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// What a request was about, to turn an errno into the error that names it.
#[derive(Clone, Copy)]
enum Subject<'a> {
    None,
    Service(&'a Service),
    Key(&'a ServiceKey),
    Dest(&'a ServiceKey, DestKey),
    Daemon(DaemonRole),
}

impl KernelDataplane {
    /// Opens a generic-netlink socket and resolves the IPVS family.
    /// [`DataplaneError::Unavailable`] when the kernel has none.
    pub fn connect() -> Result<Self, DataplaneError> {
        let (router, _multicast) = NlRouter::connect(NlFamily::Generic, None, Groups::empty())
            .map_err(|e| DataplaneError::Netlink(format!("cannot open a netlink socket: {e}")))?;
        let family = match router.resolve_genl_family(attr::GENL_NAME) {
            Ok(id) => id,
            // ENOENT from the controller, or no family id in its answer: no IPVS here.
            Err(RouterError::Nlmsgerr(e)) if -*e.error() == ENOENT => {
                return Err(DataplaneError::Unavailable);
            }
            Err(RouterError::Msg(_)) => return Err(DataplaneError::Unavailable),
            Err(e) => {
                return Err(DataplaneError::Netlink(format!(
                    "cannot resolve generic netlink family IPVS: {e}"
                )));
            }
        };
        Ok(KernelDataplane { router, family })
    }

    /// Sends one command; returns the attribute bytes of every reply message (none for a
    /// plain acknowledged change).
    fn request(
        &self,
        op: &'static str,
        command: u8,
        dump: bool,
        body: Vec<u8>,
        subject: Subject<'_>,
    ) -> Result<Vec<Vec<u8>>, DataplaneError> {
        let mut msg = vec![command, attr::GENL_VERSION, 0, 0];
        msg.extend_from_slice(&body);
        let flags = if dump { NlmF::DUMP } else { NlmF::ACK };
        let recv = self
            .router
            .send::<u16, Buffer, u16, Buffer>(
                self.family,
                flags,
                NlPayload::Payload(Buffer::from(msg)),
            )
            .map_err(|e| DataplaneError::Netlink(format!("{op}: send: {e}")))?;
        let mut replies = Vec::new();
        for m in recv {
            match m {
                Ok(m) => {
                    if *m.nl_type() != self.family {
                        continue;
                    }
                    if let NlPayload::Payload(p) = m.nl_payload() {
                        // Skip the 4-byte generic-netlink header (cmd, version, reserved).
                        let bytes: &[u8] = p.as_ref();
                        replies.push(bytes.get(4..).unwrap_or_default().to_vec());
                    }
                }
                Err(RouterError::Nlmsgerr(e)) => {
                    return Err(errno_error(op, -*e.error(), subject));
                }
                Err(e) => return Err(DataplaneError::Netlink(format!("{op}: {e}"))),
            }
        }
        Ok(replies)
    }

    fn service_body(s: &Service, full: bool) -> Vec<u8> {
        let mut w = attr::Writer::new();
        w.nested(cmd_attr::SERVICE, attr::encode_service(s, full));
        w.finish()
    }

    fn key_body(key: &ServiceKey) -> Vec<u8> {
        let mut w = attr::Writer::new();
        w.nested(cmd_attr::SERVICE, attr::encode_key_only(key));
        w.finish()
    }

    fn dest_body(key: &ServiceKey, d: &Destination, full: bool) -> Vec<u8> {
        let mut w = attr::Writer::new();
        w.nested(cmd_attr::SERVICE, attr::encode_key_only(key))
            .nested(
                cmd_attr::DEST,
                attr::encode_destination(d, key.family(), full),
            );
        w.finish()
    }
}

/// The kernel's errno for a command, in the words of what the command was about
/// (`ip_vs_genl_set_cmd`: EEXIST for an existing service or destination, ESRCH for a
/// missing service, ENOENT for a missing destination or an unknown scheduler).
fn errno_error(op: &str, errno: i32, subject: Subject<'_>) -> DataplaneError {
    match (errno, subject) {
        (EEXIST, Subject::Service(s)) => DataplaneError::ServiceExists(s.key),
        (ENOENT, Subject::Service(s)) => DataplaneError::UnknownScheduler {
            service: s.key,
            scheduler: s.scheduler.clone(),
        },
        (ESRCH, Subject::Service(s)) => DataplaneError::NoSuchService(s.key),
        (ESRCH, Subject::Key(k)) | (ESRCH, Subject::Dest(k, _)) => {
            DataplaneError::NoSuchService(*k)
        }
        (EEXIST, Subject::Dest(k, d)) => DataplaneError::DestinationExists {
            service: *k,
            dest: d,
        },
        (ENOENT, Subject::Dest(k, d)) => DataplaneError::NoSuchDestination {
            service: *k,
            dest: d,
        },
        (EEXIST, Subject::Daemon(role)) => DataplaneError::Daemon {
            role,
            why: "already running".into(),
        },
        (ESRCH, Subject::Daemon(role)) => DataplaneError::Daemon {
            role,
            why: "not running".into(),
        },
        _ => DataplaneError::Kernel {
            op: op.to_owned(),
            errno,
            reason: io::Error::from_raw_os_error(errno).to_string(),
        },
    }
}

fn decode_err(op: &'static str) -> impl Fn(attr::AttrError) -> DataplaneError {
    move |source| DataplaneError::Decode { op, source }
}

impl Dataplane for KernelDataplane {
    fn services(&mut self) -> Result<Vec<ServiceEntry>, DataplaneError> {
        let op = "list services";
        let replies = self.request(op, cmd::GET_SERVICE, true, Vec::new(), Subject::None)?;
        replies
            .iter()
            .map(|r| {
                attr::find(r, cmd_attr::SERVICE)
                    .and_then(attr::decode_service)
                    .map_err(decode_err(op))
            })
            .collect()
    }

    fn service(&mut self, key: &ServiceKey) -> Result<Option<ServiceEntry>, DataplaneError> {
        let op = "get service";
        // Not a dump: the kernel looks the key up and answers ESRCH when it has no such service.
        let replies = match self.request(
            op,
            cmd::GET_SERVICE,
            false,
            Self::key_body(key),
            Subject::Key(key),
        ) {
            Ok(r) => r,
            Err(DataplaneError::NoSuchService(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        match replies.first() {
            None => Ok(None),
            Some(r) => attr::find(r, cmd_attr::SERVICE)
                .and_then(attr::decode_service)
                .map(Some)
                .map_err(decode_err(op)),
        }
    }

    fn destinations(&mut self, key: &ServiceKey) -> Result<Vec<DestinationEntry>, DataplaneError> {
        let op = "list destinations";
        let replies = self.request(
            op,
            cmd::GET_DEST,
            true,
            Self::key_body(key),
            Subject::Key(key),
        )?;
        replies
            .iter()
            .map(|r| {
                attr::find(r, cmd_attr::DEST)
                    .and_then(|d| attr::decode_destination(d, key.family()))
                    .map_err(decode_err(op))
            })
            .collect()
    }

    fn add_service(&mut self, service: &Service) -> Result<(), DataplaneError> {
        validate_service(service)?;
        let body = Self::service_body(service, true);
        self.request(
            "add service",
            cmd::NEW_SERVICE,
            false,
            body,
            Subject::Service(service),
        )
        .map(drop)
    }

    fn edit_service(&mut self, service: &Service) -> Result<(), DataplaneError> {
        validate_service(service)?;
        let body = Self::service_body(service, true);
        self.request(
            "edit service",
            cmd::SET_SERVICE,
            false,
            body,
            Subject::Service(service),
        )
        .map(drop)
    }

    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), DataplaneError> {
        self.request(
            "delete service",
            cmd::DEL_SERVICE,
            false,
            Self::key_body(key),
            Subject::Key(key),
        )
        .map(drop)
    }

    fn add_destination(
        &mut self,
        key: &ServiceKey,
        dest: &Destination,
    ) -> Result<(), DataplaneError> {
        validate_destination(key.family(), dest)?;
        self.request(
            "add destination",
            cmd::NEW_DEST,
            false,
            Self::dest_body(key, dest, true),
            Subject::Dest(key, dest.key()),
        )
        .map(drop)
    }

    fn edit_destination(
        &mut self,
        key: &ServiceKey,
        dest: &Destination,
    ) -> Result<(), DataplaneError> {
        validate_destination(key.family(), dest)?;
        self.request(
            "edit destination",
            cmd::SET_DEST,
            false,
            Self::dest_body(key, dest, true),
            Subject::Dest(key, dest.key()),
        )
        .map(drop)
    }

    fn delete_destination(
        &mut self,
        key: &ServiceKey,
        dest: &DestKey,
    ) -> Result<(), DataplaneError> {
        // Only the address and port identify it; the rest is not sent.
        let d = Destination::new(dest.addr, dest.port, Default::default(), 0);
        self.request(
            "delete destination",
            cmd::DEL_DEST,
            false,
            Self::dest_body(key, &d, false),
            Subject::Dest(key, *dest),
        )
        .map(drop)
    }

    fn flush(&mut self) -> Result<(), DataplaneError> {
        self.request("flush", cmd::FLUSH, false, Vec::new(), Subject::None)
            .map(drop)
    }

    fn info(&mut self) -> Result<IpvsInfo, DataplaneError> {
        let op = "read IPVS info";
        let replies = self.request(op, cmd::GET_INFO, false, Vec::new(), Subject::None)?;
        let first = replies.first().ok_or(DataplaneError::Decode {
            op,
            source: attr::AttrError::Missing("info reply"),
        })?;
        attr::decode_info(first).map_err(decode_err(op))
    }

    fn start_daemon(&mut self, daemon: &SyncDaemon) -> Result<(), DataplaneError> {
        validate_daemon(daemon)?;
        let mut w = attr::Writer::new();
        w.nested(cmd_attr::DAEMON, attr::encode_daemon(daemon));
        self.request(
            "start sync daemon",
            cmd::NEW_DAEMON,
            false,
            w.finish(),
            Subject::Daemon(daemon.role),
        )
        .map(drop)
    }

    fn stop_daemon(&mut self, role: DaemonRole) -> Result<(), DataplaneError> {
        let mut inner = attr::Writer::new();
        inner.u32(attr::daemon_attr::STATE, role.state());
        let mut w = attr::Writer::new();
        w.nested(cmd_attr::DAEMON, inner.finish());
        self.request(
            "stop sync daemon",
            cmd::DEL_DAEMON,
            false,
            w.finish(),
            Subject::Daemon(role),
        )
        .map(drop)
    }

    fn daemons(&mut self) -> Result<Vec<SyncDaemon>, DataplaneError> {
        let op = "list sync daemons";
        let replies = self.request(op, cmd::GET_DAEMON, true, Vec::new(), Subject::None)?;
        replies
            .iter()
            .map(|r| {
                attr::find(r, cmd_attr::DAEMON)
                    .and_then(attr::decode_daemon)
                    .map_err(decode_err(op))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An actor owns its dataplane and may be moved between threads.
    #[test]
    fn kernel_dataplane_is_send() {
        fn send<T: Send>() {}
        send::<KernelDataplane>();
    }

    /// The host kernel of the development machines has no IPVS: connecting must say so in
    /// words, not fail with a bare errno. Where IPVS exists (the UML lab), it connects.
    #[test]
    fn connect_reports_missing_ipvs_clearly() {
        match KernelDataplane::connect() {
            Ok(_) => {}
            Err(e @ DataplaneError::Unavailable) => {
                assert!(e.to_string().contains("IPVS not available in this kernel"));
            }
            Err(DataplaneError::Netlink(m)) => eprintln!("skipping: no netlink here: {m}"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}
