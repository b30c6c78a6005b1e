#!/usr/bin/env bash
# Native start: the whole `berth run --rm busybox /bin/true` (CLI process,
# API round trips, create, start under berth-shim, exit, remove) next to
# `runc run` and `crun run` of the same rootfs as an OCI bundle, and
# `unshare` of the same five namespaces as the floor, in one run.
#
#   bench/native-start.sh          (RUNS=50 by default, in ROUNDS=5 rounds:
#                                   the commands take turns, RUNS/ROUNDS
#                                   runs each, so that drift is shared)
#
# Needs: root, hyperfine, runc and/or crun, busybox-static, python3.
source "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-50}"
need hyperfine "apt-get install hyperfine"
need python3 "apt-get install python3"
need runc "apt-get install runc"
need crun "apt-get install crun"
[ "$(id -u)" = 0 ] || { echo "bench: native containers need root" >&2; exit 1; }

bench_build
(cd "$BENCH_REPO" && samples/busybox/build.sh >/dev/null)
bench_start_daemon
"$BERTH" import "$BENCH_REPO/samples/out/busybox-rootfs.tar" busybox >/dev/null

bundle=$(bench_busybox_bundle)
have_runc=$(command -v runc >/dev/null && echo 1 || true)
have_crun=$(command -v crun >/dev/null && echo 1 || true)
if [ -n "$have_crun" ]; then bench_crun_ready; fi
# ROUNDS rounds of RUNS/ROUNDS runs of each command, in turn.
ROUNDS="${ROUNDS:-5}"
per=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
for _ in $(seq "$ROUNDS"); do
    bench_round berth "$per" "$BERTH" run --rm busybox /bin/true
    bench_round unshare "$per" unshare --fork --pid --mount --net --ipc --uts true
    if [ -n "$have_runc" ]; then
        (cd "$bundle" && bench_round runc "$per" runc run --bundle "$bundle" bench-runc)
    fi
    if [ -n "$have_crun" ]; then
        (cd "$bundle" && bench_round crun "$per" crun run --bundle "$bundle" bench-crun)
    fi
done
rows=()
berth_ms=$(bench_round_median berth)
rows+=("berth run --rm busybox /bin/true|$berth_ms")
floor_ms=$(bench_round_median unshare)
rows+=("unshare --fork --pid --mount --net --ipc --uts true|$floor_ms")
if [ -n "$have_runc" ]; then
    runc_ms=$(bench_round_median runc)
    rows+=("runc run (same rootfs)|$runc_ms")
fi
if [ -n "$have_crun" ]; then
    crun_ms=$(bench_round_median crun)
    rows+=("crun run (same rootfs)|$crun_ms")
fi

# berthd's own share, from its per-container timings.
for i in $(seq 20); do "$BERTH" run --name "n$i" busybox /bin/true >/dev/null; done
read -r create_us start_us exit_us < <(
    for i in $(seq 20); do "$BERTH" inspect "n$i"; done | python3 -c '
import json, sys, statistics
dec = json.JSONDecoder(); text = sys.stdin.read(); pos = 0; rows = []
while pos < len(text):
    while pos < len(text) and text[pos].isspace(): pos += 1
    if pos >= len(text): break
    obj, pos = dec.raw_decode(text, pos)
    t = obj[0]["Timings"]
    rows.append((t["CreateMicros"], t["StartMicros"], t["StartToExitMicros"]))
med = lambda i: statistics.median(r[i] for r in rows)
print(med(0), med(1), med(2))')

echo
echo "Native start, median of $((per * ROUNDS)) runs in $ROUNDS rounds ($(nproc) CPUs, $(uname -r), cgroup2 mount: $(grep -o 'favordynmods' /proc/mounts | head -1 || true))"
printf '%-55s %10s\n' "command" "ms"
for r in "${rows[@]}"; do printf '%-55s %10s\n' "${r%%|*}" "${r##*|}"; done
echo
printf 'berthd, per container (median): create %s us, start->running %s us, start->exit %s us\n' "$create_us" "$start_us" "$exit_us"
[ -n "${crun_ms:-}" ] && python3 -c "print('ratio berth/crun: %.2f (target <= 1.0)' % ($berth_ms/$crun_ms))"
[ -n "${runc_ms:-}" ] && python3 -c "print('ratio berth/runc: %.2f' % ($berth_ms/$runc_ms))"
python3 -c "print('ratio berth/unshare floor: %.2f' % ($berth_ms/$floor_ms))"
