#!/bin/bash
# Runbook: what an operator sees — the agents' /metrics, /api/status and the live fleet page,
# read by Prometheus-style scraping and by a real browser (headless Chromium).
#
#   Three directors from cluster-configs/lab.conf (as flotilla-fleet.sh), each with
#   `--listen 0.0.0.0:9180` inside its namespace and `--ipvs memory` (no IPVS in this kernel).
#     1. /metrics on d1 parses as Prometheus text (every sample under a declared family, no
#        duplicate series) and has the VRRP, LVS and unknown-VRID families; every instance d1
#        masters is flotilla_vrrp_state{state="master"} 1. The real HTTP checkers against b1
#        and b2 have probe-duration samples above 0 and passing probes counted; IPVS (the
#        in-memory table here) is up with per-service and per-destination counters; the
#        takeover families are present.
#     2. /api/status is the same JSON `flotilla status --json` prints.
#     3. Chromium renders the page: one column per director, every unit under its owner; a
#        screenshot goes to target/lab-artifacts/fleet-page.png.
#     4. d2 crashes: the page (reloaded by its own 1 s timer) shows d2 down and its units under
#        the survivors.
#     5. A planned move (`flotilla move UNIT --to d1`, a unit d3 owns) counts one planned
#        takeover of that unit on d1; across d2's crash (scraped just before and 3 s after)
#        the survivors counted one failover takeover per unit d2 owned, each with a failover
#        duration (last heartbeat → VIPs up) under 3 s. The scrapes are kept in
#        target/lab-artifacts/metrics-*.txt.
#
# Usage (root): bash tests/lab/flotilla-web.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lab/lib/runbook.sh
runbook_begin web || exit 1
lab_require curl python3 chromium || exit 1

lab_up 3 || exit 1
st=$(lab_state_dir)
art=$PWD/target/lab-artifacts; mkdir -p "$art"
"$FLOTILLA" cert init --dir "$st/pki" >/dev/null
for d in d1 d2 d3; do "$FLOTILLA" cert issue --ca "$st/pki" --name "$d" >/dev/null; done
sed -e "s#/var/lib/flotilla/lab/pki/ca.pem#$st/pki/ca.pem#" -e "s#dir /var/lib/flotilla/lab/pki#dir $st/pki#" \
    cluster-configs/lab.conf > "$st/lab.conf"
for d in b1 b2; do
  mkdir -p "$st/www-$d" && echo "$d" > "$st/www-$d/index.html"
  lab_spawn "$d" http python3 -m http.server 80 --bind 0.0.0.0 --directory "$st/www-$d"
done
for d in d1 d2 d3; do
  lab_spawn "$d" flotilla "$FLOTILLA" agent --config "$st/lab.conf" --name "$d" --state-dir "$st/state-$d" \
    --api-socket "$st/$d.sock" --ipvs memory --listen 0.0.0.0:9180
done
t0=$(lab_now_ms)
until "$FLOTILLA" status --json --api-socket "$st/d1.sock" 2>/dev/null | grep -q '"epoch": [1-9]'; do
  (($(lab_now_ms) - t0 > 20000)) && { fail "no placement after 20 s"; runbook_end; }; sleep 0.3
done
sleep 3

say "1. /metrics"
lab_exec d1 curl -s -m 2 http://127.0.0.1:9180/metrics > "$st/metrics"
cp "$st/metrics" "$art/metrics-d1.txt"
echo "   $(wc -l < "$st/metrics") lines; e.g.:"; grep -m3 '^flotilla_vrrp_state' "$st/metrics" | sed 's/^/     /'
if python3 - "$st/metrics" "$("$FLOTILLA" status --json --api-socket "$st/d1.sock")" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
status = json.loads(sys.argv[2])
families, series, current = {}, set(), None
values = {}
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+]+|NaN|\+Inf|-Inf)$')
for line in text.splitlines():
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ", 3)
        assert name not in families, f"family {name} declared twice"
        families[name] = kind; current = name
    elif line.startswith("#") or not line:
        continue
    else:
        m = sample.match(line)
        assert m, f"not a sample: {line!r}"
        own = m.group(1) == current or (families.get(current) == "histogram"
              and m.group(1) in (current + "_bucket", current + "_sum", current + "_count"))
        assert own, f"{m.group(1)} outside its family"
        assert line.rsplit(" ", 1)[0] not in series, f"duplicate series {line}"
        series.add(line.rsplit(" ", 1)[0])
        values[line.rsplit(" ", 1)[0]] = float(m.group(4))
