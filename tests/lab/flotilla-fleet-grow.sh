#!/bin/bash
# Runbook: a fleet grows from 3 to 6 directors and shrinks to 5 at runtime, with
# `flotilla config apply`, and no running director restarted (cluster-configs/lab.conf:
# 16 VIPs in 10 units; hold-down shortened to 3 s).
#
#     1. d1–d3 start from a 3-director file: every VIP held exactly once.
#     2. `flotilla config apply` of the same file with d4–d6 added (their certificates issued
#        with `flotilla cert issue`), while the client requests every VIP: d1–d3 keep running
#        (same processes, no unit restarted: their unicast peers change in place); d4–d6,
#        not running yet, are Raft learners, not voters.
#     3. d4–d6 start: they join the mesh and Raft (5 voters + 1 learner, as
#        `flotilla status` prints: a director added before it runs stays a learner, and is
#        promoted only once it answers and has caught up), get units after their hold-down, the load is balanced and
#        every VIP held exactly once; no request unanswered (resets in flight counted apart).
#        The time from the apply to the
#        first unit on a new director is measured.
#     4. The learner and a voter (not the leader) are killed and unplugged: their VIPs are
#        taken by survivors; the next assignment gives them nothing. Both come back and get
#        units again after their hold-down.
#     5. A file without d6 is applied while d6 runs: d6 leaves Raft, owns and holds nothing,
#        is never declared dead, no request unanswered. It gives the
#        leader 2 s to place its units elsewhere, then releases them (make-before-break).
#     6. Once d6 has left the mesh, the file with d6 is applied again while d6 still runs (never restarted): d6 is a
#        Raft member again, takes units after its hold-down, every VIP held exactly once, no
#        request unanswered.
#
# Usage (root): bash tests/lab/flotilla-fleet-grow.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
source tests/lab/lib/fleet.sh
runbook_begin grw || exit 1
lab_require curl python3 || exit 1

lab_up 6 || exit 1
st=$(lab_state_dir)
# The build is shared with other work: run this test's binary from a copy of its own.
cp "$FLOTILLA" "$st/flotilla" && FLOTILLA=$st/flotilla
DIRECTORS="d1 d2 d3 d4 d5 d6"
"$FLOTILLA" cert init --dir "$st/pki" >/dev/null || { fail "cert init"; runbook_end; }
for d in d1 d2 d3; do "$FLOTILLA" cert issue --ca "$st/pki" --name "$d" >/dev/null || fail "cert issue $d"; done

# conf N: cluster-configs/lab.conf with directors d1..dN (N = 3, 6; "5": d1..d5).
conf() {
  python3 - "$1" "$st" cluster-configs/lab.conf > "$st/lab$1.conf" <<'PY'
import re, sys
n, st, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
text = open(path).read()
dirs = "".join(f"    director d{i} {{ address 10.99.0.{i} }}\n" for i in range(1, n + 1))
text = re.sub(r"(    director d\d \{[^}]*\}\n)+", dirs, text)
text = text.replace("/var/lib/flotilla/lab/pki/ca.pem", f"{st}/pki/ca.pem").replace("dir /var/lib/flotilla/lab/pki", f"dir {st}/pki")
sys.stdout.write(text.replace("hold_down 30s", "hold_down 3s"))
PY
}
for n in 3 5 6; do conf "$n" || fail "config of $n directors"; done
VIPS=$(grep -oE '10\.99\.0\.1[0-9]{2}/24' "$st/lab3.conf" | cut -d/ -f1 | cut -d. -f4 | sort -u | tr '\n' ' ')
start() { lab_spawn "$1" flotilla "$FLOTILLA" agent --config "$st/lab$2.conf" --name "$1" \
  --state-dir "$st/state-$1" --api-socket "$st/$1.sock"; }
