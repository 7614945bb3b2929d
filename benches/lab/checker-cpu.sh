#!/bin/bash
# Harness (not a test): CPU of the health checkers for RS real servers (default 10,000),
# flotilla vs keepalived, the same checkers against the same local servers, both running at
# once and measured over the same windows. Prints one table.
#
#   Real servers: 100 addresses (10.99.2.1..100/32 on b1's lo, routed via b1) × RS/100 ports
#   (20001...), served by one python asyncio process on b1 that accepts, answers any request
#   with "HTTP/1.0 200 OK ... ok" and closes. One virtual_server per port (DR, rr), every real
#   server with TCP_CHECK, or with HTTP_GET (path /, status_code 200); connect_timeout 3,
#   delay_loop DELAY (default 10 s), warmup DELAY (first checks spread over one delay_loop).
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
# what the figure is for.
#
# Usage (root): bash benches/lab/checker-cpu.sh
# Env: RS (10000, a multiple of 100), DELAY (10), SECS (60), ROUNDS (3), KINDS ("tcp http"),
#      FLOTILLA_BIN (default: release build under CARGO_TARGET_DIR or ./target)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

if [[ ${LAB_IN_UML:-} != 1 ]]; then
  [[ $EUID -eq 0 ]] || { echo "must run as root"; exit 1; }
  if [[ -z ${FLOTILLA_BIN:-} ]]; then
    cargo build --release --quiet -p flotilla || exit 1
    FLOTILLA_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/flotilla
  fi
  share=$(mktemp -d /tmp/flotilla-chkcpu.XXXXXX)
  trap 'rm -rf "$share"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Inside UML /tmp, /run... are fresh tmpfs: the binary travels in the share (and a rebuild
  # by someone else during the run cannot change it).
  cp "$FLOTILLA_BIN" "$share/flotilla" || exit 1
  FLOTILLA_LABEL="$FLOTILLA_BIN ($(basename "$(dirname "$FLOTILLA_BIN")") build)"
  FLOTILLA_HOST="$(nproc) host cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), shared, noisy)"
  export FLOTILLA_HOST FLOTILLA_LABEL FLOTILLA_RS=${RS:-10000} FLOTILLA_DELAY=${DELAY:-10} FLOTILLA_SECS=${SECS:-60} \
    FLOTILLA_ROUNDS=${ROUNDS:-3} FLOTILLA_KINDS=${KINDS:-tcp http}
  ops/lab/uml.sh run "$0" --timeout 3000 --share "$share" --mem 2048M >"$share/uml.out" 2>&1
  rc=$?
  grep -vE 'SELinux|mmapper_init|ubd device' "$share/uml.out" | grep -E '^(uml:|   |==)' | grep -v '^== table'
  echo
  cat "$share/table.txt" 2>/dev/null || { echo "no table (exit $rc); UML log:"; tail -40 "$share/uml.out"; }
  exit "$rc"
fi

# ---- inside UML from here on ----
source ops/lab/lab.sh
export LAB_PREFIX=lab-bcp-chk
RS=$FLOTILLA_RS DELAY=$FLOTILLA_DELAY SECS=$FLOTILLA_SECS ROUNDS=$FLOTILLA_ROUNDS
FLOTILLA=$LAB_SHARE/flotilla
PORTS=$((RS / 100))
trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
lab_require ip ipvsadm keepalived "$LAB_PYTHON" || exit 1
lab_down
lab_up 2 >/dev/null || exit 1
st=$(lab_state_dir)

for ((a = 1; a <= 100; a++)); do echo "addr add 10.99.2.$a/32 dev lo"; done | lab_exec b1 ip -batch - || exit 1
for d in d1 d2; do lab_exec "$d" ip route add 10.99.2.0/24 via "$(lab_addr b1)" || exit 1; done
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
lab_spawn b1 serve "$LAB_PYTHON" "$st/serve.py" 20001 "$PORTS"
for ((i = 0; i < 100; i++)); do grep -q ready "$(lab_logfile b1 serve)" 2>/dev/null && break; sleep 0.1; done

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
dests() { lab_exec "$1" ipvsadm -Ln | grep -c -- '->  *10\.99\.2\.'; }
hz=$(getconf CLK_TCK)
declare -A CPU RSS LEFT