for want in ["flotilla_vrrp_state", "flotilla_vrrp_transitions_total", "flotilla_vrrp_adverts_sent_total",
             "flotilla_vrrp_dropped_total", "flotilla_lvs_real_server_up", "flotilla_lvs_quorum_up",
             "flotilla_vrrp_unknown_vrid_adverts_total", "flotilla_fleet_placement_epoch",
             "flotilla_fleet_raft_term", "flotilla_fleet_director_up"]:
    assert want in families, f"no {want}"
assert families["flotilla_vrrp_transitions_total"] == "counter"
for i in status["instances"]:
    want = "1" if i["state"] == "MASTER" else "0"
    line = f'flotilla_vrrp_state{{instance="{i["name"]}",state="master"}} {want}'
    assert line in text, line
up = [l for l in text.splitlines() if l.startswith("flotilla_lvs_real_server_up")]
assert len(up) == 2 and all(l.endswith(" 1") for l in up), up
for want, kind in [("flotilla_checker_duration_seconds", "histogram"), ("flotilla_checker_probes_total", "counter"),
                   ("flotilla_unit_takeovers_total", "counter"), ("flotilla_failover_duration_seconds", "histogram"),
                   ("flotilla_ipvs_up", "gauge"), ("flotilla_ipvs_service_connections_total", "counter"),
                   ("flotilla_ipvs_service_packets_total", "counter"), ("flotilla_ipvs_service_bytes_total", "counter"),
                   ("flotilla_ipvs_service_connections_per_second", "gauge"),
                   ("flotilla_ipvs_destination_connections_total", "counter"),
                   ("flotilla_ipvs_destination_bytes_per_second", "gauge"),
                   ("flotilla_ipvs_destination_connections", "gauge")]:
    assert families.get(want) == kind, f"{want}: {families.get(want)}"
for rs in ["10.99.0.11:80", "10.99.0.12:80"]:
    lab = f'virtual_server="group lab_web",real_server="{rs}",checker="HTTP_GET"'
    n, total = values[f"flotilla_checker_duration_seconds_count{{{lab}}}"], values[f"flotilla_checker_duration_seconds_sum{{{lab}}}"]
    passed = values[f'flotilla_checker_probes_total{{{lab},result="pass"}}']
    assert n >= 1 and total > 0 and passed >= 1, (rs, n, total, passed)
    print(f"   {rs}: {int(n)} probes, mean {1000 * total / n:.2f} ms, {int(passed)} passed")
assert values["flotilla_ipvs_up"] == 1
svc = [k for k in values if k.startswith("flotilla_ipvs_service_connections_total{")]
dst = [k for k in values if k.startswith("flotilla_ipvs_destination_connections_total{")]
assert len(svc) == 14 and len(dst) == 28, (len(svc), len(dst))
print(f"   IPVS: {len(svc)} services, {len(dst)} destinations with counters; e.g. {svc[0]} {values[svc[0]]:g}")
print(f"   {len(families)} families, {len(series)} series")
PY
then pass "/metrics is well-formed Prometheus text with the VRRP and LVS families, consistent with status"
else fail "/metrics malformed or inconsistent"; fi

