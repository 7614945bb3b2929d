#!/bin/bash
# Harness (not a test): a large LVS configuration into the kernel's IPVS table and reloaded,
# keepalived vs flotilla on the same file in the same UML boot. Prints one table.
#
#   The configuration: `gen-config VS RS` (default 2,000 virtual servers, 37,000 real
#   servers, one checker each, TCP_CHECK and HTTP_GET alternating: keepalived issue #2318's
#   size), with its vrrp_instance blocks removed (this measures LVS, not 2,000 VIPs on
#   eth0), `delay_loop DELAY` (3600 s) and `warmup DELAY` in every checker, so that the
#   first checks spread over an hour (about 10 a second) and checking costs next to nothing
#   during the measurement. The checks pass: b1 answers for every real server (172.16.0.0/12
#   is a local route there, one python asyncio server on :80 and :81 answers any request
#   with "HTTP/1.0 200"), so no real server leaves the table while measuring; without
#   `alpha` both implementations put every real server in IPVS at start.
#   keepalived: `keepalived --dont-fork` (parent, checker child; no VRRP configured) in d1;
#   flotilla: `flotilla agent --ipvs kernel` in d2; one after the other (each has the one
#   UML CPU to itself), each in its own namespace (IPVS is per namespace).
#   Per implementation:
#     1. start: from the spawn until /proc/net/ip_vs lists every service and destination
#        (polled every POLL s, 1, or 3 times as long as a poll took, whichever is longer:
#        reading the full table in UML is not free; one poll's time is printed);
#        the daemon's CPU up to then; then wait until it is quiet (QUIET: every one of 2
#        consecutive seconds under 3 ticks); its RSS; its CPU over 10 s of quiet (idle);
#     2. reload with a change: the first real server of the first virtual server gets
#        weight 7, one virtual server (10.199.0.1:80, one real server) is added; SIGHUP;
#        time until both show in IPVS (`ipvsadm -Ln -t`, every 0.1 s), then until quiet;
#        CPU from SIGHUP to quiet;
#     3. reload with no change: SIGHUP again; time and CPU until quiet.
#   CPU = utime + stime of every process in the namespace (+ reaped children's), from
#   /proc/PID/stat; a phase that does not finish within TIMEOUT s (600) is reported as such.
#
# Where: the host kernel has no IPVS, so on the host this script boots User-Mode Linux
# (ops/lab/uml.sh, one virtual CPU) and runs itself inside; UML's absolute times and CPU
# are inflated (every syscall a ptrace round trip), both implementations alike.
#
# Usage (root): bash benches/lab/reload.sh
# Env: VS (2000), RS (37000), DELAY (3600), POLL (1), TIMEOUT (600), UML_MEM (3072M),
#      IMPLS ("keepalived flotilla": which to run, in that order),
#      FLOTILLA_BIN (default: release build under CARGO_TARGET_DIR or ./target),
#      GEN_CONFIG (default: gen-config of the same build)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
VS=${FLOTILLA_VS:-${VS:-2000}} RS=${FLOTILLA_RS:-${RS:-37000}} DELAY=${FLOTILLA_DELAY:-${DELAY:-3600}}
POLL=${FLOTILLA_POLL:-${POLL:-1}} TIMEOUT=${FLOTILLA_TIMEOUT:-${TIMEOUT:-600}}
IMPLS=${FLOTILLA_IMPLS:-${IMPLS:-keepalived flotilla}}
hz=$(getconf CLK_TCK)

if [[ ${LAB_IN_UML:-} != 1 ]]; then
  [[ $EUID -eq 0 ]] || { echo "must run as root"; exit 1; }
  target=${CARGO_TARGET_DIR:-$PWD/target}
  if [[ -z ${FLOTILLA_BIN:-} ]]; then
    cargo build --release --quiet -p flotilla || exit 1
    FLOTILLA_BIN=$target/release/flotilla
  fi
  if [[ -z ${GEN_CONFIG:-} ]]; then
    cargo build --release --quiet -p flotilla-benches --bin gen-config || exit 1
    GEN_CONFIG=$target/release/gen-config
  fi
  share=$(mktemp -d /tmp/flotilla-reload.XXXXXX)
  trap 'rm -rf "$share"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  cp "$FLOTILLA_BIN" "$share/flotilla" || exit 1
  # The configuration, and the changed one, made once here: both implementations read the
  # same bytes.
  "$GEN_CONFIG" "$VS" "$RS" | python3 -c '
