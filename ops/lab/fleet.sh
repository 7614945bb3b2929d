#!/usr/bin/env bash
# The local fleet lab behind `flotilla lab up|demo|status|down` (run as root, from the repo).
#
#   fleet.sh up [--directors N]   namespaces (N directors, client c, backends b1 b2), a cluster
#                                 CA and certificates, agents with cluster-configs/lab.conf,
#                                 HTTP on every director and backend; waits with progress
#                                 until every VIP is held, then prints the placement
#   fleet.sh demo                 a one-minute walk through the mission, with measurements
#   fleet.sh status               `flotilla status` on d1
#   fleet.sh down                 removes everything (safe to run twice)
#
# Env: FLOTILLA (the binary; default target/debug/flotilla), LAB_PREFIX (default "lab").
# This kernel has no IPVS: agents keep their LVS table in memory (--ipvs memory) and the
# directors answer HTTP on the VIPs themselves; the checkers of b1/b2 are real.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
source ops/lab/lab.sh
export LAB_PREFIX=${LAB_PREFIX:-lab}
FLOTILLA=${FLOTILLA:-$PWD/target/debug/flotilla}
st=$(lab_state_dir)

b()   { printf '\033[1m%s\033[0m\n' "$*"; }
step() { echo; b "── $*"; }
die() { echo "flotilla lab: $*" >&2; exit 1; }

ndirs() { cat "$st/directors" 2>/dev/null || echo 3; }
vips() { grep -oE '10\.99\.0\.1[0-9]{2}/24' "$st/lab.conf" | cut -d/ -f1 | sort -u -t. -k4n; }
holders() { local d out=""; for ((d = 1; d <= $(ndirs); d++)); do lab_has_addr "d$d" "$1" && out+="d$d "; done; echo "${out% }"; }
sock() { echo "$st/$1.sock"; }
start_agent() {
  lab_spawn "$1" flotilla "$FLOTILLA" agent --config "$st/lab.conf" --name "$1" --state-dir "$st/state-$1" \
    --api-socket "$(sock "$1")" --ipvs memory --listen 0.0.0.0:9180
}

