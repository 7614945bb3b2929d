#!/bin/bash
# Runbook: partial partitions of the three-director fleet (cluster-configs/lab.conf), made with
# nftables inside the directors' namespaces (table inet flotilla_part, input hook; both ends
# drop what comes from the other, so the cut is symmetric):
#
#   A. QUIC (UDP 7180) cut between d1 and d2, VRRP still flowing; healed.
#      Nobody is confirmed dead (d3 still hears both), nothing moves.
#   B. VRRP (IP protocol 112) cut between d1 and d2, QUIC still flowing; healed. A unit
#      ranked d1, d2 (either order) would be held by both with VRRP alone (split brain, as
#      with keepalived: each one's master-down timer runs out); the mesh arbitrates: the
#      lower-ranked one is held back while the higher-ranked one is alive and master.
#   C. d3 cut off the mesh (QUIC to d1 and d2 dropped), VRRP still flowing: d1+d2 are the
#      majority. `flotilla drain d2` is committed on the majority side during the cut; healed.
#      The drain is still there afterwards, on all three (d3 caught up), and d2 owns nothing.
#
#   After each change: every VIP held by exactly one director within 3 advert intervals
#   (advert_int is 1 s). Throughout (watcher, ~20 ms samples): no VIP ever without a holder.
#   Throughout (every ~0.3 s, from each director that answers): `config_version` and the
#   placement `epoch` in `flotilla status --json` never go backwards.
#   Prints FIGURE partition_max_double_owner_s A=… B=… C=… (longest stretch with two holders per
#   phase, from the 20 ms samples).
#
# Usage (root): bash tests/lab/flotilla-fleet-partition.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
source tests/lab/lib/fleet.sh
runbook_begin part || exit 1
lab_require curl python3 nft || exit 1
runbook_on_exit 'touch "$st/watch.stop" "$st/raft.stop" 2>/dev/null'

fleet_boot

# drop_from NODE PEER WHAT: NODE's input drops WHAT (quic|vrrp) coming from PEER.
drop_from() {
  local peer; peer=$(lab_addr "$2")
  local rule
  case $3 in
    quic) rule="ip saddr $peer udp dport 7180 drop; ip saddr $peer udp sport 7180 drop" ;;
    vrrp) rule="ip saddr $peer ip protocol vrrp drop" ;;
  esac
  lab_exec "$1" nft -f - <<EOF
table inet flotilla_part {
  chain input { type filter hook input priority 0; policy accept; }
}
EOF
  local r; IFS=';' read -ra rs <<<"$rule"
  for r in "${rs[@]}"; do lab_exec "$1" nft add rule inet flotilla_part input $r || return 1; done
}
cut() { drop_from "$1" "$2" "$3" && drop_from "$2" "$1" "$3"; }
heal() { local d; for d in $DIRECTORS; do lab_exec "$d" nft delete table inet flotilla_part 2>/dev/null; done; return 0; }
runbook_on_exit heal

# Raft monitor: config_version and epoch as each director reports them, every ~0.3 s.
rm -f "$st/raft.stop"
(
  while [[ ! -e $st/raft.stop ]]; do
    for d in $DIRECTORS; do
      v=$(fleet_json "$d" "'%d %d' % (f['config_version'], f['epoch'])") && echo "$(lab_now_ms) $d $v"
    done
    sleep 0.3
  done
) > "$st/raft" &
raft_mon=$!

# settle WHAT: within 3 advert intervals every VIP has exactly one holder, and still has 1 s
# later. A planned move in flight then (rebalancing after a heal) holds its VIPs twice for a
# few tens of ms on purpose (make-before-break: the new owner's VIPs and GARP come before the
# advert that releases the old one); each_once looks twice at such a VIP, and the second look
# may take up to 2 s. The watcher's longest double holder bounds it over the whole phase.
settle() {
  local t0; t0=$(lab_now_ms)
  if wait_for 4 each_once; then sleep 1; wait_for 2 each_once; fi
  if bad=$(each_once); then pass "$1: every VIP held exactly once ($(_lab_seconds $(($(lab_now_ms) - t0))) s after; load $(load))"
  else fail "$1: ownership not settled after $(_lab_seconds $(($(lab_now_ms) - t0))) s: $bad; load $(load)"; fi
}
phase_report() {
  local rep; rep=$(watch_report "$1")
  echo "   $2 — ownership samples: $(head -1 <<<"$rep")"
  [[ $rep == zero=0\ * ]] && pass "$2: no VIP was ever without a holder" || { fail "$2: VIPs without a holder"; tail -n +2 <<<"$rep"; }
  doubles+=("$2=$(sed -n 's/.*max_double_s=\([0-9.]*\).*/\1/p' <<<"$rep")")
}
doubles=()
member_alive() { fleet_json "$1" "next(m['alive'] for m in f['members'] if m['name']=='$2')"; }
leader() { fleet_json "$1" "f['leader']"; }

watch_start 170

say "A. QUIC cut between d1 and d2, VRRP flowing"
t_a=$(lab_now_ms)
before=$(load)
cut d1 d2 quic || fail "cannot install the QUIC cut"
sleep 4
settle "QUIC cut d1–d2"
[[ $(load) == "$before" ]] && pass "nothing moved (load $before)" || echo "   note: load moved from $before to $(load)"
echo "   as the mesh sees it: d1 sees d2 alive: $(member_alive d1 d2); d2 sees d1 alive: $(member_alive d2 d1)"
[[ $(member_alive d3 d1) == True && $(member_alive d3 d2) == True ]] && pass "d3 still sees d1 and d2 alive: nobody confirmed dead" || fail "d3 lost a peer: $(fleet_json d3 "[(m['name'], m['alive']) for m in f['members']]")"
echo "   leaders seen: d1→$(leader d1) d2→$(leader d2) d3→$(leader d3)"
heal
settle "QUIC healed"
phase_report "$t_a" "A"

