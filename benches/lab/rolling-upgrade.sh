#!/bin/bash
# Harness (not a test): requests lost over a rolling upgrade of all three directors, flotilla
# vs keepalived on the same host-netns lab (cluster-configs/lab.conf's 14 VIPs, VRRPv3,
# advert 1 s), the same client and the same ownership watcher. Prints one table.
#
#   flotilla   ROUNDS runs of tests/lab/flotilla-fleet-upgrade.sh: per director, `flotilla
#              drain dN --wait` → SIGTERM → start → back in status → `flotilla undrain dN` →
#              balanced; its FIGURE line.
#   keepalived three nodes with the same instances (keepalived-conf.py: d1 150, d2 100, d3 50,
#              multicast), each node running the same HTTP responder as the fleet's. Per node in
#              turn: SIGTERM to keepalived (it sends priority 0 and drops its VIPs; keepalived
#              has no drain, a restart is how it is upgraded), started again 0.5 s later, then
#              wait until d1 holds every VIP again (it preempts) and 2 s more. ROUNDS runs.
#   Both: the client requests every VIP in turn (curl, 1 s limit each) from before the first
#   node until after the last; "unanswered" = timeouts/refusals (no holder answered),
#   "reset" = curl 52/56, or connected and then no answer (CUT_IN_FLIGHT in tests/lab/lib/fleet.sh:
#   a connection in flight to a director that let go: the responders are local to each
#   director, no IPVS on the host kernel); the watcher samples every
#   director's addresses every ~20 ms: samples with a VIP unheld, the longest double holder.
#
# Usage (root): bash benches/lab/rolling-upgrade.sh
# Env: ROUNDS (default 3), PARTS ("flotilla keepalived"), FLOTILLA_BIN (default: debug build),
#      BENCH_LAB_PREFIX (namespace prefix, default lab-bru)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-flotilla keepalived}
export LAB_TEST_PREFIX=${BENCH_LAB_PREFIX:-lab-bru}
declare -A ROWS

# row LABEL FILE: the table row from FIGURE lines "requests= failed= unanswered= reset= double= zero= secs="
row() {
  python3 - "$2" <<'EOF'
import re, statistics, sys
runs = [dict(re.findall(r"(\w+)=([0-9.]+)", l)) for l in open(sys.argv[1]) if l.startswith("FIGURE ")]
if not runs: print("- (no complete run)"); sys.exit()
tot = lambda k: sum(float(r.get(k, 0)) for r in runs)
mx = lambda k: max(float(r.get(k, 0)) for r in runs)
print(f"{len(runs)} | {tot('requests'):.0f} | {tot('unanswered'):.0f} | {tot('reset'):.0f} | "
      f"{tot('zero'):.0f} | {mx('double'):.3f} | {statistics.median(float(r['secs']) for r in runs):.1f}")
EOF
}

if [[ " $PARTS " == *" flotilla "* ]]; then
  echo "== flotilla: tests/lab/flotilla-fleet-upgrade.sh × $ROUNDS"
  : > /tmp/bench-upgrade-flotilla.$$
  for ((r = 1; r <= ROUNDS; r++)); do
    out=$(bash tests/lab/flotilla-fleet-upgrade.sh 2>&1)
    fig=$(grep '^FIGURE upgrade_requests=' <<<"$out")
    rep=$(grep -o 'ownership samples: .*' <<<"$out")
    echo "   run $r: ${fig#FIGURE }; ${rep}"
    [[ -n $fig ]] || { echo "   run $r did not finish:"; tail -15 <<<"$out" | sed 's/^/   | /'; continue; }
    zero=$(sed -n 's/.*zero=\([0-9]*\).*/\1/p' <<<"$rep")
    sed -E -e 's/upgrade_(requests|failed|unanswered)=/\1=/g' -e 's/upgrade_reset_in_flight=/reset=/' \
      -e 's/max_double_owner_s=/double=/' -e 's/upgrade_s=/secs=/' <<<"$fig zero=${zero:-0}" >> /tmp/bench-upgrade-flotilla.$$
  done
  ROWS[flotilla]=$(row flotilla /tmp/bench-upgrade-flotilla.$$)
  rm -f /tmp/bench-upgrade-flotilla.$$
