#!/bin/bash
# flotilla test lab, host tier: one L2 segment of network namespaces on the running kernel.
#
# Tiers
#   host   (this file)  netns + veth + bridge + nftables on the host kernel. VRRP, ARP, failover
#                       timing, packet loss and partitions. No IPVS: the host kernel has none.
#   ipvs   (uml.sh)     the same lab inside User-Mode Linux, which has IPVS (and netem). A test
#                       script runs in UML with the host root read-only, so host binaries (ipvsadm,
#                       keepalived, python3, target/debug/*) run unchanged; it sources this file
#                       and calls lab_up exactly as on the host.
#
# Topology (LAB_PREFIX defaults to "lab"; every namespace is "$LAB_PREFIX-<node>")
#   $LAB_PREFIX-sw   bridge br0 (stp off, forward_delay 0, mcast_snooping 0), one port per node
#   d1..dN           directors  10.99.0.1..N/24   (N = 1..9, default 2)
#   c                client     10.99.0.10/24
#   b1, b2           backends   10.99.0.11/24, 10.99.0.12/24
# Each node has lo up and eth0 (a veth whose peer is port "port-<node>" on br0). Nothing is
# created in the root namespace.
#
# CLI                                        library (after `source ops/lab/lab.sh`)
#   lab.sh up [N]                              lab_up [N]
#   lab.sh down                                lab_down
#   lab.sh status                              lab_status
#   lab.sh exec NODE CMD...                    lab_exec NODE CMD...
#   lab.sh spawn NODE NAME CMD...              lab_spawn NODE NAME CMD...   (background, pid+log kept)
#   lab.sh kill NODE NAME [SIGNAL]             lab_kill NODE NAME [SIGNAL]  (default TERM, waits 2 s)
#   lab.sh loss NODE PERCENT [PROTO]           lab_loss NODE PERCENT [PROTO] (0 = no loss)
#   lab.sh partition NODE_A NODE_B             lab_partition NODE_A NODE_B
#   lab.sh heal                                lab_heal                     (removes all chaos)
# More library helpers: lab_ns NODE, lab_addr NODE, lab_nodes, lab_pid NODE NAME,
#   lab_logfile NODE NAME, lab_alive NODE NAME, lab_has_addr NODE ADDR, lab_wait_addr NODE ADDR
#   SECS, lab_mac NODE, lab_now_ms, lab_state_dir, lab_require CMD...
#
# Env
#   LAB_PREFIX  namespace prefix, "lab" or "lab-<word>[-<word>...]" (tests use lab-t-<test>, so a
#               demo lab under "lab" is never touched by a test run)
#   LAB_STATE   state root (default /run/flotilla-lab); pids and logs in $LAB_STATE/$LAB_PREFIX
#   LAB_PYTHON  python interpreter for helpers in namespaces (default /usr/bin/python3)
#
# Chaos is done by one nftables table ("bridge flotilla_chaos") in the switch namespace, so it
# works on the host kernel and in UML alike (UML has no inet/ip nftables family) and never
# touches the nodes' own rule sets: `loss` drops a random PERCENT of the frames to and from
# NODE's port (optionally only IPv4 protocol PROTO, e.g. vrrp, icmp, tcp), `partition` drops
# every frame between two ports, `heal` deletes the table.
#
# Must run as root. Exit status is non-zero, with a message on stderr, on any error.

LAB_SUBNET_PREFIX=10.99.0
LAB_TABLE=flotilla_chaos
_LAB_CLI=0
LAB_PYTHON=${LAB_PYTHON:-$( [[ -x /usr/bin/python3 ]] && echo /usr/bin/python3 || echo python3 )}

_lab_err() { echo "lab: $*" >&2; return 1; }

