#!/usr/bin/env bash
# Installs what berth's test suite needs (tests/run.sh runs this first):
# the samples' toolchain (samples/setup.sh), the docker CLI, runc, the
# distribution registry and skopeo, docker-py, the musl target of the
# static CLI, rustfmt and clippy. Idempotent; quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(docker.io runc docker-registry skopeo python3 util-linux)
# docker-py: Debian's python3-docker serves the system python3; another
# python3 first on PATH gets it from pip below.
if [ "$(command -v python3 || echo /usr/bin/python3)" = /usr/bin/python3 ]; then
    pkgs+=(python3-docker)
fi
targets=()
[ "$(uname -m)" = x86_64 ] && targets+=(x86_64-unknown-linux-musl)
samples/setup.sh "${pkgs[@]}" -- "${targets[@]}"

if ! python3 -c 'import docker' 2>/dev/null; then
    echo "== pip install docker"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    fi
    python3 -m pip install -q docker 2>/dev/null || python3 -m pip install -q --break-system-packages docker
fi

have=$(rustup component list --installed 2>/dev/null || true)
for c in rustfmt clippy; do
    grep -q "^$c" <<<"$have" || rustup component add "$c"
done