# Units each director owns in the committed assignment, as d1 reports it.
owned() { fleet_json "${1:-d1}" "' '.join(f\"{m['name']}={m['owns']}\" for m in f['members'])"; }
seats() { fleet_json "${1:-d1}" "' '.join(f\"{m['name']}:{'leader' if m['leader'] else m['raft']}\" for m in f['members'])"; }
raft() { fleet_json "${1:-d1}" "' '.join(f['raft_voters']) + ' / ' + ' '.join(f['raft_learners'])"; }
# Six directors on two cores: read each director's addresses once per check (one `ip` per
# director), not once per VIP as tests/lab/lib/fleet.sh does for three.
declare -A ADDRS
snap() { local d; for d in $DIRECTORS; do ADDRS[$d]=" $(ip -n "$(lab_ns "$d")" -br -4 addr show dev eth0 2>/dev/null) "; done; }
_held() { [[ ${ADDRS[$1]} == *" 10.99.0.$2/"* ]]; }
_holders() { local d out=""; for d in $DIRECTORS; do _held "$d" "$1" && out+="$d "; done; echo "${out% }"; }
holders() { snap; _holders "$1"; }
# As tests/lab/lib/fleet.sh's each_once (a VIP with two holders or none is looked at again
# 0.3 s later: a planned move holds its VIPs twice for tens of ms on purpose), on snapshots.
each_once() {
  local v h; snap
  for v in $VIPS; do
    h=$(_holders "$v"); [[ $h == d? ]] && continue
    sleep 0.3; snap; h=$(_holders "$v"); [[ $h == d? ]] || { echo "$v:'$h'"; return 1; }
  done
}
load() { local d v n; snap; for d in $DIRECTORS; do n=0; for v in $VIPS; do _held "$d" "$v" && n=$((n + 1)); done; printf '%s=%s ' "$d" "$n"; done; }
holds_any() { local v out; out=" $(ip -n "$(lab_ns "$1")" -br -4 addr show dev eth0 2>/dev/null) "
  for v in $VIPS; do [[ $out == *" 10.99.0.$v/"* ]] && return 0; done; return 1; }
# wait_status SECS CMD: wait_for for checks that ask `flotilla status` (a python3 each): every
# 0.5 s, not every 0.1 s, so the checks do not starve the agents of CPU.
wait_status() {
  local limit=$(($1 * 1000)) t0; shift
  t0=$(lab_now_ms)
  until "$@" >/dev/null 2>&1; do (($(lab_now_ms) - t0 > limit)) && return 1; sleep 0.5; done
}
agents_cpu() { local d p out=""; for d in $DIRECTORS; do p=$(lab_pid "$d" flotilla) && lab_alive "$d" flotilla && out+="$d=$(ps -o pcpu= -p "$p" | tr -d ' ')% "; done; echo "$out"; }
# A request in flight on a VIP whose unit moves can be reset (curl 52/56: the TCP connection
# is with the director's own responder, nothing replicates it on the host tier): counted and
# reported. Any other failure (timeout, refused) is a VIP nobody answered: none allowed —
# planned moves are make-before-break.
few_failed() { local ok=$1 bad=$2; ((ok > 0 && bad == 0)); }
count_failed() { grep FAILED "$st/replies" | grep -vcE "$CUT_IN_FLIGHT"; }
count_reset() { grep FAILED "$st/replies" | grep -cE "$CUT_IN_FLIGHT"; }
count_ok() { grep -c '^ok$' "$st/replies"; }

say "HTTP on every director; d1–d3 start from a file of 3 directors"
for d in $DIRECTORS; do
  mkdir -p "$st/www-$d" && echo "$d" > "$st/www-$d/index.html"
  lab_spawn "$d" http python3 -m http.server 80 --bind 0.0.0.0 --directory "$st/www-$d"
done
for d in d1 d2 d3; do start "$d" 3; done

