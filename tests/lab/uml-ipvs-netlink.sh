#!/bin/bash
# Runbook: flotilla's IPVS netlink client against a real kernel (IPVS tier: runs in UML).
#
#   In a fresh network namespace of the UML kernel, ipvsadm first adds a foreign service
#   (TCP 10.9.9.9:443) and one that equals flotilla's desired rule (TCP 10.0.0.1:80 wrr,
#   10.1.0.1:80 DR weight 2), as a crashed predecessor would leave it. Then the crate's
#   example `ipvs-selftest` (built on the host beforehand):
#   1. reconciles to a desired set of TCP, UDP, SCTP, fwmark and IPv6 services (persistence,
#      scheduler flags, DR/NAT/ipip/gue/gre, weights, thresholds): the pre-existing rule is
#      adopted, not re-added, and nothing is refused;
#   2. lists everything back equal to what it asked for (and to the in-memory twin);
#   3. renders `ipvsadm -Ln` text byte for byte;
#   4. edits in place; 5. reads 64-bit counters after one UDP datagram and renders `--stats`;
#   6. gets the kernel's refusals as named errors (unknown scheduler names it);
#   7. starts, lists and stops the sync daemon;
#   8. releases: its services go, the foreign one stays (checked with ipvsadm too).
#
# The host kernel has no IPVS: run on the host, this script builds the example, boots UML
# (ops/lab/uml.sh) and runs itself inside.
#
# Usage (root): bash tests/lab/uml-ipvs-netlink.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

say() { echo; echo "== $*"; }
BIN=target/debug/examples/ipvs-selftest

if [[ ${LAB_IN_UML:-} != 1 ]]; then
  say "Build the selftest on the host (the repository is read-only inside UML)"
  cargo build -q -p flotilla-ipvs --example ipvs-selftest || { echo "FAIL: uml-ipvs-netlink (build)"; exit 1; }
  say "Boot UML (IPVS kernel) and run this runbook inside it"
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ops/lab/uml.sh run "$0" --timeout 180
  rc=$?
  say "Result (host side)"
  if ((rc == 0)); then echo "PASS: uml-ipvs-netlink"; else echo "FAIL: uml-ipvs-netlink (exit code $rc)"; fi
  exit "$rc"
fi

# ---- inside UML from here on ----
NS=${LAB_TEST_PREFIX:-lab-t}-ipvs
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
in_ns() { ip netns exec "$NS" "$@"; }
cleanup() { ip netns del "$NS" 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "Preflight (kernel $(uname -r))"
for t in ipvsadm ip; do command -v "$t" >/dev/null || { fail "missing tool $t"; exit 1; }; done
[[ -x $BIN ]] || { fail "no $BIN (build it on the host first)"; exit 1; }
cleanup
ip netns add "$NS" || { fail "netns $NS"; exit 1; }
in_ns ip link set lo up
# A veth for the sync daemon's multicast and a route for the datagram through the UDP service.
in_ns ip link add lab-v0 type veth peer name lab-v1 &&
in_ns ip link set lab-v0 up && in_ns ip link set lab-v1 up &&
in_ns ip addr add 10.1.0.254/24 dev lab-v0 &&
in_ns ip route add 10.0.0.0/24 dev lab-v0 || fail "namespace links"

say "ipvsadm: a foreign service and one equal to flotilla's desired rule"
in_ns ipvsadm -A -t 10.9.9.9:443 -s rr &&
in_ns ipvsadm -a -t 10.9.9.9:443 -r 10.1.0.9:443 -m -w 1 &&
in_ns ipvsadm -A -t 10.0.0.1:80 -s wrr &&
in_ns ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.1:80 -g -w 2 && pass "ipvsadm rules added" || fail "ipvsadm rules"
in_ns ipvsadm -Ln | sed 's/^/   /'

say "ipvs-selftest (kernel backend)"
in_ns "$BIN"
rc=$?
((rc == 0)) || failures=$((failures + 1))

say "Result"
if ((failures)); then echo "FAIL: uml-ipvs-netlink inside UML ($failures failed)"; exit 1; fi
echo "PASS: uml-ipvs-netlink inside UML"
