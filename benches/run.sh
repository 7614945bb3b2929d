#!/usr/bin/env bash
# Every benchmark harness, one after the other, each printing its own table; the figures go
# into docs/BENCHMARKS.md with the machine and the date. Root for the lab harnesses.
#
#   bash benches/run.sh [--quick]      --quick: fewer rounds, shorter samples
#
# Harnesses (each can also be run alone):
#   criterion   cargo bench -p flotilla-benches   config parse 2,000 VS / 37,000 RS, IPVS
#               reconcile at that size, placement 10,000 units × 64 directors
#   placement   target/release/placement-figures  moves vs the lower bound
#   checkers    cargo run --release -p flotilla-check --example load   CPU of TCP_CHECK/HTTP_GET
#   vrrp        benches/lab/vrrp-failover.sh      takeover and idle CPU, flotilla vs keepalived
#   fleet       benches/lab/fleet-failover.sh     fleet crash failover vs keepalived (if present)
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0; [[ ${1:-} == --quick ]] && quick=1
section() { printf '\n\033[1m######## %s\033[0m\n' "$*"; }
rc=0

section "criterion: config parse, IPVS reconcile, placement (release)"
if ((quick)); then
  cargo bench -q -p flotilla-benches -- --warm-up-time 1 --measurement-time 3 2>&1 | grep -E '^[a-z_/0-9]+ +time:|time:' || rc=1
else
  cargo bench -q -p flotilla-benches 2>&1 | grep -E 'time:' || rc=1
fi

section "placement: moves against the lower bound"
cargo build -q --release -p flotilla-benches --bin placement-figures && target/release/placement-figures || rc=1

section "checkers: CPU for N real servers checked every second"
if ((quick)); then n="1000"; else n="1000 10000"; fi
for count in $n; do
  for kind in tcp http; do
    cargo run -q --release -p flotilla-check --example load -- "$kind" "$count" 10 2>&1 | tail -4 || rc=1
  done
done

if [[ $EUID -eq 0 ]]; then
  section "VRRP takeover and idle CPU, flotilla vs keepalived (lab)"
  if ((quick)); then PARTS=takeover bash benches/lab/vrrp-failover.sh 3 || rc=1
  else bash benches/lab/vrrp-failover.sh || rc=1; fi
  if [[ -f benches/lab/fleet-failover.sh ]]; then
    section "fleet crash failover vs keepalived (lab)"
    if ((quick)); then ROUNDS=3 bash benches/lab/fleet-failover.sh || rc=1
    else bash benches/lab/fleet-failover.sh || rc=1; fi
  fi
else
  section "lab harnesses skipped: run as root"
fi
exit $rc
