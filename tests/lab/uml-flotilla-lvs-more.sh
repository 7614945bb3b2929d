#!/bin/bash
# Runbook: the rest of the LVS issue, run by `flotilla agent` alone (keepalived.conf, no ipvsadm
# script) on a real IPVS kernel (UML), checked as an operator would: ipvsadm -Ln, curl from the
# client, the backends' own logs, `flotilla status`.
#
#   d1 runs one flotilla agent: VRRPv3 VI_1 holds VIPs .100 .101 .102 .103 on eth0 and the DIP
#   10.98.0.254 on eth1 (a second segment, br1, to the NAT backends b3 and b4).
#     1. L4 vs L7. b1 and b2 serve :80 and :8081 (as nobody). VIP:80 checks with HTTP_GET,
#        VIP:8081 with TCP_CHECK, same backends, wrr 2:1. b1's index.html made unreadable
#        (chmod 000): python's http.server then answers 404 "File not found" (not 403; checked
#        and printed). HTTP_GET takes b1 out of :80; TCP_CHECK keeps it in :8081, and the client
#        gets error pages from it. A listener that accepts and never answers (b2:8090, :8091):
#        HTTP_GET fails it by timeout, TCP_CHECK keeps it (and the client's requests hang).
#     2. fwmark. Packets to .101 tcp 80/443 get mark 6, to .102 tcp 80 mark 7, on d1's eth0.
#        `nft add table ip …` is tried first; the UML kernel has no nf_tables ip family
#        (CONFIG_NF_TABLES_IPV4 unset), so the mark is set by tc flower + skbedit on ingress.
#        fwmark 6 wrr schedules :80 and :443 10:5 each; fwmark 7 rr splits 8:8 despite 2:1.
#     3. NAT on two segments. VIP .103:80 → b3:8080, b4:8080 (Masq, rr); the backends' default
#        route is the DIP; ip_forward=1 on d1 (and 0 as a control: no answers). b3 logs the
#        client's own address.
#     4. Figure: `flotilla agent --ipvs kernel` start to "IPVS table reconciled" on d2 for a
#        generated config of FLOTILLA_FIG_VS virtual servers / FLOTILLA_FIG_RS real servers
#        (default 200 / 3700, no checkers), and `ipvsadm -Ln | wc -l`.
#
# The host kernel has no IPVS: on the host this script boots UML (ops/lab/uml.sh) and runs
# itself inside.
#
# Usage (root): bash tests/lab/uml-flotilla-lvs-more.sh
#   Env: LAB_TEST_PREFIX (default lab-t), FLOTILLA_FIG_VS / FLOTILLA_FIG_RS (figure size),
#        FLOTILLA_FIG_MEM (UML memory, default 1024M)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

say()  { echo; echo "== $*${T0:+ (at $(( ($(date +%s%N) / 1000000 - T0) / 1000 )) s)}"; }

if [[ ${LAB_IN_UML:-} != 1 ]]; then
  say "Build flotilla, boot UML (IPVS kernel) and run this runbook inside it"
  cargo build --quiet -p flotilla || { echo "FAIL: cannot build flotilla"; exit 1; }
  share=$(mktemp -d /tmp/flotilla-lvs-more.XXXXXX)
  trap 'rm -rf "$share"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # tc ingress marking (fwmark scenario): UML cannot autoload modules
  export FLOTILLA_UML_MODULES=${FLOTILLA_UML_MODULES:+$FLOTILLA_UML_MODULES,}sch_ingress,cls_flower,act_skbedit
  ops/lab/uml.sh run "$0" --timeout 420 --share "$share" --mem "${FLOTILLA_FIG_MEM:-1024M}"
  rc=$?
  say "Result (host side)"
  cat "$share/figures.txt" 2>/dev/null
  if ((rc == 0)); then echo "PASS: uml-flotilla-lvs-more"; else echo "FAIL: uml-flotilla-lvs-more (exit code $rc)"; fi
  exit "$rc"
fi

