#!/usr/bin/env bash
# Runs berth's whole test suite: formatting, lints, unit tests of every
# crate, and the end-to-end tests against a real berthd.
#
#   tests/run.sh            everything
#   tests/run.sh -- NAME    only tests whose name contains NAME
#
# Needs the samples' toolchain (see samples/README.md); .ci/run installs it.
set -euo pipefail
cd "$(dirname "$0")/.."

filter=()
if [ "${1:-}" = "--" ]; then shift; filter=("$@"); fi

echo "== samples"
samples/build.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== build"
cargo build --workspace --all-targets --quiet

echo "== tests"
cargo test --workspace --quiet -- "${filter[@]}"