import re, sys
delay = sys.argv[1]
text = sys.stdin.read()
text = re.sub(r"vrrp_instance \S+ \{.*?\n\}\n\n", "", text, flags=re.S)
text = text.replace("delay_loop 10\n", "delay_loop %s\n" % delay)
text = text.replace("connect_timeout 3\n", "connect_timeout 3\n            warmup %s\n" % delay)
open(sys.argv[2], "w").write(text)
changed = re.sub(r"weight \d+", "weight 7", text, count=1)
changed += ("virtual_server 10.199.0.1 80 {\n    delay_loop %s\n    lb_algo wrr\n    lb_kind DR\n"
            "    protocol TCP\n    real_server 172.31.255.1 80 {\n        weight 1\n"
            "        TCP_CHECK {\n            connect_timeout 3\n            warmup %s\n"
            "        }\n    }\n}\n" % (delay, delay))
open(sys.argv[3], "w").write(changed)
' "$DELAY" "$share/start.conf" "$share/changed.conf" || exit 1
  grep -q 'weight 7' "$share/changed.conf" || { echo "cannot make the changed configuration"; exit 1; }
  FLOTILLA_LABEL="$FLOTILLA_BIN ($(basename "$(dirname "$FLOTILLA_BIN")") build, $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo +changes))"
  FLOTILLA_HOST="$(nproc) host cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), shared), host load at the start $(cut -d' ' -f1-3 /proc/loadavg)"
  export FLOTILLA_HOST FLOTILLA_LABEL FLOTILLA_VS=$VS FLOTILLA_RS=$RS FLOTILLA_DELAY=$DELAY \
    FLOTILLA_POLL=$POLL FLOTILLA_TIMEOUT=$TIMEOUT FLOTILLA_IMPLS=$IMPLS
  ops/lab/uml.sh run "$0" --timeout $((TIMEOUT * 8 + 600)) --share "$share" --mem "${UML_MEM:-3072M}" >"$share/uml.out" 2>&1
  rc=$?
  grep -E '^(uml:|   |==)' "$share/uml.out" | grep -v '^== table'
  [[ -s $share/table.txt ]] || { echo "no table (exit $rc); UML log:"; tail -40 "$share/uml.out"; exit "$rc"; }
  echo "   host load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  cat "$share/table.txt"
  exit "$rc"
fi

# ---- inside UML from here on ----
export LAB_PREFIX=lab-bcp-rld
FLOTILLA=$LAB_SHARE/flotilla
trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
lab_require ip ipvsadm keepalived "$LAB_PYTHON" || exit 1
lab_down
lab_up 2 >/dev/null || exit 1
st=$(lab_state_dir)
conf=$st/keepalived.conf
declare -A R

# b1 answers for every real server (AnyIP: the whole /12 is local there).
lab_exec b1 ip route add local 172.16.0.0/12 dev lo || exit 1
for d in d1 d2; do lab_exec "$d" ip route add 172.16.0.0/12 via "$(lab_addr b1)" || exit 1; done
cat > "$st/serve.py" <<'EOF'
import asyncio
REPLY = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
class Answer(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, data):
        self.t.write(REPLY); self.t.close()
async def main():
    loop = asyncio.get_running_loop()
    for p in (80, 81):
        await loop.create_server(Answer, "0.0.0.0", p, backlog=1024, reuse_address=True)
    print("ready", flush=True)
    await asyncio.Future()
asyncio.run(main())
EOF
lab_spawn b1 serve "$LAB_PYTHON" "$st/serve.py" || exit 1
for ((i = 0; i < 100; i++)); do grep -q ready "$(lab_logfile b1 serve)" 2>/dev/null && break; sleep 0.1; done

