//! The rules of placement as properties over random fleets: 1–64 directors, 0–500 units of
//! weight 1–20, random liveness, drains, per-unit eligibility, `nopreempt`, pins, previous
//! assignments and event sequences.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;

/// A small deterministic generator: proptest draws a seed, the fleet's details come from it,
/// so a case stays small to shrink while a fleet has thousands of eligibility bits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        engine::mix(self.0)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap()
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Debug, Clone)]
struct Shape {
    dirs: usize,
    weights: Vec<u32>,
    seed: u64,
    down: u64,
    drained: u64,
    sick: u64,
    nopreempt: u64,
    pins: usize,
    hold_down_ms: u64,
    rate: u32,
}

/// `uniform`: every up director is eligible for every unit, and no unit is `nopreempt` or
/// pinned — the fleets for which exact balance is promised.
fn shape(uniform: bool, max_units: usize) -> impl Strategy<Value = Shape> {
    (
        1usize..=64,
        proptest::collection::vec(1u32..=20, 0..=max_units),
        any::<u64>(),
        (0u64..40, 0u64..20),
        if uniform {
            Just((0u64, 0u64, 0usize)).boxed()
        } else {
            (
                prop_oneof![Just(0u64), 1u64..10, 10u64..60],
                0u64..40,
                0usize..6,
            )
                .boxed()
        },
        (0u64..60_000, 1u32..=50),
    )
        .prop_map(
            |(dirs, weights, seed, (down, drained), (sick, nopreempt, pins), (hold, rate))| Shape {
                dirs,
                weights,
                seed,
                down,
                drained,
                sick,
                nopreempt,
                pins,
                hold_down_ms: hold,
                rate,
            },
        )
}

fn dname(i: usize) -> String {
    format!("d{i:02}")
}

fn uname(i: usize) -> String {
    format!("u{i:03}")
}

/// The fleet a shape describes; every director up since `since` when given, else since a
/// random time in the first minute.
fn build(s: &Shape, since: Option<Time>) -> Input {
    let mut rng = Rng(s.seed);
    let units: BTreeMap<String, Unit> = s
        .weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let unit = Unit {
                weight: w,
                nopreempt: rng.chance(s.nopreempt),
            };
            (uname(i), unit)
        })
        .collect();
    let directors = (0..s.dirs)
        .map(|i| {
            let mut d = Director::up(since.unwrap_or(Duration::from_millis(
                u64::try_from(rng.below(60_000)).unwrap(),
            )));
            if since.is_none() {
                d.alive = !rng.chance(s.down);
                d.drained = rng.chance(s.drained);
            }
            d.ineligible_for = units
                .keys()
                .filter(|_| rng.chance(s.sick))
                .cloned()
                .collect();
            (dname(i), d)
        })
        .collect();
    let mut pins = BTreeMap::new();
    for _ in 0..s.pins {
        if !units.is_empty() {
            pins.insert(uname(rng.below(units.len())), dname(rng.below(s.dirs + 1)));
        }
    }
    Input {
        units,
        directors,
        pins,
        settings: Settings {
            hold_down: Duration::from_millis(s.hold_down_ms),
            max_moves_per_second: s.rate,
        },
    }
}

/// Any assignment at all: owners that are down, drained, ineligible or unknown, rankings in
/// any order with gaps and repeats, recent moves at any time.
fn random_previous(input: &Input, seed: u64) -> Option<Assignment> {
    let mut rng = Rng(seed);
    if rng.chance(20) {
        return None;
    }
    let dirs: Vec<String> = input
        .directors
        .keys()
        .cloned()
        .chain(["gone".to_string()])
        .collect();
    let mut ranks = BTreeMap::new();
    for u in input.units.keys() {
        if rng.chance(5) {
            continue;
        }
        let n = rng.below(dirs.len() + 1);
        let r = (0..n)
            .map(|_| dirs[rng.below(dirs.len())].clone())
            .collect();
        ranks.insert(u.clone(), r);
    }
    if rng.chance(20) {
        ranks.insert("removed".to_string(), vec![dirs[0].clone()]);
    }
    let recent_moves = (0..rng.below(30))
        .map(|_| RecentMove {
            at: Duration::from_millis(u64::try_from(rng.below(200_000)).unwrap()),
            unit: uname(rng.below(10)),
        })
        .collect();
    Some(Assignment {
        epoch: u64::try_from(rng.below(1000)).unwrap(),
        ranks,
        recent_moves,
    })
}

