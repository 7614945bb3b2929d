//! The QUIC mesh between directors: one endpoint per director on its configured
//! address and port, mutual TLS with the cluster CA, one connection per director pair.
//!
//! - **Who dials**: the director whose name sorts lower dials the higher one and redials with
//!   backoff when the connection drops; the higher one only accepts. One connection per pair,
//!   no tie-breaking.
//! - **Who is admitted**: the handshake admits only certificates of the cluster CA (both ways;
//!   the dialler also checks the server's name). After it, the client certificate's name must
//!   be a `director` of the configuration, not this one: otherwise the connection is closed
//!   with the reason and [`Event::Refused`] is emitted; it never counts as a member.
//! - **Streams**: every stream opens with one kind byte, outside the versioned envelope so
//!   that it never changes: the dialler opens the one heartbeat stream of the pair
//!   ([`STREAM_HEARTBEAT`]), both sides open a fresh stream per request ([`STREAM_REQUEST`])
//!   and per connection-sync message ([`STREAM_CONN_SYNC`]: nothing comes back).
//! - **Heartbeats** go both ways every `interval` with a sequence number, the sender's
//!   [`Health`] and its suspicions (gossip). The [`detector`] turns them into
//!   [`Event`]s; a director sends at once when its suspicions change, so a second opinion
//!   arrives without waiting for the next tick.
//! - **Versions**: a director sends in [`PROTOCOL_VERSION`] until a peer's frames show an
//!   older one, then answers in that (see [`wire`]). A frame it cannot decode is counted
//!   and dropped; the stream and the connection go on. So a director one version ahead has
//!   its first frames dropped here, reads ours, and answers in our version from then on.
//! - **Changing peers**: [`Mesh::set_peers`] changes the peer set of a running mesh (a
//!   director added to or removed from the configuration). A new peer is dialled (or
//!   accepted) and heartbeated like the first ones; a removed one has its connection closed,
//!   its dialler stopped and its detector entry dropped without a verdict, so a director that
//!   leaves is never reported suspected or dead here.
//! - **Limits**: heartbeats ride a reliable stream, so a lost packet holds the following
//!   heartbeats back until QUIC detects the loss and retransmits (about one more interval on
//!   a LAN: the next heartbeat's acknowledgement reveals the gap). Heavy loss on one path can
//!   therefore raise a suspicion; the second opinion keeps it from becoming a death. The
//!   mesh reports liveness; it never acts on it.

pub mod detector;
pub mod tls;
pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use flotilla_config::model::Cluster;
use quinn::{Connection, RecvStream, SendStream, VarInt};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

pub use detector::{DetectorConfig, FailureDetector, PeerStatus, Verdict};
pub use tls::{MeshTls, TlsError};
pub use wire::{Health, OLDEST_SUPPORTED_VERSION, PROTOCOL_VERSION};

use wire::{FrameError, Heartbeat, Message, WireError};

/// First byte of the heartbeat stream.
pub const STREAM_HEARTBEAT: u8 = b'H';
/// First byte of a request stream.
pub const STREAM_REQUEST: u8 = b'R';
/// First byte of a connection-sync stream: frames of [`Message::ConnSync`], no answer. A
/// build without it counts the stream kind unknown and resets the stream.
pub const STREAM_CONN_SYNC: u8 = b'C';

const CLOSE_SHUTDOWN: VarInt = VarInt::from_u32(0);
const CLOSE_REFUSED: VarInt = VarInt::from_u32(1);
const CLOSE_REPLACED: VarInt = VarInt::from_u32(2);
const CLOSE_HEARTBEAT_ENDED: VarInt = VarInt::from_u32(3);
const CLOSE_REMOVED: VarInt = VarInt::from_u32(4);

