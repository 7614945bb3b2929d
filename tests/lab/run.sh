#!/bin/bash
# Runs the lab runbooks (every tests/lab/*.sh but this one), each under a timeout, and prints a
# summary table. Exits non-zero if any test failed or timed out.
#
# Usage (root): bash tests/lab/run.sh [NAME...]      (NAME: e.g. keepalived-failover; default all)
# Env: LAB_TEST_TIMEOUT  seconds per test (default 300)
#      LAB_TEST_PREFIX   namespace prefix for the tests' labs (default lab-t; must be lab-<word>)
#      LAB_TEST_RETRIES  how many more times a failed test runs (default 1). A test that passes
#                        on a later run is "PASS(run 2)" in the table, and the checks its first
#                        run failed are printed after it under "passed on a second run", so an
#                        intermittent failure is seen (and can be chased) without failing
#                        the whole job; a test that fails every run fails the job.
# At the end, any namespace "$LAB_TEST_PREFIX-..." still present (a test that was killed) is
# removed with lab_down, and any UML guest of such a lab stopped; labs of other prefixes (a demo
# lab "lab-...") are left alone.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source ops/lab/lab.sh
export LAB_TEST_PREFIX=${LAB_TEST_PREFIX:-lab-t}
timeout_s=${LAB_TEST_TIMEOUT:-300}
retries=${LAB_TEST_RETRIES:-1}
[[ $retries =~ ^[0-9]+$ ]] || { echo "run.sh: LAB_TEST_RETRIES must be a number" >&2; exit 2; }

[[ $EUID -eq 0 ]] || { echo "run.sh: must run as root" >&2; exit 2; }
[[ $LAB_TEST_PREFIX =~ ^lab(-[a-z0-9]+)+$ ]] || { echo "run.sh: LAB_TEST_PREFIX must be lab-<word>" >&2; exit 2; }

tests=()
if (($#)); then
  for n in "$@"; do
    f=tests/lab/${n%.sh}.sh
    [[ -f $f && $f != tests/lab/run.sh ]] || { echo "run.sh: no test $f" >&2; exit 2; }
    tests+=("$f")
  done
else
  for f in tests/lab/*.sh; do [[ $f == tests/lab/run.sh ]] || tests+=("$f"); done
fi

# Remove what killed tests left behind: UML guests of `flotilla lab up --ipvs` labs (they run
# until stopped), then namespaces of the test prefix, grouped per lab.
cleanup_leftovers() {
  local ns pfx seen=" " d
  for d in "${LAB_STATE:-/run/flotilla-lab}/$LAB_TEST_PREFIX"-*/uml; do
    [[ -d $d ]] || continue
    pfx=$(basename "$(dirname "$d")")
    echo "run.sh: stopping the guest of leftover lab $pfx"
    LAB_PREFIX=$pfx bash ops/lab/fleet.sh down >/dev/null
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^($LAB_TEST_PREFIX-[a-z0-9-]+)-(sw|c|b[0-9]+|d[0-9]+)$ ]] || continue
    pfx=${BASH_REMATCH[1]}
    [[ $seen == *" $pfx "* ]] && continue
    seen+="$pfx "
    echo "run.sh: removing leftover lab $pfx"
    LAB_PREFIX=$pfx lab_down
  done
}

if ka_pids=$(pgrep -x keepalived); then
  echo "run.sh: note: keepalived already running (pids $(echo $ka_pids)): not started by these tests"
fi
cleanup_leftovers

results=() total0=$(lab_now_ms) failed=0 failed_checks=() flaky_checks=() passed_late=0
# The failed checks of test NAME's log, prefixed "LABEL: " (default NAME; at most 20).
checks_of() {
  grep -E '^(FAIL|TIMEOUT|ERROR)' "$logdir/$1.log" | grep -Ev 'failed checks\)$' | sed "s/^/${2:-$1}: /" | head -20
}
logdir=$(mktemp -d /tmp/flotilla-lab-tests.XXXXXX)
for t in "${tests[@]}"; do
  name=$(basename "$t" .sh)
  echo
  echo "################ $name (timeout ${timeout_s}s)"
  t0=$(lab_now_ms) earlier=()
  for ((run = 1; run <= retries + 1; run++)); do
    ((run > 1)) && { echo; echo "################ $name again (run $run): the last run failed"; cleanup_leftovers; }
    # TERM first (tests clean up in their EXIT trap; UML shuts down cleanly), KILL 30 s later.
    timeout -k 30 "$timeout_s" bash "$t" 2>&1 | tee "$logdir/$name.log"
    rc=${PIPESTATUS[0]}
    case $rc in
      0)       res=PASS ;;
      124|137) res=TIMEOUT; echo "TIMEOUT: $name after ${timeout_s}s" >> "$logdir/$name.log" ;;
      *)       res="FAIL($rc)" ;;
    esac
    [[ $res == PASS ]] && break
    mapfile -t -O "${#earlier[@]}" earlier < <(checks_of "$name" "$name (run $run)")
  done
  secs=$(_lab_seconds $(($(lab_now_ms) - t0)))
  if [[ $res != PASS ]]; then
    failed=$((failed + 1))
    mapfile -t -O "${#failed_checks[@]}" failed_checks < <(checks_of "$name")
  elif ((run > 1)); then
    res="PASS(run $run)" passed_late=$((passed_late + 1))
    # Kept for the end, where a CI excerpt of the last lines still shows them.
    flaky_checks+=("${earlier[@]}")
  fi
  results+=("$(printf '%-28s %-12s %8s' "$name" "$res" "$secs")")
done
cleanup_leftovers
total=$(_lab_seconds $(($(lab_now_ms) - total0)))

echo
echo "################ summary"
printf '%-28s %-12s %8s\n' test result seconds
printf '%s\n' "${results[@]}"
printf '%-28s %-12s %8s\n' total "$((${#tests[@]} - failed))/${#tests[@]} ok" "$total"
if ((passed_late)); then
  echo
  echo "################ passed on a second run ($passed_late): what the earlier runs failed"
  printf '%s\n' "${flaky_checks[@]}"
fi
if ((${#failed_checks[@]})); then
  echo
  echo "################ failed checks"
  printf '%s\n' "${failed_checks[@]}"
fi
rm -rf "$logdir"
((failed == 0))