fn wmax(input: &Input) -> u64 {
    input.units.values().map(Unit::load).max().unwrap_or(1)
}

fn loads(input: &Input, a: &Assignment) -> BTreeMap<String, u64> {
    let mut l: BTreeMap<String, u64> = input.directors.keys().map(|d| (d.clone(), 0)).collect();
    for (u, r) in &a.ranks {
        if let (Some(o), Some(unit)) = (r.first(), input.units.get(u)) {
            *l.entry(o.clone()).or_insert(0) += unit.load();
        }
    }
    l
}

fn pinned_here(input: &Input, unit: &str) -> bool {
    input
        .pins
        .get(unit)
        .is_some_and(|d| input.eligible(d, unit))
}

fn settled(input: &Input, director: &str, now: Time) -> bool {
    input.directors.get(director).is_some_and(|d| {
        d.alive && !d.drained && now >= d.since.saturating_add(input.settings.hold_down)
    })
}

/// Rule 2, plus: moves are exactly the owner changes, with truthful reasons.
fn check_valid(input: &Input, prev: Option<&Assignment>, plan: &Plan) -> Result<(), TestCaseError> {
    let a = &plan.assignment;
    prop_assert!(a.ranks.keys().eq(input.units.keys()));
    let mut unplaced = Vec::new();
    for (u, r) in &a.ranks {
        let eligible: BTreeSet<&String> = input
            .directors
            .keys()
            .filter(|d| input.eligible(d, u))
            .collect();
        let ranked: BTreeSet<&String> = r.iter().collect();
        prop_assert_eq!(ranked.len(), r.len(), "a director ranked twice for {}", u);
        prop_assert_eq!(&ranked, &eligible, "ranking of {}", u);
        if r.is_empty() {
            unplaced.push(u.clone());
        }
        if pinned_here(input, u) {
            prop_assert_eq!(r.first(), input.pins.get(u));
        }
    }
    prop_assert_eq!(&plan.unplaced, &unplaced);

    let before = |u: &str| prev.and_then(|p| p.owner(u));
    let mut moved = BTreeSet::new();
    for m in &plan.moves {
        prop_assert!(moved.insert(m.unit.clone()), "{} moved twice", m.unit);
        prop_assert_eq!(a.owner(&m.unit), Some(m.to.as_str()));
        prop_assert_eq!(m.from.as_deref(), before(&m.unit));
        let from = m.from.as_deref().and_then(|f| input.directors.get(f));
        match m.why {
            MoveReason::Unowned => prop_assert!(m.from.is_none()),
            MoveReason::OwnerDown => prop_assert!(from.is_none_or(|d| !d.alive)),
            MoveReason::OwnerDrained => prop_assert!(from.is_some_and(|d| d.alive && d.drained)),
            MoveReason::OwnerIneligible => prop_assert!(
                from.is_some_and(|d| d.alive && !d.drained && d.ineligible_for.contains(&m.unit))
            ),
            MoveReason::Pinned => prop_assert_eq!(input.pins.get(&m.unit), Some(&m.to)),
            MoveReason::Rebalance => {
                // Rule 5 and hold-down: only a movable unit, from an owner that could have
                // kept it, to a settled director.
                prop_assert!(
                    !input.units[&m.unit].nopreempt,
                    "nopreempt {} rebalanced",
                    m.unit
                );
                prop_assert!(!pinned_here(input, &m.unit));
                prop_assert!(input.eligible(m.from.as_deref().unwrap(), &m.unit));
                prop_assert!(
                    settled(input, &m.to, plan.at),
                    "{} moved to {} in hold-down",
                    m.unit,
                    m.to
                );
            }
        }
    }
    for u in input.units.keys() {
        if !moved.contains(u) && a.owner(u).is_some() {
            prop_assert_eq!(
                a.owner(u),
                before(u),
                "{} changed owner without a move; was ranked {:?}\n{}",
                u,
                prev.and_then(|p| p.ranks.get(u)),
                plan
            );
        }
    }
    // Rule 6: drained directors own nothing and are ranked nowhere.
    for (name, d) in &input.directors {
        if d.drained {
            prop_assert!(a.ranks.values().all(|r| !r.contains(name)));
        }
    }
    prop_assert!(plan.deferred.iter().all(|d| d.not_before > plan.at));
    Ok(())
}

/// Rule 4: the same inputs again move nothing and commit nothing new.
fn check_idempotent(input: &Input, plan: &Plan) -> Result<(), TestCaseError> {
    let again = place(input, Some(&plan.assignment), plan.at);
    prop_assert!(again.moves.is_empty(), "second call moved: {}", again);
    prop_assert_eq!(&again.assignment, &plan.assignment);
    prop_assert!(!again.changed());
    Ok(())
}

