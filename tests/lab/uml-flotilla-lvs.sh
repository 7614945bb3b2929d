#!/bin/bash
# Runbook: the seed's LVS director pair, run by flotilla alone (no ipvsadm script, no
# keepalived), on a real IPVS kernel (UML).
#
#   d1 and d2 run `flotilla agent` with the same keepalived.conf but their own priority
#   (d1 150, d2 100): VRRPv3 VI_1 holds VIP 10.99.0.100; virtual_server 10.99.0.100:80 wrr DR
#   to b1 (weight 2) and b2 (weight 1), each checked with HTTP_GET; a second virtual server
#   10.99.0.100:8080 with b1 alone and b2:8080 as its sorry server.
#     1. d1 master; `ipvsadm -Ln` on d1 *and* d2 shows exactly the service and both real
#        servers (programmed on the backup too); 30 requests split 20:10.
#     2. b1's web server stopped: b1 leaves the table within delay_loop + retry; every request
#        goes to b2; started again: back, 20:10 again.
#     3. b1 answers 404 (its page removed): HTTP_GET takes it out (an L4 check would not).
#     4. :8080's only real server down: the sorry server answers; back: the sorry server leaves.
#     5. d1 crashes: d2 takes the VIP and serves from its already-programmed service;
#        requests lost during the switch are counted.
#
# The host kernel has no IPVS: on the host this script boots UML (ops/lab/uml.sh) and runs
# itself inside.
#
# Usage (root): bash tests/lab/uml-flotilla-lvs.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

say()  { echo; echo "== $*"; }

if [[ ${LAB_IN_UML:-} != 1 ]]; then
  say "Build flotilla, boot UML (IPVS kernel) and run this runbook inside it"
  cargo build --quiet -p flotilla || { echo "FAIL: cannot build flotilla"; exit 1; }
  share=$(mktemp -d /tmp/flotilla-lvs.XXXXXX)
  trap 'rm -rf "$share"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ops/lab/uml.sh run "$0" --timeout 420 --share "$share"
  rc=$?
  say "Result (host side)"
  cat "$share/figures.txt" 2>/dev/null
  if ((rc == 0)); then echo "PASS: uml-flotilla-lvs"; else echo "FAIL: uml-flotilla-lvs (exit code $rc)"; fi
  exit "$rc"
fi

# ---- inside UML from here on ----
source ops/lab/lab.sh
export LAB_PREFIX=${LAB_TEST_PREFIX:-lab-t}-lvs
VIP=10.99.0.100
FLOTILLA=$PWD/target/debug/flotilla
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

lab_require ipvsadm ip curl "$LAB_PYTHON" || exit 1
lab_down
lab_up 2 || { echo "FAIL: lab up"; exit 1; }
st=$(lab_state_dir)

say "Backends b1, b2 (VIP on lo, no ARP for it); b1 also on :8080, the sorry server on b2:8080"
for b in b1 b2; do
  lab_exec "$b" ip addr add "$VIP/32" dev lo
  lab_exec "$b" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
    net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
  mkdir -p "$st/www-$b" && echo "$b" > "$st/www-$b/index.html"
  lab_spawn "$b" http "$LAB_PYTHON" -m http.server 80 --bind 0.0.0.0 --directory "$st/www-$b"
done
mkdir -p "$st/www-sorry" && echo sorry > "$st/www-sorry/index.html"
lab_spawn b1 http8080 "$LAB_PYTHON" -m http.server 8080 --bind 0.0.0.0 --directory "$st/www-b1"
lab_spawn b2 sorry "$LAB_PYTHON" -m http.server 8080 --bind 0.0.0.0 --directory "$st/www-sorry"

for n in d1 d2; do
  prio=$([[ $n == d1 ]] && echo 150 || echo 100)
  cat > "$st/$n.conf" <<CONF
