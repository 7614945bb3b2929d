//! Hand-written scenarios, shaped like the lab: three directors, twelve units.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;

fn secs(s: u64) -> Time {
    Duration::from_secs(s)
}

fn millis(ms: u64) -> Time {
    Duration::from_millis(ms)
}

/// The lab: d1, d2, d3 up since time 0; twelve units of weight 1.
fn lab() -> Input {
    Input {
        units: (1..=12)
            .map(|i| (format!("VI_{i:02}"), Unit::new(1)))
            .collect(),
        directors: ["d1", "d2", "d3"]
            .into_iter()
            .map(|d| (d.to_string(), Director::up(secs(0))))
            .collect(),
        pins: BTreeMap::new(),
        settings: Settings::default(),
    }
}

fn loads(a: &Assignment) -> BTreeMap<String, usize> {
    let mut l = BTreeMap::new();
    for r in a.ranks.values() {
        if let Some(o) = r.first() {
            *l.entry(o.clone()).or_insert(0) += 1;
        }
    }
    l
}

fn counts(a: &Assignment, names: &[&str]) -> Vec<usize> {
    let l = loads(a);
    names
        .iter()
        .map(|n| l.get(*n).copied().unwrap_or(0))
        .collect()
}

#[test]
fn twelve_units_on_three_directors_are_four_each() {
    let input = lab();
    let plan = place(&input, None, secs(100));
    assert_eq!(counts(&plan.assignment, &["d1", "d2", "d3"]), [4, 4, 4]);
    assert_eq!(plan.assignment.epoch, 1);
    assert_eq!(plan.moves.len(), 12);
    assert!(plan.moves.iter().all(|m| m.why == MoveReason::Unowned));
    assert!(plan.deferred.is_empty() && plan.unplaced.is_empty());
    assert_eq!(plan.next_wakeup, None);
    // Every director is ranked for every unit, and rank 2 spreads: each director backs up
    // two units of each other director.
    let mut backups: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in plan.assignment.ranks.values() {
        assert_eq!(r.len(), 3);
        *backups.entry((r[0].clone(), r[1].clone())).or_insert(0) += 1;
    }
    assert!(backups.values().all(|&n| n == 2), "{backups:?}");
    // Calling again changes nothing.
    let again = place(&input, Some(&plan.assignment), secs(100));
    assert!(again.moves.is_empty());
    assert_eq!(again.assignment, plan.assignment);
    assert!(!again.changed());
}

#[test]
fn a_dead_director_s_units_go_two_and_two_to_their_rank_two() {
    let mut input = lab();
    let before = place(&input, None, secs(100)).assignment;
    input.directors.get_mut("d2").unwrap().alive = false;
    let plan = place(&input, Some(&before), secs(101));
    let owned: Vec<&str> = before.owned_by("d2").collect();
    assert_eq!(owned.len(), 4);
    assert_eq!(plan.moves.len(), 4, "{plan}");
    for m in &plan.moves {
        assert!(owned.contains(&m.unit.as_str()));
        assert_eq!(m.from.as_deref(), Some("d2"));
        assert_eq!(m.why, MoveReason::OwnerDown);
        // What VRRP elected by itself on the old ranks.
        assert_eq!(before.ranks[&m.unit][1], m.to);
    }
    assert_eq!(counts(&plan.assignment, &["d1", "d2", "d3"]), [6, 0, 6]);
    assert_eq!(plan.assignment.epoch, 2);
    assert!(plan.assignment.ranks.values().all(|r| r.len() == 2));
    assert!(plan.deferred.is_empty());
    // Failovers are not planned moves: the rate limiter does not count them.
    assert!(plan.assignment.recent_moves.is_empty());
}

