//! Placement on a large fleet: 10,000 units over 64 directors. Times one `place` call for the
//! first placement, the call after a director dies, a call with nothing changed, and the first
//! call after the dead director's hold-down ends (its first rate-limited moves plus the
//! forecast of the rest). Move counts against their lower bounds are printed by the
//! `placement-figures` binary.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flotilla_benches::{placement_fleet, settle};
use flotilla_cluster::placement::{Director, place};

fn placement(c: &mut Criterion) {
    let mut group = c.benchmark_group("placement");
    group.sample_size(20);
    for weighted in [false, true] {
        let name = if weighted { "w1-20" } else { "w1" };
        let mut input = placement_fleet(10_000, 64, weighted);
        let t0 = Duration::from_secs(100);
        group.bench_function(format!("initial_10k_64_{name}"), |b| {
            b.iter(|| place(black_box(&input), None, t0))
        });
        let (start, _, _) = settle(&input, None, t0);
        group.bench_function(format!("unchanged_10k_64_{name}"), |b| {
            b.iter(|| place(black_box(&input), Some(&start.assignment), t0))
        });
        let t1 = t0 + Duration::from_secs(10);
        if let Some(d) = input.directors.get_mut("lb17") {
            d.alive = false;
        }
        group.bench_function(format!("after_death_10k_64_{name}"), |b| {
            b.iter(|| place(black_box(&input), Some(&start.assignment), t1))
        });
        let (down, _, _) = settle(&input, Some(&start.assignment), t1);
        let t2 = t1 + Duration::from_secs(10);
        input.directors.insert("lb17".to_string(), Director::up(t2));
        let t3 = t2 + input.settings.hold_down;
        group.bench_function(format!("after_hold_down_10k_64_{name}"), |b| {
            b.iter(|| place(black_box(&input), Some(&down.assignment), t3))
        });
    }
    group.finish();
}

criterion_group!(benches, placement);
criterion_main!(benches);
