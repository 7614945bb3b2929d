#!/bin/bash
# Runbook: two flotilla agents as the seed's active/active pair, and a sync group.
#
#   Round A — the A/A pair (VRRPv3, 0.1 s adverts): VI_100 (VIP 10.99.0.100) is owned by d1
#   (150 vs 100, preempt_delay 2 s); VI_102 (VIP 10.99.0.102) by d2 (150 vs 100, nopreempt on
#   both nodes).
#     1. .100 on d1, .102 on d2.
#     2. d1 crashes: both VIPs on d2. d2's /metrics counts one VRRP takeover of VI_100 and one
#        failover duration (last advert from d1 → VIP up here) of about 3 adverts + skew.
#     3. d1 comes back: .100 returns only after preempt_delay, .102 stays on d2; d1 counts
#        that as a VRRP takeover with no failover duration (d2 was alive, preempted).
#     4. d2 crashes and comes back: .102 stays on d1 (nopreempt), .100 stays on d1.
#   Round B — a sync group moving a VIP and a DIP together: VI_VIP on eth0 (10.99.0.150) and
#   VI_DIP on a second segment eth1 (10.98.0.254), d1 150, d2 100.
#     1. d1 holds both.
#     2. d1's eth1 goes down: its DIP instance faults, the group faults, and d2 takes both.
#     3. eth1 back: d1 takes both back together.
#
# Usage (root): bash tests/lab/flotilla-pair.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
export LAB_PREFIX=${LAB_TEST_PREFIX:-lab-t}-pair

failures=0
say()  { echo; echo "== $*"; }
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ms()   { _lab_seconds "$1"; }

trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $EUID -eq 0 ]] || { echo "FAIL: must run as root"; exit 1; }
lab_require ip || exit 1
cargo build --quiet -p flotilla || { echo "FAIL: cannot build flotilla"; exit 1; }
FLOTILLA=$PWD/target/debug/flotilla
lab_down

start() {
  local st; st=$(lab_state_dir)
  lab_spawn "$1" flotilla "$FLOTILLA" agent --config "$st/$1.conf" --api-socket "$st/$1.sock" \
    --listen 127.0.0.1:9180
}
# metric NODE SERIES: the value of SERIES in NODE's /metrics (0 when absent).
metric() {
  lab_exec "$1" curl -s -m 2 http://127.0.0.1:9180/metrics | awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }'
}
VRRP_TOOK='flotilla_unit_takeovers_total{unit="VI_100",kind="vrrp"}'
OUTAGES='flotilla_failover_duration_seconds_count{unit="VI_100",kind="vrrp"}'
OUTAGE_SUM='flotilla_failover_duration_seconds_sum{unit="VI_100",kind="vrrp"}'
crash() {
  lab_kill "$1" flotilla KILL
  lab_exec "$1" ip link set eth0 down
}
revive() {
  local a
  for a in "$@"; do lab_exec "$1" ip addr del "$a/24" dev eth0 2>/dev/null; done
  lab_exec "$1" ip link set eth0 up
  start "$1"
}
# where ADDR: the directors holding ADDR (space separated).
where() { local n out=""; for n in d1 d2; do lab_has_addr "$n" "$1" && out+="$n "; done; echo "${out% }"; }
expect() { local w; w=$(where "$1"); [[ $w == "$2" ]] && pass "$3: $1 on ${2:-nobody}" || fail "$3: $1 on '${w}', expected '$2'"; }
wait_on() { local t0; t0=$(lab_now_ms); until [[ $(where "$1") == "$2" ]]; do (($(lab_now_ms) - t0 > $3 * 1000)) && return 1; sleep 0.01; done; ms $(($(lab_now_ms) - t0)); }

instance() { # NAME VRID PRIO EXTRA VIP IFACE
  cat <<CONF
vrrp_instance $1 {
  state BACKUP
  interface ${6:-eth0}
  virtual_router_id $2
  priority $3
  advert_int 0.1
$4
  virtual_ipaddress {
    $5/24 dev ${6:-eth0}
  }
}
CONF
}
header() { printf 'global_defs {\n  router_id %s\n  vrrp_version 3\n}\n' "$1"; }

