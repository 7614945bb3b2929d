#!/bin/bash
# Harness (not a test): crash-failover (or graceful-handover) time of a 3-director flotilla
# fleet vs 3 keepalived nodes on the same host-netns lab with the same settings (VRRPv3,
# advert_int ADV, default 1 s), and the fleet's `config apply` latency. Prints one table.
#
#   KILL=crash (default): the victim's processes SIGKILLed and its cable pulled.
#   KILL=term: graceful handover, SIGTERM to the agent (keepalived: to its parent), cable left
#              in; the agent releases its VIPs (keepalived and flotilla standalone send
#              priority 0); the time is until they are on the next director.
#
#   flotilla   cluster-configs/lab.conf (14 VIPs in 12 instances, 10 units; hold-down 5 s).
#              Each round the director holding 10.99.0.100 is crashed (SIGKILL + cable
#              pulled; every process in its namespace SIGKILLed); recorded: time until 10.99.0.100 is on a survivor, and until the last
#              VIP the victim held is. It comes back (addresses cleared, cable in, restarted)
#              and the fleet settles before the next round.
#   keepalived the same 12 instances (no cluster block, no sync groups), priorities 150 / 100 /
#              50 on d1 / d2 / d3, multicast adverts. Each round the master (d1) is crashed
#              the same way; it comes back and preempts before the next round.
#   flotilla, many VIPs: 30 instances × 100 VIPs (10.99.<i>.<k>/32 on eth0, all in
#              virtual_ipaddress; VRRPv3 carries up to 255 per advert; /32 because in one /16
#              deleting the primary address deletes every other of that /16), so each director owns
#              ~10 units ≈ 1,000 VIPs; crash as above; recorded until the last of them is up.
#              (The configuration is ~1.4 MB of JSON; its Raft entry travels deflated, ~29 kB.)
#              The round's VIP count shows what the victim really held.
#   keepalived, many VIPs (part keepalived-many): the same 30 instances, d1 / d2 / d3 master
#              (150) of instances 1–10 / 11–20 / 21–30, the next node 100, the last 50, so each
#              node masters 1,000 VIPs; d1 crashed each round, it comes back and preempts.
#   config apply: `flotilla config apply` (VI_108 added / removed in turn) → config_version
#              raised on all three directors (each polled over its control socket).
#
# Times are measured by a poller that lists the survivors' addresses (`ip -br addr`, a few ms
# per pass), so they are upper bounds by one pass. The flotilla binary is target/debug (the
# project's dev build) unless FLOTILLA_BIN says otherwise; keepalived is the Debian package.
#
# Usage (root): bash benches/lab/fleet-failover.sh
# Env: ROUNDS (default 20), ROUNDS_MANY (default 5), ROUNDS_APPLY (default 5),
#      PARTS="fleet keepalived many keepalived-many apply" (default all), ADV (advert_int in seconds, default 1),
#      KILL (crash or term, default crash), FLOTILLA_BIN, BENCH_LAB_PREFIX (namespace prefix, default lab-gff)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
export LAB_PREFIX=${BENCH_LAB_PREFIX:-lab-gff}
ROUNDS=${ROUNDS:-20}
ROUNDS_MANY=${ROUNDS_MANY:-5}
ROUNDS_APPLY=${ROUNDS_APPLY:-5}
PARTS=${PARTS:-fleet keepalived many keepalived-many apply}
ADV=${ADV:-1}
KILL=${KILL:-crash}
[[ $KILL == crash || $KILL == term ]] || { echo "KILL must be crash or term"; exit 1; }
KILLED=$([[ $KILL == crash ]] && echo crashed || echo "stopped (SIGTERM)")
[[ $ADV =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "ADV must be a number of seconds"; exit 1; }
trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
[[ $EUID -eq 0 ]] || { echo "must run as root"; exit 1; }
lab_require ip python3 keepalived || exit 1
if [[ -n ${FLOTILLA_BIN:-} ]]; then FLOTILLA=$FLOTILLA_BIN
else cargo build --quiet -p flotilla || exit 1; FLOTILLA=${CARGO_TARGET_DIR:-$PWD/target}/debug/flotilla; fi
lab_down
DIRS="d1 d2 d3"
declare -A ROWS

stats() { sort -n | awk '{a[NR]=$1} END {if (!NR) {print "-"; exit}
  p99=a[int((NR*99+99)/100)]; if (p99=="") p99=a[NR]
  printf "%.3f / %.3f / %.3f (n=%d)", a[1], (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), p99, NR}'; }

# poll_takeover VIPFILE FIRST SURVIVOR...: runs in the background before the crash; waits for
# $st/t0 (the crash time, ms), then prints "first_s last_s": when FIRST, and when every address
# of VIPFILE, is on some survivor.
poll_takeover() {
  local vipfile=$1 first=$2; shift 2
  local nss=() d; for d in "$@"; do nss+=("$(lab_ns "$d")"); done
  python3 - "$st/t0" "$vipfile" "$first" "${nss[@]}" <<'EOF'
import os, subprocess, sys, time
t0file, vipfile, first, nss = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
want = set(open(vipfile).read().split())
while not os.path.exists(t0file): time.sleep(0.001)
time.sleep(0.002)
t0 = int(open(t0file).read().strip())
t_first = None
deadline = time.time() + 30
while time.time() < deadline:
    have = set()
    for ns in nss:
        out = subprocess.run(["ip", "-n", ns, "-br", "-4", "addr", "show", "dev", "eth0"],
                             capture_output=True, text=True).stdout.split()
        have.update(a.split("/")[0] for a in out if "/" in a)
    now = time.time_ns() // 1_000_000
    if t_first is None and first in have: t_first = now
    if want <= have:
        print(f"{(t_first - t0) / 1000:.3f} {(now - t0) / 1000:.3f}")
        sys.exit(0)
print("timeout timeout")
EOF
}
# A crash: every process in the node's namespace gets SIGKILL at once (keepalived's VRRP child
# must not outlive its parent and send priority 0 on its way out).
crash_ns() { local pids; mapfile -t pids < <(ip netns pids "$(lab_ns "$1")"); ((${#pids[@]})) && kill -KILL "${pids[@]}"; }
held_by() { ip -n "$(lab_ns "$1")" -br -4 addr show dev eth0 | tr ' ' '\n' | grep '/' | cut -d/ -f1 | grep -vx "$(lab_addr "$1")"; }
holder_of() { local d; for d in $DIRS; do lab_has_addr "$d" "$1" && { echo "$d"; return 0; }; done; return 1; }

# crash_round VICTIM FIRST_VIP KILLCMD: prints "first last". With KILL=crash the cable is
# pulled right after KILLCMD.
crash_round() {
  local v=$1 first=$2 killcmd=$3 survivors=() d
  for d in $DIRS; do [[ $d == "$v" ]] || survivors+=("$d"); done
  held_by "$v" > "$st/victim-vips"
  rm -f "$st/t0"
  poll_takeover "$st/victim-vips" "$first" "${survivors[@]}" > "$st/round" &
  local poller=$!
  sleep 0.3
  lab_now_ms > "$st/t0.tmp" && mv "$st/t0.tmp" "$st/t0"
  eval "$killcmd"
  [[ $KILL == crash ]] && lab_exec "$v" ip link set eth0 down
  wait "$poller"
  cat "$st/round"
}
# clear_vips NODE: deletes every address but the node's own from its eth0 (one ip -batch)
clear_vips() {
  ip -n "$(lab_ns "$1")" -br -4 addr show dev eth0 | tr ' ' '\n' | grep / | grep -v "^$(lab_addr "$1")/" \
    | sed 's#.*#addr del & dev eth0#' | ip -n "$(lab_ns "$1")" -force -batch - 2>/dev/null
}

# ---------- flotilla fleet ----------
fleet_setup() { # CONF_SOURCE
  lab_up 3 >/dev/null || exit 1
  st=$(lab_state_dir)
  "$FLOTILLA" cert init --dir "$st/pki" >/dev/null || exit 1
  for d in $DIRS; do "$FLOTILLA" cert issue --ca "$st/pki" --name "$d" >/dev/null || exit 1; done
  sed -e "s#/var/lib/flotilla/lab/pki/ca.pem#$st/pki/ca.pem#" -e "s#dir /var/lib/flotilla/lab/pki#dir $st/pki#" \
      -e 's#hold_down 30s#hold_down 5s#' -e "s#advert_int 1\$#advert_int $ADV#" "$1" > "$st/lab.conf"
  for d in $DIRS; do fleet_start "$d"; done
}
fleet_start() {
  lab_spawn "$1" flotilla "$FLOTILLA" agent --config "$st/lab.conf" --name "$1" \
    --state-dir "$st/state-$1" --api-socket "$st/$1.sock"
}
fleet_kill() { if [[ $KILL == crash ]]; then crash_ns "$1"; else lab_kill "$1" flotilla TERM; fi; }
fjson() { timeout 5 "$FLOTILLA" status --json --api-socket "$st/$1.sock" 2>/dev/null | python3 -c "import json,sys
try: f=json.load(sys.stdin)['fleet']
except Exception: sys.exit(1)
print($2)" 2>/dev/null; }
# fleet_settled NVIPS: every VIP of the config held exactly once, every director alive in d1's
# view, and with SPREAD set the directors' VIP counts at most SPREAD apart (balanced again
# after a restart: hold-down, then moves at a bounded rate).
fleet_settled() {
  local all n d counts=()
  all=$(for d in $DIRS; do held_by "$d"; done | sort)
  n=$(wc -l <<<"$all")
  [[ $n == "$1" && -z $(uniq -d <<<"$all") ]] || return 1
  if [[ -n ${SPREAD:-} ]]; then
    for d in $DIRS; do counts+=("$(held_by "$d" | wc -l)"); done
    (($(printf '%s\n' "${counts[@]}" | sort -n | tail -1) - $(printf '%s\n' "${counts[@]}" | sort -n | head -1) <= SPREAD)) || return 1
  fi
  [[ $(fjson d1 "all(m['alive'] for m in f['members'])") == True ]]
}
wait_settled() { local t0; t0=$(lab_now_ms); until fleet_settled "$1"; do (($(lab_now_ms) - t0 > ${2:-60}000)) && return 1; sleep 0.2; done; }

fleet_rounds() { # LABEL ROUNDS NVIPS FIRST_VIP
  local label=$1 n=$2 nv=$3 first=$4 r v out firsts=() lasts=()
  wait_settled "$nv" 90 || { echo "   $label: the fleet never settled"; return 1; }
  for ((r = 0; r < n; r++)); do
    v=$(holder_of "$first") || { echo "   $label: nobody holds $first"; break; }
    out=$(crash_round "$v" "$first" "fleet_kill $v")
    echo "   $label round $((r + 1)): $v $KILLED, $(wc -l < "$st/victim-vips") VIPs: first/last $out s"
    read -r a b <<<"$out"; [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] || break
    firsts+=("$a"); lasts+=("$b")
    clear_vips "$v"; lab_exec "$v" ip link set eth0 up; fleet_start "$v"
    sleep 1
    wait_settled "$nv" 120 || { echo "   $label: not settled after the restart"; break; }
    sleep 1
  done
  ROWS["$label first"]=$(printf '%s\n' "${firsts[@]}" | stats)
  ROWS["$label last"]=$(printf '%s\n' "${lasts[@]}" | stats)
}

if [[ " $PARTS " == *" fleet "* || " $PARTS " == *" apply "* ]]; then
  echo "== flotilla fleet, cluster-configs/lab.conf"
  fleet_setup cluster-configs/lab.conf
  NV=$(grep -oE '10\.99\.0\.1[0-9]{2}/24' "$st/lab.conf" | sort -u | wc -l)
  [[ " $PARTS " == *" fleet "* ]] && fleet_rounds "flotilla fleet (14 VIPs)" "$ROUNDS" "$NV" 10.99.0.100
  if [[ " $PARTS " == *" apply "* ]]; then
    wait_settled "$NV" 60
    cp "$st/lab.conf" "$st/base.conf"
    { cat "$st/base.conf"; printf 'vrrp_instance VI_108 {\n    interface eth0\n    virtual_router_id 108\n    advert_int 1\n    virtual_ipaddress {\n        10.99.0.108/24 dev eth0\n    }\n}\n'; } > "$st/plus.conf"
    applies=()
    for ((r = 0; r < ROUNDS_APPLY; r++)); do
      f=$([[ $((r % 2)) == 0 ]] && echo plus || echo base)
      v0=$(fjson d1 "f['config_version']")
      t0=$(lab_now_ms)
      "$FLOTILLA" config apply "$st/$f.conf" --api-socket "$st/d2.sock" >/dev/null 2>&1 || { echo "   apply failed"; break; }
      t1=$(lab_now_ms)
      ok=0
      while (($(lab_now_ms) - t0 < 20000)); do
        ok=1; for d in $DIRS; do [[ $(fjson "$d" "f['config_version']") -gt $v0 ]] || { ok=0; break; }; done
        ((ok)) && break; sleep 0.02
      done
      d_all=$(awk -v d=$(($(lab_now_ms) - t0)) 'BEGIN{printf "%.3f", d/1000}')
      echo "   config apply $((r + 1)) ($f): command returned $(awk -v d=$((t1 - t0)) 'BEGIN{printf "%.3f", d/1000}') s, config_version raised on all three $d_all s"
      ((ok)) && applies+=("$d_all")
      sleep 2
    done
    ROWS["config apply → all 3"]=$(printf '%s\n' "${applies[@]}" | stats)
  fi
  lab_down
fi

# ---------- keepalived ----------
ka_conf() { python3 benches/lab/keepalived-conf.py "$1" "$2" cluster-configs/lab.conf "$ADV" > "$st/$1.ka.conf"; } # NODE PRIO
ka_start() { lab_spawn "$1" keepalived keepalived --dont-fork --log-console --vrrp -f "$st/$1.ka.conf" -p "$st/$1.pid" -r "$st/$1-vrrp.pid"; }
ka_kill() { if [[ $KILL == crash ]]; then crash_ns "$1"; else lab_kill "$1" keepalived TERM; fi; }
# ka_rounds LABEL N FIRST_VIP READY: N rounds of d1's keepalived killed and restarted; READY
# waits before each round until d1 is back in place (false: no more rounds). Sets ROWS.
ka_rounds() {
  local label=$1 n=$2 first=$3 ready=$4 r out a b firsts=() lasts=()
  for ((r = 0; r < n; r++)); do
    "$ready" || break
    sleep 1
    out=$(crash_round d1 "$first" "ka_kill d1")
    echo "   keepalived round $((r + 1)): d1 $KILLED, $(wc -l < "$st/victim-vips") VIPs: first/last $out s"
    read -r a b <<<"$out"; [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] || break
    firsts+=("$a"); lasts+=("$b")
    clear_vips d1; lab_exec d1 ip link set eth0 up; rm -f "$st/d1.pid" "$st/d1-vrrp.pid"; ka_start d1
  done
  ROWS["$label first"]=$(printf '%s\n' "${firsts[@]}" | stats)
  ROWS["$label last"]=$(printf '%s\n' "${lasts[@]}" | stats)
}
if [[ " $PARTS " == *" keepalived "* ]]; then
  echo "== keepalived, 3 nodes (150 / 100 / 50), the same 12 instances"
  lab_up 3 >/dev/null || exit 1
  st=$(lab_state_dir)
  ka_conf d1 150; ka_conf d2 100; ka_conf d3 50
  NV=$(grep -c '10\.99\.0\.' "$st/d1.ka.conf")
  for d in $DIRS; do ka_start "$d"; done
  # d1 holds every VIP again (it preempts), or 30 s have passed: the round goes ahead anyway.
  ka_back() { local t0; t0=$(lab_now_ms)
    until [[ $(held_by d1 | wc -l) == "$NV" && -z $(held_by d2) && -z $(held_by d3) ]]; do (($(lab_now_ms) - t0 > 30000)) && break; sleep 0.1; done; }
  ka_rounds "keepalived (14 VIPs)" "$ROUNDS" 10.99.0.100 ka_back
  lab_down
fi

# ---------- many VIPs: 30 instances × 100 ----------
# many_instances [NODE]: the 30 vrrp_instance blocks; with NODE, keepalived's (state BACKUP,
# NODE's priority for each: 150 for the instances it masters, then 100, then 50).
many_instances() {
  local i k prio
  for ((i = 1; i <= 30; i++)); do
    printf 'vrrp_instance VI_M%d {\n    interface eth0\n    virtual_router_id %d\n    advert_int %s\n' "$i" $((150 + i)) "$ADV"
    if [[ -n ${1:-} ]]; then
      prio=$(( (${1#d} - 1 - (i - 1) / 10 + 3) % 3 ))   # 0 = master, 1 = next, 2 = last
      printf '    state BACKUP\n    priority %d\n' $((150 - 50 * prio))
    fi
    printf '    virtual_ipaddress {\n'
    for ((k = 1; k <= 100; k++)); do printf '        10.99.%d.%d/32 dev eth0\n' "$i" "$k"; done
    printf '    }\n}\n'
  done
}
if [[ " $PARTS " == *" many "* ]]; then
  echo "== flotilla fleet, 30 instances × 100 VIPs"
  many=$(mktemp /tmp/fleet-many.XXXXXX.conf)
  { sed -n '/^global_defs/,/^}/p;/^cluster/,/^}/p' cluster-configs/lab.conf; many_instances; } > "$many"
  fleet_setup "$many"
  rm -f "$many"
  # Balanced before every crash (1,000 / 1,000 / 1,000: one unit is 100 VIPs), so the victim
  # holds ~1,000 VIPs each round.
  SPREAD=100 fleet_rounds "flotilla fleet (~1,000 VIPs)" "$ROUNDS_MANY" 3000 10.99.1.1
  lab_down
fi

if [[ " $PARTS " == *" keepalived-many "* ]]; then
  echo "== keepalived, 3 nodes, 30 instances × 100 VIPs (each node masters 1,000)"
  lab_up 3 >/dev/null || exit 1
  st=$(lab_state_dir)
  for d in $DIRS; do
    { printf 'global_defs {\n  router_id %s\n  vrrp_version 3\n}\n' "$d"; many_instances "$d"; } > "$st/$d.ka.conf"
  done
  for d in $DIRS; do ka_start "$d"; done
  # 1,000 VIPs on each node again, or no more rounds after 60 s.
  ka_balanced() { local t0; t0=$(lab_now_ms)
    until [[ $(held_by d1 | wc -l) == 1000 && $(held_by d2 | wc -l) == 1000 && $(held_by d3 | wc -l) == 1000 ]]; do
      (($(lab_now_ms) - t0 > 60000)) && { echo "   keepalived never settled at 1,000 VIPs each"; return 1; }; sleep 0.2
    done; }
  ka_rounds "keepalived (~1,000 VIPs)" "$ROUNDS_MANY" 10.99.1.1 ka_balanced
  lab_down
fi

echo
what=$([[ $KILL == crash ]] && echo "crash failover (SIGKILL + cable pulled" || echo "graceful handover (SIGTERM")
echo "== $what → address on a survivor), seconds: min / median / p99; advert_int $ADV s, VRRPv3"
echo "   flotilla: $FLOTILLA; $(nproc) cores, shared, noisy; command: ADV=$ADV KILL=$KILL ROUNDS=$ROUNDS ROUNDS_MANY=$ROUNDS_MANY ROUNDS_APPLY=$ROUNDS_APPLY PARTS=\"$PARTS\" bash benches/lab/fleet-failover.sh"
printf '%-34s %s\n' "what" "min / median / p99"
for k in "flotilla fleet (14 VIPs) first" "flotilla fleet (14 VIPs) last" "keepalived (14 VIPs) first" "keepalived (14 VIPs) last" \
         "flotilla fleet (~1,000 VIPs) first" "flotilla fleet (~1,000 VIPs) last" \
         "keepalived (~1,000 VIPs) first" "keepalived (~1,000 VIPs) last" "config apply → all 3"; do
  if [[ -n ${ROWS[$k]:-} ]]; then printf '%-34s %s\n' "$k" "${ROWS[$k]}"; fi
done