say "1. Three directors"
t0=$(lab_now_ms)
wait_for 30 each_once
sleep 1
each_once >/dev/null && pass "all $(wc -w <<<"$VIPS") VIPs held exactly once ($(_lab_seconds $(($(lab_now_ms) - t0))) s)" || fail "ownership: $(each_once)"
echo "   VIPs per director: $(load)"
echo "   MACs: $(for d in $DIRECTORS; do printf "%s=%s " "$d" "$(lab_mac "$d")"; done)"
pids_before=$(for d in d1 d2 d3; do lab_pid "$d" flotilla; done | tr '\n' ' ')

say "2. config apply: d4–d6 added, under traffic"
for d in d4 d5 d6; do "$FLOTILLA" cert issue --ca "$st/pki" --name "$d" >/dev/null || fail "cert issue $d"; done
traffic_start 90
sleep 1
t_apply=$(lab_now_ms)
"$FLOTILLA" config apply "$st/lab6.conf" --api-socket "$st/d2.sock" | sed 's/^/   /'
members_six() { [[ $(fleet_json d1 "len(f['members'])") == 6 && $(fleet_json d3 "len(f['members'])") == 6 ]]; }
wait_status 10 members_six && pass "d1 and d3 list 6 directors ($(_lab_seconds $(($(lab_now_ms) - t_apply))) s after the apply)" || fail "members after the apply: $(fleet_json d1 "len(f['members'])")"
sleep 1
pids_after=$(for d in d1 d2 d3; do lab_pid "$d" flotilla; done | tr '\n' ' ')
alive=0; for d in d1 d2 d3; do lab_alive "$d" flotilla && alive=$((alive + 1)); done
[[ $pids_after == "$pids_before" ]] && ((alive == 3)) && pass "d1–d3 still the same processes ($pids_after)" || fail "d1–d3 restarted or died: $pids_before -> $pids_after ($alive alive)"
restarted=$(grep -h -c "new or changed; starting" "$(lab_logfile d1 flotilla)" "$(lab_logfile d2 flotilla)" "$(lab_logfile d3 flotilla)" | awk '{s += $1} END {print s + 0}')
inplace=$(grep -h "unicast peers updated in place" "$(lab_logfile d1 flotilla)" | tail -1 | grep -oE 'units=[0-9]+')
((restarted == 0)) && pass "no unit restarted on d1–d3 (d1: $inplace updated in place)" || fail "$restarted units restarted on d1–d3"
echo "   $("$FLOTILLA" status --api-socket "$st/d1.sock" | sed -n 3p)"

# Added but not running: learners, and they stay learners (the leader re-checks every second;
# a voter that is not running would count toward quorum and could cost it).
sleep 2
[[ $(raft) == "d1 d2 d3 / d4 d5 d6" && $(raft d3) == "d1 d2 d3 / d4 d5 d6" ]] && pass "Raft: d4–d6, added but not running, are learners ($(raft))" || fail "Raft membership before d4–d6 run: $(raft)"

