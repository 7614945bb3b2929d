#!/bin/bash
# Runbook: flotilla under systemd's notify protocol, and the unit file.
#
#   1. ops/systemd/flotilla.service passes `systemd-analyze verify` (with its binary paths
#      pointed at the freshly built flotilla).
#   2. The agent, started as systemd would (NOTIFY_SOCKET, WATCHDOG_USEC=400 ms), says READY=1
#      once its instance runs, pings WATCHDOG=1 about every 200 ms, brackets a SIGHUP reload
#      with RELOADING=1 … READY=1, and says STOPPING=1 on SIGTERM.
#
# Usage (root): bash tests/lab/flotilla-systemd.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
runbook_begin sysd || exit 1
lab_require python3 systemd-analyze || exit 1

say "1. The unit file"
tmp=$(mktemp -d /tmp/flotilla-sysd.XXXXXX)
runbook_on_exit "rm -rf '$tmp'"
sed "s#/usr/bin/flotilla#$FLOTILLA#g" ops/systemd/flotilla.service > "$tmp/flotilla.service"
if out=$(systemd-analyze verify "$tmp/flotilla.service" 2>&1); then pass "systemd-analyze verify: clean"
else fail "systemd-analyze verify: $out"; fi
grep -q '^Type=notify' ops/systemd/flotilla.service && grep -q '^ExecReload=/bin/kill -HUP' ops/systemd/flotilla.service \
  && pass "Type=notify, ExecReload sends SIGHUP" || fail "unit lacks Type=notify or the SIGHUP reload"

say "2. The notify protocol"
lab_up 1 || exit 1
st=$(lab_state_dir)
cat > "$st/d1.conf" <<CONF
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    10.99.0.100/24
  }
}
CONF
cat > "$tmp/listen.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.2)
end = time.time() + float(sys.argv[2])
with open(sys.argv[3], "w", buffering=1) as out:
    while time.time() < end:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            continue
        out.write("%.3f %s\n" % (time.time(), msg.replace("\n", " ")))
PY
python3 "$tmp/listen.py" "$tmp/notify" 20 "$tmp/got" &
listener=$!
runbook_on_exit "kill $listener 2>/dev/null"
sleep 0.3
lab_spawn d1 flotilla env NOTIFY_SOCKET="$tmp/notify" WATCHDOG_USEC=400000 \
  "$FLOTILLA" agent --config "$st/d1.conf" --api-socket "$st/d1.sock"
for _ in $(seq 50); do grep -q READY=1 "$tmp/got" 2>/dev/null && break; sleep 0.1; done
grep -q "READY=1" "$tmp/got" && pass "READY=1 after start" || fail "no READY=1"
[[ -S $st/d1.sock ]] && pass "the control socket exists when READY=1 is sent" || fail "no control socket at READY"
sleep 1.2
pings=$(grep -c "WATCHDOG=1" "$tmp/got")
((pings >= 4)) && pass "$pings watchdog pings in about 1.2 s (every 200 ms)" || fail "only $pings watchdog pings"
kill -HUP "$(lab_pid d1 flotilla)"
sleep 0.5
if python3 - "$tmp/got" <<'PY'
import sys
lines = [l.split(" ", 1)[1] for l in open(sys.argv[1])]
i = next(i for i, l in enumerate(lines) if l.startswith("RELOADING=1 MONOTONIC_USEC="))
assert any(l.startswith("READY=1") for l in lines[i + 1:]), lines[i:]
PY
then pass "SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1"
else fail "reload not bracketed: $(cat "$tmp/got" | grep -v WATCHDOG)"; fi
lab_kill d1 flotilla TERM
sleep 0.3
grep -q "STOPPING=1" "$tmp/got" && pass "STOPPING=1 on SIGTERM" || fail "no STOPPING=1"
runbook_end