# ticks NODE: CPU ticks of every process in NODE's namespace (and of their reaped children).
ticks() {
  local p s=0 t
  for p in $(ip netns pids "$(lab_ns "$1")"); do
    t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null) && s=$((s + t))
  done
  echo "$s"
}
rss_mb() {
  local p s=0 t
  for p in $(ip netns pids "$(lab_ns "$1")"); do
    t=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null) && s=$((s + t))
  done
  echo $((s / 1024))
}
secs() { awk -v t="$1" -v hz="$hz" 'BEGIN{printf "%.2f", t / hz}'; }
# lines NODE: lines of NODE's /proc/net/ip_vs (3 headers, then services and destinations);
# read by a process in NODE's namespace, as /proc/net is the reader's.
lines() { lab_exec "$1" awk 'END {print NR}' /proc/net/ip_vs; }
# quiet NODE: wait until 2 consecutive seconds each charge fewer than 3 ticks; prints when
# (lab_now_ms) the quiet began, or nothing after TIMEOUT.
quiet() {
  local a b n=0 since=0 now end
  a=$(ticks "$1"); end=$(($(lab_now_ms) + TIMEOUT * 1000))
  while (($(lab_now_ms) < end)); do
    sleep 1
    b=$(ticks "$1"); now=$(lab_now_ms)
    if ((b - a < 3)); then ((n == 0)) && since=$((now - 1000)); n=$((n + 1)); else n=0; fi
    a=$b
    ((n >= 2)) && { echo "$since"; return 0; }
  done
  return 1
}
# changed NODE: the change of changed.conf shows in IPVS
changed() {
  lab_exec "$1" ipvsadm -Ln -t 10.199.0.1:80 2>/dev/null | grep -q '172.31.255.1:80' &&
    [[ $(lab_exec "$1" ipvsadm -Ln -t 10.100.0.0:80 2>/dev/null | awk '$2 == "172.16.0.0:80" {print $4}') == 7 ]]
}
stop() { # NODE NAME: TERM, wait for the IPVS table to be released, else KILL
  local i
  lab_kill "$1" "$2" TERM 2>/dev/null
  local end=$(($(lab_now_ms) + TIMEOUT * 1000))
  while (($(lab_now_ms) < end)); do lab_alive "$1" "$2" || break; sleep 0.1; done
  lab_alive "$1" "$2" && lab_kill "$1" "$2" KILL
  lab_exec "$1" ipvsadm -C
}