say "2. /api/status"
web=$(lab_exec d1 curl -s -m 2 http://127.0.0.1:9180/api/status | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['mode'], s['fleet']['director'], len(s['instances']))")
cli=$("$FLOTILLA" status --json --api-socket "$st/d1.sock" | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['mode'], s['fleet']['director'], len(s['instances']))")
[[ -n $web && $web == "$cli" ]] && pass "/api/status answers what flotilla status --json does ($web)" || fail "/api/status '$web' vs CLI '$cli'"

page() { # FILE: the DOM after the page's scripts ran; also a screenshot with --shot
  lab_exec d1 chromium --headless=new --no-sandbox --disable-gpu --no-first-run --user-data-dir="$st/chromium" \
    --virtual-time-budget=4000 ${2:+--screenshot="$2" --window-size=1400,1000} --dump-dom http://127.0.0.1:9180/ 2>/dev/null > "$1"
}
say "3. The page in Chromium"
page "$st/dom1.html" "$art/fleet-page.png"
[[ -s $art/fleet-page.png ]] && pass "screenshot: $art/fleet-page.png ($(stat -c %s "$art/fleet-page.png") bytes)" || fail "no screenshot"
if python3 - "$st/dom1.html" "$("$FLOTILLA" status --json --api-socket "$st/d1.sock")" <<'PY'
import json, re, sys
dom = open(sys.argv[1]).read()
fleet = json.loads(sys.argv[2])["fleet"]
# The rendered elements, not the script's template text (which names ${…}).
cols = re.findall(r'data-director="(d\d)" data-alive="(true|false)"', dom)
assert sorted(c for c, _ in cols) == ["d1", "d2", "d3"], cols
placed = dict(re.findall(r'data-unit="([^"$]+)" data-owner="([^"$]+)"', dom))
want = {u["name"]: u["owner"] for u in fleet["units"]}
assert placed == want, (placed, want)
print(f"   {len(cols)} director columns, {len(placed)} units under their owners")
PY
then pass "the page shows every director as a column and every unit under its owner"
else fail "the page does not match the placement (DOM in $st/dom1.html)"; fi

say "4. d2 crashes; the page follows"
scrape() { lab_exec "$1" curl -s -m 2 http://127.0.0.1:9180/metrics; }
d2_units=$(python3 -c "import json,sys; f=json.loads(sys.argv[1])['fleet']; print(sum(u['owner'] == 'd2' for u in f['units']))" \
  "$("$FLOTILLA" status --json --api-socket "$st/d1.sock")")
# The survivors' counters around the crash (a host stall elsewhere in the run can make the mesh
# confirm a false death, which is counted as the failover it caused).
for d in d1 d3; do scrape "$d" > "$st/$d.before-crash"; done
lab_kill d2 flotilla KILL; lab_exec d2 ip link set eth0 down
sleep 3
for d in d1 d3; do scrape "$d" > "$st/$d.after-crash"; cp "$st/$d.after-crash" "$art/metrics-$d-after-crash.txt"; done
page "$st/dom2.html" "$art/fleet-page-after-crash.png"
if python3 - "$st/dom2.html" <<'PY'
import re, sys
dom = open(sys.argv[1]).read()
alive = dict(re.findall(r'data-director="(d\d)" data-alive="(true|false)"', dom))
assert alive.get("d2") == "false", alive
owners = set(re.findall(r'data-owner="([^"$]+)"', dom))
assert "d2" not in owners and owners <= {"d1", "d3"}, owners
print(f"   d2 shown down; units now under {sorted(owners)}")
PY
then pass "after the crash the page shows d2 down and its units on the survivors ($art/fleet-page-after-crash.png)"
else fail "the page did not follow the crash (DOM in $st/dom2.html)"; fi

say "5. Takeovers and failover durations"
metric() { # DIRECTOR SERIES: its value in DIRECTOR's /metrics (0 if absent)
  scrape "$1" | awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }'
}
d3_unit=$(python3 -c "import json,sys; f=json.loads(sys.argv[1])['fleet']; print(next(u['name'] for u in f['units'] if u['owner'] == 'd3'))" \
  "$("$FLOTILLA" status --json --api-socket "$st/d1.sock")")
before=$(metric d1 "flotilla_unit_takeovers_total{unit=\"$d3_unit\",kind=\"planned\"}")
"$FLOTILLA" move "$d3_unit" --to d1 --api-socket "$st/d1.sock" | sed 's/^/   /'
t0=$(lab_now_ms); after=$before
while ((after == before)) && (($(lab_now_ms) - t0 < 10000)); do
  sleep 0.3; after=$(metric d1 "flotilla_unit_takeovers_total{unit=\"$d3_unit\",kind=\"planned\"}")
done
((after == before + 1)) && pass "moving $d3_unit from d3 to d1 counted one planned takeover on d1 ($before -> $after)" \
  || fail "planned takeovers of $d3_unit on d1: $before -> $after"
if python3 - "$d2_units" "$st"/d1.before-crash "$st"/d1.after-crash "$st"/d3.before-crash "$st"/d3.after-crash <<'PY'
import re, sys
want = int(sys.argv[1])
def read(path):
    v = {}
    for line in open(path):
        if not line.startswith("#") and " " in line:
            k, x = line.rsplit(" ", 1)
            v[k] = float(x)
    return v
took = n = total = 0
for d, before, after in [("d1", sys.argv[2], sys.argv[3]), ("d3", sys.argv[4], sys.argv[5])]:
    b, a = read(before), read(after)
    delta = lambda k: a.get(k, 0) - b.get(k, 0)
    units = {k: delta(k) for k in a if re.match(r'flotilla_unit_takeovers_total\{.*kind="failover"', k) and delta(k)}
    took += sum(units.values())
    for k in a:
        if re.match(r'flotilla_failover_duration_seconds_count\{.*kind="failover"', k):
            n += delta(k)
        if re.match(r'flotilla_failover_duration_seconds_sum\{.*kind="failover"', k):
            total += delta(k)
    print(f"   {d}: {sorted(units)}")
assert want > 0 and took == want and n == want, (want, took, n)
assert 0 < total / n < 3, total / n
print(f"   {int(took)} failover takeovers, mean failover {1000 * total / n:.0f} ms (last heartbeat -> VIPs up)")
PY
then pass "d2's crash: each of its $d2_units units taken over once by a survivor, counted as a failover with its duration"
else fail "d2's crash: failover takeovers or durations do not match its $d2_units units"; fi

for d in d1 d3; do lab_kill "$d" flotilla TERM; done
runbook_end
