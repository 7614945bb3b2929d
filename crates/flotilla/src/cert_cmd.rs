//! `flotilla cert init|issue`: the cluster CA and one certificate per director, for the
//! mesh's mutual TLS. Keys are written 0600 and never overwritten.

use std::process::ExitCode;

use crate::CertCommand;

pub fn run(cmd: &CertCommand) -> anyhow::Result<ExitCode> {
    let done = match cmd {
        CertCommand::Init { dir } => flotilla_cluster::cert::init_ca(dir),
        CertCommand::Issue { ca, name, out } => {
            flotilla_cluster::cert::issue(ca, name, out.as_deref().unwrap_or(ca))
        }
    };
    match done {
        Ok(files) => {
            println!("{}", files.cert.display());
            println!("{}", files.key.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("flotilla cert: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
