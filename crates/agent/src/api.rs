//! The control API: a Unix socket (mode 0600, so root-only by default) speaking one JSON
//! request per line and one JSON answer per line. `flotilla status` is its first client.
//!
//! Request: `{"command":"status"}`. Answer: `{"ok":true,"status":{…}}` or
//! `{"ok":false,"error":"…"}`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ractor::ActorRef;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::instance::{InstanceMsg, InstanceStatus};

/// Default path of the control socket.
pub const DEFAULT_SOCKET: &str = "/run/flotilla/flotilla.sock";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// Fleet mode: move every unit off `director` and keep it empty.
    Drain {
        director: String,
    },
    Undrain {
        director: String,
    },
    /// Pin `unit` to director `to`.
    Move {
        unit: String,
        to: String,
    },
    Unpin {
        unit: String,
    },
    /// Commit a configuration (the resolved model as JSON) for the whole fleet.
    ConfigApply {
        json: String,
    },
    /// The moves placement would make now, or with `drain` drained; nothing is committed.
    Plan {
        drain: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Answer {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DirectorStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Answer {
    pub fn error(e: impl Into<String>) -> Answer {
        Answer {
            ok: false,
            status: None,
            message: None,
            error: Some(e.into()),
        }
    }

    pub fn message(m: impl Into<String>) -> Answer {
        Answer {
            ok: true,
            status: None,
            message: Some(m.into()),
            error: None,
        }
    }
}

/// What a director reports about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DirectorStatus {
    pub mode: String,
    pub instances: Vec<InstanceReport>,
    /// Adverts for virtual routers not configured here, by interface and VRID.
    #[serde(default)]
    pub unknown_vrids: Vec<crate::strays::StrayReport>,
    /// LVS: each virtual server with its real servers' health.
    #[serde(default)]
    pub virtual_servers: Vec<crate::virtual_server::VsReport>,
    /// Fleet mode: members, leader, epoch and where every unit is placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::fleet::FleetReport>,
}

/// What the control socket and the HTTP listener read from: the running actors.
#[derive(Clone, Default)]
pub struct Handles {
    pub units: crate::director::Running,
    pub strays: crate::strays::Strays,
    pub virtual_servers:
        crate::supervisor::Children<crate::virtual_server::VsSpec, crate::virtual_server::VsMsg>,
    /// Fleet mode's runtime (control requests, the fleet report).
    pub fleet: Option<crate::fleet::FleetHandle>,
    /// Probe durations, takeovers, failover durations (for `/metrics`).
    pub metrics: crate::metrics::Metrics,
    /// Where `/metrics` reads the IPVS counters from.
    pub ipvs: crate::metrics::IpvsSlot,
}

/// One instance, as `flotilla status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstanceReport {
    pub name: String,
    /// The sync group it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub interface: String,
    pub vrid: u8,
    pub state: String,
    pub priority: u8,
    pub effective_priority: u8,
    pub master: Option<String>,
    /// The virtual addresses this director holds now (empty unless master).
    pub vips_held: Vec<String>,
    /// Every address the instance is configured with.
    #[serde(default)]
    pub vips: Vec<String>,
    pub since_seconds: f64,
    pub last_reason: Option<String>,
    /// The tracker holding it in FAULT (`script chk_haproxy`, `interface eth1` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_by: Option<String>,
    /// Adverts whose address list differs from ours (accepted, counted).
    #[serde(default)]
    pub address_list_errors: u64,
    /// State changes since the agent started this unit.
    #[serde(default)]
    pub transitions: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub dropped: std::collections::BTreeMap<String, u64>,
}

impl InstanceReport {
    fn from(s: InstanceStatus, now: Instant) -> Self {
        let master = s.state == flotilla_vrrp::machine::State::Master;
        InstanceReport {
            vips_held: if master {
                s.vips.iter().map(|v| v.to_string()).collect()
            } else {
                Vec::new()
            },
            vips: s.vips.iter().map(|v| v.to_string()).collect(),
            name: s.name,
            group: s.group,
            interface: s.interface,
            vrid: s.vrid,
            state: format!("{:?}", s.state).to_uppercase(),
            priority: s.priority,
            effective_priority: s.effective_priority,
            master: s.master.map(|m| m.to_string()),
            since_seconds: now.saturating_duration_since(s.since).as_secs_f64(),
            last_reason: s.reason.map(|r| format!("{r:?}")),
            fault_by: s.fault_by,
            address_list_errors: s.address_list_errors,
            transitions: s.transitions,
            adverts_sent: s.adverts_sent,
            adverts_received: s.adverts_received,
            dropped: s
                .dropped
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("control socket {path}: {source}")]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Listens on `path` (replacing a stale socket) and answers until the task is aborted.
pub fn serve(path: &Path, handles: Handles) -> Result<JoinHandle<()>, ApiError> {
    let err = |source| ApiError::Socket {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let handles = handles.clone();
                    tokio::spawn(async move { answer(stream, &handles).await });
                }
                Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
            }
        }
    }))
}

async fn answer(stream: UnixStream, handles: &Handles) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Status) => Answer {
                ok: true,
                status: Some(status(handles).await),
                message: None,
                error: None,
            },
            Ok(other) => match &handles.fleet {
                Some(f) => f.control(other).await,
                None => Answer::error("this director runs standalone (no cluster block)"),
            },
            Err(e) => Answer::error(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_string(&answer).unwrap_or_else(|e| {
            format!("{{\"ok\":false,\"error\":\"cannot encode the answer: {e}\"}}")
        });
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// What the director reports now.
pub async fn status(handles: &Handles) -> DirectorStatus {
    let now = Instant::now();
    let timeout = Some(std::time::Duration::from_secs(2));
    let mut reports = Vec::new();
    for i in crate::director::actors(&handles.units) {
        if let Ok(ractor::rpc::CallResult::Success(list)) =
            i.call(InstanceMsg::Status, timeout).await
        {
            reports.extend(list.into_iter().map(|s| InstanceReport::from(s, now)));
        }
    }
    let vss: Vec<ActorRef<crate::virtual_server::VsMsg>> = handles
        .virtual_servers
        .lock()
        .map(|l| l.iter().map(|c| c.actor.clone()).collect())
        .unwrap_or_default();
    let mut virtual_servers = Vec::new();
    for v in vss {
        if let Ok(ractor::rpc::CallResult::Success(r)) =
            v.call(crate::virtual_server::VsMsg::Status, timeout).await
        {
            virtual_servers.push(r);
        }
    }
    let fleet = handles.fleet.as_ref().map(|f| f.report());
    DirectorStatus {
        mode: if fleet.is_some() {
            "fleet"
        } else {
            "standalone"
        }
        .into(),
        instances: reports,
        unknown_vrids: handles.strays.report(),
        virtual_servers,
        fleet,
    }
}

/// Client side: sends one request and reads one answer.
pub async fn request(path: &Path, req: &Request) -> Result<Answer, std::io::Error> {
    let stream = UnixStream::connect(path).await?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(req).map_err(std::io::Error::other)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    let mut lines = BufReader::new(read).lines();
    let answer = lines.next_line().await?.ok_or_else(|| {
        std::io::Error::other("the agent closed the connection without answering")
    })?;
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}
