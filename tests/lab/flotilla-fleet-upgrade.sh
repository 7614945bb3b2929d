#!/bin/bash
# Runbook: a rolling upgrade of the three-director fleet (cluster-configs/lab.conf), done as an
# operator does it (DESIGN.md "Rolling upgrade"), under continuous client traffic.
#
#   For d1, d2, d3 in turn:
#     `flotilla drain dN --wait` → SIGTERM → start it again → wait until it is back in
#     `flotilla status` (alive as seen by the other two, its own API answering, caught up with
#     the leader's epoch) → `flotilla undrain dN` → wait until it owns units again and the load
#     is balanced (hold-down 5 s), before the next director.
#   The restart runs the same binary (target/debug/flotilla): the runbook checks the procedure,
#   not a version change.
#   Meanwhile the client requests every VIP in turn (curl, 1 s limit each), and a watcher
#   samples every director's addresses every ~20 ms.
#   Checks: no request unanswered (curl timeout/refused); requests reset in flight across a
#   move (curl 52/56) are counted and reported, not failed: the responders are local to each
#   director here (no IPVS on the host tier), so a connection cannot survive a move; no VIP ever
#   without a holder; never two holders of a VIP for
#   longer than one advert interval (1 s; the stretch is measured between samples, so it is
#   an upper bound by one sample gap); each restarted director held nothing while stopped.
#   Prints FIGURE upgrade_requests=… upgrade_failed=… upgrade_unanswered=… upgrade_reset_in_flight=…
#   max_double_owner_s=… upgrade_s=…
#
# Usage (root): bash tests/lab/flotilla-fleet-upgrade.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
source tests/lab/lib/fleet.sh
runbook_begin upg || exit 1
lab_require curl python3 || exit 1
runbook_on_exit 'touch "$st/traffic.stop" "$st/watch.stop" 2>/dev/null'

fleet_boot

# back D: D answers on its own socket, the other two see it alive, and it has the leader's epoch.
back() {
  local d=$1 o e_me e_o
  for o in $DIRECTORS; do
    [[ $o == "$d" ]] && continue
    [[ $(fleet_json "$o" "next(m['alive'] for m in f['members'] if m['name']=='$d')") == True ]] || return 1
  done
  e_me=$(fleet_json "$d" "f['epoch']") || return 1
  e_o=$(fleet_json "$o" "f['epoch']") || return 1
  [[ -n $e_me && $e_me == "$e_o" ]]
}
owns_some() { [[ $(fleet_json "$1" "next(m['owns'] for m in f['members'] if m['name']=='$1')") -gt 0 ]]; }
settled() { local l; l=$(load); [[ $l != *"$1=0 "* ]] && (($(spread "$l") <= 3)) && each_once; }

say "Rolling upgrade under traffic"
t_start=$(lab_now_ms)
traffic_start 170
watch_start 180
sleep 1
for d in $DIRECTORS; do
  echo "   -- $d ($(lab_now_ms) ms)"
  t0=$(lab_now_ms)
  if "$FLOTILLA" drain "$d" --wait --api-socket "$st/$d.sock" | sed 's/^/   /'; [[ ${PIPESTATUS[0]} == 0 ]]; then
    pass "$d drained ($(_lab_seconds $(($(lab_now_ms) - t0))) s)"
  else fail "drain $d"; fi
  [[ $(load) == *"$d=0 "* ]] || fail "$d still holds VIPs after drain --wait: $(load)"
  echo "   $(lab_now_ms) ms: SIGTERM $d"
  lab_kill "$d" flotilla TERM || fail "$d did not stop on SIGTERM within 2 s"
  [[ $(load) == *"$d=0 "* ]] && pass "$d stopped (SIGTERM), holding nothing" || fail "$d stopped but holds VIPs: $(load)"
  sleep 0.5
  t0=$(lab_now_ms)
  fleet_start "$d"
  if wait_for 30 back "$d"; then pass "$d back in flotilla status, caught up ($(_lab_seconds $(($(lab_now_ms) - t0))) s after start)"
  else fail "$d not back within 30 s"; fi
  echo "   $(lab_now_ms) ms: undrain $d"
  "$FLOTILLA" undrain "$d" --api-socket "$st/$d.sock" | sed 's/^/   /'
  t0=$(lab_now_ms)
  if wait_for 30 owns_some "$d" && wait_for 15 settled "$d"; then pass "$d owns units again, balanced: $(load)($(_lab_seconds $(($(lab_now_ms) - t0))) s after undrain)"
  else fail "$d not given units back: $(load)"; fi
done
upgrade_s=$(_lab_seconds $(($(lab_now_ms) - t_start)))
sleep 1
traffic_stop
watch_stop

say "Results"
ok=$(grep -c '^ok$' "$st/replies"); bad=$(grep -c FAILED "$st/replies")
# CUT_IN_FLIGHT (curl 52/56, or connected and then timed out): the request was in flight to
# the old holder when the VIP moved; every other failure (7 refused, 28 before a connection …)
# is a VIP nobody answered.
resets=$(grep FAILED "$st/replies" | grep -cE "$CUT_IN_FLIGHT"); unanswered=$((bad - resets))
rep=$(watch_report "$t_start"); echo "   ownership samples: $(head -1 <<<"$rep")"
tail -n +2 <<<"$rep"
maxd=$(sed -n 's/.*max_double_s=\([0-9.]*\).*/\1/p' <<<"$rep")
echo "FIGURE upgrade_requests=$((ok + bad)) upgrade_failed=$bad upgrade_unanswered=$unanswered upgrade_reset_in_flight=$resets max_double_owner_s=$maxd upgrade_s=$upgrade_s"
((bad)) && echo "   failed: $(grep FAILED "$st/replies" | head -20 | tr '\n' ';')"
if ((ok > 100 && unanswered == 0)); then
  pass "rolling upgrade under traffic: $ok requests answered, none unanswered (no VIP ever unreachable)"
else
  fail "$unanswered of $((ok + bad)) requests were not answered"
fi
((resets == 0)) && pass "0 failed requests" \
  || echo "   note: $resets request(s) reset in flight when their VIP moved: each director answers with its own local HTTP responder (the host tier has no IPVS), so a TCP connection cannot survive a move here"
[[ $rep == zero=0\ * ]] && pass "no VIP was ever without a holder" || fail "VIPs without a holder: $rep"
awk -v m="$maxd" 'BEGIN{exit !(m <= 1.0)}' && pass "never two holders for longer than one advert interval (longest: $maxd s)" \
  || fail "two holders for $maxd s (> 1 s)"
each_once >/dev/null && pass "every VIP held exactly once at the end: $(load)" || fail "ownership at the end: $(each_once)"

for d in $DIRECTORS; do lab_kill "$d" flotilla TERM; done
[[ -n ${FLEET_KEEP:-} ]] && rm -rf "$FLEET_KEEP" && cp -r "$st" "$FLEET_KEEP"
runbook_end
