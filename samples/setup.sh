#!/usr/bin/env bash
# Installs what the demo and the samples need, before anything long is
# built: the Rust targets wasm32-wasip1 and wasm32-wasip2 (rustup),
# wabt's wat2wasm and a statically linked busybox (Debian packages, as root).
# Idempotent and quick when everything is there.
#
#   samples/setup.sh                    the demo's and the samples' needs
#   samples/setup.sh PKG... -- TARGET...  also these Debian packages / Rust targets
#                                         (tests/setup.sh passes the test suite's)
set -euo pipefail

die() { echo "setup: error: $*" >&2; exit 1; }

pkgs=()
targets=(wasm32-wasip1 wasm32-wasip2)
extra_targets=0
for arg in "$@"; do
    if [ "$arg" = -- ]; then extra_targets=1
    elif [ $extra_targets = 1 ]; then targets+=("$arg")
    else pkgs+=("$arg")
    fi
done

command -v cargo >/dev/null || die "cargo not found; install Rust with rustup (https://rustup.rs)"
command -v rustup >/dev/null || die "rustup not found; berth's samples need it to add Rust targets (https://rustup.rs)"

# Debian packages, named by what they provide.
need=()
command -v wat2wasm >/dev/null || need+=(wabt)
if ! { [ -x /bin/busybox ] && grep -q "statically linked" <(file -L /bin/busybox 2>/dev/null); }; then
    need+=(busybox-static)
fi
command -v file >/dev/null || need+=(file)
for p in "${pkgs[@]}"; do
    case "$p" in
        docker.io) command -v docker >/dev/null || need+=("$p") ;;
        python3-docker) python3 -c 'import docker' 2>/dev/null || need+=("$p") ;;
        *) dpkg -s "$p" >/dev/null 2>&1 || need+=("$p") ;;
    esac
done
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing Debian packages: run as root, or: sudo apt-get install ${need[*]}"
    echo "== apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Installing a package must not start its service (docker-registry's, say).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

installed=$(rustup target list --installed)
missing=()
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== rustup target add ${missing[*]}"
    rustup target add "${missing[@]}"
fi