/// Rule 3 as proven: no director is more than the largest unit weight heavier than another
/// director eligible for one of its movable (not `nopreempt`, not pinned) units.
fn check_balanced(input: &Input, a: &Assignment) -> Result<(), TestCaseError> {
    let l = loads(input, a);
    let w = wmax(input);
    for (u, r) in &a.ranks {
        let Some(owner) = r.first() else { continue };
        if input.units[u].nopreempt || pinned_here(input, u) {
            continue;
        }
        for t in r {
            prop_assert!(
                l[owner] <= l[t] + w,
                "{} on {} ({}) could go to {} ({}), largest weight {}",
                u,
                owner,
                l[owner],
                t,
                l[t],
                w
            );
        }
    }
    Ok(())
}

/// max − min load over up directors.
fn spread(input: &Input, a: &Assignment) -> u64 {
    let l = loads(input, a);
    let up: Vec<u64> = input
        .directors
        .iter()
        .filter(|(_, d)| d.alive && !d.drained)
        .map(|(n, _)| l[n])
        .collect();
    up.iter().max().unwrap_or(&0) - up.iter().min().unwrap_or(&0)
}

/// Calls `place` at each wake-up until none is asked for; returns every plan.
fn quiesce(input: &Input, prev: Option<Assignment>, mut now: Time) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    let mut prev = prev;
    for _ in 0..5_000 {
        let plan = place(input, prev.as_ref(), now);
        let wake = plan.next_wakeup;
        prev = Some(plan.assignment.clone());
        plans.push(plan);
        match wake {
            Some(t) => now = t,
            None => return plans,
        }
    }
    panic!("placement did not settle in 5,000 wake-ups");
}

/// Rate limit: whenever a plan makes a rebalancing move, the planned moves of the last
/// second, its own included, are at most `max_moves_per_second`.
fn check_rate(plans: &[Plan], rate: u32) -> Result<(), TestCaseError> {
    for (i, p) in plans.iter().enumerate() {
        if p.moves.iter().any(|m| m.why == MoveReason::Rebalance) {
            // Plans made after this one at the same time may add unlimited drains and pins.
            let in_window = plans[..=i]
                .iter()
                .filter(|q| q.at + RATE_WINDOW > p.at)
                .flat_map(|q| &q.moves)
                .filter(|m| m.why.is_planned())
                .count();
            prop_assert!(
                in_window <= rate as usize,
                "{} planned moves in 1 s",
                in_window
            );
        }
    }
    Ok(())
}

/// `cases` per property (each case settles whole fleets, slow in a debug build), unless
/// `PROPTEST_CASES` asks for a longer run.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Rules 1, 2, 4 (idempotence) and 5 on one call from any previous assignment.
    #[test]
    fn one_call_is_deterministic_valid_and_idempotent(
        s in shape(false, 500), prev_seed in any::<u64>(), now_ms in 0u64..120_000,
    ) {
        let input = build(&s, None);
        let prev = random_previous(&input, prev_seed);
        let now = Duration::from_millis(now_ms);
        let plan = place(&input, prev.as_ref(), now);
        prop_assert_eq!(&plan, &place(&input.clone(), prev.clone().as_ref(), now));
        // Nothing depends on where the input lives in memory.
        let input2: Input = postcard::from_bytes(&postcard::to_stdvec(&input).unwrap()).unwrap();
        prop_assert_eq!(&plan, &place(&input2, prev.as_ref(), now));
        prop_assert_eq!(plan.to_string(), place(&input2, prev.as_ref(), now).to_string());
        check_valid(&input, prev.as_ref(), &plan)?;
        check_idempotent(&input, &plan)?;
        // Rule 3 holds for any plan that defers nothing, not only at the end of a settling.
        if plan.deferred.is_empty() {
            check_balanced(&input, &plan.assignment)?;
        }
        // Rate limit, counting the previous assignment's window.
        if plan.moves.iter().any(|m| m.why == MoveReason::Rebalance) {
            let recent = prev.iter().flat_map(|p| &p.recent_moves)
                .filter(|m| m.at.min(now) + RATE_WINDOW > now)
                .count();
            let planned = plan.moves.iter().filter(|m| m.why.is_planned()).count();
            prop_assert!(recent + planned <= s.rate as usize);
        }
        let epoch = prev.as_ref().map_or(1, |p| if plan.changed() { p.epoch + 1 } else { p.epoch });
        prop_assert_eq!(plan.assignment.epoch, epoch);
    }

}