#[test]
fn a_recovered_director_waits_for_hold_down_then_takes_four_at_the_rate_limit() {
    let mut input = lab();
    input.settings.max_moves_per_second = 2;
    let start = place(&input, None, secs(100)).assignment;
    input.directors.get_mut("d2").unwrap().alive = false;
    let down = place(&input, Some(&start), secs(101)).assignment;

    // d2 comes back at t = 200.
    *input.directors.get_mut("d2").unwrap() = Director::up(secs(200));
    let back = place(&input, Some(&down), secs(200));
    assert!(back.moves.is_empty(), "{back}");
    assert_eq!(back.deferred.len(), 4);
    assert!(
        back.deferred
            .iter()
            .all(|d| d.why == Wait::HoldDown && d.to == "d2" && d.not_before == secs(230))
    );
    assert_eq!(back.next_wakeup, Some(secs(230)));
    // d2 is ranked again, last, but owns nothing.
    assert!(
        back.assignment
            .ranks
            .values()
            .all(|r| r.last().unwrap() == "d2")
    );
    assert_eq!(back.assignment.owned_by("d2").count(), 0);
    let back = back.assignment;

    // Still inside the hold-down: nothing.
    let early = place(&input, Some(&back), millis(229_999));
    assert!(early.moves.is_empty());
    assert_eq!(early.assignment, back);

    // Hold-down over: two moves now, two deferred by the rate limit to one second later.
    let first = place(&input, Some(&back), secs(230));
    assert_eq!(first.moves.len(), 2, "{first}");
    assert_eq!(first.deferred.len(), 2);
    assert!(
        first
            .deferred
            .iter()
            .all(|d| d.why == Wait::RateLimit && d.not_before == secs(231))
    );
    assert_eq!(first.next_wakeup, Some(secs(231)));
    // Idempotent: the window is full, so a second call at the same time moves nothing.
    let again = place(&input, Some(&first.assignment), secs(230));
    assert!(again.moves.is_empty());
    assert_eq!(again.assignment, first.assignment);
    // Still full just before the window slides.
    let early = place(&input, Some(&first.assignment), millis(230_999));
    assert!(early.moves.is_empty());

    let second = place(&input, Some(&first.assignment), secs(231));
    assert_eq!(second.moves.len(), 2, "{second}");
    assert!(second.deferred.is_empty());
    assert_eq!(second.next_wakeup, None);
    let all: Vec<&Move> = first.moves.iter().chain(&second.moves).collect();
    assert!(
        all.iter()
            .all(|m| m.to == "d2" && m.why == MoveReason::Rebalance)
    );
    assert_eq!(counts(&second.assignment, &["d1", "d2", "d3"]), [4, 4, 4]);
    let settled = place(&input, Some(&second.assignment), secs(300));
    assert!(settled.moves.is_empty() && settled.deferred.is_empty());
}

#[test]
fn a_drained_director_owns_nothing_and_is_ranked_nowhere() {
    let mut input = lab();
    input.settings.max_moves_per_second = 1;
    let start = place(&input, None, secs(100)).assignment;
    let plan = plan_drain(&input, Some(&start), "d1", secs(101)).unwrap();
    assert_eq!(
        plan.moves.len(),
        4,
        "drains are not held back by the rate limit"
    );
    assert!(
        plan.moves
            .iter()
            .all(|m| m.why == MoveReason::OwnerDrained && m.from.as_deref() == Some("d1"))
    );
    assert_eq!(counts(&plan.assignment, &["d1", "d2", "d3"]), [0, 6, 6]);
    assert!(
        plan.assignment
            .ranks
            .values()
            .all(|r| !r.iter().any(|d| d == "d1"))
    );
    assert!(plan.deferred.is_empty());
    // It is what `place` does with the flag set.
    input.drain("d1").unwrap();
    assert_eq!(place(&input, Some(&start), secs(101)), plan);
    assert_eq!(
        plan_drain(&input, Some(&start), "d9", secs(101)),
        Err(PlacementError::UnknownDirector("d9".to_string()))
    );
    // Undrain: units come back at the rate limit (d1 has been up all along: no hold-down).
    input.directors.get_mut("d1").unwrap().drained = false;
    let back = place(&input, Some(&plan.assignment), millis(101_500));
    assert_eq!(back.moves.len(), 0, "the drain filled the window");
    assert_eq!(back.next_wakeup, Some(secs(102)));
    let back = place(&input, Some(&plan.assignment), secs(102));
    assert_eq!(back.moves.len(), 1);
    assert_eq!(back.deferred.len(), 3);
}

#[test]
fn nopreempt_units_stay_where_they_failed_over_to() {
    let mut input = lab();
    for u in ["VI_01", "VI_02", "VI_03", "VI_04", "VI_05", "VI_06"] {
        input.units.get_mut(u).unwrap().nopreempt = true;
    }
    let start = place(&input, None, secs(100)).assignment;
    input.directors.get_mut("d2").unwrap().alive = false;
    let down = place(&input, Some(&start), secs(101)).assignment;
    *input.directors.get_mut("d2").unwrap() = Director::up(secs(200));
    let mut a = down;
    let mut moved = Vec::new();
    for t in [200, 230, 231, 232, 240] {
        let p = place(&input, Some(&a), secs(t));
        moved.extend(p.moves.clone());
        a = p.assignment;
    }
    assert!(!moved.is_empty());
    for m in &moved {
        assert!(!input.units[&m.unit].nopreempt, "{m:?}");
    }
}

