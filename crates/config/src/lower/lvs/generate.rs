//! A synthetic configuration for the parse benchmark (2,000 services, 37,000 real servers).

use std::fmt::Write;

/// keepalived text with `vs` virtual servers (distinct VIP:port, `wrr`, `DR`) and `rs` real
/// servers spread over them as evenly as possible, each with a TCP_CHECK or an HTTP_GET.
#[allow(
    dead_code,
    reason = "called by the parse benchmark once lower/mod.rs re-exports it"
)]
pub fn large_lvs_config(vs: usize, rs: usize) -> String {
    let mut out = String::with_capacity(rs * 200 + vs * 200);
    for v in 0..vs {
        let vip = format!("10.{}.{}.{}", 1 + v / 65_536 % 200, v / 256 % 256, v % 256);
        let port = 80 + (v % 1_000) as u16;
        let _ = writeln!(out, "virtual_server {vip} {port} {{");
        out.push_str("    delay_loop 6\n    lvs_sched wrr\n    lvs_method DR\n    protocol TCP\n");
        let here = rs / vs.max(1) + usize::from(v < rs % vs.max(1));
        for r in 0..here {
            let _ = writeln!(
                out,
                "    real_server 172.{}.{}.{} {port} {{",
                16 + v % 16,
                (v / 16 + r / 250) % 256,
                1 + r % 250
            );
            let _ = writeln!(out, "        weight {}", 1 + r % 10);
            if r % 2 == 0 {
                out.push_str("        TCP_CHECK {\n            connect_timeout 3\n        }\n");
            } else {
                out.push_str(
                    "        HTTP_GET {\n            url {\n                path /health\n                status_code 200\n            }\n            connect_timeout 3\n            retry 2\n        }\n",
                );
            }
            out.push_str("    }\n");
        }
        out.push_str("}\n");
    }
    out
}
