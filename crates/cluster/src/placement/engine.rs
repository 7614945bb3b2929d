//! The algorithm behind [`place`](super::place), on indices into name-sorted vectors so that
//! every loop runs in one fixed order.
//!
//! 1. Pins honoured; every other unit keeps its previous owner while that owner is eligible.
//! 2. Units without an eligible owner ("orphans", heaviest first) go to the first director of
//!    their previous ranking that may take them, which is the one VRRP already elected, unless
//!    that would leave it more than one unit-weight above the lightest candidate.
//! 3. Rebalance (rate-limited): while some director is more than the largest unit weight
//!    heavier than a settled director eligible for one of its movable units, move the unit
//!    that narrows that gap most.
//! 4. What 3 could not do yet is simulated on: first the moves the rate limit holds back, then
//!    those waiting for a director's hold-down.
//! 5. Rank 2 of each unit is chosen by simulating the loss of its owner with step 2's rule, so
//!    a real loss later sends every unit to its rank 2 (what VRRP does by itself) and the
//!    survivors stay balanced. Ranks 3 and on: settled directors before held-down ones, each
//!    group in rendezvous-hash order, which spreads a double failure and never reshuffles
//!    when a director comes or goes.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::{
    Assignment, Deferred, Input, Move, MoveReason, Plan, RATE_WINDOW, RecentMove, Time, Wait,
};

/// The fleet as indices: units and directors in name order.
struct Fleet<'a> {
    input: &'a Input,
    units: Vec<&'a str>,
    weight: Vec<u64>,
    nopreempt: Vec<bool>,
    dirs: Vec<&'a str>,
    /// Alive and not drained.
    up: Vec<bool>,
    /// Up for at least `hold_down`: may receive units for balance.
    settled: Vec<bool>,
    settle_at: Vec<Time>,
    /// Per director, the units whose trackers fail there.
    ineligible: Vec<BTreeSet<usize>>,
    unit_hash: Vec<u64>,
    dir_hash: Vec<u64>,
    /// The previous ranking of each unit, as committed. Names are looked up only as far as a
    /// choice needs (usually one or two), not for all N × units entries.
    prev_ranks: Vec<&'a [String]>,
    /// The previous owner's name, also when that director is gone from the input.
    prev_owner: Vec<Option<&'a str>>,
    /// The largest unit weight: the balance tolerance.
    wmax: u64,
}

/// Where a unit may go when its owner is lost: settled eligible directors, or when there are
/// none, any eligible one (an owner in hold-down beats no owner).
struct Candidates {
    list: Vec<usize>,
    settled_only: bool,
    except: Option<usize>,
}

/// Who owns what, with per-director loads.
#[derive(Clone)]
struct Owners {
    owner: Vec<Option<usize>>,
    load: Vec<u64>,
    owned: Vec<BTreeSet<usize>>,
}

impl Owners {
    fn new(units: usize, dirs: usize) -> Self {
        Owners {
            owner: vec![None; units],
            load: vec![0; dirs],
            owned: vec![BTreeSet::new(); dirs],
        }
    }

    fn set(&mut self, u: usize, d: usize, weight: u64) {
        if let Some(old) = self.owner[u] {
            self.load[old] -= weight;
            self.owned[old].remove(&u);
        }
        self.owner[u] = Some(d);
        self.load[d] += weight;
        self.owned[d].insert(u);
    }
}

impl<'a> Fleet<'a> {
    fn new(input: &'a Input, previous: Option<&'a Assignment>, now: Time) -> Self {
        let units: Vec<&str> = input.units.keys().map(String::as_str).collect();
        let dirs: Vec<&str> = input.directors.keys().map(String::as_str).collect();
        let weight: Vec<u64> = input.units.values().map(|u| u.load()).collect();
        let hold_down = input.settings.hold_down;
        let settle_at: Vec<Time> = input
            .directors
            .values()
            .map(|d| d.since.saturating_add(hold_down))
            .collect();
        let up: Vec<bool> = input
            .directors
            .values()
            .map(|d| d.alive && !d.drained)
            .collect();
        let settled = up
            .iter()
            .zip(&settle_at)
            .map(|(&up, &at)| up && now >= at)
            .collect();
        let ineligible = input
            .directors
            .values()
            .map(|d| {
                d.ineligible_for
                    .iter()
                    .filter_map(|n| units.binary_search(&n.as_str()).ok())
                    .collect()
            })
            .collect();
        let prev = |u: &str| previous.and_then(|p| p.ranks.get(u));
        let prev_ranks = units
            .iter()
            .map(|&u| prev(u).map_or(&[][..], Vec::as_slice))
            .collect();
        let prev_owner = units
            .iter()
            .map(|&u| prev(u).and_then(|r| r.first()).map(String::as_str))
            .collect();
        Fleet {
            input,
            unit_hash: units.iter().map(|u| name_hash(u)).collect(),
            dir_hash: dirs.iter().map(|d| name_hash(d)).collect(),
            wmax: weight.iter().copied().max().unwrap_or(1),
            nopreempt: input.units.values().map(|u| u.nopreempt).collect(),
            units,
            weight,
            dirs,
            up,
            settled,
            settle_at,
            ineligible,
            prev_ranks,
            prev_owner,
        }
    }

