#!/usr/bin/env bash
# The main job: build flotilla, bring up the local 3-director lab (network namespaces on this
# machine, root) and walk through the mission: traffic through every VIP, a director crashed
# and taken over, its recovery, a drain under traffic, a failing backend.
#
#   bash ops/demo.sh            then: target/debug/flotilla lab status | lab down
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $EUID -eq 0 ]] || { echo "demo: run as root (the lab uses network namespaces)" >&2; exit 1; }
echo "==> installing the lab's packages (iproute2, python3, curl …) if missing"
bash ops/ci/deps.sh
echo "==> building flotilla"
cargo build --quiet -p flotilla
bin=target/debug/flotilla
"$bin" lab up
"$bin" lab demo
echo
echo "The lab keeps running: $bin lab status · $bin lab down"