/// What the mesh reports, in order, on the channel `Mesh::start` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Heartbeats from the peer arrive (first time, or again after suspicion or death).
    PeerUp { name: String },
    /// No heartbeat for `suspect_after` intervals.
    PeerSuspected { name: String },
    /// Suspected here and by the directors in `confirmed_by`; empty only in a two-director
    /// fleet, where no second opinion exists. `last_heard`: when its last heartbeat before
    /// the verdict arrived here, the last moment it was known alive.
    PeerDead {
        name: String,
        confirmed_by: Vec<String>,
        last_heard: Option<Instant>,
    },
    /// The peer's health: with its first heartbeat, then whenever it changes.
    PeerHealth { name: String, health: Health },
    /// A connection was refused: a failed handshake (certificate of another CA, wrong name)
    /// or a certificate naming no director of this cluster. `name` is the director dialled,
    /// when this side dialled.
    Refused {
        remote: SocketAddr,
        name: Option<String>,
        reason: String,
    },
}

/// Another director: its name (the name in its certificate) and mesh address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    pub name: String,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// This director's name.
    pub me: String,
    /// Where this director's endpoint listens (UDP).
    pub listen: SocketAddr,
    pub peers: Vec<PeerAddr>,
    pub detector: DetectorConfig,
    /// Upper bound on one `Mesh::request`, from opening the stream to the response.
    pub request_timeout: Duration,
    /// QUIC idle timeout: a silent connection is closed after it (and redialled). Failure
    /// detection does not wait for it.
    pub idle_timeout: Duration,
    /// Redial backoff: starts at `reconnect_min`, doubles per failure up to `reconnect_max`.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl MeshConfig {
    pub fn new(me: impl Into<String>, listen: SocketAddr, peers: Vec<PeerAddr>) -> Self {
        MeshConfig {
            me: me.into(),
            listen,
            peers,
            detector: DetectorConfig::default(),
            request_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(3),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
        }
    }

    /// The mesh of director `me` as the configuration's `cluster` block describes it.
    pub fn from_cluster(cluster: &Cluster, me: &str) -> Result<Self, MeshError> {
        let own = cluster
            .director(me)
            .ok_or_else(|| MeshError::NotADirector(me.to_string()))?;
        let peers = cluster
            .directors
            .iter()
            .filter(|d| d.name != me)
            .map(|d| PeerAddr {
                name: d.name.clone(),
                addr: SocketAddr::new(d.address, d.port),
            })
            .collect();
        let mut config = MeshConfig::new(me, SocketAddr::new(own.address, own.port), peers);
        let hb = &cluster.heartbeat;
        config.detector = DetectorConfig {
            interval: Duration::from_micros(hb.interval.0),
            suspect_after: hb.suspect_after,
            max_suspect_timeout: Duration::from_micros(hb.max_timeout.0),
        };
        Ok(config)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("{0:?} is not a director of this cluster")]
    NotADirector(String),
    #[error("invalid mesh setting: {0}")]
    Setting(&'static str),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0:?} is not another director of this cluster")]
    UnknownPeer(String),
    #[error("no connection to {0:?}")]
    NotConnected(String),
    #[error("no response from {peer:?} within {after:?}")]
    Timeout { peer: String, after: Duration },
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream: {0}")]
    Frame(#[from] FrameError),
    #[error("stream closed before the request was sent")]
    StreamClosed,
    #[error("peer closed the stream without a response")]
    NoResponse,
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("peer answered with something other than a response")]
    Unexpected,
    #[error("peer's handler failed: {0}")]
    Remote(String),
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = Arc<dyn Fn(String, Vec<u8>) -> BoxFuture<Result<Vec<u8>, String>> + Send + Sync>;
type ConnSyncHandler = Arc<dyn Fn(&str, Vec<u8>) + Send + Sync>;

enum Input {
    Heard {
        peer: String,
        heartbeat: Heartbeat,
    },
    /// A director joined the peer set: watch it from now on.
    Added(String),
    /// Directors left the peer set: forget them without a verdict.
    Removed(Vec<String>),
}

/// A current peer: where it listens, and the switch that stops its dialler when it leaves.
struct Peer {
    addr: SocketAddr,
    gone: watch::Sender<bool>,
}

struct Inner {
    /// The configuration the mesh started with; the peers in it are only the first ones
    /// (`peers` holds the current set).
    config: MeshConfig,
    /// The current peers (never this director), by name.
    peers: Mutex<HashMap<String, Peer>>,
    endpoint: quinn::Endpoint,
    connections: Mutex<HashMap<String, Connection>>,
    /// The protocol version each peer last spoke.
    versions: Mutex<HashMap<String, u16>>,
    handler: RwLock<Option<Handler>>,
    conn_sync: RwLock<Option<ConnSyncHandler>>,
    health: watch::Sender<Health>,
    suspects: watch::Sender<Vec<String>>,
    inputs: mpsc::UnboundedSender<Input>,
    events: mpsc::UnboundedSender<Event>,
    shutdown: watch::Sender<bool>,
    rejected: AtomicU64,
    /// Fault injection for tests: heartbeats from these peers are dropped on arrival, as
    /// if the path between the two lost them.
    #[cfg(test)]
    deaf_to: Mutex<std::collections::HashSet<String>>,
}

/// A running mesh endpoint. Dropping it (or [`Mesh::close`]) closes every connection.
pub struct Mesh {
    inner: Arc<Inner>,
}

impl Mesh {
    /// Binds the endpoint and starts accepting, dialling and heartbeating. Must be called
    /// inside a tokio runtime.
    pub fn start(
        config: MeshConfig,
        tls: &MeshTls,
    ) -> Result<(Mesh, mpsc::UnboundedReceiver<Event>), MeshError> {
        if config.detector.interval.is_zero() {
            return Err(MeshError::Setting("heartbeat interval must be above zero"));
        }
        if config.detector.suspect_after == 0 {
            return Err(MeshError::Setting("suspect_after must be at least 1"));
        }
        if config.peers.iter().any(|p| p.name == config.me) {
            return Err(MeshError::Setting(
                "this director is listed among its peers",
            ));
        }
        let mut transport = quinn::TransportConfig::default();
        transport.max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(config.idle_timeout)
                .map_err(|_| MeshError::Setting("idle timeout out of range"))?,
        ));
        transport.keep_alive_interval(Some(config.idle_timeout / 3));
        let transport = Arc::new(transport);
        let mut endpoint =
            quinn::Endpoint::server(tls.server_config(transport.clone())?, config.listen).map_err(
                |source| MeshError::Bind {
                    addr: config.listen,
                    source,
                },
            )?;
        endpoint.set_default_client_config(tls.client_config(transport)?);

        let (inputs, inputs_rx) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            peers: Mutex::default(),
            endpoint,
            connections: Mutex::default(),
            versions: Mutex::default(),
            handler: RwLock::default(),
            conn_sync: RwLock::default(),
            health: watch::Sender::new(Health {
                version: env!("CARGO_PKG_VERSION").to_string(),
                load: 0,
                detail: Vec::new(),
            }),
            suspects: watch::Sender::new(Vec::new()),
            inputs,
            events,
            shutdown: watch::Sender::new(false),
            rejected: AtomicU64::new(0),
            #[cfg(test)]
            deaf_to: Mutex::default(),
            config,
        });
        info!(me = %inner.config.me, listen = %inner.config.listen, "mesh endpoint up");
        for peer in &inner.config.peers {
            inner.add_peer(peer.clone());
        }
        tokio::spawn(run_detector(inner.clone(), inputs_rx));
        tokio::spawn(accept_loop(inner.clone()));
        Ok((Mesh { inner }, events_rx))
    }

    /// Makes `peers` the peer set: directors not in it any more are disconnected and
    /// forgotten (no suspicion, no death), new ones are dialled or accepted and heartbeated,
    /// one whose address changed is redialled there. This director in the list is ignored.
    /// Returns whether anything changed.
    pub fn set_peers(&self, peers: &[PeerAddr]) -> bool {
        let inner = &self.inner;
        let wanted: HashMap<&str, SocketAddr> = peers
            .iter()
            .filter(|p| p.name != inner.config.me)
            .map(|p| (p.name.as_str(), p.addr))
            .collect();
        let leaving: Vec<String> = lock(&inner.peers)
            .iter()
            .filter(|(name, p)| wanted.get(name.as_str()) != Some(&p.addr))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &leaving {
            inner.remove_peer(name);
        }
        if !leaving.is_empty() {
            let _ = inner.inputs.send(Input::Removed(leaving.clone()));
        }
        let mut changed = !leaving.is_empty();
        for p in peers {
            if p.name != inner.config.me && !lock(&inner.peers).contains_key(&p.name) {
                inner.add_peer(p.clone());
                changed = true;
            }
        }
        changed
    }

    /// The current peers, by name.
    pub fn peers(&self) -> Vec<PeerAddr> {
        let mut peers: Vec<PeerAddr> = lock(&self.inner.peers)
            .iter()
            .map(|(name, p)| PeerAddr {
                name: name.clone(),
                addr: p.addr,
            })
            .collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name));
        peers
    }

    pub fn name(&self) -> &str {
        &self.inner.config.me
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.endpoint.local_addr()
    }

    /// What the next heartbeats report about this director.
    pub fn set_health(&self, health: Health) {
        self.inner.health.send_replace(health);
    }

    /// Directors with an open connection now (heartbeats may still be missing: see the
    /// events for liveness).
    pub fn connected(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.inner.connections).keys().cloned().collect();
        names.sort();
        names
    }

    /// Frames received and refused so far (unsupported version, undecodable, misplaced).
    pub fn rejected_frames(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }

    /// Installs the handler of incoming requests: it gets the requesting director's name and
    /// the request bytes, and its result is sent back. Without one, requests are answered
    /// with an error.
    pub fn set_request_handler<F, Fut>(&self, handler: F)
    where
        F: Fn(String, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, String>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |peer, body| Box::pin(handler(peer, body)));
        *self
            .inner
            .handler
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(handler);
    }

    /// Sends `body` to `peer` on a fresh stream and waits for its handler's answer.
    pub async fn request(&self, peer: &str, body: Vec<u8>) -> Result<Vec<u8>, RequestError> {
        let inner = &self.inner;
        if !lock(&inner.peers).contains_key(peer) {
            return Err(RequestError::UnknownPeer(peer.to_string()));
        }
        let conn = lock(&inner.connections)
            .get(peer)
            .cloned()
            .ok_or_else(|| RequestError::NotConnected(peer.to_string()))?;
        let frame = wire::encode(&Message::Request(body), inner.version_for(peer))?;
        let exchange = async {
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&[STREAM_REQUEST])
                .await
                .map_err(|e| FrameError::Io(e.into()))?;
            wire::write_frame(&mut send, &frame).await?;
            send.finish().map_err(|_| RequestError::StreamClosed)?;
            let reply = wire::read_frame(&mut recv, wire::MAX_FRAME)
                .await?
                .ok_or(RequestError::NoResponse)?;
            match wire::decode(&reply)?.body {
                Message::Response(Ok(bytes)) => Ok(bytes),
                Message::Response(Err(e)) => Err(RequestError::Remote(e)),
                _ => Err(RequestError::Unexpected),
            }
        };
        let after = inner.config.request_timeout;
        tokio::time::timeout(after, exchange)
            .await
            .map_err(|_| RequestError::Timeout {
                peer: peer.to_string(),
                after,
            })?
    }

    /// Installs the receiver of connection-sync messages: the sending director's name and the
    /// message bytes, unchecked (the caller parses them). Without one they are dropped.
    pub fn set_conn_sync_handler<F>(&self, handler: F)
    where
        F: Fn(&str, Vec<u8>) + Send + Sync + 'static,
    {
        *self
            .inner
            .conn_sync
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(handler));
    }

    /// Sends one connection-sync message to `peer` on a fresh stream, without an answer:
    /// the kernel's sync protocol is itself fire-and-forget (entries are re-sent as their
    /// connections go on), so a message lost with a connection is not retried.
    pub async fn send_conn_sync(&self, peer: &str, body: Vec<u8>) -> Result<(), RequestError> {
        let inner = &self.inner;
        let conn = lock(&inner.connections)
            .get(peer)
            .cloned()
            .ok_or_else(|| RequestError::NotConnected(peer.to_string()))?;
        let frame = wire::encode(&Message::ConnSync(body), inner.version_for(peer))?;
        let send = async {
            // Bidirectional though nothing comes back: a build from before connection sync
            // only accepts bidirectional streams, so there it meets the unknown-kind path
            // (counted, reset) instead of piling up unaccepted one-way streams.
            let (mut send, _recv) = conn.open_bi().await?;
            send.write_all(&[STREAM_CONN_SYNC])
                .await
                .map_err(|e| FrameError::Io(e.into()))?;
            wire::write_frame(&mut send, &frame).await?;
            send.finish().map_err(|_| RequestError::StreamClosed)?;
            Ok(())
        };
        let after = inner.config.request_timeout;
        tokio::time::timeout(after, send)
            .await
            .map_err(|_| RequestError::Timeout {
                peer: peer.to_string(),
                after,
            })?
    }

    /// Drops (or again accepts) heartbeats arriving from `peer`: a lost path.
    #[cfg(test)]
    fn set_deaf_to(&self, peer: &str, deaf: bool) {
        let mut deaf_to = lock(&self.inner.deaf_to);
        if deaf {
            deaf_to.insert(peer.to_string());
        } else {
            deaf_to.remove(peer);
        }
    }

    /// Closes every connection (peers see the close at once) and stops all tasks.
    pub async fn close(&self) {
        self.inner.stop();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.endpoint.wait_idle()).await;
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.inner.stop();
    }
}

