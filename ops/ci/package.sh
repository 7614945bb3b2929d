#!/usr/bin/env bash
# Builds the Debian package with cargo-deb and checks what is in it: the binary runs, the
# unit, the example configuration (a conffile) and the documentation are where an operator
# looks for them.
#
#   bash ops/ci/package.sh      → target/debian/flotilla_*.deb
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v cargo-deb >/dev/null || cargo install --quiet --locked cargo-deb
cargo build --quiet --release -p flotilla
# The "man-style" help: every subcommand's --help, with its example.
{
  ./target/release/flotilla --help
  for c in agent status ipvs cert "cert init" "cert issue" config "config check" "config show" "config apply" \
           drain undrain move unpin "placement plan" lab completions; do
    printf '\n======== flotilla %s\n' "$c"
    # shellcheck disable=SC2086
    ./target/release/flotilla $c --help
  done
} > target/flotilla-help.txt
./target/release/flotilla completions bash > target/flotilla.bash-completion
cargo deb --quiet --no-build -p flotilla
deb=$(ls -t target/debian/flotilla_*.deb | head -1)
echo "package: $deb"
contents=$(dpkg-deb -c "$deb")
fail=0
for want in ./usr/bin/flotilla ./lib/systemd/system/flotilla.service ./etc/flotilla/flotilla.conf \
            ./usr/share/doc/flotilla/README.md ./usr/share/doc/flotilla/flotilla-help.txt \
            ./usr/share/bash-completion/completions/flotilla; do
  if grep -q " $want\$" <<<"$contents"; then echo "  has $want"; else echo "  MISSING $want"; fail=1; fi
done
info=$(dpkg-deb -I "$deb")
grep -q '^ Package: flotilla$' <<<"$info" || { echo "  bad Package field"; fail=1; }
grep -q '^ Conflicts: keepalived' <<<"$info" || { echo "  no Conflicts: keepalived"; fail=1; }
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/flotilla/flotilla.conf \
  || { echo "  flotilla.conf is not a conffile"; fail=1; }
# The packaged binary runs and the packaged example parses.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
"$tmp/usr/bin/flotilla" --version
"$tmp/usr/bin/flotilla" config check "$tmp/etc/flotilla/flotilla.conf" || { echo "  example config rejected"; fail=1; }
((fail == 0)) && echo "package OK" || { echo "package check FAILED"; exit 1; }
