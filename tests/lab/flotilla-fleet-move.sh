#!/bin/bash
# Runbook: planned moves under a fast client — no request may fall between the old owner
# letting go of a VIP and the clients hearing the new owner.
#
#   Each round the client's neighbour entry for the VIP is flushed and resolved again (one
#   request: the entry was just updated, as for a client in steady traffic), the VIP's unit is
#   moved (`flotilla move`), and for the next 3 s the client opens a new HTTP connection to
#   the VIP every 5 ms (each with a 1 s limit) and records the outcome and its entry's MAC.
#   Before the fix this guards (the new owner's advert went out before its addresses and
#   GARP, so the old owner dropped the VIP a few ms before the clients were told) one request
#   in ~300 at 20 requests/s went unanswered.
#   Checks: every connection answered (a reset or cut in flight — connected, then no reply —
#   is counted apart: the responders are local to each director on the host tier, nothing
#   carries a connection across a move); the client's entry names the new owner in the end;
#   the VIP is held by it alone.
#   Prints FIGURE move_rounds=… move_requests=… move_unanswered=… move_reset=…
#
# Usage (root): bash tests/lab/flotilla-fleet-arp.sh     Env: LAB_TEST_PREFIX (default lab-t), ROUNDS (default 6)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
source tests/lab/lib/fleet.sh
runbook_begin mov || exit 1
lab_require curl python3 || exit 1
ROUNDS=${ROUNDS:-6}

fleet_boot

VIP=10.99.0.100
unit=$("$FLOTILLA" status --json --vip "$VIP" --api-socket "$st/d1.sock" 2>/dev/null | python3 -c "import json,sys
d=json.load(sys.stdin); print(d.get('unit') or d['units'][0]['name'])" 2>/dev/null)
[[ -n $unit ]] || unit=$(fleet_json d1 "next(u['name'] for u in f['units'] if u['owner'] and '100' in u['name'])")
say "Planned moves of $unit ($VIP) right after the client resolved it"
declare -A MAC
for d in $DIRECTORS; do MAC[$d]=$(lab_mac "$d"); done
total=0; unanswered=0; reset_total=0
for ((r = 1; r <= ROUNDS; r++)); do
  from=$(holders 100)
  [[ $from == d? ]] || { fail "round $r: $VIP held by '$from'"; break; }
  to=$(for d in $DIRECTORS; do [[ $d != "$from" ]] && echo "$d"; done | sed -n "$(( (r % 2) + 1 ))p")
  lab_exec c ip neigh flush to "$VIP" dev eth0
  lab_exec c curl -s -o /dev/null -m 1 "http://$VIP/" || fail "round $r: the first request failed"
  t0=$(lab_now_ms)
  "$FLOTILLA" move "$unit" --to "$to" --api-socket "$st/d1.sock" >/dev/null || fail "round $r: move refused"
  out=$(lab_exec c python3 - "$VIP" <<'PY'
import socket, subprocess, sys, threading, time
vip = sys.argv[1]
results = []
def one(t):
    s = socket.socket(); s.settimeout(1.0); stage = "connect"
    try:
        s.connect((vip, 80)); stage = "response"; s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        ok = s.recv(12).startswith(b"HTTP/1")
        results.append((t, "ok" if ok else "empty"))
    except ConnectionResetError: results.append((t, "reset"))
    # Connected and asked, then silence: the old owner let the VIP go before its reply left.
    except TimeoutError if stage == "response" else (): results.append((t, "cut"))
    except OSError as e: results.append((t, f"{type(e).__name__}@{stage}"))
    finally: s.close()
threads = []; t0 = time.monotonic()
while time.monotonic() - t0 < 3.0:
    th = threading.Thread(target=one, args=(time.monotonic() - t0,)); th.start(); threads.append(th)
    time.sleep(0.005)
for th in threads: th.join()
mac = subprocess.run(["ip", "neigh", "show", vip, "dev", "eth0"], capture_output=True, text=True).stdout.split()
print("MAC", mac[2] if len(mac) > 2 and mac[1] == "lladdr" else "-")
for t, r in sorted(results): print(f"{t:.3f} {r}")
PY
)
  mac=$(sed -n 's/^MAC //p' <<<"$out"); res=$(grep -v '^MAC' <<<"$out")
  n=$(wc -l <<<"$res"); resets=$(grep -cE ' (reset|cut)$' <<<"$res"); bad=$(grep -vcE ' (ok|reset|cut)$' <<<"$res")
  total=$((total + n)); unanswered=$((unanswered + bad)); reset_total=$((reset_total + resets))
  echo "   round $r: $from → $to: $n connections, $bad unanswered, $resets reset or cut in flight; client entry now $mac (new ${MAC[$to]})"
  ((bad)) && grep -vE ' (ok|reset|cut)$' <<<"$res" | head -5 | sed 's/^/      failed at +/'
  [[ $mac == "${MAC[$to]}" ]] || fail "round $r: the client's entry does not name $to in the end"
  [[ $(holders 100) == "$to" ]] || fail "round $r: $VIP held by '$(holders 100)', not $to"
  "$FLOTILLA" unpin "$unit" --api-socket "$st/d1.sock" >/dev/null
  "$FLOTILLA" move "$unit" --to "$to" --api-socket "$st/d1.sock" >/dev/null
  sleep 1
done
echo "FIGURE move_rounds=$ROUNDS move_requests=$total move_unanswered=$unanswered move_reset=$reset_total"
((unanswered == 0)) && pass "all $total connections answered across $ROUNDS planned moves ($reset_total reset or cut in flight)" \
  || fail "$unanswered of $total requests unanswered across $ROUNDS planned moves"
runbook_end
