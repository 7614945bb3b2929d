#!/bin/bash
# Runbook: `flotilla lab up --ipvs`, the local fleet lab inside User-Mode Linux with real IPVS,
# used from the host as an operator would.
#
#   0. Ctrl-C (SIGINT to the command's process group, as a terminal sends it) while the guest
#      boots: the command exits 130 and leaves no guest process, namespace or state behind.
#   1. `flotilla lab up --ipvs --directors 2` returns once the fleet is ready and leaves the
#      guest running.
#   2. The client requests every VIP three times (curl): b1 and b2 answer 2:1 (wrr, LVS-DR), and
#      the directors' IPVS counters (`ipvsadm -Ln --stats`, read 3 s later: the kernel's
#      estimator folds the per-CPU counters into them every 2 s) move: connections by as many
#      (at most; a client port IPVS still has an entry for would reuse it), inbound packets by
#      at least 5 per request.
#   3. `flotilla lab status` shows the placement and d1's IPVS table.
#   4. `flotilla lab down` stops the guest and removes the lab; a second `down` is fine, and
#      `lab status` then says there is no lab.
#
# Usage (root): bash tests/lab/uml-flotilla-lab.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh

# A guest an interrupted run left behind (runbook_begin's lab_down would forget it).
LAB_PREFIX=${LAB_TEST_PREFIX:-lab-t}-umllab bash ops/lab/fleet.sh down >/dev/null
runbook_begin umllab || exit 1
runbook_on_exit '"$FLOTILLA" lab down >/dev/null'
st=$(lab_state_dir)
out=$(mktemp /tmp/flotilla-umllab.XXXXXX)
runbook_on_exit 'rm -f "$out"'
figure() { echo "FIGURE $*"; }

say "0. Ctrl-C while lab up --ipvs boots the guest"
# A process group of its own, as a shell's foreground job is, and SIGINT not ignored (bash
# starts background jobs of a script with SIGINT ignored, and an ignored signal cannot be
# trapped; a terminal's foreground job has it at its default).
python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.setsid()
os.execvp(sys.argv[1], sys.argv[1:])' "$FLOTILLA" lab up --ipvs --directors 2 > "$out" 2>&1 &
upid=$!
t0=$(lab_now_ms)
until grep -q booting "$out" 2>/dev/null || (($(lab_now_ms) - t0 > 20000)); do sleep 0.1; done
sleep 2
guest_pids() { pgrep -f -- "$st/uml/share"; }
booting=$(guest_pids | wc -l)
kill -INT -- "-$upid"
t0=$(lab_now_ms)
wait "$upid"; rc=$?
until [[ -z $(guest_pids) ]] || (($(lab_now_ms) - t0 > 30000)); do sleep 0.2; done
took=$(_lab_seconds $(($(lab_now_ms) - t0)))
sed 's/.*\r//' "$out" | tail -n 3 | sed 's/^/   /'
((booting > 0)) || fail "no guest process was running when Ctrl-C came (too late or too early?)"
((rc == 130)) && pass "lab up exited 130 on Ctrl-C" || fail "lab up exited $rc on Ctrl-C"
[[ -z $(guest_pids) ]] && pass "the booting guest ($booting processes) stopped $took s after Ctrl-C" \
  || { fail "guest processes left after Ctrl-C: $(guest_pids | tr '\n' ' ')"; pkill -KILL -f -- "$st/uml/share"; }
[[ -z $(ip netns list | grep "^$LAB_PREFIX-") ]] && pass "no namespace left" || fail "namespaces left: $(ip netns list | grep "^$LAB_PREFIX-" | tr '\n' ' ')"

say "1. flotilla lab up --ipvs --directors 2"
t0=$(lab_now_ms)
"$FLOTILLA" lab up --ipvs --directors 2 > "$out" 2>&1
rc=$?
took=$(_lab_seconds $(($(lab_now_ms) - t0)))
# The progress lines rewrite themselves with \r: show each line's last state.
sed 's/.*\r//' "$out" | sed 's/^/   /'
((rc == 0)) && pass "lab up --ipvs returned ready after $took s" || { fail "lab up --ipvs (exit code $rc)"; runbook_end; }
figure "lab_up_ipvs_s=$took"
uml=$(cat "$st/uml/uml.pid" 2>/dev/null)
[[ -n $uml ]] && kill -0 "$uml" 2>/dev/null && pass "the guest keeps running (UML pid $uml)" || fail "no running guest after lab up"

