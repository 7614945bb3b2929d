//! Fleets of real openraft nodes on real redb files, joined by a `LocalRouter`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use flotilla_config::model::Config;
use tempfile::TempDir;

use super::*;

const WAIT: Duration = Duration::from_secs(10);

fn test_config() -> FleetConfig {
    FleetConfig {
        cluster_name: "test".into(),
        heartbeat: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(150),
        election_timeout_max: Duration::from_millis(300),
        snapshot_after_logs: 5,
        logs_kept_after_snapshot: 0,
        propose_timeout: Duration::from_secs(3),
    }
}

fn member(id: NodeId) -> DirectorNode {
    DirectorNode::new(format!("d{id}"), format!("10.0.0.{id}:7000"))
}

fn fleet_of(ids: impl IntoIterator<Item = NodeId>) -> BTreeMap<NodeId, DirectorNode> {
    ids.into_iter().map(|id| (id, member(id))).collect()
}

fn drain(d: &str) -> Command {
    Command::Drain { director: d.into() }
}

struct TestFleet {
    router: LocalRouter,
    config: FleetConfig,
    dirs: BTreeMap<NodeId, TempDir>,
    nodes: BTreeMap<NodeId, Fleet>,
}

impl TestFleet {
    async fn start(ids: impl IntoIterator<Item = NodeId>, config: FleetConfig) -> Self {
        let mut f = Self {
            router: LocalRouter::new(),
            config,
            dirs: BTreeMap::new(),
            nodes: BTreeMap::new(),
        };
        for id in ids {
            f.dirs.insert(id, tempfile::tempdir().expect("tempdir"));
            f.boot(id).await;
        }
        f
    }

    /// Opens node `id` on its directory (fresh, or as left by `stop`) and puts it on the router.
    async fn boot(&mut self, id: NodeId) {
        let dir = self.dirs[&id].path().to_path_buf();
        let fleet = Fleet::open(&dir, id, self.router.transport(id), self.config.clone())
            .await
            .expect("open fleet");
        self.router.register(id, fleet.service());
        self.nodes.insert(id, fleet);
    }

    async fn stop(&mut self, id: NodeId) {
        self.router.unregister(id);
        let fleet = self.nodes.remove(&id).expect("running");
        fleet.shutdown().await.expect("shutdown");
    }

    fn node(&self, id: NodeId) -> &Fleet {
        &self.nodes[&id]
    }

