#!/bin/bash
# Harness (not a test): CPU of the health checkers for RS real servers (default 10,000),
# flotilla vs keepalived, the same checkers against the same local servers, both running at
# once and measured over the same windows. Prints one table.
#
#   Real servers: 100 addresses (10.99.2.1..100/32 on b1's lo, routed via b1) × RS/100 ports
#   (20001...), served by one python asyncio process on b1 that accepts, answers any request
#   with "HTTP/1.0 200 OK ... ok" and closes. One virtual_server per port (DR, rr), every real
#   server with TCP_CHECK, or with HTTP_GET (path /, status_code 200); connect_timeout 3,
#   delay_loop DELAY (default 60 s), warmup DELAY (first checks spread over one delay_loop).
#   At delay_loop 10 (1,000 checks/s each) the one UML CPU saturated (guest idle 0 %, checks
#   timing out, most real servers taken out): hence 60 s.
#   The same configuration file is given to both.
#   keepalived: `keepalived --dont-fork --check` in d1; CPU = parent + checker child.
#   flotilla:   `flotilla agent` (standalone, kernel IPVS) in d2.
#   Per check type: start both, wait DELAY + 15 s, then ROUNDS consecutive windows of SECS
#   (default 60 s): utime+stime from /proc/PID/stat of each (and of the servers), the guest's
#   idle time (near 0 % means the one UML CPU was saturated and the figures are not worth
#   much); RSS (VmRSS) and the destinations left in each director's IPVS table (all RS when
#   no check failed) at the end; then stop both.
#
# Where: keepalived's checker process exits at once without IPVS ("IPVS: Can't initialize
# ipvs"), and the host kernel has none; so on the host this script boots User-Mode Linux
# (ops/lab/uml.sh, one virtual CPU) and runs itself inside, both implementations there.
# Absolute CPU seconds in UML are inflated (every syscall is a ptrace round trip, and the
# guest charges its ticks to whatever runs when the host deschedules it); the comparison is
# what the figure is for. So, after UML, the same flotilla runs once more on the host kernel
# (`--ipvs memory`, HOST=0 skips it) against the same servers: its figure without UML's cost.
#
# Usage (root): bash benches/lab/checker-cpu.sh
# Env: RS (10000, a multiple of 100), DELAY (60), SECS (60), ROUNDS (3), KINDS ("tcp http"), HOST (1),
#      UML (1; 0 = the host part alone),
#      FLOTILLA_BIN (default: release build under CARGO_TARGET_DIR or ./target),
#      LAB_PREFIX (of the host part's namespaces; default lab-bcp-chkh)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
RS=${FLOTILLA_RS:-${RS:-10000}} DELAY=${FLOTILLA_DELAY:-${DELAY:-60}} SECS=${FLOTILLA_SECS:-${SECS:-60}}
ROUNDS=${FLOTILLA_ROUNDS:-${ROUNDS:-3}} KINDS=${FLOTILLA_KINDS:-${KINDS:-tcp http}}
PORTS=$((RS / 100))
hz=$(getconf CLK_TCK)
declare -A CPU RSS LEFT IDLE

# The real servers on b1, reachable from DIRECTOR... through b1.
setup_servers() { # DIRECTOR...
  local st a d i; st=$(lab_state_dir)
  for ((a = 1; a <= 100; a++)); do echo "addr add 10.99.2.$a/32 dev lo"; done | lab_exec b1 ip -batch - || return 1
  for d in "$@"; do lab_exec "$d" ip route add 10.99.2.0/24 via "$(lab_addr b1)" || return 1; done
  cat > "$st/serve.py" <<'EOF'
import asyncio, sys
REPLY = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
class Answer(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, data):
        self.t.write(REPLY); self.t.close()
async def main(first, count):
    loop = asyncio.get_running_loop()
    for p in range(first, first + count):
        await loop.create_server(Answer, "0.0.0.0", p, backlog=1024, reuse_address=True)
    print("ready", flush=True)
    await asyncio.Future()
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
EOF
  lab_exec b1 sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
  lab_spawn b1 serve "$LAB_PYTHON" "$st/serve.py" 20001 "$PORTS" || return 1
  for ((i = 0; i < 100; i++)); do grep -q ready "$(lab_logfile b1 serve)" 2>/dev/null && return 0; sleep 0.1; done
  _lab_err "the servers did not start"
}
conf() { # KIND → the configuration on stdout
  "$LAB_PYTHON" - "$1" "$RS" "$DELAY" <<'EOF'
import sys
kind, rs, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3]
check = ("TCP_CHECK {\n      connect_timeout 3\n      warmup %s\n    }" % delay if kind == "tcp" else
         "HTTP_GET {\n      url {\n        path /\n        status_code 200\n      }\n"
         "      connect_timeout 3\n      warmup %s\n    }" % delay)
