//! `flotilla status [--json]`: asks the local agent over its control socket and prints a
//! table (or the JSON answer as is).

use std::process::ExitCode;

use anyhow::{Context, bail};
use flotilla_agent::api::{DirectorStatus, Request, request};

use crate::StatusArgs;

pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    if let Some(vip) = args.vip {
        let status = runtime.block_on(ask(args))?;
        return Ok(match vip_view(&status, vip) {
            Some(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("flotilla: no instance here is configured with {vip}");
                ExitCode::from(1)
            }
        });
    }
    let Some(every) = args.watch else {
        let status = runtime.block_on(ask(args))?;
        print!("{}", render(&status, args.json)?);
        return Ok(ExitCode::SUCCESS);
    };
    let every = std::time::Duration::from_secs_f64(every.max(0.1));
    loop {
        // Clear the screen and home the cursor, as watch(1) does; an error is shown, not fatal,
        // so a restarting agent can be watched through.
        let body = match runtime.block_on(ask(args)) {
            Ok(status) => render(&status, args.json)?,
            Err(e) => format!("{e:#}\n"),
        };
        print!(
            "\x1b[H\x1b[2J{}\n(every {:.1} s; Ctrl-C to stop)\n",
            body,
            every.as_secs_f64()
        );
        std::thread::sleep(every);
    }
}

async fn ask(args: &StatusArgs) -> anyhow::Result<DirectorStatus> {
    let answer = request(&args.api_socket, &Request::Status)
        .await
        .with_context(|| {
            format!(
                "no agent answers on {} (is `flotilla agent` running? see --api-socket)",
                args.api_socket.display()
            )
        })?;
    let Some(status) = answer.status.filter(|_| answer.ok) else {
        bail!(
            "the agent refused: {}",
            answer.error.unwrap_or_else(|| "no reason given".into())
        );
    };
    Ok(status)
}

fn render(status: &DirectorStatus, json: bool) -> anyhow::Result<String> {
    Ok(if json {
        serde_json::to_string_pretty(status).context("encoding JSON")? + "\n"
    } else {
        table(status)
    })
}

