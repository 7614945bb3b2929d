//! `placement-figures [UNITS [DIRECTORS]]`: runs a fleet (default 10,000 units over 64
//! directors) through a death and a recovery and prints each step's moves against its lower
//! bound, with wall time per `place` call. Release build: the figures in the final report.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use flotilla_benches::{placement_fleet, settle};
use flotilla_cluster::placement::{Assignment, Director, Input, MoveReason, place};

/// Owner load per director, in name order.
fn loads(input: &Input, a: &Assignment) -> Vec<u64> {
    input
        .directors
        .keys()
        .map(|d| {
            a.owned_by(d)
                .filter_map(|u| input.units.get(u))
                .map(|u| u64::from(u.weight.max(1)))
                .sum()
        })
        .collect()
}

fn spread(input: &Input, a: &Assignment, skip: Option<&str>) -> u64 {
    let l: Vec<u64> = input
        .directors
        .keys()
        .zip(loads(input, a))
        .filter(|(d, _)| Some(d.as_str()) != skip)
        .map(|(_, l)| l)
        .collect();
    l.iter().max().unwrap_or(&0) - l.iter().min().unwrap_or(&0)
}

/// The fewest units a director starting empty must receive so that it ends within the
/// largest weight of the fleet's average (the least balance allows): its heaviest choices.
fn recovery_lower_bound(input: &Input) -> usize {
    let n = input.directors.len() as u64;
    let mut w: Vec<u64> = input
        .units
        .values()
        .map(|u| u64::from(u.weight.max(1)))
        .collect();
    let total: u64 = w.iter().sum();
    let wmax = w.iter().copied().max().unwrap_or(1);
    let need = total.div_ceil(n).saturating_sub(wmax);
    w.sort_unstable_by(|a, b| b.cmp(a));
    let mut got = 0;
    w.iter()
        .take_while(|&&x| {
            let more = got < need;
            got += x;
            more
        })
        .count()
}

fn run(units: usize, directors: usize, weighted: bool) {
    let mut input = placement_fleet(units, directors, weighted);
    let wmax = input.units.values().map(|u| u.weight).max().unwrap_or(1);
    println!(
        "\n{units} units ({}), {directors} directors, hold-down {:?}, {} moves/s; largest weight {wmax}",
        if weighted { "weights 1-20" } else { "weight 1" },
        input.settings.hold_down,
        input.settings.max_moves_per_second
    );
    println!(
        "{:<34} {:>10} {:>7} {:>11}  notes",
        "step", "time/call", "moves", "lower bound"
    );
    let t0 = Duration::from_secs(100);
    let clock = Instant::now();
    let start = place(&input, None, t0);
    let took = clock.elapsed();
    println!(
        "{:<34} {:>10.2?} {:>7} {:>11}  spread {} (max - min load)",
        "initial placement",
        took,
        start.moves.len(),
        units,
        spread(&input, &start.assignment, None)
    );
    let clock = Instant::now();
    let again = place(&input, Some(&start.assignment), t0);
    println!(
        "{:<34} {:>10.2?} {:>7} {:>11}",
        "same input again",
        clock.elapsed(),
        again.moves.len(),
        0
    );

    let victim = "lb17";
    let owned: Vec<String> = start
        .assignment
        .owned_by(victim)
        .map(str::to_string)
        .collect();
    let t1 = t0 + Duration::from_secs(10);
    if let Some(d) = input.directors.get_mut(victim) {
        d.alive = false;
    }
    let clock = Instant::now();
    let down = place(&input, Some(&start.assignment), t1);
    let took = clock.elapsed();
    let to_rank2 = down
        .moves
        .iter()
        .filter(|m| start.assignment.ranks[&m.unit].get(1) == Some(&m.to))
        .count();
    let others = down
        .moves
        .iter()
        .filter(|m| m.why != MoveReason::OwnerDown)
        .count();
    println!(
        "{:<34} {:>10.2?} {:>7} {:>11}  {to_rank2} to their rank 2 (VRRP's choice), {others} others; survivors' spread {}",
        format!("{victim} dies"),
        took,
        down.moves.len(),
        owned.len(),
        spread(&input, &down.assignment, Some(victim))
    );
    let (down, _, _) = settle(&input, Some(&down.assignment), t1);

    let t2 = t1 + Duration::from_secs(10);
    input.directors.insert(victim.to_string(), Director::up(t2));
    let clock = Instant::now();
    let held = place(&input, Some(&down.assignment), t2);
    println!(
        "{:<34} {:>10.2?} {:>7} {:>11}  {} deferred (hold-down)",
        format!("{victim} back, in hold-down"),
        clock.elapsed(),
        held.moves.len(),
        0,
        held.deferred.len()
    );
    let t3 = t2 + input.settings.hold_down;
    let clock = Instant::now();
    let (back, moves, calls) = settle(&input, Some(&held.assignment), t3);
    let took = clock.elapsed() / u32::try_from(calls).unwrap_or(1);
    let into_victim = moves.iter().filter(|m| m.to == victim).count();
    println!(
        "{:<34} {:>10.2?} {:>7} {:>11}  {calls} calls over {:?}, {into_victim} into {victim}; spread {}",
        format!("{victim} back, after hold-down"),
        took,
        moves.len(),
        recovery_lower_bound(&input),
        back.at.saturating_sub(t3),
        spread(&input, &back.assignment, None)
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |i: usize, default: usize| -> Option<usize> {
        match args.get(i) {
            None => Some(default),
            Some(a) => a.parse().ok(),
        }
    };
    let (Some(units), Some(directors)) = (parse(0, 10_000), parse(1, 64)) else {
        eprintln!("usage: placement-figures [UNITS [DIRECTORS]]  (default 10000 64)");
        return ExitCode::from(2);
    };
    if directors < 18 {
        eprintln!("placement-figures: the script kills lb17, so it needs 18 directors or more");
        return ExitCode::from(2);
    }
    run(units, directors, false);
    run(units, directors, true);
    ExitCode::SUCCESS
}
