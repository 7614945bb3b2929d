//! `flotilla ipvs`: the kernel's IPVS table in `ipvsadm -Ln` terms, or with `--config` the
//! table a configuration asks for (what the agent would program), without touching the kernel.

use std::process::ExitCode;

use flotilla_config::{LoadOptions, load_file};
use flotilla_ipvs::{
    Dataplane, IpvsInfo, KernelDataplane, Listing, ServiceStatus, desired_state, idle_status,
    render_ipvsadm,
};

use crate::IpvsArgs;

pub fn run(args: &IpvsArgs) -> anyhow::Result<ExitCode> {
    let listing = if args.stats {
        Listing::Stats
    } else {
        Listing::Rules
    };
    let (info, services): (IpvsInfo, Vec<ServiceStatus>) = match &args.config {
        Some(path) => {
            let loaded = load_file(path, &LoadOptions::default());
            if !loaded.is_ok() {
                eprint!("{}", loaded.report());
                return Ok(ExitCode::from(1));
            }
            match desired_state(&loaded.config.lvs) {
                Ok(specs) => (
                    IpvsInfo {
                        version: 0x010201,
                        conn_tab_size: 4096,
                    },
                    idle_status(&specs),
                ),
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    return Ok(ExitCode::from(1));
                }
            }
        }
        None => {
            let read = KernelDataplane::connect().and_then(|mut k| Ok((k.info()?, k.status()?)));
            match read {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("flotilla ipvs: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&services)?);
    } else {
        print!("{}", render_ipvsadm(&info, &services, listing));
    }
    Ok(ExitCode::SUCCESS)
}
