//! `flotilla config check|show`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use flotilla_config::{LoadOptions, Loaded, load_file};

use crate::ConfigArgs;

fn load(args: &ConfigArgs) -> Loaded {
    let opts = LoadOptions {
        config_id: args.config_id.clone().or_else(host_label),
        strict: args.strict,
    };
    let loaded = load_file(&args.file, &opts);
    eprint!("{}", loaded.report());
    loaded
}

/// keepalived's default config id: the host name up to its first dot.
pub fn host_label() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let label = name.trim().split('.').next()?.to_string();
    (!label.is_empty()).then_some(label)
}

pub fn check(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(args);
    let errors = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == flotilla_config::Severity::Error)
        .count();
    let warnings = loaded.diagnostics.len() - errors;
    if errors > 0 {
        eprintln!(
            "{}: invalid: {errors} error(s), {warnings} warning(s)",
            args.file.display()
        );
        Ok(ExitCode::from(1))
    } else {
        eprintln!("{}: valid ({warnings} warning(s))", args.file.display());
        Ok(ExitCode::SUCCESS)
    }
}

pub fn show(args: &ConfigArgs, json: bool) -> anyhow::Result<ExitCode> {
    let loaded = load(args);
    if !loaded.is_ok() {
        eprintln!("{}: invalid, nothing shown", args.file.display());
        return Ok(ExitCode::from(1));
    }
    let text = if json {
        let mut s =
            serde_json::to_string_pretty(&loaded.config).context("serialising the model")?;
        s.push('\n');
        s
    } else {
        flotilla_config::to_keepalived(&loaded.config)
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
