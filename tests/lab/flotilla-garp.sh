#!/bin/bash
# Runbook: gratuitous ARPs are paced per interface (vrrp_garp_interval), whatever the number of
# instances, and go out on the interface each VIP lives on.
#
#   d1 runs flotilla with two instances on eth0 (VRIDs 71, 72; 4 VIPs each) and
#   global_defs { vrrp_garp_interval 0.025 }, garp_master_repeat 2, garp_master_delay 0 (no
#   second burst). Both become master at once; the client captures the ARPs on the segment.
#     1. Every VIP is announced exactly twice: 16 gratuitous ARPs from d1.
#     2. No two of them less than 20 ms apart (the two instances share one pacer), so the
#        burst takes at least 15 × 25 ms.
#
# Usage (root): bash tests/lab/flotilla-garp.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
runbook_begin garp || exit 1
lab_require tcpdump python3 || exit 1

lab_up 1 || exit 1
st=$(lab_state_dir)
instance() { # NAME VRID FIRST-HOST
  local i vips=""
  for i in 0 1 2 3; do vips+="    10.99.0.$(($3 + i))/24"$'\n'; done
  cat <<CONF
vrrp_instance $1 {
  state MASTER
  interface eth0
  virtual_router_id $2
  priority 150
  advert_int 0.1
  garp_master_repeat 2
  garp_master_delay 0
  virtual_ipaddress {
$vips  }
}
CONF
}
{ printf 'global_defs {\n  router_id d1\n  vrrp_version 3\n  vrrp_garp_interval 0.025\n}\n'
  instance VI_A 71 120; instance VI_B 72 130; } > "$st/d1.conf"

say "Capture on the client, start flotilla on d1"
lab_spawn c capture tcpdump -nn -l -tt -i eth0 'arp' 
sleep 1
lab_spawn d1 flotilla "$FLOTILLA" agent --config "$st/d1.conf" --api-socket "$st/d1.sock"
for _ in $(seq 50); do lab_has_addr d1 10.99.0.133 && break; sleep 0.1; done
sleep 1.5
lab_kill c capture TERM
log=$(lab_logfile c capture)
grep -c "Request who-has" "$log" | sed 's/^/   ARP requests captured: /'

if python3 - "$log" <<'PY'
import re, sys
times, targets = [], []
for line in open(sys.argv[1]):
    m = re.match(r"(\d+\.\d+) ARP, Request who-has (10\.99\.0\.\d+) tell (10\.99\.0\.\d+)", line)
    # A gratuitous ARP asks for its own address.
    if m and m.group(2) == m.group(3) and m.group(2) >= "10.99.0.120":
        times.append(float(m.group(1)))
        targets.append(m.group(2))
counts = {t: targets.count(t) for t in set(targets)}
gaps = [round((b - a) * 1000, 1) for a, b in zip(times, times[1:])]
print(f"   {len(times)} gratuitous ARPs, per VIP {sorted(counts.values())}, "
      f"gaps ms min {min(gaps) if gaps else '-'} max {max(gaps) if gaps else '-'}, "
      f"burst {round((times[-1] - times[0]) * 1000) if times else 0} ms")
assert len(counts) == 8 and all(c == 2 for c in counts.values()), counts
assert min(gaps) >= 20.0, gaps
PY
then pass "16 gratuitous ARPs, every VIP twice, none closer than 20 ms"
else fail "GARPs not as configured (capture in $log)"; fi

lab_kill d1 flotilla TERM
runbook_end
