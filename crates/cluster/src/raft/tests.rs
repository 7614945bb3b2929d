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
        live_within: Duration::from_millis(500),
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

    /// Reconciles the membership to `desired` on the leader of `among` every 100 ms, as the
    /// agent's leader does every second, until the leader's metrics satisfy `pred`.
    async fn reconcile_until(
        &self,
        among: &[NodeId],
        desired: &BTreeMap<NodeId, DirectorNode>,
        pred: impl Fn(&FleetMetrics) -> bool,
    ) -> FleetMetrics {
        let deadline = Instant::now() + WAIT;
        loop {
            let l = self.leader(among).await;
            match self.node(l).reconcile_membership(desired).await {
                Ok(_) | Err(FleetError::NotLeader { .. }) => {}
                Err(e) => panic!("reconcile on {l}: {e}"),
            }
            let m = self.node(l).metrics();
            if pred(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "membership never got there: voters {:?}, learners {:?}",
                m.voters,
                m.learners
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn shutdown(mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }
}

fn ids<const N: usize>(ids: [NodeId; N]) -> BTreeSet<NodeId> {
    BTreeSet::from(ids)
}

#[test]
fn voters_keep_their_seats_and_free_seats_go_to_ready_learners_lowest_first() {
    let none = BTreeSet::new();
    assert_eq!(voters(&none, &none, &none), none);
    // A new fleet: everybody ready, the five lowest ids.
    let seven: BTreeSet<NodeId> = (1..=7).rev().collect();
    assert_eq!(voters(&none, &seven, &seven), ids([1, 2, 3, 4, 5]));
    // Members that are not ready (not running, or behind) stay learners.
    assert_eq!(voters(&ids([1]), &seven, &ids([1])), ids([1]));
    assert_eq!(
        voters(&ids([1, 2, 3]), &seven, &ids([1, 7])),
        ids([1, 2, 3, 7])
    );
    // Current voters keep their seats even when they are down; ready learners only fill
    // free seats, lowest id first.
    assert_eq!(
        voters(&ids([3, 5, 7]), &seven, &ids([1, 2, 4, 6])),
        ids([1, 2, 3, 5, 7])
    );
    assert_eq!(
        voters(&ids([2, 3, 4, 5, 6]), &seven, &seven),
        ids([2, 3, 4, 5, 6])
    );
    // A voter removed from the configuration loses its seat; the lowest ready learner takes it.
    let without_3: BTreeSet<NodeId> = seven.iter().copied().filter(|i| *i != 3).collect();
    assert_eq!(
        voters(&ids([1, 2, 3, 4, 5]), &without_3, &ids([7, 6])),
        ids([1, 2, 4, 5, 6])
    );
    // A ready director that is not a member is never chosen.
    assert_eq!(voters(&ids([1]), &ids([1, 2]), &ids([1, 9])), ids([1]));
    // Nobody left and nobody ready: empty, and the caller changes nothing.
    assert_eq!(voters(&ids([1, 2]), &ids([3]), &none), none);
    assert_eq!(founder(&seven), Some(1));
    assert_eq!(founder(&none), None);
}

mod voter_properties {
    use proptest::prelude::*;

    use super::*;

    fn set() -> impl Strategy<Value = BTreeSet<NodeId>> {
        proptest::collection::btree_set(0u64..20, 0..12)
    }

    proptest! {
        #[test]
        fn voters_follow_the_rules(current in set(), members in set(), ready in set()) {
            let chosen = voters(&current, &members, &ready);
            // Never more than five, never a non-member.
            prop_assert!(chosen.len() <= MAX_VOTERS);
            prop_assert!(chosen.is_subset(&members));
            let kept: BTreeSet<NodeId> = current.intersection(&members).copied().collect();
            // Every voter that stays a member keeps its seat (at most five of them).
            if kept.len() <= MAX_VOTERS {
                prop_assert!(kept.is_subset(&chosen));
            } else {
                prop_assert_eq!(&chosen, &kept.iter().copied().take(MAX_VOTERS).collect());
            }
            // A new voter is always ready: a learner not running or behind is never promoted.
            for id in chosen.difference(&current) {
                prop_assert!(ready.contains(id), "{} promoted but not ready", id);
            }
            // Seats are filled while ready learners are left, lowest id first.
            let candidates: BTreeSet<NodeId> =
                ready.intersection(&members).filter(|id| !kept.contains(id)).copied().collect();
            let promoted: BTreeSet<NodeId> = chosen.difference(&kept).copied().collect();
            prop_assert_eq!(
                promoted.len(),
                candidates.len().min(MAX_VOTERS.saturating_sub(kept.len()))
            );
            let passed_over = candidates.difference(&promoted).min();
            if let (Some(skipped), Some(highest)) = (passed_over, promoted.last()) {
                prop_assert!(skipped > highest);
            }
            // The same inputs give the same answer (no hidden state).
            prop_assert_eq!(&chosen, &voters(&current, &members, &ready));
        }
    }
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
    assert!(
        !f.node(leader)
            .reconcile_membership(&fleet_of(all.iter().copied()))
            .await
            .expect("reconcile again")
    );
    assert_eq!(f.node(leader).metrics().last_log_index, log_before);

    // Remove director 3 (a voter, maybe the leader): 6 (live and caught up, lowest id) is
    // promoted, 7 stays a learner.
    let remaining: Vec<NodeId> = all.iter().copied().filter(|id| *id != 3).collect();
    f.reconcile_until(&remaining, &fleet_of(remaining.iter().copied()), |m| {
        !m.members.contains_key(&3) && m.voters.len() == MAX_VOTERS
    })
    .await;
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

/// Directors added to the configuration but not running stay learners: the three that run
/// keep the quorum. One that starts later becomes a voter once it has caught up; a voter that
/// dies stays a voter (no demotion on liveness).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_directors_vote_only_once_running_and_caught_up() {
    let all: Vec<NodeId> = (1..=5).collect();
    let running = [1, 2, 3];
    let mut f = TestFleet::start(all.iter().copied(), test_config()).await;
    // 4 and 5 have their directories but are not running (nothing answers for them).
    for id in [4, 5] {
        f.stop(id).await;
    }
    // The founder alone, as the agent starts a fleet; 2 and 3 join as learners and are
    // promoted once they answer and have the log.
    f.node(1)
        .initialize(&fleet_of([1]))
        .await
        .expect("initialize");
    let three = fleet_of(running);
    let m = f
        .reconcile_until(&[1], &three, |m| m.voters == BTreeSet::from(running))
        .await;
    assert!(m.learners.is_empty());
    f.propose(&running, drain("before-growing")).await;

    // `config apply` adds 4 and 5: learners, and they stay learners while not running.
    let five = fleet_of(all.iter().copied());
    f.reconcile_until(&running, &five, |m| m.learners == BTreeSet::from([4, 5]))
        .await;
    for _ in 0..10 {
        let l = f.leader(&running).await;
        f.node(l)
            .reconcile_membership(&five)
            .await
            .expect("reconcile");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in running {
        let m = f.node(id).metrics();
        assert_eq!(m.voters, BTreeSet::from(running), "node {id}");
        assert_eq!(m.learners, BTreeSet::from([4, 5]), "node {id}");
    }
    // Commits need only the three that run.
    f.propose(&running, drain("while-4-and-5-are-down")).await;
    // Enough entries that a cold 4 is more than one append behind when it starts.
    for epoch in 1..=(CAUGHT_UP_WITHIN + 20) {
        f.propose(
            &running,
            Command::SetAssignment {
                epoch,
                blob: vec![1; 8],
            },
        )
        .await;
    }

    // 4 starts: promoted once caught up (it has every entry by then); 5 stays a learner.
    f.boot(4).await;
    let four_voting = BTreeSet::from([1, 2, 3, 4]);
    let m = f
        .reconcile_until(&running, &five, |m| m.voters == four_voting)
        .await;
    assert_eq!(m.learners, BTreeSet::from([5]));
    f.converge(&[4], |s| s.drained.contains("while-4-and-5-are-down"))
        .await;
    f.node(4)
        .wait_for(WAIT, |m| m.voters == four_voting)
        .await
        .expect("4 sees itself voting");

    // 2 dies for good but stays in the configuration: it keeps its seat (3 of 4 voters run,
    // a quorum), and 5, not running, is still not promoted in its place.
    f.stop(2).await;
    let up = [1, 3, 4];
    for _ in 0..10 {
        let l = f.leader(&up).await;
        match f.node(l).reconcile_membership(&five).await {
            Ok(_) | Err(FleetError::NotLeader { .. }) => {}
            Err(e) => panic!("reconcile: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let l = f.leader(&up).await;
    let m = f.node(l).metrics();
    assert_eq!(m.voters, four_voting);
    assert_eq!(m.learners, BTreeSet::from([5]));
    f.propose(&up, drain("without-2")).await;
    f.converge(&up, |s| s.drained.contains("without-2")).await;
    f.shutdown().await;
}

/// A director removed from the configuration while it keeps running (as `config apply` does
/// to a director nobody stopped) can be added back as it is, without a restart: it becomes a
/// learner, catches up, and gets its vote back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_director_that_keeps_running_can_be_added_back() {
    let all = [1, 2, 3];
    let f = TestFleet::start(all, test_config()).await;
    f.node(1)
        .initialize(&fleet_of(all))
        .await
        .expect("initialize");
    f.propose(&all, drain("before")).await;

    // 3 leaves the configuration (it may be the leader: then it commits its own removal).
    let two = [1, 2];
    f.reconcile_until(&all, &fleet_of(two), |m| !m.members.contains_key(&3))
        .await;
    f.propose(&two, drain("without-3")).await;
    f.converge(&two, |s| s.drained.contains("without-3")).await;
    let m = f.node(f.leader(&two).await).metrics();
    assert_eq!(m.voters, BTreeSet::from(two));
    assert!(m.learners.is_empty());
    // Still running, it hears nothing new.
    assert!(!f.node(3).state().drained.contains("without-3"));

    // Added back: a learner first, then a voter once it answers and has caught up.
    let m = f
        .reconcile_until(&two, &fleet_of(all), |m| m.voters == BTreeSet::from(all))
        .await;
    assert!(m.learners.is_empty());
    f.converge(&all, |s| s.drained.contains("without-3")).await;
    f.node(3)
        .wait_for(WAIT, |m| m.voters == BTreeSet::from(all))
        .await
        .expect("3 sees itself voting again");
    f.propose(&all, drain("re-added")).await;
    f.converge(&all, |s| s.drained.contains("re-added")).await;
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
