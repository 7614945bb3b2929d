#!/bin/bash
# Runbook: the README's main job on the host tier — `flotilla lab up`, `flotilla lab demo`,
# `flotilla lab status`, `flotilla lab down` — as a newcomer runs it (ops/demo.sh does the
# build, then up + demo).
#
#   1. `lab up` returns once the 3-director fleet is ready and prints the placement.
#   2. `lab demo` runs to the end: every VIP answers; the crashed director's VIPs are taken
#      over (the measured time under 1 s); it comes back and holds VIPs again; the drain under
#      traffic leaves no request unanswered (a request reset or cut in flight as its VIP leaves d1 is
#      counted apart: here each director answers with its own local server); the failed
#      backend leaves the LVS table.
#   3. `lab status` shows three directors up; `lab down` removes everything, twice.
#
# Usage (root): bash tests/lab/flotilla-lab-demo.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
runbook_begin demo || exit 1
runbook_on_exit '"$FLOTILLA" lab down >/dev/null 2>&1'
st=$(lab_state_dir)
out=$(mktemp /tmp/flotilla-demo.XXXXXX)
runbook_on_exit 'rm -f "$out"'
# The progress lines rewrite themselves with \r; colours off for matching.
clean() { sed -e 's/.*\r//' -e 's/\x1b\[[0-9;]*m//g' "$out"; }

say "1. flotilla lab up"
t0=$(lab_now_ms)
"$FLOTILLA" lab up > "$out" 2>&1
rc=$?
took=$(_lab_seconds $(($(lab_now_ms) - t0)))
clean | tail -n 5 | sed 's/^/   /'
((rc == 0)) && pass "lab up returned ready after $took s" || { fail "lab up (exit code $rc)"; clean | tail -20; runbook_end; }
echo "FIGURE lab_up_s=$took"
clean | grep -q '^UNIT ' && pass "it printed the placement table" || fail "no placement table"

say "2. flotilla lab demo"
t0=$(lab_now_ms)
"$FLOTILLA" lab demo > "$out" 2>&1
rc=$?
took=$(_lab_seconds $(($(lab_now_ms) - t0)))
((rc == 0)) && pass "lab demo ran to the end in $took s" || { fail "lab demo (exit code $rc)"; clean | tail -30 | sed 's/^/   | /'; }
echo "FIGURE lab_demo_s=$took"
takeover=$(clean | sed -n "s/.*all of d2's VIPs taken over by survivors in \([0-9.]*\) s.*/\1/p")
[[ -n $takeover ]] && awk -v t="$takeover" 'BEGIN { exit !(t < 1) }' \
  && pass "step 2: d2's VIPs taken over in $takeover s" || fail "step 2: takeover '${takeover:-none}' ($(clean | grep -m1 -A2 'director crashes'))"
clean | grep -qE 'd2 holds [1-9][0-9]* VIP' && pass "step 3: d2 back and holding VIPs" || fail "step 3: d2 never held VIPs again"
drain=$(clean | grep -m1 'during the drain:')
resets=$(clean | sed -n 's/^ *(\([0-9]*\) reset or cut in flight.*/\1/p')
[[ $drain =~ ([0-9]+)\ requests\ answered,\ 0\ failed ]] && ((BASH_REMATCH[1] > 0)) \
  && pass "step 4: drain under traffic, ${BASH_REMATCH[1]} requests answered, 0 unanswered (${resets:-0} reset or cut in flight)" \
  || { fail "step 4: ${drain:-no drain line}"; clean | grep '^ *failed: ' | sed 's/^/   /'; }
echo "FIGURE demo_drain_reset=${resets:-0}"
clean | grep -qE 'b1 left (d1.s IPVS table )?after [0-9.]+ s' && pass "step 5: the failed backend left the LVS table" \
  || fail "step 5: $(clean | grep -m1 -A3 'A backend fails')"
echo "FIGURE demo_takeover_s=${takeover:-none}"

say "3. flotilla lab status, lab down twice"
"$FLOTILLA" lab status > "$out" 2>&1 && [[ $(clean | grep -cE '^d[123] +up ') == 3 ]] \
  && pass "status: three directors up" || fail "status: $(clean | head -12)"
"$FLOTILLA" lab down > /dev/null 2>&1 && pass "lab down" || fail "lab down"
[[ -z $(ip netns list | grep "^$LAB_PREFIX-") ]] && pass "no namespace left" || fail "namespaces left: $(ip netns list | grep "^$LAB_PREFIX-" | tr '\n' ' ')"
[[ -z $(ip netns pids "$LAB_PREFIX-d1" 2>/dev/null) ]] || fail "processes left in d1"
"$FLOTILLA" lab down > /dev/null 2>&1 && pass "a second lab down is fine" || fail "a second lab down failed"

runbook_end