impl Inner {
    fn stop(&self) {
        self.shutdown.send_replace(true);
        self.endpoint
            .close(CLOSE_SHUTDOWN, b"director shutting down");
    }

    /// Starts watching `peer`, and dials it when this director is the one that dials.
    fn add_peer(self: &Arc<Self>, peer: PeerAddr) {
        let (gone, gone_rx) = watch::channel(false);
        lock(&self.peers).insert(
            peer.name.clone(),
            Peer {
                addr: peer.addr,
                gone,
            },
        );
        info!(peer = %peer.name, addr = %peer.addr, "mesh peer added");
        let _ = self.inputs.send(Input::Added(peer.name.clone()));
        if peer.name.as_str() > self.config.me.as_str() {
            tokio::spawn(dial_loop(self.clone(), peer, gone_rx));
        }
    }

    /// Stops dialling `name` and closes its connection (the caller tells the detector).
    fn remove_peer(&self, name: &str) {
        let Some(peer) = lock(&self.peers).remove(name) else {
            return;
        };
        info!(peer = name, addr = %peer.addr, "mesh peer removed");
        peer.gone.send_replace(true);
        if let Some(conn) = lock(&self.connections).remove(name) {
            conn.close(CLOSE_REMOVED, b"no longer a director of this cluster");
        }
        lock(&self.versions).remove(name);
    }

