#!/bin/bash
# Runbook: LVS direct routing with IPVS, weighted round robin 2:1 (IPVS tier: runs in UML).
#
#   Director d1 holds VIP 10.99.0.100 on eth0 and forwards TCP :80 to b1 (weight 2) and
#   b2 (weight 1) by direct routing. The backends carry the VIP on lo and never answer ARP for
#   it (arp_ignore=1, arp_announce=2); each serves a page with its own name.
#   1. The backends answer on their own addresses.
#   2. `ipvsadm -Ln` on d1 shows the wrr service and both real servers with their weights.
#   3. 30 requests from the client to the VIP split exactly 20 (b1) : 10 (b2).
#   4. IPVS counters show connections to both real servers, more to b1.
#
# The host kernel has no IPVS: run on the host, this script boots UML (ops/lab/uml.sh) and runs
# itself inside; the checks run inside, the host reads the exit code and the recorded split.
#
# Usage (root): bash tests/lab/uml-ipvs-dr.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

say()  { echo; echo "== $*"; }

if [[ ${LAB_IN_UML:-} != 1 ]]; then
  say "Boot UML (IPVS kernel) and run this runbook inside it"
  share=$(mktemp -d /tmp/flotilla-dr.XXXXXX)
  trap 'rm -rf "$share"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ops/lab/uml.sh run "$0" --timeout 240 --share "$share"
  rc=$?
  say "Result (host side)"
  split=$(cat "$share/split.txt" 2>/dev/null)
  echo "FIGURE dr_split=\"${split:-none}\""
  if ((rc == 0)); then echo "PASS: uml-ipvs-dr (split ${split})"; else echo "FAIL: uml-ipvs-dr (exit code $rc)"; fi
  exit "$rc"
fi

# ---- inside UML from here on ----
source ops/lab/lab.sh
export LAB_PREFIX=${LAB_TEST_PREFIX:-lab-t}-dr
VIP=10.99.0.100
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "Preflight (kernel $(uname -r))"
lab_require ipvsadm ip curl "$LAB_PYTHON" || exit 1
lab_down
lab_up 1 || { echo "FAIL: lab up"; exit 1; }
st=$(lab_state_dir)

say "Backends b1, b2: VIP on lo, no ARP for it, HTTP server naming itself"
for b in b1 b2; do
  lab_exec "$b" ip addr add "$VIP/32" dev lo
  lab_exec "$b" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
    net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
  mkdir -p "$st/www-$b" && echo "$b" > "$st/www-$b/index.html"
  lab_spawn "$b" http "$LAB_PYTHON" -m http.server 80 --bind 0.0.0.0 --directory "$st/www-$b"
done

say "Director d1: VIP on eth0, IPVS service $VIP:80 wrr, DR to b1 (weight 2) and b2 (weight 1)"
lab_exec d1 ip addr add "$VIP/32" dev eth0
lab_exec d1 ipvsadm -A -t "$VIP:80" -s wrr &&
lab_exec d1 ipvsadm -a -t "$VIP:80" -r "$(lab_addr b1):80" -g -w 2 &&
lab_exec d1 ipvsadm -a -t "$VIP:80" -r "$(lab_addr b2):80" -g -w 1 || fail "ipvsadm could not program the service"

say "1. Backends answer on their own addresses"
for b in b1 b2; do
  got=""
  for ((i = 0; i < 50; i++)); do
    got=$(lab_exec c curl -s -m 1 "http://$(lab_addr "$b")/") && [[ $got == "$b" ]] && break
    sleep 0.2
  done
  [[ $got == "$b" ]] && pass "$b answers directly" || fail "$b does not answer on $(lab_addr "$b"):80"
done

say "2. ipvsadm -Ln on d1"
table=$(lab_exec d1 ipvsadm -Ln)
echo "$table" | sed 's/^/   /'
[[ $table =~ TCP\ +$VIP:80\ +wrr ]] && pass "service TCP $VIP:80 wrr" || fail "no wrr service for $VIP:80"
[[ $table =~ -\>\ $(lab_addr b1):80\ +Route\ +2\  ]] && pass "b1 real server, Route, weight 2" || fail "b1 not listed as Route weight 2"
[[ $table =~ -\>\ $(lab_addr b2):80\ +Route\ +1\  ]] && pass "b2 real server, Route, weight 1" || fail "b2 not listed as Route weight 1"

say "3. 30 requests from the client to http://$VIP/"
t0=$(lab_now_ms)
: > "$st/replies"
# one shell in the client for all 30 requests: process start-up is slow under UML
lab_exec c bash -c "for ((i = 0; i < 30; i++)); do curl -s -m 2 http://$VIP/ || echo FAILED; done" > "$st/replies"
took=$(_lab_seconds $(($(lab_now_ms) - t0)))
n_b1=$(grep -cx b1 "$st/replies"); n_b2=$(grep -cx b2 "$st/replies"); n_bad=$((30 - n_b1 - n_b2))
split="b1=$n_b1 b2=$n_b2 failed=$n_bad"
echo "   split: $split (30 requests in $took s)"
echo "$split" > "$LAB_SHARE/split.txt"
((n_b1 == 20 && n_b2 == 10)) && pass "split exactly 20:10 (weights 2:1)" || fail "split $split, want b1=20 b2=10"

say "4. IPVS connection counters on d1"
stats=$(lab_exec d1 ipvsadm -Ln --stats)
echo "$stats" | sed 's/^/   /'
# Conns counts IPVS connection entries; a client port reused while its old entry still lingers
# is not counted again, so the figure may be below 30: check that both real servers got traffic.
conns() { echo "$stats" | awk -v a="$1" '$2 == a {print $3; exit}'; }
c_all=$(echo "$stats" | awk -v vip="$VIP:80" '$1 == "TCP" && $2 == vip {print $3}')
c_b1=$(conns "$(lab_addr b1):80"); c_b2=$(conns "$(lab_addr b2):80")
echo "   connections: service $c_all, b1 $c_b1, b2 $c_b2"
((${c_b1:-0} > ${c_b2:-0} && ${c_b2:-0} > 0)) && pass "IPVS forwarded connections to both, more to b1 ($c_b1 > $c_b2 > 0)" \
  || fail "IPVS counters: b1 '$c_b1', b2 '$c_b2' (want b1 > b2 > 0)"

say "Result"
if ((failures)); then echo "FAIL: uml-ipvs-dr inside UML ($failures failed checks)"; exit 1; fi
echo "PASS: uml-ipvs-dr inside UML"