#[test]
fn a_pinned_unit_moves_and_balance_makes_room_for_it() {
    let input = lab();
    let start = place(&input, None, secs(100)).assignment;
    let unit = start.owned_by("d1").next().unwrap().to_string();
    let plan = plan_move(&input, Some(&start), &unit, "d2", secs(101)).unwrap();
    assert_eq!(plan.moves[0].unit, unit);
    assert_eq!(plan.moves[0].why, MoveReason::Pinned);
    assert_eq!(plan.assignment.owner(&unit), Some("d2"));
    // 3/5/4 is within one unit-weight of balance only if d2 gives one back: it does.
    let loads = counts(&plan.assignment, &["d1", "d2", "d3"]);
    assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1);
    assert_eq!(
        plan_move(&input, Some(&start), "VI_99", "d2", secs(101)),
        Err(PlacementError::UnknownUnit("VI_99".to_string()))
    );
    let mut sick = input.clone();
    sick.directors
        .get_mut("d3")
        .unwrap()
        .ineligible_for
        .insert(unit.clone());
    assert_eq!(
        plan_move(&sick, Some(&start), &unit, "d3", secs(101)),
        Err(PlacementError::NotEligible {
            unit: unit.clone(),
            director: "d3".to_string()
        })
    );
}

#[test]
fn a_failing_tracker_moves_one_unit_and_units_nobody_may_hold_are_reported() {
    let mut input = lab();
    let start = place(&input, None, secs(100)).assignment;
    let unit = start.owned_by("d3").next().unwrap().to_string();
    input
        .directors
        .get_mut("d3")
        .unwrap()
        .ineligible_for
        .insert(unit.clone());
    let plan = place(&input, Some(&start), secs(101));
    // The unit goes to d1 or d2 (5 units then), and d3 (3 units) takes another one back.
    assert_eq!(plan.moves.len(), 2, "{plan}");
    assert_eq!(plan.moves[0].why, MoveReason::OwnerIneligible);
    assert_eq!(plan.moves[1].why, MoveReason::Rebalance);
    assert_eq!(plan.moves[1].to, "d3");
    assert_eq!(counts(&plan.assignment, &["d1", "d2", "d3"]), [4, 4, 4]);
    assert_eq!(plan.assignment.ranks[&unit].len(), 2);

    for d in ["d1", "d2"] {
        input
            .directors
            .get_mut(d)
            .unwrap()
            .ineligible_for
            .insert(unit.clone());
    }
    let plan = place(&input, Some(&plan.assignment), secs(102));
    assert_eq!(plan.unplaced, std::slice::from_ref(&unit));
    assert_eq!(plan.assignment.ranks[&unit], Vec::<String>::new());
    assert!(plan.moves.is_empty());
}

#[test]
fn the_operator_table_names_each_move() {
    let mut input = lab();
    let start = place(&input, None, secs(100)).assignment;
    input.directors.get_mut("d2").unwrap().alive = false;
    let down = place(&input, Some(&start), secs(101));
    let text = down.to_string();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("epoch 1 → 2: 4 moves, 0 deferred"));
    assert_eq!(lines.next(), Some("UNIT   FROM  →  TO  WHY"));
    for (line, m) in lines.zip(&down.moves) {
        assert_eq!(line, format!("{}  d2    →  {}  owner down", m.unit, m.to));
    }
    *input.directors.get_mut("d2").unwrap() = Director::up(millis(200_500));
    let back = place(&input, Some(&down.assignment), secs(201));
    let text = back.to_string();
    assert!(text.contains("deferred: hold-down, in 29.5s"), "{text}");
    assert!(text.ends_with("next look in 29.5s\n"), "{text}");
}

#[test]
fn assignments_survive_postcard() {
    let plan = place(&lab(), None, secs(100));
    let bytes = postcard::to_stdvec(&plan.assignment).unwrap();
    let back: Assignment = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, plan.assignment);
}

#[test]
fn the_rendezvous_hash_is_fixed_by_its_definition() {
    // FNV-1a test vectors; a change here reorders every fleet's ranks 3 and on.
    assert_eq!(engine::name_hash(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(engine::name_hash("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(engine::mix(0), 0);
    assert_eq!(engine::mix(1), 0x5692_161d_100b_05e5);
}
