//! `flotilla agent`: load and validate the configuration (a bad file starts nothing), then run
//! the director until SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use flotilla_config::{LoadOptions, load_file};

use crate::AgentArgs;

pub fn run(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_json);
    let loaded = load_file(
        &args.config,
        &LoadOptions {
            config_id: args
                .config_id
                .clone()
                .or_else(crate::config_cmd::host_label),
            strict: false,
        },
    );
    eprint!("{}", loaded.report());
    if !loaded.is_ok() {
        eprintln!("{}: invalid, not starting", args.config.display());
        return Ok(ExitCode::from(1));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match runtime.block_on(flotilla_agent::director::run_standalone(
        &loaded.config,
        &args.api_socket,
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
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
