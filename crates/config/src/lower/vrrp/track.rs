//! Trackers: `vrrp_script`, `track_file`, `vrrp_track_process`, and the entries that use
//! them (`track_interface`, `track_script`, `track_file`, `track_process` blocks).

use std::path::PathBuf;

use super::super::Ctx;
use super::{name_arg, timer, uint};
use crate::ast::Node;
use crate::model::common::{Micros, Origin, Script};
use crate::model::vrrp::{
    InitFile, ParamMatch, TrackFile, TrackProcess, TrackRef, TrackedInterface, VrrpScript,
};

/// keepalived still reads ±254 and lowers it to ±253 with an error; 253 is the real bound
/// (a tracker must never move a priority across 0 or 255).
const MAX_WEIGHT: i64 = 253;

/// `weight N [reverse]` inside a tracker definition: (weight, reverse).
fn weight_line(ctx: &mut Ctx<'_>, node: &Node, max: i64) -> Option<(i32, bool)> {
    ctx.no_block(node);
    ctx.extra_tokens(node, 2);
    let t = ctx.arg(node, 0, "a weight")?;
    let w = ctx.int_in(t, -max, max, "weight")? as i32;
    let reverse = match node.args.get(1) {
        None => false,
        Some(r) if r.text == "reverse" => true,
        Some(r) => {
            ctx.error(
                r.span,
                format!("unknown weight option '{}' (only 'reverse')", r.text),
            );
            false
        }
    };
    Some((w, reverse))
}

/// `vrrp_script NAME { … }`. A script without `script` is reported and dropped, as
/// keepalived does.
pub(super) fn vrrp_script(ctx: &mut Ctx<'_>, node: &Node) -> Option<VrrpScript> {
    let name = name_arg(ctx, node, "the script's name")?;
    let mut script: Option<Script> = None;
    let mut user: Option<(String, Option<String>)> = None;
    let mut interval = Micros::from_secs(1);
    let mut timeout = None;
    let mut weight = (0, false);
    let mut rise = 1;
    let mut fall = 1;
    let mut init_fail = false;
    for c in ctx.block(node) {
        match c.word() {
            "script" => script = ctx.script(c).or(script),
            "interval" => {
                interval = millis(ctx, c, "interval").unwrap_or(interval);
            }
            "timeout" => timeout = millis(ctx, c, "timeout").or(timeout),
            "weight" => weight = weight_line(ctx, c, MAX_WEIGHT).unwrap_or(weight),
            "rise" => rise = uint(ctx, c, 1, i32::MAX as u64, "rise").unwrap_or(rise as u64) as u32,
            "fall" => fall = uint(ctx, c, 1, i32::MAX as u64, "fall").unwrap_or(fall as u64) as u32,
            "user" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 2);
                if let Some(u) = ctx.arg(c, 0, "a user name") {
                    user = Some((u.text.clone(), c.arg_str(1).map(str::to_string)));
                }
            }
            "init_fail" => init_fail = ctx.flag(c),
            _ => ctx.unknown_keyword(c, "vrrp_script"),
        }
    }
    let Some(mut script) = script else {
        ctx.error(
            node.span(),
            format!(
                "vrrp_script {name} has no 'script'; keepalived drops it, and every track_script naming it fails"
            ),
        );
        return None;
    };
    if let Some((u, g)) = user {
        script.user = Some(u);
        script.group = g;
    }
    Some(VrrpScript {
        name,
        script,
        interval,
        timeout: timeout.unwrap_or(interval),
        weight: weight.0,
        reverse: weight.1,
        rise,
        fall,
        init_fail,
        origin: Origin::at(node.span()),
    })
}