    /// Every current director's name, this one included.
    fn directors(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.peers).keys().cloned().collect();
        names.push(self.config.me.clone());
        names
    }

    fn emit(&self, event: Event) {
        // The receiver may be gone (nobody listening); the mesh runs on regardless.
        let _ = self.events.send(event);
    }

    fn version_for(&self, peer: &str) -> u16 {
        lock(&self.versions)
            .get(peer)
            .copied()
            .unwrap_or(PROTOCOL_VERSION)
    }

    /// Decodes a frame from `peer`, remembering the version it speaks.
    fn decode_from(&self, peer: &str, frame: &[u8]) -> Result<Message, WireError> {
        let envelope = wire::decode(frame)?;
        let mut versions = lock(&self.versions);
        if versions.get(peer) != Some(&envelope.version) {
            debug!(peer, version = envelope.version, "peer protocol version");
            versions.insert(peer.to_string(), envelope.version);
        }
        Ok(envelope.body)
    }

    fn reject(&self, peer: &str, why: &dyn std::fmt::Display) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        warn!(peer, "frame refused: {why}");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await.map(|_| ());
}

async fn run_detector(inner: Arc<Inner>, mut inputs: mpsc::UnboundedReceiver<Input>) {
    let peers = inner.config.peers.iter().map(|p| p.name.clone());
    let mut detector = FailureDetector::new(inner.config.detector, peers);
    let mut health: HashMap<String, Health> = HashMap::new();
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let deadline = detector.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let mut changed_health = None;
        let stalls = detector.stalls();
        // Biased: a heartbeat already queued is heard before the timer judges its sender
        // silent (unbiased, a busy host saw "suspected" and "up" 60 µs apart).
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            input = inputs.recv() => match input {
                None => break,
                Some(Input::Heard { peer, heartbeat }) => {
                    if detector.heard(&peer, &heartbeat.suspects, Instant::now())
                        && health.get(&peer) != Some(&heartbeat.health)
                    {
                        health.insert(peer.clone(), heartbeat.health.clone());
                        changed_health = Some((peer, heartbeat.health));
                    }
                }
                Some(Input::Added(peer)) => detector.add_peer(peer, Instant::now()),
                Some(Input::Removed(gone)) => {
                    health.retain(|name, _| !gone.contains(name));
                    detector.remove_peers(&gone, Instant::now());
                }
            },
            () = sleep => detector.handle_timeout(Instant::now()),
        }
        // Run late (this process stalled), the detector grants the peers a grace instead of
        // judging them (see the detector's module notes).
        if detector.stalls() > stalls {
            let late = deadline.map(|d| Instant::now().saturating_duration_since(d));
            warn!(
                ?late,
                "failure detector ran late (this process stalled): suspecting nobody for one more suspicion timeout"
            );
        }
        while let Some(verdict) = detector.poll_event() {
            let event = match verdict {
                Verdict::Up(name) => {
                    info!(peer = %name, "peer up");
                    Event::PeerUp { name }
                }
                Verdict::Suspected(name) => {
                    warn!(peer = %name, "peer suspected");
                    Event::PeerSuspected { name }
                }
                Verdict::Dead {
                    name,
                    confirmed_by,
                    last_heard,
                } => {
                    warn!(peer = %name, ?confirmed_by, "peer dead");
                    Event::PeerDead {
                        name,
                        confirmed_by,
                        last_heard,
                    }
                }
            };
            inner.emit(event);
        }
        if let Some((name, health)) = changed_health {
            inner.emit(Event::PeerHealth { name, health });
        }
        let suspects = detector.suspects();
        inner.suspects.send_if_modified(|current| {
            let changed = *current != suspects;
            if changed {
                *current = suspects;
            }
            changed
        });
    }
}