lab_prefix() {
  local p=${LAB_PREFIX:-lab}
  # Only "lab" and "lab-..." namespaces are ours to create on this machine.
  [[ $p =~ ^lab(-[a-z0-9]+)*$ && ${#p} -le 40 ]] \
    || { _lab_err "LAB_PREFIX '$p' must be 'lab' or 'lab-<word>...' (lower case, digits)"; return 1; }
  echo "$p"
}

lab_state_dir() { local p; p=$(lab_prefix) || return 1; echo "${LAB_STATE:-/run/flotilla-lab}/$p"; }

lab_require() {
  local c missing=()
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  ((${#missing[@]} == 0)) || _lab_err "missing tool(s): ${missing[*]} (run: bash ops/ci/deps.sh)"
}

_lab_require_root() { [[ $EUID -eq 0 ]] || _lab_err "must run as root (namespaces, links, nftables)"; }

lab_ns() { local p; p=$(lab_prefix) || return 1; echo "$p-$1"; }

lab_addr() {
  case $1 in
    d[1-9]) echo "$LAB_SUBNET_PREFIX.${1#d}" ;;
    c)      echo "$LAB_SUBNET_PREFIX.10" ;;
    b1)     echo "$LAB_SUBNET_PREFIX.11" ;;
    b2)     echo "$LAB_SUBNET_PREFIX.12" ;;
    *)      _lab_err "unknown node '$1' (nodes: d1..d9, c, b1, b2)" ;;
  esac
}

# Nodes of the running lab (as recorded by lab_up), one per line.
lab_nodes() {
  local st; st=$(lab_state_dir) || return 1
  [[ -f $st/nodes ]] && cat "$st/nodes"
}

_lab_ns_exists() { [[ -e /run/netns/$1 ]]; }

_lab_node_ok() {
  local ns; ns=$(lab_ns "$1") || return 1
  _lab_ns_exists "$ns" || _lab_err "no namespace $ns (is the lab up? LAB_PREFIX=${LAB_PREFIX:-lab})"
}

lab_up() {
  local n=${1:-2} p st node ns
  _lab_require_root || return 1
  lab_require ip || return 1
  [[ $n =~ ^[1-9]$ ]] || { _lab_err "director count must be 1..9, got '$n'"; return 1; }
  p=$(lab_prefix) || return 1
  st=$(lab_state_dir)
  if _lab_ns_exists "$p-sw"; then _lab_err "lab '$p' is already up (lab.sh down first)"; return 1; fi
  mkdir -p "$st/pids" "$st/logs" || return 1
  local nodes=() i
  for ((i = 1; i <= n; i++)); do nodes+=("d$i"); done
  nodes+=(c b1 b2)
  printf '%s\n' "${nodes[@]}" > "$st/nodes"
  {
    ip netns add "$p-sw" &&
    ip -n "$p-sw" link set lo up &&
    ip -n "$p-sw" link add br0 type bridge &&
    # No STP and no forwarding delay: ports forward at once. No multicast snooping: VRRP's
    # 224.0.0.18 adverts simply flood to every port.
    ip -n "$p-sw" link set br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 &&
    ip -n "$p-sw" link set br0 up
  } || { _lab_err "cannot create switch namespace $p-sw"; lab_down >/dev/null 2>&1; return 1; }
  for node in "${nodes[@]}"; do
    ns=$p-$node
    {
      ip netns add "$ns" &&
      # Both ends are created directly in their namespaces: nothing lands in the root namespace.
      ip -n "$p-sw" link add "port-$node" type veth peer name eth0 netns "$ns" &&
      ip -n "$p-sw" link set "port-$node" master br0 up &&
      ip -n "$ns" link set lo up &&
      ip -n "$ns" addr add "$(lab_addr "$node")/24" dev eth0 &&
      ip -n "$ns" link set eth0 up
    } || { _lab_err "cannot create node $ns"; lab_down >/dev/null 2>&1; return 1; }
  done
}

# Kill a recorded process only if it still lives in one of this lab's namespaces (pid reuse).
_lab_pid_in_lab() {
  local pid=$1 ns
  [[ -e /proc/$pid ]] || return 1
  ns=$(ip netns identify "$pid" 2>/dev/null) || return 1
  [[ -n $ns && " $2 " == *" $ns "* ]]
}

lab_down() {
  local p st nss=() ns pid f
  _lab_require_root || return 1
  p=$(lab_prefix) || return 1
  st=$(lab_state_dir)
  # This prefix's namespaces only: recorded nodes plus anything matching exactly <prefix>-<node>
  # (so "lab" never matches a test lab "lab-t-x-d1").
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^$p-(sw|c|b[0-9]+|d[0-9]+)$ ]] && nss+=("$ns")
  done
  # 1. processes we spawned, politely, then everything left inside the namespaces
  local pids=()
  if [[ -d $st/pids ]]; then
    for f in "$st"/pids/*.pid; do
      [[ -f $f ]] || continue
      pid=$(<"$f")
      _lab_pid_in_lab "$pid" "${nss[*]}" && pids+=("$pid")
    done
  fi
  local more
  for ns in "${nss[@]}"; do mapfile -t more < <(ip netns pids "$ns" 2>/dev/null); pids+=("${more[@]}"); done
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null
    local i
    for ((i = 0; i < 40; i++)); do
      local alive=()
      for pid in "${pids[@]}"; do [[ -e /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] && alive+=("$pid"); done
      ((${#alive[@]})) || break
      sleep 0.05
    done
    for ns in "${nss[@]}"; do
      mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
      ((${#pids[@]})) && kill -KILL "${pids[@]}" 2>/dev/null
    done
  fi
  # 2. namespaces: nodes first, then the switch
  for ns in "${nss[@]}"; do [[ $ns == "$p-sw" ]] || ip netns del "$ns" 2>/dev/null; done
  _lab_ns_exists "$p-sw" && ip netns del "$p-sw" 2>/dev/null
  rm -rf "$st"
  return 0
}

lab_status() {
  local p st node ns f name
  p=$(lab_prefix) || return 1
  st=$(lab_state_dir)
  if ! _lab_ns_exists "$p-sw"; then echo "lab $p: down"; return 0; fi
  echo "lab $p: up (state $st)"
  for node in $(lab_nodes); do
    ns=$p-$node
    printf '  %-4s %-16s %s\n' "$node" "$ns" \
      "$(ip -n "$ns" -o -4 addr show 2>/dev/null | awk '$2 != "lo" || $4 !~ /^127/ {printf "%s:%s ", $2, $4}')"
  done
  for f in "$st"/pids/*.pid; do
    [[ -f $f ]] || continue
    name=$(basename "$f" .pid)
    printf '  proc %-24s pid %-7s %s\n' "$name" "$(<"$f")" \
      "$(lab_alive "${name%%.*}" "${name#*.}" && echo running || echo exited)"
  done
  if ip netns exec "$p-sw" nft list table bridge "$LAB_TABLE" >/dev/null 2>&1; then
    echo "  chaos:"; ip netns exec "$p-sw" nft list table bridge "$LAB_TABLE" | grep -E 'drop' | sed 's/^[[:space:]]*/    /'
  fi
}

