#!/usr/bin/env bash
# The local fleet lab behind `flotilla lab up|demo|status|exec|down` (run as root, from the repo).
#
#   fleet.sh up [--directors N] [--ipvs]
#                        namespaces (N directors, client c, backends b1 b2), a cluster CA and
#                        certificates, agents with cluster-configs/lab.conf, HTTP on the
#                        backends; waits with progress until every VIP is held, then prints the
#                        placement. --ipvs: all of it inside User-Mode Linux (a kernel with IPVS),
#                        left running in the background
#   fleet.sh demo        a one-minute walk through the mission, with measurements
#   fleet.sh status      `flotilla status` on d1 (--ipvs lab: and d1's IPVS table, `flotilla ipvs`)
#   fleet.sh exec NODE CMD...   run CMD in NODE's namespace (--ipvs lab: inside the guest)
#   fleet.sh down        removes everything, the guest too (safe to run twice)
#
# Env: FLOTILLA (the binary; default target/debug/flotilla), LAB_PREFIX (default "lab").
# Host lab: this kernel has no IPVS, so agents keep their LVS table in memory (--ipvs memory)
# and the directors answer HTTP on the VIPs themselves; the checkers of b1/b2 are real.
# IPVS lab (--ipvs): ops/lab/uml.sh boots UML with this script as its job (`fleet.sh guest`):
# the same lab is built inside, agents run with --ipvs kernel, every VIP is an LVS-DR service
# to b1 and b2 (which carry the VIPs on lo). The host talks to the guest through a spool
# directory on the hostfs share, $LAB_STATE/$LAB_PREFIX/uml/share/spool: the host drops
# ID.cmd (NUL-separated arguments of this script), the guest runs it and writes ID.out as it
# goes, then ID.rc; `halt` tears the lab down and stops the kernel.
set -uo pipefail
SELF=$(readlink -f "${BASH_SOURCE[0]}")
cd "$(dirname "$SELF")/../.." || exit 1
source ops/lab/lab.sh
export LAB_PREFIX=${LAB_PREFIX:-lab}
FLOTILLA=${FLOTILLA:-$PWD/target/debug/flotilla}
st=$(lab_state_dir)
# Inside the guest the kernel has IPVS: agents program it and the backends serve the VIPs.
IPVS=0 REQUEST_TIMEOUT=1
[[ ${LAB_IN_UML:-} == 1 ]] && IPVS=1 REQUEST_TIMEOUT=2
# Host side of a running --ipvs lab: pid (uml.sh, its session leader), console.log, share/.
guest=$st/uml

b()   { printf '\033[1m%s\033[0m\n' "$*"; }
step() { echo; b "── $*"; }
die() { echo "flotilla lab: $*" >&2; exit 1; }