fi

if [[ " $PARTS " == *" keepalived "* ]]; then
  echo "== keepalived 3 nodes (150 / 100 / 50): restart each in turn × $ROUNDS"
  figures=$(mktemp /tmp/bench-upgrade-ka.XXXXXX)
  for ((r = 1; r <= ROUNDS; r++)); do
    # One subshell per run: the runbook library's traps take its lab down on any exit.
    (
      source tests/lab/lib/runbook.sh
      source tests/lab/lib/fleet.sh
      runbook_begin kaupg >/dev/null || exit 1
      lab_require keepalived curl python3 || exit 1
      runbook_on_exit 'touch "$st/traffic.stop" "$st/watch.stop" 2>/dev/null'
      fleet_up 5s >/dev/null || exit 1
      prio=(150 100 50); i=0
      for d in $DIRECTORS; do
        python3 benches/lab/keepalived-conf.py "$d" "${prio[i]}" "$st/lab.conf" 1 > "$st/$d.ka.conf" || exit 1
        i=$((i + 1))
      done
      ka_start() { lab_spawn "$1" keepalived keepalived --dont-fork --log-console --vrrp -f "$st/$1.ka.conf" -p "$st/$1.pid" -r "$st/$1-vrrp.pid"; }
      d1_all() { [[ $(load) == "d1=$(wc -w <<<"$VIPS") d2=0 d3=0 " ]]; }
      for d in $DIRECTORS; do ka_start "$d"; done
      wait_for 30 d1_all || { echo "   keepalived never settled: $(load)" >&2; exit 1; }
      sleep 1
      t_start=$(lab_now_ms)
      traffic_start 170
      watch_start 180
      sleep 1
      for d in $DIRECTORS; do
        lab_kill "$d" keepalived TERM || echo "   $d: keepalived did not stop within 2 s" >&2
        sleep 0.5
        rm -f "$st/$d.pid" "$st/$d-vrrp.pid"
        ka_start "$d"
        wait_for 30 d1_all || echo "   after $d's restart: not settled: $(load)" >&2
        sleep 2
      done
      secs=$(_lab_seconds $(($(lab_now_ms) - t_start)))
      traffic_stop
      watch_stop
      ok=$(grep -c '^ok$' "$st/replies"); bad=$(grep -c FAILED "$st/replies")
      resets=$(grep FAILED "$st/replies" | grep -cE "$CUT_IN_FLIGHT")
      rep=$(watch_report "$t_start")
      zero=$(sed -n '1s/.*zero=\([0-9]*\).*/\1/p' <<<"$rep")
      maxd=$(sed -n '1s/.*max_double_s=\([0-9.]*\).*/\1/p' <<<"$rep")
      echo "   run $r: requests=$((ok + bad)) failed=$bad unanswered=$((bad - resets)) reset=$resets double=$maxd secs=$secs; ownership samples: $(head -1 <<<"$rep")" >&2
      echo "FIGURE requests=$((ok + bad)) failed=$bad unanswered=$((bad - resets)) reset=$resets double=${maxd:-0} zero=${zero:-0} secs=$secs"
      for d in $DIRECTORS; do lab_kill "$d" keepalived TERM; done
    ) 2>&1 >> "$figures" | grep -v '^$'
  done
  ROWS[keepalived]=$(row keepalived "$figures")
  rm -f "$figures"
fi

echo
echo "== rolling upgrade of 3 directors under traffic (14 VIPs, VRRPv3, advert 1 s); $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo "   command: ROUNDS=$ROUNDS PARTS=\"$PARTS\" FLOTILLA_BIN=${FLOTILLA_BIN:-<debug build>} bash benches/lab/rolling-upgrade.sh"
echo "| implementation | runs | requests | unanswered | reset in flight | samples with a VIP unheld | longest double holder (s) | seconds per run (median) |"
echo "|---|---|---|---|---|---|---|---|"
[[ -n ${ROWS[flotilla]:-} ]] && echo "| flotilla fleet (drain → restart → undrain) | ${ROWS[flotilla]} |"
[[ -n ${ROWS[keepalived]:-} ]] && echo "| keepalived 2.2.7 (restart each) | ${ROWS[keepalived]} |"
exit 0
