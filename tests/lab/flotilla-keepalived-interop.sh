#!/bin/bash
# Runbook: flotilla as a drop-in for one node of a keepalived pair (VRRP half).
#
# Two directors on one segment with the client; one runs keepalived 2.2.7, the other
# `flotilla agent` with the same kind of keepalived.conf. Checked as an operator would:
# who holds the VIP, does the client reach it, what happens on stop, crash and return.
#   Round A: VRRPv3, 0.1 s adverts, multicast. flotilla (150) on d1, keepalived (100) on d2.
#     1. flotilla becomes master and holds the VIP; keepalived stays backup; client pings it.
#     2. SIGTERM flotilla: it sends priority 0 and removes the VIP; keepalived takes over
#        within Skew_Time (+ slack).
#     3. flotilla starts again and preempts; keepalived releases.
#     4. flotilla crashes (SIGKILL, cable pulled): keepalived takes over within
#        Master_Down_Interval (+ slack).
#   Round B: VRRPv2, 1 s adverts, PASS authentication, unicast peers. keepalived (150) on d1,
#     flotilla (100) on d2.
#     1. keepalived is master; flotilla, started where a crashed predecessor left the VIP,
#        removes it and stays backup (no VIP) while adverts flow.
#     2. keepalived crashes: flotilla takes over within 4.5 s; client pings the VIP.
#     3. keepalived returns and preempts: flotilla releases the VIP.
#   Round C: a sync group of two instances (VIPs 10.99.0.110 and .111), VRRPv3, 0.1 s adverts.
#     flotilla (150) on d1, keepalived (100) on d2.
#     1. flotilla holds both VIPs, keepalived none; the group's notify says GROUP SG MASTER.
#     2. flotilla crashes: keepalived takes both.
#     3. flotilla returns: it takes both back together; keepalived releases both.
#   Round D: interface tracking, VRRPv3 0.1 s; flotilla (150, track_interface trk0) on d1,
#     keepalived (100) on d2.
#     1. trk0 goes down: flotilla enters FAULT, sends priority 0 and removes the VIP; keepalived
#        takes over within Skew_Time (+ slack); status says FAULT.
#     2. trk0 comes back: flotilla returns to backup and preempts.
#     3. flotilla's own interface goes down: it removes the VIP (FAULT) and keepalived takes
#        over when its adverts stop.
#   Round F: VRRPv3 unicast, equal priorities (100 and 100). Started partitioned, both become
#     master; when the partition heals, the two masters hear each other and the higher address
#     (d2, keepalived) must win (RFC 5798 §6.4.3): flotilla (d1) yields. Then keepalived
#     crashes: flotilla takes over.
#   Round E: IPv6 (VRRPv3 from link-local addresses, ff02::12), 0.1 s adverts, VIP fd00::100;
#     flotilla (150) on d1, keepalived (100) on d2.
#     1. flotilla holds the IPv6 VIP; keepalived stays backup.
#     2. flotilla stops (SIGTERM): keepalived takes the VIP; flotilla returns and preempts.
#
# Usage (root): bash tests/lab/flotilla-keepalived-interop.sh   Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
export LAB_PREFIX=${LAB_TEST_PREFIX:-lab-t}-ikeep

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
lab_require keepalived ip ping || exit 1
cargo build --quiet -p flotilla || { echo "FAIL: cannot build flotilla"; exit 1; }
FLOTILLA=$PWD/target/debug/flotilla
lab_down

