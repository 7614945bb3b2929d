#!/bin/bash
# flotilla test lab, IPVS tier: run a script inside User-Mode Linux, a second kernel that has IPVS.
#
#   ops/lab/uml.sh run SCRIPT [ARGS...] [--timeout SECS] [--share DIR] [--keep] [--mem SIZE]
#
# The host kernel has no IPVS and cannot load modules; Debian's user-mode-linux kernel (fetched
# and extracted by ops/ci/deps.sh, never installed) runs as an ordinary process and loads
# ip_vs*, veth, bridge, nf_tables, netem from the extracted package. Inside UML:
#   * the root file system is the host's /, read-only (hostfs): host binaries run unchanged;
#   * /run, /tmp, /var/tmp, /dev/shm are fresh tmpfs (the repository, the caller's directory and
#     the script's are mounted back read-only when they live there); the UML has no network
#     device at all;
#   * SCRIPT runs with bash, from the current directory, with LAB_IN_UML=1, LAB_SHARE=<share
#     mount> (write result files there) and the caller's LAB_* / FLOTILLA_* variables;
#   * the script can `source ops/lab/lab.sh; lab_up` exactly as on the host.
#
# Exit status: SCRIPT's own exit code (read from the share, not UML's status); 124 if the timeout
# (default 300 s; 0: none) hit, 125 if UML ended without a result. UML is always run under `timeout` and is
# only ever sent SIGTERM (SIGKILL leaves orphaned UML helper processes behind).
#
# --share DIR  use DIR (created if needed, kept) as the share; default: a temp dir, deleted
#              afterwards unless --keep (or FLOTILLA_LAB_KEEP=1). Results: DIR/rc, DIR/test.log.
# Env: FLOTILLA_LAB_CACHE (default /var/cache/flotilla-lab; UML in $FLOTILLA_LAB_CACHE/uml),
#      FLOTILLA_UML_MODULES (extra modules to load, comma-separated).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UML_DIR=${FLOTILLA_LAB_CACHE:-/var/cache/flotilla-lab}/uml

die() { echo "uml: $*" >&2; exit 2; }
usage() { sed -n '4p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2; exit 2; }

[[ ${1:-} == run ]] || usage
shift
script="" args=() timeout_s=300 share="" keep=${FLOTILLA_LAB_KEEP:-0} mem=1024M
while (($#)); do
  case $1 in
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --share)   share=${2:?}; shift 2 ;;
    --keep)    keep=1; shift ;;
    --mem)     mem=${2:?}; shift 2 ;;
    *)         if [[ -z $script ]]; then script=$1; else args+=("$1"); fi; shift ;;
  esac
done
[[ -n $script ]] || usage
[[ -f $script ]] || die "no such script: $script"
[[ $timeout_s =~ ^[0-9]+$ ]] || die "--timeout wants seconds"
[[ $EUID -eq 0 ]] || die "must run as root"
[[ -x $UML_DIR/usr/bin/linux.uml ]] || die "no UML kernel in $UML_DIR (run: bash ops/ci/deps.sh)"
kv=$(ls "$UML_DIR/usr/lib/uml/modules" 2>/dev/null | head -n1)
[[ -n $kv && -e $UML_DIR/modroot/lib/modules/$kv ]] || die "UML modules not prepared (run: bash ops/ci/deps.sh)"
command -v timeout >/dev/null || die "missing tool: timeout (coreutils)"

script=$(readlink -f "$script")
if [[ -n $share ]]; then
  mkdir -p "$share" || die "cannot create $share"
  share=$(readlink -f "$share")
  own_share=0
else
  share=$(mktemp -d "${TMPDIR:-/tmp}/flotilla-uml.XXXXXX")
  own_share=1
fi
rm -f "$share/rc" "$share/test.log"

# Inside, /run, /tmp, /var/tmp and /dev/shm are fresh tmpfs. Host directories the run needs
# (the repository with its build output, the caller's directory, the script's) that live there
# are mounted back read-only at the same paths by init, so every path stays valid.
repo=$(cd "$HERE/../.." && pwd)
hostdirs=()
for d in "$repo" "$PWD" "$(dirname "$script")"; do
  case $d in
    /run/*|/tmp/*|/var/tmp/*|/dev/shm/*)
      [[ $d == *[[:space:],]* ]] && die "path with blanks or commas cannot be passed to UML: $d"
      hostdirs+=("$d") ;;
  esac
done
run_script=$script
run_dir=$PWD

# The command for init: caller's cwd and lab settings, then the script.
{
  echo "export LAB_IN_UML=1 LAB_SHARE=/run/lab-share"
  export -p | grep -E '^declare -x (LAB_|FLOTILLA_)[A-Za-z0-9_]*=' | grep -vE '^declare -x (LAB_IN_UML|LAB_SHARE)='
  printf 'cd %q || exit 126\n' "$run_dir"
  printf 'exec bash %q' "$run_script"; printf ' %q' "${args[@]}"; echo
} > "$share/run.sh"

uml_pid="" interrupted=0
# timeout forwards TERM to UML, which then halts cleanly
stop() { interrupted=1; [[ -n $uml_pid ]] && kill -TERM "$uml_pid" 2>/dev/null; }
trap 'stop' INT TERM HUP

echo "uml: booting UML $kv (mem $mem, timeout ${timeout_s}s) for $(basename "$script")"
t0=$(date +%s%N)
# TMPDIR: UML backs its RAM with a file there; /dev/shm keeps it in memory.
TMPDIR=/dev/shm timeout "$timeout_s" "$UML_DIR/usr/bin/linux.uml" \
  mem="$mem" rootfstype=hostfs rootflags=/ ro init="$HERE/uml-init.sh" \
  lab.share="$share" lab.mods="$UML_DIR/modroot" lab.extramods="${FLOTILLA_UML_MODULES:-}" \
  lab.hostdirs="$(IFS=,; echo "${hostdirs[*]}")" \
  con=null con0=null,fd:1 quiet </dev/null 2>&1 &
uml_pid=$!
while :; do
  wait "$uml_pid"; st=$?
  # wait returns >128 when interrupted by a trapped signal; the process may still be running
  kill -0 "$uml_pid" 2>/dev/null || break
done
t1=$(date +%s%N)
secs=$(printf '%d.%01d' $(((t1 - t0) / 1000000000)) $(((t1 - t0) / 100000000 % 10)))

if [[ -s $share/rc ]]; then
  rc=$(<"$share/rc")
  echo "uml: script exit code $rc, UML ran ${secs}s"
elif ((interrupted)); then
  rc=143; echo "uml: interrupted, UML stopped with SIGTERM after ${secs}s" >&2
elif ((st == 124)); then
  rc=124; echo "uml: TIMEOUT after ${timeout_s}s (UML sent SIGTERM)" >&2
else
  rc=125; echo "uml: UML ended (status $st) after ${secs}s without a result" >&2
fi
if ((own_share && !keep)); then rm -rf "$share"
elif ((own_share)); then echo "uml: share kept at $share"
else echo "uml: results in $share"; fi
exit "$rc"
