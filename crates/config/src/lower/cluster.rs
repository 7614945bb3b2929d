//! `cluster { name …; director NAME { address IP [port N] [interface CONFIGURED ACTUAL] };
//! tls { ca PATH dir PATH }; placement { hold_down 30s max_moves_per_second 20 } }`.
//!
//! Inside `director`, `tls` and `placement` several settings may share a line
//! (`director d1 { address 10.99.0.1 port 7180 }`): each setting has a fixed number of
//! values, so the line is read as a sequence of settings. This is flotilla's own block, so
//! keepalived's one-keyword-per-line rule does not have to bind it (keepalived reports the
//! block's lines as unknown keywords either way).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Ctx;
use crate::ast::{Node, Token};
use crate::model::Config;
use crate::model::cluster::{
    Cluster, DEFAULT_MESH_PORT, Director, HeartbeatSettings, PlacementSettings, Tls,
};
use crate::model::common::{Micros, Origin};
use crate::print::{Printer, word};

pub(crate) fn lower_top(node: &Node, ctx: &mut Ctx<'_>, cfg: &mut Config) -> bool {
    if node.word() != "cluster" {
        return false;
    }
    ctx.extra_tokens(node, 0);
    if let Some(first) = &cfg.cluster {
        let at = first
            .origin
            .0
            .map(|s| format!(" (the first is at line {})", s.line))
            .unwrap_or_default();
        ctx.error(
            node.span(),
            format!("a second 'cluster' block; only one is allowed{at}"),
        );
        return true;
    }
    let mut cluster = Cluster {
        name: String::new(),
        directors: Vec::new(),
        tls: None,
        placement: PlacementSettings::default(),
        heartbeat: HeartbeatSettings::default(),
        origin: Origin::at(node.span()),
    };
    let mut named = false;
    for child in ctx.block(node) {
        match child.word() {
            "name" => {
                if let Some(t) = ctx.single(child, "the cluster's name") {
                    cluster.name = t.text.clone();
                    named = true;
                }
            }
            "director" => {
                if let Some(d) = director(child, ctx) {
                    cluster.directors.push(d);
                }
            }
            "tls" => cluster.tls = tls(child, ctx),
            "placement" => placement(child, ctx, &mut cluster.placement),
            "heartbeat" => heartbeat(child, ctx, &mut cluster.heartbeat),
            _ => ctx.unknown_keyword(child, "cluster"),
        }
    }
    if !named {
        ctx.error(node.span(), "the cluster block needs 'name NAME'");
    }
    cfg.cluster = Some(cluster);
    true
}

fn director(node: &Node, ctx: &mut Ctx<'_>) -> Option<Director> {
    ctx.extra_tokens(node, 1);
    let name = ctx.arg(node, 0, "the director's name")?.text.clone();
    let mut address = None;
    let mut port = DEFAULT_MESH_PORT;
    let mut interfaces = BTreeMap::new();
    for child in settings(ctx.block(node), director_arity) {
        let child = &child;
        match child.word() {
            "address" => {
                if let Some(t) = ctx.single(child, "an IP address") {
                    address = ctx.ip(t, "director address").or(address);
                }
            }
            "port" => {
                if let Some(t) = ctx.single(child, "a UDP port")
                    && let Some(p) = ctx.uint_in(t, 1, 65535, "mesh port")
                {
                    port = p as u16;
                }
            }
            "interface" => {
                ctx.no_block(child);
                ctx.extra_tokens(child, 2);
                let configured = ctx.arg(child, 0, "the interface name used in the config");
                let actual = ctx.arg(child, 1, "this director's interface name");
                if let (Some(c), Some(a)) = (configured, actual)
                    && interfaces.insert(c.text.clone(), a.text.clone()).is_some()
                {
                    ctx.error(
                        c.span,
                        format!("interface '{}' is mapped twice for director {name}", c.text),
                    );
                }
            }
            _ => ctx.unknown_keyword(child, "director"),
        }
    }
    let Some(address) = address else {
        ctx.error(
            node.span(),
            format!("director {name} needs 'address IP' (its address on the mesh)"),
        );
        return None;
    };
    Some(Director {
        name,
        address,
        port,
        interfaces,
        origin: Origin::at(node.span()),
    })
}

fn tls(node: &Node, ctx: &mut Ctx<'_>) -> Option<Tls> {
    ctx.extra_tokens(node, 0);
    let mut ca = None;
    let mut dir = None;
    for child in settings(ctx.block(node), tls_arity) {
        let child = &child;
        match child.word() {
            "ca" => ca = ctx.single(child, "the CA certificate's path").map(path),
            "dir" => {
                dir = ctx
                    .single(child, "the directory of director certificates")
                    .map(path)
            }
            _ => ctx.unknown_keyword(child, "tls"),
        }
    }
    match (ca, dir) {
        (Some(ca), Some(dir)) => Some(Tls { ca, dir }),
        _ => {
            ctx.error(node.span(), "tls needs both 'ca PATH' and 'dir PATH'");
            None
        }
    }
}

