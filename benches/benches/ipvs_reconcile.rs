//! Reconcile planning at keepalived issue #2318's size: 2,000 virtual servers with 37,000
//! real servers (keepalived 2.2.x: 132 s to reload; 2.3+: 0.24 s). Three cases:
//! * `cold`: nothing in the kernel, everything to add (first start);
//! * `adopt`: the kernel already holds exactly the desired rules (restart, #1772): no change;
//! * `one_weight`: one real server's weight differs (a reload that changes one line).
//!
//! Plus `apply_cold` on the in-memory dataplane, the cost on flotilla's side of a first start
//! (the kernel's own time per netlink request is not in it).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use flotilla_config::{LoadOptions, load_str};
use flotilla_ipvs::{MemoryDataplane, OwnedSet, apply, desired_state, plan};

fn reconcile_large(c: &mut Criterion) {
    let mut group = c.benchmark_group("ipvs");
    group.sample_size(10);
    let (vs, rs) = (2_000, 37_000);
    let text = flotilla_benches::large_config(vs, rs);
    let loaded = load_str(Path::new("bench.conf"), &text, &LoadOptions::default());
    assert!(loaded.is_ok(), "{}", loaded.report());
    let desired = match desired_state(&loaded.config.lvs) {
        Ok(d) => d,
        Err(e) => panic!("desired state: {e}"),
    };
    let n_dest: usize = desired.iter().map(|s| s.destinations.len()).sum();
    assert_eq!((desired.len(), n_dest), (vs, rs));
    let owned = OwnedSet::of(&desired);
    let mut changed = desired.clone();
    if let Some(d) = changed
        .get_mut(vs / 2)
        .and_then(|s| s.destinations.first_mut())
    {
        d.weight += 1;
    }

    group.bench_function(format!("desired_state_{vs}vs_{rs}rs"), |b| {
        b.iter(|| black_box(desired_state(black_box(&loaded.config.lvs))).map(|d| d.len()))
    });
    group.bench_function(format!("plan_cold_{vs}vs_{rs}rs"), |b| {
        b.iter(|| black_box(plan(black_box(&desired), &[], &owned)).len())
    });
    group.bench_function(format!("plan_adopt_{vs}vs_{rs}rs"), |b| {
        b.iter(|| black_box(plan(black_box(&desired), &desired, &owned)).len())
    });
    group.bench_function(format!("plan_one_weight_{vs}vs_{rs}rs"), |b| {
        b.iter(|| black_box(plan(black_box(&changed), &desired, &owned)).len())
    });
    let cold = plan(&desired, &[], &owned);
    group.bench_function(format!("apply_cold_memory_{vs}vs_{rs}rs"), |b| {
        b.iter(|| {
            let mut dp = MemoryDataplane::new();
            black_box(apply(&mut dp, black_box(&cold)).applied)
        })
    });
    group.finish();
}

criterion_group!(benches, reconcile_large);
criterion_main!(benches);
