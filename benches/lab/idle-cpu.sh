#!/bin/bash
# Harness (not a test): idle CPU and memory of 3 directors holding 1,000 VIPs, flotilla vs
# keepalived, all measured in the same time windows. Prints one table.
#
#   The same VRRP instances for everyone: INSTANCES (default 10) × VIPS/INSTANCES addresses
#   (default 100; 10.99.<i>.<k>/32 on eth0), VRRPv3, advert_int 1, multicast. /32, not /16:
#   in one /16 the first address is the primary, and deleting it (a director handing an
#   instance over) makes the kernel delete every other VIP of that /16 on the interface too.
#   keepalived   3 nodes, priorities 150 / 100 / 50 (d1 master of everything).
#   standalone   3 `flotilla agent`s without a cluster block, the same per-node priorities.
#   fleet        3 `flotilla agent --name dN` with the cluster block of cluster-configs/lab.conf
#                and no priorities: placement spreads the instances over the directors.
#   fleet-debug  the same fleet with the debug build (only when asked for in PARTS).
#   Each one is its own host-netns lab (its own bridge: lab-bcp-<part>), all running at once,
#   so every window hits them with the same noise. After every lab has settled (every VIP held
#   exactly once; for the fleet, a committed placement) and SETTLE more seconds, ROUNDS
#   consecutive windows of SECS seconds: utime+stime from /proc/PID/stat of every process in
#   each director's namespace (keepalived: parent + VRRP child), and VmRSS at the end.
#
# Usage (root): bash benches/lab/idle-cpu.sh
# Env: INSTANCES (10), VIPS (1000), SECS (60), ROUNDS (3), SETTLE (10),
#      PARTS ("keepalived standalone fleet"; add fleet-debug for the debug build),
#      FLOTILLA_BIN (default: release build), FLOTILLA_DEBUG_BIN (default: debug build)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
INSTANCES=${INSTANCES:-10} VIPS=${VIPS:-1000} SECS=${SECS:-60} ROUNDS=${ROUNDS:-3} SETTLE=${SETTLE:-10}
PARTS=${PARTS:-keepalived standalone fleet}
PER=$((VIPS / INSTANCES))
DIRS="d1 d2 d3"
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
[[ $EUID -eq 0 ]] || { echo "must run as root"; exit 1; }
lab_require ip python3 keepalived || exit 1
if [[ -z ${FLOTILLA_BIN:-} ]]; then
  cargo build --release --quiet -p flotilla || exit 1
  FLOTILLA_BIN=$TARGET/release/flotilla
fi
if [[ " $PARTS " == *" fleet-debug "* && -z ${FLOTILLA_DEBUG_BIN:-} ]]; then
  cargo build --quiet -p flotilla || exit 1
  FLOTILLA_DEBUG_BIN=$TARGET/debug/flotilla
fi

all_down() { local p; for p in $PARTS; do LAB_PREFIX=lab-bcp-$p lab_down; done; }
trap 'all_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
all_down

instances() { # [PRIO]
  local i k
  for ((i = 1; i <= INSTANCES; i++)); do
    printf 'vrrp_instance VI_%d {\n  interface eth0\n  virtual_router_id %d\n  advert_int 1\n' "$i" $((150 + i))
    [[ -n ${1:-} ]] && printf '  state BACKUP\n  priority %d\n' "$1"
    printf '  virtual_ipaddress {\n'
    for ((k = 1; k <= PER; k++)); do printf '    10.99.%d.%d/32 dev eth0\n' "$i" "$k"; done
    printf '  }\n}\n'
  done
}
prio() { case $1 in d1) echo 150 ;; d2) echo 100 ;; d3) echo 50 ;; esac; }

start_part() { # PART
  local part=$1 st d bin
  export LAB_PREFIX=lab-bcp-$part
  lab_up 3 >/dev/null || return 1
  st=$(lab_state_dir)
  case $part in
    keepalived)
      for d in $DIRS; do
        { printf 'global_defs {\n  router_id %s\n  vrrp_version 3\n}\n' "$d"; instances "$(prio "$d")"; } > "$st/$d.conf"
        lab_spawn "$d" agent keepalived --dont-fork --log-console --vrrp -f "$st/$d.conf" -p "$st/$d.pid" -r "$st/$d-vrrp.pid"
      done ;;
    standalone)
      for d in $DIRS; do
        { printf 'global_defs {\n  router_id %s\n  vrrp_version 3\n}\n' "$d"; instances "$(prio "$d")"; } > "$st/$d.conf"
        lab_spawn "$d" agent "$FLOTILLA_BIN" agent --config "$st/$d.conf" --api-socket "$st/$d.sock"
      done ;;
    fleet|fleet-debug)
      bin=$FLOTILLA_BIN; [[ $part == fleet-debug ]] && bin=$FLOTILLA_DEBUG_BIN
      "$bin" cert init --dir "$st/pki" >/dev/null || return 1
      for d in $DIRS; do "$bin" cert issue --ca "$st/pki" --name "$d" >/dev/null || return 1; done
      { sed -n '/^global_defs/,/^}/p;/^cluster/,/^}/p' cluster-configs/lab.conf |
          sed -e "s#/var/lib/flotilla/lab/pki/ca.pem#$st/pki/ca.pem#" -e "s#dir /var/lib/flotilla/lab/pki#dir $st/pki#"
        instances; } > "$st/fleet.conf"
      for d in $DIRS; do
        lab_spawn "$d" agent "$bin" agent --config "$st/fleet.conf" --name "$d" --state-dir "$st/state-$d" --api-socket "$st/$d.sock"
      done ;;
  esac
}

