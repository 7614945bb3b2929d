#!/bin/bash
# Runbook: an established TCP connection survives a planned VIP move, because the old owner's
# IPVS connection entries reached the new owner over the mesh (real IPVS: UML).
#
#   Two fleet directors d1, d2 (mTLS certificates from `flotilla cert`), one VRRP instance
#   VI_1 with VIP 10.99.0.100 and `virtual_server 10.99.0.100 7` (sh, DR, persistence_timeout
#   60) to an echo server on b1; `global_defs { lvs_sync_daemon eth0 id 7 }` turns connection sync on.
#     1. Both directors run a master and a backup sync daemon on their local sync link
#        (`ipvsadm -L --daemon`), nothing on eth0.
#     2. The client opens one TCP connection A through the VIP and sends a line every 100 ms,
#        each echoed by b1. Within a few seconds the other director lists A's entry
#        (`ipvsadm -Lnc`), and the client's persistence template with it, though no packet of
#        A ever reached it.
#     3. `flotilla move VI_1 --to OTHER`: the VIP moves; A goes on without a single lost or
#        late echo, now through the new owner (its entry's packets count up there).
#     4. Control: on the old owner, the backup daemon is stopped (`ipvsadm --stop-daemon
#        backup`: its kernel takes no more entries). A new connection B opened through the
#        new owner is not listed on the old one; moving the VIP back breaks B (reset or
#        silence), which is what every connection would suffer without the sync. A keeps
#        working (the old owner still holds A's own entry from before the first move).
#     5. Connection C through the (original) owner, listed on the other; the owner crashes
#        (SIGKILL, link down): the other takes the VIP on the mesh's verdict and C goes on.
#   Prints FIGURE lines: echoes of A before/after the move and of C after the crash, the
#   longest echo gaps,
#   how soon the entry was listed on the peer, and flotilla_conn_sync_total from /metrics.
#
# The host kernel has no IPVS: on the host this script boots UML (ops/lab/uml.sh) and runs
# itself inside.
#
# Usage (root): bash tests/lab/uml-flotilla-connsync.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

if [[ ${LAB_IN_UML:-} != 1 ]]; then
  echo "== Build flotilla, boot UML (IPVS kernel) and run this runbook inside it"
  cargo build --quiet -p flotilla || { echo "FAIL: cannot build flotilla"; exit 1; }
  export FLOTILLA_BIN=${FLOTILLA_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/flotilla}
  share=$(mktemp -d /tmp/flotilla-connsync.XXXXXX)
  trap 'rm -rf "$share"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ops/lab/uml.sh run "$0" --timeout 240 --share "$share"
  rc=$?
  echo; echo "== Result (host side)"
  cat "$share/figures.txt" 2>/dev/null
  if ((rc == 0)); then echo "PASS: uml-flotilla-connsync"; else echo "FAIL: uml-flotilla-connsync (exit code $rc)"; fi
  exit "$rc"
fi

# ---- inside UML from here on ----
source tests/lab/lib/runbook.sh
runbook_begin cs || exit 1
lab_require ipvsadm ip python3 || exit 1
VIP=10.99.0.100
DIRECTORS="d1 d2"
figure() { echo "FIGURE $*" | tee -a "$LAB_SHARE/figures.txt"; }
wait_for() { # SECS CMD...: true once CMD succeeds (every 0.1 s)
  local limit=$(($1 * 1000)) t0; shift; t0=$(lab_now_ms)
  until "$@" >/dev/null 2>&1; do (($(lab_now_ms) - t0 > limit)) && return 1; sleep 0.1; done
}

lab_up 2 || { fail "lab up"; runbook_end; }
st=$(lab_state_dir)

say "b1: an echo server on :7 behind the VIP (DR: VIP on lo, no ARP for it)"
lab_exec b1 ip addr add "$VIP/32" dev lo
lab_exec b1 sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
  net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
lab_spawn b1 echo python3 -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7)); s.listen()
def serve(c):
    while True:
        d = c.recv(4096)
        if not d: break
        c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()'

say "d1, d2: one fleet configuration, connection sync on"
"$FLOTILLA" cert init --dir "$st/pki" >/dev/null || fail "cert init"
for d in $DIRECTORS; do "$FLOTILLA" cert issue --ca "$st/pki" --name "$d" >/dev/null || fail "cert issue $d"; done
cat > "$st/fleet.conf" <<CONF
global_defs {
    router_id cs
    vrrp_version 3
    lvs_sync_daemon eth0 id 7
}
cluster {
    name cs
    director d1 { address $(lab_addr d1) }
    director d2 { address $(lab_addr d2) }
    tls { ca $st/pki/ca.pem  dir $st/pki }
    placement { hold_down 5s }
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    advert_int 0.1
    virtual_ipaddress {
        $VIP/24 dev eth0
    }
}
virtual_server $VIP 7 {
    lb_algo sh
    lb_kind DR
    protocol TCP
    persistence_timeout 60
    real_server $(lab_addr b1) 7 {
    }
}
CONF
for d in $DIRECTORS; do
  lab_spawn "$d" flotilla "$FLOTILLA" agent --config "$st/fleet.conf" --name "$d" \
    --state-dir "$st/state-$d" --api-socket "$st/$d.sock" --listen "$(lab_addr "$d"):9100"
