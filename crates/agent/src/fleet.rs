//! Fleet mode (a configuration with a `cluster` block, `flotilla agent --name NAME`): the
//! director joins the QUIC mesh, the Raft group and placement, and runs its VRRP units at
//! the priority its rank gives them (DESIGN.md "How VRRP and the cluster fit together").
//!
//! * The Raft leader computes placement whenever its inputs change (a director up or
//!   confirmed dead, a drain, a pin, the hold-down or rate limit running out) and commits a
//!   new assignment with its epoch.
//! * Every director applies each committed assignment: rank → VRRP priority for every unit;
//!   a unit it now owns and did not before is taken over at once (make-before-break: the old
//!   owner yields on the first advert at the new owner's higher priority).
//! * A director confirmed dead by the mesh's heartbeats: each survivor next in rank for its
//!   units takes them at once, without waiting 3 × advert_int; the leader's next assignment
//!   confirms it. Without quorum nothing new commits and VRRP keeps failing over on the last
//!   ranks.
//! * Control requests (drain, undrain, move, config apply, plan) are executed by the leader;
//!   any director forwards them over the mesh.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flotilla_cluster::mesh::{Event, Mesh, MeshConfig, MeshTls};
use flotilla_cluster::placement::{self, Assignment, Input, Settings, Unit};
use flotilla_cluster::raft::{
    Command, CommandReply, DirectorNode, Fleet, FleetConfig, FleetError, FleetState, NodeId,
    founder, members, node_id,
};
use flotilla_cluster::raft_mesh::{MeshTransport, TAG_CONTROL, TAG_RAFT, tagged, untag};
use flotilla_config::Config;
use flotilla_config::model::Cluster;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::api::{Answer, Request};
use crate::director::{Running, actors_by_name};
use crate::instance::InstanceMsg;
use crate::moves::Takeover;
use crate::setup::{UnitSetup, rank_priority};

mod directors;
pub use directors::RaftSeat;

/// Priority of a unit on a director that placement does not rank (drained, ineligible).
pub const UNRANKED_PRIORITY: u8 = 10;
/// How long the first placement waits for every director to connect before placing on the
/// ones that did (so a cold start of the whole fleet comes up balanced).
pub const STARTUP_GRACE: Duration = Duration::from_secs(3);
/// How long a restarted director waits for news from the leader before it trusts the
/// assignment it persisted.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

/// How often this director's units are asked for their state (health gossip, arbitration).
pub const UNIT_POLL: Duration = Duration::from_millis(500);

/// How long a control request (drain, undrain, move, config apply) waits for a Raft leader
/// to be known before it is refused; and how often it looks meanwhile.
pub const LEADER_WAIT: Duration = Duration::from_secs(5);
const LEADER_POLL: Duration = Duration::from_millis(50);

