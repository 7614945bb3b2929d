#!/bin/bash
# Runbook: three directors as one fleet (cluster-configs/lab.conf: 16 VIPs in 10 units).
#
#   Each director runs `flotilla agent --name dN` with the same file (its tls paths pointed
#   at certificates made here with `flotilla cert`, hold-down shortened to 5 s) and a small
#   HTTP responder answering on every address with its own name; the client counts answers.
#     1. Start: every VIP is held by exactly one director; the VIP load is balanced (max − min
#        ≤ 3, the largest unit); sync-group members stay together.
#     2. d2 crashes (killed, link down): every VIP it held is answered by a survivor; the time
#        is measured (advert_int is 1 s: plain VRRP would need 3 × 1 s + skew); its units land
#        on both survivors.
#     3. d2 comes back: nothing moves during the hold-down; then placement rebalances.
#     4. Drain d1 (`flotilla drain d1 --wait`) while the client requests every VIP in a loop:
#        d1 ends owning nothing, no request unanswered (one reset in flight as its VIP leaves
#        d1 is counted apart), no VIP ever without an owner; undrain.
#     5. `flotilla config apply` on a follower: a new instance appears on every director.
#     6. A director with a certificate from another CA is refused and never counted up.
#
# Usage (root): bash tests/lab/flotilla-fleet.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
runbook_begin flt || exit 1
lab_require curl python3 || exit 1

lab_up 3 || exit 1
st=$(lab_state_dir)
"$FLOTILLA" cert init --dir "$st/pki" >/dev/null || { fail "cert init"; runbook_end; }
for d in d1 d2 d3; do "$FLOTILLA" cert issue --ca "$st/pki" --name "$d" >/dev/null || fail "cert issue $d"; done
sed -e "s#/var/lib/flotilla/lab/pki/ca.pem#$st/pki/ca.pem#" -e "s#dir /var/lib/flotilla/lab/pki#dir $st/pki#" \
    -e 's#hold_down 30s#hold_down 5s#' cluster-configs/lab.conf > "$st/lab.conf"

start() {
  lab_spawn "$1" flotilla "$FLOTILLA" agent --config "$st/lab.conf" --name "$1" \
    --state-dir "$st/state-$1" --api-socket "$st/$1.sock"
}
status() { "$FLOTILLA" status --json --api-socket "$st/$1.sock" 2>/dev/null; }
# holders ADDR: directors holding 10.99.0.ADDR
holders() { local d out=""; for d in d1 d2 d3; do lab_has_addr "$d" "10.99.0.$1" && out+="$d "; done; echo "${out% }"; }
# Every VIP of the configuration.
VIPS=$(grep -oE '10\.99\.0\.1[0-9]{2}/24' "$st/lab.conf" | cut -d/ -f1 | cut -d. -f4 | sort -u | tr '\n' ' ')
each_once() { local v h; for v in $VIPS; do h=$(holders "$v"); [[ $h == d? ]] || { echo "$v:'$h'"; return 1; }; done; }
load() { local d v n; for d in d1 d2 d3; do n=0; for v in $VIPS; do lab_has_addr "$d" "10.99.0.$v" && n=$((n + 1)); done; printf '%s=%s ' "$d" "$n"; done; }

say "HTTP responders on every director, the fleet starting"
for d in d1 d2 d3; do
  mkdir -p "$st/www-$d" && echo "$d" > "$st/www-$d/index.html"
  lab_spawn "$d" http python3 -m http.server 80 --bind 0.0.0.0 --directory "$st/www-$d"
  start "$d"
done

say "1. Start: each VIP on exactly one director, balanced, groups together"
t0=$(lab_now_ms)
until each_once >/dev/null; do (($(lab_now_ms) - t0 > 20000)) && break; sleep 0.2; done
sleep 2
if bad=$(each_once); then pass "all $(wc -w <<<"$VIPS") VIPs held exactly once ($(_lab_seconds $(($(lab_now_ms) - t0))) s after start)"
else fail "VIP ownership: $bad"; fi
l=$(load); echo "   VIPs per director: $l"
sp=$(tr ' ' '\n' <<<"$l" | cut -d= -f2 | grep . | sort -n | awk 'NR==1{mn=$1} {mx=$1} END{print mx - mn}')
((sp <= 3)) && pass "balanced: max − min = $sp ≤ 3 (largest unit)" || fail "unbalanced: $l"
[[ $(holders 110) == "$(holders 111)" && $(holders 111) == "$(holders 112)" ]] && pass "SG_WEB's VIPs together on $(holders 110)" || fail "SG_WEB split"
[[ $(holders 113) == "$(holders 114)" && $(holders 114) == "$(holders 115)" ]] && pass "SG_DATA's VIPs together on $(holders 113)" || fail "SG_DATA split"
"$FLOTILLA" status --api-socket "$st/d1.sock" | sed -n '2,8p' | sed 's/^/   /'
view=$("$FLOTILLA" status --vip 10.99.0.104 --api-socket "$st/d1.sock"); echo "$view" | sed 's/^/   /'
[[ $view == *"owner $(holders 104),"* ]] && pass "status --vip 10.99.0.104 names its holder $(holders 104)" || fail "status --vip disagrees with who holds 10.99.0.104 ($(holders 104))"