# ---- inside UML from here on ----
source ops/lab/lab.sh
T0=$(lab_now_ms)
export LAB_PREFIX=${LAB_TEST_PREFIX:-lab-t}-lvsm
VIP=10.99.0.100    # :80 HTTP_GET, :8081 TCP_CHECK, :8090 HTTP_GET / :8091 TCP_CHECK to a hanger
VIP6=10.99.0.101   # fwmark 6: tcp 80 + 443, wrr
VIP7=10.99.0.102   # fwmark 7: tcp 80, rr
VIPN=10.99.0.103   # NAT to b3, b4 on the second segment
DIP=10.98.0.254
B3=10.98.0.13 B4=10.98.0.14
FLOTILLA=$PWD/target/debug/flotilla
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
figure() { echo "FIGURE $*"; echo "FIGURE $*" >> "$LAB_SHARE/figures.txt"; }
trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

lab_require ipvsadm ip tc nft curl setpriv "$LAB_PYTHON" || exit 1
lab_down
lab_up 2 || { echo "FAIL: lab up"; exit 1; }
st=$(lab_state_dir)
sw=$(lab_ns sw)
B1=$(lab_addr b1) B2=$(lab_addr b2)

# One python process serves a directory on several ports.
cat > "$st/serve.py" <<'PY'
import functools, http.server, sys, threading
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
servers = [http.server.ThreadingHTTPServer(("0.0.0.0", int(p)), handler) for p in sys.argv[2:]]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
PY
# Accepts every connection and never sends a byte.
cat > "$st/hang.py" <<'PY'
import select, socket, sys
listeners, held = [], []
for p in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(p)))
    s.listen(128)
    listeners.append(s)
while True:
    ready, _, _ = select.select(listeners, [], [])
    for s in ready:
        held.append(s.accept()[0])