# write_conf NODE PRIORITY VERSION ADVERT [unicast]: one instance, VIP 10.99.0.100.
write_conf() {
  local node=$1 prio=$2 ver=$3 adv=$4 mode=${5:-multicast} st self peer extra=""
  st=$(lab_state_dir)
  if [[ $mode == unicast ]]; then
    self=$(lab_addr "$node"); [[ $node == d1 ]] && peer=$(lab_addr d2) || peer=$(lab_addr d1)
    extra="  unicast_src_ip $self
  unicast_peer {
    $peer
  }
  authentication {
    auth_type PASS
    auth_pass s3cret
  }"
  fi
  cat > "$st/$node.conf" <<CONF
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
$extra
  virtual_ipaddress {
    $VIP/24 dev eth0
  }
  notify "$st/$node-notify.sh"
}
CONF
  printf '#!/bin/sh\necho "$@" >> %s\n' "$st/$node-notify.log" > "$st/$node-notify.sh"
  chmod 755 "$st/$node-notify.sh"
}

# write_group_conf NODE PRIORITY: sync group SG of VI_A (.110) and VI_B (.111), VRRPv3 0.1 s.
write_group_conf() {
  local node=$1 prio=$2 st; st=$(lab_state_dir)
  cat > "$st/$node.conf" <<CONF
global_defs {
  router_id $node
  vrrp_version 3
  script_user root
  enable_script_security
}
vrrp_sync_group SG {
  group {
    VI_A
    VI_B
  }
  notify "$st/$node-notify.sh"
}
vrrp_instance VI_A {
  interface eth0
  virtual_router_id 61
  priority $prio
  advert_int 0.1
  virtual_ipaddress {
    10.99.0.110/24 dev eth0
  }
}
vrrp_instance VI_B {
  interface eth0
  virtual_router_id 62
  priority $prio
  advert_int 0.1
  virtual_ipaddress {
    10.99.0.111/24 dev eth0
  }
}
CONF
  printf '#!/bin/sh\necho "$@" >> %s\n' "$st/$node-notify.log" > "$st/$node-notify.sh"
  chmod 755 "$st/$node-notify.sh"
}
# holds NODE ADDR...: true when NODE holds every ADDR.
holds() { local n=$1 a; shift; for a in "$@"; do lab_has_addr "$n" "$a" || return 1; done; }
holds_none() { local n=$1 a; shift; for a in "$@"; do lab_has_addr "$n" "$a" && return 1; done; return 0; }
# wait_holds NODE SECS ADDR...: prints seconds until NODE holds every ADDR.
wait_holds() {
  local n=$1 limit_ms t0; limit_ms=$(($2 * 1000)); shift 2; t0=$(lab_now_ms)
  until holds "$n" "$@"; do (($(lab_now_ms) - t0 > limit_ms)) && return 1; sleep 0.005; done
  ms $(($(lab_now_ms) - t0))
}

start_keepalived() {
  local st; st=$(lab_state_dir)
  lab_spawn "$1" keepalived keepalived --dont-fork --log-console --log-detail --vrrp \
    -f "$st/$1.conf" -p "$st/$1-keepalived.pid" -r "$st/$1-vrrp.pid"
}
crash_keepalived() {
  local st; st=$(lab_state_dir)
  kill -KILL "$(<"$st/$1-vrrp.pid")" "$(lab_pid "$1" keepalived)" 2>/dev/null
  lab_exec "$1" ip link set eth0 down
  # A SIGKILLed keepalived leaves its VIP behind (LAB.md): the "dead" box is unplugged anyway.
}
start_flotilla() {
  local st; st=$(lab_state_dir)
  lab_spawn "$1" flotilla "$FLOTILLA" agent --config "$st/$1.conf" --api-socket "$st/$1.sock"
}
# Wait until NODE no longer holds the VIP; prints seconds.
wait_no_addr() {
  local t0 now; t0=$(lab_now_ms)
  while lab_has_addr "$1" "$VIP"; do
    now=$(lab_now_ms); ((now - t0 > ${2:-5000})) && return 1
    sleep 0.005
  done
  ms $(($(lab_now_ms) - t0))
}
# Wait until NODE holds the VIP; prints seconds since T0 (ms), e.g. the moment of a kill.
wait_addr_since() {
  local t0=$1; lab_wait_addr "$2" "$VIP" "$3" >/dev/null || return 1
  ms $(($(lab_now_ms) - t0))
}
client_pings() {
  local i
  for ((i = 0; i < 50; i++)); do lab_exec c ping -c1 -W0.2 -q "$VIP" >/dev/null 2>&1 && return 0; done
  return 1
}
show_logs() { for n in "$@"; do echo "--- $n"; tail -n 15 "$(lab_logfile "${n%%/*}" "${n##*/}")"; done; }
# check_within LABEL BOUND_MS CMD...: runs CMD (which prints seconds) and checks the bound.
check_within() {
  local label=$1 bound=$2 took; shift 2
  if took=$("$@"); then
    local took_ms; took_ms=$(awk -v s="$took" 'BEGIN{printf "%d", s*1000}')
    if ((took_ms <= bound)); then pass "$label: $took s (bound $(ms "$bound") s)"; else fail "$label: $took s (bound $(ms "$bound") s)"; fi
    echo "FIGURE ${label//[^A-Za-z0-9]/_}_s=$took"
  else
    fail "$label: did not happen"; return 1
  fi
}

