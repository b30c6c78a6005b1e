#!/usr/bin/env bash
# Runs berth's whole test suite: formatting, lints, unit tests of every
# crate, and the end-to-end tests against a real berthd.
#
#   tests/run.sh            everything
#   tests/run.sh -- NAME    only tests whose name contains NAME
#
# Installs what it needs first (tests/setup.sh: Rust targets, Debian
# packages as root, docker-py), before the long build.
set -euo pipefail
cd "$(dirname "$0")/.."

filter=()
if [ "${1:-}" = "--" ]; then shift; filter=("$@"); fi

echo "== setup (tests/setup.sh)"
tests/setup.sh

echo "== samples"
samples/build.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== build"
cargo build --workspace --all-targets --quiet

# The CLI releases ship is linked statically against musl (cargo dist-cli):
# it starts in about half the time of a dynamically linked one, and runs on
# any Linux. The end-to-end tests drive that one when the target is there.
musl=x86_64-unknown-linux-musl
if [ "$(uname -m)" = x86_64 ] && rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    echo "== build the static CLI ($musl)"
    cargo build --quiet -p berth-cli --target "$musl"
    export BERTH_TEST_CLI="$PWD/target/$musl/debug/berth"
elif [ -n "${CI:-}" ]; then
    echo "tests/run.sh: CI tests the static CLI: rustup target add $musl" >&2
    exit 1
else
    echo "== (rustup target add $musl to test the static CLI; testing the dynamic one)"
fi

echo "== tests"
cargo test --workspace --quiet -- "${filter[@]}"