say "2. d2 crashes"
mine=$(for v in $VIPS; do [[ $(holders "$v") == d2 ]] && echo "$v"; done | tr '\n' ' ')
echo "   d2 holds: $mine"
t0=$(lab_now_ms)
lab_kill d2 flotilla KILL
lab_exec d2 ip link set eth0 down
# d2 is unplugged: a VIP it still carries reaches nobody, so only the survivors count.
taken() { local v; for v in $mine; do lab_has_addr d1 "10.99.0.$v" || lab_has_addr d3 "10.99.0.$v" || return 1; done; }
until taken; do (($(lab_now_ms) - t0 > 10000)) && break; sleep 0.01; done
took=$(_lab_seconds $(($(lab_now_ms) - t0)))
if taken; then pass "every VIP of d2 held by a survivor ${took} s after the crash (VRRP alone: ≥ 3.6 s)"; echo "FIGURE fleet_crash_takeover_s=$took"
else fail "d2's VIPs not all taken over"; fi
answered=0
for v in $mine; do r=$(lab_exec c curl -s -m 1 "http://10.99.0.$v/"); [[ $r == d1 || $r == d3 ]] && answered=$((answered + 1)); done
((answered == $(wc -w <<<"$mine"))) && pass "each of them answers HTTP from a survivor" || fail "only $answered of d2's VIPs answer"
to=$(for v in $mine; do holders "$v" | tr ' ' '\n' | grep -v d2; done | sort -u | tr '\n' ' ')
[[ $to == "d1 d3 " ]] && pass "d2's units spread over both survivors" || echo "   note: d2's units went to: $to"

say "3. d2 comes back: hold-down, then rebalance"
for v in $mine; do lab_exec d2 ip addr del "10.99.0.$v/24" dev eth0 2>/dev/null; done
lab_exec d2 ip link set eth0 up
start d2
t0=$(lab_now_ms); early=""
while (($(lab_now_ms) - t0 < 3000)); do l=$(load); [[ $l == *"d2=0 "* ]] || early+="$l; "; sleep 0.1; done
[[ -z $early ]] && pass "nothing moved to d2 during the first 3 s of its 5 s hold-down" || fail "d2 took units inside its hold-down: $early"
spread() { tr ' ' '\n' <<<"$1" | cut -d= -f2 | grep . | sort -n | awk 'NR==1{mn=$1} {mx=$1} END{print mx - mn}'; }
t0=$(lab_now_ms)
until l=$(load); [[ $l != *"d2=0 "* ]] && (($(spread "$l") <= 3)); do (($(lab_now_ms) - t0 > 20000)) && break; sleep 0.2; done
l=$(load); echo "   VIPs per director after the hold-down: $l ($(_lab_seconds $(($(lab_now_ms) - t0))) s later)"
[[ $l != *"d2=0 "* ]] && (($(spread "$l") <= 3)) && pass "d2 took units back after the hold-down; balanced again (max − min $(spread "$l"))" || fail "not rebalanced: $l"
each_once >/dev/null && pass "still every VIP held exactly once" || fail "ownership after rebalance: $(each_once)"