/// What `flotilla status` shows of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetReport {
    pub director: String,
    pub leader: Option<String>,
    pub term: u64,
    pub commit_index: Option<u64>,
    pub epoch: u64,
    pub config_version: u64,
    pub members: Vec<MemberReport>,
    pub units: Vec<UnitReport>,
    /// Raft's membership as this director last saw it (a director leaving the configuration
    /// stays here until the leader has taken it out).
    #[serde(default)]
    pub raft_voters: Vec<String>,
    #[serde(default)]
    pub raft_learners: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReport {
    pub name: String,
    /// Alive as this director sees it (heartbeats; itself always).
    pub alive: bool,
    pub drained: bool,
    pub leader: bool,
    /// Voter, learner or outside the Raft group.
    #[serde(default)]
    pub raft: RaftSeat,
    /// Units it owns in the committed assignment.
    pub owns: usize,
    /// VIPs of the units it owns.
    pub weight: u64,
    /// Its software version (from its heartbeats; this director's own).
    pub version: Option<String>,
    /// Units it cannot serve now (a tracker holds them in FAULT there).
    pub faulty_units: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitReport {
    pub name: String,
    pub owner: Option<String>,
    pub ranks: Vec<String>,
    pub weight: u32,
    pub pinned_to: Option<String>,
}

/// What the runtime keeps between events.
struct View {
    me: String,
    names: BTreeMap<NodeId, String>,
    directors: Vec<String>,
    /// Alive (by heartbeats) and since when (wall clock, the time placement uses).
    alive: BTreeMap<String, (bool, Duration)>,
    assignment: Option<Assignment>,
    units: BTreeMap<String, Unit>,
    settings: Settings,
    started: Instant,
    /// The first assignment seen since start has been applied (before that every unit runs
    /// at the unplaced priority, so a stale persisted assignment never preempts anybody).
    caught_up: bool,
    /// Units a director cannot serve now (a tracker holds them in FAULT there), from its
    /// heartbeats' health (this director's own from its units).
    faulty: BTreeMap<String, BTreeSet<String>>,
    /// Directors' software versions, from their heartbeats.
    versions: BTreeMap<String, String>,
    /// Units each director holds as master, from their heartbeats' health (this director's
    /// own from its units): the mesh's view for arbitration.
    masters: BTreeMap<String, BTreeSet<String>>,
    /// Units held back here, and the director they are held back for.
    held: BTreeMap<String, String>,
}

/// What a director tells the others in its heartbeats' health detail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct HealthDetail {
    /// Units held in FAULT by a tracker here: not eligible here.
    faulty_units: BTreeSet<String>,
    /// Units this director is master of (absent from older versions' heartbeats).
    #[serde(default)]
    masters: BTreeSet<String>,
}

fn wall() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn decode_assignment(state: &FleetState) -> Option<Assignment> {
    let (_, blob) = state.assignment.as_ref()?;
    postcard::from_bytes(blob).ok()
}

/// Placement units from the unit setups: weight = VIP count, `nopreempt` if any member has.
pub fn placement_units(units: &[UnitSetup]) -> BTreeMap<String, Unit> {
    units
        .iter()
        .map(|u| {
            let weight = u.members.iter().map(|m| m.vips.len()).sum::<usize>();
            let mut unit = Unit::new(u32::try_from(weight).unwrap_or(u32::MAX));
            unit.nopreempt = u.members.iter().any(|m| m.nopreempt);
            (u.name.clone(), unit)
        })
        .collect()
}

/// The committed configuration's `cluster` block and its version, decoded once per version.
type CachedCluster = (u64, Arc<Cluster>);

/// The fleet runtime's handle, shared with the control API.
#[derive(Clone)]
pub struct FleetHandle {
    fleet: Fleet,
    mesh: Arc<Mesh>,
    view: Arc<Mutex<View>>,
    nudge: Arc<Notify>,
    units: Running,
    cluster: Arc<Mutex<Option<CachedCluster>>>,
}