    fn eligible(&self, d: usize, u: usize) -> bool {
        self.up[d] && !self.ineligible[d].contains(&u)
    }

    fn dir_index(&self, name: &str) -> Option<usize> {
        self.dirs.binary_search(&name).ok()
    }

    fn unit_index(&self, name: &str) -> Option<usize> {
        self.units.binary_search(&name).ok()
    }

    /// Rendezvous score of director `d` for unit `u`: a fixed pseudo-random order per unit.
    fn score(&self, u: usize, d: usize) -> u64 {
        mix(self.unit_hash[u] ^ mix(self.dir_hash[d]))
    }

    fn candidates(&self, u: usize, except: Option<usize>) -> Candidates {
        let eligible = |d: &usize| Some(*d) != except && self.eligible(*d, u);
        let settled: Vec<usize> = (0..self.dirs.len())
            .filter(|d| eligible(d) && self.settled[*d])
            .collect();
        if settled.is_empty() {
            Candidates {
                list: (0..self.dirs.len()).filter(eligible).collect(),
                settled_only: false,
                except,
            }
        } else {
            Candidates {
                list: settled,
                settled_only: true,
                except,
            }
        }
    }

    fn is_candidate(&self, c: &Candidates, u: usize, d: usize) -> bool {
        Some(d) != c.except && self.eligible(d, u) && (!c.settled_only || self.settled[d])
    }

    /// Where unit `u` goes when its owner is lost, given the candidates' loads: its first
    /// previously ranked candidate (what VRRP elects) unless that leaves the candidate more
    /// than `wmax` above the lightest; else the lightest. Keeping every choice within `wmax`
    /// of the lightest keeps max − min ≤ `wmax` if it held before.
    fn choose(&self, u: usize, c: &Candidates, load: impl Fn(usize) -> u64) -> Option<usize> {
        let min = c.list.iter().map(|&d| load(d)).min()?;
        let w = self.weight[u];
        let preferred = self.prev_ranks[u]
            .iter()
            .filter_map(|n| self.dir_index(n))
            .find(|&d| self.is_candidate(c, u, d));
        if let Some(p) = preferred
            && load(p).saturating_add(w) <= min.saturating_add(self.wmax)
        {
            return Some(p);
        }
        c.list
            .iter()
            .copied()
            .min_by_key(|&d| (load(d), Reverse(self.score(u, d)), d))
    }

    /// The next balancing move (unit, from, to), or `None` when no director is more than
    /// `wmax` heavier than a target eligible for one of its movable units. The unit chosen
    /// maximises w·(gap − w), the drop in the sum of squared loads, so the loop ends and takes
    /// big steps while the gap is wide.
    fn next_rebalance(
        &self,
        o: &Owners,
        movable: &[bool],
        target: impl Fn(usize) -> bool,
    ) -> Option<(usize, usize, usize)> {
        let mut sources: Vec<usize> = (0..self.dirs.len())
            .filter(|&d| !o.owned[d].is_empty())
            .collect();
        sources.sort_by_key(|&d| (Reverse(o.load[d]), d));
        let mut targets: Vec<usize> = (0..self.dirs.len()).filter(|&d| target(d)).collect();
        targets.sort_by_key(|&d| (o.load[d], d));
        for &s in &sources {
            for &t in targets.iter().filter(|&&t| t != s) {
                let gap = o.load[s].saturating_sub(o.load[t]);
                if gap <= self.wmax {
                    // Targets are lightest first: the gaps only shrink from here.
                    break;
                }
                let best = o.owned[s]
                    .iter()
                    .copied()
                    .filter(|&u| movable[u] && self.eligible(t, u))
                    .max_by_key(|&u| {
                        let w = self.weight[u];
                        (u128::from(w) * u128::from(gap - w), w, Reverse(u))
                    });
                if let Some(u) = best {
                    return Some((u, s, t));
                }
            }
        }
        None
    }