lab_exec() {
  local node=$1; shift
  _lab_node_ok "$node" || return 1
  ip netns exec "$(lab_ns "$node")" "$@"
}

lab_pid()     { local st; st=$(lab_state_dir) || return 1; [[ -f $st/pids/$1.$2.pid ]] && cat "$st/pids/$1.$2.pid"; }
lab_logfile() { local st; st=$(lab_state_dir) || return 1; echo "$st/logs/$1.$2.log"; }

lab_alive() {
  local pid; pid=$(lab_pid "$1" "$2") || return 1
  [[ -e /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

# Start CMD in NODE's namespace in the background; stdout+stderr go to lab_logfile NODE NAME.
lab_spawn() {
  local node=$1 name=$2 st log; shift 2
  (($#)) || { _lab_err "spawn NODE NAME CMD...: no command"; return 1; }
  [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || { _lab_err "process name '$name': use letters, digits, _ and -"; return 1; }
  _lab_node_ok "$node" || return 1
  if lab_alive "$node" "$name"; then _lab_err "$node/$name is already running (pid $(lab_pid "$node" "$name"))"; return 1; fi
  st=$(lab_state_dir); mkdir -p "$st/pids" "$st/logs"
  log=$st/logs/$node.$name.log
  # `ip netns exec` execs the command: $! is the command's own pid. From the CLI the process
  # gets its own session (setsid execs too: a background job is no group leader), so it outlives
  # the terminal; sourced by a test it stays in the test's process group and dies with it.
  local detach=()
  ((_LAB_CLI)) && detach=(setsid)
  ip netns exec "$(lab_ns "$node")" "${detach[@]}" "$@" </dev/null >>"$log" 2>&1 &
  echo $! > "$st/pids/$node.$name.pid"
  # not a job of the calling shell: no "Killed" notices when a test crashes it on purpose
  disown $!
}

lab_kill() {
  local node=$1 name=$2 sig=${3:-TERM} pid i
  pid=$(lab_pid "$node" "$name") || { _lab_err "no process $node/$name recorded"; return 1; }
  lab_alive "$node" "$name" || return 0
  kill -"$sig" "$pid" || return 1
  for ((i = 0; i < 40; i++)); do lab_alive "$node" "$name" || return 0; sleep 0.05; done
  [[ $sig == KILL || $sig == 9 ]] && return 0
  _lab_err "$node/$name (pid $pid) still running 2 s after SIG$sig"
}

lab_has_addr() {
  local out
  # Capture first, then match: `ip | grep -q` under pipefail gives false negatives (SIGPIPE).
  out=$(ip -n "$(lab_ns "$1")" -o -4 addr show 2>/dev/null) || return 1
  [[ $out == *" inet $2/"* ]]
}

lab_now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

# Wait until NODE holds ADDR; prints the wait in seconds (e.g. 0.312). Polls every ~5 ms.
lab_wait_addr() {
  local node=$1 addr=$2 limit_ms t0 now
  limit_ms=$(awk -v s="${3:-10}" 'BEGIN{printf "%d", s*1000}')
  t0=$(lab_now_ms)
  while :; do
    lab_has_addr "$node" "$addr" && break
    now=$(lab_now_ms)
    ((now - t0 > limit_ms)) && { _lab_err "$node did not get $addr within ${3:-10} s"; return 1; }
    sleep 0.005
  done
  now=$(lab_now_ms)
  _lab_seconds $((now - t0))
}

_lab_seconds() { printf '%d.%03d\n' $(($1 / 1000)) $(($1 % 1000)); }

lab_mac() { ip -n "$(lab_ns "$1")" -o link show dev "${2:-eth0}" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }

_lab_chaos_table() {
  local sw; sw=$(lab_ns sw)
  _lab_ns_exists "$sw" || { _lab_err "lab $(lab_prefix) is not up"; return 1; }
  lab_require nft || return 1
  ip netns exec "$sw" nft -f - <<EOF
table bridge $LAB_TABLE {
  chain forward { type filter hook forward priority 0; policy accept; }
}
EOF
}

# Replace the rules of chain CHAIN (jumped to from forward) with the given rule lines.
_lab_chaos_chain() {
  local chain=$1 sw; shift
  sw=$(lab_ns sw)
  _lab_chaos_table || return 1
  if ! ip netns exec "$sw" nft list chain bridge "$LAB_TABLE" "$chain" >/dev/null 2>&1; then
    ip netns exec "$sw" nft add chain bridge "$LAB_TABLE" "$chain" &&
    ip netns exec "$sw" nft add rule bridge "$LAB_TABLE" forward jump "$chain" || return 1
  fi
  {
    echo "flush chain bridge $LAB_TABLE $chain"
    local r; for r in "$@"; do echo "add rule bridge $LAB_TABLE $chain $r"; done
  } | ip netns exec "$sw" nft -f -
}

lab_loss() {
  local node=$1 pct=$2 proto=${3:-} match=""
  _lab_node_ok "$node" || return 1
  [[ $pct =~ ^[0-9]+$ && $pct -le 100 ]] || { _lab_err "loss PERCENT must be 0..100, got '$pct'"; return 1; }
  case $proto in
    ""|all) match="" ;;
    arp)    match="ether type arp" ;;
    *)      [[ $proto =~ ^[a-z0-9]+$ ]] || { _lab_err "bad protocol '$proto'"; return 1; }
            match="ip protocol $proto" ;;
  esac
  if ((pct == 0)); then _lab_chaos_chain "loss_$node"; return; fi
  # Each frame into or out of NODE's port is dropped with probability PERCENT/100.
  _lab_chaos_chain "loss_$node" \
    "iifname port-$node $match numgen random mod 100 < $pct counter drop" \
    "oifname port-$node $match numgen random mod 100 < $pct counter drop"
}

lab_partition() {
  local a=$1 b=$2
  _lab_node_ok "$a" && _lab_node_ok "$b" || return 1
  [[ $a != "$b" ]] || { _lab_err "partition needs two different nodes"; return 1; }
  _lab_chaos_chain "part_${a}_${b}" \
    "iifname port-$a oifname port-$b counter drop" \
    "iifname port-$b oifname port-$a counter drop"
}

lab_heal() {
  local sw; sw=$(lab_ns sw) || return 1
  _lab_ns_exists "$sw" || return 0
  ip netns exec "$sw" nft delete table bridge "$LAB_TABLE" 2>/dev/null
  return 0
}

lab_main() {
  local cmd=${1:-status}; shift || true
  case $cmd in
    up)        lab_up "$@" && lab_status ;;
    down)      lab_down ;;
    status)    lab_status ;;
    exec)      (($# >= 2)) || { _lab_err "usage: exec NODE CMD..."; return 2; }; lab_exec "$@" ;;
    spawn)     (($# >= 3)) || { _lab_err "usage: spawn NODE NAME CMD..."; return 2; }
               lab_spawn "$@" && echo "$1/$2 pid $(lab_pid "$1" "$2"), log $(lab_logfile "$1" "$2")" ;;
    kill)      (($# >= 2)) || { _lab_err "usage: kill NODE NAME [SIGNAL]"; return 2; }; lab_kill "$@" ;;
    loss)      (($# >= 2)) || { _lab_err "usage: loss NODE PERCENT [PROTO]"; return 2; }; lab_loss "$@" ;;
    partition) (($# == 2)) || { _lab_err "usage: partition NODE_A NODE_B"; return 2; }; lab_partition "$@" ;;
    heal)      lab_heal ;;
    -h|--help|help) sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *)         _lab_err "unknown command '$cmd' (up|down|status|exec|spawn|kill|loss|partition|heal)"; return 2 ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  _LAB_CLI=1
  lab_main "$@"
fi