async fn accept_loop(inner: Arc<Inner>) {
    while let Some(incoming) = inner.endpoint.accept().await {
        let inner = inner.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let conn = match incoming.await {
                Ok(conn) => conn,
                Err(e) => {
                    warn!(%remote, "mesh handshake failed: {e}");
                    inner.emit(Event::Refused {
                        remote,
                        name: None,
                        reason: format!("handshake failed: {e}"),
                    });
                    return;
                }
            };
            match tls::identify(&conn, &inner.directors(), &inner.config.me) {
                Ok(name) => run_connection(inner, conn, name, false).await,
                Err(reason) => {
                    warn!(%remote, "mesh connection refused: {reason}");
                    conn.close(CLOSE_REFUSED, reason.as_bytes());
                    inner.emit(Event::Refused {
                        remote,
                        name: None,
                        reason,
                    });
                }
            }
        });
    }
}

/// Dials `peer` and redials with backoff until the mesh stops or `gone` says the peer left.
async fn dial_loop(inner: Arc<Inner>, peer: PeerAddr, mut gone: watch::Receiver<bool>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut backoff = inner.config.reconnect_min;
    while !*shutdown.borrow() && !*gone.borrow() {
        let attempt = match inner.endpoint.connect(peer.addr, &peer.name) {
            Ok(connecting) => connecting.await,
            Err(e) => {
                warn!(peer = %peer.name, addr = %peer.addr, "cannot dial: {e}");
                break;
            }
        };
        match attempt {
            Ok(conn) if *gone.borrow() => {
                conn.close(CLOSE_REMOVED, b"no longer a director of this cluster");
                break;
            }
            Ok(conn) => {
                backoff = inner.config.reconnect_min;
                run_connection(inner.clone(), conn, peer.name.clone(), true).await;
            }
            Err(e) => {
                if refused(&e) {
                    warn!(peer = %peer.name, addr = %peer.addr, "mesh connection refused: {e}");
                    inner.emit(Event::Refused {
                        remote: peer.addr,
                        name: Some(peer.name.clone()),
                        reason: e.to_string(),
                    });
                } else {
                    debug!(peer = %peer.name, addr = %peer.addr, "dial failed: {e}");
                }
                backoff = (backoff * 2).min(inner.config.reconnect_max);
            }
        }
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            () = stopped(&mut gone) => break,
            () = tokio::time::sleep(backoff) => {}
        }
    }
}