out = ["global_defs {\n  router_id chk\n}"]
for p in range(20001, 20001 + rs // 100):
    out.append("virtual_server 10.99.0.100 %d {\n  delay_loop %s\n  lb_algo rr\n  lb_kind DR\n  protocol TCP" % (p, delay))
    for a in range(1, 101):
        out.append("  real_server 10.99.2.%d %d {\n    %s\n  }" % (a, p, check))
    out.append("}")
print("\n".join(out))
EOF
}
ticks() { local p s=0; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$s"; }
rss_kb() { local p s=0; for p in "$@"; do s=$((s + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done; echo "$s"; }
# Taking 10,000 destinations out of IPVS on the way out takes a while in UML: up to 60 s.
stop() { # NODE NAME
  local i
  lab_kill "$1" "$2" TERM 2>/dev/null && return 0
  for ((i = 0; i < 600; i++)); do lab_alive "$1" "$2" || return 0; sleep 0.1; done
  lab_kill "$1" "$2" KILL
}
# percheck: median (min-max) of the CPU per 10 s, then the median in µs per check
percheck() { local m; m=$(median); awk -v m="${m%% *}" -v n="$RS" -v d="$DELAY" -v all="$m" 'BEGIN{if (m == "-") print "-"; else printf "%s (%.0f µs)", all, m / (n * 10 / d) * 1e6}'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (!NR) {print "-"; exit}
  printf "%s", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); if (NR>1) printf " (%s-%s)", a[1], a[NR]}'; }
# windows KIND IMPL...: ROUNDS windows of SECS over the processes in PIDS[IMPL]; fills CPU, IDLE.
windows() {
  local kind=$1 r t0 t1 w idle0 idle1 impl c line; shift
  local -A c0
  for ((r = 1; r <= ROUNDS; r++)); do
    # shellcheck disable=SC2086 # pid lists
    for impl in "$@"; do c0[$impl]=$(ticks ${PIDS[$impl]}) || { echo "   $impl is not running"; return 1; }; done
    t0=$(lab_now_ms); idle0=$(awk '/^cpu / {print $5}' /proc/stat)
    sleep "$SECS"
    t1=$(lab_now_ms); idle1=$(awk '/^cpu / {print $5}' /proc/stat); w=$((t1 - t0))
    line="   $kind window $r ($(_lab_seconds "$w") s):"
    for impl in "$@"; do
      # shellcheck disable=SC2086
      c=$(($(ticks ${PIDS[$impl]}) - ${c0[$impl]}))
      CPU[$impl $kind]+=" $(awk -v t="$c" -v hz="$hz" -v w="$w" -v d="$DELAY" 'BEGIN{printf "%.3f", t / hz / (w / 1000) * 10}')"
      line+=" $impl $(awk -v t="$c" -v hz="$hz" 'BEGIN{printf "%.2f", t / hz}') s"
    done
    IDLE[$kind]+=" $(awk -v i=$((idle1 - idle0)) -v hz="$hz" -v w="$w" -v n="$(nproc)" 'BEGIN{printf "%.0f", 100 * i / hz / (w / 1000) / n}')"
    echo "$line, idle ${IDLE[$kind]##* } %"
  done
}
declare -A PIDS

if [[ ${LAB_IN_UML:-} != 1 ]]; then
  [[ $EUID -eq 0 ]] || { echo "must run as root"; exit 1; }
  if [[ -z ${FLOTILLA_BIN:-} ]]; then
    cargo build --release --quiet -p flotilla || exit 1
    FLOTILLA_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/flotilla
  fi
  share=$(mktemp -d /tmp/flotilla-chkcpu.XXXXXX)
  export LAB_PREFIX=${LAB_PREFIX:-lab-bcp-chkh}
  trap 'lab_down; rm -rf "$share"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Inside UML /tmp, /run... are fresh tmpfs: the binary travels in the share (and a rebuild
  # by someone else during the run cannot change it).
  cp "$FLOTILLA_BIN" "$share/flotilla" || exit 1
  FLOTILLA_LABEL="$FLOTILLA_BIN ($(basename "$(dirname "$FLOTILLA_BIN")") build)"
  FLOTILLA_HOST="$(nproc) host cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), shared, noisy)"
  export FLOTILLA_HOST FLOTILLA_LABEL FLOTILLA_RS=$RS FLOTILLA_DELAY=$DELAY FLOTILLA_SECS=$SECS \
    FLOTILLA_ROUNDS=$ROUNDS FLOTILLA_KINDS=$KINDS
  rc=0
  if [[ ${UML:-1} != 0 ]]; then
    ops/lab/uml.sh run "$0" --timeout 3000 --share "$share" --mem 2048M >"$share/uml.out" 2>&1
    rc=$?
    grep -vE 'SELinux|mmapper_init|ubd device' "$share/uml.out" | grep -E '^(uml:|   |==)' | grep -v '^== table'
    [[ -s $share/table.txt ]] || { echo "no table (exit $rc); UML log:"; tail -40 "$share/uml.out"; exit "$rc"; }
  fi
  if [[ ${HOST:-1} != 0 ]]; then
    echo "== flotilla alone on the host kernel (--ipvs memory), the same servers and configurations"
    lab_down
    lab_up 2 >/dev/null && setup_servers d2 || exit 1
    st=$(lab_state_dir)
    for kind in $KINDS; do
      conf "$kind" > "$st/$kind.conf"
      lab_spawn d2 flotilla "$share/flotilla" agent --ipvs memory --config "$st/$kind.conf" --api-socket "$st/d2.sock"
      PIDS[flotilla]=$(lab_pid d2 flotilla); PIDS[server]=$(lab_pid b1 serve)
      sleep $((DELAY + 15))
      windows "$kind" flotilla server
      # shellcheck disable=SC2086
      RSS[flotilla $kind]=$(($(rss_kb ${PIDS[flotilla]}) / 1024))
      LEFT[flotilla $kind]=$("$share/flotilla" status --json --api-socket "$st/d2.sock" |
        python3 -c "import json,sys; print(sum(r['alive'] for v in json.load(sys.stdin)['virtual_servers'] for r in v['real_servers']))")
      stop d2 flotilla
    done
  fi
  echo
  if [[ ${UML:-1} != 0 ]]; then cat "$share/table.txt"
  else
    echo "== checker CPU, $RS real servers, delay_loop $DELAY s; flotilla: $FLOTILLA_LABEL; $FLOTILLA_HOST"
    echo "   median (min-max) of $ROUNDS windows of $SECS s; command: UML=0 RS=$RS DELAY=$DELAY SECS=$SECS ROUNDS=$ROUNDS bash benches/lab/checker-cpu.sh"
    printf '%-6s %-11s %-34s %-8s %-16s %s\n' check impl "CPU s per 10 s (µs/check)" "RSS MB" "RS up at the end" "where"
  fi
  if [[ ${HOST:-1} != 0 ]]; then
    for kind in $KINDS; do
      printf '%-6s %-11s %-34s %-8s %-16s %s\n' "$kind" "flotilla" "$(percheck <<<"${CPU[flotilla $kind]:-}")" \
        "${RSS[flotilla $kind]:--}" "${LEFT[flotilla $kind]:--} alive" "host kernel, --ipvs memory; servers $(median <<<"${CPU[server $kind]:-}") s, idle $(median <<<"${IDLE[$kind]:-}") % of $(nproc) cores"
    done
  fi
  exit "$rc"
fi

# ---- inside UML from here on ----
export LAB_PREFIX=lab-bcp-chk
FLOTILLA=$LAB_SHARE/flotilla
trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
lab_require ip ipvsadm keepalived "$LAB_PYTHON" || exit 1
lab_down
lab_up 2 >/dev/null || exit 1
st=$(lab_state_dir)
setup_servers d1 d2 || exit 1
dests() { lab_exec "$1" ipvsadm -Ln | grep -c -- '->  *10\.99\.2\.'; }

for kind in $KINDS; do
  conf "$kind" > "$st/$kind.conf"
  echo "== $kind: $RS real servers, delay_loop $DELAY s, $(wc -c < "$st/$kind.conf") bytes of configuration"
  # Both at once, in the same windows: the one UML CPU and the host's noise hit both alike.
  lab_spawn d1 ka keepalived --dont-fork --log-console --check -f "$st/$kind.conf" -p "$st/ka.pid" -c "$st/ka-chk.pid"
  lab_spawn d2 flotilla "$FLOTILLA" agent --config "$st/$kind.conf" --api-socket "$st/d2.sock"
  for ((i = 0; i < 100; i++)); do [[ -s $st/ka-chk.pid ]] && break; sleep 0.1; done
  PIDS[keepalived]="$(lab_pid d1 ka) $(<"$st/ka-chk.pid")"
  PIDS[flotilla]=$(lab_pid d2 flotilla)
  PIDS[server]=$(lab_pid b1 serve)
  sleep $((DELAY + 15))
  windows "$kind" keepalived flotilla server
  for impl in keepalived flotilla; do
    # shellcheck disable=SC2086
    RSS[$impl $kind]=$(($(rss_kb ${PIDS[$impl]}) / 1024))
  done
  LEFT[keepalived $kind]=$(dests d1); LEFT[flotilla $kind]=$(dests d2)
  stop d1 ka; rm -f "$st/ka.pid" "$st/ka-chk.pid"
  stop d2 flotilla
  # Why real servers were taken out: the five most common reasons of each, addresses and
  # numbers masked.
  mask() { sed -E 's/\[?[0-9]+(\.[0-9]+){3}\]?(:[a-z]*:?[0-9]+)?/ADDR/g; s/[0-9]+(\.[0-9]+)? ?(s|ms)\b/N s/g' | sort | uniq -c | sort -rn | head -5 | sed 's/^/     /'; }
  echo "   $kind: flotilla's reasons for taking a real server out:"
  grep -a 'real server down' "$(lab_logfile d2 flotilla)" | sed 's/.*reason=//' | mask
  echo "   $kind: keepalived's checker failures:"
  grep -aiE 'timeout|fail|error|refused|reset' "$(lab_logfile d1 ka)" | grep -aviE 'Removing|Disabling' | sed -E 's/^.*(Keepalived_healthcheckers|Keepalived)\[[0-9]+\]: //; s/^[A-Z][a-z]{2} [A-Z][a-z]{2} +[0-9]+ [0-9:]+ [0-9]+: //' | mask
  lab_exec d1 ipvsadm -C; lab_exec d2 ipvsadm -C
done

{
  echo "== checker CPU, $RS real servers, delay_loop $DELAY s; UML rows: in UML ($(uname -r), 1 vCPU), both at once, same windows"
  echo "   on $FLOTILLA_HOST; flotilla: $FLOTILLA_LABEL; keepalived: $(keepalived --version 2>&1 | head -1)"
  echo "   median (min-max) of $ROUNDS windows of $SECS s; command: RS=$RS DELAY=$DELAY SECS=$SECS ROUNDS=$ROUNDS bash benches/lab/checker-cpu.sh"
  printf '%-6s %-11s %-34s %-8s %-16s %s\n' check impl "CPU s per 10 s (µs/check)" "RSS MB" "RS up at the end" "where"
  for kind in $KINDS; do
    for impl in keepalived flotilla; do
      printf '%-6s %-11s %-34s %-8s %-16s %s\n' "$kind" "$impl" "$(percheck <<<"${CPU[$impl $kind]:-}")" "${RSS[$impl $kind]:--}" \
        "${LEFT[$impl $kind]:--} in IPVS" "UML; servers $(median <<<"${CPU[server $kind]:-}") s, guest idle $(median <<<"${IDLE[$kind]:-}") %"
    done
  done
} | tee "$LAB_SHARE/table.txt" | sed 's/^/== table /'