proptest! {
    #![proptest_config(config(48))]

    /// Rule 3: once nothing is deferred, the local balance guarantee holds; with uniform
    /// eligibility (and no nopreempt or pins) max − min ≤ the largest weight.
    #[test]
    fn settled_placements_are_balanced(
        s in shape(false, 500), prev_seed in any::<u64>(), now_ms in 0u64..120_000,
    ) {
        let input = build(&s, None);
        let plans = quiesce(&input, random_previous(&input, prev_seed), Duration::from_millis(now_ms));
        let last = plans.last().unwrap();
        prop_assert!(last.deferred.is_empty());
        check_balanced(&input, &last.assignment)?;
        check_rate(&plans[1..], s.rate)?;
        // Quiet from here on, whatever the time.
        let later = place(&input, Some(&last.assignment), last.at + Duration::from_secs(3600));
        prop_assert!(later.moves.is_empty());
        prop_assert_eq!(&later.assignment, &last.assignment);
    }

    #[test]
    fn uniform_fleets_settle_within_one_unit_weight(
        s in shape(true, 500), prev_seed in any::<u64>(), now_ms in 0u64..120_000,
    ) {
        let input = build(&s, None);
        let plans = quiesce(&input, random_previous(&input, prev_seed), Duration::from_millis(now_ms));
        let last = plans.last().unwrap();
        prop_assert!(spread(&input, &last.assignment) <= wmax(&input), "{}", last);
    }

}

proptest! {
    #![proptest_config(config(64))]

    /// Rules 4 and 7: a director's death moves its units to their rank 2 (VRRP's choice);
    /// with uniform eligibility nothing else moves, the survivors stay within one unit weight,
    /// and the moved load is spread within two unit weights. Without it the same plan may
    /// rebalance, a unit that just failed over too, which `place` reports as one move from the
    /// dead owner: VRRP's choice is checked on a plan whose rate window leaves no room.
    #[test]
    fn a_death_moves_only_the_dead_director_s_units_to_rank_two(
        s in shape(false, 500), pick in any::<prop::sample::Index>(),
    ) {
        let uniform = s.sick == 0 && s.nopreempt == 0 && s.pins == 0;
        let mut input = build(&s, Some(Duration::ZERO));
        let t0 = Duration::from_secs(100);
        let before = quiesce(&input, None, t0).pop().unwrap();
        let victim = dname(pick.index(s.dirs));
        input.directors.get_mut(&victim).unwrap().alive = false;
        let at = before.at + Duration::from_millis(1);
        let owned: BTreeSet<&str> = before.assignment.owned_by(&victim).collect();
        // The failover alone: no room to rebalance, so every move is VRRP's.
        let mut no_room = before.assignment.clone();
        no_room.recent_moves = vec![RecentMove { at, unit: uname(0) }; s.rate as usize];
        let failover = place(&input, Some(&no_room), at);
        for m in &failover.moves {
            prop_assert!(owned.contains(m.unit.as_str()), "{} was not {}'s", m.unit, victim);
            prop_assert_eq!(m.why, MoveReason::OwnerDown);
            prop_assert_eq!(&before.assignment.ranks[&m.unit][1], &m.to, "not VRRP's choice");
        }
        let plan = place(&input, Some(&before.assignment), at);
        check_valid(&input, Some(&before.assignment), &plan)?;
        let mut moved = BTreeMap::new();
        let mut rebalanced = 0;
        for m in &plan.moves {
            if m.why == MoveReason::Rebalance {
                prop_assert!(!uniform, "uniform fleet rebalanced after a death: {}", plan);
                rebalanced += 1;
                continue;
            }
            prop_assert!(owned.contains(m.unit.as_str()), "{} was not {}'s", m.unit, victim);
            prop_assert_eq!(m.why, MoveReason::OwnerDown);
            let rank2 = &before.assignment.ranks[&m.unit][1];
            prop_assert_eq!(failover.assignment.owner(&m.unit), Some(rank2.as_str()));
            if *rank2 != m.to {
                // Failed over to rank 2, then rebalanced on: the rules of a rebalancing move.
                prop_assert!(!uniform, "uniform fleet rebalanced after a death: {}", plan);
                prop_assert!(!input.units[&m.unit].nopreempt && !pinned_here(&input, &m.unit));
                prop_assert!(settled(&input, &m.to, at), "{} moved to {} in hold-down", m.unit, m.to);
                rebalanced += 1;
            }
            *moved.entry(m.to.clone()).or_insert(0u64) += input.units[&m.unit].load();
        }
        if rebalanced > 0 {
            let recent = before.assignment.recent_moves.iter()
                .filter(|m| m.at.min(at) + RATE_WINDOW > at)
                .count();
            prop_assert!(recent + rebalanced <= s.rate as usize, "{} rebalanced, {} recent", rebalanced, recent);
        }
        for u in &owned {
            prop_assert!(plan.assignment.ranks[*u].is_empty() || plan.moves.iter().any(|m| m.unit == *u));
        }
        if uniform {
            let w = wmax(&input);
            prop_assert!(spread(&input, &plan.assignment) <= w);
            let survivors = input.directors.iter().filter(|(_, d)| d.alive && !d.drained).count();
            if survivors > 0 {
                let max = moved.values().max().copied().unwrap_or(0);
                let min = if moved.len() == survivors { moved.values().min().copied().unwrap_or(0) } else { 0 };
                prop_assert!(max - min <= 2 * w, "moved load {:?}", moved);
            }
        }
    }

}

