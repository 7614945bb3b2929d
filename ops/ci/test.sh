#!/usr/bin/env bash
# Every test of the project, as CI runs it: installs what the tests need, then formatting,
# lints, unit/property/corpus tests and the lab tests (real namespaces, real keepalived,
# real IPVS in User-Mode Linux). Run as root on a Debian 12 machine with Rust.
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$SECONDS
phase() { printf '\n==> %s (t+%ds)\n' "$*" $((SECONDS - t0)); }

phase "installing test dependencies"
bash ops/ci/deps.sh

phase "cargo fmt --check"
cargo fmt --all --check

# --all-targets type-checks the benches too; building them (release profile) is left to
# whoever runs them.
phase "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

phase "unit, property, corpus and CLI tests"
cargo test --workspace --quiet

phase "lab tests"
bash tests/lab/run.sh

phase "Debian package (cargo-deb) and its contents"
bash ops/ci/package.sh

phase "all tests passed in $((SECONDS - t0)) s"