fn table(s: &DirectorStatus) -> String {
    let header = [
        "INSTANCE",
        "GROUP",
        "IFACE",
        "VRID",
        "STATE",
        "PRIO",
        "MASTER",
        "VIPS HELD",
        "SINCE",
        "REASON",
        "ADVERTS TX/RX",
        "DROPPED",
    ];
    let rows: Vec<Vec<String>> = s
        .instances
        .iter()
        .map(|i| {
            let prio = if i.priority == i.effective_priority {
                i.priority.to_string()
            } else {
                format!("{} (cfg {})", i.effective_priority, i.priority)
            };
            let dropped = if i.dropped.is_empty() {
                "-".to_string()
            } else {
                i.dropped
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            vec![
                i.name.clone(),
                i.group.clone().unwrap_or_else(|| "-".into()),
                i.interface.clone(),
                i.vrid.to_string(),
                i.state.clone(),
                prio,
                i.master.clone().unwrap_or_else(|| "-".into()),
                if i.vips_held.is_empty() {
                    "-".into()
                } else {
                    i.vips_held.join(",")
                },
                format!("{:.1}s", i.since_seconds),
                match (&i.fault_by, &i.last_reason) {
                    (Some(t), _) => format!("fault: {t}"),
                    (None, Some(r)) => r.clone(),
                    (None, None) => "-".into(),
                },
                format!("{}/{}", i.adverts_sent, i.adverts_received),
                dropped,
            ]
        })
        .collect();
    let mut out = format!("mode: {}\n", s.mode);
    if let Some(f) = &s.fleet {
        out.push_str(&fleet_tables(f));
    }
    out.push_str(&columns(&header, &rows));
    for vs in &s.virtual_servers {
        out.push_str(&format!(
            "virtual server {} ({}){}{}\n",
            vs.name,
            vs.scheduler,
            if vs.quorum_up { "" } else { ", quorum lost" },
            if vs.sorry_server_active {
                ", sorry server serving"
            } else {
                ""
            }
        ));
        for r in &vs.real_servers {
            out.push_str(&format!(
                "  -> {:<28} {:<5} weight {:<4} {}\n",
                r.address,
                if r.alive { "UP" } else { "DOWN" },
                r.weight,
                r.reason.as_deref().unwrap_or("")
            ));
        }
    }
    if !s.unknown_vrids.is_empty() {
        out.push_str("adverts for virtual routers not configured here:\n");
        for u in &s.unknown_vrids {
            out.push_str(&format!(
                "  {} {} VRID {}: {} (last from {})\n",
                u.interface,
                if u.ipv6 { "IPv6" } else { "IPv4" },
                u.vrid,
                u.count,
                u.last_from
            ));
        }
    }
    out
}

/// A table with left-aligned columns.
fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut l = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn fleet_tables(f: &flotilla_agent::fleet::FleetReport) -> String {
    let mut out = format!(
        "fleet: this is {}, leader {}, term {}, placement epoch {}, config version {}\n\n",
        f.director,
        f.leader.as_deref().unwrap_or("none (no quorum)"),
        f.term,
        f.epoch,
        f.config_version
    );
    let members: Vec<Vec<String>> = f
        .members
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                if m.alive { "up" } else { "DOWN" }.into(),
                if m.drained { "drained" } else { "-" }.into(),
                if m.leader {
                    "leader".into()
                } else {
                    m.raft.as_str().into()
                },
                m.owns.to_string(),
                m.weight.to_string(),
                m.version.clone().unwrap_or_else(|| "?".into()),
                if m.faulty_units.is_empty() {
                    "-".into()
                } else {
                    m.faulty_units.join(",")
                },
            ]
        })
        .collect();
    out.push_str(&columns(
        &[
            "DIRECTOR", "STATE", "DRAIN", "RAFT", "UNITS", "VIPS", "VERSION", "FAULTY",
        ],
        &members,
    ));
    out.push('\n');
    if !f.raft_voters.is_empty() {
        out.push_str(&format!(
            "raft group: {} voter(s) {}; {} learner(s) {}\n\n",
            f.raft_voters.len(),
            f.raft_voters.join(" "),
            f.raft_learners.len(),
            if f.raft_learners.is_empty() {
                "-".to_string()
            } else {
                f.raft_learners.join(" ")
            }
        ));
    }
    let units: Vec<Vec<String>> = f
        .units
        .iter()
        .map(|u| {
            vec![
                u.name.clone(),
                u.owner.clone().unwrap_or_else(|| "-".into()),
                u.ranks.join(" > "),
                u.weight.to_string(),
                u.pinned_to.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    out.push_str(&columns(
        &["UNIT", "OWNER", "TAKEOVER ORDER", "VIPS", "PINNED"],
        &units,
    ));
    out.push_str("\nthis director's instances:\n");
    out
}

/// "Who owns 10.99.0.104, since when, why": the instance that carries the address here, its
/// unit's owner and takeover order in the fleet, and this director's state for it.
fn vip_view(s: &DirectorStatus, vip: std::net::IpAddr) -> Option<String> {
    let want = vip.to_string();
    let i = s.instances.iter().find(|i| i.vips.contains(&want))?;
    let unit = i.group.clone().unwrap_or_else(|| i.name.clone());
    let mut out = format!(
        "{vip}: instance {} (VRID {} on {})",
        i.name, i.vrid, i.interface
    );
    if i.group.is_some() {
        out.push_str(&format!(", sync group {unit}"));
    }
    out.push('\n');
    if let Some(f) = &s.fleet
        && let Some(u) = f.units.iter().find(|u| u.name == unit)
    {
        out.push_str(&format!(
            "  placement (epoch {}): owner {}, then {}{}\n",
            f.epoch,
            u.owner.as_deref().unwrap_or("nobody"),
            if u.ranks.len() > 1 {
                u.ranks[1..].join(", ")
            } else {
                "nobody".into()
            },
            u.pinned_to
                .as_ref()
                .map(|p| format!(" (pinned to {p})"))
                .unwrap_or_default()
        ));
    }
    let here = s
        .fleet
        .as_ref()
        .map(|f| f.director.clone())
        .unwrap_or_else(|| "this director".into());
    out.push_str(&format!(
        "  {here}: {} since {:.1} s ({}), priority {}, master {}, {}\n",
        i.state,
        i.since_seconds,
        i.fault_by
            .as_ref()
            .map(|f| format!("fault: {f}"))
            .or_else(|| i.last_reason.clone())
            .unwrap_or_else(|| "-".into()),
        i.effective_priority,
        i.master.as_deref().unwrap_or("unknown"),
        if i.vips_held.contains(&want) {
            "holds it"
        } else {
            "does not hold it"
        }
    ));
    Some(out)
}