/// A failure the peer (or our verification of it) decided, as opposed to an unreachable
/// peer.
fn refused(e: &quinn::ConnectionError) -> bool {
    matches!(
        e,
        quinn::ConnectionError::TransportError(_)
            | quinn::ConnectionError::ConnectionClosed(_)
            | quinn::ConnectionError::ApplicationClosed(_)
    )
}

/// Runs one admitted connection to `peer` until it closes.
async fn run_connection(inner: Arc<Inner>, conn: Connection, peer: String, dialer: bool) {
    info!(peer, remote = %conn.remote_address(), dialer, "mesh connection established");
    lock(&inner.versions).remove(&peer);
    {
        // Checked under the peers lock so that a concurrent removal either sees this
        // connection (and closes it) or is seen here.
        let peers = lock(&inner.peers);
        if !peers.contains_key(&peer) {
            drop(peers);
            conn.close(CLOSE_REMOVED, b"no longer a director of this cluster");
            return;
        }
        if let Some(old) = lock(&inner.connections).insert(peer.clone(), conn.clone()) {
            old.close(CLOSE_REPLACED, b"replaced by a newer connection");
        }
    }
    let streams = tokio::spawn(serve_streams(inner.clone(), conn.clone(), peer.clone()));
    if dialer {
        match conn.open_bi().await {
            Ok((mut send, recv)) => {
                if send.write_all(&[STREAM_HEARTBEAT]).await.is_ok() {
                    heartbeat_session(&inner, &peer, send, recv).await;
                }
            }
            Err(e) => debug!(peer, "cannot open the heartbeat stream: {e}"),
        }
        conn.close(CLOSE_HEARTBEAT_ENDED, b"heartbeat stream ended");
    }
    let reason = conn.closed().await;
    streams.abort();
    let mut connections = lock(&inner.connections);
    if connections
        .get(&peer)
        .is_some_and(|c| c.stable_id() == conn.stable_id())
    {
        connections.remove(&peer);
    }
    info!(peer, "mesh connection closed: {reason}");
}