    /// Rank 2 of every owned unit: for each owner, the choices [`Self::choose`] would make if
    /// it were lost now, its units taken heaviest first as the real loss would take them.
    fn second_ranks(&self, o: &Owners) -> Vec<Option<usize>> {
        let mut second = vec![None; self.units.len()];
        let mut extra = vec![0u64; self.dirs.len()];
        for d in 0..self.dirs.len() {
            let mut units: Vec<usize> = o.owned[d].iter().copied().collect();
            units.sort_by_key(|&u| (Reverse(self.weight[u]), u));
            let mut touched = Vec::new();
            for u in units {
                let c = self.candidates(u, Some(d));
                if let Some(s) = self.choose(u, &c, |e| o.load[e] + extra[e]) {
                    second[u] = Some(s);
                    extra[s] += self.weight[u];
                    touched.push(s);
                }
            }
            for s in touched {
                extra[s] = 0;
            }
        }
        second
    }

    fn ranks(&self, o: &Owners) -> Vec<Vec<usize>> {
        let second = self.second_ranks(o);
        (0..self.units.len())
            .map(|u| {
                let Some(owner) = o.owner[u] else {
                    return Vec::new();
                };
                let mut rank = vec![owner];
                rank.extend(second[u]);
                let mut rest: Vec<usize> = (0..self.dirs.len())
                    .filter(|&d| d != owner && Some(d) != second[u] && self.eligible(d, u))
                    .collect();
                rest.sort_by_cached_key(|&d| (!self.settled[d], Reverse(self.score(u, d)), d));
                rank.extend(rest);
                rank
            })
            .collect()
    }

    /// Why a unit whose previous owner cannot keep it needs a new one.
    fn orphan_reason(&self, u: usize) -> MoveReason {
        match self.prev_owner[u] {
            None => MoveReason::Unowned,
            Some(name) => match self.input.directors.get(name) {
                Some(d) if !d.alive => MoveReason::OwnerDown,
                None => MoveReason::OwnerDown,
                Some(d) if d.drained => MoveReason::OwnerDrained,
                Some(_) => MoveReason::OwnerIneligible,
            },
        }
    }

    fn make_move(&self, u: usize, from: Option<&str>, to: usize, why: MoveReason) -> Move {
        Move {
            unit: self.units[u].to_string(),
            from: from.map(str::to_string),
            to: self.dirs[to].to_string(),
            why,
        }
    }
}

