#!/bin/bash
# Runbook: flotilla and FRR's vrrpd (a second, independent VRRPv3 implementation) on one VRID.
#
#   VRID 51, VRRPv3, 0.1 s adverts, VIP 10.99.0.100. flotilla on d1, FRR 8.4 (zebra + vrrpd
#   with private paths, LAB.md §C) on d2. FRR holds the VIP on a macvlan with the VRRP MAC
#   00:00:5e:00:01:33; it is master while that macvlan is up and not `protodown`.
#     1. FRR (100) alone becomes master; flotilla (150) starts and preempts it; FRR backs off.
#     2. flotilla stops gracefully (priority 0): FRR takes over within skew time.
#     3. flotilla starts again and preempts; then it crashes (killed, link down): FRR takes
#        over after the master-down interval.
#     4. FRR at 200, flotilla at 150: flotilla stays backup and reports FRR as master; FRR's
#        vrrpd is killed: flotilla takes over.
#
# Usage (root): bash tests/lab/flotilla-frr-interop.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
runbook_begin frr || exit 1
[[ -x /usr/lib/frr/zebra && -x /usr/lib/frr/vrrpd ]] || { echo "FAIL: FRR not installed (bash ops/ci/deps.sh)"; exit 1; }
lab_require vtysh || exit 1
VIP=10.99.0.100

lab_up 2 || exit 1
st=$(lab_state_dir)
D=$st/frr
mkdir -p "$D" && chown frr:frr "$D"
runbook_on_exit "frr_stop"

flotilla_conf() { # PRIORITY
  cat > "$st/d1.conf" <<CONF
global_defs {
  router_id d1
  vrrp_version 3
}
vrrp_instance VI_51 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $1
  advert_int 0.1
  virtual_ipaddress {
    $VIP/24
  }
}
CONF
}