say "B. VRRP cut between d1 and d2, QUIC flowing"
t_b=$(lab_now_ms)
cut d1 d2 vrrp || fail "cannot install the VRRP cut"
# 5 s: past the master-down interval (3 × 1 s + skew) of every unit ranked d1, d2.
sleep 5
split=""; none=""
for v in $VIPS; do h=$(holders "$v"); [[ -z $h ]] && none+="$v "; [[ $h == *" "* ]] && split+="$v:'$h' "; done
[[ -z $none ]] && pass "VRRP cut d1–d2: every VIP has a holder" || fail "VRRP cut d1–d2: VIPs without a holder: $none"
[[ -z $split ]] && pass "VRRP cut d1–d2: every VIP held exactly once (the mesh held the lower rank back)" \
  || fail "VRRP cut d1–d2: held twice while the cut lasts (split brain): $split"
for d in d1 d2; do
  n=$(grep -c "held back: a higher-ranked director is master too" "$(lab_logfile "$d" flotilla)" 2>/dev/null)
  echo "   $d logged ${n:-0} hold-backs"
done
heal
settle "VRRP healed"
phase_report "$t_b" "B"

say "C. d3 cut off the mesh; a drain committed on the majority side"
t_c=$(lab_now_ms)
cut d3 d1 quic && cut d3 d2 quic || fail "cannot install the cut"
t0=$(lab_now_ms)
until [[ $(member_alive d1 d3) == False && $(member_alive d2 d3) == False ]]; do (($(lab_now_ms) - t0 > 10000)) && break; sleep 0.1; done
[[ $(member_alive d1 d3) == False ]] && pass "the majority sees d3 gone ($(_lab_seconds $(($(lab_now_ms) - t0))) s)" || fail "d1 still sees d3 alive"
sleep 2
settle "d3 off the mesh"
out=$("$FLOTILLA" drain d2 --api-socket "$st/d1.sock" 2>&1); rc=$?
echo "   $out"
((rc == 0)) && pass "drain d2 committed on the majority side (via d1)" || fail "drain d2 during the partition: rc $rc"
out3=$("$FLOTILLA" drain d1 --api-socket "$st/d3.sock" 2>&1); rc3=$?
((rc3 != 0)) && pass "the minority (d3) commits nothing: $out3" || fail "d3 committed a drain without quorum: $out3"
t0=$(lab_now_ms)
until [[ $(load) == *"d2=0 "* ]]; do (($(lab_now_ms) - t0 > 10000)) && break; sleep 0.1; done
settle "d2 drained during the partition"
ver_major=$(fleet_json d1 "'%d %d' % (f['config_version'], f['epoch'])")
heal
t0=$(lab_now_ms)
back() { [[ $(member_alive d1 d3) == True && $(member_alive d3 d1) == True && $(fleet_json d3 "f['epoch']") == $(fleet_json d1 "f['epoch']") ]]; }
wait_for 20 back && pass "d3 back in the mesh, at the majority's epoch ($(_lab_seconds $(($(lab_now_ms) - t0))) s)" || fail "d3 not caught up: d3 $(fleet_json d3 "f['epoch']"), d1 $(fleet_json d1 "f['epoch']")"
sleep 2
settle "healed after C"
n=0; for d in $DIRECTORS; do [[ $(fleet_json "$d" "next(m['drained'] for m in f['members'] if m['name']=='d2')") == True ]] && n=$((n + 1)); done
((n == 3)) && pass "the drain of d2 survived the partition: drained on all three directors" || fail "d2 drained on only $n directors"
[[ $(load) == *"d2=0 "* ]] && pass "d2 owns nothing after healing" || fail "d2 holds VIPs after healing: $(load)"
ver_after=$(fleet_json d3 "'%d %d' % (f['config_version'], f['epoch'])")
echo "   config_version epoch: majority during the cut $ver_major, d3 after healing $ver_after"
phase_report "$t_c" "C"
"$FLOTILLA" undrain d2 --api-socket "$st/d3.sock" | sed 's/^/   /'

watch_stop
touch "$st/raft.stop"; wait "$raft_mon"
say "Raft state never went backwards"
back_moves=$(awk '{ key=$2; if (key in cv && ($3 < cv[key] || $4 < ep[key])) print $1, $2, cv[key] "/" ep[key], "→", $3 "/" $4; cv[key]=$3; ep[key]=$4 }' "$st/raft")
lines=$(wc -l < "$st/raft")
[[ -z $back_moves && $lines -gt 30 ]] && pass "config_version and epoch never went backwards on any director ($lines readings)" \
  || fail "Raft state went backwards ($lines readings): $back_moves"
echo "FIGURE partition_max_double_owner_s ${doubles[*]}"

for d in $DIRECTORS; do lab_kill "$d" flotilla TERM; done
[[ -n ${FLEET_KEEP:-} ]] && rm -rf "$FLEET_KEEP" && cp -r "$st" "$FLEET_KEEP"
runbook_end