say "3. d4–d6 start and join"
t_start=$(lab_now_ms)
for d in d4 d5 d6; do start "$d" 6; done
all_up() { [[ $(fleet_json d1 "sum(m['alive'] for m in f['members'])") == 6 ]]; }
wait_status 20 all_up && pass "d1 sees all 6 directors up ($(_lab_seconds $(($(lab_now_ms) - t_start))) s after d4–d6 started)" || fail "up: $(fleet_json d1 "[m['name'] for m in f['members'] if not m['alive']]")"
five_one() { [[ $(fleet_json d1 "f'{len(f[\"raft_voters\"])}+{len(f[\"raft_learners\"])}'") == 5+1 ]]; }
wait_status 15 five_one && pass "Raft: 5 voters + 1 learner ($(raft))" || fail "Raft membership: $(raft)"
first_unit() { local d; for d in d4 d5 d6; do holds_any "$d" && return 0; done; return 1; }
wait_for 30 first_unit
t_first=$(lab_now_ms)
new_owned() { local d; for d in d4 d5 d6; do holds_any "$d" || return 1; done; }
balanced() { local l; l=$(load); new_owned && (($(spread "$l") <= 3)) && each_once; }
wait_for 40 balanced
t_bal=$(lab_now_ms)
sleep 1
l=$(load)
echo "   VIPs per director: $l"
echo "   units owned (d1's status): $(owned)"
echo "   first VIP on a new director $(_lab_seconds $((t_first - t_apply))) s after the apply ($(_lab_seconds $((t_first - t_start))) s after d4–d6 started; hold-down 3 s); all three hold VIPs and balanced $(_lab_seconds $((t_bal - t_start))) s after they started"
echo "FIGURE grow_first_unit_after_apply_s=$(_lab_seconds $((t_first - t_apply))) grow_first_unit_after_start_s=$(_lab_seconds $((t_first - t_start))) grow_balanced_after_start_s=$(_lab_seconds $((t_bal - t_start)))"
new_owned && pass "d4, d5 and d6 each hold VIPs" || fail "a new director holds nothing: $l"
(($(spread "$l") <= 3)) && pass "balanced: max − min = $(spread "$l") ≤ 3 (largest unit)" || fail "unbalanced: $l"
each_once >/dev/null && pass "every VIP held by exactly one of 6 directors" || fail "ownership: $(each_once)"
"$FLOTILLA" status --api-socket "$st/d4.sock" | sed -n '1,12p' | sed 's/^/   /'
traffic_stop
ok=$(count_ok); bad=$(count_failed)
echo "FIGURE grow_requests=$ok grow_unanswered=$bad grow_reset=$(count_reset)"
few_failed "$ok" "$bad" && pass "while growing: $ok requests answered, none unanswered ($(count_reset) reset or cut in flight)" || fail "while growing: $bad of $((ok + bad)) unanswered: $(grep FAILED "$st/replies" | grep -vE "$CUT_IN_FLIGHT" | head -5 | tr '\n' ';')"
grep FAILED "$st/replies" | head -5 | sed 's/^/   /'

say "4. The learner and a voter crash"
learner=$(fleet_json d1 "f['raft_learners'][0]")
# A voter that is not the leader, owning units if one does.
voter=$(fleet_json d1 "sorted((m['owns'] == 0, m['name']) for m in f['members'] if m['raft'] == 'voter' and not m['leader'])[0][1]")
echo "   seats: $(seats)"
echo "   killing the learner $learner and the voter $voter"
victims="$learner $voter"
snap
mine=$(for v in $VIPS; do h=$(_holders "$v"); [[ " $victims " == *" $h "* ]] && echo "$v"; done | tr '\n' ' ')
echo "   they hold: $mine"
t0=$(lab_now_ms)
for d in $victims; do lab_kill "$d" flotilla KILL; lab_exec "$d" ip link set eth0 down; done
survivors=$(tr ' ' '\n' <<<"$DIRECTORS" | grep -vxF -e "$learner" -e "$voter" | tr '\n' ' ')
taken() { local v d ok; snap; for v in $mine; do ok=1; for d in $survivors; do _held "$d" "$v" && ok=0; done; ((ok == 0)) || return 1; done; }
until taken; do (($(lab_now_ms) - t0 > 10000)) && break; sleep 0.01; done
took=$(_lab_seconds $(($(lab_now_ms) - t0)))
taken && pass "every VIP of $learner and $voter held by a survivor ${took} s after the crash" || fail "not all taken over: $mine"
echo "FIGURE grow_two_crash_takeover_s=$took"
watcher=$(awk '{print $1}' <<<"$survivors")
nothing_on_victims() { [[ $(fleet_json "$watcher" "sum(m['owns'] for m in f['members'] if m['name'] in '$victims'.split())") == 0 ]]; }
wait_status 15 nothing_on_victims && pass "the next assignment gives the dead nothing: $(owned "$watcher")" || fail "assignment after the crash: $(owned "$watcher")"
DIRECTORS=$survivors
each_once >/dev/null && pass "every VIP held by exactly one survivor" || fail "ownership among survivors: $(each_once)"
DIRECTORS="d1 d2 d3 d4 d5 d6"
for d in $victims; do
  for v in $VIPS; do lab_exec "$d" ip addr del "10.99.0.$v/24" dev eth0 2>/dev/null; done
  lab_exec "$d" ip link set eth0 up
  start "$d" 6
