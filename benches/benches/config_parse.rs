//! Parse time of a large configuration: 2,000 virtual servers with 37,000 real servers, the
//! size of keepalived issue #2318 (keepalived 2.2.x: 132 s to reload; 2.3+: 0.24 s).
//! Peak memory is measured outside criterion: see docs/BENCHMARKS.md.
//!
//! `fleet_state`: in a fleet the committed configuration is JSON in the Raft state; what a
//! director pays to read all of it (a new version to apply) against only its `cluster` block
//! (the mesh roster and Raft membership, several times a second).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use flotilla_cluster::raft::FleetState;
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

fn decode_committed(c: &mut Criterion) {
    let mut group = c.benchmark_group("fleet_state");
    group.sample_size(10);
    for (vs, rs) in [(200, 3_700), (2_000, 37_000)] {
        let text = format!(
            "cluster {{\n name bench\n director d1 {{ address 10.0.0.1 }}\n \
             director d2 {{ address 10.0.0.2 }}\n director d3 {{ address 10.0.0.3 }}\n}}\n{}",
            flotilla_benches::large_config(vs, rs)
        );
        let loaded = load_str(Path::new("bench.conf"), &text, &LoadOptions::default());
        assert!(loaded.is_ok(), "{}", loaded.report());
        let json = serde_json::to_string(&loaded.config).expect("encode");
        let state = FleetState {
            config_json: Some(json.into()),
            config_version: 1,
            ..FleetState::default()
        };
        group.bench_function(format!("whole_config_{vs}vs_{rs}rs"), |b| {
            b.iter(|| black_box(state.config().map(|c| c.is_some())))
        });
        group.bench_function(format!("cluster_only_{vs}vs_{rs}rs"), |b| {
            b.iter(|| black_box(state.cluster().map(|c| c.is_some())))
        });
    }
    group.finish();
}

criterion_group!(benches, parse_large, decode_committed);
criterion_main!(benches);