say "Round A: VRRPv3, 0.1 s adverts, multicast; flotilla 150 on d1, keepalived 100 on d2"
lab_up 2 || exit 1
write_conf d1 150 3 0.1; write_conf d2 100 3 0.1
start_flotilla d1 && start_keepalived d2 || { fail "start"; exit 1; }
if took=$(lab_wait_addr d1 "$VIP" 5); then pass "flotilla on d1 is master and holds $VIP (${took} s after start)"
else fail "flotilla never took $VIP"; show_logs d1/flotilla d2/keepalived; exit 1; fi
sleep 0.5
lab_has_addr d2 "$VIP" && fail "keepalived on d2 also holds $VIP (two masters)" || pass "keepalived on d2 stays backup"
out=$(lab_exec d2 timeout 3 tcpdump -nn -l -i eth0 -c 2 'ip proto 112' 2>/dev/null)
[[ $out == *"10.99.0.1 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 150, intvl 10cs"* ]] \
  && pass "flotilla's adverts on the wire: VRRPv3 vrid 51 prio 150 intvl 10cs" || { fail "unexpected adverts: $out"; }
client_pings && pass "client pings $VIP" || fail "client cannot ping $VIP"
echo "-- flotilla status on d1"
out=$("$FLOTILLA" status --api-socket "$(lab_state_dir)/d1.sock" 2>&1); echo "$out" | sed 's/^/   /'
[[ $out == *VI_1*-*eth0*51*MASTER*150*10.99.0.1*10.99.0.100* ]] && pass "status shows VI_1 MASTER at 150 holding $VIP" || fail "status table unexpected"
json=$("$FLOTILLA" status --json --api-socket "$(lab_state_dir)/d1.sock" 2>&1)
if python3 -c 'import json,sys; s=json.load(sys.stdin)["instances"][0]; assert s["state"]=="MASTER" and s["vips_held"]==["10.99.0.100"] and s["adverts_sent"]>0, s' <<<"$json"; then
  pass "status --json agrees (state, VIPs held, adverts sent)"
else fail "status --json: $json"; fi

echo "-- SIGTERM flotilla"
t0=$(lab_now_ms)
lab_kill d1 flotilla TERM || fail "flotilla did not exit on SIGTERM"
lab_has_addr d1 "$VIP" && fail "flotilla left $VIP behind" || pass "flotilla removed $VIP on stop"
check_within "keepalived takes over after flotilla's stop" 500 wait_addr_since "$t0" d2 3
grep -q "INSTANCE VI_1 MASTER 150" "$(lab_state_dir)/d1-notify.log" 2>/dev/null \
  && pass "flotilla ran notify with INSTANCE VI_1 MASTER 150" || fail "notify script not run as keepalived does"
grep -q "INSTANCE VI_1 STOP" "$(lab_state_dir)/d1-notify.log" 2>/dev/null \
  && pass "flotilla ran notify with STOP on shutdown" || fail "no STOP notify"