done
wait_status 20 all_up || fail "$victims not back up"
back() { each_once && (($(fleet_json "$watcher" "min(m['owns'] for m in f['members'] if m['name'] in '$victims'.split())") > 0)); }
t0=$(lab_now_ms)
wait_status 30 back && pass "both back and owning units again after their hold-down ($(_lab_seconds $(($(lab_now_ms) - t0))) s): $(owned "$watcher")" || fail "after the restart: $(owned "$watcher") / $(load)"

say "5. d6 removed from the configuration while it runs"
sleep 1
traffic_start 60
sleep 1
# d6 declared dead (DEAD) or only suspected (SUSPECTED) by d1–d5 since the apply. A suspicion
# is acted on by nobody; a death makes the next in rank take d6's units at once.
d6_judged() { cat "$st"/logs/d[1-5].flotilla.log | awk -v t="$since" '$1 >= t' | grep -c "director $1.*director=d6"; }
echo "   agents' CPU (average since start): $(agents_cpu)"
t_rm=$(lab_now_ms); since=$(date -u +%Y-%m-%dT%H:%M:%S.%6N)
"$FLOTILLA" config apply "$st/lab5.conf" --api-socket "$st/d1.sock" | sed 's/^/   /'
out_of_raft() { [[ $(raft) != *d6* && $(raft d2) != *d6* ]]; }
wait_status 15 out_of_raft && pass "d6 left Raft ($(_lab_seconds $(($(lab_now_ms) - t_rm))) s after the apply): voters / learners: $(raft)" || fail "Raft membership still has d6: $(raft)"
d6_empty() { ! holds_any d6 && [[ $(fleet_json d1 "sum(1 for u in f['units'] if 'd6' in u['ranks'])") == 0 ]]; }
wait_status 15 d6_empty && pass "d6 holds no VIP and no unit ranks it ($(_lab_seconds $(($(lab_now_ms) - t_rm))) s)" || fail "d6 still holds or is ranked: $(load)"
DIRECTORS="d1 d2 d3 d4 d5"
wait_for 10 each_once
sleep 2
each_once >/dev/null && pass "every VIP held by exactly one of d1–d5: $(load)" || fail "ownership: $(each_once)"
traffic_stop
lab_alive d6 flotilla && pass "d6 is still running (pid $(lab_pid d6 flotilla))" || fail "d6 died"
after_dead=$(d6_judged "confirmed dead")
echo "   d6 suspected (missed heartbeats, not acted on) $(d6_judged suspected) time(s) since the apply"
((after_dead == 0)) && pass "no director declared d6 dead as it left" || fail "d6 declared dead $after_dead times since the apply: $(cat "$st"/logs/d[1-5].flotilla.log | awk -v t="$since" '$1 >= t' | grep "director=d6" | grep -i "suspected\|dead" | tail -3)"
others=$(cat "$st"/logs/d[1-5].flotilla.log | grep -c "director confirmed dead")
echo "   (deaths declared over the whole run, d1–d5, false ones included: $others; the host's load: $(cut -d' ' -f1-3 /proc/loadavg))"
[[ $(fleet_json d1 "len(f['members'])") == 5 ]] && pass "d1 lists 5 directors" || fail "d1 lists $(fleet_json d1 "len(f['members'])")"
ok=$(count_ok); bad=$(count_failed)
echo "FIGURE shrink_requests=$ok shrink_unanswered=$bad shrink_reset=$(count_reset)"
few_failed "$ok" "$bad" && pass "while d6 left: $ok requests answered, none unanswered ($(count_reset) reset or cut in flight)" || fail "while d6 left: $bad of $((ok + bad)) unanswered: $(grep FAILED "$st/replies" | grep -vE "$CUT_IN_FLIGHT" | head -5 | tr '\n' ';')"
grep FAILED "$st/replies" | head -5 | sed 's/^/   /'
"$FLOTILLA" status --api-socket "$st/d1.sock" | sed -n '1,12p' | sed 's/^/   /'
grep -h "releasing every unit\|mesh peer removed" "$(lab_logfile d6 flotilla)" | tail -3 | cut -c1-200 | sed 's/^/   d6: /'

