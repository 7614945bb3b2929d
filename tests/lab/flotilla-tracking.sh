#!/bin/bash
# Runbook: trackers move VRRP priority and state — flotilla on d1 beside real keepalived on d2.
#
#   VI_1 (VRID 61, VRRPv3, 0.1 s adverts, VIP 10.99.0.100): flotilla on d1 priority 150,
#   keepalived 2.2.7 on d2 priority 100. flotilla's VI_1 tracks
#     * vrrp_script chk_ok: `test -f OK`, every 0.2 s, weight -60, rise 2, fall 2;
#     * track_file tf: a number file (init_file 0), weight 1;
#     * vrrp_track_process daemon: a process named flot-trk-sleep, weight 0 (gone → FAULT);
#   and its notify_master runs as user nobody.
#     1. Everything healthy: d1 master at 150; the notify script ran as nobody.
#     2. The check file removed: d1 drops to 90 and keepalived takes the VIP; restored: back.
#     3. The number file says -70: d1 at 80, keepalived takes it; 0 again: back.
#     4. The tracked daemon killed: d1 in FAULT (status names the process), keepalived takes
#        it at once (priority-0 advert); daemon restarted: back.
#
# Usage (root): bash tests/lab/flotilla-tracking.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
runbook_begin trk || exit 1
lab_require keepalived || exit 1
VIP=10.99.0.100

lab_up 2 || exit 1
st=$(lab_state_dir)
# Written by the notify script running as nobody.
pub=$(mktemp -d /tmp/flotilla-trk.XXXXXX); chmod 777 "$pub"
runbook_on_exit "rm -rf '$pub'"
cp /bin/sleep "$st/flot-trk-sleep"
touch "$st/ok"

cat > "$st/d1.conf" <<CONF
global_defs {
  router_id d1
  vrrp_version 3
}
vrrp_script chk_ok {
  script "/usr/bin/test -f $st/ok"
  interval 0.2
  weight -60
  rise 2
  fall 2
}
track_file tf {
  file $st/weight
  weight 1
  init_file 0 overwrite
}
vrrp_track_process daemon {
  process flot-trk-sleep
  weight 0
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority 150
  advert_int 0.1
  track_script {
    chk_ok
  }
  track_file {
    tf
  }
  track_process {
    daemon
  }
  notify_master "/bin/sh -c 'id -u > $pub/notify-uid'" nobody
  virtual_ipaddress {
    $VIP/24
  }
}
CONF
cat > "$st/d2.conf" <<CONF
global_defs {
  router_id d2
  vrrp_version 3
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority 100
  advert_int 0.1
  virtual_ipaddress {
    $VIP/24
  }
}
CONF

status_d1() { "$FLOTILLA" status --json --api-socket "$st/d1.sock" 2>/dev/null; }
field() { python3 -c "import json,sys; i=json.load(sys.stdin)['instances'][0]; print(i.get('$1'))"; }
prio_d1() { status_d1 | field effective_priority; }
wait_prio() { # WANT SECONDS
  local t0; t0=$(lab_now_ms)
  until [[ $(prio_d1) == "$1" ]]; do (($(lab_now_ms) - t0 > $2 * 1000)) && return 1; sleep 0.05; done
}
where() { local n out=""; for n in d1 d2; do lab_has_addr "$n" "$VIP" && out+="$n "; done; echo "${out% }"; }
wait_on() { local t0; t0=$(lab_now_ms); until [[ $(where) == "$1" ]]; do (($(lab_now_ms) - t0 > $2 * 1000)) && return 1; sleep 0.02; done; _lab_seconds $(($(lab_now_ms) - t0)); }
expect_on() { # WHO SECONDS WHAT
  local took
  if took=$(wait_on "$1" "$2"); then pass "$3: VIP on $1 (${took} s)"; else fail "$3: VIP on '$(where)', expected $1"; fi
}

say "1. Everything healthy"
lab_spawn d1 daemon "$st/flot-trk-sleep" 600
lab_spawn d2 keepalived keepalived --dont-fork --log-console --log-detail --vrrp \
  -f "$st/d2.conf" -p "$st/d2-keepalived.pid" -r "$st/d2-vrrp.pid"
lab_spawn d1 flotilla "$FLOTILLA" agent --config "$st/d1.conf" --api-socket "$st/d1.sock"
expect_on d1 10 "flotilla at 150 beats keepalived at 100"
if wait_prio 150 5; then pass "d1's effective priority is 150"; else fail "d1's effective priority is $(prio_d1), expected 150"; fi
[[ $(cat "$st/weight" 2>/dev/null) == 0 ]] && pass "init_file wrote 0" || fail "init_file did not write the file"
for _ in $(seq 50); do [[ -s $pub/notify-uid ]] && break; sleep 0.1; done
[[ $(cat "$pub/notify-uid" 2>/dev/null) == 65534 ]] && pass "notify_master ran as nobody" || fail "notify_master uid '$(cat "$pub/notify-uid" 2>/dev/null)', expected 65534"

say "2. vrrp_script: the check fails (fall 2), then passes (rise 2)"
rm -f "$st/ok"
if wait_prio 90 5; then pass "d1 dropped to 90 (150 − 60)"; else fail "d1 priority $(prio_d1), expected 90"; fi
expect_on d2 5 "keepalived preempts the weakened master"
touch "$st/ok"
if wait_prio 150 5; then pass "d1 back at 150"; else fail "d1 priority $(prio_d1), expected 150"; fi
expect_on d1 5 "flotilla preempts back"

say "3. track_file: the number moves the priority"
echo -70 > "$st/weight"
if wait_prio 80 5; then pass "d1 at 80 (150 − 70)"; else fail "d1 priority $(prio_d1), expected 80"; fi
expect_on d2 5 "keepalived takes over"
# Replaced by rename, as a configuration tool would.
echo 0 > "$st/weight.new" && mv "$st/weight.new" "$st/weight"
if wait_prio 150 5; then pass "d1 back at 150"; else fail "d1 priority $(prio_d1), expected 150"; fi
expect_on d1 5 "flotilla preempts back"

say "4. vrrp_track_process: the daemon dies (weight 0 → FAULT)"
t0=$(lab_now_ms)
lab_kill d1 daemon KILL
expect_on d2 5 "keepalived takes over from the faulted director"
echo "   (from the kill: $(_lab_seconds $(($(lab_now_ms) - t0))) s; the process poll is 0.5 s)"
state=$(status_d1 | field state); by=$(status_d1 | field fault_by)
[[ $state == FAULT && $by == "process daemon" ]] && pass "status: FAULT, fault_by '$by'" || fail "status: state $state, fault_by '$by'"
"$FLOTILLA" status --api-socket "$st/d1.sock" | sed 's/^/   /'
lab_spawn d1 daemon "$st/flot-trk-sleep" 600
expect_on d1 5 "daemon back: flotilla leaves FAULT and preempts"

lab_kill d1 flotilla TERM; lab_kill d2 keepalived TERM; lab_kill d1 daemon KILL
runbook_end