echo "-- flotilla starts again and preempts"
start_flotilla d1 || fail "restart flotilla"
check_within "flotilla preempts keepalived" 1500 lab_wait_addr d1 "$VIP" 3
check_within "keepalived releases" 1500 wait_no_addr d2 3000

echo "-- crash flotilla (SIGKILL, cable pulled)"
t0=$(lab_now_ms)
lab_kill d1 flotilla KILL; lab_exec d1 ip link set eth0 down
check_within "keepalived takes over after flotilla's crash" 1000 wait_addr_since "$t0" d2 3
client_pings && pass "client pings $VIP via keepalived" || fail "client cannot ping $VIP after the crash"
lab_kill d2 keepalived TERM
lab_down

say "Round B: VRRPv2, 1 s adverts, PASS, unicast; keepalived 150 on d1, flotilla 100 on d2"
lab_up 2 || exit 1
write_conf d1 150 2 1 unicast; write_conf d2 100 2 1 unicast
# A crashed predecessor on d2 left the VIP behind: flotilla must not keep it as backup.
lab_exec d2 ip addr add "$VIP/24" dev eth0
start_keepalived d1 && start_flotilla d2 || { fail "start"; exit 1; }
if took=$(lab_wait_addr d1 "$VIP" 8); then pass "keepalived on d1 is master (${took} s)"
else fail "keepalived never took $VIP"; show_logs d1/keepalived d2/flotilla; exit 1; fi
sleep 4
lab_has_addr d2 "$VIP" && { fail "flotilla on d2 also holds $VIP: it does not accept keepalived's unicast PASS adverts"; show_logs d2/flotilla; } \
  || pass "flotilla on d2 stays backup while keepalived's unicast v2 PASS adverts flow (4 s)"

echo "-- crash keepalived"
t0=$(lab_now_ms)
crash_keepalived d1
check_within "flotilla takes over after keepalived's crash" 4500 wait_addr_since "$t0" d2 6
client_pings && pass "client pings $VIP via flotilla" || fail "client cannot ping $VIP via flotilla"

echo "-- keepalived returns and preempts"
lab_exec d1 ip addr del "$VIP/24" dev eth0 2>/dev/null
lab_exec d1 ip link set eth0 up
start_keepalived d1 || fail "restart keepalived"
check_within "keepalived back on d1" 6000 lab_wait_addr d1 "$VIP" 8
check_within "flotilla releases" 2000 wait_no_addr d2 3000
lab_kill d2 flotilla TERM || fail "flotilla did not exit on SIGTERM"
lab_kill d1 keepalived TERM
lab_down

say "Round C: a sync group of two instances, VRRPv3 0.1 s; flotilla 150 on d1, keepalived 100 on d2"
lab_up 2 || exit 1
write_group_conf d1 150; write_group_conf d2 100
G=(10.99.0.110 10.99.0.111)
start_flotilla d1 && start_keepalived d2 || { fail "start"; exit 1; }
if took=$(wait_holds d1 5 "${G[@]}"); then pass "flotilla's sync group is master on d1 with both VIPs (${took} s)"
else fail "flotilla's group never held both VIPs"; show_logs d1/flotilla d2/keepalived; fi
sleep 0.5
holds_none d2 "${G[@]}" && pass "keepalived's group on d2 holds neither VIP" || fail "keepalived on d2 also holds a group VIP"
sleep 0.2
grep -q "GROUP SG MASTER 150" "$(lab_state_dir)/d1-notify.log" 2>/dev/null \
  && pass "flotilla ran the group notify: GROUP SG MASTER 150" || fail "no group notify from flotilla"