want=$((3 + VS + RS))
for impl in $IMPLS; do
  if [[ $impl == keepalived ]]; then node=d1; else node=d2; fi
  cp "$LAB_SHARE/start.conf" "$conf"
  echo "== $impl in $node: $VS virtual servers, $RS real servers, $(wc -c < "$conf") bytes"
  t0=$(lab_now_ms)
  if [[ $impl == keepalived ]]; then
    lab_spawn "$node" "$impl" keepalived --dont-fork --log-console -f "$conf" -p "$st/ka.pid" -c "$st/ka-chk.pid" -r "$st/ka-vrrp.pid"
  else
    lab_spawn "$node" "$impl" "$FLOTILLA" agent --ipvs kernel --config "$conf" --api-socket "$st/$node.sock"
  fi
  pid=$(lab_pid "$node" "$impl")
  took="" n=0 gap=$((POLL * 1000))
  while (($(lab_now_ms) - t0 < TIMEOUT * 1000)); do
    t=$(lab_now_ms)
    n=$(lines "$node")
    ((n >= want)) && { took=$(_lab_seconds $(($(lab_now_ms) - t0))); break; }
    lab_alive "$node" "$impl" || { echo "   $impl exited"; tail -5 "$(lab_logfile "$node" "$impl")"; break; }
    # The poller shares the one CPU: it sleeps at least 3 times as long as a poll took.
    t=$((3 * ($(lab_now_ms) - t)))
    sleep "$(_lab_seconds $((t > gap ? t : gap)))"
  done
  R[$impl start]=${took:->$TIMEOUT} R[$impl start_cpu]=$(secs "$(ticks "$node")")
  echo "   all $((n - 3)) entries in IPVS after ${R[$impl start]} s, CPU ${R[$impl start_cpu]} s"
  if [[ -z ${R[poll]:-} ]]; then
    t=$(lab_now_ms); lines "$node" >/dev/null
    R[poll]=$(_lab_seconds $(($(lab_now_ms) - t)))
    echo "   one poll of the full table (wc -l /proc/net/ip_vs): ${R[poll]} s"
  fi
  t=$(lab_now_ms)
  q=$(quiet "$node") && echo "   quiet $(_lab_seconds $((q > t ? q - t : 0))) s later" || echo "   not quiet within $TIMEOUT s"
  c0=$(ticks "$node"); sleep 10; R[$impl idle]=$(secs $(($(ticks "$node") - c0)))
  R[$impl rss]=$(rss_mb "$node")
  echo "   idle: ${R[$impl idle]} s CPU per 10 s, RSS ${R[$impl rss]} MB"

  # 2. a reload with a change
  cp "$LAB_SHARE/changed.conf" "$conf"
  c0=$(ticks "$node"); t0=$(lab_now_ms)
  kill -HUP "$pid"
  took=""
  while (($(lab_now_ms) - t0 < TIMEOUT * 1000)); do
    changed "$node" && { took=$(_lab_seconds $(($(lab_now_ms) - t0))); break; }
    sleep 0.1
  done
  R[$impl chg_seen]=${took:->$TIMEOUT}
  if q=$(quiet "$node"); then R[$impl chg_quiet]=$(_lab_seconds $((q - t0)))
  else R[$impl chg_quiet]=">$TIMEOUT"; fi
  R[$impl chg_cpu]=$(secs $(($(ticks "$node") - c0)))
  echo "   reload with a change: in IPVS after ${R[$impl chg_seen]} s; quiet after ${R[$impl chg_quiet]} s; CPU ${R[$impl chg_cpu]} s; $(($(lines "$node") - 3)) entries"

  # 3. a reload with no change
  c0=$(ticks "$node"); t0=$(lab_now_ms)
  kill -HUP "$pid"
  if q=$(quiet "$node"); then R[$impl same_quiet]=$(_lab_seconds $((q - t0)))
  else R[$impl same_quiet]=">$TIMEOUT"; fi
  R[$impl same_cpu]=$(secs $(($(ticks "$node") - c0)))
  R[$impl after]=$(($(lines "$node") - 3))
  echo "   reload with no change: quiet after ${R[$impl same_quiet]} s; CPU ${R[$impl same_cpu]} s; ${R[$impl after]} entries"
  lab_alive "$node" "$impl" || echo "   $impl is not running any more"
  stop "$node" "$impl"
done

{
  echo "== reload of $VS virtual servers / $RS real servers (+1 VS, 1 weight changed), delay_loop and warmup $DELAY s"
  echo "   in UML ($(uname -r), 1 vCPU) on $FLOTILLA_HOST"
  echo "   flotilla: $FLOTILLA_LABEL; keepalived: $(keepalived --version 2>&1 | head -1)"
  echo "   one after the other in the same UML boot; command: VS=$VS RS=$RS DELAY=$DELAY POLL=$POLL TIMEOUT=$TIMEOUT IMPLS=\"$IMPLS\" bash benches/lab/reload.sh"
  echo "   times in s (start: polled every $POLL s or 3 × a poll, one full poll ${R[poll]:-?} s; change: every 0.1 s; quiet: to the first of 2 s under 3 ticks each, 1 s resolution)"
  echo "   CPU in s: start = from the spawn to all in IPVS; reload = from SIGHUP to the end of the 2 quiet seconds"
  printf '%-11s | %-22s | %-7s | %-10s | %-28s | %-22s\n' impl "start: all in IPVS, CPU" "RSS MB" "idle/10 s" "reload+change: seen, quiet, CPU" "reload same: quiet, CPU"
  for impl in $IMPLS; do
    printf '%-11s | %-22s | %-7s | %-10s | %-28s | %-22s\n' "$impl" "${R[$impl start]} s, ${R[$impl start_cpu]} s" "${R[$impl rss]}" \
      "${R[$impl idle]} s" "${R[$impl chg_seen]} s, ${R[$impl chg_quiet]} s, ${R[$impl chg_cpu]} s" \
      "${R[$impl same_quiet]} s, ${R[$impl same_cpu]} s"
  done
} | tee "$LAB_SHARE/table.txt" | sed 's/^/== table /'