done
holder() { local d; for d in $DIRECTORS; do lab_has_addr "$d" "$VIP" && echo "$d"; done; }
one_holder() { [[ $(holder | wc -l) == 1 ]]; }
wait_for 30 one_holder && sleep 1
owner=$(holder)
[[ $owner == d? ]] && pass "$owner holds $VIP" || { fail "VIP held by '$owner'"; runbook_end; }
other=$([[ $owner == d1 ]] && echo d2 || echo d1)

say "1. Sync daemons on the local sync link of each director"
daemons_up() { local out; out=$(lab_exec "$1" ipvsadm -L --daemon); [[ $out == *"master sync daemon (mcast=flsync0, syncid=7"* && $out == *"backup sync daemon (mcast=flsync1"* ]]; }
for d in $DIRECTORS; do
  if wait_for 10 daemons_up "$d"; then pass "$d: $(lab_exec "$d" ipvsadm -L --daemon | tr '\n' ';')"
  else fail "$d sync daemons: $(lab_exec "$d" ipvsadm -L --daemon | tr '\n' ';') $(grep -i sync "$(lab_logfile "$d" flotilla)" | tail -3)"; fi
done

# A client connection: a numbered line every 100 ms, each echo awaited (1 s limit); stops
# at the first failure or when $st/stop.NAME appears. Log: "T ok N" / "T error N why" lines.
client() { # NAME
  rm -f "$st/stop.$1"
  lab_exec c python3 - "$VIP" "$st/client.$1" "$st/stop.$1" <<'PY' &
import os, socket, sys, time
vip, log, stop = sys.argv[1:4]
out = open(log, "w", buffering=1)
try:
    s = socket.create_connection((vip, 7), timeout=2)
except OSError as e:
    out.write(f"{time.time():.3f} error 0 connect {e}\n"); sys.exit(0)
s.settimeout(1.0)
out.write(f"port {s.getsockname()[1]}\n")
i = 0
while not os.path.exists(stop) and i < 3000:
    i += 1
    try:
        s.sendall(b"%d\n" % i)
        got = b""
        while not got.endswith(b"\n"):
            d = s.recv(100)
            if not d:
                raise ConnectionError("closed by peer")
            got += d
        if got != b"%d\n" % i:
            raise ValueError(f"echo {got!r}")
        out.write(f"{time.time():.3f} ok {i}\n")
    except Exception as e:
        out.write(f"{time.time():.3f} error {i} {type(e).__name__}: {e}\n")
        break
    time.sleep(0.1)
PY
}
port_of() { sed -n 's/^port //p' "$st/client.$1" 2>/dev/null; }
oks_since() { awk -v t="$2" '$2 == "ok" && $1 >= t' "$st/client.$1" 2>/dev/null | wc -l; }
errors() { grep ' error ' "$st/client.$1" 2>/dev/null; }
listed() { [[ $(lab_exec "$1" ipvsadm -Lnc) == *"$(lab_addr c):$2 "*"$VIP:7"*"$(lab_addr b1):7"* ]]; }
entry() { lab_exec "$1" ipvsadm -Lnc | grep -F "$(lab_addr c):$2 " | tr -s ' '; }

say "2. Connection A through $owner; its entry reaches $other over the mesh"
client A
wait_for 5 eval '[[ -n $(port_of A) ]]'
pa=$(port_of A)
[[ -n $pa ]] && pass "A connected from port $pa" || { fail "A did not connect: $(cat "$st/client.A")"; runbook_end; }
t0=$(lab_now_ms)
if wait_for 15 listed "$other" "$pa"; then
  took=$(_lab_seconds $(($(lab_now_ms) - t0)))
  pass "$other lists A's entry ${took} s after A connected: $(entry "$other" "$pa")"
  figure "connsync_entry_on_peer_s=$took"
else fail "$other never listed A's entry; $owner: $(entry "$owner" "$pa")"; fi
echo "   $owner: $(entry "$owner" "$pa")"
# persistence_timeout: the client's template (client port 0) travels with the entry.
if wait_for 5 listed "$other" 0; then pass "$other lists the client's persistence template: $(entry "$other" 0)"
else fail "no persistence template on $other: $(lab_exec "$other" ipvsadm -Lnc | tr -s ' ' | tr '\n' '|')"; fi