pub(super) fn place(input: &Input, previous: Option<&Assignment>, now: Time) -> Plan {
    let f = Fleet::new(input, previous, now);
    let (nu, nd) = (f.units.len(), f.dirs.len());
    let mut o = Owners::new(nu, nd);
    let mut moves = Vec::new();
    // Where each unit's move is in `moves`: a unit moved twice in one plan (failed over, then
    // rebalanced) is one move from its old owner to its new one.
    let mut move_of: Vec<Option<usize>> = vec![None; nu];

    // 1. Pins, then owners that may stay.
    let mut pinned_to = vec![None; nu];
    let mut unhonoured_pins = Vec::new();
    for (unit, director) in &input.pins {
        match (f.unit_index(unit), f.dir_index(director)) {
            (Some(u), Some(d)) if f.eligible(d, u) => pinned_to[u] = Some(d),
            _ => unhonoured_pins.push((unit.clone(), director.clone())),
        }
    }
    let mut orphans = Vec::new();
    for (u, pin) in pinned_to.iter().enumerate() {
        let previous_owner = f.prev_owner[u].and_then(|n| f.dir_index(n));
        if let Some(d) = *pin {
            o.set(u, d, f.weight[u]);
            if previous_owner != Some(d) {
                moves.push(f.make_move(u, f.prev_owner[u], d, MoveReason::Pinned));
            }
        } else if let Some(d) = previous_owner.filter(|&d| f.eligible(d, u)) {
            o.set(u, d, f.weight[u]);
        } else {
            orphans.push(u);
        }
    }

    // 2. Lost owners, heaviest unit first (the order `second_ranks` simulated).
    orphans.sort_by_key(|&u| (Reverse(f.weight[u]), u));
    for u in orphans {
        let c = f.candidates(u, None);
        if let Some(d) = f.choose(u, &c, |e| o.load[e]) {
            o.set(u, d, f.weight[u]);
            move_of[u] = Some(moves.len());
            moves.push(f.make_move(u, f.prev_owner[u], d, f.orphan_reason(u)));
        }
    }

    // 3. Rebalance within the rate limit. Drains and pins were made regardless, but they
    // take room in the window.
    let rate = usize::try_from(input.settings.max_moves_per_second.max(1)).unwrap_or(usize::MAX);
    let mut window: Vec<RecentMove> = previous
        .into_iter()
        .flat_map(|p| &p.recent_moves)
        .map(|m| RecentMove {
            // A leader whose clock lags the last one's must not be locked out for long.
            at: m.at.min(now),
            unit: m.unit.clone(),
        })
        .filter(|m| m.at.saturating_add(RATE_WINDOW) > now)
        .collect();
    window.extend(
        moves
            .iter()
            .filter(|m| m.why.is_planned())
            .map(|m| RecentMove {
                at: now,
                unit: m.unit.clone(),
            }),
    );
    let movable: Vec<bool> = (0..nu)
        .map(|u| !f.nopreempt[u] && pinned_to[u].is_none())
        .collect();
    while window.len() < rate {
        let Some((u, s, t)) = f.next_rebalance(&o, &movable, |d| f.settled[d]) else {
            break;
        };
        o.set(u, t, f.weight[u]);
        match move_of[u] {
            Some(i) => moves[i].to = f.dirs[t].to_string(),
            None => {
                move_of[u] = Some(moves.len());
                moves.push(f.make_move(u, Some(f.dirs[s]), t, MoveReason::Rebalance));
            }
        }
        window.push(RecentMove {
            at: now,
            unit: f.units[u].to_string(),
        });
    }

    // Back where it started: no move at all.
    moves.retain(|m| m.from.as_ref() != Some(&m.to));

    // 4. What is owed but held back: first by the rate limit, each at the earliest time the
    // window has room if every earlier one is made as soon as it may; then by hold-down.
    let mut deferred = Vec::new();
    let mut sim = o.clone();
    let mut times: Vec<Time> = window.iter().map(|m| m.at).collect();
    times.sort();
    while let Some((u, s, t)) = f.next_rebalance(&sim, &movable, |d| f.settled[d]) {
        sim.set(u, t, f.weight[u]);
        let not_before = times
            .len()
            .checked_sub(rate)
            .and_then(|i| times.get(i))
            .map_or(now, |&oldest| oldest.saturating_add(RATE_WINDOW).max(now));
        times.push(not_before);
        deferred.push(deferral(&f, u, s, t, Wait::RateLimit, not_before));
    }
    while let Some((u, s, t)) = f.next_rebalance(&sim, &movable, |d| f.up[d]) {
        sim.set(u, t, f.weight[u]);
        if !f.settled[t] {
            deferred.push(deferral(&f, u, s, t, Wait::HoldDown, f.settle_at[t]));
        }
    }

    // 5. Rankings, epoch, wake-up.
    let ranks = f
        .ranks(&o)
        .into_iter()
        .enumerate()
        .map(|(u, r)| {
            let names = r.into_iter().map(|d| f.dirs[d].to_string()).collect();
            (f.units[u].to_string(), names)
        })
        .collect();
    let unplaced = (0..nu)
        .filter(|&u| o.owner[u].is_none())
        .map(|u| f.units[u].to_string())
        .collect();
    let assignment = match previous {
        Some(p) if p.ranks == ranks => Assignment {
            epoch: p.epoch,
            ranks,
            recent_moves: p.recent_moves.clone(),
        },
        _ => {
            window.sort();
            Assignment {
                // Saturates rather than wrap: a wrapped epoch would look older than the last one.
                epoch: previous.map_or(1, |p| p.epoch.saturating_add(1)),
                ranks,
                recent_moves: window,
            }
        }
    };
    // Ranks change when a held-down director settles, even if no unit moves to it.
    let settling = (0..nd)
        .filter(|&d| f.up[d] && !f.settled[d])
        .map(|d| f.settle_at[d]);
    let next_wakeup = deferred.iter().map(|d| d.not_before).chain(settling).min();
    Plan {
        at: now,
        previous_epoch: previous.map(|p| p.epoch),
        assignment,
        moves,
        deferred,
        unplaced,
        unhonoured_pins,
        next_wakeup,
    }
}

fn deferral(f: &Fleet, u: usize, from: usize, to: usize, why: Wait, not_before: Time) -> Deferred {
    Deferred {
        unit: f.units[u].to_string(),
        from: f.dirs[from].to_string(),
        to: f.dirs[to].to_string(),
        why,
        not_before,
    }
}

/// FNV-1a: a hash fixed by its definition, unlike `std`'s, so rankings stay the same across
/// Rust versions and a fleet mid-upgrade agrees on them.
pub(super) fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The splitmix64 finaliser: spreads FNV's weak low bits over the whole word.
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
