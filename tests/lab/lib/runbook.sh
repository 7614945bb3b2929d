# Shared preamble of the lab runbooks (sourced; tests/lab/run.sh only runs tests/lab/*.sh).
#
#   source tests/lab/lib/runbook.sh
#   runbook_begin NAME     root check, lab prefix $LAB_TEST_PREFIX-NAME, traps that tear the lab
#                          down on any exit, a fresh build of flotilla in $FLOTILLA (or the
#                          binary FLOTILLA_BIN names, built elsewhere)
#   say / pass / fail      output; fail counts
#   runbook_on_exit CMD    also run CMD at exit (before the lab comes down)
#   runbook_end            lab down, summary line, exit status
source ops/lab/lab.sh

failures=0
_runbook_name=""
_runbook_exit=()
say()  { echo; echo "== $*"; }
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

runbook_on_exit() { _runbook_exit+=("$1"); }
_runbook_cleanup() { local c; for c in "${_runbook_exit[@]}"; do eval "$c"; done; lab_down; }

runbook_begin() {
  _runbook_name=$1
  export LAB_PREFIX=${LAB_TEST_PREFIX:-lab-t}-$1
  trap '_runbook_cleanup' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  [[ $EUID -eq 0 ]] || { echo "FAIL: must run as root"; return 1; }
  lab_require ip || return 1
  if [[ -n ${FLOTILLA_BIN:-} ]]; then FLOTILLA=$FLOTILLA_BIN  # e.g. an older build to compare
  else
    cargo build --quiet -p flotilla || { echo "FAIL: cannot build flotilla"; return 1; }
    FLOTILLA=${CARGO_TARGET_DIR:-$PWD/target}/debug/flotilla
  fi
  lab_down
}

runbook_end() {
  lab_down
  say "Result"
  if ((failures)); then echo "FAIL: $_runbook_name ($failures failed checks)"; exit 1; fi
  echo "PASS: $_runbook_name"
  exit 0
}
