#!/usr/bin/env bash
# Wasm density: how much memory one more idle Wasm container costs, and how
# fast a daemon full of them still starts another, next to the same module
# run as one `wasmtime run` process per container (what a per-container shim
# costs at least) and to native busybox containers under the same berthd.
#
#   bench/wasm-density.sh      (N=1000 Wasm containers, PEERS=100 of the others)
#
# Memory is proportional set size (PSS, /proc/PID/smaps_rollup): shared pages
# are split between the processes that map them, so a sum over processes is
# what they cost the machine together.
#
# Needs: root, python3; `wasmtime` on PATH (or WASMTIME=path) for its row.
source "$(dirname "$0")/lib.sh"
N="${N:-1000}"
PEERS="${PEERS:-100}"
need python3 "apt-get install python3"
[ "$(id -u)" = 0 ] || { echo "bench: native containers need root" >&2; exit 1; }

bench_build
(cd "$BENCH_REPO" && samples/busybox/build.sh >/dev/null)
bench_start_daemon
"$BERTH" wasm import "$BENCH_REPO/samples/out/sleep.wasm" sleep >/dev/null
"$BERTH" import "$BENCH_REPO/samples/out/busybox-rootfs.tar" busybox >/dev/null

# PSS in KiB of a list of pids (those that are gone count 0).
pss() {
    local total=0 p v
    for p in "$@"; do
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
now_ms() { date +%s%3N; }

# Warm up: the module is compiled (and cached) before the clock starts.
"$BERTH" run --rm sleep 0 >/dev/null
base=$(pss "$BENCH_DAEMON_PID")

t0=$(now_ms)
for i in $(seq "$N"); do "$BERTH" run -d --name "w$i" sleep 3600 >/dev/null; done
t1=$(now_ms)
running=$("$BERTH" ps -q | wc -l)
[ "$running" -ge "$N" ] || { echo "bench: only $running of $N Wasm containers are running" >&2; exit 1; }
full=$(pss "$BENCH_DAEMON_PID")
last_ms=$(bench_median last 20 "$BERTH" run --rm sleep 0)
wasm_kib=$(python3 -c "print('%.1f' % (($full-$base)/$N))")
wasm_start=$(python3 -c "print('%.2f' % (($t1-$t0)/$N))")
t0=$(now_ms)
"$BERTH" rm -f $("$BERTH" ps -q) >/dev/null
t1=$(now_ms)
rm_ms=$(python3 -c "print('%.2f' % (($t1-$t0)/$N))")

# Native containers under the same daemon: berthd's growth, plus each
# container's shim and process.
base=$(pss "$BENCH_DAEMON_PID")
for i in $(seq "$PEERS"); do "$BERTH" run -d --name "n$i" busybox sleep 3600 >/dev/null; done
sleep 1
shims=$(pgrep -x berth-shim -P "$BENCH_DAEMON_PID" || true)
procs=$(for s in $shims; do pgrep -P "$s" || true; done)
# $shims includes the one standby shim waiting for the next container.
native_kib=$(python3 -c "print('%.1f' % (($(pss "$BENCH_DAEMON_PID") - $base + $(pss $shims $procs)) / $PEERS))")
"$BERTH" rm -f $("$BERTH" ps -q) >/dev/null

# The same module, one wasmtime process each.
WASMTIME="${WASMTIME:-$(command -v wasmtime || true)}"
wt_kib=""
if [ -n "$WASMTIME" ]; then
    pids=()
    for i in $(seq "$PEERS"); do
        "$WASMTIME" run "$BENCH_REPO/samples/out/sleep.wasm" 3600 >/dev/null &
        pids+=($!)
    done
    sleep 2
    wt_kib=$(python3 -c "print('%.1f' % ($(pss "${pids[@]}") / $PEERS))")
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
fi

echo
echo "Wasm density ($(nproc) CPUs, $(uname -r)); memory is PSS per idle container"
printf '%-62s %12s\n' "what" "KiB each"
printf '%-62s %12s\n' "berth: $N Wasm containers (sleep.wasm) in one berthd" "$wasm_kib"
printf '%-62s %12s\n' "berth: $PEERS native busybox sleep containers (berthd + shim + process)" "$native_kib"
[ -n "$wt_kib" ] && printf '%-62s %12s\n' "wasmtime run sleep.wasm, $PEERS processes" "$wt_kib"
echo
echo "berth run -d of a Wasm container, mean over $N: $wasm_start ms (whole CLI)"
echo "berth run --rm sleep 0 with $N Wasm containers running, median: $last_ms ms"
echo "berth rm -f, mean per container over $N: $rm_ms ms"
[ -n "$wt_kib" ] && python3 -c "print('ratio wasmtime-process/berth memory per Wasm container: %.0f' % ($wt_kib/$wasm_kib))"
python3 -c "print('ratio native/Wasm memory per container under berth: %.0f' % ($native_kib/$wasm_kib))"