"$FLOTILLA" status --api-socket "$(lab_state_dir)/d1.sock" | sed 's/^/   /'
echo "-- crash flotilla"
t0=$(lab_now_ms)
lab_kill d1 flotilla KILL; lab_exec d1 ip link set eth0 down
if wait_holds d2 3 "${G[@]}" >/dev/null; then pass "keepalived took both VIPs $(ms $(($(lab_now_ms) - t0))) s after the crash"
else fail "keepalived did not take both VIPs"; fi
echo "-- flotilla returns"
lab_exec d1 ip addr del 10.99.0.110/24 dev eth0 2>/dev/null; lab_exec d1 ip addr del 10.99.0.111/24 dev eth0 2>/dev/null
lab_exec d1 ip link set eth0 up
start_flotilla d1 || fail "restart flotilla"
if took=$(wait_holds d1 5 "${G[@]}"); then pass "flotilla took both VIPs back together (${took} s)"; else fail "flotilla did not take the group back"; fi
sleep 0.5
holds_none d2 "${G[@]}" && pass "keepalived released both" || fail "keepalived kept a group VIP"
lab_kill d1 flotilla TERM || fail "flotilla did not exit on SIGTERM"
holds_none d1 "${G[@]}" && pass "flotilla removed both VIPs on stop" || fail "flotilla left a group VIP behind"
lab_kill d2 keepalived TERM
lab_down

say "Round D: interface tracking; flotilla 150 (track_interface trk0) on d1, keepalived 100 on d2"
lab_up 2 || exit 1
write_conf d1 150 3 0.1; write_conf d2 100 3 0.1
sed -i 's/^  advert_int 0.1$/  advert_int 0.1\n  track_interface {\n    trk0\n  }/' "$(lab_state_dir)/d1.conf"
lab_exec d1 ip link add trk0 type veth peer name trk1 && lab_exec d1 ip link set trk1 up && lab_exec d1 ip link set trk0 up
start_flotilla d1 && start_keepalived d2 || { fail "start"; exit 1; }
if took=$(lab_wait_addr d1 "$VIP" 5); then pass "flotilla on d1 is master (${took} s)"; else fail "flotilla never took $VIP"; show_logs d1/flotilla; fi
sleep 0.3
echo "-- trk0 down"
t0=$(lab_now_ms)
lab_exec d1 ip link set trk0 down
check_within "keepalived takes over after flotilla's tracked interface went down" 600 wait_addr_since "$t0" d2 3
lab_has_addr d1 "$VIP" && fail "flotilla kept $VIP in FAULT" || pass "flotilla released $VIP in FAULT"
out=$("$FLOTILLA" status --api-socket "$(lab_state_dir)/d1.sock" 2>&1)
[[ $out == *VI_1*FAULT* ]] && pass "status shows VI_1 in FAULT" || fail "status: $out"
echo "-- trk0 up"
lab_exec d1 ip link set trk0 up
check_within "flotilla preempts again once trk0 is back" 2000 lab_wait_addr d1 "$VIP" 4
echo "-- d1's own eth0 down"
lab_exec d1 ip link set eth0 down
t0=$(lab_now_ms)
if wait_no_addr d1 1000 >/dev/null; then pass "flotilla removed $VIP when its own interface went down"; else fail "flotilla kept $VIP with eth0 down"; fi
check_within "keepalived takes over after d1's link went down" 1000 wait_addr_since "$t0" d2 3
lab_kill d1 flotilla TERM || fail "flotilla did not exit on SIGTERM"
lab_kill d2 keepalived TERM
lab_down

say "Round F: VRRPv3 unicast, equal priorities; flotilla 100 on d1 (10.99.0.1), keepalived 100 on d2 (10.99.0.2)"
lab_up 2 || exit 1
write_conf d1 100 3 0.1 unicast; write_conf d2 100 3 0.1 unicast
for n in d1 d2; do sed -i '/authentication {/,/^  }$/d' "$(lab_state_dir)/$n.conf"; done
lab_partition d1 d2
start_flotilla d1 && start_keepalived d2 || { fail "start"; exit 1; }
lab_wait_addr d1 "$VIP" 5 >/dev/null && lab_wait_addr d2 "$VIP" 5 >/dev/null \
  && pass "partitioned, both are master" || fail "partitioned, not both master"