async fn serve_streams(inner: Arc<Inner>, conn: Connection, peer: String) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        tokio::spawn(serve_stream(
            inner.clone(),
            conn.clone(),
            peer.clone(),
            send,
            recv,
        ));
    }
}

/// A connection-sync stream: its frames until it ends; nothing is answered.
async fn serve_conn_sync(inner: &Inner, peer: &str, mut recv: RecvStream) {
    loop {
        match wire::read_frame(&mut recv, wire::MAX_CONN_SYNC_FRAME).await {
            Ok(Some(frame)) => match inner.decode_from(peer, &frame) {
                Ok(Message::ConnSync(body)) => {
                    let handler = inner
                        .conn_sync
                        .read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    if let Some(handler) = handler {
                        handler(peer, body);
                    }
                }
                Ok(_) => inner.reject(peer, &"only connection sync belongs on this stream"),
                Err(e) => inner.reject(peer, &e),
            },
            Ok(None) => return,
            Err(e) => {
                inner.reject(peer, &e);
                let _ = recv.stop(VarInt::from_u32(0));
                return;
            }
        }
    }
}

async fn serve_stream(
    inner: Arc<Inner>,
    conn: Connection,
    peer: String,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let mut kind = [0u8; 1];
    if recv.read_exact(&mut kind).await.is_err() {
        return;
    }
    match kind[0] {
        STREAM_HEARTBEAT => {
            heartbeat_session(&inner, &peer, send, recv).await;
            conn.close(CLOSE_HEARTBEAT_ENDED, b"heartbeat stream ended");
        }
        STREAM_REQUEST => serve_request(&inner, &peer, send, recv).await,
        STREAM_CONN_SYNC => {
            let _ = send.finish();
            serve_conn_sync(&inner, &peer, recv).await;
        }
        other => {
            inner.reject(&peer, &format_args!("unknown stream kind {other:#04x}"));
            let _ = recv.stop(VarInt::from_u32(0));
            let _ = send.reset(VarInt::from_u32(0));
        }
    }
}

