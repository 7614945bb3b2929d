//! `flotilla`: the one binary of the fleet. Subcommands arrive with the issues that build
//! them; today it reads and checks configurations.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agent_cmd;
mod cert_cmd;
mod config_cmd;
mod fleet_cmd;
mod genhash_cmd;
mod ipvs_cmd;
mod lab_cmd;
mod status_cmd;

#[derive(Parser)]
#[command(
    name = "flotilla",
    version,
    about = "A fleet of LVS/IPVS directors that speaks VRRP and reads keepalived.conf"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read, check and show configurations.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a director: its VRRP instances as keepalived runs them (adverts, VIPs, gratuitous
    /// ARP / unsolicited NA, tracking, notify scripts), its virtual servers in IPVS with their
    /// health checkers and, with --name and a `cluster` block, its part in the fleet (mesh,
    /// Raft, placement). On SIGTERM every master sends priority 0 and removes its VIPs.
    ///
    /// Example: flotilla agent --config /etc/keepalived/keepalived.conf
    /// (fleet: flotilla agent --config /etc/flotilla/flotilla.conf --name d1)
    Agent(AgentArgs),
    /// Show what the local agent runs: per instance its state, priority (configured and
    /// effective), master, VIPs held, since when and why, advert counters and dropped packets.
    ///
    /// Example: flotilla status --json
    Status(StatusArgs),
    /// Show the kernel's IPVS table as `ipvsadm -Ln` does (`--stats` for counters), or with
    /// `--config` the table a configuration asks for, without touching the kernel.
    ///
    /// Example: flotilla ipvs --config /etc/keepalived/keepalived.conf
    Ipvs(IpvsArgs),
    /// Fleet: move every unit off a director (planned, make-before-break) and keep it empty
    /// until `undrain`; with --wait, show progress until it owns nothing.
    ///
    /// Example: flotilla drain d2 --wait
    Drain {
        name: String,
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[arg(long, default_value = flotilla_agent::api::DEFAULT_SOCKET)]
        api_socket: PathBuf,
    },
    /// Fleet: let a drained director take units again (at the placement rate limit).
    ///
    /// Example: flotilla undrain d2
    Undrain {
        name: String,
        #[arg(long, default_value = flotilla_agent::api::DEFAULT_SOCKET)]
        api_socket: PathBuf,
    },
    /// Fleet: pin a unit (sync group or instance) to a director.
    ///
    /// Example: flotilla move VI_104 --to d3
    Move {
        unit: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = flotilla_agent::api::DEFAULT_SOCKET)]
        api_socket: PathBuf,
    },
    /// Fleet: remove a unit's pin; placement may move it again.
    ///
    /// Example: flotilla unpin VI_104
    Unpin {
        unit: String,
        #[arg(long, default_value = flotilla_agent::api::DEFAULT_SOCKET)]
        api_socket: PathBuf,
    },
    /// Fleet: placement, read-only.
    #[command(subcommand)]
    Placement(PlacementCommand),
    /// The local fleet lab (root): `up [--directors N] [--ipvs]` builds namespaces,
    /// certificates and agents and waits until every VIP is held (`--ipvs`: inside a
    /// User-Mode Linux kernel with IPVS, left running); `demo` walks through a crash, a
    /// recovery, a drain under traffic and a failing backend; `status`; `exec NODE CMD...`;
    /// `down`.
    ///
    /// Example: flotilla lab up --ipvs && flotilla lab demo
    Lab {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "up|demo|status|exec|down"
        )]
        args: Vec<String>,
    },
    /// The MD5 digest of a real server's page, for an HTTP_GET/SSL_GET `digest` (keepalived's
    /// genhash).
    ///
    /// Example: flotilla genhash http://192.168.126.21/index.html
    Genhash {
        url: String,
        /// Host header (and SNI with https) instead of the URL's address.
        #[arg(long)]
        virtualhost: Option<String>,
    },
    /// Print a shell completion script.
    ///
    /// Example: flotilla completions bash > /etc/bash_completion.d/flotilla
    Completions { shell: clap_complete::Shell },
    /// Make the cluster CA and the directors' certificates (mutual TLS between directors).
    ///
    /// Example: flotilla cert init --dir /etc/flotilla/tls && flotilla cert issue --ca /etc/flotilla/tls --name d1
    #[command(subcommand)]
    Cert(CertCommand),
}

#[derive(Subcommand)]
enum PlacementCommand {
    /// The moves placement would make now (or with --drain NAME), without making them.
    ///
    /// Example: flotilla placement plan --drain d1
    Plan {
        #[arg(long)]
        drain: Option<String>,
        #[arg(long, default_value = flotilla_agent::api::DEFAULT_SOCKET)]
        api_socket: PathBuf,
    },
}