say "2. Every VIP, 3 requests each, from the client: answered by b1 and b2 through IPVS"
mapfile -t vips < <("$FLOTILLA" ipvs --config cluster-configs/lab.conf | awk '/^TCP/ {sub(/:80$/, "", $2); print $2}')
# One command in the guest: counters, requests, counters (each `lab exec` is a round trip).
t0=$(lab_now_ms)
"$FLOTILLA" lab exec c bash -c '
  # Conns and InPkts of every service, summed over both directors.
  counters() { for d in d1 d2; do ip netns exec "$LAB_PREFIX-$d" ipvsadm -Ln --stats; done |
    awk "/^TCP/ {c += \$3; p += \$4} END {print c + 0, p + 0}"; }
  echo "before $(counters)"
  for i in 1 2 3; do for v in "$@"; do curl -s -m 2 "http://$v/" || echo FAILED; done; done
  sleep 3
  echo "after $(counters)"' - "${vips[@]}" > "$out" 2>&1
secs=$(_lab_seconds $(($(lab_now_ms) - t0)))
count() { grep -cx "$1" "$out"; }
want=$((3 * ${#vips[@]}))
read -r c0 p0 < <(awk '$1 == "before" {print $2, $3}' "$out")
read -r c1 p1 < <(awk '$1 == "after" {print $2, $3}' "$out")
echo "   ${#vips[@]} VIPs, $want requests in $secs s: b1=$(count b1) b2=$(count b2) failed=$(count FAILED)"
echo "   IPVS (both directors): Conns ${c0:-?} → ${c1:-?}, InPkts ${p0:-?} → ${p1:-?}"
((${#vips[@]} == 14)) || fail "lab.conf's VIPs: ${vips[*]}"
[[ $(count b1) == $((want * 2 / 3)) && $(count b2) == $((want / 3)) ]] && pass "b1:b2 = $(count b1):$(count b2) (wrr 2:1)" \
  || { fail "answers: b1=$(count b1) b2=$(count b2) failed=$(count FAILED), want $((want * 2 / 3)):$((want / 3))"; sed 's/^/   | /' "$out" | head -20; }
if [[ -n ${c1:-} && -n ${p1:-} ]] && ((c1 - c0 > 0 && c1 - c0 <= want && p1 - p0 >= 5 * want)); then
  pass "IPVS counters moved: +$((c1 - c0)) connections, +$((p1 - p0)) inbound packets"
else fail "IPVS counters: Conns ${c0:-?} → ${c1:-?}, InPkts ${p0:-?} → ${p1:-?} for $want requests"; fi
figure "requests=$want request_secs=$secs ipvs_conns=$((${c1:-0} - ${c0:-0})) ipvs_inpkts=$((${p1:-0} - ${p0:-0}))"

say "3. flotilla lab status"
"$FLOTILLA" lab status > "$out" 2>&1
rc=$?
{ grep -E '^(IPVS lab|fleet:|DIRECTOR|d[0-9] )' "$out"; grep -A5 '^IP Virtual Server' "$out"; grep '^every director' "$out"; } | sed 's/^/   /'
((rc == 0)) && grep -q '^d2 *up ' "$out" && grep -q '^UNIT ' "$out" && pass "status: placement, both directors up" || fail "status (exit code $rc)"
grep -qE '^TCP  10\.99\.0\.100:80 wrr' "$out" && grep -qE -- '-> 10\.99\.0\.11:80 +Route +2 ' "$out" \
  && pass "status: d1's IPVS table (flotilla ipvs): 10.99.0.100:80 wrr, b1 Route 2" || fail "status shows no IPVS table"

say "4. flotilla lab down, twice"
t0=$(lab_now_ms)
"$FLOTILLA" lab down
rc=$?
took=$(_lab_seconds $(($(lab_now_ms) - t0)))
((rc == 0)) && pass "lab down in $took s" || fail "lab down (exit code $rc)"
figure "lab_down_s=$took"
[[ -n $uml ]] && kill -0 "$uml" 2>/dev/null && fail "UML (pid $uml) still runs" || pass "the guest is gone"
[[ ! -e $st ]] && pass "its state ($st) is removed" || fail "$st is left"
"$FLOTILLA" lab down && pass "a second lab down is fine" || fail "a second lab down failed"
"$FLOTILLA" lab status > "$out" 2>&1 && fail "lab status after down: $(cat "$out")" || pass "lab status after down: $(cat "$out")"

runbook_end