say "Round A: the active/active pair"
lab_up 2 || exit 1
st=$(lab_state_dir)
{ header d1; instance VI_100 100 150 "  preempt_delay 2" 10.99.0.100; instance VI_102 102 100 "  nopreempt" 10.99.0.102; } > "$st/d1.conf"
{ header d2; instance VI_100 100 100 "  preempt_delay 2" 10.99.0.100; instance VI_102 102 150 "  nopreempt" 10.99.0.102; } > "$st/d2.conf"
# d2 first: it then owns .102 (150, nopreempt) whatever the delay before d1 starts; started
# the other way round, a d2 slower to come up than d1's first master-down interval (0.36 s)
# found d1 master of .102 and, nopreempt, left it there (seen on a loaded machine). d1 takes
# .100 from d2 after its preempt_delay.
start d2 && start d1 || { fail "start"; exit 1; }
wait_on 10.99.0.100 d1 5 >/dev/null; wait_on 10.99.0.102 d2 5 >/dev/null
expect 10.99.0.100 d1 "start"; expect 10.99.0.102 d2 "start"

echo "-- d1 crashes"
took0=$(metric d2 "$VRRP_TOOK"); n0=$(metric d2 "$OUTAGES"); sum0=$(metric d2 "$OUTAGE_SUM")
crash d1
# A killed process leaves its VIPs on the dead box (its cable is pulled): watch d2 only.
if took=$(lab_wait_addr d2 10.99.0.100 3); then pass "d2 took .100 ${took} s after d1 crashed"; else fail "d2 did not take .100"; fi
expect 10.99.0.102 d2 "after d1's crash"
took1=$(metric d2 "$VRRP_TOOK"); n1=$(metric d2 "$OUTAGES"); sum1=$(metric d2 "$OUTAGE_SUM")
outage=$(awk -v a="$sum0" -v b="$sum1" 'BEGIN { printf "%.3f", b - a }')
# Master_Down_Interval with 0.1 s adverts at priority 100: 3 × 0.1 + (256 − 100) / 256 × 0.1 s.
if ((took1 == took0 + 1 && n1 == n0 + 1)) && awk -v o="$outage" 'BEGIN { exit !(o >= 0.3 && o < 1) }'; then
  pass "d2's /metrics: one VRRP takeover of VI_100, failover duration ${outage} s (master-down interval 0.361 s)"
  echo "FIGURE vrrp_failover_metric_s=$outage"
else
  fail "d2's /metrics: VRRP takeovers of VI_100 $took0 -> $took1, durations $n0 -> $n1 (last ${outage} s)"
fi

echo "-- d1 comes back (preempt_delay 2 s on .100)"
revive d1 10.99.0.100 10.99.0.102
t0=$(lab_now_ms)
sleep 1.5
expect 10.99.0.100 d2 "1.5 s after d1 returned (still within preempt_delay)"
if wait_on 10.99.0.100 d1 4 >/dev/null; then
  took=$(($(lab_now_ms) - t0))
  ((took >= 2000)) && pass ".100 back on d1 $(ms $took) s after it returned (>= preempt_delay 2 s)" \
    || fail ".100 back on d1 after only $(ms $took) s (< preempt_delay)"
  echo "FIGURE preempt_delay_return_s=$(ms $took)"
else fail ".100 never returned to d1"; fi
back=$(metric d1 "$VRRP_TOOK"); outages=$(metric d1 "$OUTAGES")
((back == 1 && outages == 0)) && pass "d1's /metrics: taking .100 back from a live d2 is a VRRP takeover without a failover duration" \
  || fail "d1's /metrics after its return: VRRP takeovers of VI_100 $back, failover durations $outages"
expect 10.99.0.102 d2 "after d1's return"