say "3. flotilla move VI_1 --to $other, with A talking"
sleep 1
before=$(grep -c ' ok ' "$st/client.A")
tm=$(date +%s.%N)
"$FLOTILLA" move VI_1 --to "$other" --api-socket "$st/$owner.sock" >/dev/null || fail "move refused"
took=$(lab_wait_addr "$other" "$VIP" 10) && pass "$other holds $VIP ${took} s after the move" || fail "$other did not take $VIP"
wait_for 5 eval '! lab_has_addr $owner $VIP' || fail "$owner kept $VIP"
sleep 3
after=$(oks_since A "$tm")
gap=$(awk '$2 == "ok" { if (p) { g = $1 - p; if (g > m) m = g }; p = $1 } END { printf "%.3f", m }' "$st/client.A")
figure "connsync_A_echoes_before_move=$before after_move=$after max_echo_gap_s=$gap"
if [[ -z $(errors A) ]] && ((after >= 20)); then
  pass "A kept working across the move: $after echoes in the 3 s after it, longest gap ${gap} s"
else fail "A after the move: $after echoes; $(errors A)"; fi
echo "   $other: $(entry "$other" "$pa")"
# The entry on the new owner carries A now: its timer is reset by A's packets (expire near 15:00).
[[ $(entry "$other" "$pa") == *ESTABLISHED* ]] && pass "$other's entry for A is ESTABLISHED" || fail "$other's entry for A: $(entry "$other" "$pa")"

say "4. Control: $owner's backup daemon stopped; connection B through $other, then the VIP back"
lab_exec "$owner" ipvsadm --stop-daemon backup
client B
wait_for 5 eval '[[ -n $(port_of B) ]]'
pb=$(port_of B)
sleep 3
if listed "$owner" "$pb"; then fail "$owner lists B though its backup daemon is stopped"
else pass "$owner does not list B (no sync into it)"; fi
listed "$other" "$pb" && pass "$other carries B: $(entry "$other" "$pb")" || fail "B not on $other"
tb=$(date +%s.%N)
"$FLOTILLA" move VI_1 --to "$owner" --api-socket "$st/$other.sock" >/dev/null || fail "move back refused"
took=$(lab_wait_addr "$owner" "$VIP" 10) && pass "$owner holds $VIP again ${took} s after the move back" || fail "$owner did not take $VIP back"
sleep 3
touch "$st/stop.A" "$st/stop.B"
sleep 0.3
if [[ -n $(errors B) ]]; then pass "control: B broke when moved without sync: $(errors B | cut -d' ' -f3-)"
else fail "control: B survived without sync ($(oks_since B "$tb") echoes after the move): the test cannot fail"; fi
figure "connsync_control_B_echoes_after_move=$(oks_since B "$tb") error=\"$(errors B | cut -d' ' -f4- | head -1)\""
[[ -z $(errors A) ]] && pass "A still fine after the move back ($(oks_since A "$tb") echoes)" \
  || echo "   note: A after the move back: $(errors A)"

say "5. Connection C through $owner, then $owner crashes: $other takes over with C's entry"
client C
wait_for 5 eval '[[ -n $(port_of C) ]]'
pc=$(port_of C)
wait_for 15 listed "$other" "$pc" && pass "$other lists C: $(entry "$other" "$pc")" || fail "$other never listed C"
sleep 0.5
tc=$(date +%s.%N)
lab_kill "$owner" flotilla KILL
lab_exec "$owner" ip link set eth0 down
took=$(lab_wait_addr "$other" "$VIP" 10) && pass "$other holds $VIP ${took} s after $owner crashed" || fail "$other did not take $VIP after the crash"
sleep 3
touch "$st/stop.C"
sleep 0.3
after=$(oks_since C "$tc")
gap=$(awk -v t="$tc" '$2 == "ok" { if (p) { g = $1 - p; if (g > m) m = g }; p = $1 } END { printf "%.3f", m }' "$st/client.C")
figure "connsync_C_echoes_after_crash=$after max_echo_gap_s=$gap takeover_s=$took"
if [[ -z $(errors C) ]] && ((after >= 15)); then
  pass "C kept working across the crash: $after echoes in the 3 s after it, longest gap ${gap} s"
else fail "C after the crash: $after echoes; $(errors C)"; fi

say "Metrics"
for d in $DIRECTORS; do
  [[ $d == "$owner" ]] && continue  # crashed
  m=$(lab_exec c python3 -c "import urllib.request; print(urllib.request.urlopen('http://$(lab_addr "$d"):9100/metrics', timeout=3).read().decode())" 2>/dev/null \
    | grep '^flotilla_conn_sync_total' | sed 's/flotilla_conn_sync_total{event="\([a-z_]*\)"} /\1=/' | tr '\n' ' ')
  figure "connsync_metrics_$d $m"
done
[[ $(cat "$LAB_SHARE/figures.txt") == *"injected="* ]] && pass "flotilla_conn_sync_total counts injected entries" || fail "no injected entries in the metrics"

say "Stop: the sync link and the daemons go with flotilla"
lab_kill "$other" flotilla TERM
if [[ -z $(lab_exec "$other" ipvsadm -L --daemon) ]] && ! lab_exec "$other" ip link show flsync0 >/dev/null 2>&1; then
  pass "$other stopped: no sync daemon, no flsync0"
else fail "$other left: $(lab_exec "$other" ipvsadm -L --daemon | tr '\n' ';') $(lab_exec "$other" ip -br link | grep flsync)"; fi
runbook_end
