//! `gen-config VS RS > file.conf`: writes a generated configuration (see
//! `flotilla_benches::large_config`) for timing and peak-memory runs of
//! `flotilla config check`.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |i: usize, default: usize| -> Option<usize> {
        match args.get(i) {
            None => Some(default),
            Some(a) => a.parse().ok(),
        }
    };
    let (Some(vs), Some(rs)) = (parse(0, 2_000), parse(1, 37_000)) else {
        eprintln!("usage: gen-config [VIRTUAL_SERVERS [REAL_SERVERS]]  (default 2000 37000)");
        return ExitCode::from(2);
    };
    let text = flotilla_benches::large_config(vs, rs);
    if let Err(e) = std::io::stdout().write_all(text.as_bytes()) {
        eprintln!("gen-config: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