proptest! {
    #![proptest_config(config(48))]

    /// Rule 4: a recovered director takes nothing before its hold-down, then only moves toward
    /// it, at the rate limit, each unit once, until balance.
    #[test]
    fn a_recovered_director_takes_only_what_balance_needs(
        s in shape(true, 500), pick in any::<prop::sample::Index>(),
    ) {
        // Alone, the director's units had no owner while it was down, and take it back at once.
        prop_assume!(s.dirs >= 2);
        let mut input = build(&s, Some(Duration::ZERO));
        let t0 = Duration::from_secs(100);
        let before = quiesce(&input, None, t0).pop().unwrap();
        let victim = dname(pick.index(s.dirs));
        input.directors.get_mut(&victim).unwrap().alive = false;
        let down = quiesce(&input, Some(before.assignment), t0 + Duration::from_secs(1)).pop().unwrap();
        let back_at = down.at + Duration::from_secs(5);
        *input.directors.get_mut(&victim).unwrap() = Director::up(back_at);
        let plans = quiesce(&input, Some(down.assignment.clone()), back_at);
        prop_assert!(plans[0].moves.is_empty(), "moves inside the hold-down: {}", plans[0]);
        let mut seen = BTreeSet::new();
        let mut prev = &down.assignment;
        for p in &plans {
            check_valid(&input, Some(prev), p)?;
            prev = &p.assignment;
            for m in &p.moves {
                prop_assert_eq!(m.why, MoveReason::Rebalance);
                prop_assert_eq!(&m.to, &victim);
                prop_assert!(p.at >= back_at + input.settings.hold_down);
                prop_assert!(seen.insert(m.unit.clone()), "{} moved twice", m.unit);
            }
        }
        check_rate(&plans, s.rate)?;
        prop_assert!(spread(&input, &plans.last().unwrap().assignment) <= wmax(&input));
    }

}

proptest! {
    #![proptest_config(config(32))]

    /// Rule 6: a drain empties the director in one plan, whatever the rate limit.
    #[test]
    fn a_drain_empties_the_director_at_once(
        s in shape(false, 500), pick in any::<prop::sample::Index>(), now_ms in 0u64..120_000,
    ) {
        let input = build(&s, None);
        let before = quiesce(&input, None, Duration::from_millis(now_ms)).pop().unwrap();
        let victim = dname(pick.index(s.dirs));
        let plan = plan_drain(&input, Some(&before.assignment), &victim, before.at).unwrap();
        let mut drained = input.clone();
        drained.drain(&victim).unwrap();
        check_valid(&drained, Some(&before.assignment), &plan)?;
        prop_assert_eq!(plan.assignment.owned_by(&victim).count(), 0);
        let drains = plan.moves.iter().filter(|m| m.why == MoveReason::OwnerDrained).count();
        let movable = before.assignment.owned_by(&victim)
            .filter(|u| !plan.assignment.ranks[*u].is_empty())
            .count();
        prop_assert_eq!(drains, movable);
    }
}

/// One thing that happens to a fleet.
#[derive(Debug, Clone)]
enum Event {
    Kill(usize),
    Revive(usize),
    Drain(usize),
    Undrain(usize),
    Sicken(usize, usize),
    Heal(usize, usize),
    Pin(usize, usize),
    Unpin(usize),
    AddUnit(u32, bool),
    RemoveUnit(usize),
    Reweigh(usize, u32),
    Advance(u64),
    Wakeup,
}