up() {
  local n=3
  while (($#)); do case $1 in --directors) n=${2:?}; shift 2 ;; *) die "up: unknown option $1" ;; esac; done
  ((n >= 2 && n <= 9)) || die "--directors must be 2..9"
  [[ -x $FLOTILLA ]] || die "no flotilla binary at $FLOTILLA (cargo build -p flotilla)"
  lab_require ip python3 curl || exit 1
  step "Building the lab: $n directors, a client, two backends (namespaces ${LAB_PREFIX}-*)"
  lab_down >/dev/null 2>&1
  lab_up "$n" || die "lab up failed"
  echo "$n" > "$st/directors"
  step "Cluster CA and one certificate per director (flotilla cert)"
  "$FLOTILLA" cert init --dir "$st/pki" >/dev/null || die "cert init"
  local d i
  for ((i = 1; i <= n; i++)); do "$FLOTILLA" cert issue --ca "$st/pki" --name "d$i" >/dev/null || die "cert issue"; done
  echo "  $st/pki: ca.pem, d1.pem … d$n.pem"
  # lab.conf names d1..d3; other fleet sizes get their director list rewritten.
  python3 - "$n" "$st" cluster-configs/lab.conf > "$st/lab.conf" <<'PY'
import re, sys
n, st, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
text = open(path).read()
dirs = "".join(f"    director d{i} {{ address 10.99.0.{i} }}\n" for i in range(1, n + 1))
text = re.sub(r"(    director d\d \{[^}]*\}\n)+", dirs, text)
text = text.replace("/var/lib/flotilla/lab/pki/ca.pem", f"{st}/pki/ca.pem").replace("dir /var/lib/flotilla/lab/pki", f"dir {st}/pki")
text = text.replace("hold_down 30s", "hold_down 10s")
sys.stdout.write(text)
PY
  "$FLOTILLA" config check "$st/lab.conf" 2>/dev/null | sed 's/^/  /' || die "lab.conf does not check"
  step "HTTP: every director answers with its name; backends b1, b2 serve the real servers"
  for ((i = 1; i <= n; i++)); do
    d=d$i; mkdir -p "$st/www-$d" && echo "$d" > "$st/www-$d/index.html"
    lab_spawn "$d" http python3 -m http.server 80 --bind 0.0.0.0 --directory "$st/www-$d" >/dev/null
  done
  for d in b1 b2; do
    mkdir -p "$st/www-$d" && echo "$d" > "$st/www-$d/index.html"
    lab_spawn "$d" http python3 -m http.server 80 --bind 0.0.0.0 --directory "$st/www-$d" >/dev/null
  done
  step "Starting the agents (flotilla agent --name dN; the web page and /metrics on :9180 in each namespace)"
  for ((i = 1; i <= n; i++)); do start_agent "d$i"; done
  local t0 all held total
  # One line about the fleet from `flotilla status --json`.
  cat > "$st/fleet_line.py" <<'PY'
import json, sys
f = json.load(sys.stdin).get("fleet") or {}
members = f.get("members", [])
up = sum(1 for m in members if m["alive"])
print(f"{up}/{len(members)} directors up, leader {f.get('leader') or '-'}, epoch {f.get('epoch', 0)}")
PY
  t0=$(lab_now_ms); total=$(vips | wc -l)
  while :; do
    held=0; for v in $(vips); do [[ -n $(holders "$v") ]] && held=$((held + 1)); done
    all=$("$FLOTILLA" status --json --api-socket "$(sock d1)" 2>/dev/null | python3 "$st/fleet_line.py" 2>/dev/null)
    [[ -n $all ]] || all="waiting for the agent on d1"
    printf '\r  %-60s %2d/%d VIPs held  %5.1f s ' "$all" "$held" "$total" "$(_lab_seconds $(($(lab_now_ms) - t0)))"
    ((held == total)) && [[ $all == $n/$n* ]] && break
    (($(lab_now_ms) - t0 > 30000)) && { echo; die "the fleet did not come up in 30 s (logs: $st/logs)"; }
    sleep 0.3
  done
  echo
  step "Placement (flotilla status on d1)"
  "$FLOTILLA" status --api-socket "$(sock d1)" | sed -n '2,/^this director/p' | sed '$d'
  echo "Next: flotilla lab demo · flotilla lab status · flotilla lab down"
}

# requests COUNT_PER_VIP → "d1=… d2=… failed=…"
traffic() {
  local list; list=$(vips | tr '\n' ' ')
  lab_exec c bash -c "for ((i = 0; i < $1; i++)); do for v in $list; do curl -s -m 1 http://\$v/ || echo FAILED; done; done" \
    | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'
}

demo() {
  [[ -f $st/lab.conf ]] || die "no lab: run flotilla lab up first"
  local n victim t0 took mine v
  n=$(ndirs)
  step "1. Traffic through every VIP (3 requests each): who answers"
  echo "  $(traffic 3)"
  step "2. A director crashes: d2 is killed and unplugged"
  mine=$(for v in $(vips); do [[ $(holders "$v") == d2 ]] && echo "$v"; done | tr '\n' ' ')
  echo "  d2 held: $mine"
  t0=$(lab_now_ms)
  lab_kill d2 flotilla KILL; lab_exec d2 ip link set eth0 down
  while :; do
    local left=0; for v in $mine; do h=$(holders "$v"); [[ ${h/d2/} =~ d[0-9] ]] || left=$((left + 1)); done
    ((left == 0)) && break
    (($(lab_now_ms) - t0 > 10000)) && break
    sleep 0.01
  done
  took=$(_lab_seconds $(($(lab_now_ms) - t0)))
  b "  all of d2's VIPs taken over by survivors in $took s (plain VRRP with advert_int 1 s: ≥ 3.6 s)"
  echo "  $(traffic 1)"
  step "3. d2 comes back (10 s hold-down, then placement rebalances)"
  for v in $mine; do lab_exec d2 ip addr del "$v/24" dev eth0 2>/dev/null; done
  lab_exec d2 ip link set eth0 up
  start_agent d2
  t0=$(lab_now_ms)
  while (($(lab_now_ms) - t0 < 16000)); do
    printf '\r  %4.1f s: d2 holds %s VIP(s) ' "$(_lab_seconds $(($(lab_now_ms) - t0)))" "$(for v in $(vips); do lab_has_addr d2 "$v" && echo x; done | wc -l)"
    sleep 1
  done
  echo
  "$FLOTILLA" status --api-socket "$(sock d1)" | sed -n '4,8p' | sed 's/^/  /'
  step "4. Drain d1 while the client keeps requesting every VIP"
  lab_exec c bash -c "end=\$((\$(date +%s) + 5)); while (( \$(date +%s) < end )); do for v in $(vips | tr '\n' ' '); do curl -s -m 1 http://\$v/ >/dev/null && echo ok || echo FAILED; done; done" > "$st/drain.txt" &
  local loop=$!
  sleep 1
  "$FLOTILLA" drain d1 --wait --api-socket "$(sock d2)" | sed 's/^/  /'
  wait "$loop"
  b "  during the drain: $(grep -c '^ok$' "$st/drain.txt") requests answered, $(grep -c FAILED "$st/drain.txt") failed"
  "$FLOTILLA" undrain d1 --api-socket "$(sock d2)" | sed 's/^/  /'
  step "5. A backend fails: b1's web server stops; its HTTP_GET checks take it out of the LVS table"
  lab_kill b1 http TERM
  t0=$(lab_now_ms)
  until "$FLOTILLA" status --json --api-socket "$(sock d1)" 2>/dev/null | grep -q '"alive": false'; do
    (($(lab_now_ms) - t0 > 15000)) && break; sleep 0.2
  done
  "$FLOTILLA" status --api-socket "$(sock d1)" | grep -A3 '^virtual server' | head -4 | sed 's/^/  /'
  echo "  (b1 left after $(_lab_seconds $(($(lab_now_ms) - t0))) s; the table is in memory on this kernel — tests/lab/uml-flotilla-lvs.sh shows it in real IPVS)"
  lab_spawn b1 http python3 -m http.server 80 --bind 0.0.0.0 --directory "$st/www-b1" >/dev/null
  step "Done. flotilla lab status shows the fleet; flotilla lab down removes it."
}

case ${1:-} in
  up) shift; up "$@" ;;
  demo) demo ;;
  status) [[ -S $(sock d1) ]] || die "no lab running (flotilla lab up)"; "$FLOTILLA" status --api-socket "$(sock d1)" ;;
  down) lab_down >/dev/null 2>&1; echo "lab removed" ;;
  *) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