PY
chmod 755 "$st" && chmod 644 "$st"/*.py

say "Backends b1, b2 (DR: VIPs on lo, no ARP for them), web servers as nobody on :80 :443 :8081"
for b in b1 b2; do
  for v in $VIP $VIP6 $VIP7; do lab_exec "$b" ip addr add "$v/32" dev lo; done
  lab_exec "$b" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
    net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 net.ipv4.ip_unprivileged_port_start=0
  mkdir -p "$st/www-$b" && echo "$b" > "$st/www-$b/index.html" && chmod 755 "$st/www-$b"
  lab_spawn "$b" http setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$LAB_PYTHON" "$st/serve.py" "$st/www-$b" 80 443 8081
done
lab_spawn b2 hang "$LAB_PYTHON" "$st/hang.py" 8090 8091

say "Second segment br1 (10.98.0.0/24): d1 eth1 10.98.0.1 (+ DIP $DIP by VRRP), NAT backends b3, b4"
ip -n "$sw" link add br1 type bridge &&
  ip -n "$sw" link set br1 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 &&
  ip -n "$sw" link set br1 up || fail "cannot create br1"
plug1() { # NODE ADDR
  ip -n "$sw" link add "p1-$1" type veth peer name eth1 netns "$(lab_ns "$1")" &&
    ip -n "$sw" link set "p1-$1" master br1 up &&
    lab_exec "$1" ip addr add "$2/24" dev eth1 && lab_exec "$1" ip link set eth1 up
}
plug1 d1 10.98.0.1 || fail "cannot plug d1 into br1"
for n in b3 b4; do
  ns=$(lab_ns $n); a=$([[ $n == b3 ]] && echo "$B3" || echo "$B4")
  ip netns add "$ns" && ip -n "$ns" link set lo up && plug1 "$n" "$a" &&
    lab_exec "$n" ip route add default via "$DIP" || fail "cannot set up $n"
  mkdir -p "$st/www-$n" && echo "$n" > "$st/www-$n/index.html"
  lab_spawn "$n" http "$LAB_PYTHON" "$st/serve.py" "$st/www-$n" 8080
done
lab_exec d1 sysctl -qw net.ipv4.ip_forward=1

hc() { # PORT → an HTTP_GET block
  printf 'HTTP_GET {\n      url {\n        path /index.html\n        status_code 200\n      }\n      connect_port %s\n      connect_timeout 1\n      retry 0\n    }' "$1"
}
tc_check() { printf 'TCP_CHECK {\n      connect_port %s\n      connect_timeout 1\n      retry 0\n    }' "$1"; }
cat > "$st/d1.conf" <<CONF
global_defs {
  router_id d1
  vrrp_version 3
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 0.1
  virtual_ipaddress {
    $VIP/24
    $VIP6/24
    $VIP7/24
    $VIPN/24
    $DIP/24 dev eth1
  }
}
virtual_server $VIP 80 {
  delay_loop 1
  lb_algo wrr
  lb_kind DR
  protocol TCP
  real_server $B1 80 {
    weight 2
    $(hc 80)
  }
  real_server $B2 80 {
    weight 1
    $(hc 80)
  }
}
virtual_server $VIP 8081 {
  delay_loop 1
  lb_algo wrr
  lb_kind DR
  protocol TCP
  real_server $B1 8081 {
    weight 2
    $(tc_check 8081)
  }
  real_server $B2 8081 {
    weight 1
    $(tc_check 8081)
  }
}
virtual_server $VIP 8090 {
  delay_loop 1
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server $B2 8090 {
    $(hc 8090)
  }
}
virtual_server $VIP 8091 {
  delay_loop 1
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server $B2 8091 {
    $(tc_check 8091)
  }
}
virtual_server fwmark 6 {
  delay_loop 1
  lb_algo wrr
  lb_kind DR
  protocol TCP
  real_server $B1 {
    weight 2
    $(tc_check 80)
  }
  real_server $B2 {
    weight 1
    $(tc_check 80)
  }
}
virtual_server fwmark 7 {
  delay_loop 1
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server $B1 {
    weight 2
    $(tc_check 80)
  }
  real_server $B2 {
    weight 1
    $(tc_check 80)
  }
}
virtual_server $VIPN 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server $B3 8080 {
    $(hc 8080)
  }
  real_server $B4 8080 {
    $(hc 8080)
  }
}
CONF
lab_spawn d1 flotilla "$FLOTILLA" agent --config "$st/d1.conf" --api-socket "$st/d1.sock"

requests() { # N URL → one line per request in $st/replies: the page (b1, b2, …) on 200, else HTTPnnn or FAILED
  lab_exec c bash -c "for ((i = 0; i < $1; i++)); do
      out=\$(curl -s -m 1 -w '\n%{http_code}' $2) || { echo FAILED; continue; }
      code=\${out##*\$'\n'}
      if [[ \$code == 200 ]]; then echo \"\${out%%\$'\n'*}\"; else echo HTTP\$code; fi
    done" > "$st/replies"
}
count() { grep -cx "$1" "$st/replies"; }
split() { echo "b1=$(count b1) b2=$(count b2) b3=$(count b3) b4=$(count b4) errors=$(grep -c '^HTTP' "$st/replies") failed=$(count FAILED)"; }
table() { lab_exec d1 ipvsadm -Ln; }
# service block of `ipvsadm -Ln`: from its header line to the next service
block() { table | awk -v h="$1" '/^(TCP|UDP|SCTP|FWM)/ {on = ($0 ~ "^" h " ")} on'; }
has() { [[ $(block "$1") =~ -\>\ $2\ +$3\ +$4\  ]]; } # SERVICE-REGEX DEST FORWARD WEIGHT
wait_for() { # SECONDS CMD...
  local t0 limit=$1; shift; t0=$(lab_now_ms)
  until "$@"; do (($(lab_now_ms) - t0 > limit * 1000)) && return 1; sleep 0.2; done
  _lab_seconds $(($(lab_now_ms) - t0))
}
status() { "$FLOTILLA" status --api-socket "$st/d1.sock" 2>&1; }

say "0. d1 comes up"
lab_wait_addr d1 "$VIP" 15 >/dev/null && pass "d1 holds the VIPs" || fail "d1 never became master"
lab_has_addr d1 "$DIP" && [[ $(lab_exec d1 ip -o addr show dev eth1) == *" $DIP/"* ]] && pass "DIP $DIP on d1's eth1" \
  || fail "DIP not on eth1: $(lab_exec d1 ip -o -4 addr | tr '\n' '|')"
if wait_for 15 eval "has 'TCP +$VIP:80' $B1:80 Route 2 && has 'TCP +$VIP:80' $B2:80 Route 1 &&
    has 'TCP +$VIP:8081' $B1:8081 Route 2 && has 'TCP +$VIPN:80' $B3:8080 Masq 1" >/dev/null; then
  pass "services programmed"
else fail "table incomplete"; fi
table | sed 's/^/   /'
sleep 2 # every checker through its first probe

say "1. L4 vs L7"
requests 15 "http://$VIP/"
[[ $(count b1) == 10 && $(count b2) == 5 ]] && pass ":80 (HTTP_GET) splits 10:5 ($(split))" || fail ":80 split $(split), want 10:5"
requests 15 "http://$VIP:8081/"
[[ $(count b1) == 10 && $(count b2) == 5 ]] && pass ":8081 (TCP_CHECK) splits 10:5 ($(split))" || fail ":8081 split $(split), want 10:5"

echo "-- b1's index.html made unreadable (chmod 000; its server runs as nobody)"
chmod 000 "$st/www-b1/index.html"
got=$(lab_exec c curl -s -o /dev/null -w '%{http_code}' -m 1 "http://$B1/index.html")
echo "   b1 now answers GET /index.html with HTTP $got (python http.server: open() fails → 404 \"File not found\", not 403)"
[[ $got != 200 && $got != 000 ]] && pass "b1 answers an error status ($got) while its port accepts" || fail "b1 answers '$got'"
figure "unreadable_index_status=$got"
took=$(wait_for 10 eval "! has 'TCP +$VIP:80' $B1:80 Route 2") && pass "HTTP_GET took b1 out of :80 ${took} s later" \
  || fail "b1 still in :80 with status $got"
status | grep -- "$B1" | sed 's/^/   /'
status | grep -- "$B1:80" | grep -q "$got" && pass "flotilla status names the $got" || fail "status does not say why b1:80 is down"
sleep 3 # three more TCP_CHECK rounds
has "TCP +$VIP:8081" "$B1:8081" Route 2 && pass "TCP_CHECK keeps b1 in :8081 (its port accepts)" || fail "b1 left :8081"
requests 15 "http://$VIP/"
[[ $(count b2) == 15 ]] && pass ":80: every request answered by b2 ($(split))" || fail ":80 with b1 out: $(split)"
requests 15 "http://$VIP:8081/"
n_err=$(count "HTTP$got")
((n_err == 10 && $(count b2) == 5)) && pass ":8081: the client gets $n_err error pages ($got) of 15 from b1 ($(split))" \
  || fail ":8081 with b1 broken: $(split), want 10 × HTTP$got + 5 × b2"
chmod 644 "$st/www-b1/index.html"
took=$(wait_for 10 has "TCP +$VIP:80" "$B1:80" Route 2) && pass "page readable again: b1 back in :80 ${took} s later" || fail "b1 did not return to :80"

echo "-- a listener that accepts and never answers (b2:8090 HTTP_GET, b2:8091 TCP_CHECK)"
lab_exec c bash -c "exec 3<>/dev/tcp/$B2/8091" && pass "b2:8091 accepts a connection" || fail "the hanging listener does not accept"
took=$(wait_for 10 eval "[[ -n \$(block 'TCP +$VIP:8090') ]] && ! has 'TCP +$VIP:8090' $B2:8090 Route 1") \
  && pass "HTTP_GET fails the hanging b2:8090 (out within ${took} s; connect_timeout 1)" || fail "b2:8090 still in :8090"
status | grep -- "$B2:809" | sed 's/^/   /'
status | grep -- "$B2:8090" | grep -qiE 'time' && pass "status says the check timed out" || fail "status gives no timeout for b2:8090"
sleep 2
has "TCP +$VIP:8091" "$B2:8091" Route 1 && pass "TCP_CHECK keeps the hanging b2:8091" || fail "TCP_CHECK dropped b2:8091"
requests 2 "http://$VIP:8091/"
[[ $(count FAILED) == 2 ]] && pass "…and the client's requests to :8091 hang (curl -m 1 timed out twice)" || fail ":8091: $(split)"

say "2. fwmark: $VIP6 tcp 80+443 → mark 6 (wrr), $VIP7 tcp 80 → mark 7 (rr)"
if err=$(lab_exec d1 nft add table ip mangle 2>&1); then
  echo "   nftables ip family available: marking with nft"
  lab_exec d1 nft -f - <<NFT || fail "nft rules"
add chain ip mangle prerouting { type filter hook prerouting priority mangle; }
add rule ip mangle prerouting ip daddr $VIP6 tcp dport { 80, 443 } meta mark set 6
add rule ip mangle prerouting ip daddr $VIP7 tcp dport 80 meta mark set 7
NFT
  marker=nft
else
  echo "   nft add table ip mangle: $(echo "$err" | head -1) — this UML kernel has no nf_tables ip family"
  echo "   (CONFIG_NF_TABLES_IPV4 unset); marking with tc flower + skbedit on d1's eth0 ingress instead"
  flower() { lab_exec d1 tc filter add dev eth0 ingress protocol ip flower ip_proto tcp dst_ip "$1" dst_port "$2" action skbedit mark "$3"; }
  lab_exec d1 tc qdisc add dev eth0 clsact && flower "$VIP6" 80 6 && flower "$VIP6" 443 6 && flower "$VIP7" 80 7 \
    || fail "tc marking rules"
  marker=tc
fi
figure "fwmark_marker=$marker"
if [[ $(block "FWM +6") =~ ^FWM\ +6\ +wrr && $(block "FWM +7") =~ ^FWM\ +7\ +rr ]] &&
    has "FWM +6" "$B1:0" Route 2 && has "FWM +6" "$B2:0" Route 1 && has "FWM +7" "$B1:0" Route 2 && has "FWM +7" "$B2:0" Route 1; then
  pass "ipvsadm: FWM 6 wrr and FWM 7 rr, b1 weight 2, b2 weight 1 (port 0)"
else fail "fwmark services: $(table | grep -A2 FWM | tr '\n' '|')"; fi
block FWM | sed 's/^/   /'
requests 15 "http://$VIP6/"
[[ $(count b1) == 10 && $(count b2) == 5 ]] && pass "fwmark 6 wrr, port 80: 10:5 ($(split))" || fail "fwmark 6 :80 $(split), want 10:5"
requests 15 "http://$VIP6:443/"
[[ $(count b1) == 10 && $(count b2) == 5 ]] && pass "fwmark 6 wrr, port 443 (same service): 10:5 ($(split))" || fail "fwmark 6 :443 $(split), want 10:5"
requests 16 "http://$VIP7/"
[[ $(count b1) == 8 && $(count b2) == 8 ]] && pass "fwmark 7 rr: 8:8 despite weights 2:1 ($(split))" || fail "fwmark 7 $(split), want 8:8"
stats=$(lab_exec d1 ipvsadm -Ln --stats)
conns() { awk -v m="$1" '$1 == "FWM" && $2 == m {print $3; exit}' <<<"$stats"; }
c6=$(conns 6) c7=$(conns 7)
((${c6:-0} > 0 && ${c7:-0} > 0)) && pass "IPVS counters: FWM 6 $c6, FWM 7 $c7 connections" || fail "fwmark counters: 6 '$c6' 7 '$c7'"

say "3. NAT: $VIPN:80 → b3, b4 :8080 on the second segment, default route via the DIP"
[[ $(block "TCP +$VIPN:80") =~ $B3:8080\ +Masq && $(block "TCP +$VIPN:80") =~ $B4:8080\ +Masq ]] \
  && pass "ipvsadm -Ln: $VIPN:80 → $B3:8080 Masq, $B4:8080 Masq" || fail "NAT service: $(block "TCP +$VIPN:80" | tr '\n' '|')"
block "TCP +$VIPN:80" | sed 's/^/   /'
lab_exec c ping -c1 -W1 "$B3" >/dev/null 2>&1 && fail "the client reaches b3 directly (not a two-segment setup)" \
  || pass "the client has no route to the backends' segment"
requests 10 "http://$VIPN/"
[[ $(count b3) == 5 && $(count b4) == 5 ]] && pass "10 requests to $VIPN answered through NAT, 5:5 ($(split))" || fail "NAT: $(split)"
grep -q "^10.99.0.10 " "$(lab_logfile b3 http)" && pass "b3 logs the client's own address 10.99.0.10 (NAT keeps the source)" \
  || fail "b3's log has no request from 10.99.0.10: $(tail -2 "$(lab_logfile b3 http)")"
lab_exec d1 sysctl -qw net.ipv4.ip_forward=0
requests 2 "http://$VIPN/"
[[ $(count FAILED) == 2 ]] && pass "control: ip_forward=0 on d1 → no answers ($(split))" || fail "with ip_forward=0: $(split)"
lab_exec d1 sysctl -qw net.ipv4.ip_forward=1
requests 2 "http://$VIPN/"
(($(count b3) + $(count b4) == 2)) && pass "ip_forward=1 again: answered ($(split))" || fail "after ip_forward=1: $(split)"

say "Stop d1: its IPVS services removed"
lab_kill d1 flotilla TERM
if wait_for 5 eval '[[ -z $(table | grep -E "^(TCP|UDP|SCTP|FWM)") ]]' >/dev/null; then pass "d1 stopped: no services left"
else fail "d1 left IPVS rules behind"; table | sed 's/^/   /'; fi

vs=${FLOTILLA_FIG_VS:-200} rs=${FLOTILLA_FIG_RS:-3700}
say "4. Figure: agent start → \"IPVS table reconciled\" for $vs virtual servers / $rs real servers (d2, debug build)"
awk -v vs="$vs" -v rs="$rs" 'BEGIN {
  print "global_defs {\n  router_id fig\n}"
  per = int(rs / vs); extra = rs % vs; r = 0
  for (i = 0; i < vs; i++) {
    port = 80 + i % 2
    printf "virtual_server 10.%d.%d.%d %d {\n  lb_algo wrr\n  lb_kind DR\n  protocol TCP\n", 100 + int(i / 65536) % 100, int(i / 256) % 256, i % 256, port
    n = per + (i < extra ? 1 : 0)
    for (k = 0; k < n; k++) {
      printf "  real_server 172.%d.%d.%d %d {\n    weight %d\n  }\n", 16 + int(r / 65536) % 16, int(r / 256) % 256, r % 256, port, 1 + r % 3
      r++
    }
    print "}"
  }
}' > "$st/fig.conf"
log=$(lab_logfile d2 fig)
t0=$(lab_now_ms)
lab_spawn d2 fig "$FLOTILLA" agent --ipvs kernel --config "$st/fig.conf" --api-socket "$st/d2.sock"
if took=$(wait_for 300 grep -q "IPVS table reconciled" "$log"); then
  lines=$(lab_exec d2 ipvsadm -Ln | wc -l)
  svcs=$(lab_exec d2 ipvsadm -Ln | grep -cE '^(TCP|UDP|FWM)')
  dests=$(lab_exec d2 ipvsadm -Ln | grep -c -- '->')
  dests=$((dests - 1)) # the header line
  grep "IPVS table reconciled" "$log" | tail -1 | sed 's/^/   /'
  figure "reconcile_kernel vs=$vs rs=$rs start_to_reconciled_s=$took ipvsadm_lines=$lines services=$svcs dests=$dests build=debug uml=1"
  ((svcs == vs && dests == rs)) && pass "kernel table has $svcs services and $dests real servers" \
    || fail "kernel table: $svcs services, $dests real servers (want $vs, $rs)"
else
  fail "no \"IPVS table reconciled\" within 300 s"; tail -5 "$log"
fi
t1=$(lab_now_ms)
lab_kill d2 fig TERM
wait_for $((vs / 20 > 30 ? vs / 20 : 30)) eval '[[ -z $(lab_exec d2 ipvsadm -Ln | grep -E "^(TCP|UDP|FWM)") ]]' >/dev/null && figure "release_kernel vs=$vs rs=$rs stop_to_empty_s=$(_lab_seconds $(($(lab_now_ms) - t1)))" \
  || echo "   (d2's services not all removed in time after TERM)"

say "Result"
if ((failures)); then echo "FAIL: uml-flotilla-lvs-more inside UML ($failures failed checks)"; exit 1; fi
echo "PASS: uml-flotilla-lvs-more inside UML"
