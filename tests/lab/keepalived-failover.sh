#!/bin/bash
# Runbook: VRRP failover between two keepalived directors (host tier, no IPVS needed).
#
#   d1 (priority 150) and d2 (priority 100) share VIP 10.99.0.100 on one segment with client c.
#   1. Start keepalived on both; d1 must become master and hold the VIP, d2 must not.
#   2. The adverts on the wire are the configured VRRP version and interval.
#   3. The client pings the VIP and resolves it to d1's MAC.
#   4. Crash d1 (SIGKILL keepalived and pull its cable): d2 must hold the VIP within the bound.
#   5. The client pings the VIP again and now resolves it to d2's MAC (gratuitous ARP).
# Rounds: VRRPv3 with 0.1 s adverts (bound 1.5 s), VRRPv2 with 1 s adverts (bound 4.5 s;
# theory for a crash: 2-3 adverts + skew = 2.6-3.6 s).
#
# Usage (root): bash tests/lab/keepalived-failover.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
export LAB_PREFIX=${LAB_TEST_PREFIX:-lab-t}-kafo

VIP=10.99.0.100
failures=0
say()  { echo; echo "== $*"; }
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ms()   { _lab_seconds "$1"; }

trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "Preflight"
[[ $EUID -eq 0 ]] || { echo "FAIL: must run as root"; exit 1; }
lab_require keepalived ip nft ping tcpdump || exit 1
echo "keepalived: $(keepalived --version 2>&1 | head -n1)"
if ka_pids=$(pgrep -x keepalived); then
  echo "note: keepalived already running outside this test (pids $(echo $ka_pids)); it is not on our segment"
fi
lab_down

# Start keepalived (VRRP only) on NODE with PRIORITY, VRRP version VER and advert interval ADV.
start_keepalived() {
  local node=$1 prio=$2 ver=$3 adv=$4 st
  st=$(lab_state_dir)
  cat > "$st/$node-keepalived.conf" <<CONF
global_defs {
  router_id $node
  vrrp_version $ver
  script_user root
  enable_script_security
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $prio
  advert_int $adv
  virtual_ipaddress {
    $VIP/24 dev eth0
  }
}
CONF
  # distinct pid files per instance: keepalived refuses to start if another owns them
  lab_spawn "$node" keepalived keepalived --dont-fork --log-console --log-detail --vrrp \
    -f "$st/$node-keepalived.conf" -p "$st/$node-keepalived.pid" -r "$st/$node-vrrp.pid"
}

# The MAC the client has for the VIP (after it talked to it).
client_mac_for_vip() { lab_exec c ip neigh show "$VIP" dev eth0 | awk '{for (i=1;i<NF;i++) if ($i=="lladdr") print $(i+1)}'; }

# Ping the VIP from the client until it answers; prints the seconds it took.
client_reaches_vip() {
  local t0 i
  t0=$(lab_now_ms)
  for ((i = 0; i < 50; i++)); do
    if lab_exec c ping -c1 -W0.2 -q "$VIP" >/dev/null 2>&1; then ms $(($(lab_now_ms) - t0)); return 0; fi
  done
  return 1
}

round() {
  local ver=$1 adv=$2 bound_ms=$3 st t0 t1 took out
  say "Round: VRRPv$ver, advert_int $adv s, crash bound $(ms "$bound_ms") s"
  lab_up 2 || { fail "lab up"; return; }
  st=$(lab_state_dir)

  echo "-- start keepalived on d1 (priority 150) and d2 (priority 100)"
  start_keepalived d1 150 "$ver" "$adv" && start_keepalived d2 100 "$ver" "$adv" || { fail "start keepalived"; return; }
  if took=$(lab_wait_addr d1 "$VIP" 15); then pass "d1 is master and holds $VIP (${took} s after start)"
  else fail "d1 never got $VIP"; tail -n 20 "$(lab_logfile d1 keepalived)"; return; fi
  sleep "$adv"
  if lab_has_addr d2 "$VIP"; then fail "d2 also holds $VIP (two masters)"; else pass "d2 stays backup (no VIP)"; fi

  echo "-- adverts seen by the client"
  out=$(lab_exec c timeout 4 tcpdump -nn -l -i eth0 -c 3 'ip proto 112' 2>/dev/null)
  echo "$out" | sed 's/^/   /'
  local want="VRRPv$ver, Advertisement, vrid 51, prio 150"
  if [[ $out == *"10.99.0.1 > 224.0.0.18: $want"* ]]; then pass "d1 advertises: $want"
  else fail "no '$want' adverts from d1"; fi

  echo "-- client traffic to the VIP"
  if took=$(client_reaches_vip); then pass "client pings $VIP (${took} s)"; else fail "client cannot ping $VIP"; fi
  local mac_d1 mac_d2 mac
  mac_d1=$(lab_mac d1); mac_d2=$(lab_mac d2); mac=$(client_mac_for_vip)
  [[ $mac == "$mac_d1" ]] && pass "client resolves $VIP to d1 ($mac)" || fail "client resolves $VIP to '$mac', d1 is $mac_d1"

  echo "-- crash d1: SIGKILL keepalived, cable pulled"
  t0=$(lab_now_ms)
  kill -KILL "$(<"$st/d1-vrrp.pid")" "$(lab_pid d1 keepalived)"
  lab_exec d1 ip link set eth0 down
  if lab_wait_addr d2 "$VIP" 10 >/dev/null; then
    t1=$(lab_now_ms); took=$((t1 - t0))
    if ((took <= bound_ms)); then pass "VIP on d2 $(ms $took) s after the crash (bound $(ms "$bound_ms") s)"
    else fail "VIP on d2 only $(ms $took) s after the crash (bound $(ms "$bound_ms") s)"; fi
    echo "FIGURE failover_v${ver}_adv${adv}_s=$(ms $took)"
  else
    fail "d2 never took over $VIP"; tail -n 20 "$(lab_logfile d2 keepalived)"; return
  fi

  echo "-- client traffic to the VIP after failover"
  if took=$(client_reaches_vip); then pass "client pings $VIP again (${took} s after d2 took over)"
  else fail "client cannot ping $VIP after failover"; fi
  mac=$(client_mac_for_vip)
  [[ $mac == "$mac_d2" ]] && pass "client resolves $VIP to d2 ($mac)" || fail "client resolves $VIP to '$mac', d2 is $mac_d2"

  echo "-- tear down the round"
  lab_kill d2 keepalived TERM || fail "keepalived on d2 did not stop on SIGTERM"
  lab_has_addr d2 "$VIP" && fail "d2 kept $VIP after a clean stop" || pass "d2 released $VIP on a clean stop"
  lab_down
}

round 3 0.1 1500
round 2 1 4500

say "Result"
if ((failures)); then echo "FAIL: keepalived-failover ($failures failed checks)"; exit 1; fi
echo "PASS: keepalived-failover"
