//! Inputs for flotilla's benchmarks and measurement harnesses: generated configurations of a
//! chosen size. Nothing here is used by the product.

use std::fmt::Write;

/// A keepalived configuration with `virtual_servers` LVS services and `real_servers` real
/// servers spread evenly over them, shaped like keepalived issue #2318 (2,277 VS, 37,205
/// RS, one checker each, which took keepalived 2.2.x 132 s to reload): every VS is wrr/DR on
/// its own VIP:port, every RS has one checker, alternating TCP_CHECK and HTTP_GET, plus one
/// VRRP instance per 250 VIPs.
pub fn large_config(virtual_servers: usize, real_servers: usize) -> String {
    let mut s = String::with_capacity(real_servers * 200 + virtual_servers * 200);
    s.push_str("global_defs {\n    router_id bench\n}\n\n");
    let vip = |i: usize| {
        format!(
            "10.{}.{}.{}",
            100 + i / 65_536 % 100,
            i / 256 % 256,
            i % 256
        )
    };
    for (n, chunk) in (0..virtual_servers)
        .collect::<Vec<_>>()
        .chunks(250)
        .enumerate()
    {
        let _ = writeln!(
            s,
            "vrrp_instance VI_{n} {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {}\n    priority 100\n    virtual_ipaddress {{",
            n % 255 + 1
        );
        for &i in chunk {
            let _ = writeln!(s, "        {}/32 dev eth0", vip(i));
        }
        s.push_str("    }\n}\n\n");
    }
    let per_vs = real_servers / virtual_servers.max(1);
    let extra = real_servers % virtual_servers.max(1);
    let mut rs_index = 0usize;
    for i in 0..virtual_servers {
        let port = 80 + i % 2;
        let _ = writeln!(
            s,
            "virtual_server {} {} {{\n    delay_loop 10\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP",
            vip(i),
            port
        );
        let count = per_vs + usize::from(i < extra);
        for _ in 0..count {
            let ip = format!(
                "172.{}.{}.{}",
                16 + rs_index / 65_536 % 16,
                rs_index / 256 % 256,
                rs_index % 256
            );
            if rs_index.is_multiple_of(2) {
                let _ = writeln!(
                    s,
                    "    real_server {ip} {port} {{\n        weight {}\n        TCP_CHECK {{\n            connect_timeout 3\n        }}\n    }}",
                    1 + rs_index % 3
                );
            } else {
                let _ = writeln!(
                    s,
                    "    real_server {ip} {port} {{\n        weight {}\n        HTTP_GET {{\n            url {{\n                path /health\n                status_code 200\n            }}\n            connect_timeout 3\n        }}\n    }}",
                    1 + rs_index % 3
                );
            }
            rs_index += 1;
        }
        s.push_str("}\n\n");
    }
    s
}

/// A fleet for placement: `units` units over `directors` directors, all up since time 0 and
/// eligible everywhere, default settings (30 s hold-down, 20 moves per second). Weights are
/// all 1, or when `weighted` spread over 1–20 by a fixed pseudo-random sequence.
pub fn placement_fleet(
    units: usize,
    directors: usize,
    weighted: bool,
) -> flotilla_cluster::placement::Input {
    use flotilla_cluster::placement::{Director, Input, Unit};
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut weight = move || {
        // xorshift64: a fixed sequence, so every run weighs the same fleet.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if weighted { 1 + (x % 20) as u32 } else { 1 }
    };
    Input {
        units: (0..units)
            .map(|i| (format!("VG_{i:05}"), Unit::new(weight())))
            .collect(),
        directors: (0..directors)
            .map(|i| (format!("lb{i:02}"), Director::up(std::time::Duration::ZERO)))
            .collect(),
        ..Input::default()
    }
}

/// Calls `place` at each wake-up from `now` until nothing more is owed; returns the last
/// plan, the moves made on the way, and the number of calls.
pub fn settle(
    input: &flotilla_cluster::placement::Input,
    previous: Option<&flotilla_cluster::placement::Assignment>,
    mut now: std::time::Duration,
) -> (
    flotilla_cluster::placement::Plan,
    Vec<flotilla_cluster::placement::Move>,
    usize,
) {
    use flotilla_cluster::placement::place;
    let mut plan = place(input, previous, now);
    let mut moves = plan.moves.clone();
    let mut calls = 1;
    while let Some(at) = plan.next_wakeup {
        now = at;
        plan = place(input, Some(&plan.assignment), now);
        moves.extend(plan.moves.iter().cloned());
        calls += 1;
    }
    (plan, moves, calls)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use flotilla_config::{LoadOptions, load_str};

    #[test]
    fn the_generated_config_is_clean_and_of_the_asked_size() {
        let l = load_str(
            Path::new("gen.conf"),
            &super::large_config(20, 370),
            &LoadOptions::default(),
        );
        assert!(l.diagnostics.is_empty(), "{}", l.report());
        let vs = &l.config.lvs.virtual_servers;
        assert_eq!(vs.len(), 20);
        assert_eq!(vs.iter().map(|v| v.real_servers.len()).sum::<usize>(), 370);
    }
}