say "4. Drain d1 under traffic"
lab_exec c bash -c "end=\$((\$(date +%s) + 8)); while (( \$(date +%s) < end )); do for v in $VIPS; do t=\$(curl -s -o /dev/null -w '%{time_connect}' -m 1 http://10.99.0.\$v/); rc=\$?; ((rc == 28)) && [[ \$t != 0.000000 ]] && rc=28c; [[ \$rc == 0 ]] && echo ok || echo \"FAILED \$v rc=\$rc \"; done; done" > "$st/drain-replies" &
loop=$!
# Ownership sampled every 20 ms: never a VIP without a holder.
( end=$(($(date +%s) + 8)); while (( $(date +%s) < end )); do for v in $VIPS; do h=$(holders "$v"); [[ -z $h ]] && echo "none $v"; done; sleep 0.02; done ) > "$st/owners" &
watcher=$!
sleep 1
"$FLOTILLA" drain d1 --wait --api-socket "$st/d2.sock" | sed 's/^/   /'
wait "$loop" "$watcher"
ok=$(grep -c '^ok$' "$st/drain-replies"); bad=$(grep -c FAILED "$st/drain-replies")
# CUT_IN_FLIGHT (curl 52/56: reset or closed mid-request; 28c: connected, then no answer): in
# flight to d1 when its VIP left: each director answers with its own local HTTP responder (no
# IPVS on the host tier), so a connection cannot survive a move here (tests/lab/lib/fleet.sh).
CUT_IN_FLIGHT='rc=(52|56|28c) '  # as in tests/lab/lib/fleet.sh (not sourced here)
resets=$(grep FAILED "$st/drain-replies" | grep -cE "$CUT_IN_FLIGHT"); unanswered=$((bad - resets))
echo "FIGURE drain_requests=$((ok + bad)) drain_failed=$bad drain_unanswered=$unanswered drain_reset_in_flight=$resets"
((unanswered == 0 && ok > 0)) && pass "drain under traffic: $ok requests answered, 0 unanswered ($resets reset or cut in flight)" \
  || fail "drain: $unanswered of $((ok + bad)) requests unanswered: $(grep FAILED "$st/drain-replies" | sort | uniq -c | tr '\n' ' ')"
[[ ! -s $st/owners ]] && pass "no VIP was ever without a holder (20 ms samples)" || fail "VIPs without holder: $(sort -u "$st/owners" | tr '\n' ' ')"
[[ $(load) == *"d1=0 "* ]] && pass "d1 holds nothing" || fail "d1 still holds: $(load)"
"$FLOTILLA" undrain d1 --api-socket "$st/d3.sock" | sed 's/^/   /'

say "5. config apply on a follower"
follower=$(status d1 | python3 -c "import json,sys; f=json.load(sys.stdin)['fleet']; print(next(m['name'] for m in f['members'] if not m['leader']))")
cat "$st/lab.conf" > "$st/lab2.conf"
printf 'vrrp_instance VI_108 {\n    interface eth0\n    virtual_router_id 108\n    advert_int 1\n    virtual_ipaddress {\n        10.99.0.108/24 dev eth0\n    }\n}\n' >> "$st/lab2.conf"
"$FLOTILLA" config apply "$st/lab2.conf" --api-socket "$st/$follower.sock" | sed 's/^/   /'
t0=$(lab_now_ms)
until [[ $(holders 108) == d? ]]; do (($(lab_now_ms) - t0 > 10000)) && break; sleep 0.1; done
[[ $(holders 108) == d? ]] && pass "config applied via $follower: VI_108's VIP held by $(holders 108) ($(_lab_seconds $(($(lab_now_ms) - t0))) s)" || fail "VI_108 never came up"
n=0; for d in d1 d2 d3; do status "$d" | grep -q '"VI_108"' && n=$((n + 1)); done
((n == 3)) && pass "VI_108 runs on all three directors" || fail "VI_108 on $n directors"
echo 'vrrp_instance BROKEN {' > "$st/bad.conf"
out=$("$FLOTILLA" config apply "$st/bad.conf" --api-socket "$st/d1.sock" 2>&1); rc=$?
((rc == 1)) && [[ $out == *bad.conf:* ]] && pass "a broken file is refused with file:line:col" || fail "broken file: rc $rc, $out"

say "6. A director with a certificate from another CA"
lab_kill d3 flotilla TERM
"$FLOTILLA" cert init --dir "$st/rogue" >/dev/null && "$FLOTILLA" cert issue --ca "$st/rogue" --name d3 >/dev/null
sed "s#$st/pki#$st/rogue#g" "$st/lab.conf" > "$st/rogue.conf"
lab_spawn d3 rogue "$FLOTILLA" agent --config "$st/rogue.conf" --name d3 --state-dir "$st/state-rogue" --api-socket "$st/rogue.sock"
sleep 3
up=$(status d1 | python3 -c "import json,sys; f=json.load(sys.stdin)['fleet']; print(next(m['alive'] for m in f['members'] if m['name']=='d3'))")
[[ $up == False ]] && pass "the impostor d3 is not counted as a member" || fail "impostor d3 counted as alive"
grep -q -i "refused\|certificate" "$(lab_logfile d1 flotilla)" && pass "d1 logged the refused connection" || fail "no refusal logged on d1"

lab_kill d3 rogue TERM
for d in d1 d2; do lab_kill "$d" flotilla TERM; done
runbook_end
