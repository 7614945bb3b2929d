# Helpers for the fleet runbooks (sourced after tests/lab/lib/runbook.sh and runbook_begin).
#
#   fleet_up [HOLD_DOWN]     lab of 3 directors, certificates from `flotilla cert`, $st/lab.conf
#                            (cluster-configs/lab.conf, tls paths pointed at them, hold-down
#                            shortened, default 5s), $VIPS (last octets), HTTP responders
#   fleet_start D            `flotilla agent --name D` on D (the same binary each time)
#   fleet_boot               fleet_up 5s, every director started, each VIP held once (checked;
#                            the runbook ends if not)
#   fleet_status D           `flotilla status --json` of D (empty if D does not answer)
#   fleet_json D EXPR        python expression over f = the status's "fleet" object
#   holders OCTET            directors holding 10.99.0.OCTET (space separated)
#   each_once                every VIP held by exactly one director (else prints the first bad)
#   load / spread LOAD       VIPs per director "d1=N d2=N d3=N " / its max − min
#   traffic_start SECS       the client requests every VIP in turn until traffic_stop (or SECS)
#   traffic_stop             → $st/replies: "ok" or "FAILED VIP rc ms" lines
#   CUT_IN_FLIGHT            ERE for the failed lines of requests open to a director as it let
#                            the VIP go: reset (curl 52, 56), or connected and then no answer
#                            (28c: the director's own responder lost the address mid-answer).
#                            On this host lab each director answers itself, so such a request
#                            cannot follow the VIP; counted apart from unanswered ones.
#   watch_start / watch_stop ownership sampled every ~20 ms → $st/owners ("ms d1:… d2:… d3:… d3:… d2:… d1:…",
#                            two passes in opposite orders)
#   watch_report FROM_MS     analyses $st/owners from FROM_MS: "zero=N max_double_s=S
#                            max_double_vip=V max_gap_s=S samples=N" and the zero-holder samples.
#                            Unheld: no read of either pass saw a holder. Doubly held: each pass
#                            saw two; a stretch runs from the first such sample to the first
#                            sample that is not (so it may be over by one sample gap).
st=""
VIPS=""
DIRECTORS="d1 d2 d3"
CUT_IN_FLIGHT='rc=(52|56|28c) '

fleet_up() {
  local hold=${1:-5s} d
  lab_up 3 || return 1
  st=$(lab_state_dir)
  "$FLOTILLA" cert init --dir "$st/pki" >/dev/null || { fail "cert init"; return 1; }
  for d in $DIRECTORS; do "$FLOTILLA" cert issue --ca "$st/pki" --name "$d" >/dev/null || { fail "cert issue $d"; return 1; }; done
  sed -e "s#/var/lib/flotilla/lab/pki/ca.pem#$st/pki/ca.pem#" -e "s#dir /var/lib/flotilla/lab/pki#dir $st/pki#" \
      -e "s#hold_down 30s#hold_down $hold#" cluster-configs/lab.conf > "$st/lab.conf"
  VIPS=$(grep -oE '10\.99\.0\.1[0-9]{2}/24' "$st/lab.conf" | cut -d/ -f1 | cut -d. -f4 | sort -u | tr '\n' ' ')
  for d in $DIRECTORS; do
    mkdir -p "$st/www-$d" && echo "$d" > "$st/www-$d/index.html"
    lab_spawn "$d" http python3 -m http.server 80 --bind 0.0.0.0 --directory "$st/www-$d"
  done
}

fleet_start() {
  lab_spawn "$1" flotilla "$FLOTILLA" agent --config "$st/lab.conf" --name "$1" \
    --state-dir "$st/state-$1" --api-socket "$st/$1.sock"
}
fleet_boot() {
  local bad d
  fleet_up 5s || runbook_end
  say "The fleet starting (HTTP responders on every director)"
  for d in $DIRECTORS; do fleet_start "$d"; done
  wait_for 25 each_once && sleep 2
  if bad=$(each_once); then pass "all $(wc -w <<<"$VIPS") VIPs held exactly once; load $(load)"
  else fail "VIP ownership at start: $bad"; runbook_end; fi
}

fleet_status() { timeout 5 "$FLOTILLA" status --json --api-socket "$st/$1.sock" 2>/dev/null; }
fleet_json() {
  fleet_status "$1" | python3 -c "import json,sys
try: f=json.load(sys.stdin)['fleet']
except Exception: sys.exit(1)
print($2)" 2>/dev/null
}

