//! `flotilla agent`: load and validate the configuration (a bad file starts nothing), then run
//! the director until SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use flotilla_config::{LoadOptions, load_file};

use crate::AgentArgs;

pub fn run(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_json);
    let options = LoadOptions {
        config_id: args
            .config_id
            .clone()
            .or_else(crate::config_cmd::host_label),
        strict: false,
    };
    let loaded = load_file(&args.config, &options);
    eprint!("{}", loaded.report());
    if !loaded.is_ok() {
        eprintln!("{}: invalid, not starting", args.config.display());
        return Ok(ExitCode::from(1));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    // SIGHUP: the same file, read again and validated before anything changes.
    let reload = || {
        let again = load_file(&args.config, &options);
        if again.is_ok() {
            if !again.diagnostics.is_empty() {
                tracing::warn!("{}", again.report().trim_end());
            }
            Ok(again.config)
        } else {
            Err(again.report())
        }
    };
    let options = flotilla_agent::director::Options {
        api_socket: args.api_socket.clone(),
        listen: args.listen,
        keep_ipvs: args.keep_ipvs,
        ipvs: match args.ipvs {
            crate::IpvsChoice::Kernel => flotilla_agent::lvs::IpvsBackend::Kernel,
            crate::IpvsChoice::Memory => flotilla_agent::lvs::IpvsBackend::Memory,
        },
        fleet: args
            .name
            .clone()
            .map(|name| flotilla_agent::director::FleetArgs {
                name,
                state_dir: args.state_dir.clone(),
            }),
    };
    // The sources (the file's text) are not kept: a reload reads the file again.
    let flotilla_config::Loaded {
        config,
        sources,
        diagnostics,
    } = loaded;
    drop((sources, diagnostics));
    let config = std::sync::Arc::new(config);
    match runtime.block_on(flotilla_agent::director::run_standalone(
        config, reload, &options,
    )) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("flotilla agent: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal; log files and journald get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
