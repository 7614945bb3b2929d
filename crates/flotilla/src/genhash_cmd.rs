//! `flotilla genhash URL`: the MD5 `digest` an HTTP_GET/SSL_GET `url` block needs, computed
//! from what the real server answers now (keepalived's `genhash`).

use std::process::ExitCode;

use anyhow::Context;
use flotilla_check::probe::{GenhashRequest, genhash};

pub fn run(url: &str, virtualhost: Option<String>) -> anyhow::Result<ExitCode> {
    let mut req = match GenhashRequest::from_url(url) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flotilla genhash: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if virtualhost.is_some() {
        req.virtualhost = virtualhost;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match runtime.block_on(genhash(&req)) {
        Ok(g) => {
            println!("status {}, {} bytes", g.status, g.bytes);
            match g.digest {
                Some(d) => println!("digest {d}"),
                None => println!("no body"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("flotilla genhash: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