fn director_arity(key: &str) -> Option<usize> {
    match key {
        "address" | "port" => Some(1),
        "interface" => Some(2),
        _ => None,
    }
}

fn tls_arity(key: &str) -> Option<usize> {
    matches!(key, "ca" | "dir").then_some(1)
}

fn heartbeat_arity(key: &str) -> Option<usize> {
    matches!(key, "interval" | "suspect_after" | "max_timeout").then_some(1)
}

fn heartbeat(node: &Node, ctx: &mut Ctx<'_>, out: &mut HeartbeatSettings) {
    ctx.extra_tokens(node, 0);
    for child in settings(ctx.block(node), heartbeat_arity) {
        let child = &child;
        match child.word() {
            "interval" => {
                if let Some(t) = ctx.single(child, "a duration (e.g. 20ms)")
                    && let Some(d) = duration(t, ctx)
                {
                    if (1_000..=10_000_000).contains(&d.0) {
                        out.interval = d;
                    } else {
                        ctx.error(
                            t.span,
                            "heartbeat interval must be between 1ms and 10s: it is the failure detector's clock",
                        );
                    }
                }
            }
            "suspect_after" => {
                if let Some(t) = ctx.single(child, "a number of missed heartbeats")
                    && let Some(n) = ctx.uint_in(t, 1, 1_000, "suspect_after")
                {
                    out.suspect_after = n as u32;
                }
            }
            "max_timeout" => {
                if let Some(t) = ctx.single(child, "a duration (e.g. 500ms)")
                    && let Some(d) = duration(t, ctx)
                {
                    out.max_timeout = d;
                }
            }
            _ => ctx.unknown_keyword(child, "heartbeat"),
        }
    }
    let base = out.interval.0.saturating_mul(u64::from(out.suspect_after));
    if out.max_timeout.0 < base {
        ctx.warning(
            node.span(),
            format!(
                "heartbeat max_timeout is below interval × suspect_after ({} ms): the timeout never adapts to late heartbeats",
                base / 1_000
            ),
        );
    }
}

fn placement_arity(key: &str) -> Option<usize> {
    matches!(key, "hold_down" | "max_moves_per_second").then_some(1)
}

/// Splits each line of a settings block into one node per setting, using each key's number
/// of values. An unknown key takes the rest of its line, so it is reported once.
fn settings(lines: &[Node], arity: fn(&str) -> Option<usize>) -> Vec<Node> {
    let mut out = Vec::new();
    for line in lines {
        if line.block.is_some() {
            out.push(line.clone());
            continue;
        }
        let words: Vec<&Token> = line.words().collect();
        let mut i = 0;
        while i < words.len() {
            let n = arity(&words[i].text).unwrap_or(words.len() - i - 1);
            let end = (i + 1 + n).min(words.len());
            out.push(Node {
                keyword: words[i].clone(),
                args: words[i + 1..end].iter().map(|t| (*t).clone()).collect(),
                rest: String::new(),
                block: None,
            });
            i = end;
        }
    }
    out
}

fn path(t: &Token) -> PathBuf {
    PathBuf::from(&t.text)
}

fn placement(node: &Node, ctx: &mut Ctx<'_>, out: &mut PlacementSettings) {
    ctx.extra_tokens(node, 0);
    for child in settings(ctx.block(node), placement_arity) {
        let child = &child;
        match child.word() {
            "hold_down" => {
                if let Some(t) = ctx.single(child, "a duration (e.g. 30s)")
                    && let Some(d) = duration(t, ctx)
                {
                    out.hold_down = d;
                }
            }
            "max_moves_per_second" => {
                if let Some(t) = ctx.single(child, "a number of moves")
                    && let Some(n) = ctx.uint_in(t, 1, 100_000, "max_moves_per_second")
                {
                    out.max_moves_per_second = n as u32;
                }
            }
            _ => ctx.unknown_keyword(child, "placement"),
        }
    }
}

/// A duration: seconds as keepalived writes them (`30`, `0.5`) or with a unit (`30s`,
/// `500ms`, `2m`).
fn duration(t: &Token, ctx: &mut Ctx<'_>) -> Option<Micros> {
    let s = t.text.as_str();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000_000)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1)
    };
    let parsed = number.parse::<Micros>().ok().and_then(|m| {
        if scale == 1 {
            Some(m)
        } else if scale == 1_000 {
            // milliseconds: the number is whole ms
            number.parse::<u64>().ok().map(Micros::from_millis)
        } else {
            m.0.checked_mul(60).map(Micros)
        }
    });
    if parsed.is_none() {
        ctx.error(
            t.span,
            format!("'{s}' is not a duration (write e.g. 30s, 500ms, 2m)"),
        );
    }
    parsed
}

