#!/usr/bin/env bash
# Wasm cold start: the whole `berth run --rm hello` (CLI process, API round
# trips, create, start, run, exit, remove) and berthd's own share of it,
# next to `crun run` and `runc run` of a busybox /bin/true bundle measured in
# the same run.
#
#   bench/wasm-start.sh            (RUNS=100 by default)
#
# Needs: root, hyperfine, runc and/or crun, busybox-static, python3;
# wasmtime on PATH (or WASMTIME=path) for its rows.
source "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-100}"
need hyperfine "apt-get install hyperfine"
need python3 "apt-get install python3"
need runc "apt-get install runc"
need crun "apt-get install crun"

bench_build
bench_start_daemon
"$BERTH" wasm import "$BENCH_REPO/samples/out/hello.wasm" hello >/dev/null

berth_ms=$(bench_median berth "$RUNS" "$BERTH" run --rm hello)

# Daemon-side: berthd's own measurements of each container (inspect
# `Timings`): handling create, and from the start request to the exit
# recorded. Client round trips are not in them.
for i in $(seq "$RUNS"); do "$BERTH" run --name "t$i" hello >/dev/null; done
read -r create_us start_us exit_us total_us < <(
    for i in $(seq "$RUNS"); do "$BERTH" inspect "t$i"; done | python3 -c '
import json, sys, statistics
dec = json.JSONDecoder(); text = sys.stdin.read(); pos = 0; rows = []
while pos < len(text):
    while pos < len(text) and text[pos].isspace(): pos += 1
    if pos >= len(text): break
    obj, pos = dec.raw_decode(text, pos)
    t = obj[0]["Timings"]
    rows.append((t["CreateMicros"], t["StartMicros"], t["StartToExitMicros"]))
med = lambda i: statistics.median(r[i] for r in rows)
print(med(0), med(1), med(2), statistics.median(r[0] + r[2] for r in rows))')

rows=("berth run --rm hello (whole CLI)|$berth_ms")
if command -v runc >/dev/null; then
    bundle=$(bench_busybox_bundle)
    runc_ms=$(cd "$bundle" && bench_median runc "$RUNS" runc run --bundle "$bundle" bench-runc)
    rows+=("runc run busybox /bin/true|$runc_ms")
fi
# The same module in the wasmtime CLI, one process per run (its compiled
# code cache on, as by default), and from a module compiled ahead of time.
WASMTIME="${WASMTIME:-$(command -v wasmtime || true)}"
if [ -n "$WASMTIME" ]; then
    "$WASMTIME" compile -o "$BENCH_TMP/hello.cwasm" "$BENCH_REPO/samples/out/hello.wasm"
    wt_ms=$(bench_median wasmtime "$RUNS" "$WASMTIME" run "$BENCH_REPO/samples/out/hello.wasm")
    rows+=("wasmtime run hello.wasm|$wt_ms")
    wtc_ms=$(bench_median wasmtime-aot "$RUNS" "$WASMTIME" run --allow-precompiled "$BENCH_TMP/hello.cwasm")
    rows+=("wasmtime run --allow-precompiled hello.cwasm|$wtc_ms")
fi
if command -v crun >/dev/null; then
    bundle=$(bench_busybox_bundle)
    bench_crun_ready
    crun_ms=$(cd "$bundle" && bench_median crun "$RUNS" crun run --bundle "$bundle" bench-crun)
    rows+=("crun run busybox /bin/true|$crun_ms")
fi

echo
echo "Wasm start, median of $RUNS runs ($(nproc) CPUs, $(uname -r))"
printf '%-50s %10s\n' "command" "ms"
for r in "${rows[@]}"; do printf '%-50s %10s\n' "${r%%|*}" "${r##*|}"; done
echo
printf 'berthd, per container (median): create %s us, start->running %s us, start->exit %s us, create+start->exit %s us\n' \
    "$create_us" "$start_us" "$exit_us" "$total_us"
[ -n "${wt_ms:-}" ] && python3 -c "print('ratio berth/wasmtime run: %.2f; berth/wasmtime run precompiled: %.2f' % ($berth_ms/$wt_ms, $berth_ms/$wtc_ms))"
[ -n "${crun_ms:-}" ] && python3 -c "print('ratio berth/crun: %.2f' % ($berth_ms/$crun_ms))"
[ -n "${runc_ms:-}" ] && python3 -c "print('ratio berth/runc: %.2f' % ($berth_ms/$runc_ms))"
python3 -c "print('targets: whole run < 5 ms: %s; daemon create+start->exit < 500 us: %s' % ('met' if $berth_ms < 5 else 'MISSED', 'met' if $total_us < 500 else 'MISSED'))"