holders() { local d out=""; for d in $DIRECTORS; do lab_has_addr "$d" "10.99.0.$1" && out+="$d "; done; echo "${out% }"; }
# each_once: every VIP has exactly one holder. A VIP seen with two holders (or none) is looked at
# again 0.3 s later before it counts: a planned move holds its VIPs twice for a few tens of ms on
# purpose (make-before-break), and a rebalance after a heal makes such moves for seconds. How
# long any VIP really had two holders or none is the ownership watcher's job (watch_report).
each_once() {
  local v h
  for v in $VIPS; do
    h=$(holders "$v"); [[ $h == d? ]] && continue
    sleep 0.3; h=$(holders "$v"); [[ $h == d? ]] || { echo "$v:'$h'"; return 1; }
  done
}
load() { local d v n; for d in $DIRECTORS; do n=0; for v in $VIPS; do lab_has_addr "$d" "10.99.0.$v" && n=$((n + 1)); done; printf '%s=%s ' "$d" "$n"; done; }
spread() { tr ' ' '\n' <<<"$1" | cut -d= -f2 | grep . | sort -n | awk 'NR==1{mn=$1} {mx=$1} END{print mx - mn}'; }

# wait_for SECS CMD...: true once CMD succeeds (polled every 0.1 s), false after SECS.
wait_for() {
  local limit=$(($1 * 1000)) t0; shift
  t0=$(lab_now_ms)
  until "$@" >/dev/null 2>&1; do (($(lab_now_ms) - t0 > limit)) && return 1; sleep 0.1; done
}

traffic_start() {
  rm -f "$st/traffic.stop" "$st/replies"
  # Sequential requests to every VIP in turn; each with a 1 s limit. Bounded by SECS. A
  # request that connected and then timed out is "rc=28c": cut in flight, as a reset (rc 52,
  # 56) is (see CUT_IN_FLIGHT).
  lab_exec c bash -c "end=\$((\$(date +%s) + $1)); while [[ ! -e $st/traffic.stop ]] && (( \$(date +%s) < end )); do
      for v in $VIPS; do t=\$(curl -s -o /dev/null -w '%{time_connect}' -m 1 http://10.99.0.\$v/); rc=\$?
        ((rc == 28)) && [[ \$t != 0.000000 ]] && rc=28c
        [[ \$rc == 0 ]] && echo ok || echo \"FAILED \$v rc=\$rc \$((\$(date +%s%N) / 1000000)) \$(ip neigh show 10.99.0.\$v)\"; done; done" > "$st/replies" 2>&1 &
  _traffic=$!
}
traffic_stop() { touch "$st/traffic.stop"; wait "$_traffic" 2>/dev/null; }

watch_start() {
  rm -f "$st/watch.stop"
  (
    local d line out end=$(($(date +%s) + ${1:-300}))
    local -A ns
    for d in $DIRECTORS; do ns[$d]=$(lab_ns "$d"); done
    while [[ ! -e $st/watch.stop ]] && (($(date +%s) < end)); do
      # Two passes in opposite orders: the reads of one sample are not simultaneous, so a
      # VIP moving between two directors during one pass can look unheld (or doubly held).
      line=$(lab_now_ms)
      for d in $DIRECTORS $(tr ' ' '\n' <<<"$DIRECTORS" | tac); do
        out=$(ip -n "${ns[$d]}" -br -4 addr show dev eth0 2>/dev/null); line+=" $d:${out//[[:space:]]/,}"
      done
      echo "$line"
      sleep 0.02
    done
  ) > "$st/owners" &
  _watcher=$!
}
watch_stop() { touch "$st/watch.stop"; wait "$_watcher" 2>/dev/null; }

watch_report() {
  python3 - "$st/owners" "${1:-0}" "$VIPS" <<'EOF'
import sys
path, since, vips = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
zero, double_start, max_double, max_vip, last, gap, n = [], {}, 0.0, "-", None, 0.0, 0
for line in open(path):
    parts = line.split()
    if len(parts) < 2: continue
    t = int(parts[0])
    if t < since: continue
    n += 1
    if last is not None: gap = max(gap, (t - last) / 1000)
    last = t
    reads = parts[1:]
    passes = [reads[: len(reads) // 2], reads[len(reads) // 2 :]]
    held = [{}, {}]
    for k, ps in enumerate(passes):
        for p in ps:
            d, _, addrs = p.partition(":")
            for a in addrs.split(","):
                if a.startswith("10.99.0."):
                    held[k].setdefault(a.split("/")[0].rsplit(".", 1)[1], set()).add(d)
    for v in vips:
        a, b = held[0].get(v, set()), held[1].get(v, set())
        # unheld: no read of either pass saw it; doubly held: each pass saw two holders
        if not a and not b: zero.append(f"{t}:{v}")
        if len(a) >= 2 and len(b) >= 2:
            double_start.setdefault(v, t)
        elif v in double_start:
            d = (t - double_start.pop(v)) / 1000
            if d > max_double: max_double, max_vip = d, v
for v, t0 in double_start.items():  # still double at the end
    d = (last - t0) / 1000
    if d > max_double: max_double, max_vip = d, v
print(f"zero={len(zero)} max_double_s={max_double:.3f} max_double_vip={max_vip} max_gap_s={gap:.3f} samples={n}")
for z in zero[:10]: print("   zero-holder sample", z)
EOF
}
