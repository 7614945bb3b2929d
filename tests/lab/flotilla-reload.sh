#!/bin/bash
# Runbook: SIGHUP reload touches only what changed (keepalived #1603, #2159).
#
# d1 runs flotilla with VI_1 (10.99.0.100) and VI_2 (10.99.0.101), VRRPv3 0.1 s, master of both.
#   1. SIGHUP with the file unchanged: no transition, both VIPs stay (sampled every 10 ms).
#   2. SIGHUP with a broken file: it keeps running on the old configuration, says why.
#   3. SIGHUP with VI_2 removed and VI_3 (10.99.0.103) added: VI_1 untouched, .101 released,
#      .103 taken.
#
# Usage (root): bash tests/lab/flotilla-reload.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
export LAB_PREFIX=${LAB_TEST_PREFIX:-lab-t}-rld

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $EUID -eq 0 ]] || { echo "FAIL: must run as root"; exit 1; }
lab_require ip python3 || exit 1
cargo build --quiet -p flotilla || { echo "FAIL: cannot build flotilla"; exit 1; }
FLOTILLA=$PWD/target/debug/flotilla
lab_down
lab_up 1 || exit 1
st=$(lab_state_dir)
instance() { printf 'vrrp_instance %s {\n  interface eth0\n  virtual_router_id %s\n  priority 150\n  advert_int 0.1\n  virtual_ipaddress {\n    %s/24 dev eth0\n  }\n}\n' "$@"; }
{ echo 'global_defs {'; echo '  vrrp_version 3'; echo '}'; instance VI_1 51 10.99.0.100; instance VI_2 52 10.99.0.101; } > "$st/d1.conf"
lab_spawn d1 flotilla "$FLOTILLA" agent --config "$st/d1.conf" --api-socket "$st/d1.sock" || exit 1
log=$(lab_logfile d1 flotilla)
lab_wait_addr d1 10.99.0.100 5 >/dev/null && lab_wait_addr d1 10.99.0.101 5 >/dev/null \
  && pass "d1 is master of .100 and .101" || { fail "d1 did not become master"; tail "$log"; exit 1; }
sleep 0.3
status() { "$FLOTILLA" status --json --api-socket "$st/d1.sock"; }
transitions() { grep -c 'transition' "$log"; }
# Samples both VIPs every 10 ms for $1 s; prints how many samples missed one.
gaps() { local i missing=0; for ((i = 0; i < $1 * 100; i++)); do
  lab_has_addr d1 10.99.0.100 && lab_has_addr d1 10.99.0.101 || missing=$((missing + 1)); sleep 0.01; done; echo $missing; }
pid=$(lab_pid d1 flotilla)

echo "-- SIGHUP, file unchanged"
before=$(transitions)
kill -HUP "$pid"; missing=$(gaps 1)
((missing == 0)) && pass "both VIPs present in every sample across the reload" || fail "$missing samples without a VIP"
after=$(transitions)
((after == before)) && pass "no transition on an unchanged reload ($after transition lines in the log)" || fail "transitions: $before before, $after after"
grep -q 'SIGHUP: reloaded.*unchanged=2.*started=0.*stopped=0' "$log" && pass "the agent reports 2 unchanged, 0 started, 0 stopped" || { fail "no reload summary"; tail -5 "$log"; }

echo "-- SIGHUP, broken file"
cp "$st/d1.conf" "$st/d1.good"
printf 'vrrp_instance VI_9 {\n  virtual_router_id 300\n}\n' >> "$st/d1.conf"
kill -HUP "$pid"; missing=$(gaps 1)
kill -0 "$pid" 2>/dev/null && pass "still running after a broken reload" || fail "the agent died on a broken reload"
((missing == 0)) && pass "VIPs untouched by the broken reload" || fail "$missing samples without a VIP"
grep -q 'not used, nothing changed' "$log" && pass "the agent says why it kept the old configuration" || fail "no refusal in the log"
grep -q 'virtual_router_id 300 is out of range' "$log" && pass "...with file:line:col diagnostics" || fail "no diagnostic in the log"

echo "-- SIGHUP, VI_2 removed, VI_3 added"
{ echo 'global_defs {'; echo '  vrrp_version 3'; echo '}'; instance VI_1 51 10.99.0.100; instance VI_3 53 10.99.0.103; } > "$st/d1.conf"
s1=$(status | python3 -c 'import json,sys; print([i for i in json.load(sys.stdin)["instances"] if i["name"]=="VI_1"][0]["since_seconds"])')
kill -HUP "$pid"
lab_wait_addr d1 10.99.0.103 3 >/dev/null && pass "VI_3 started and took .103" || fail "VI_3 did not take .103"
lab_has_addr d1 10.99.0.101 && fail "VI_2's .101 is still there" || pass "VI_2 released .101"
lab_has_addr d1 10.99.0.100 && pass "VI_1 kept .100" || fail "VI_1 lost .100"
s2=$(status | python3 -c 'import json,sys; print([i for i in json.load(sys.stdin)["instances"] if i["name"]=="VI_1"][0]["since_seconds"])')
python3 -c "import sys; sys.exit(0 if $s2 > $s1 else 1)" && pass "VI_1's state is older than the reload (${s1} s → ${s2} s): untouched" || fail "VI_1 was restarted (${s1} s → ${s2} s)"
lab_kill d1 flotilla TERM || fail "flotilla did not exit"
for a in 10.99.0.100 10.99.0.101 10.99.0.103; do lab_has_addr d1 $a && fail "$a left behind after stop"; done
[[ -e $st/d1.sock ]] && fail "control socket left behind" || pass "stop left no VIP and no socket behind"

if ((failures)); then echo "FAIL: flotilla-reload ($failures failed checks)"; exit 1; fi
echo "PASS: flotilla-reload"
