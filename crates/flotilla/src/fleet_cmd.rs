//! Fleet commands, sent to an agent's control socket (any director forwards to the Raft
//! leader): `drain`, `undrain`, `move`, `unpin`, `placement plan`, `config apply`.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use flotilla_agent::api::{Answer, Request, request};
use flotilla_config::{LoadOptions, load_file};

fn ask(socket: &Path, req: &Request) -> anyhow::Result<Answer> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(request(socket, req)).with_context(|| {
        format!(
            "no agent answers on {} (is `flotilla agent` running? see --api-socket)",
            socket.display()
        )
    })
}

fn finish(a: &Answer) -> ExitCode {
    if a.ok {
        if let Some(m) = &a.message {
            println!("{}", m.trim_end());
        }
        ExitCode::SUCCESS
    } else {
        eprintln!("flotilla: {}", a.error.as_deref().unwrap_or("refused"));
        ExitCode::from(1)
    }
}

pub fn simple(socket: &Path, req: Request) -> anyhow::Result<ExitCode> {
    Ok(finish(&ask(socket, &req)?))
}

/// `flotilla drain NAME [--wait]`: with --wait, shows progress until NAME owns nothing (and,
/// asked on NAME's own socket, until it is master of nothing).
pub fn drain(
    socket: &Path,
    director: &str,
    wait: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let a = ask(
        socket,
        &Request::Drain {
            director: director.to_string(),
        },
    )?;
    let code = finish(&a);
    if !a.ok || !wait {
        return Ok(code);
    }
    let t0 = Instant::now();
    let mut last = usize::MAX;
    loop {
        let st = ask(socket, &Request::Status)?;
        let status = st.status;
        // Asked on the drained director itself: also wait until it is master of nothing on
        // the wire (the committed assignment changes first; the VIPs leave a moment later).
        let still_master = status.as_ref().is_some_and(|s| {
            s.fleet.as_ref().is_some_and(|f| f.director == director)
                && s.instances.iter().any(|i| i.state == "MASTER")
        });
        let owns = status
            .and_then(|s| s.fleet)
            .and_then(|f| f.members.into_iter().find(|m| m.name == director))
            .map(|m| m.owns);
        match owns {
            Some(0) if still_master => {}
            Some(0) => {
                println!(
                    "{director} owns nothing ({:.1} s)",
                    t0.elapsed().as_secs_f64()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Some(n) if n != last => {
                println!("{director} still owns {n} unit(s)…");
                last = n;
            }
            None => anyhow::bail!("the agent does not report director {director}"),
            _ => {}
        }
        if t0.elapsed() > timeout {
            eprintln!("flotilla: {director} still owns units after {timeout:?}");
            return Ok(ExitCode::from(1));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `flotilla config apply FILE`: validated here first (a bad file is refused whole, with
/// file:line:col), then committed for the whole fleet.
pub fn config_apply(
    socket: &Path,
    file: &Path,
    config_id: Option<String>,
) -> anyhow::Result<ExitCode> {
    let loaded = load_file(
        file,
        &LoadOptions {
            config_id: config_id.or_else(crate::config_cmd::host_label),
            strict: false,
        },
    );
    eprint!("{}", loaded.report());
    if !loaded.is_ok() {
        eprintln!("{}: invalid, nothing applied", file.display());
        return Ok(ExitCode::from(1));
    }
    if loaded.config.cluster.is_none() {
        eprintln!(
            "{}: no cluster block: a fleet configuration needs one",
            file.display()
        );
        return Ok(ExitCode::from(1));
    }
    let json = serde_json::to_string(&loaded.config).context("encoding the configuration")?;
    simple(socket, Request::ConfigApply { json })
}