    /// Waits until one running node leads and every node in `among` names it.
    async fn leader(&self, among: &[NodeId]) -> NodeId {
        let deadline = Instant::now() + WAIT;
        loop {
            let leaders: BTreeSet<Option<NodeId>> = among
                .iter()
                .map(|id| self.node(*id).metrics().leader)
                .collect();
            if let [Some(l)] = leaders.iter().collect::<Vec<_>>()[..]
                && among.contains(l)
                && self.node(*l).metrics().role == Role::Leader
            {
                return *l;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {among:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Proposes on the current leader of `among`, following `NotLeader` (which never commits).
    async fn propose(&self, among: &[NodeId], command: Command) -> CommandReply {
        let deadline = Instant::now() + WAIT;
        loop {
            let l = self.leader(among).await;
            match self.node(l).propose(command.clone()).await {
                Ok(reply) => return reply,
                Err(FleetError::NotLeader { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("propose {command:?} on {l}: {e}"),
            }
        }
    }

    /// Waits until every node in `ids` has applied a state satisfying `pred`.
    async fn converge(&self, ids: &[NodeId], pred: impl Fn(&FleetState) -> bool) {
        for id in ids {
            let mut rx = self.node(*id).watch();
            tokio::time::timeout(WAIT, rx.wait_for(|s| pred(s)))
                .await
                .unwrap_or_else(|_| {
                    panic!("node {id} never converged: {:?}", self.node(*id).state())
                })
                .expect("state channel open");
        }
    }

    async fn shutdown(mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }
}

#[test]
fn voters_are_the_first_five_by_id() {
    assert_eq!(voters(&[]), BTreeSet::new());
    assert_eq!(voters(&[3, 1, 2]), BTreeSet::from([1, 2, 3]));
    assert_eq!(
        voters(&[7, 6, 5, 4, 3, 2, 1]),
        BTreeSet::from([1, 2, 3, 4, 5])
    );
    // Duplicates count once; input order does not matter.
    assert_eq!(
        voters(&[9, 9, 8, 1, 1, 2, 30]),
        BTreeSet::from([1, 2, 8, 9, 30])
    );
    assert_eq!(voters(&[2, 1, 3, 4, 5, 6]), voters(&[6, 5, 4, 3, 2, 1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_directors_commit_and_apply_everywhere() {
    let all = [1, 2, 3];
    let f = TestFleet::start(all, test_config()).await;
    f.node(1)
        .initialize(&fleet_of(all))
        .await
        .expect("initialize");
    assert!(matches!(
        f.node(1).initialize(&fleet_of(all)).await,
        Err(FleetError::AlreadyInitialized)
    ));
    let leader = f.leader(&all).await;

    let json = serde_json::to_string(&Config::default()).expect("config json");
    assert_eq!(
        f.propose(&all, Command::ApplyConfig { json: json.clone() })
            .await,
        CommandReply::ConfigApplied { version: 1 }
    );
    assert_eq!(f.propose(&all, drain("d2")).await, CommandReply::Done);
    let set = |epoch: u64| Command::SetAssignment {
        epoch,
        blob: vec![epoch as u8; 3],
    };
    assert_eq!(f.propose(&all, set(1)).await, CommandReply::Done);
    assert_eq!(f.propose(&all, set(2)).await, CommandReply::Done);
    // A stale epoch commits to the log but changes nothing.
    assert_eq!(
        f.propose(&all, set(1)).await,
        CommandReply::Rejected(Rejection::StaleEpoch {
            current: 2,
            proposed: 1
        })
    );
    // Not even a valid-looking JSON that is not flotilla's model gets proposed.
    assert!(matches!(
        f.node(leader)
            .propose(Command::ApplyConfig {
                json: "{\"x\":1}".into()
            })
            .await,
        Err(FleetError::InvalidConfig(_))
    ));
    // A follower names the leader instead of committing.
    let follower = all
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    match f.node(follower).propose(drain("d3")).await {
        Err(FleetError::NotLeader { leader: named }) => assert_eq!(named, Some(leader)),
        other => panic!("follower proposal: {other:?}"),
    }

    f.converge(&all, |s| s.assignment_epoch() == 2).await;
    for id in all {
        let s = f.node(id).state();
        assert_eq!(s.config_json.as_deref(), Some(json.as_str()));
        assert_eq!(s.config_version, 1);
        assert_eq!(s.config().expect("decodes"), Some(Config::default()));
        assert_eq!(s.drained, BTreeSet::from(["d2".to_string()]));
        assert_eq!(s.assignment, Some((2, vec![2; 3])));
        let m = f.node(id).metrics();
        assert_eq!(m.leader, Some(leader));
        assert_eq!(m.voters, BTreeSet::from(all));
        assert!(m.learners.is_empty());
        assert!(m.commit_index.is_some() && m.last_applied.is_some());
    }
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_leader_is_replaced_and_nothing_committed_is_lost() {
    let all = [1, 2, 3];
    let mut f = TestFleet::start(all, test_config()).await;
    f.node(1)
        .initialize(&fleet_of(all))
        .await
        .expect("initialize");
    f.propose(&all, drain("d1")).await;
    let old = f.leader(&all).await;
    let old_term = f.node(old).metrics().term;

    f.stop(old).await;
    let rest: Vec<NodeId> = all.into_iter().filter(|id| *id != old).collect();
    let new = f.leader(&rest).await;
    assert_ne!(new, old);
    assert!(f.node(new).metrics().term > old_term);
    assert!(f.node(new).state().drained.contains("d1"));
    assert_eq!(f.propose(&rest, drain("d9")).await, CommandReply::Done);
    f.converge(&rest, |s| s.drained.len() == 2).await;

    // The old leader comes back from its file as a follower and catches up.
    f.boot(old).await;
    f.converge(&all, |s| {
        s.drained.contains("d9") && s.drained.contains("d1")
    })
    .await;
    assert_eq!(f.leader(&all).await, new);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up_from_a_snapshot() {
    let all = [1, 2, 3];
    let mut f = TestFleet::start(all, test_config()).await;
    f.node(1)
        .initialize(&fleet_of(all))
        .await
        .expect("initialize");
    f.propose(&all, drain("before")).await;
    let leader = f.leader(&all).await;
    let follower = all
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    f.converge(&[follower], |s| s.drained.contains("before"))
        .await;

    f.stop(follower).await;
    let up: Vec<NodeId> = all.into_iter().filter(|id| *id != follower).collect();
    for epoch in 1..=12 {
        f.propose(
            &up,
            Command::SetAssignment {
                epoch,
                blob: vec![0; 16],
            },
        )
        .await;
    }
    // Snapshot every 5 entries and keep none behind it: the follower's next entry is gone.
    let now = f.leader(&up).await;
    let stopped_at = f
        .node(now)
        .wait_for(WAIT, |m| m.purged_index.is_some_and(|p| p >= 10))
        .await
        .expect("leader purged its log");
    assert!(stopped_at.snapshot_index.is_some());

    // Reopened from its redb file: its own state is there before any catch-up...
    f.boot(follower).await;
    assert!(f.node(follower).state().drained.contains("before"));
    // ...and the rest arrives as a snapshot.
    f.converge(&all, |s| s.assignment_epoch() == 12).await;
    f.node(follower)
        .wait_for(WAIT, |m| {
            m.snapshots_installed >= 1 && m.snapshot_index.is_some_and(|i| i >= 10)
        })
        .await
        .expect("follower installed the leader's snapshot");
    assert_eq!(f.node(follower).state(), f.node(now).state());

    // Still a working member: a new entry reaches it through the log.
    f.propose(&all, drain("after")).await;
    f.converge(&all, |s| s.drained.contains("after")).await;
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_director_keeps_vote_log_and_state_across_restarts() {
    let mut f = TestFleet::start([1], test_config()).await;
    f.node(1)
        .initialize(&fleet_of([1]))
        .await
        .expect("initialize");
    f.propose(&[1], drain("x")).await;
    f.propose(
        &[1],
        Command::Pin {
            unit: "VI_1".into(),
            director: "d1".into(),
        },
    )
    .await;
    let before = f.node(1).metrics();
    f.stop(1).await;

    f.boot(1).await;
    // The state machine is read from the file before Raft starts: no replay, no leader needed.
    let s = f.node(1).state();
    assert!(s.drained.contains("x"));
    assert_eq!(s.pins.get("VI_1").map(String::as_str), Some("d1"));
    // The log and vote come back too (the store test checks each record; here, Raft sees
    // them): metrics published after loading show the old log, at no lower term.
    let after = f
        .node(1)
        .wait_for(WAIT, |m| m.last_log_index >= before.last_log_index)
        .await
        .expect("log loaded");
    // A new term after re-election appends a blank entry, hence `>=`.
    assert!(after.term >= before.term);
    assert!(after.last_applied >= before.last_applied);
    // Already initialized: it elects itself again and keeps committing.
    assert!(matches!(
        f.node(1).initialize(&fleet_of([1])).await,
        Err(FleetError::AlreadyInitialized)
    ));
    f.propose(&[1], drain("y")).await;
    assert_eq!(f.node(1).state().drained.len(), 2);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_cannot_commit_and_converges_after_healing() {
    let all = [1, 2, 3];
    let config = FleetConfig {
        propose_timeout: Duration::from_millis(1500),
        ..test_config()
    };
    let f = TestFleet::start(all, config).await;
    f.node(1)
        .initialize(&fleet_of(all))
        .await
        .expect("initialize");
    f.propose(&all, drain("both-sides")).await;
    let cut_off = f.leader(&all).await;
    let majority: Vec<NodeId> = all.into_iter().filter(|id| *id != cut_off).collect();

    f.router.partition(&[cut_off], &majority);
    // The isolated leader cannot reach a quorum: its proposal never commits.
    let lonely = f.node(cut_off).propose(drain("minority")).await;
    assert!(
        matches!(
            lonely,
            Err(FleetError::Timeout(_)) | Err(FleetError::NotLeader { .. })
        ),
        "{lonely:?}"
    );
    // The majority elects its own leader and carries on.
    let new = f.leader(&majority).await;
    assert_ne!(new, cut_off);
    f.propose(&majority, drain("majority")).await;
    assert!(!f.node(cut_off).state().drained.contains("majority"));

    f.router.heal();
    f.converge(&all, |s| s.drained.contains("majority")).await;
    let leader = f.leader(&all).await;
    assert!(majority.contains(&leader));
    // The minority's entry was never committed, so it was overwritten everywhere.
    for id in all {
        assert!(
            !f.node(id).state().drained.contains("minority"),
            "node {id}"
        );
        assert_eq!(f.node(id).state(), f.node(leader).state());
    }
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_directors_make_five_voters_and_two_learners() {
    let all: Vec<NodeId> = (1..=7).collect();
    let mut f = TestFleet::start(all.iter().copied(), test_config()).await;
    f.node(1)
        .initialize(&fleet_of(all.iter().copied()))
        .await
        .expect("initialize");
    let voting: Vec<NodeId> = (1..=5).collect();
    let leader = f.leader(&voting).await;
    f.node(leader)
        .reconcile_membership(&fleet_of(all.iter().copied()))
        .await
        .expect("reconcile 7");
    f.propose(&all, drain("seen-by-all")).await;
    f.converge(&all, |s| s.drained.contains("seen-by-all"))
        .await;
    for id in &all {
        let m = f
            .node(*id)
            .wait_for(WAIT, |m| m.learners.len() == 2)
            .await
            .expect("membership applied");
        assert_eq!(m.voters, BTreeSet::from([1, 2, 3, 4, 5]), "node {id}");
        assert_eq!(m.learners, BTreeSet::from([6, 7]), "node {id}");
    }
    assert_eq!(f.node(6).metrics().role, Role::Learner);
    // Reconciling an unchanged membership proposes nothing.
    let log_before = f.node(leader).metrics().last_log_index;
    f.node(leader)
        .reconcile_membership(&fleet_of(all.iter().copied()))
        .await
        .expect("reconcile again");
    assert_eq!(f.node(leader).metrics().last_log_index, log_before);

    // Remove director 3 (a voter, maybe the leader): 6 is promoted, 7 stays a learner.
    let remaining: Vec<NodeId> = all.iter().copied().filter(|id| *id != 3).collect();
    let leader = f.leader(&remaining).await;
    f.node(leader)
        .reconcile_membership(&fleet_of(remaining.iter().copied()))
        .await
        .expect("reconcile without 3");
    f.stop(3).await;
    let leader = f.leader(&[1, 2, 4, 5, 6]).await;
    let m = f
        .node(leader)
        .wait_for(WAIT, |m| !m.voters.contains(&3) && !m.learners.contains(&3))
        .await
        .expect("3 removed");
    assert_eq!(m.voters, BTreeSet::from([1, 2, 4, 5, 6]));
    assert_eq!(m.learners, BTreeSet::from([7]));

    // Director 7 moves to a new address: same name, same id, updated member record.
    let mut moved = fleet_of(remaining.iter().copied());
    moved.insert(7, DirectorNode::new("d7", "10.9.9.7:7000"));
    f.node(leader)
        .reconcile_membership(&moved)
        .await
        .expect("reconcile moved 7");
    for id in &remaining {
        let m = f
            .node(*id)
            .wait_for(WAIT, |m| m.members.get(&7) == moved.get(&7))
            .await
            .expect("new address applied");
        assert_eq!(m.members, moved, "node {id}");
        assert_eq!(m.learners, BTreeSet::from([7]));
    }
    f.propose(&remaining, drain("after-removal")).await;
    f.converge(&remaining, |s| s.drained.contains("after-removal"))
        .await;
    f.shutdown().await;
}

/// Prints the commit latency figure: propose on the leader → applied on all three directors.
/// Run with `--nocapture` to see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_latency_in_process() {
    let all = [1, 2, 3];
    let f = TestFleet::start(all, test_config()).await;
    f.node(1)
        .initialize(&fleet_of(all))
        .await
        .expect("initialize");
    let leader = f.leader(&all).await;
    // Warm up: a first commit in this term.
    f.propose(&all, drain("warm")).await;
    let mut watches: Vec<_> = all.iter().map(|id| f.node(*id).watch()).collect();
    let mut on_leader = Vec::new();
    let mut on_all = Vec::new();
    for epoch in 1..=100u64 {
        let t0 = Instant::now();
        let reply = f
            .node(leader)
            .propose(Command::SetAssignment {
                epoch,
                blob: vec![0; 64],
            })
            .await
            .expect("commit");
        on_leader.push(t0.elapsed());
        assert_eq!(reply, CommandReply::Done);
        for rx in &mut watches {
            rx.wait_for(|s| s.assignment_epoch() >= epoch)
                .await
                .expect("state channel");
        }
        on_all.push(t0.elapsed());
    }
    for (what, samples) in [
        ("propose → reply (applied on the leader)", &mut on_leader),
        ("propose → applied on all 3", &mut on_all),
    ] {
        samples.sort();
        println!(
            "raft commit latency, {what}, in-process, redb with fsync, n={}: median {:?}, p90 {:?}, max {:?}",
            samples.len(),
            samples[samples.len() / 2],
            samples[samples.len() * 9 / 10],
            samples[samples.len() - 1]
        );
    }
    f.shutdown().await;
}