# Processes are dear inside UML (each exec costs tens to hundreds of ms): what the lab reads
# often is read once (N, VIPS), and one `ip` per director answers who holds which VIP.
N=0 VIPS=()
declare -A HOLDERS=()
# The running lab's director count and VIPs (from its lab.conf).
load_lab() {
  [[ -f $st/lab.conf ]] || die "no lab: run flotilla lab up first"
  N=$(<"$st/directors")
  [[ -s $st/vips ]] || grep -oE '10\.99\.0\.1[0-9]{2}/24' "$st/lab.conf" | cut -d/ -f1 | sort -u -t. -k4n > "$st/vips"
  mapfile -t VIPS < "$st/vips"
}
# HOLDERS[VIP]: the directors holding it ("d1 d3"), from one `ip` per director.
scan_holders() {
  local d out v
  HOLDERS=()
  for ((d = 1; d <= N; d++)); do
    out=$(ip -n "$LAB_PREFIX-d$d" -o -4 addr show 2>/dev/null) || continue
    for v in "${VIPS[@]}"; do [[ $out == *" inet $v/"* ]] && HOLDERS[$v]+="d$d "; done
  done
}
sock() { echo "$st/$1.sock"; }
# "3/3 directors up, leader d1, epoch 12", from `flotilla status` on d1.
fleet_line() {
  local out leader epoch name state rest up=0 all=0
  out=$("$FLOTILLA" status --api-socket "$(sock d1)" 2>/dev/null) || { echo "waiting for the agent on d1"; return; }
  [[ $out =~ leader\ ([^,]+),\ term\ [0-9]+,\ placement\ epoch\ ([0-9]+) ]] || { echo "waiting for the fleet"; return; }
  leader=${BASH_REMATCH[1]} epoch=${BASH_REMATCH[2]}
  while read -r name state rest; do
    [[ $name =~ ^d[0-9]$ && $state =~ ^(up|DOWN)$ ]] || continue
    all=$((all + 1))
    [[ $state == up ]] && up=$((up + 1))
  done <<<"$out"
  echo "$up/$all directors up, leader $leader, epoch $epoch"
}
start_agent() {
  local dataplane=memory
  ((IPVS)) && dataplane=kernel
  lab_spawn "$1" flotilla "$FLOTILLA" agent --config "$st/lab.conf" --name "$1" --state-dir "$st/state-$1" \
    --api-socket "$(sock "$1")" --ipvs "$dataplane" --listen 0.0.0.0:9180
}
# Services in NODE's IPVS table; its counters summed over them: "CONNS INPKTS" (ipvsadm --stats).
# The kernel's rate estimator folds the per-CPU counters into what --stats shows every 2 s.
ipvs_services() { lab_exec "$1" ipvsadm -Ln 2>/dev/null | grep -c '^TCP'; }
ipvs_counters() { lab_exec "$1" ipvsadm -Ln --stats 2>/dev/null | awk '/^TCP/ {c += $3; p += $4} END {print c + 0, p + 0}'; }

up() {
  local n=3 ipvs=0
  while (($#)); do
    case $1 in
      --directors) n=${2:?}; shift 2 ;;
      --ipvs) ipvs=1; shift ;;
      *) die "up: unknown option $1" ;;
    esac
  done
  [[ $n =~ ^[0-9]$ ]] && ((n >= 2)) || die "--directors must be 2..9"
  [[ -x $FLOTILLA ]] || die "no flotilla binary at $FLOTILLA (cargo build -p flotilla)"
  if ((ipvs && !IPVS)); then up_guest "$n"; return; fi
  lab_require ip "$LAB_PYTHON" || exit 1
  if ((IPVS)); then lab_require ipvsadm || exit 1; fi
  step "Building the lab: $n directors, a client, two backends (namespaces ${LAB_PREFIX}-*)"
  down_all >/dev/null 2>&1
  lab_up "$n" || die "lab up failed"
  echo "$n" > "$st/directors"
  step "Cluster CA and one certificate per director (flotilla cert)"
  "$FLOTILLA" cert init --dir "$st/pki" >/dev/null || die "cert init"
  local d i v
  for ((i = 1; i <= n; i++)); do "$FLOTILLA" cert issue --ca "$st/pki" --name "d$i" >/dev/null || die "cert issue"; done
  echo "  $st/pki: ca.pem, d1.pem … d$n.pem"
  # lab.conf names d1..d3; other fleet sizes get their director list rewritten.
  "$LAB_PYTHON" - "$n" "$st" cluster-configs/lab.conf > "$st/lab.conf" <<'PY'
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
  load_lab
  # The client's requests: ROUNDS through every VIP, or for SECONDS; one line per request: the
  # page (the answering server's name), HTTPnnn, RESET (the connection was reset or closed
  # mid-request: open to a director that let the VIP go; on the host tier each director answers
  # with its own local server, so a connection cannot survive a move), CUT (the same, but the
  # request had been delivered and its answer never came) or FAILED (no answer: refused, or
  # timed out before a connection). One process for all of them; why each failed on stderr.
  cat > "$st/traffic.py" <<'PY'