# Taking 10,000 destinations out of IPVS on the way out takes a while in UML: up to 60 s.
stop() { # NODE NAME
  local i
  lab_kill "$1" "$2" TERM 2>/dev/null && return 0
  for ((i = 0; i < 600; i++)); do lab_alive "$1" "$2" || return 0; sleep 0.1; done
  lab_kill "$1" "$2" KILL
}
# Both run at once, in the same windows: the one UML CPU and the host's noise hit both alike.
measure() { # KIND
  local kind=$1 i r t0 t1 w idle0 idle1 impl
  local -A pids c0
  lab_spawn d1 ka keepalived --dont-fork --log-console --check -f "$st/$kind.conf" -p "$st/ka.pid" -c "$st/ka-chk.pid"
  lab_spawn d2 flotilla "$FLOTILLA" agent --config "$st/$kind.conf" --api-socket "$st/d2.sock"
  for ((i = 0; i < 100; i++)); do [[ -s $st/ka-chk.pid ]] && break; sleep 0.1; done
  pids[keepalived]="$(lab_pid d1 ka) $(<"$st/ka-chk.pid")"
  pids[flotilla]=$(lab_pid d2 flotilla)
  pids[server]=$(lab_pid b1 serve)
  sleep $((DELAY + 15))
  for ((r = 1; r <= ROUNDS; r++)); do
    # shellcheck disable=SC2086 # pid lists
    for impl in keepalived flotilla server; do c0[$impl]=$(ticks ${pids[$impl]}) || { echo "   $impl is not running"; return 1; }; done
    t0=$(lab_now_ms); idle0=$(awk '/^cpu / {print $5}' /proc/stat)
    sleep "$SECS"
    t1=$(lab_now_ms); idle1=$(awk '/^cpu / {print $5}' /proc/stat); w=$((t1 - t0))
    line="   $kind window $r ($(_lab_seconds "$w") s):"
    for impl in keepalived flotilla server; do
      # shellcheck disable=SC2086
      c=$(($(ticks ${pids[$impl]}) - ${c0[$impl]}))
      CPU[$impl $kind]+=" $(awk -v t="$c" -v hz="$hz" -v w="$w" -v d="$DELAY" 'BEGIN{printf "%.3f", t / hz / (w / 1000) * d}')"
      line+=" $impl $(awk -v t="$c" -v hz="$hz" 'BEGIN{printf "%.2f", t / hz}') s"
    done
    IDLE[$kind]+=" $(awk -v i=$((idle1 - idle0)) -v hz="$hz" -v w="$w" 'BEGIN{printf "%.0f", 100 * i / hz / (w / 1000)}')"
    echo "$line, UML idle ${IDLE[$kind]##* } %"
  done
  for impl in keepalived flotilla; do
    # shellcheck disable=SC2086
    RSS[$impl $kind]=$(($(rss_kb ${pids[$impl]}) / 1024))
  done
  LEFT[keepalived $kind]=$(dests d1); LEFT[flotilla $kind]=$(dests d2)
  stop d1 ka; rm -f "$st/ka.pid" "$st/ka-chk.pid"
  stop d2 flotilla
  lab_exec d1 ipvsadm -C; lab_exec d2 ipvsadm -C
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (!NR) {print "-"; exit}
  printf "%s", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); if (NR>1) printf " (%s-%s)", a[1], a[NR]}'; }
declare -A IDLE

for kind in $FLOTILLA_KINDS; do
  conf "$kind" > "$st/$kind.conf"
  echo "== $kind: $RS real servers, delay_loop $DELAY s, $(wc -c < "$st/$kind.conf") bytes of configuration"
  measure "$kind"
done

{
  echo "== checker CPU, $RS real servers, delay_loop $DELAY s, in UML ($(uname -r), 1 vCPU) on $FLOTILLA_HOST"
  echo "   flotilla: $FLOTILLA_LABEL; keepalived: $(keepalived --version 2>&1 | head -1); both at once, same windows"
  echo "   median (min-max) of $ROUNDS windows of $SECS s; command: RS=$RS DELAY=$DELAY SECS=$SECS ROUNDS=$ROUNDS bash benches/lab/checker-cpu.sh"
  printf '%-6s %-11s %-26s %-8s %-16s %s\n' check impl "CPU s per $DELAY s of checks" "RSS MB" "RS left in IPVS" "UML idle %"
  for kind in $FLOTILLA_KINDS; do
    for impl in keepalived flotilla server; do
      if [[ $impl == server ]]; then
        printf '%-6s %-11s %-26s %-8s %-16s %s\n' "$kind" "(servers)" "$(median <<<"${CPU[$impl $kind]:-}")" "" "" "$(median <<<"${IDLE[$kind]:-}")"
      else
        printf '%-6s %-11s %-26s %-8s %-16s\n' "$kind" "$impl" "$(median <<<"${CPU[$impl $kind]:-}")" "${RSS[$impl $kind]:--}" "${LEFT[$impl $kind]:--}"
      fi
    done
  done
} | tee "$LAB_SHARE/table.txt" | sed 's/^/== table /'
