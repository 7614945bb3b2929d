#!/usr/bin/env bash
# Every benchmark harness, one after the other, each printing its own table (keepalived
# measured in the same run wherever the question applies); the figures go into
# docs/BENCHMARKS.md with the machine and the date. Root for the lab harnesses.
#
#   bash benches/run.sh [--quick] [PART...]      default: every part (about an hour on 2 cores;
#                                                --quick: fewer rounds, shorter samples, ≈ 25 min)
#   e.g. bash benches/run.sh idle fast handover
#
# Parts (each harness can also be run alone; the command is printed above its table):
#   criterion   cargo bench -p flotilla-benches   config parse 2,000 VS / 37,000 RS, IPVS
#               reconcile at that size, placement 10,000 units × 64 directors
#   placement   placement-figures                 moves vs the lower bound
#   checkers    flotilla-check example `load`     CPU of TCP_CHECK/HTTP_GET, flotilla alone
#   checker-cpu benches/lab/checker-cpu.sh        10,000 real servers, flotilla vs keepalived
#               (in UML: keepalived's checker needs IPVS)
#   reload      benches/lab/reload.sh             2,000 VS / 37,000 RS into IPVS, reloaded with
#               and without a change, flotilla vs keepalived (in UML)
#   idle        benches/lab/idle-cpu.sh           idle CPU/RSS, 1,000 VIPs on 3 directors:
#               keepalived, flotilla standalone, flotilla fleet
#   vrrp        benches/lab/vrrp-failover.sh      pair takeover and 200-instance CPU vs keepalived
#   fleet       benches/lab/fleet-failover.sh     fleet crash failover vs keepalived, 1 s adverts
#               (+ ~1,000 VIPs, config apply)
#   fast        the same at 0.1 s adverts (fleet vs keepalived)
#   handover    the same with SIGTERM instead of a crash (graceful handover), 1 s and 0.1 s
#   upgrade     benches/lab/rolling-upgrade.sh    requests lost over a rolling upgrade of the 3
#               directors: flotilla drain/restart/undrain vs keepalived restarts
#
# The flotilla binary is the release build (cargo build --release -p flotilla; under
# CARGO_TARGET_DIR when set) for every lab harness.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
quick=0; [[ ${1:-} == --quick ]] && { quick=1; shift; }
ALL="criterion placement checkers checker-cpu reload idle vrrp fleet fast handover upgrade"
parts=" ${*:-$ALL} "
for p in $parts; do [[ " $ALL " == *" $p "* ]] || { echo "unknown part '$p' (parts: $ALL)"; exit 2; }; done
want() { [[ $parts == *" $1 "* ]]; }
section() { printf '\n\033[1m######## %s\033[0m\n' "$*"; }
# run CMD...: print the exact command, run it, remember a failure
run() { printf '$'; printf ' %q' "$@"; echo; "$@" || rc=1; }
rc=0
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem/ {print $2}') GiB, kernel $(uname -r); load now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u +%F); $(rustc --version); $(keepalived --version 2>&1 | head -1)"

if want criterion; then
  section "criterion: config parse, IPVS reconcile, placement (release)"
  if ((quick)); then
    cargo bench -q -p flotilla-benches -- --warm-up-time 1 --measurement-time 3 2>&1 | grep -E 'time:' || rc=1
  else
    cargo bench -q -p flotilla-benches 2>&1 | grep -E 'time:' || rc=1
  fi
fi

if want placement; then
  section "placement: moves against the lower bound (release)"
  cargo build -q --release -p flotilla-benches --bin placement-figures && "$TARGET/release/placement-figures" || rc=1
fi

if want checkers; then
  section "checkers: flotilla's CPU for N real servers checked every second (release, loopback)"
  if ((quick)); then n="1000"; else n="1000 10000"; fi
  for count in $n; do
    for kind in tcp http; do
      cargo run -q --release -p flotilla-check --example load -- "$kind" "$count" 10 2>&1 | tail -4 || rc=1
    done
  done
fi

need_root() { [[ $EUID -eq 0 ]] && return 0; section "$1 skipped: run as root"; return 1; }
if ((quick)); then R=3; else R=10; fi

if want checker-cpu && need_root checker-cpu; then
  section "checker CPU, 10,000 real servers, flotilla vs keepalived (UML; flotilla also on the host; release)"
  if ((quick)); then run env RS=2000 DELAY=20 SECS=30 ROUNDS=1 bash benches/lab/checker-cpu.sh
  else run env ROUNDS=2 bash benches/lab/checker-cpu.sh; fi
fi
if want reload && need_root reload; then
  section "reload of 2,000 VS / 37,000 RS, flotilla vs keepalived (UML, release)"
  if ((quick)); then run env VS=200 RS=3700 bash benches/lab/reload.sh
  else run bash benches/lab/reload.sh; fi
fi
if want idle && need_root idle; then
  section "idle CPU, 1,000 VIPs over 3 directors, flotilla vs keepalived (lab, release)"
  if ((quick)); then run env SECS=30 ROUNDS=1 bash benches/lab/idle-cpu.sh
  else run bash benches/lab/idle-cpu.sh; fi
fi
if want vrrp && need_root vrrp; then
  section "VRRP takeover and idle CPU, flotilla vs keepalived (lab, release)"
  if ((quick)); then run env PARTS=takeover bash benches/lab/vrrp-failover.sh 3
  else run bash benches/lab/vrrp-failover.sh; fi
fi
fleet_bin() { cargo build --release --quiet -p flotilla && echo "$TARGET/release/flotilla"; }
if want fleet && need_root fleet; then
  section "fleet crash failover vs keepalived, advert_int 1 s (lab, release)"
  b=$(fleet_bin) || rc=1
  if ((quick)); then run env FLOTILLA_BIN="$b" ROUNDS=3 ROUNDS_MANY=2 ROUNDS_APPLY=2 bash benches/lab/fleet-failover.sh
  else run env FLOTILLA_BIN="$b" bash benches/lab/fleet-failover.sh; fi
fi
if want fast && need_root fast; then
  section "fleet crash failover vs keepalived, advert_int 0.1 s (lab, release)"
  b=$(fleet_bin) || rc=1
  run env FLOTILLA_BIN="$b" ADV=0.1 ROUNDS=$R PARTS="fleet keepalived" bash benches/lab/fleet-failover.sh
fi
if want handover && need_root handover; then
  section "fleet graceful handover (SIGTERM) vs keepalived, advert_int 1 s and 0.1 s (lab, release)"
  b=$(fleet_bin) || rc=1
  for adv in 1 0.1; do
    run env FLOTILLA_BIN="$b" KILL=term ADV=$adv ROUNDS=$R PARTS="fleet keepalived" bash benches/lab/fleet-failover.sh
  done
fi
if want upgrade && need_root upgrade; then
  section "rolling upgrade of 3 directors under traffic, flotilla vs keepalived (lab, release)"
  b=$(fleet_bin) || rc=1
  if ((quick)); then run env FLOTILLA_BIN="$b" ROUNDS=1 bash benches/lab/rolling-upgrade.sh
  else run env FLOTILLA_BIN="$b" ROUNDS=3 bash benches/lab/rolling-upgrade.sh; fi
fi
exit $rc
