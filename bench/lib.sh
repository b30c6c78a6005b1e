# Shared helpers for berth's benchmarks (sourced, not run).
#
# Everything runs berth next to its peers in the same script, on the same
# machine state, and prints ratios; timings are never asserted.

set -euo pipefail
BENCH_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# BENCH_TMPDIR puts the scratch root (daemon root included) elsewhere, say
# on a tmpfs to take the disk out of the figures.
BENCH_TMP="$(mktemp -d "${BENCH_TMPDIR:-/tmp}/berth-bench.XXXXXX")"
# The CLI as releases ship it (`cargo dist-cli`: static, musl), when the
# target is installed; else the dynamically linked one (see bench_build).
BENCH_MUSL=x86_64-unknown-linux-musl
BERTH="$BENCH_REPO/target/release/berth"
BERTHD="$BENCH_REPO/target/release/berthd"
BENCH_DAEMON_PID=""
BENCH_HUGETLB_MOUNTED=0

bench_cleanup() {
    if [ -n "$BENCH_DAEMON_PID" ]; then
        kill "$BENCH_DAEMON_PID" 2>/dev/null || true
        wait "$BENCH_DAEMON_PID" 2>/dev/null || true
    fi
    if [ "$BENCH_HUGETLB_MOUNTED" = 1 ]; then
        # Cgroups left in the v1 hierarchy keep it alive after umount; with
        # them gone, the kernel hands hugetlb back to the cgroup2 mount.
        find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
        umount /sys/fs/cgroup/hugetlb 2>/dev/null && rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true
    fi
    rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT

# need COMMAND "apt-get install PACKAGE": installs PACKAGE (as root, through
# samples/setup.sh) when COMMAND is missing, before anything is built.
need() {
    command -v "$1" >/dev/null && return 0
    "$BENCH_REPO/samples/setup.sh" "${2##* }" >&2 || { echo "bench: $1 is required ($2)" >&2; exit 1; }
    command -v "$1" >/dev/null || { echo "bench: $1 is still missing after $2" >&2; exit 1; }
}

# Builds release binaries of berthd, berth-shim and berth (the static CLI
# when the musl target is installed).
bench_build() {
    # The samples' Rust targets and tools, checked before the long build.
    "$BENCH_REPO/samples/setup.sh" >&2
    if [ -n "${BENCH_NO_BUILD:-}" ]; then
        echo "bench: using the release binaries already built (BENCH_NO_BUILD)" >&2
    else
        echo "bench: cargo build --release --bins (berthd, berth, berth-shim)" >&2
        (cd "$BENCH_REPO" && cargo build --quiet --release --bins)
        if rustup target list --installed 2>/dev/null | grep -qx "$BENCH_MUSL"; then
            echo "bench: cargo dist-cli (berth, static)" >&2
            (cd "$BENCH_REPO" && cargo dist-cli --quiet)
        fi
        (cd "$BENCH_REPO" && samples/build.sh >/dev/null)
    fi
    local static="$BENCH_REPO/target/$BENCH_MUSL/release/berth"
    if [ -x "$static" ] && [ "$static" -nt "$BENCH_REPO/target/release/berth" ]; then
        BERTH="$static"
        echo "bench: CLI: $BERTH (static, as released)" >&2
    else
        echo "bench: CLI: $BERTH (dynamic; rustup target add $BENCH_MUSL for the released one)" >&2
    fi
}

# Starts a release berthd on a scratch root; sets BERTH_HOST.
bench_start_daemon() {
    export BERTH_HOST="unix://$BENCH_TMP/berth.sock"
    "$BERTHD" --root "$BENCH_TMP/root" --host "$BERTH_HOST" >"$BENCH_TMP/berthd.log" 2>&1 &
    BENCH_DAEMON_PID=$!
    for _ in $(seq 200); do "$BERTH" version >/dev/null 2>&1 && return 0; sleep 0.02; done
    echo "bench: berthd did not start:" >&2; cat "$BENCH_TMP/berthd.log" >&2; exit 1
}

# An OCI bundle whose rootfs is busybox-static and whose process is /bin/true.
bench_busybox_bundle() {
    local b="$BENCH_TMP/bundle"
    [ -d "$b" ] && { echo "$b"; return; }
    local busybox
    busybox="$(command -v busybox || true)"
    [ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q "statically linked" || busybox=/bin/busybox
    [ -x "$busybox" ] || { echo "bench: busybox-static is required (apt-get install busybox-static)" >&2; exit 1; }
    mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" "$b/rootfs/tmp"
    cp "$busybox" "$b/rootfs/bin/busybox"
    ln -sf busybox "$b/rootfs/bin/true"
    ln -sf busybox "$b/rootfs/bin/sh"
    (cd "$b" && runc spec)
    python3 - "$b/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"), indent=1)
PY
    echo "$b"
}

# crun 1.8 refuses a hybrid cgroup layout while the cgroup2 mount holds a
# controller (hugetlb on this kind of machine): give hugetlb a v1 hierarchy
# for the run; bench_cleanup undoes it.
bench_crun_ready() {
    local ctl=/sys/fs/cgroup/unified/cgroup.controllers
    if [ -f "$ctl" ] && grep -qw hugetlb "$ctl" && [ ! -d /sys/fs/cgroup/hugetlb ]; then
        mkdir -p /sys/fs/cgroup/hugetlb
        mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
        BENCH_HUGETLB_MOUNTED=1
    fi
}

# Median wall time in ms of RUNS runs of a command, via hyperfine.
# Usage: bench_median NAME RUNS CMD...
bench_median() {
    local name="$1" runs="$2"; shift 2
    hyperfine -N --style none --warmup 5 --runs "$runs" --export-json "$BENCH_TMP/$name.json" "$*" >/dev/null 2>&1 \
        || { echo "bench: '$*' failed" >&2; "$@" >&2 || true; exit 1; }
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.3f" % (r["median"]*1000))' "$BENCH_TMP/$name.json"
}

# Rounds: the commands of a comparison take turns, a few runs each, so that
# a drift in the machine's state (another process, the filesystem's pile of
# recently freed inodes, a daemon's deferred work) falls on all of them.
# Usage: bench_round NAME RUNS CMD...   (appends RUNS wall times in ms)
#        bench_round_median NAME        (the median of all of NAME's runs)
bench_round() {
    local name="$1" runs="$2"; shift 2
    hyperfine -N --style none --warmup 2 --runs "$runs" --export-json "$BENCH_TMP/$name.round.json" "$*" >/dev/null 2>&1 \
        || { echo "bench: '$*' failed" >&2; "$@" >&2 || true; exit 1; }
    python3 -c 'import json,sys; [print("%.4f" % (t*1000)) for t in json.load(open(sys.argv[1]))["results"][0]["times"]]' \
        "$BENCH_TMP/$name.round.json" >>"$BENCH_TMP/$name.times"
}
bench_round_median() {
    python3 -c 'import statistics,sys; print("%.3f" % statistics.median(float(l) for l in open(sys.argv[1])))' "$BENCH_TMP/$1.times"
}