lab_heal
t0=$(lab_now_ms)
if wait_no_addr d1 2000 >/dev/null; then pass "healed: flotilla (lower address, equal priority) yielded after $(ms $(($(lab_now_ms) - t0))) s"
else fail "healed: flotilla (lower address) still holds $VIP"; fi
sleep 0.5
lab_has_addr d2 "$VIP" && pass "keepalived (higher address) holds $VIP" || fail "keepalived (higher address) does not hold $VIP"
lab_has_addr d1 "$VIP" && fail "flotilla took $VIP back" || pass "flotilla stays backup"
t0=$(lab_now_ms)
crash_keepalived d2
check_within "flotilla takes over (v3 unicast) after keepalived's crash" 1000 wait_addr_since "$t0" d1 3
lab_kill d1 flotilla TERM || fail "flotilla did not exit on SIGTERM"
lab_down

say "Round E: IPv6; flotilla 150 on d1, keepalived 100 on d2"
VIP6=fd00::100
has6() { local out; out=$(ip -n "$(lab_ns "$1")" -o -6 addr show dev eth0 2>/dev/null); [[ $out == *" inet6 $VIP6/"* ]]; }
wait6() { local t0; t0=$(lab_now_ms); until has6 "$1"; do (($(lab_now_ms) - t0 > $2 * 1000)) && return 1; sleep 0.005; done; ms $(($(lab_now_ms) - t0)); }
lab_up 2 || exit 1
# The adverts leave from link-local addresses: wait for duplicate address detection.
for n in d1 d2; do
  for ((i = 0; i < 100; i++)); do
    out=$(ip -n "$(lab_ns $n)" -6 -o addr show dev eth0 scope link 2>/dev/null)
    [[ -n $out && $out != *tentative* ]] && break
    sleep 0.05
  done
done
for n in d1 d2; do
  write_conf $n $([[ $n == d1 ]] && echo 150 || echo 100) 3 0.1
  sed -i "s|    $VIP/24 dev eth0|    $VIP6/64 dev eth0|" "$(lab_state_dir)/$n.conf"
done
start_flotilla d1 && start_keepalived d2 || { fail "start"; exit 1; }
if took=$(wait6 d1 5); then pass "flotilla holds $VIP6 (${took} s)"; else fail "flotilla never took $VIP6"; show_logs d1/flotilla d2/keepalived; fi
sleep 0.5
has6 d2 && fail "keepalived also holds $VIP6" || pass "keepalived stays backup (IPv6)"
out=$(lab_exec d2 timeout 3 tcpdump -nn -l -i eth0 -c 1 'ip6 proto 112' 2>/dev/null)
[[ $out == *"fe80::"*"> ff02::12: ip-proto-112"* || $out == *"fe80::"*"> ff02::12: VRRPv3"* ]] \
  && pass "flotilla advertises from its link-local address to ff02::12" || fail "unexpected IPv6 adverts: $out"
lab_kill d1 flotilla TERM || fail "flotilla did not exit on SIGTERM"
has6 d1 && fail "flotilla kept $VIP6 after stop" || pass "flotilla removed $VIP6 on stop"
if took=$(wait6 d2 3); then pass "keepalived took $VIP6 (${took} s after flotilla exited)"; else fail "keepalived did not take $VIP6"; fi
start_flotilla d1 || fail "restart"
if took=$(wait6 d1 5); then pass "flotilla preempts over IPv6 (${took} s)"; else fail "flotilla did not preempt over IPv6"; fi
sleep 0.3
has6 d2 && fail "keepalived kept $VIP6" || pass "keepalived released $VIP6"
lab_kill d1 flotilla TERM
lab_kill d2 keepalived TERM
lab_down

say "Result"
if ((failures)); then echo "FAIL: flotilla-keepalived-interop ($failures failed checks)"; exit 1; fi
echo "PASS: flotilla-keepalived-interop"