async fn serve_request(inner: &Inner, peer: &str, mut send: SendStream, mut recv: RecvStream) {
    let frame = match wire::read_frame(&mut recv, wire::MAX_FRAME).await {
        Ok(Some(frame)) => frame,
        Ok(None) => return,
        Err(e) => {
            inner.reject(peer, &e);
            return;
        }
    };
    let response = match inner.decode_from(peer, &frame) {
        Ok(Message::Request(body)) => {
            let handler = inner
                .handler
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            match handler {
                Some(handler) => handler(peer.to_string(), body).await,
                None => Err("no request handler on this director".to_string()),
            }
        }
        Ok(_) => {
            inner.reject(peer, &"a request stream must start with a request");
            Err("expected a request".to_string())
        }
        Err(e) => {
            inner.reject(peer, &e);
            Err(e.to_string())
        }
    };
    let frame = match wire::encode(&Message::Response(response), inner.version_for(peer)) {
        Ok(frame) => frame,
        Err(e) => {
            warn!(peer, "cannot encode a response: {e}");
            return;
        }
    };
    if wire::write_frame(&mut send, &frame).await.is_ok() {
        let _ = send.finish();
    }
}

/// Both directions of the pair's heartbeat stream, until either fails.
async fn heartbeat_session(inner: &Inner, peer: &str, mut send: SendStream, mut recv: RecvStream) {
    let sender = async {
        let mut ticker = tokio::time::interval(inner.config.detector.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut suspects = inner.suspects.subscribe();
        let mut seq = 0u64;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                changed = suspects.changed() => if changed.is_err() { break },
            }
            seq += 1;
            let heartbeat = Message::Heartbeat(Heartbeat {
                seq,
                health: inner.health.borrow().clone(),
                suspects: suspects.borrow_and_update().clone(),
            });
            let frame = match wire::encode(&heartbeat, inner.version_for(peer)) {
                Ok(frame) => frame,
                Err(e) => {
                    warn!(peer, "cannot encode a heartbeat: {e}");
                    break;
                }
            };
            if let Err(e) = wire::write_frame(&mut send, &frame).await {
                debug!(peer, "heartbeat send ended: {e}");
                break;
            }
        }
    };
    let receiver = async {
        loop {
            match wire::read_frame(&mut recv, wire::MAX_HEARTBEAT_FRAME).await {
                Ok(Some(frame)) => match inner.decode_from(peer, &frame) {
                    Ok(Message::Heartbeat(heartbeat)) => {
                        #[cfg(test)]
                        if lock(&inner.deaf_to).contains(peer) {
                            continue;
                        }
                        let heard = Input::Heard {
                            peer: peer.to_string(),
                            heartbeat,
                        };
                        if inner.inputs.send(heard).is_err() {
                            break;
                        }
                    }
                    Ok(_) => inner.reject(peer, &"only heartbeats belong on the heartbeat stream"),
                    Err(e) => inner.reject(peer, &e),
                },
                Ok(None) => break,
                Err(e) => {
                    debug!(peer, "heartbeat receive ended: {e}");
                    break;
                }
            }
        }
    };
    tokio::select! {
        () = sender => {}
        () = receiver => {}
    }
}
