//! `flotilla lab up|demo|status|exec|down`: the local fleet lab (network namespaces on this
//! machine, or with `up --ipvs` inside a User-Mode Linux kernel that has IPVS), driven by the
//! repository's `ops/lab/fleet.sh` with this binary.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

/// `ops/lab/fleet.sh` of the repository this binary was built in (or the current directory's).
fn script() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let starts = exe
        .ancestors()
        .map(PathBuf::from)
        .chain(std::env::current_dir().ok());
    for dir in starts {
        let s = dir.join("ops/lab/fleet.sh");
        if s.is_file() {
            return Ok(s);
        }
    }
    bail!(
        "the lab needs a clone of the flotilla repository: ops/lab/fleet.sh not found beside this binary or here"
    )
}

/// Replaces this process with the script (exec), so that a Ctrl-C reaches the script alone
/// and its traps (which stop a half-booted guest) decide the exit code.
pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("locating this binary")?;
    let err = Command::new("bash")
        .arg(script()?)
        .args(args)
        .env("FLOTILLA", exe)
        .exec();
    Err(err).context("running the lab script")
}
