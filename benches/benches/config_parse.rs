//! Parse time of a large configuration: 2,000 virtual servers with 37,000 real servers, the
//! size of keepalived issue #2318 (keepalived 2.2.x: 132 s to reload; 2.3+: 0.24 s).
//! Peak memory is measured outside criterion: see docs/BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use flotilla_config::{LoadOptions, load_str};

fn parse_large(c: &mut Criterion) {
    let mut group = c.benchmark_group("config");
    group.sample_size(10);
    for (vs, rs) in [(200, 3_700), (2_000, 37_000)] {
        let text = flotilla_benches::large_config(vs, rs);
        group.bench_function(format!("parse_{vs}vs_{rs}rs"), |b| {
            b.iter(|| {
                let loaded = load_str(
                    Path::new("bench.conf"),
                    black_box(&text),
                    &LoadOptions::default(),
                );
                black_box(loaded.config.version)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse_large);
criterion_main!(benches);
