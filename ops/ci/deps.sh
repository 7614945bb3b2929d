#!/bin/bash
# Installs what the lab tests need on a Debian 12 machine (root, Debian mirror reachable).
#
#   bash ops/ci/deps.sh
#
# Idempotent: `apt-get update` runs only when a package is missing, the install only installs
# what is missing, and the User-Mode Linux kernel (Debian package `user-mode-linux`, downloaded and
# extracted, never installed) is fetched only when the cache does not hold it yet.
#
# Env:
#   FLOTILLA_LAB_CACHE   cache root (default /var/cache/flotilla-lab); UML goes to $FLOTILLA_LAB_CACHE/uml
#
# Prints one summary line; on failure prints the apt output and exits non-zero.
set -euo pipefail

PACKAGES=(keepalived ipvsadm nftables tcpdump iproute2 curl python3 kmod iputils-ping procps psmisc
          coreutils util-linux mawk frr systemd chromium)
CACHE=${FLOTILLA_LAB_CACHE:-/var/cache/flotilla-lab}
UML_DIR=$CACHE/uml

die() { echo "deps: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "must run as root"
command -v apt-get >/dev/null || die "apt-get not found (Debian 12 expected)"

export DEBIAN_FRONTEND=noninteractive
LOG=$(mktemp /tmp/flotilla-deps.XXXXXX)
trap 'rm -f "$LOG"' EXIT

run_logged() { "$@" >>"$LOG" 2>&1 || { cat "$LOG" >&2; die "failed: $*"; }; }
is_installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }

# Package lists are needed when something is missing, or when apt has no candidate for UML.
missing=()
for p in "${PACKAGES[@]}"; do is_installed "$p" || missing+=("$p"); done
need_uml=0
[[ -x $UML_DIR/usr/bin/linux.uml && -f $UML_DIR/.complete ]] || need_uml=1

updated=no
if (( ${#missing[@]} )) || { (( need_uml )) && ! apt-cache show user-mode-linux >/dev/null 2>&1; }; then
  run_logged apt-get update -q
  updated=yes
fi

if (( ${#missing[@]} )); then
  # A service must not start while we install it: keepalived would grab VRRP on the host.
  # Debian honours /usr/sbin/policy-rc.d (101 = "do not start"); add one only for this install.
  own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=1
  fi
  rc=0
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 || rc=$?
  (( own_policy )) && rm -f /usr/sbin/policy-rc.d
  (( rc == 0 )) || { cat "$LOG" >&2; die "apt-get install failed"; }
fi

uml_state=cached
if (( need_uml )); then
  work=$(mktemp -d "$CACHE.tmp.XXXXXX" 2>/dev/null || { mkdir -p "$(dirname "$CACHE")"; mktemp -d "$CACHE.tmp.XXXXXX"; })
  chmod 755 "$work"   # apt downloads as user _apt when it can write there
  ( cd "$work" && run_logged apt-get download -q user-mode-linux )
  deb=$(ls "$work"/user-mode-linux_*.deb)
  run_logged dpkg-deb -x "$deb" "$work/root"
  [[ -x $work/root/usr/bin/linux.uml ]] || die "no usr/bin/linux.uml in $deb"
  basename "$deb" > "$work/root/.complete"
  mkdir -p "$CACHE"
  rm -rf "$UML_DIR"
  mv "$work/root" "$UML_DIR"
  rm -rf "$work"
  uml_state=fetched
fi
kv=$(ls "$UML_DIR/usr/lib/uml/modules" | head -n1)
[[ -n $kv ]] || die "no modules in $UML_DIR/usr/lib/uml/modules"
# `modprobe -d BASE` wants BASE/lib/modules/<version>; the package ships modules.dep already.
mkdir -p "$UML_DIR/modroot/lib/modules"
ln -sfn "$UML_DIR/usr/lib/uml/modules/$kv" "$UML_DIR/modroot/lib/modules/$kv"

ka=$(keepalived --version 2>&1 | awk 'NR==1{print $2}')
echo "deps: ok (apt update: $updated; installed: ${missing[*]:-nothing new}; keepalived $ka;" \
     "uml $kv $uml_state at $UML_DIR)"
