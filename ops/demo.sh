#!/usr/bin/env bash
# The main job, for now: build flotilla, check every example configuration and show the seed
# pair's configuration as flotilla resolved it (includes expanded, keepalived's defaults
# filled). Later issues turn this into the 3-director lab demo.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building flotilla"
cargo build --quiet -p flotilla
bin=target/debug/flotilla

echo "==> checking every configuration under cluster-configs/"
status=0
while IFS= read -r conf; do
    if "$bin" config check "$conf" 2>/tmp/flotilla-demo-check.$$; then
        printf '  %-45s %s\n' "$conf" "$(tail -n1 /tmp/flotilla-demo-check.$$ | sed 's/^[^:]*: //')"
    else
        printf '  %-45s INVALID\n' "$conf"
        sed 's/^/      /' /tmp/flotilla-demo-check.$$
        status=1
    fi
done < <(find cluster-configs -name keepalived.conf -o -name lab.conf | sort)
rm -f /tmp/flotilla-demo-check.$$

echo
echo "==> the seed pair's first node, resolved (flotilla config show cluster-configs/ka01/keepalived.conf)"
"$bin" config show cluster-configs/ka01/keepalived.conf 2>/dev/null
exit $status
