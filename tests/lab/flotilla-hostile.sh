#!/bin/bash
# Runbook: hostile VRRP input at a flotilla master is counted and changes nothing.
#
# d1 runs flotilla as master of VRID 51 (VRRPv2, PASS "s3cret", priority 150). From the client
# c, a script sends crafted adverts to 224.0.0.18, each claiming priority 254 — any of them,
# if accepted, would make the master yield:
#   wrong TTL (64), bad checksum, wrong password, VRRPv3 to a v2 router, wrong advert
#   interval, truncated (5 bytes), oversized (bytes after the addresses), unknown VRID 77
#   (counted apart, under unknown_vrids); and a valid lower-priority advert with another address
#   list (accepted, counted as an address-list error, as keepalived does).
# Then: d1 is still master with its VIP, no transition happened, and `flotilla status --json`
# counts each kind under its reason.
#
# Usage (root): bash tests/lab/flotilla-hostile.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
export LAB_PREFIX=${LAB_TEST_PREFIX:-lab-t}-host

VIP=10.99.0.100
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

trap 'lab_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $EUID -eq 0 ]] || { echo "FAIL: must run as root"; exit 1; }
lab_require ip python3 || exit 1
cargo build --quiet -p flotilla || { echo "FAIL: cannot build flotilla"; exit 1; }
FLOTILLA=$PWD/target/debug/flotilla
lab_down
lab_up 1 || exit 1
st=$(lab_state_dir)
cat > "$st/d1.conf" <<CONF
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass s3cret
  }
  virtual_ipaddress {
    $VIP/24 dev eth0
  }
}
CONF
lab_spawn d1 flotilla "$FLOTILLA" agent --config "$st/d1.conf" --api-socket "$st/d1.sock" || exit 1
lab_wait_addr d1 "$VIP" 8 >/dev/null && pass "d1 is master with $VIP" || { fail "d1 never became master"; exit 1; }

cat > "$st/hostile.py" <<'PY'
import socket, struct, sys

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def vrrp(version=2, vrid=51, prio=254, interval=1, password=b"s3cret\0\0", extra=b"", bad_sum=False, addr="10.99.0.100"):
    body = struct.pack("!BBBBBBH", version << 4 | 1, vrid, prio, 1, 1, interval, 0) + socket.inet_aton(addr)
    if version == 2:
        body += password
    body += extra
    # v3 sums a pseudo-header too (RFC 5798 §5.2.8): make the v3 advert valid on the wire so
    # that it is the version, not the checksum, that the router objects to.
    pseudo = b""
    if version == 3:
        pseudo = socket.inet_aton("10.99.0.10") + socket.inet_aton("224.0.0.18") + struct.pack("!BBH", 0, 112, len(body))
    s = csum(pseudo + body)
    if bad_sum:
        s ^= 0x5A5A
    return body[:6] + struct.pack("!H", s) + body[8:]

def ip(payload, ttl=255):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, ttl, 112, 0,
                      socket.inet_aton("10.99.0.10"), socket.inet_aton("224.0.0.18"))
    return hdr + payload

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
cases = {
    "ttl": ip(vrrp(), ttl=64),
    "checksum": ip(vrrp(bad_sum=True)),
    "auth": ip(vrrp(password=b"guess\0\0\0")),
    "version": ip(vrrp(version=3)),
    "interval": ip(vrrp(interval=3)),
    "truncated": ip(vrrp()[:5]),
    "oversized": ip(vrrp(extra=b"\0" * 40)),
    "unknown_vrid": ip(vrrp(vrid=77)),
    # Valid and lower priority (so accepted), but advertising another address.
    "address_list": ip(vrrp(prio=100, addr="10.99.0.199")),
}
for name, pkt in cases.items():
    for _ in range(3):
        s.sendto(pkt, ("224.0.0.18", 0))
    print("sent 3 x", name)
PY
lab_exec c python3 "$st/hostile.py" | sed 's/^/   /' || fail "the sender failed"
sleep 1.5

lab_has_addr d1 "$VIP" && pass "d1 still holds $VIP" || fail "d1 lost $VIP"
json=$("$FLOTILLA" status --json --api-socket "$st/d1.sock")
echo "$json" | python3 -c 'import json,sys; i=json.load(sys.stdin)["instances"][0]; print("   state", i["state"], "since", round(i["since_seconds"],1), "s, dropped", i["dropped"], "received", i["adverts_received"])'
if python3 - "$json" <<'PY'
import json, sys
i = json.loads(sys.argv[1])["instances"][0]
d = i["dropped"]
want = {"ttl": 3, "auth": 3, "version": 3, "interval": 3}
bad = {k: (d.get(k, 0), v) for k, v in want.items() if d.get(k, 0) < v}
# bad checksum, truncated and oversized adverts are all 'malformed'
if d.get("malformed", 0) < 9:
    bad["malformed"] = (d.get("malformed", 0), 9)
assert i["state"] == "MASTER", i["state"]
assert i["last_reason"] == "MasterDown", i["last_reason"]
# The last transition happened before the attack (sent, then 1.5 s of waiting).
assert i["since_seconds"] >= 1.4, i["since_seconds"]
assert not bad, bad
PY
then pass "every hostile advert counted under its reason; still MASTER, no transition since start"
else fail "status does not show the expected drops: $json"; fi
if python3 - "$json" <<'PY'
import json, sys
u = json.loads(sys.argv[1])["unknown_vrids"]
assert [(x["interface"], x["vrid"], x["count"]) for x in u] == [("eth0", 77, 3)], u
PY
then pass "the unknown VRID 77 is counted in status (3 adverts)"
else fail "status does not count the unknown VRID: $json"; fi
if python3 - "$json" <<'PY'
import json, sys
i = json.loads(sys.argv[1])["instances"][0]
assert i["address_list_errors"] == 3, i
PY
then pass "3 adverts with another address list: accepted, counted as address_list_errors (as keepalived)"
else fail "address list mismatches not counted: $json"; fi
"$FLOTILLA" status --api-socket "$st/d1.sock" | sed 's/^/   /'
lab_kill d1 flotilla TERM || fail "flotilla did not exit"

if ((failures)); then echo "FAIL: flotilla-hostile ($failures failed checks)"; exit 1; fi
echo "PASS: flotilla-hostile"
