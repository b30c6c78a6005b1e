#!/usr/bin/env bash
# berth's demo: builds berth and the samples, starts a berthd on a scratch
# root, and runs a Wasm and a Linux container side by side through the
# berth CLI. Run it as root (Linux containers need namespaces and cgroups).
#
#   samples/demo.sh           build and run the demo, then stop the daemon
#   samples/demo.sh --keep    leave the daemon running afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1

demo=/tmp/berth-demo
sock="$demo/berth.sock"
export BERTH_HOST="unix://$sock"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "setting up: Rust targets, wabt, busybox-static (samples/setup.sh)"
samples/setup.sh

step "building berth (cargo build) and the samples"
cargo build --quiet --bins
samples/build.sh
samples/busybox/build.sh
berth=target/debug/berth
berthd=target/debug/berthd

step "starting berthd on $demo"
if [ -f "$demo/berthd.pid" ] && kill -0 "$(cat "$demo/berthd.pid")" 2>/dev/null; then
    echo "stopping the berthd left by an earlier demo"
    old=$(cat "$demo/berthd.pid")
    kill "$old"
    for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
fi
if [ -S "$sock" ] && $berth version >/dev/null 2>&1; then
    echo "a berthd still serves $sock; stop it, then run the demo again" >&2
    exit 1
fi
# Every demo starts from an empty root, so that it can run again.
awk -v d="$demo/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
rm -rf "$demo/root"
mkdir -p "$demo"
$berthd --root "$demo/root" --host "$BERTH_HOST" >"$demo/berthd.log" 2>&1 &
daemon=$!
echo $daemon >"$demo/berthd.pid"
if [ $keep = 0 ]; then
    trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
fi
for _ in $(seq 100); do $berth version >/dev/null 2>&1 && break; sleep 0.05; done
show $berth version

step "making images from the samples"
for s in hello hello-p2 spin sleep; do
    show $berth wasm import "samples/out/$s.wasm" "$s:latest"
done
show $berth import -c 'CMD ["sh"]' samples/out/busybox-rootfs.tar busybox:latest
show $berth images

step "a WASI preview 1 module and a preview 2 component"
show $berth run --rm -e GREETING=hello hello a b
show $berth run --rm hello-p2 x

step "a Linux container: namespaces, overlayfs, cgroups, Docker's defaults"
show $berth run --rm busybox sh -c 'echo "hello from $(hostname), pid $$"; grep CapEff /proc/self/status'

step "side by side: a Wasm and a Linux container, detached"
show $berth run -d --name wasm-sleeper sleep 600
show $berth run -d --name linux-sleeper -m 32m busybox sleep 600
show $berth ps
show $berth exec linux-sleeper ps
show $berth logs wasm-sleeper
show $berth stop -t 1 wasm-sleeper linux-sleeper
show $berth ps -a

step "exit codes come through"
set +e
$berth run --rm hello --exit 3 >/dev/null
echo "berth run hello --exit 3 -> exit code $?"
set -e

if [ $keep = 1 ]; then
    echo
    echo "berthd keeps running (pid $daemon). Try: BERTH_HOST=$BERTH_HOST $berth ps -a"
fi