frr_start() { # PRIORITY
  local ns; ns=$(lab_ns d2)
  ip -n "$ns" link add vrrp4-51 link eth0 type macvlan mode bridge 2>/dev/null
  ip -n "$ns" link set vrrp4-51 addrgenmode random
  ip -n "$ns" link set vrrp4-51 address 00:00:5e:00:01:33
  ip -n "$ns" addr replace "$VIP/24" dev vrrp4-51
  ip -n "$ns" link set vrrp4-51 up
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.arp_ignore=1
  printf 'hostname d2\n' > "$D/zebra.conf"
  printf 'interface eth0\n vrrp 51 version 3\n vrrp 51 priority %s\n vrrp 51 advertisement-interval 100\n vrrp 51 ip %s\n' "$1" "$VIP" > "$D/vrrpd.conf"
  chown frr:frr "$D"/*.conf
  ip netns exec "$ns" /usr/lib/frr/zebra -d -f "$D/zebra.conf" -i "$D/zebra.pid" -z "$D/zserv.api" \
    --vty_socket "$D" -P 0 --log "file:$D/zebra.log" || return 1
  for _ in $(seq 50); do [[ -S $D/zserv.api ]] && break; sleep 0.1; done
  ip netns exec "$ns" /usr/lib/frr/vrrpd -d -f "$D/vrrpd.conf" -i "$D/vrrpd.pid" -z "$D/zserv.api" \
    --vty_socket "$D" -P 0 --log "file:$D/vrrpd.log"
}
frr_kill_vrrpd() { [[ -f $D/vrrpd.pid ]] && kill -KILL "$(<"$D/vrrpd.pid")" 2>/dev/null; rm -f "$D/vrrpd.pid"; }
frr_stop() {
  local f
  for f in vrrpd zebra; do [[ -f $D/$f.pid ]] && kill -TERM "$(<"$D/$f.pid")" 2>/dev/null; done
  sleep 0.3
  for f in vrrpd zebra; do [[ -f $D/$f.pid ]] && kill -KILL "$(<"$D/$f.pid")" 2>/dev/null; rm -f "$D/$f.pid"; done
  return 0
}
# FRR is master while its macvlan is up and not protodown (iproute2 prints only "protodown on").
frr_master() {
  local out; out=$(ip -n "$(lab_ns d2)" -d link show vrrp4-51 2>/dev/null)
  [[ $out == *"state UP"* || $out == *",UP"* ]] && [[ $out != *"protodown on"* ]]
}
flotilla_master() { lab_has_addr d1 "$VIP"; }
# who: "flotilla", "frr", "both" or "none".
who() {
  local f=0 r=0
  flotilla_master && f=1; frr_master && r=1
  case $f$r in 10) echo flotilla ;; 01) echo frr ;; 11) echo both ;; *) echo none ;; esac
}
wait_who() { # WANT SECONDS
  local t0; t0=$(lab_now_ms)
  until [[ $(who) == "$1" ]]; do (($(lab_now_ms) - t0 > $2 * 1000)) && return 1; sleep 0.01; done
  _lab_seconds $(($(lab_now_ms) - t0))
}
wait_until() { # SECONDS CMD...
  local t0 limit=$1; shift; t0=$(lab_now_ms)
  until "$@"; do (($(lab_now_ms) - t0 > limit * 1000)) && return 1; sleep 0.01; done
  _lab_seconds $(($(lab_now_ms) - t0))
}
expect_who() { # WANT SECONDS WHAT
  local took
  if took=$(wait_who "$1" "$2"); then pass "$3: $1 is master (${took} s)"; else fail "$3: master is '$(who)', expected $1"; fi
}
start_flotilla() { lab_spawn d1 flotilla "$FLOTILLA" agent --config "$st/d1.conf" --api-socket "$st/d1.sock"; }
frr_show() { vtysh --vty_socket "$D" -d vrrpd -c 'show vrrp' 2>&1 | sed 's/^/   /' | grep -E "Status|Priority|Master|Adv|Rx|Tx" | head -12; }

say "1. FRR alone, then flotilla preempts"
frr_start 100 || { fail "FRR did not start"; runbook_end; }
expect_who frr 10 "FRR alone"
flotilla_conf 150
start_flotilla
expect_who flotilla 5 "flotilla at 150 preempts FRR at 100"
sleep 0.5
[[ $(who) == flotilla ]] && pass "FRR stays backup (macvlan protodown)" || fail "after 0.5 s the master is '$(who)'"
frr_show

say "2. flotilla stops gracefully: FRR takes over on the priority-0 advert"
t0=$(lab_now_ms)
lab_kill d1 flotilla TERM
if wait_who frr 3 >/dev/null; then
  took=$(_lab_seconds $(($(lab_now_ms) - t0)))
  pass "FRR master ${took} s after SIGTERM"; echo "FIGURE frr_graceful_takeover_s=$took"
else fail "FRR did not take over (master '$(who)')"; fi

say "3. flotilla back, then crashed"
start_flotilla
expect_who flotilla 5 "flotilla preempts again"
lab_kill d1 flotilla KILL
lab_exec d1 ip link set eth0 down
# A killed flotilla leaves its VIP on d1 (as keepalived does); d1 is unplugged, so only FRR
# counts.
if took=$(wait_until 5 frr_master); then
  pass "FRR master ${took} s after the crash"; echo "FIGURE frr_crash_takeover_s=$took"
else fail "FRR did not take over after the crash"; fi
lab_exec d1 ip addr del "$VIP/24" dev eth0 2>/dev/null
lab_exec d1 ip link set eth0 up

say "4. FRR at 200 outranks flotilla at 150"
frr_stop
frr_start 200 || fail "FRR did not restart"
flotilla_conf 150
start_flotilla
expect_who frr 10 "FRR at 200"
sleep 1
[[ $(who) == frr ]] && pass "flotilla stays backup" || fail "after 1 s the master is '$(who)'"
out=$("$FLOTILLA" status --json --api-socket "$st/d1.sock" 2>/dev/null)
state=$(python3 -c "import json,sys; i=json.loads(sys.argv[1])['instances'][0]; print(i['state'], i['master'])" "$out" 2>/dev/null)
[[ $state == "BACKUP 10.99.0.2" ]] && pass "flotilla status: BACKUP, master 10.99.0.2 (FRR)" || fail "flotilla status '$state'"
frr_kill_vrrpd
if took=$(wait_until 5 flotilla_master); then
  pass "flotilla master ${took} s after FRR's vrrpd was killed"; echo "FIGURE flotilla_after_frr_crash_s=$took"
else fail "flotilla did not take over"; fi

lab_kill d1 flotilla TERM
runbook_end