fn event() -> impl Strategy<Value = Event> {
    let i = || 0usize..64;
    let u = || 0usize..500;
    prop_oneof![
        i().prop_map(Event::Kill),
        i().prop_map(Event::Revive),
        i().prop_map(Event::Drain),
        i().prop_map(Event::Undrain),
        (i(), u()).prop_map(|(d, u)| Event::Sicken(d, u)),
        (i(), u()).prop_map(|(d, u)| Event::Heal(d, u)),
        (u(), i()).prop_map(|(u, d)| Event::Pin(u, d)),
        u().prop_map(Event::Unpin),
        (1u32..=20, any::<bool>()).prop_map(|(w, n)| Event::AddUnit(w, n)),
        u().prop_map(Event::RemoveUnit),
        (u(), 1u32..=20).prop_map(|(u, w)| Event::Reweigh(u, w)),
        (0u64..40_000).prop_map(Event::Advance),
        Just(Event::Wakeup),
        Just(Event::Wakeup),
    ]
}

fn apply(input: &mut Input, e: &Event, now: Time, next: &mut usize) {
    let n = input.directors.len();
    let dir = |i: usize| dname(i % n);
    let unit = |input: &Input, i: usize| {
        input
            .units
            .keys()
            .nth(i % input.units.len().max(1))
            .cloned()
    };
    match *e {
        Event::Kill(i) => input.directors.get_mut(&dir(i)).unwrap().alive = false,
        Event::Revive(i) => {
            let d = input.directors.get_mut(&dir(i)).unwrap();
            if !d.alive {
                d.alive = true;
                d.since = now;
            }
        }
        Event::Drain(i) => input.drain(&dir(i)).unwrap(),
        Event::Undrain(i) => input.directors.get_mut(&dir(i)).unwrap().drained = false,
        Event::Sicken(i, u) | Event::Heal(i, u) => {
            if let Some(u) = unit(input, u) {
                let d = input.directors.get_mut(&dir(i)).unwrap();
                if matches!(e, Event::Sicken(..)) {
                    d.ineligible_for.insert(u);
                } else {
                    d.ineligible_for.remove(&u);
                }
            }
        }
        Event::Pin(u, i) => {
            if let Some(u) = unit(input, u) {
                input.pins.insert(u, dir(i));
            }
        }
        Event::Unpin(u) => {
            if let Some(u) = unit(input, u) {
                input.pins.remove(&u);
            }
        }
        Event::AddUnit(w, nopreempt) => {
            *next += 1;
            input.units.insert(
                format!("new{next:04}"),
                Unit {
                    weight: w,
                    nopreempt,
                },
            );
        }
        Event::RemoveUnit(u) => {
            if let Some(u) = unit(input, u) {
                input.units.remove(&u);
            }
        }
        Event::Reweigh(u, w) => {
            if let Some(u) = unit(input, u) {
                input.units.get_mut(&u).unwrap().weight = w;
            }
        }
        Event::Advance(_) | Event::Wakeup => {}
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// Random histories: every plan valid, truthful, idempotent; rebalancing within the rate
    /// limit and never into hold-down; `nopreempt` units never rebalanced (all in
    /// `check_valid`).
    #[test]
    fn event_sequences_keep_every_rule(
        s in shape(false, 300), prev_seed in any::<u64>(),
        events in proptest::collection::vec(event(), 1..25),
    ) {
        let mut input = build(&s, None);
        let mut prev = random_previous(&input, prev_seed);
        let mut now = Duration::from_secs(60);
        let mut plans: Vec<Plan> = Vec::new();
        let mut next = 0;
        for e in &events {
            match e {
                Event::Advance(ms) => now += Duration::from_millis(*ms),
                Event::Wakeup => {
                    if let Some(t) = plans.last().and_then(|p| p.next_wakeup) {
                        now = now.max(t);
                    }
                }
                _ => {}
            }
            apply(&mut input, e, now, &mut next);
            let plan = place(&input, prev.as_ref(), now);
            check_valid(&input, prev.as_ref(), &plan)?;
            check_idempotent(&input, &plan)?;
            if plan.deferred.is_empty() {
                check_balanced(&input, &plan.assignment)?;
            }
            prev = Some(plan.assignment.clone());
            plans.push(plan);
        }
        // The first plan may start from a random window that is already over the limit.
        check_rate(&plans[1..], s.rate)?;
    }
}