echo "-- d2 crashes and comes back (nopreempt on .102)"
crash d2
if took=$(lab_wait_addr d1 10.99.0.102 3); then pass "d1 took .102 ${took} s after d2 crashed"; else fail "d1 did not take .102"; fi
revive d2 10.99.0.100 10.99.0.102
sleep 3
expect 10.99.0.102 d1 "3 s after d2 (priority 150, nopreempt) returned"
expect 10.99.0.100 d1 "3 s after d2 returned"
lab_kill d1 flotilla TERM; lab_kill d2 flotilla TERM
expect 10.99.0.100 "" "after both stopped"; expect 10.99.0.102 "" "after both stopped"
lab_down

say "Round B: a sync group moves a VIP and a DIP together"
lab_up 2 || exit 1
st=$(lab_state_dir); sw=$(lab_ns sw)
# A second segment (bridge br1) for the DIP, as a real director has for its real servers.
ip -n "$sw" link add br1 type bridge && ip -n "$sw" link set br1 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 && ip -n "$sw" link set br1 up
for n in d1 d2; do
  ip -n "$sw" link add "p1-$n" type veth peer name eth1 netns "$(lab_ns $n)"
  ip -n "$sw" link set "p1-$n" master br1 up
  lab_exec $n ip addr add "10.98.0.${n#d}/24" dev eth1; lab_exec $n ip link set eth1 up
done
for n in d1 d2; do
  p=$([[ $n == d1 ]] && echo 150 || echo 100)
  { header $n
    printf 'vrrp_sync_group SG {\n  group {\n    VI_VIP\n    VI_DIP\n  }\n}\n'
    instance VI_VIP 51 $p "" 10.99.0.150 eth0
    instance VI_DIP 52 $p "" 10.98.0.254 eth1; } > "$st/$n.conf"
done
has() { local out; out=$(ip -n "$(lab_ns "$1")" -o -4 addr show 2>/dev/null); [[ $out == *" inet 10.99.0.150/"* && $out == *" inet 10.98.0.254/"* ]]; }
has_none() { local out; out=$(ip -n "$(lab_ns "$1")" -o -4 addr show 2>/dev/null); [[ $out != *" inet 10.99.0.150/"* && $out != *" inet 10.98.0.254/"* ]]; }
wait_has() { local t0; t0=$(lab_now_ms); until has "$1"; do (($(lab_now_ms) - t0 > $2 * 1000)) && return 1; sleep 0.01; done; ms $(($(lab_now_ms) - t0)); }
start d1 && start d2 || { fail "start"; exit 1; }
if took=$(wait_has d1 5); then pass "d1 holds the VIP and the DIP (${took} s)"; else fail "d1 never held both"; fi
sleep 0.5
has_none d2 && pass "d2 holds neither" || fail "d2 holds a group address too"
echo "-- d1's eth1 (the DIP side) goes down"
t0=$(lab_now_ms)
lab_exec d1 ip link set eth1 down
if wait_has d2 3 >/dev/null; then pass "d2 took the VIP and the DIP $(ms $(($(lab_now_ms) - t0))) s after d1's eth1 went down"
else fail "d2 did not take both"; fi
has_none d1 && pass "d1 released both (group in FAULT)" || fail "d1 kept a group address"
out=$("$FLOTILLA" status --api-socket "$st/d1.sock" 2>&1); echo "$out" | sed 's/^/   /'
[[ $(grep -c FAULT <<<"$out") == 2 ]] && pass "status on d1: both members in FAULT" || fail "status on d1 does not show both in FAULT"
echo "-- eth1 back"
lab_exec d1 ip link set eth1 up
if took=$(wait_has d1 5); then pass "d1 took both back together (${took} s)"; else fail "d1 did not take the group back"; fi
sleep 0.3
has_none d2 && pass "d2 released both" || fail "d2 kept a group address"
lab_kill d1 flotilla TERM; lab_kill d2 flotilla TERM
lab_down

say "Result"
if ((failures)); then echo "FAIL: flotilla-pair ($failures failed checks)"; exit 1; fi
echo "PASS: flotilla-pair"
