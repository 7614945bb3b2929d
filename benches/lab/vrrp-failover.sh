#!/bin/bash
# Harness (not a test): VRRP takeover times and idle CPU, flotilla vs keepalived, measured in
# the same run on the same host-netns lab. Prints tables; takes about 8 minutes.
#
#   1. Takeover, ROUNDS rounds each (default 10): a pair of the same implementation, d1 master
#      (150), d2 backup (100); d1 is crashed (SIGKILL + cable pulled) or stopped (SIGTERM:
#      priority 0), and the time until d2 holds the VIP is recorded; d1 comes back and
#      preempts before the next round. VRRPv2 at 1 s and VRRPv3 at 0.1 s adverts.
#   2. CPU: one director master of 200 instances at 1 s adverts for 60 s (utime+stime of the
#      process from /proc), with the other implementation as a silent backup; and the same
#      director as backup while the peer is master (receiving 200 adverts/s).
#
# Usage (root): bash benches/lab/vrrp-failover.sh [ROUNDS]     Env: PARTS="takeover cpu" (default both)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
export LAB_PREFIX=lab-bench
ROUNDS=${1:-10}
VIP=10.99.0.100
trap 'lab_down' EXIT
trap 'exit 130' INT
[[ $EUID -eq 0 ]] || { echo "must run as root"; exit 1; }
cargo build --release --quiet -p flotilla || exit 1
FLOTILLA=${CARGO_TARGET_DIR:-$PWD/target}/release/flotilla
lab_down

conf() { # NODE PRIO VER ADV [INSTANCES]
  local n=$1 p=$2 v=$3 a=$4 count=${5:-1} i st; st=$(lab_state_dir)
  { printf 'global_defs {\n  router_id %s\n  vrrp_version %s\n}\n' "$n" "$v"
    for ((i = 1; i <= count; i++)); do
      printf 'vrrp_instance VI_%d {\n  state BACKUP\n  interface eth0\n  virtual_router_id %d\n  priority %d\n  advert_int %s\n  virtual_ipaddress {\n    10.99.%d.%d/16 dev eth0\n  }\n}\n' \
        "$i" "$i" "$p" "$a" $((i == 1 ? 0 : 1)) $((i == 1 ? 100 : i))
    done; } > "$st/$n.conf"
}
start() { # NODE IMPL
  local st; st=$(lab_state_dir)
  case $2 in
    flotilla) lab_spawn "$1" agent "$FLOTILLA" agent --config "$st/$1.conf" --api-socket "$st/$1.sock" ;;
    keepalived) lab_spawn "$1" agent keepalived --dont-fork --log-console --vrrp -f "$st/$1.conf" -p "$st/$1.pid" -r "$st/$1-vrrp.pid" ;;
  esac
}
kill_agent() { # NODE IMPL crash|stop
  local st; st=$(lab_state_dir)
  if [[ $3 == crash ]]; then
    [[ $2 == keepalived && -f $st/$1-vrrp.pid ]] && kill -KILL "$(<"$st/$1-vrrp.pid")" 2>/dev/null
    lab_kill "$1" agent KILL; lab_exec "$1" ip link set eth0 down
  else
    kill -TERM "$(lab_pid "$1" agent)"
  fi
}
revive() { lab_exec "$1" ip addr del "$VIP/16" dev eth0 2>/dev/null; lab_exec "$1" ip link set eth0 up; lab_kill "$1" agent TERM 2>/dev/null; start "$1" "$2"; }
stats() { sort -n | awk '{a[NR]=$1} END {printf "%.3f / %.3f / %.3f", a[1], (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[NR]}'; }

PARTS=${PARTS:-takeover cpu}
if [[ " $PARTS " == *" takeover "* ]]; then
echo "== takeover: time from kill to VIP on the backup, $ROUNDS rounds, min / median / max (s)"
printf '%-11s %-14s %-7s %s\n' impl vrrp kill "min / median / max"
for impl in keepalived flotilla; do
  for va in "2 1" "3 0.1"; do
    set -- $va; ver=$1 adv=$2
    for kind in crash stop; do
      lab_up 2 >/dev/null || exit 1
      conf d1 150 "$ver" "$adv"; conf d2 100 "$ver" "$adv"
      start d1 $impl; lab_wait_addr d1 $VIP 10 >/dev/null || { echo "no master"; exit 1; }
      start d2 $impl; sleep 1
      times=()
      for ((r = 0; r < ROUNDS; r++)); do
        lab_wait_addr d1 $VIP 15 >/dev/null || { echo "d1 not master"; break; }
        # wait until d2 has released after a preemption
        for ((i = 0; i < 500; i++)); do lab_has_addr d2 $VIP || break; sleep 0.01; done
        sleep "$adv"
        t0=$(lab_now_ms); kill_agent d1 $impl $kind
        lab_wait_addr d2 $VIP 10 >/dev/null || { echo "no takeover"; break; }
        times+=("$(awk -v d=$(($(lab_now_ms) - t0)) 'BEGIN{printf "%.3f", d/1000}')")
        revive d1 $impl
      done
      printf '%-11s v%s %-10s %-7s %s\n' $impl "$ver" "${adv}s" $kind "$(printf '%s\n' "${times[@]}" | stats)"
      lab_down
    done
  done
done

fi

cpu_of() { local pid=$1 a b; a=$(awk '{print $14+$15}' /proc/$pid/stat); sleep 60; b=$(awk '{print $14+$15}' /proc/$pid/stat); echo "scale=2; ($b - $a) / $(getconf CLK_TCK)" | bc; }
[[ " $PARTS " == *" cpu "* ]] || exit 0
echo
echo "== CPU seconds used in 60 s by one agent with 200 instances at 1 s adverts"
printf '%-11s %-8s %s\n' impl role "CPU s / 60 s"
for impl in keepalived flotilla; do
  other=$([[ $impl == flotilla ]] && echo keepalived || echo flotilla)
  for role in master backup; do
    lab_up 2 >/dev/null || exit 1
    if [[ $role == master ]]; then conf d1 150 2 1 200; conf d2 100 2 1 200; else conf d1 100 2 1 200; conf d2 150 2 1 200; fi
    start d2 $other; start d1 $impl
    sleep 8
    pid=$(lab_pid d1 agent)
    [[ $impl == keepalived ]] && pid=$(<"$(lab_state_dir)/d1-vrrp.pid")
    printf '%-11s %-8s %s\n' $impl $role "$(cpu_of "$pid")"
    lab_down
  done
done
