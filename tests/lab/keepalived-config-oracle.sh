#!/bin/bash
# Runbook: does my keepalived.conf work with flotilla? Real keepalived is the oracle.
#
# Every sample of keepalived's own repository (../shared/corpus/keepalived-samples) and every
# example under cluster-configs/ is checked twice, in a namespace that has the interfaces the
# files name (eth0..eth3):
#   keepalived --config-test -f FILE      0 clean, 6 script-security only  => accepted
#                                          4 fatal, 5 errors                 => rejected
#   flotilla config check FILE            0 valid (warnings allowed), 1 errors
# 1. Every file keepalived accepts, flotilla must accept: an existing config keeps working.
# 2. Where keepalived rejects a file, flotilla rejects it too, except the deliberate differences
#    listed below, each with its reason. A new difference fails the test until it is explained.
# 3. Every file keepalived accepts, `flotilla config show` writes back as text keepalived accepts
#    too, and that text reads back to the same model (`config show --json` of both is equal):
#    an operator can hand the resolved configuration to keepalived.
#
# Usage (root): bash tests/lab/keepalived-config-oracle.sh     Env: LAB_TEST_PREFIX (default lab-t)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
NS=${LAB_TEST_PREFIX:-lab-t}-orc
CORPUS=${FLOTILLA_CORPUS:-../shared/corpus/keepalived-samples}

# file (relative to the corpus or the repository) -> why flotilla accepts what keepalived rejects
declare -A DIFFERENT=(
  [keepalived.conf.fwmark]="'protocol' on a fwmark service: keepalived counts it as a config error, flotilla warns (both ignore it)"
  [keepalived.conf.track_interface]="names eth0.1, absent here: interfaces are checked when the agent starts, not by config check (the file may be checked on another host)"
  [keepalived.conf.vrrp.routes]="deprecated route syntax (or, gw): keepalived errors; flotilla warns that it does not manage routes yet"
  [keepalived.conf.vrrp.static_ipaddress]="a static route without dev: keepalived errors about tracking; flotilla warns that it does not manage static routes yet"
  [cluster-configs/lab.conf]="the cluster { } block is flotilla's: keepalived reports its lines as unknown keywords (and reads the rest as usual)"
)

failures=0
work=$(mktemp -d) || exit 1
cleanup() { ip netns del "$NS" 2>/dev/null; }
trap 'cleanup; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $EUID -eq 0 ]] || { echo "FAIL: must run as root"; exit 1; }
lab_require keepalived ip || exit 1
[[ -d $CORPUS ]] || { echo "FAIL: corpus $CORPUS is absent"; exit 1; }
echo "keepalived: $(keepalived --version 2>&1 | head -n1)"
cargo build --quiet -p flotilla || { echo "FAIL: cannot build flotilla"; exit 1; }
bin=target/debug/flotilla

cleanup
ip netns add "$NS" || exit 1
for i in 0 1 2 3; do
  ip -n "$NS" link add "eth$i" type veth peer name "peer$i" && ip -n "$NS" link set "eth$i" up || exit 1
done

files=()
while IFS= read -r f; do files+=("$f"); done < <(
  find "$CORPUS" -type f -name 'keepalived.conf*' -not -path '*/not-keepalived-grammar/*' | sort
  find cluster-configs -name keepalived.conf -o -name lab.conf | sort
)

# keepalived's verdict: accepted, or rejected(exit code).
ka_verdict() {
  ip netns exec "$NS" keepalived --config-test -f "$1" >/dev/null 2>&1
  local k=$?
  case $k in 0|6) echo accepted ;; *) echo "rejected($k)" ;; esac
}

# Check 3 for a file keepalived accepts: "keepalived's verdict on the shown text/model".
shown_verdict() {
  local shown=$work/shown.conf
  "$bin" config show "$1" >"$shown" 2>/dev/null || { echo "show-failed"; return; }
  local ka model=same
  ka=$(ka_verdict "$shown")
  if ! "$bin" config show --json "$1" >"$work/a.json" 2>/dev/null ||
    ! "$bin" config show --json "$shown" >"$work/b.json" 2>/dev/null; then
    model=unreadable
  elif ! cmp -s "$work/a.json" "$work/b.json"; then
    model=differs
  fi
  echo "$ka/$model"
}

printf '\n%-45s %-12s %-10s %-25s %s\n' file keepalived flotilla "shown (keepalived/model)" verdict
for f in "${files[@]}"; do
  key=${f#"$CORPUS"/}
  ka=$(ka_verdict "$f")
  "$bin" config check "$f" >/dev/null 2>&1; o=$?
  case $o in 0) us=accepted ;; 1) us=rejected ;; *) us="failed($o)" ;; esac
  shown=-
  [[ $ka == accepted ]] && shown=$(shown_verdict "$f")
  if [[ $ka == accepted && $us == accepted ]] || [[ $ka == rejected* && $us == rejected ]]; then
    verdict=agree
  elif [[ $ka == rejected* && $us == accepted && -n ${DIFFERENT[$key]:-} ]]; then
    verdict="known: ${DIFFERENT[$key]}"
  else
    verdict="FAIL"
    failures=$((failures + 1))
  fi
  if [[ $shown != - && $shown != accepted/same ]]; then
    verdict="FAIL (config show)"
    failures=$((failures + 1))
  fi
  printf '%-45s %-12s %-10s %-25s %s\n' "$key" "$ka" "$us" "$shown" "$verdict"
done

# A listed difference that no longer happens is stale: keep the list true.
for key in "${!DIFFERENT[@]}"; do
  found=0
  for f in "${files[@]}"; do [[ ${f#"$CORPUS"/} == "$key" ]] && found=1; done
  ((found)) || { echo "FAIL: listed difference for $key, but no such file"; failures=$((failures + 1)); }
done

echo
if ((failures)); then
  echo "FAIL: keepalived-config-oracle ($failures file(s) disagree without a reason)"
  exit 1
fi
echo "FIGURE oracle_files=${#files[@]}"
echo "PASS: keepalived-config-oracle (${#files[@]} files; every file keepalived accepts, flotilla accepts, and keepalived accepts flotilla's config show of it with the model unchanged)"