pub(crate) fn validate(cfg: &Config, ctx: &mut Ctx<'_>) {
    let Some(cluster) = &cfg.cluster else {
        return;
    };
    let at = cluster.origin.0;
    if cluster.directors.is_empty()
        && let Some(span) = at
    {
        ctx.error(span, "the cluster has no 'director' entries");
    }
    for (i, d) in cluster.directors.iter().enumerate() {
        for earlier in &cluster.directors[..i] {
            let Some(span) = d.origin.0 else { continue };
            if earlier.name == d.name {
                ctx.error(span, format!("director {} is declared twice", d.name));
            } else if earlier.address == d.address && earlier.port == d.port {
                ctx.error(
                    span,
                    format!(
                        "directors {} and {} have the same mesh address {}:{}",
                        earlier.name, d.name, d.address, d.port
                    ),
                );
            }
        }
    }
}

pub(crate) fn print(cfg: &Config, p: &mut Printer) {
    let Some(c) = &cfg.cluster else {
        return;
    };
    p.open(&["cluster"]);
    p.line(&["name".to_string(), word(&c.name)]);
    for d in &c.directors {
        p.open(&["director".to_string(), word(&d.name)]);
        p.line(&["address".to_string(), d.address.to_string()]);
        if d.port != DEFAULT_MESH_PORT {
            p.line(&["port".to_string(), d.port.to_string()]);
        }
        for (configured, actual) in &d.interfaces {
            p.line(&["interface".to_string(), word(configured), word(actual)]);
        }
        p.close();
    }
    if let Some(t) = &c.tls {
        p.open(&["tls"]);
        p.line(&["ca".to_string(), word(&t.ca.to_string_lossy())]);
        p.line(&["dir".to_string(), word(&t.dir.to_string_lossy())]);
        p.close();
    }
    // Only the settings that differ from the defaults, like the keepalived blocks.
    let (pl, d) = (&c.placement, PlacementSettings::default());
    let mut b = p.child();
    if pl.hold_down != d.hold_down {
        b.line(&[
            "hold_down".to_string(),
            format!("{}s", pl.hold_down.keepalived_text()),
        ]);
    }
    if pl.max_moves_per_second != d.max_moves_per_second {
        b.line(&[
            "max_moves_per_second".to_string(),
            pl.max_moves_per_second.to_string(),
        ]);
    }
    if !b.is_empty() {
        p.open(&["placement"]);
        p.splice(b);
        p.close();
    }
    let (hb, d) = (&c.heartbeat, HeartbeatSettings::default());
    let mut b = p.child();
    if hb.interval != d.interval {
        b.line(&[
            "interval".to_string(),
            format!("{}s", hb.interval.keepalived_text()),
        ]);
    }
    if hb.suspect_after != d.suspect_after {
        b.line(&["suspect_after".to_string(), hb.suspect_after.to_string()]);
    }
    if hb.max_timeout != d.max_timeout {
        b.line(&[
            "max_timeout".to_string(),
            format!("{}s", hb.max_timeout.keepalived_text()),
        ]);
    }
    if !b.is_empty() {
        p.open(&["heartbeat"]);
        p.splice(b);
        p.close();
    }
    p.close();
    p.blank();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use crate::model::Config;
    use crate::{LoadOptions, Loaded, load_str};

    fn load(text: &str) -> Loaded {
        load_str(Path::new("t.conf"), text, &LoadOptions::default())
    }

    fn report(text: &str) -> String {
        load(text).report()
    }

    const LAB: &str = "cluster {
    name lab
    director d1 { address 10.99.0.1 }
    director d2 { address 10.99.0.2 port 7000 }
    director d3 {
        address 10.99.0.3
        interface eth0 ens3
    }
    tls { ca /pki/ca.pem  dir /pki }
    placement { hold_down 45s  max_moves_per_second 5 }
}
";

    #[test]
    fn the_issue_example_reads_with_settings_sharing_lines() {
        let l = load(LAB);
        assert!(l.is_ok(), "{}", l.report());
        assert_eq!(l.report(), "");
        let c = l.config.cluster.unwrap();
        assert_eq!(c.name, "lab");
        let names: Vec<_> = c.directors.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["d1", "d2", "d3"]);
        assert_eq!(c.directors[0].port, super::DEFAULT_MESH_PORT);
        assert_eq!(c.directors[1].port, 7000);
        assert_eq!(c.directors[2].interface("eth0"), "ens3");
        assert_eq!(c.directors[2].interface("eth1"), "eth1");
        let tls = c.tls.unwrap();
        assert_eq!(tls.certificate("d2"), Path::new("/pki/d2.pem"));
        assert_eq!(tls.key("d2"), Path::new("/pki/d2-key.pem"));
        assert_eq!(c.placement.hold_down, super::Micros::from_secs(45));
        assert_eq!(c.placement.max_moves_per_second, 5);
    }

    #[test]
    fn durations_take_units() {
        for (text, us) in [
            ("30", 30_000_000),
            ("1.5s", 1_500_000),
            ("500ms", 500_000),
            ("2m", 120_000_000),
        ] {
            let l = load(&format!(
                "cluster {{\n name x\n director a {{ address 10.0.0.1 }}\n placement {{ hold_down {text} }}\n}}\n"
            ));
            assert!(l.is_ok(), "{text}: {}", l.report());
            assert_eq!(
                l.config.cluster.unwrap().placement.hold_down.0,
                us,
                "{text}"
            );
        }
        assert!(report("cluster {\n name x\n director a { address 10.0.0.1 }\n placement { hold_down soon }\n}\n")
            .contains("t.conf:4:24: error: 'soon' is not a duration"));
    }

    #[test]
    fn heartbeat_settings_read_and_are_checked() {
        let base = "cluster {\n name x\n director a { address 10.0.0.1 }\n";
        let l = load(&format!(
            "{base} heartbeat {{ interval 50ms  suspect_after 4 }}\n max_timeout_is_not_here 1\n}}\n"
        ));
        let c = l.config.cluster.clone().unwrap();
        assert_eq!(c.heartbeat.interval.0, 50_000);
        assert_eq!(c.heartbeat.suspect_after, 4);
        assert_eq!(
            c.heartbeat.max_timeout,
            super::HeartbeatSettings::default().max_timeout
        );
        let l = load(&format!("{base}}}\n"));
        assert_eq!(
            l.config.cluster.unwrap().heartbeat,
            super::HeartbeatSettings::default()
        );
        let r = report(&format!(
            "{base} heartbeat {{ interval 0  suspect_after 0 }}\n heartbeat {{\n  interval 100ms\n  max_timeout 200ms\n  jitter 3\n }}\n}}\n"
        ));
        assert!(
            r.contains("t.conf:4:23: error: heartbeat interval must be between 1ms and 10s"),
            "{r}"
        );
        assert!(r.contains("t.conf:4:40: error:"), "{r}");
        assert!(r.contains("t.conf:5:2: warning: heartbeat max_timeout is below interval × suspect_after (500 ms)"), "{r}");
        assert!(
            r.contains("t.conf:8:3: warning: unknown keyword 'jitter' in heartbeat"),
            "{r}"
        );
    }

    #[test]
    fn mistakes_are_located() {
        let r = report(
            "cluster {\n name x\n director a { address 10.0.0.1 }\n director a { address 10.0.0.2 }\n director b { address 10.0.0.1 }\n director c { port 9 }\n tls { ca /x }\n colour blue\n}\ncluster {\n}\n",
        );
        assert!(
            r.contains("t.conf:4:2: error: director a is declared twice"),
            "{r}"
        );
        assert!(
            r.contains(
                "t.conf:5:2: error: directors a and b have the same mesh address 10.0.0.1:7180"
            ),
            "{r}"
        );
        assert!(
            r.contains("t.conf:6:2: error: director c needs 'address IP'"),
            "{r}"
        );
        assert!(
            r.contains("t.conf:7:2: error: tls needs both 'ca PATH' and 'dir PATH'"),
            "{r}"
        );
        assert!(
            r.contains("t.conf:8:2: warning: unknown keyword 'colour' in cluster"),
            "{r}"
        );
        assert!(r.contains("t.conf:10:1: error: a second 'cluster' block; only one is allowed (the first is at line 1)"), "{r}");
    }

    #[test]
    fn a_cluster_needs_a_name_and_directors() {
        let r = report("cluster {\n}\n");
        assert!(
            r.contains("t.conf:1:1: error: the cluster block needs 'name NAME'"),
            "{r}"
        );
        assert!(
            r.contains("t.conf:1:1: error: the cluster has no 'director' entries"),
            "{r}"
        );
    }

    proptest! {
        #[test]
        fn printed_clusters_read_back_equal(cluster in crate::model::cluster::arb::cluster()) {
            let cfg = Config { cluster: Some(cluster), ..Config::default() };
            let text = crate::to_keepalived(&cfg);
            let l = load(&text);
            prop_assert!(l.is_ok(), "{}\n{}", text, l.report());
            prop_assert_eq!(l.config, cfg);
        }
    }
}