#[derive(Subcommand)]
enum CertCommand {
    /// Create a cluster CA: DIR/ca.pem and DIR/ca-key.pem (refuses to overwrite).
    ///
    /// Example: flotilla cert init --dir /etc/flotilla/tls
    Init {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue a director's certificate signed by the CA in --ca: OUT/NAME.pem and
    /// OUT/NAME-key.pem. NAME must be the `director` entry it will claim.
    ///
    /// Example: flotilla cert issue --ca /etc/flotilla/tls --name d1
    Issue {
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        name: String,
        /// Where to write (default: the CA's directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct IpvsArgs {
    /// Connection, packet and byte counters (`ipvsadm -Ln --stats`).
    #[arg(long)]
    stats: bool,
    /// JSON instead of ipvsadm's text.
    #[arg(long)]
    json: bool,
    /// Show what this configuration's virtual servers make, not the kernel's table.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct AgentArgs {
    /// The configuration file (keepalived.conf syntax).
    #[arg(long, short = 'f', default_value = "/etc/flotilla/flotilla.conf")]
    config: PathBuf,
    /// Selects `@ID` conditional lines (default: the first label of the host name).
    #[arg(long, short = 'i')]
    config_id: Option<String>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    /// The control socket `flotilla status` talks to.
    #[arg(long, default_value = flotilla_agent::api::DEFAULT_SOCKET)]
    api_socket: PathBuf,
    /// Serve `/metrics` (Prometheus), `/api/status` and a live status page on this address
    /// (off unless given), e.g. 127.0.0.1:9180.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Leave flotilla's IPVS rules in place when it stops (keepalived's -I).
    #[arg(long)]
    keep_ipvs: bool,
    /// Where IPVS rules go: the kernel, or (for demos and tests on kernels without IPVS) an
    /// in-memory table that never reaches the kernel.
    #[arg(long, value_enum, default_value_t = IpvsChoice::Kernel)]
    ipvs: IpvsChoice,
    /// Fleet mode: this director's name in the configuration's cluster block.
    #[arg(long)]
    name: Option<String>,
    /// Fleet mode: where this director keeps its Raft log and state.
    #[arg(long, default_value = "/var/lib/flotilla")]
    state_dir: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum IpvsChoice {
    Kernel,
    Memory,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Print the agent's answer as JSON.
    #[arg(long)]
    json: bool,
    /// Refresh every SECONDS (default 1) until interrupted.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "1")]
    watch: Option<f64>,
    /// Only this virtual address: who owns it, since when, why.
    #[arg(long, value_name = "ADDRESS")]
    vip: Option<std::net::IpAddr>,
    /// The agent's control socket.
    #[arg(long, default_value = flotilla_agent::api::DEFAULT_SOCKET)]
    api_socket: PathBuf,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration: diagnostics on stderr, exit 0 when valid (warnings allowed),
    /// 1 on errors.
    ///
    /// Example: flotilla config check /etc/keepalived/keepalived.conf
    Check(ConfigArgs),
    /// Print the resolved configuration (includes expanded) as keepalived syntax, writing
    /// only what differs from the defaults, or as JSON (every value) with --json.
    ///
    /// Example: flotilla config show --json cluster-configs/lab.conf
    Show {
        #[command(flatten)]
        args: ConfigArgs,
        /// Print the model as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fleet: validate a configuration and commit it for every director (through the Raft
    /// leader); a bad file is refused whole, with file:line:col, and nothing changes.
    ///
    /// Example: flotilla config apply cluster-configs/lab.conf
    Apply {
        #[command(flatten)]
        args: ConfigArgs,
        #[arg(long, default_value = flotilla_agent::api::DEFAULT_SOCKET)]
        api_socket: PathBuf,
    },
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// The configuration file (keepalived.conf syntax).
    file: PathBuf,
    /// Selects `@ID` conditional lines, like keepalived's --config-id (default: the first
    /// label of the host name).
    #[arg(long, short = 'i')]
    config_id: Option<String>,
    /// Treat unknown keywords and extra tokens as errors.
    #[arg(long)]
    strict: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Config(ConfigCommand::Check(args)) => config_cmd::check(&args),
        Command::Config(ConfigCommand::Show { args, json }) => config_cmd::show(&args, json),
        Command::Config(ConfigCommand::Apply { args, api_socket }) => {
            fleet_cmd::config_apply(&api_socket, &args.file, args.config_id.clone())
        }
        Command::Agent(args) => agent_cmd::run(&args),
        Command::Status(args) => status_cmd::run(&args),
        Command::Ipvs(args) => ipvs_cmd::run(&args),
        Command::Cert(cmd) => cert_cmd::run(&cmd),
        Command::Lab { args } => lab_cmd::run(&args),
        Command::Genhash { url, virtualhost } => genhash_cmd::run(&url, virtualhost),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "flotilla", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Drain {
            name,
            wait,
            timeout,
            api_socket,
        } => fleet_cmd::drain(
            &api_socket,
            &name,
            wait,
            std::time::Duration::from_secs(timeout),
        ),
        Command::Undrain { name, api_socket } => fleet_cmd::simple(
            &api_socket,
            flotilla_agent::api::Request::Undrain { director: name },
        ),
        Command::Move {
            unit,
            to,
            api_socket,
        } => fleet_cmd::simple(&api_socket, flotilla_agent::api::Request::Move { unit, to }),
        Command::Unpin { unit, api_socket } => {
            fleet_cmd::simple(&api_socket, flotilla_agent::api::Request::Unpin { unit })
        }
        Command::Placement(PlacementCommand::Plan { drain, api_socket }) => {
            fleet_cmd::simple(&api_socket, flotilla_agent::api::Request::Plan { drain })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flotilla: {e:#}");
            ExitCode::from(2)
        }
    }
}
