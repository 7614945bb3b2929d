#!/bin/bash
# Harness (not a test): on a planned move, does the new owner's gratuitous ARP leave before the
# advert on which the old owner lets go? And what happens to requests in flight?
#
# The host lab of `flotilla lab up` (3 directors, 14 VIPs), optionally with LOAD busy loops
# beside it. CYCLES times: the client requests every VIP in turn for 6 s (ops/lab's
# traffic.py, 1 s limit each); 1 s in, `flotilla drain dN --wait` (d1, d2, d3 in turn); then
# `undrain` and 14 s for the units to come back. tcpdump on every director's eth0 records ARP
# and VRRP throughout. Then, per director, every takeover advert (its first advert for a VRID
# after ≥ 1.5 s without one, priority > 0) is matched with the last GARP this director sent
# for one of the advert's addresses in the second before it.
#
# Prints: requests answered / reset or cut in flight / failed per cycle (with the client's
# reason for each failure), then "takeover adverts: N, GARP first in M; advert − GARP ms:
# min/median/max", and the adverts that left before their GARP.
#
# Usage (root): bash benches/lab/garp-order.sh
# Env: FLOTILLA_BIN (default: debug build), CYCLES (9), LOAD (busy loops, 0),
#      BENCH_LAB_PREFIX (default lab-bgo)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export LAB_PREFIX=${BENCH_LAB_PREFIX:-lab-bgo}
export FLOTILLA=${FLOTILLA_BIN:-$PWD/target/debug/flotilla}
CYCLES=${CYCLES:-9} LOAD=${LOAD:-0}
source ops/lab/lab.sh
st=$(lab_state_dir)
out=$(mktemp -d /tmp/garp-order.XXXXXX)
burners=()
cleanup() {
  ((${#burners[@]})) && kill "${burners[@]}" 2>/dev/null
  for d in d1 d2 d3; do ip netns pids "$LAB_PREFIX-$d" 2>/dev/null | xargs -r kill 2>/dev/null; done
  bash ops/lab/fleet.sh down > /dev/null 2>&1
  rm -rf "$out"
}
trap cleanup EXIT
[[ -x $FLOTILLA ]] || { echo "no binary $FLOTILLA (cargo build)"; exit 1; }

echo "== lab up ($LAB_PREFIX, $FLOTILLA)"
bash ops/lab/fleet.sh up > "$out/up.log" 2>&1 || { tail -20 "$out/up.log"; exit 1; }
mapfile -t VIPS < "$st/vips"
declare -A MAC
for d in d1 d2 d3; do
  MAC[$d]=$(ip -n "$LAB_PREFIX-$d" -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  ip netns exec "$LAB_PREFIX-$d" tcpdump -i eth0 -n -U -w "$out/$d.pcap" 'arp or ip proto 112' > /dev/null 2>&1 &
done
for ((i = 0; i < LOAD; i++)); do (while :; do :; done) & burners+=($!); done
sleep 1

echo "== $CYCLES drains under traffic (LOAD=$LOAD busy loops)"
for ((i = 1; i <= CYCLES; i++)); do
  d=d$(((i - 1) % 3 + 1)) o=d$((i % 3 + 1))
  lab_exec c python3 "$st/traffic.py" seconds 6 1 "${VIPS[@]}" > "$out/c$i.txt" 2> "$out/c$i.err" &
  client=$!
  sleep 1
  "$FLOTILLA" drain "$d" --wait --api-socket "$st/$o.sock" > /dev/null 2>&1
  wait "$client"
  printf '   cycle %d, drain %s: answered %d, reset or cut in flight %d, failed %d %s\n' "$i" "$d" \
    "$(grep -vcE '^(FAILED|RESET|CUT)$' "$out/c$i.txt")" "$(grep -cE '^(RESET|CUT)$' "$out/c$i.txt")" \
    "$(grep -c '^FAILED$' "$out/c$i.txt")" "$(tr '\n' ';' < "$out/c$i.err")"
  "$FLOTILLA" undrain "$d" --api-socket "$st/$o.sock" > /dev/null 2>&1
  sleep 14
done
for d in d1 d2 d3; do ip netns pids "$LAB_PREFIX-$d" | xargs -r ps -o pid=,comm= -p | awk '$2 == "tcpdump" { print $1 }' | xargs -r kill; done
sleep 1

echo "== order of GARP and takeover advert"
for d in d1 d2 d3; do echo "$d ${MAC[$d]} $out/$d.pcap"; done | python3 -c '
import re, statistics, subprocess, sys
gaps, late = [], []
for line in sys.stdin:
    d, mac, pcap = line.split()
    me = "10.99.0." + d[1:]
    text = subprocess.run(["tcpdump", "-r", pcap, "-tt", "-e", "-n", "-v"], capture_output=True, text=True).stdout
    recs = []
    for l in text.splitlines():
        if re.match(r"^\d+\.\d+ ", l): recs.append(l)
        elif recs: recs[-1] += " " + l.strip()
    if not recs: continue
    t0, garps, adverts = float(recs[0].split()[0]), [], []
    for r in recs:
        t = float(r.split()[0])
        if r.split()[1] == mac and "ARP" in r:
            m = re.search(r"who-has ([\d.]+) tell ([\d.]+)", r)
            if m and m.group(1) == m.group(2): garps.append((t, m.group(1)))
        elif "VRRP" in r and f" {me} > " in r:
            m = re.search(r"vrid (\d+), prio (\d+).*addrs?(?:\(\d+\))?: ([\d.,]+)", r)
            if m: adverts.append((t, int(m.group(1)), int(m.group(2)), m.group(3).split(",")))
    last = {}
    for t, vrid, prio, addrs in adverts:
        first = (vrid not in last and t > t0 + 2.5) or (vrid in last and t - last[vrid] > 1.5)
        last[vrid] = t
        if not first or prio == 0: continue
        before = [tg for tg, ip in garps if ip in addrs and t - 1.0 <= tg <= t]
        if before: gaps.append(t - max(before))
        else:
            after = [tg - t for tg, ip in garps if ip in addrs and t < tg <= t + 1.0]
            late.append(f"{d} vrid {vrid} prio {prio}: GARP " + (f"{min(after) * 1000:.2f} ms after" if after else "none within 1 s"))
n = len(gaps) + len(late)
print(f"   takeover adverts: {n}, GARP first in {len(gaps)}", end="")
if gaps:
    g = sorted(x * 1000 for x in gaps)
    print(f"; advert − GARP: min {g[0]:.2f} ms, median {statistics.median(g):.2f} ms, max {g[-1]:.2f} ms")
else:
    print()
for l in late: print("   advert before its GARP:", l)
'