held() { ip -n "lab-bcp-$1-$2" -br -4 addr show dev eth0 | tr ' ' '\n' | grep -c '^10\.99\.[1-9]'; }
# Every VIP held exactly once (and, for a fleet, a committed placement naming every unit).
settled() { # PART
  local part=$1 d all n
  all=$(for d in $DIRS; do ip -n "lab-bcp-$part-$d" -br -4 addr show dev eth0 | tr ' ' '\n' | grep '^10\.99\.[1-9]'; done | sort)
  n=$(grep -c . <<<"$all")
  [[ $n == "$VIPS" && -z $(uniq -d <<<"$all") ]] || return 1
  [[ $part == fleet* ]] || return 0
  [[ $(fleet_json "$part" d1 "sum(m['owns'] for m in f['members'])") == "$INSTANCES" ]]
}
fleet_json() { # PART NODE EXPR
  local bin=$FLOTILLA_BIN; [[ $1 == fleet-debug ]] && bin=$FLOTILLA_DEBUG_BIN
  timeout 5 "$bin" status --json --api-socket "$(LAB_PREFIX=lab-bcp-$1 lab_state_dir)/$2.sock" 2>/dev/null | python3 -c "import json,sys
try: f=json.load(sys.stdin)['fleet']
except Exception: sys.exit(1)
print($3)" 2>/dev/null
}
ticks() { local p s=0 t; for p in $(ip netns pids "lab-bcp-$1-$2"); do t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) && s=$((s + t)); done; echo "$s"; }
rss_mb() { local p s=0 t; for p in $(ip netns pids "lab-bcp-$1-$2"); do t=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null) && s=$((s + t)); done; echo $((s / 1024)); }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (!NR) {print "-"; exit}
  printf "%.2f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); if (NR>1) printf " (%.2f-%.2f)", a[1], a[NR]}'; }

for part in $PARTS; do start_part "$part" || { echo "cannot start $part"; exit 1; }; done
declare -A SETTLED
t0=$(lab_now_ms)
for part in $PARTS; do
  until settled "$part"; do (($(lab_now_ms) - t0 > 180000)) && break; sleep 0.5; done
  if settled "$part"; then SETTLED[$part]="settled after $(_lab_seconds $(($(lab_now_ms) - t0))) s"
  else SETTLED[$part]="NOT settled after 180 s"; fi
  echo "   $part: ${SETTLED[$part]}; VIPs held d1/d2/d3: $(held "$part" d1)/$(held "$part" d2)/$(held "$part" d3)"
done
sleep "$SETTLE"

hz=$(getconf CLK_TCK)
declare -A C0 CPU TOTAL
for ((r = 1; r <= ROUNDS; r++)); do
  for part in $PARTS; do for d in $DIRS; do C0[$part $d]=$(ticks "$part" "$d"); done; done
  w0=$(lab_now_ms); sleep "$SECS"; w=$(($(lab_now_ms) - w0))
  line="   window $r ($(_lab_seconds "$w") s):"
  for part in $PARTS; do
    sum=0
    for d in $DIRS; do
      c=$(($(ticks "$part" "$d") - ${C0[$part $d]}))
      sum=$((sum + c))
      CPU[$part $d]+=" $(awk -v c="$c" -v hz="$hz" -v w="$w" -v s="$SECS" 'BEGIN{printf "%.3f", c / hz / (w / 1000) * s}')"
    done
    TOTAL[$part]+=" $(awk -v c="$sum" -v hz="$hz" -v w="$w" -v s="$SECS" 'BEGIN{printf "%.3f", c / hz / (w / 1000) * s}')"
    line+=" $part ${TOTAL[$part]##* } s"
  done
  echo "$line"
done

label() { case $1 in
  keepalived) keepalived --version 2>&1 | head -1 | awk '{print "keepalived " $2}' ;;
  standalone) echo "flotilla standalone" ;;
  fleet) echo "flotilla fleet" ;;
  fleet-debug) echo "flotilla fleet (debug)" ;; esac; }
echo
echo "== idle CPU, $VIPS VIPs ($INSTANCES instances × $PER), VRRPv3 advert_int 1, 3 directors; CPU seconds per $SECS s,"
echo "   median (min-max) of $ROUNDS consecutive windows, all labs at once; $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), shared, noisy)"
echo "   flotilla: $FLOTILLA_BIN (release build unless marked debug); command: INSTANCES=$INSTANCES VIPS=$VIPS SECS=$SECS ROUNDS=$ROUNDS PARTS=\"$PARTS\" bash benches/lab/idle-cpu.sh"
printf '%-24s %-20s %-20s %-20s %-20s %-14s %s\n' what d1 d2 d3 total "RSS MB d1/d2/d3" "VIPs held d1/d2/d3"
for part in $PARTS; do
  printf '%-24s %-20s %-20s %-20s %-20s %-14s %s\n' "$(label "$part")" \
    "$(median <<<"${CPU[$part d1]}")" "$(median <<<"${CPU[$part d2]}")" "$(median <<<"${CPU[$part d3]}")" \
    "$(median <<<"${TOTAL[$part]}")" "$(rss_mb "$part" d1)/$(rss_mb "$part" d2)/$(rss_mb "$part" d3)" \
    "$(held "$part" d1)/$(held "$part" d2)/$(held "$part" d3)$([[ ${SETTLED[$part]} == NOT* ]] && echo " (not settled)")"
done