import http.client, sys, time
def get(vip, timeout):
    t0, stage = time.monotonic(), "connect"
    try:
        c = http.client.HTTPConnection(vip, 80, timeout=timeout)
        c.connect()
        stage = "request"
        c.request("GET", "/")
        stage = "response"
        r = c.getresponse()
        body = r.read().decode(errors="replace").strip()
        c.close()
        return body if r.status == 200 else f"HTTP{r.status}"
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.RemoteDisconnected):
        return "RESET"
    except (OSError, http.client.HTTPException) as e:
        # Why, where and when on stderr: the answer line stays one word.
        print(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {vip} {stage}: "
              f"{type(e).__name__}: {e} after {time.monotonic() - t0:.3f} s", file=sys.stderr, flush=True)
        # Connected and asked, then silence: the director answering let the VIP go before
        # its reply left (the reply's source address was gone), and the client had nothing
        # outstanding that the new holder could reset.
        return "CUT" if stage == "response" and isinstance(e, TimeoutError) else "FAILED"
mode, amount, timeout, vips = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
end, rounds = time.monotonic() + amount, 0
while (rounds < amount) if mode == "rounds" else (time.monotonic() < end):
    for v in vips:
        print(get(v, timeout), flush=True)
    rounds += 1
PY
  if ((IPVS)); then
    step "HTTP on backends b1, b2, which carry every VIP on lo and never answer ARP for it (LVS-DR)"
    for d in b1 b2; do
      printf 'addr add %s/32 dev lo\n' "${VIPS[@]}" | ip -n "$(lab_ns "$d")" -batch - || die "VIPs on $d's lo"
      lab_exec "$d" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
        net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 || die "ARP sysctls on $d"
    done
  else
    step "HTTP: every director answers with its name; backends b1, b2 serve the real servers"
    for ((i = 1; i <= n; i++)); do
      d=d$i; mkdir -p "$st/www-$d" && echo "$d" > "$st/www-$d/index.html"
      lab_spawn "$d" http "$LAB_PYTHON" -m http.server 80 --bind 0.0.0.0 --directory "$st/www-$d" >/dev/null
    done
  fi
  for d in b1 b2; do
    mkdir -p "$st/www-$d" && echo "$d" > "$st/www-$d/index.html"
    lab_spawn "$d" http "$LAB_PYTHON" -m http.server 80 --bind 0.0.0.0 --directory "$st/www-$d" >/dev/null
  done
  if ((IPVS)); then
    step "Starting the agents (flotilla agent --name dN --ipvs kernel; /metrics on :9180 in each namespace)"
  else
    step "Starting the agents (flotilla agent --name dN; the web page and /metrics on :9180 in each namespace)"
  fi
  for ((i = 1; i <= n; i++)); do start_agent "d$i"; done
  local t0 all held services=0 want_services=0 ipvs_line="" limit=30000
  if ((IPVS)); then
    # Every director programs every virtual server (a backup is ready before it takes over).
    want_services=$(($("$FLOTILLA" ipvs --config "$st/lab.conf" | grep -c '^TCP') * n))
    limit=90000
  fi
  t0=$(lab_now_ms)
  while :; do
    scan_holders; held=${#HOLDERS[@]}
    all=$(fleet_line)
    if ((IPVS)); then
      services=0; for ((i = 1; i <= n; i++)); do services=$((services + $(ipvs_services "d$i"))); done
      ipvs_line=$(printf '  %2d/%d IPVS services' "$services" "$want_services")
    fi
    printf '\r  %-50s %2d/%d VIPs held%s  %5.1f s ' "$all" "$held" "${#VIPS[@]}" "$ipvs_line" "$(_lab_seconds $(($(lab_now_ms) - t0)))"
    ((held == ${#VIPS[@]} && services == want_services)) && [[ $all == $n/$n* ]] && break
    (($(lab_now_ms) - t0 > limit)) && { echo; die "the fleet did not come up in $((limit / 1000)) s (logs: $st/logs)"; }
    sleep 0.3
  done
  echo
  step "Placement (flotilla status on d1)"
  "$FLOTILLA" status --api-socket "$(sock d1)" | sed -n '2,/^this director/p' | sed '$d'
  echo "Next: flotilla lab demo · flotilla lab status · flotilla lab down"
}

# The client's requests (traffic.py MODE AMOUNT): one line per request, the answering server.
requests() { lab_exec c "$LAB_PYTHON" "$st/traffic.py" "$1" "$2" "$REQUEST_TIMEOUT" "${VIPS[@]}"; }
# ROUNDS through every VIP → "d1=… d2=… FAILED=…" (who answered: the backends in the IPVS lab)
traffic() { requests rounds "$1" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'; }

# IPVS lab: traffic ROUNDS, and how each director's IPVS counters moved meanwhile.
traffic_ipvs() {
  local d c p conns=() pkts=() line="" out
  for ((d = 1; d <= N; d++)); do read -r "conns[$d]" "pkts[$d]" < <(ipvs_counters "d$d"); done
  out=$(traffic "$1")
  sleep 2.5
  for ((d = 1; d <= N; d++)); do
    read -r c p < <(ipvs_counters "d$d")
    line+="d$d +$((c - conns[d]))/+$((p - pkts[d]))  "
  done
  echo "  answered: $out"
  echo "  IPVS connections/inbound packets (ipvsadm -Ln --stats): ${line%  }"
}

demo() {
  load_lab
  local t0 took mine=() v h left
  if ((IPVS)); then
    step "1. Traffic through every VIP (3 requests each): the VIP's director forwards it with IPVS (DR) to b1, b2 (2:1)"
    traffic_ipvs 3
  else
    step "1. Traffic through every VIP (3 requests each): who answers"
    echo "  $(traffic 3)"
  fi
  step "2. A director crashes: d2 is killed and unplugged"
  scan_holders
  for v in "${VIPS[@]}"; do [[ ${HOLDERS[$v]:-} == "d2 " ]] && mine+=("$v"); done
  echo "  d2 held: ${mine[*]}"
  t0=$(lab_now_ms)
  lab_kill d2 flotilla KILL; lab_exec d2 ip link set eth0 down
  while :; do
    scan_holders
    left=0; for v in "${mine[@]}"; do h=${HOLDERS[$v]:-}; [[ ${h/d2 /} =~ d[0-9] ]] || left=$((left + 1)); done
    ((left == 0)) && break
    (($(lab_now_ms) - t0 > 10000)) && break
    sleep 0.01
  done
  took=$(_lab_seconds $(($(lab_now_ms) - t0)))
  if ((left)); then
    b "  $left of d2's VIPs still not taken over after $took s"
  else
    b "  all of d2's VIPs taken over by survivors in $took s (plain VRRP with advert_int 1 s: ≥ 3.6 s)"
  fi
  ((IPVS)) && echo "  (UML is slower than this machine, and one look at the directors takes a while in it: the host lab's figure is the one to quote)"
  if ((IPVS)); then traffic_ipvs 1; else echo "  $(traffic 1)"; fi
  step "3. d2 comes back (10 s hold-down, then placement rebalances)"
  for v in "${mine[@]}"; do lab_exec d2 ip addr del "$v/24" dev eth0 2>/dev/null; done
  lab_exec d2 ip link set eth0 up
  start_agent d2
  t0=$(lab_now_ms)
  while (($(lab_now_ms) - t0 < 16000)); do
    scan_holders
    h=0; for v in "${VIPS[@]}"; do [[ ${HOLDERS[$v]:-} == *"d2 "* ]] && h=$((h + 1)); done
    printf '\r  %4.1f s: d2 holds %s VIP(s) ' "$(_lab_seconds $(($(lab_now_ms) - t0)))" "$h"
    sleep 1
  done
  echo
  "$FLOTILLA" status --api-socket "$(sock d1)" | sed -n '4,8p' | sed 's/^/  /'
  step "4. Drain d1 while the client keeps requesting every VIP"
  requests seconds 5 > "$st/drain.txt" 2> "$st/drain-failed.txt" &
  local loop=$!
  sleep 1
  "$FLOTILLA" drain d1 --wait --api-socket "$(sock d2)" | sed 's/^/  /'
  wait "$loop"
  local resets; resets=$(grep -cE '^(RESET|CUT)$' "$st/drain.txt")
  b "  during the drain: $(grep -vcE '^(FAILED|RESET|CUT)$' "$st/drain.txt") requests answered, $(grep -c '^FAILED$' "$st/drain.txt") failed"
  sed 's/^/  failed: /' "$st/drain-failed.txt"
  ((resets)) && echo "  ($resets reset or cut in flight: open to d1 as it let the VIP go; on this host lab each director answers with its own local server, so a connection cannot follow the VIP)"
  "$FLOTILLA" undrain d1 --api-socket "$(sock d2)" | sed 's/^/  /'
  step "5. A backend fails: b1's web server stops; its HTTP_GET checks take it out of the LVS table"
  lab_kill b1 http TERM
  t0=$(lab_now_ms)
  if ((IPVS)); then
    v=${VIPS[0]}
    while [[ $(lab_exec d1 ipvsadm -Ln -t "$v:80" 2>/dev/null) == *"$(lab_addr b1):"* ]]; do
      (($(lab_now_ms) - t0 > 15000)) && break; sleep 0.2
    done
    echo "  b1 left d1's IPVS table after $(_lab_seconds $(($(lab_now_ms) - t0))) s: ipvsadm -Ln -t $v:80 on d1"
    lab_exec d1 ipvsadm -Ln -t "$v:80" | sed 's/^/    /'
    # Every director checks for itself: give the others' checkers a moment too.
    sleep 1
    traffic_ipvs 1
  else
    until "$FLOTILLA" status --json --api-socket "$(sock d1)" 2>/dev/null | grep -q '"alive": false'; do
      (($(lab_now_ms) - t0 > 15000)) && break; sleep 0.2
    done
    "$FLOTILLA" status --api-socket "$(sock d1)" | grep -A3 '^virtual server' | head -4 | sed 's/^/  /'
    echo "  (b1 left after $(_lab_seconds $(($(lab_now_ms) - t0))) s; the table is in memory on this kernel — flotilla lab up --ipvs runs it in real IPVS)"
  fi
  lab_spawn b1 http "$LAB_PYTHON" -m http.server 80 --bind 0.0.0.0 --directory "$st/www-b1" >/dev/null
  step "Done. flotilla lab status shows the fleet; flotilla lab down removes it."
}

status() {
  [[ -S $(sock d1) ]] || die "no lab running (flotilla lab up)"
  "$FLOTILLA" status --api-socket "$(sock d1)"
  ((IPVS)) || return 0
  load_lab
  echo
  b "IPVS on d1 (flotilla ipvs, as ipvsadm -Ln shows it)"
  lab_exec d1 "$FLOTILLA" ipvs
  local d line=""
  for ((d = 1; d <= N; d++)); do line+="d$d: $(ipvs_services "d$d") services, $(ipvs_counters "d$d" | sed 's| | conns/|') in-packets · "; done
  echo "every director (ipvsadm -Ln --stats): ${line% · }"
}

# ---- the IPVS lab, host side ----

# The guest's processes: uml.sh and timeout (session of $guest/pid) and UML itself (session of
# $guest/uml.pid, the kernel's main process), so a guest whose uml.sh died is still found.
guest_procs() {
  local sid uml
  sid=$(cat "$guest/pid" 2>/dev/null) || return 0
  uml=$(cat "$guest/uml.pid" 2>/dev/null)
  [[ $sid =~ ^[0-9]+$ ]] || return 0
  ps -eo pid=,sid=,comm= | awk -v s="$sid" -v u="${uml:--1}" \
    '($2 == s && $3 ~ /^(bash|timeout)$/) || ($2 == u && $3 == "linux.uml") {print $1}'
}
guest_alive() { [[ -n $(guest_procs) ]]; }
guest_console() { tail -n 15 "$guest/console.log" 2>/dev/null | sed 's/^/  | /'; }

# Print OUT (written by the guest) as it grows, until RC exists or the guest is gone.
guest_stream() {
  local out=$1 rc=$2 w
  ( while [[ ! -e $rc ]] && guest_alive; do sleep 0.1; done ) &
  w=$!
  until [[ -e $out ]] || ! kill -0 "$w" 2>/dev/null; do sleep 0.05; done
  [[ -e $out ]] && tail -n +1 -s 0.1 -f --pid="$w" "$out"
  wait "$w"
}

# Run `fleet.sh ARGS...` inside the guest; its output appears here as it comes; its exit code.
guest_run() {
  local sp=$guest/share/spool id rc
  guest_alive || die "the IPVS lab's guest is not running (console: $guest/console.log); flotilla lab down cleans up"
  id=$(date +%s%N)-$$
  printf '%s\0' "$@" > "$sp/$id.new" && mv "$sp/$id.new" "$sp/$id.cmd" || die "cannot write to $sp"
  guest_stream "$sp/$id.out" "$sp/$id.rc"
  [[ -s $sp/$id.rc ]] || { guest_console; die "the guest stopped while running '$*'"; }
  rc=$(<"$sp/$id.rc")
  rm -f "$sp/$id".*
  return "$rc"
}

up_guest() {
  local n=$1 t0 tpid uml=${FLOTILLA_LAB_CACHE:-/var/cache/flotilla-lab}/uml/usr/bin/linux.uml
  [[ -x $uml ]] || die "no User-Mode Linux kernel at $uml (bash ops/ci/deps.sh)"
  lab_require ps setsid timeout tail || exit 1
  # The guest sees the host's / read-only, but fresh tmpfs on these.
  # (uml.sh mounts the repository back when it lives there, so a binary inside it is fine).
  local repo; repo=$(cd "$(dirname "$SELF")/../.." && pwd)
  if [[ $FLOTILLA != "$repo"/* ]]; then
    case $FLOTILLA in /run/*|/tmp/*|/var/tmp/*|/dev/shm/*) die "the guest cannot see $FLOTILLA (under a tmpfs it replaces)";; esac
  fi
  step "Booting User-Mode Linux, a kernel with IPVS; the lab runs inside it"
  down_all >/dev/null || exit 1
  mkdir -p "$guest/share/spool" || die "cannot create $guest"
  trap 'echo; echo "flotilla lab: interrupted, stopping the guest" >&2; down_all >/dev/null; exit 130' INT TERM
  t0=$(lab_now_ms)
  # Its own session, so it outlives this command; the guest keeps its lab state in its own /run.
  env -u LAB_STATE setsid bash ops/lab/uml.sh run "$SELF" guest "$n" "$FLOTILLA" --timeout 0 --share "$guest/share" \
    </dev/null >"$guest/console.log" 2>&1 &
  echo $! > "$guest/pid"
  disown $!
  until [[ -e $guest/share/up.out ]]; do
    guest_alive || { echo; guest_console; down_all >/dev/null; die "the guest did not boot"; }
    printf '\r  booting (uml.sh pid %s, console %s)  %5.1f s ' "$(<"$guest/pid")" "$guest/console.log" "$(_lab_seconds $(($(lab_now_ms) - t0)))"
    sleep 0.2
  done
  # UML's main process: timeout's child (UML starts its own session).
  tpid=$(ps -eo pid=,sid=,comm= | awk -v s="$(<"$guest/pid")" '$2 == s && $3 == "timeout" {print $1}')
  [[ -n $tpid ]] && ps -eo pid=,ppid=,comm= | awk -v p="$tpid" '$2 == p && $3 == "linux.uml" {print $1}' > "$guest/uml.pid"
  echo
  echo "  the guest booted in $(_lab_seconds $(($(lab_now_ms) - t0))) s; from here on its output:"
  guest_stream "$guest/share/up.out" "$guest/share/up.rc"
  if [[ $(cat "$guest/share/up.rc" 2>/dev/null) != 0 ]]; then
    guest_console; down_all >/dev/null; die "the IPVS lab did not come up"
  fi
  trap - INT TERM
  b "IPVS lab ready in $(_lab_seconds $(($(lab_now_ms) - t0))) s; the guest keeps running (UML pid $(cat "$guest/uml.pid" 2>/dev/null))"
}

# Stop the guest (if any), then remove the lab's namespaces and state on this host.
down_all() {
  local i pids
  if guest_alive; then
    # The guest reads the spool once its lab is up (up.rc written); until then only TERM works.
    if [[ -e $guest/share/up.rc ]]; then
      printf 'halt\0' > "$guest/share/spool/halt.new" && mv "$guest/share/spool/halt.new" "$guest/share/spool/halt.cmd"
      for ((i = 0; i < 150; i++)); do guest_alive || break; sleep 0.1; done
    fi
    if guest_alive; then
      # uml.sh forwards TERM to timeout, timeout to UML, which halts; without them, UML itself
      # (never KILL: that leaves its helper processes behind).
      pids=$(ps -o pid=,comm= -p "$(guest_procs | paste -sd,)" | awk '$2 == "bash" || $2 == "timeout" {print $1}')
      [[ -n $pids ]] || pids=$(cat "$guest/uml.pid" 2>/dev/null)
      [[ -n $pids ]] && kill -TERM $pids 2>/dev/null
      for ((i = 0; i < 150; i++)); do guest_alive || break; sleep 0.1; done
    fi
    guest_alive && { echo "flotilla lab: the guest still runs: pids $(guest_procs | tr '\n' ' ')" >&2; return 1; }
  fi
  # Stragglers: a UML process that outlived its kernel's main process (seen once, after a
  # Ctrl-C during the boot); its command line names the share.
  pids=$(pgrep -f -- "$guest/share")
  if [[ -n $pids ]]; then
    kill -TERM $pids 2>/dev/null
    for ((i = 0; i < 20; i++)); do pids=$(pgrep -f -- "$guest/share") || break; sleep 0.1; done
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
  fi
  lab_down
}

# ---- the IPVS lab, guest side: uml.sh runs `fleet.sh guest N FLOTILLA` as its job ----
serve() {
  local n=${1:?} sp=$LAB_SHARE/spool f id args nap
  export FLOTILLA=${2:?}
  up --directors "$n" > "$LAB_SHARE/up.out" 2>&1
  echo $? > "$LAB_SHARE/up.rc.new" && mv "$LAB_SHARE/up.rc.new" "$LAB_SHARE/up.rc"
  [[ $(<"$LAB_SHARE/up.rc") == 0 ]] || { lab_down; exit 1; }
  # Waits on a FIFO nobody writes: a pause without a process.
  mkfifo "$st/nap" && exec {nap}<>"$st/nap" || exit 1
  while :; do
    for f in "$sp"/*.cmd; do
      [[ -e $f ]] || continue
      id=${f%.cmd}
      mapfile -d '' -t args < "$f"
      rm -f "$f"
      # The lab goes with the kernel: nothing to take down first.
      [[ ${args[0]:-} == halt ]] && exit 0
      # A subshell of this shell (no new bash to start; `die` exits only the inner one), in the
      # background: `status` answers while a demo runs. Not on our stdout: init waits for that.
      ( (main "${args[@]}") > "$id.out" 2>&1; echo $? > "$id.rc.new"; mv "$id.rc.new" "$id.rc" ) >/dev/null 2>&1 &
    done
    read -rt 0.2 -u "$nap"
  done
}

in_guest() { ((!IPVS)) && [[ -f $guest/pid ]]; }

main() {
  case ${1:-} in
    up) shift; up "$@" ;;
    demo) if in_guest; then guest_run demo; else demo; fi ;;
    status)
      if in_guest; then
        guest_alive || die "the IPVS lab's guest is not running (console: $guest/console.log); flotilla lab down cleans up"
        echo "IPVS lab: User-Mode Linux (UML pid $(cat "$guest/uml.pid" 2>/dev/null), console $guest/console.log)"
        guest_run status
      else status; fi ;;
    exec)
      shift; (($# >= 2)) || die "usage: exec NODE CMD..."
      if in_guest; then guest_run exec "$@"; else lab_exec "$@"; fi ;;
    guest) shift; ((IPVS)) || die "guest: only inside User-Mode Linux (flotilla lab up --ipvs)"; serve "$@" ;;
    down) down_all >/dev/null || exit 1; echo "lab removed" ;;
    *) sed -n '2,14p' "$SELF" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
}

main "$@"