impl FleetHandle {
    /// The `cluster` block of the committed configuration (`None` before one is committed):
    /// read every second by the mesh roster and the leader's membership check, decoded only
    /// when the version changes (a large LVS configuration is tens of MB of JSON).
    fn committed_cluster(&self) -> Option<Arc<Cluster>> {
        let state = self.fleet.state();
        let mut cached = lock(&self.cluster);
        if let Some((version, c)) = cached.as_ref()
            && *version == state.config_version
        {
            return Some(c.clone());
        }
        match state.cluster() {
            Ok(Some(c)) => {
                let c = Arc::new(c);
                *cached = Some((state.config_version, c.clone()));
                Some(c)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, "the committed configuration does not decode");
                None
            }
        }
    }

    /// The mesh this director's fleet runs on.
    pub fn mesh(&self) -> Arc<Mesh> {
        self.mesh.clone()
    }

    fn leader_name(&self) -> Option<String> {
        let m = self.fleet.metrics();
        let v = lock(&self.view);
        m.leader.and_then(|id| v.names.get(&id).cloned())
    }

    fn is_leader(&self) -> bool {
        self.fleet.metrics().leader == Some(self.fleet.id())
    }

    fn input(&self, state: &FleetState) -> Input {
        let v = lock(&self.view);
        let directors = v
            .directors
            .iter()
            .map(|d| {
                let (alive, since) = v.alive.get(d).copied().unwrap_or((false, Duration::ZERO));
                (
                    d.clone(),
                    placement::Director {
                        alive,
                        drained: state.drained.contains(d),
                        since,
                        ineligible_for: v.faulty.get(d).cloned().unwrap_or_default(),
                    },
                )
            })
            .collect();
        Input {
            units: v.units.clone(),
            directors,
            pins: state.pins.clone(),
            settings: v.settings.clone(),
        }
    }

    /// The leader's duty: commit a new assignment when placement says so.
    async fn place_if_leader(&self) {
        if !self.is_leader() {
            return;
        }
        let state = self.fleet.state();
        if state.config_json.is_none() {
            // The first leader writes the configuration it started with.
            return;
        }
        {
            let v = lock(&self.view);
            let connected = v.alive.values().filter(|(a, _)| *a).count();
            if state.assignment.is_none()
                && connected < v.directors.len()
                && v.started.elapsed() < STARTUP_GRACE
            {
                return;
            }
        }
        let previous = decode_assignment(&state);
        let plan = placement::place(&self.input(&state), previous.as_ref(), wall());
        if !plan.changed() {
            return;
        }
        for m in &plan.moves {
            tracing::info!(unit = %m.unit, from = ?m.from, to = %m.to, why = ?m.why, epoch = plan.assignment.epoch, "placement: move");
        }
        let blob = match postcard::to_stdvec(&plan.assignment) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the assignment");
                return;
            }
        };
        match self
            .fleet
            .propose(Command::SetAssignment {
                epoch: plan.assignment.epoch,
                blob,
            })
            .await
        {
            Ok(CommandReply::Rejected(r)) => tracing::warn!(?r, "assignment rejected"),
            Ok(_) => tracing::info!(
                epoch = plan.assignment.epoch,
                moves = plan.moves.len(),
                deferred = plan.deferred.len(),
                "placement committed"
            ),
            Err(e) => tracing::warn!(error = %e, "assignment not committed"),
        }
    }

    /// The leader keeps Raft's membership equal to the configuration's directors: directors
    /// added by `config apply` join as learners and become voters (up to five) only once they
    /// run and have caught up; removed ones leave the group. Checked every second, so a
    /// director started long after it was added is promoted too.
    async fn reconcile_membership(&self) {
        let Some(cluster) = self.committed_cluster() else {
            return;
        };
        let nodes = cluster
            .directors
            .iter()
            .map(|d| DirectorNode::new(d.name.clone(), format!("{}:{}", d.address, d.port)));
        let Ok(desired) = members(nodes) else {
            return;
        };
        match self.fleet.reconcile_membership(&desired).await {
            Ok(false) => {}
            Ok(true) => {
                let m = self.fleet.metrics();
                tracing::info!(
                    members = desired.len(),
                    voters = ?directors::names_of(&m, &m.voters),
                    learners = ?directors::names_of(&m, &m.learners),
                    "raft membership follows the configuration"
                );
            }
            Err(e) => tracing::warn!(error = %e, "raft membership not reconciled yet"),
        }
    }

    /// Applies a committed assignment to this director's units.
    fn apply(&self, new: &Assignment) {
        let (me, old, first) = {
            let mut v = lock(&self.view);
            let old = v.assignment.replace(new.clone());
            let first = !v.caught_up;
            v.caught_up = true;
            (v.me.clone(), if first { None } else { old }, first)
        };
        let actors = actors_by_name(&self.units);
        for (unit, actor) in actors {
            let rank = new.rank(&unit, &me);
            let priority = rank.map(rank_priority).unwrap_or(UNRANKED_PRIORITY);
            let was_owner = old.as_ref().and_then(|o| o.owner(&unit)) == Some(me.as_str());
            // Not on the first assignment applied since start: it may be this director's
            // persisted one, older than the leader's (the local commit index is only known
            // to be stale once the leader's next append arrives), and a restarted director
            // must not take units from their current owners. As rank 0 it still becomes
            // master by VRRP's own rules (highest priority) if nobody holds the unit.
            let take_over = rank == Some(0) && !was_owner && !first;
            if take_over {
                lock(&self.view).held.remove(&unit);
            }
            let _ = actor.cast(InstanceMsg::Place {
                priority,
                take_over: take_over.then_some(Takeover::Planned),
                owner: rank == Some(0),
            });
        }
        self.arbitrate();
    }

    /// A director confirmed dead: take at once the units for which this director is next.
    fn failover(&self, dead: &str, owner_last_heard: Option<Instant>) {
        let (me, assignment, alive) = {
            let v = lock(&self.view);
            let alive: BTreeSet<String> = v
                .alive
                .iter()
                .filter(|(_, (a, _))| *a)
                .map(|(n, _)| n.clone())
                .collect();
            (v.me.clone(), v.assignment.clone(), alive)
        };
        let Some(a) = assignment else {
            return;
        };
        let actors: BTreeMap<String, _> = actors_by_name(&self.units).into_iter().collect();
        for (unit, ranks) in &a.ranks {
            if ranks.first().map(String::as_str) != Some(dead) {
                continue;
            }
            let next = ranks.iter().find(|d| alive.contains(*d));
            if next.map(String::as_str) == Some(me.as_str())
                && let Some(actor) = actors.get(unit)
            {
                tracing::warn!(%unit, %dead, "owner confirmed dead: taking over now");
                lock(&self.view).held.remove(unit);
                let priority = a
                    .rank(unit, &me)
                    .map(rank_priority)
                    .unwrap_or(UNRANKED_PRIORITY);
                let _ = actor.cast(InstanceMsg::Place {
                    priority,
                    take_over: Some(Takeover::Failover { owner_last_heard }),
                    owner: true,
                });
            }
        }
    }

    /// Mesh arbitration (DESIGN "How VRRP and the cluster fit together" 5): a unit whose
    /// master, by the heartbeats' gossip, is a director alive and ranked above this one is
    /// held back here — this director neither stays nor becomes master of it, whatever VRRP's
    /// timers say. Only a cut of VRRP between two directors whose mesh still works makes this
    /// matter: without it both would be master (split brain). Sent on changes only: a
    /// priority-0 advert (the master releasing) ends a hold in the router itself at once.
    fn arbitrate(&self) {
        let mut changes = Vec::new();
        let actors = actors_by_name(&self.units);
        {
            let mut v = lock(&self.view);
            let Some(a) = v.assignment.clone() else {
                return;
            };
            let me = v.me.clone();
            let rank = |unit: &str, d: &str| a.rank(unit, d).unwrap_or(usize::MAX);
            for (unit, actor) in actors {
                let mine = rank(&unit, &me);
                let behind = v
                    .masters
                    .iter()
                    .filter(|(d, units)| **d != me && units.contains(&unit))
                    .filter(|(d, _)| v.alive.get(*d).is_some_and(|(up, _)| *up))
                    .map(|(d, _)| (rank(&unit, d), d.clone()))
                    .filter(|(r, _)| *r < mine)
                    .min()
                    .map(|(_, d)| d);
                if v.held.get(&unit) != behind.as_ref() {
                    match &behind {
                        Some(d) => v.held.insert(unit.clone(), d.clone()),
                        None => v.held.remove(&unit),
                    };
                    changes.push((actor, behind));
                }
            }
        }
        for (actor, behind) in changes {
            let _ = actor.cast(InstanceMsg::HoldBack(behind));
        }
    }

    /// Every committed state, as applied here (configuration changes among them).
    pub fn watch(&self) -> tokio::sync::watch::Receiver<FleetState> {
        self.fleet.watch()
    }

    /// Applies the current assignment again, to units (re)started since.
    pub fn reapply(&self) {
        let a = lock(&self.view).assignment.clone();
        if let Some(a) = a {
            self.apply(&a);
        }
    }

    /// Leaves the mesh and closes the Raft store.
    pub async fn stop(&self) {
        if let Err(e) = self.fleet.shutdown().await {
            tracing::warn!(error = %e, "raft store not closed cleanly");
        }
        self.mesh.close().await;
    }

    pub fn report(&self) -> FleetReport {
        let m = self.fleet.metrics();
        let state = self.fleet.state();
        let v = lock(&self.view);
        let leader = m.leader.and_then(|id| v.names.get(&id).cloned());
        let a = v.assignment.clone().unwrap_or_default();
        let members = v
            .directors
            .iter()
            .map(|d| {
                let owned: Vec<&str> = a.owned_by(d).collect();
                MemberReport {
                    name: d.clone(),
                    alive: v.alive.get(d).is_some_and(|(x, _)| *x),
                    drained: state.drained.contains(d),
                    leader: leader.as_deref() == Some(d.as_str()),
                    raft: directors::seat(&m, d),
                    owns: owned.len(),
                    weight: owned
                        .iter()
                        .filter_map(|u| v.units.get(*u))
                        .map(|u| u64::from(u.weight))
                        .sum(),
                    version: if *d == v.me {
                        Some(env!("CARGO_PKG_VERSION").to_string())
                    } else {
                        v.versions.get(d).cloned()
                    },
                    faulty_units: v
                        .faulty
                        .get(d)
                        .map(|f| f.iter().cloned().collect())
                        .unwrap_or_default(),
                }
            })
            .collect();
        let units = v
            .units
            .iter()
            .map(|(name, u)| UnitReport {
                name: name.clone(),
                owner: a.owner(name).map(str::to_string),
                ranks: a.ranks.get(name).cloned().unwrap_or_default(),
                weight: u.weight,
                pinned_to: state.pins.get(name).cloned(),
            })
            .collect();
        FleetReport {
            director: v.me.clone(),
            leader,
            term: m.term,
            commit_index: m.commit_index,
            epoch: a.epoch,
            config_version: state.config_version,
            members,
            units,
            raft_voters: directors::names_of(&m, &m.voters),
            raft_learners: directors::names_of(&m, &m.learners),
        }
    }

    /// A control request: executed here if this director leads, else forwarded to the
    /// leader over the mesh.
    /// While no leader is known (an election runs for a few hundred ms after the leader
    /// stopped, e.g. during a rolling upgrade) the request waits up to [`LEADER_WAIT`] for
    /// one, rather than failing an operator's command that a retry a second later would pass.
    pub async fn control(&self, req: Request) -> Answer {
        let deadline = Instant::now() + LEADER_WAIT;
        let leader = loop {
            if self.is_leader() {
                return self.execute(req).await;
            }
            if let Some(leader) = self.leader_name() {
                break leader;
            }
            if Instant::now() >= deadline {
                return Answer::error(format!(
                    "no Raft leader after {LEADER_WAIT:?} (no quorum?): nothing can be committed now"
                ));
            }
            tokio::time::sleep(LEADER_POLL).await;
        };
        let body = match serde_json::to_vec(&req) {
            Ok(b) => b,
            Err(e) => return Answer::error(format!("cannot encode the request: {e}")),
        };
        match self.mesh.request(&leader, tagged(TAG_CONTROL, &body)).await {
            Ok(reply) => serde_json::from_slice(&reply).unwrap_or_else(|e| {
                Answer::error(format!("the leader's answer does not decode: {e}"))
            }),
            Err(e) => Answer::error(format!("cannot reach the leader {leader}: {e}")),
        }
    }

    async fn execute(&self, req: Request) -> Answer {
        let known = |d: &str| lock(&self.view).directors.iter().any(|x| x == d);
        let commit = |c: Command| async move {
            let r = self.fleet.propose(c).await;
            self.nudge.notify_one();
            r
        };
        let done = |r: Result<CommandReply, FleetError>, what: String| match r {
            Ok(CommandReply::Rejected(why)) => Answer::error(format!("{what}: rejected: {why:?}")),
            Ok(_) => Answer::message(what),
            Err(e) => Answer::error(format!("{what}: {e}")),
        };
        match req {
            Request::Drain { director } if known(&director) => {
                let r = commit(Command::Drain {
                    director: director.clone(),
                })
                .await;
                done(r, format!("{director} drained: its units move off it"))
            }
            Request::Undrain { director } if known(&director) => {
                let r = commit(Command::Undrain {
                    director: director.clone(),
                })
                .await;
                done(
                    r,
                    format!("{director} undrained: units return at the rate limit"),
                )
            }
            Request::Drain { director } | Request::Undrain { director } => {
                Answer::error(format!("no director named {director} in the cluster"))
            }
            Request::Move { unit, to } => {
                let state = self.fleet.state();
                let mut input = self.input(&state);
                if let Err(e) = input.pin(&unit, &to) {
                    return Answer::error(e.to_string());
                }
                let r = commit(Command::Pin {
                    unit: unit.clone(),
                    director: to.clone(),
                })
                .await;
                done(r, format!("{unit} pinned to {to}"))
            }
            Request::Unpin { unit } => {
                let r = commit(Command::Unpin { unit: unit.clone() }).await;
                done(r, format!("{unit} unpinned"))
            }
            Request::ConfigApply { json } => {
                let r = commit(Command::ApplyConfig { json }).await;
                done(r, "configuration committed".to_string())
            }
            Request::Plan { drain } => {
                let state = self.fleet.state();
                let input = self.input(&state);
                let previous = decode_assignment(&state);
                let plan = match &drain {
                    Some(d) => placement::plan_drain(&input, previous.as_ref(), d, wall()),
                    None => Ok(placement::place(&input, previous.as_ref(), wall())),
                };
                match plan {
                    Ok(p) => Answer::message(p.to_string()),
                    Err(e) => Answer::error(e.to_string()),
                }
            }
            Request::Status => Answer::error("status is answered by each director"),
        }
    }
}