say "6. d6 added back while it still runs"
# Once Raft has let it go (or LEAVE_GRACE, 10 s, has passed without its hearing so), d6
# leaves the mesh: added back only after that, as an operator would.
left_mesh() { grep -q "leaving the mesh" "$(lab_logfile d6 flotilla)"; }
wait_for 20 left_mesh && pass "d6 left the mesh ($(_lab_seconds $(($(lab_now_ms) - t_rm))) s after its removal)" || fail "d6 never left the mesh"
pid6=$(lab_pid d6 flotilla)
traffic_start 60
sleep 1
t_add=$(lab_now_ms)
"$FLOTILLA" config apply "$st/lab6.conf" --api-socket "$st/d2.sock" | sed 's/^/   /'
# d6 has the configuration that lists it again (6 directors in its own status), and Raft has it.
in_raft() { [[ $(fleet_json d6 "len(f['members'])") == 6 && $(raft) == *d6* && $(raft d2) == *d6* ]]; }
wait_status 20 in_raft; rc=$?; t_raft=$(lab_now_ms)
((rc == 0)) && pass "d6 is a Raft member again ($(_lab_seconds $((t_raft - t_add))) s after the apply): voters / learners: $(raft)" || fail "d6 not back in Raft: d1: $(raft) / d6: $(raft d6)"
DIRECTORS="d1 d2 d3 d4 d5 d6"
d6_units() { holds_any d6 && each_once; }
wait_for 40 d6_units
t_units=$(lab_now_ms)
d6_units >/dev/null && pass "d6 holds VIPs again ($(_lab_seconds $((t_units - t_add))) s after the apply; hold-down 3 s) and every VIP is held once: $(load)" || fail "d6 holds nothing or ownership broken: $(load) $(each_once)"
echo "FIGURE readd_in_raft_s=$(_lab_seconds $((t_raft - t_add))) readd_first_unit_after_apply_s=$(_lab_seconds $((t_units - t_add)))"
[[ $(lab_pid d6 flotilla) == "$pid6" ]] && lab_alive d6 flotilla && pass "d6 is the same process (pid $pid6): not restarted" || fail "d6 restarted or died: $pid6 -> $(lab_pid d6 flotilla)"
sleep 2
traffic_stop
ok=$(count_ok); bad=$(count_failed)
echo "FIGURE readd_requests=$ok readd_unanswered=$bad readd_reset=$(count_reset)"
few_failed "$ok" "$bad" && pass "while d6 came back: $ok requests answered, none unanswered ($(count_reset) reset or cut in flight)" || fail "while d6 came back: $bad of $((ok + bad)) unanswered: $(grep FAILED "$st/replies" | grep -vE "$CUT_IN_FLIGHT" | head -5 | tr '\n' ';')"
"$FLOTILLA" status --api-socket "$st/d6.sock" | sed -n '1,12p' | sed 's/^/   /'

for d in d1 d2 d3 d4 d5 d6; do lab_kill "$d" flotilla TERM; done
[[ -n ${GRW_KEEP_LOGS:-} ]] && cp -r "$st/logs" "$GRW_KEEP_LOGS"
runbook_end