global_defs {
  router_id $n
  vrrp_version 3
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $prio
  advert_int 0.1
  virtual_ipaddress {
    $VIP/24
  }
}
virtual_server $VIP 80 {
  delay_loop 1
  lb_algo wrr
  lb_kind DR
  protocol TCP
  real_server $(lab_addr b1) 80 {
    weight 2
    HTTP_GET {
      url {
        path /index.html
        status_code 200
      }
      connect_timeout 1
      retry 1
      delay_before_retry 1
    }
  }
  real_server $(lab_addr b2) 80 {
    weight 1
    HTTP_GET {
      url {
        path /index.html
        status_code 200
      }
      connect_timeout 1
      retry 1
      delay_before_retry 1
    }
  }
}
virtual_server $VIP 8080 {
  delay_loop 1
  lb_algo rr
  lb_kind DR
  protocol TCP
  sorry_server $(lab_addr b2) 8080
  real_server $(lab_addr b1) 8080 {
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
}
CONF
  lab_spawn "$n" flotilla "$FLOTILLA" agent --config "$st/$n.conf" --api-socket "$st/$n.sock"
done

requests() { # N [PORT] → lines b1/b2/sorry/FAILED in $st/replies
  lab_exec c bash -c "for ((i = 0; i < $1; i++)); do curl -s -m 1 http://$VIP:${2:-80}/ || echo FAILED; done" > "$st/replies"
}
count() { grep -cx "$1" "$st/replies"; }
split() { echo "b1=$(count b1) b2=$(count b2) sorry=$(count sorry) failed=$(count FAILED)"; }
table() { lab_exec "$1" ipvsadm -Ln; }
has_rs() { [[ $(table "$1") =~ -\>\ $(lab_addr "$2"):80\ +Route\ +$3\  ]]; }
wait_for() { # SECONDS CMD...
  local t0 limit=$1; shift; t0=$(lab_now_ms)
  until "$@"; do (($(lab_now_ms) - t0 > limit * 1000)) && return 1; sleep 0.2; done
  _lab_seconds $(($(lab_now_ms) - t0))
}

say "1. The pair comes up"
lab_wait_addr d1 "$VIP" 15 >/dev/null && pass "d1 holds the VIP" || fail "d1 never became master"
for n in d1 d2; do
  if wait_for 10 has_rs "$n" b2 1 >/dev/null && has_rs "$n" b1 2; then
    pass "ipvsadm -Ln on $n: b1 Route 2, b2 Route 1"
  else fail "ipvsadm on $n: $(table "$n" | tr '\n' '|')"; fi
done
table d1 | sed 's/^/   /'
[[ $(table d1 | grep -c -- '->') == 4 ]] && pass "exactly the three real servers (header + b1, b2 on :80, b1 on :8080)" || fail "unexpected destinations on d1"
# Let both checkers pass their first probe before counting.
sleep 2
requests 30
[[ $(count b1) == 20 && $(count b2) == 10 ]] && pass "30 requests split 20:10 ($(split))" || fail "split $(split), want 20:10"

say "2. b1's web server stops, then starts again"
lab_kill b1 http TERM
took=$(wait_for 15 eval '! has_rs d1 b1 2') && pass "b1 left d1's table ${took} s after it stopped (delay_loop 1 + retry 1 × 1 s)" \
  || fail "b1 still in d1's table"
echo "FIGURE rs_removal_s=$took" >> "$LAB_SHARE/figures.txt"
requests 12
[[ $(count b2) == 12 ]] && pass "every request to b2 ($(split))" || fail "with b1 down: $(split)"
lab_spawn b1 http "$LAB_PYTHON" -m http.server 80 --bind 0.0.0.0 --directory "$st/www-b1"
took=$(wait_for 15 has_rs d1 b1 2) && pass "b1 back in the table ${took} s after it started" || fail "b1 did not return"
requests 30
[[ $(count b1) == 20 && $(count b2) == 10 ]] && pass "20:10 again ($(split))" || fail "after b1's return: $(split)"

say "3. b1's page removed: HTTP 404, so HTTP_GET takes it out"
mv "$st/www-b1/index.html" "$st/www-b1/gone.html"
took=$(wait_for 15 eval '! has_rs d1 b1 2') && pass "b1 out on 404 (${took} s) though its port still accepts" || fail "b1 kept despite 404"
out=$("$FLOTILLA" status --api-socket "$st/d1.sock" 2>&1); echo "$out" | grep -- '->' | sed 's/^/   /'
grep -q "404" <<<"$out" && pass "status names the 404" || fail "status does not say why b1 is down"
mv "$st/www-b1/gone.html" "$st/www-b1/index.html"
wait_for 15 has_rs d1 b1 2 >/dev/null && pass "b1 back with its page" || fail "b1 did not return after the page came back"

say "4. :8080 loses its only real server: the sorry server serves"
requests 4 8080
[[ $(count b1) == 4 ]] && pass ":8080 served by b1 ($(split))" || fail ":8080 at start: $(split)"
lab_kill b1 http8080 TERM
took=$(wait_for 15 eval '[[ $(table d1) =~ $(lab_addr b2):8080\ +Route ]]') && pass "sorry server b2:8080 in the table ${took} s later" || fail "no sorry server: $(table d1 | tr '\n' '|')"
requests 5 8080
[[ $(count sorry) == 5 ]] && pass "the sorry server answers ($(split))" || fail "with b1:8080 down: $(split)"
lab_spawn b1 http8080 "$LAB_PYTHON" -m http.server 8080 --bind 0.0.0.0 --directory "$st/www-b1"
wait_for 15 eval '! [[ $(table d1) =~ $(lab_addr b2):8080 ]]' >/dev/null && pass "b1:8080 back: the sorry server leaves" || fail "sorry server stayed"
requests 4 8080
[[ $(count b1) == 4 ]] && pass "b1 answers :8080 again ($(split))" || fail "after b1's return: $(split)"

say "5. d1 crashes: d2 takes over with its IPVS service already in place"
lab_exec c bash -c "end=\$((\$(date +%s) + 6)); while (( \$(date +%s) < end )); do curl -s -m 0.5 http://$VIP/ || echo FAILED; sleep 0.05; done" > "$st/replies" &
loop=$!
sleep 1.5
t0=$(lab_now_ms)
lab_kill d1 flotilla KILL
lab_exec d1 ip link set eth0 down
took=$(wait_for 5 lab_has_addr d2 "$VIP") && pass "d2 holds the VIP ${took} s after d1 died" || fail "d2 did not take the VIP"
wait "$loop"
total=$(wc -l < "$st/replies")
echo "   during the switch: $(split) of $total requests"
echo "FIGURE failover_requests_total=$total failed=$(count FAILED) takeover_s=$took" >> "$LAB_SHARE/figures.txt"
(( $(count b1) + $(count b2) > 0 )) && pass "requests answered through d2 after the crash" || fail "nothing answered"
lab_kill d2 flotilla TERM
if wait_for 5 eval '[[ -z $(table d2 | grep -E "^(TCP|UDP|SCTP|FWM)") ]]' >/dev/null; then pass "d2 stopped: its IPVS services removed"
else fail "d2 left IPVS rules behind"; table d2 | sed 's/^/   /'; tail -5 "$(lab_logfile d2 flotilla)"; fi

say "Result"
if ((failures)); then echo "FAIL: uml-flotilla-lvs inside UML ($failures failed checks)"; exit 1; fi
echo "PASS: uml-flotilla-lvs inside UML"