/// Everything fleet mode needs at start.
pub struct FleetStart<'a> {
    pub config: &'a Config,
    pub name: &'a str,
    pub state_dir: &'a Path,
    pub units: Running,
    pub unit_setups: &'a [UnitSetup],
}

#[derive(Debug, thiserror::Error)]
pub enum FleetStartError {
    #[error("the cluster block needs `tls {{ ca PATH dir PATH }}` for the mesh")]
    NoTls,
    #[error("{0}")]
    Mesh(String),
    #[error("raft: {0}")]
    Raft(String),
}

/// Joins the mesh and the Raft group and starts the fleet duties.
pub async fn start(s: FleetStart<'_>) -> Result<FleetHandle, FleetStartError> {
    let cluster = s
        .config
        .cluster
        .as_ref()
        .ok_or_else(|| FleetStartError::Mesh("no cluster block".into()))?;
    let tls_files = cluster.tls.as_ref().ok_or(FleetStartError::NoTls)?;
    let tls = MeshTls::load(tls_files, s.name).map_err(|e| FleetStartError::Mesh(e.to_string()))?;
    let mesh_cfg = MeshConfig::from_cluster(cluster, s.name)
        .map_err(|e| FleetStartError::Mesh(e.to_string()))?;
    let (mesh, mut events) =
        Mesh::start(mesh_cfg, &tls).map_err(|e| FleetStartError::Mesh(e.to_string()))?;
    let mesh = Arc::new(mesh);
    let nodes: Vec<DirectorNode> = cluster
        .directors
        .iter()
        .map(|d| DirectorNode::new(d.name.clone(), format!("{}:{}", d.address, d.port)))
        .collect();
    let all = members(nodes).map_err(|e| FleetStartError::Raft(e.to_string()))?;
    let names: BTreeMap<NodeId, String> = all.iter().map(|(id, n)| (*id, n.name.clone())).collect();
    std::fs::create_dir_all(s.state_dir)
        .map_err(|e| FleetStartError::Raft(format!("{}: {e}", s.state_dir.display())))?;
    let transport = MeshTransport::new(mesh.clone(), names.clone());
    let fleet = Fleet::open(
        s.state_dir,
        node_id(s.name),
        transport.clone(),
        FleetConfig::default(),
    )
    .await
    .map_err(|e| FleetStartError::Raft(e.to_string()))?;
    let view = Arc::new(Mutex::new(View {
        me: s.name.to_string(),
        names,
        directors: cluster.directors.iter().map(|d| d.name.clone()).collect(),
        alive: BTreeMap::from([(s.name.to_string(), (true, wall()))]),
        assignment: None,
        units: placement_units(s.unit_setups),
        settings: Settings {
            hold_down: Duration::from_micros(cluster.placement.hold_down.0),
            max_moves_per_second: cluster.placement.max_moves_per_second,
        },
        started: Instant::now(),
        caught_up: false,
        faulty: BTreeMap::new(),
        versions: BTreeMap::new(),
        masters: BTreeMap::new(),
        held: BTreeMap::new(),
    }));
    let handle = FleetHandle {
        fleet: fleet.clone(),
        mesh: mesh.clone(),
        view,
        nudge: Arc::new(Notify::new()),
        units: s.units.clone(),
        cluster: Arc::default(),
    };

    // Directors added or removed by a committed configuration.
    directors::follow(handle.clone(), transport);

    // Requests from other directors: Raft's, and control requests for the leader.
    let service = fleet.service();
    let h = handle.clone();
    mesh.set_request_handler(move |_peer, body| {
        let (service, h) = (service.clone(), h.clone());
        async move {
            match untag(&body) {
                Some((TAG_RAFT, rest)) => Ok(service.serve(rest).await),
                Some((TAG_CONTROL, rest)) => {
                    let req: Request =
                        serde_json::from_slice(rest).map_err(|e| format!("bad request: {e}"))?;
                    let answer = if h.is_leader() {
                        h.execute(req).await
                    } else {
                        Answer::error("not the leader any more; try again")
                    };
                    serde_json::to_vec(&answer).map_err(|e| e.to_string())
                }
                _ => Err("unknown request kind".into()),
            }
        }
    });

    // One director starts the Raft group, the lowest id, as its only voter: it cannot know
    // yet which of the others run. As leader it adds them as learners and makes them voters
    // once they answer and have caught up (`reconcile_membership`).
    let ids: BTreeSet<NodeId> = all.keys().copied().collect();
    if founder(&ids) == Some(fleet.id()) {
        let me: BTreeMap<NodeId, DirectorNode> = all
            .iter()
            .filter(|(id, _)| **id == fleet.id())
            .map(|(id, node)| (*id, node.clone()))
            .collect();
        match fleet.initialize(&me).await {
            Ok(()) => tracing::info!(members = all.len(), "fleet initialised"),
            Err(FleetError::AlreadyInitialized) => {}
            Err(e) => tracing::warn!(error = %e, "fleet not initialised"),
        }
    }

    // Heartbeat events.
    let h = handle.clone();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            match e {
                Event::PeerUp { name } => {
                    tracing::info!(director = %name, "director up");
                    lock(&h.view).alive.insert(name, (true, wall()));
                    h.nudge.notify_one();
                    h.arbitrate();
                }
                Event::PeerSuspected { name } => {
                    tracing::warn!(director = %name, "director suspected (missed heartbeats)")
                }
                Event::PeerDead {
                    name,
                    confirmed_by,
                    last_heard,
                } => {
                    tracing::warn!(director = %name, ?confirmed_by, "director confirmed dead");
                    lock(&h.view).alive.insert(name.clone(), (false, wall()));
                    h.failover(&name, last_heard);
                    h.arbitrate();
                    h.nudge.notify_one();
                }
                Event::Refused {
                    remote,
                    name,
                    reason,
                } => {
                    tracing::warn!(%remote, ?name, %reason, "mesh connection refused")
                }
                Event::PeerHealth { name, health } => {
                    let detail: HealthDetail =
                        serde_json::from_slice(&health.detail).unwrap_or_default();
                    let mut v = lock(&h.view);
                    v.versions.insert(name.clone(), health.version);
                    if v.masters.get(&name) != Some(&detail.masters) {
                        v.masters.insert(name.clone(), detail.masters.clone());
                        drop(v);
                        h.arbitrate();
                        v = lock(&h.view);
                    }
                    if v.faulty.get(&name) != Some(&detail.faulty_units) {
                        tracing::info!(director = %name, faulty = ?detail.faulty_units, "director's unit health changed");
                        v.faulty.insert(name, detail.faulty_units);
                        drop(v);
                        h.nudge.notify_one();
                    }
                }
            }
        }
    });

    // This director's unit health, for placement here and in the heartbeats.
    let h = handle.clone();
    tokio::spawn(async move {
        let mut last: Option<BTreeSet<String>> = None;
        loop {
            let mut faulty = BTreeSet::new();
            let mut masters = BTreeSet::new();
            let mut held = 0u32;
            for (unit, actor) in actors_by_name(&h.units) {
                if let Ok(ractor::rpc::CallResult::Success(list)) = actor
                    .call(InstanceMsg::Status, Some(Duration::from_secs(1)))
                    .await
                {
                    if list.iter().any(|s| s.fault_by.is_some()) {
                        faulty.insert(unit.clone());
                    }
                    if list
                        .iter()
                        .any(|s| s.state == flotilla_vrrp::machine::State::Master)
                    {
                        masters.insert(unit.clone());
                    }
                    held += list
                        .iter()
                        .filter(|s| s.state == flotilla_vrrp::machine::State::Master)
                        .map(|s| u32::try_from(s.vips.len()).unwrap_or(u32::MAX))
                        .sum::<u32>();
                }
            }
            let changed = last.as_ref() != Some(&faulty);
            {
                let mut v = lock(&h.view);
                let me = v.me.clone();
                if changed {
                    v.faulty.insert(me.clone(), faulty.clone());
                }
                v.masters.insert(me, masters.clone());
            }
            if changed {
                tracing::info!(faulty = ?faulty, "unit health here");
                h.nudge.notify_one();
            }
            let detail = serde_json::to_vec(&HealthDetail {
                faulty_units: faulty.clone(),
                masters,
            })
            .unwrap_or_default();
            h.mesh.set_health(flotilla_cluster::mesh::Health {
                version: env!("CARGO_PKG_VERSION").to_string(),
                load: held,
                detail,
            });
            last = Some(faulty);
            h.arbitrate();
            tokio::time::sleep(UNIT_POLL).await;
        }
    });

    // Committed state: apply each new assignment.
    let h = handle.clone();
    let mut watch = fleet.watch();
    // The epoch this director persisted: it may be stale (the fleet moved its units while it
    // was down), and Raft entries that change no assignment (a new leader's blank entry)
    // would make it look current. The leader places again when a director comes back, so a
    // newer epoch is the sign of being caught up; a fleet where nothing changes is trusted
    // after CATCH_UP_WAIT.
    let epoch_at_start = decode_assignment(&fleet.state()).map(|a| a.epoch);
    let started = Instant::now();
    tokio::spawn(async move {
        let mut applied_epoch: Option<u64> = None;
        loop {
            let state = watch.borrow_and_update().clone();
            // What this director persisted may be stale (the fleet moved its units while it
            // was down): act on assignments only once the leader has sent it something new
            // (the leader re-places when it sees a director come back), or after a while with
            // a leader and nothing new (nothing changed while it was away).
            let m = h.fleet.metrics();
            let newer = decode_assignment(&state).map(|a| a.epoch) > epoch_at_start;
            let fresh = newer || (m.leader.is_some() && started.elapsed() > CATCH_UP_WAIT);
            let caught_up = fresh && m.leader.is_some() && m.last_applied >= m.commit_index;
            if caught_up
                && let Some(a) = decode_assignment(&state)
                && applied_epoch != Some(a.epoch)
            {
                tracing::info!(epoch = a.epoch, "applying placement");
                h.apply(&a);
                applied_epoch = Some(a.epoch);
            }
            h.nudge.notify_one();
            tokio::select! {
                r = watch.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    });

    // The leader's duties, on every change and once a second.
    let h = handle.clone();
    let cfg_json = serde_json::to_string(s.config).unwrap_or_default();
    tokio::spawn(async move {
        let mut wrote_config = false;
        loop {
            if h.is_leader() {
                if !wrote_config && h.fleet.state().config_json.is_none() {
                    match h
                        .fleet
                        .propose(Command::ApplyConfig {
                            json: cfg_json.clone(),
                        })
                        .await
                    {
                        Ok(_) => {
                            tracing::info!("fleet configuration committed");
                            wrote_config = true;
                        }
                        Err(e) => tracing::warn!(error = %e, "configuration not committed yet"),
                    }
                }
                h.reconcile_membership().await;
                h.place_if_leader().await;
            }
            tokio::select! {
                _ = h.nudge.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
    Ok(handle)
}