/// A script interval: seconds with millisecond resolution, at least 1 ms.
fn millis(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Micros> {
    let t = timer(
        ctx,
        node,
        Micros(0),
        // keepalived keeps script times in µs in an unsigned int: at most 4294 s.
        Micros::from_secs(u64::from(u32::MAX) / 1_000_000),
        what,
    )?;
    if t.0 % 1000 != 0 {
        ctx.error(
            node.args[0].span,
            format!(
                "{what} {} s is finer than the 1 ms resolution of scripts",
                t.keepalived_text()
            ),
        );
        return None;
    }
    if t.0 == 0 {
        ctx.error(
            node.args[0].span,
            format!("{what} must be greater than 0 (keepalived uses 1 s instead)"),
        );
        return Some(Micros::from_secs(1));
    }
    Some(t)
}

/// `track_file NAME { … }`.
pub(super) fn track_file(ctx: &mut Ctx<'_>, node: &Node) -> Option<TrackFile> {
    let name = name_arg(ctx, node, "the tracker's name")?;
    let mut file = None;
    let mut weight = (1, false);
    let mut init_file = None;
    for c in ctx.block(node) {
        match c.word() {
            "file" => {
                file = ctx
                    .single(c, "a file path")
                    .map(|t| PathBuf::from(&t.text))
                    .or(file)
            }
            "weight" => weight = weight_line(ctx, c, 254).unwrap_or(weight),
            "init_file" => {
                ctx.no_block(c);
                ctx.extra_tokens(c, 2);
                let mut init = InitFile {
                    value: 0,
                    overwrite: false,
                };
                for t in c.args.iter().take(2) {
                    if t.text == "overwrite" {
                        init.overwrite = true;
                    } else if let Some(v) = ctx.int_in(
                        t,
                        i64::from(i32::MIN),
                        i64::from(i32::MAX),
                        "init_file value",
                    ) {
                        init.value = v;
                    }
                }
                init_file = Some(init);
            }
            _ => ctx.unknown_keyword(c, node.word()),
        }
    }
    let Some(file) = file else {
        ctx.error(
            node.span(),
            format!("track_file {name} needs 'file PATH'; keepalived drops it"),
        );
        return None;
    };
    Some(TrackFile {
        name,
        file,
        weight: weight.0,
        reverse: weight.1,
        init_file,
        origin: Origin::at(node.span()),
    })
}

/// `vrrp_track_process NAME { … }`.
pub(super) fn track_process(ctx: &mut Ctx<'_>, node: &Node) -> Option<TrackProcess> {
    let name = name_arg(ctx, node, "the tracker's name")?;
    let mut process = Vec::new();
    let mut param_match = ParamMatch::Exact;
    let mut weight = (0, false);
    let mut quorum = 1;
    let mut quorum_max = 65535;
    let mut delays = [Micros(0); 3];
    let mut full_command = false;
    for c in ctx.block(node) {
        match c.word() {
            "process" => {
                ctx.no_block(c);
                if ctx.arg(c, 0, "a process name").is_some() {
                    process = c.args.iter().map(|t| t.text.clone()).collect();
                }
            }
            "param_match" => {
                if let Some(t) = ctx.single(c, "initial or partial") {
                    match t.text.as_str() {
                        "initial" => param_match = ParamMatch::Initial,
                        "partial" => param_match = ParamMatch::Partial,
                        other => ctx.error(
                            t.span,
                            format!("param_match '{other}' must be 'initial' or 'partial'"),
                        ),
                    }
                }
            }
            "weight" => weight = weight_line(ctx, c, 254).unwrap_or(weight),
            "quorum" => quorum = uint(ctx, c, 1, 65535, "quorum").map_or(quorum, |n| n as u32),
            "quorum_max" => {
                quorum_max = uint(ctx, c, 0, 65535, "quorum_max").map_or(quorum_max, |n| n as u32)
            }
            "delay" | "terminate_delay" | "fork_delay" => {
                let i = match c.word() {
                    "delay" => 0,
                    "terminate_delay" => 1,
                    _ => 2,
                };
                let max = Micros::from_secs(u64::from(u32::MAX) / 1_000_000);
                if let Some(t) = timer(ctx, c, Micros(0), max, c.word()) {
                    delays[i] = t;
                    // `delay` sets both, as keepalived does; the specific ones refine it.
                    if i == 0 {
                        delays[1] = t;
                        delays[2] = t;
                    }
                }
            }
            "full_command" => full_command = ctx.flag(c),
            _ => ctx.unknown_keyword(c, "vrrp_track_process"),
        }
    }
    if process.is_empty() {
        ctx.error(
            node.span(),
            format!("vrrp_track_process {name} needs 'process NAME'; keepalived drops it"),
        );
        return None;
    }
    if quorum > quorum_max {
        ctx.error(
            node.span(),
            format!("vrrp_track_process {name}: quorum {quorum} is above quorum_max {quorum_max}"),
        );
    }
    Some(TrackProcess {
        name,
        process,
        param_match,
        weight: weight.0,
        reverse: weight.1,
        quorum,
        quorum_max,
        delay: delays[0],
        terminate_delay: delays[1],
        fork_delay: delays[2],
        full_command,
        origin: Origin::at(node.span()),
    })
}

/// The lines of a `track_interface { IF [weight N [reverse]] … }` block.
pub(super) fn interfaces(ctx: &mut Ctx<'_>, node: &Node, within: &str) -> Vec<TrackedInterface> {
    ctx.extra_tokens(node, 0);
    let mut out: Vec<TrackedInterface> = Vec::new();
    for c in ctx.block(node) {
        let Some((weight, reverse)) = entry_weight(ctx, c, false) else {
            continue;
        };
        if out.iter().any(|t| t.name == c.word()) {
            ctx.warning(
                c.span(),
                format!(
                    "{within} tracks interface {} twice; the second entry is ignored",
                    c.word()
                ),
            );
            continue;
        }
        out.push(TrackedInterface {
            name: c.word().to_string(),
            weight: weight.unwrap_or(0),
            reverse: reverse.unwrap_or(false),
            origin: Origin::at(c.span()),
        });
    }
    out
}

/// The lines of a `track_script` / `track_file` / `track_process` block.
pub(super) fn refs(ctx: &mut Ctx<'_>, node: &Node, within: &str) -> Vec<TrackRef> {
    ctx.extra_tokens(node, 0);
    let mut out: Vec<TrackRef> = Vec::new();
    for c in ctx.block(node) {
        let Some((weight, reverse)) = entry_weight(ctx, c, true) else {
            continue;
        };
        if out.iter().any(|t| t.name == c.word()) {
            ctx.warning(
                c.span(),
                format!(
                    "{within} names {} twice in {}; the second entry is ignored",
                    c.word(),
                    node.word()
                ),
            );
            continue;
        }
        out.push(TrackRef {
            name: c.word().to_string(),
            weight,
            reverse,
            origin: Origin::at(c.span()),
        });
    }
    out
}

/// `NAME [weight N [reverse|noreverse]]`; `None` when the line is unusable.
fn entry_weight(
    ctx: &mut Ctx<'_>,
    c: &Node,
    noreverse_ok: bool,
) -> Option<(Option<i32>, Option<bool>)> {
    ctx.no_block(c);
    let Some(first) = c.args.first() else {
        return Some((None, None));
    };
    if first.text != "weight" {
        ctx.error(
            first.span,
            format!(
                "unknown option '{}' after tracked name {} (expected 'weight N'; one entry per line)",
                first.text,
                c.word()
            ),
        );
        return None;
    }
    let Some(wt) = c.args.get(1) else {
        ctx.error(
            first.span,
            format!("'weight' without a value for {}", c.word()),
        );
        return None;
    };
    let weight = ctx.int_in(wt, -MAX_WEIGHT, MAX_WEIGHT, "weight")? as i32;
    ctx.extra_tokens(c, 3);
    let reverse = match c.args.get(2).map(|t| (t, t.text.as_str())) {
        None => None,
        Some((_, "reverse")) => Some(true),
        Some((_, "noreverse")) if noreverse_ok => Some(false),
        Some((t, other)) => {
            ctx.error(
                t.span,
                format!("unknown weight option '{other}' for {}", c.word()),
            );
            return None;
        }
    };
    Some((Some(weight), reverse))
}
