#!/usr/bin/env bash
# Builds every berth sample into samples/out/ (see samples/README.md).
#
#   samples/build.sh            build (idempotent; a warm re-run takes well under a second)
#   samples/build.sh --import   build, then import the runnable samples as images
#                               into a running berthd with `berth wasm import`
#
# Needs: cargo with the wasm32-wasip1 and wasm32-wasip2 targets, and wat2wasm.
# The berth binary for --import is $BERTH, else `berth` on PATH, else
# ./target/debug/berth at the repository root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/.." && pwd)"
target_dir="$here/target"
out="$here/out"

die() { echo "samples/build.sh: error: $*" >&2; exit 1; }

import=0
for arg in "$@"; do
    case "$arg" in
        --import) import=1 ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$arg' (usage: samples/build.sh [--import])" ;;
    esac
done

# --- prerequisites -----------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found; install Rust (https://rustup.rs)"
command -v rustc >/dev/null || die "rustc not found; install Rust (https://rustup.rs)"
for t in wasm32-wasip1 wasm32-wasip2; do
    libdir="$(cd "$here" && rustc --print target-libdir --target "$t" 2>/dev/null)" || libdir=""
    if [ -z "$libdir" ] || ! ls "$libdir"/libstd-*.rlib >/dev/null 2>&1; then
        die "Rust target $t is not installed; run: rustup target add wasm32-wasip1 wasm32-wasip2"
    fi
done
command -v wat2wasm >/dev/null || die "wat2wasm not found; run: apt-get install wabt"

mkdir -p "$out"

# Copy only when the content changed, so mtimes of out/ stay put on re-runs.
put() {
    local src="$1" dst="$out/$2"
    [ -f "$src" ] || die "expected build output $src is missing"
    if ! cmp -s "$src" "$dst" 2>/dev/null; then
        cp "$src" "$dst.tmp" && mv -f "$dst.tmp" "$dst"
    fi
}

# --- Rust samples ------------------------------------------------------------
p1_bins=(hello spin memhog cat sleep)
p1_pkgs=()
for b in "${p1_bins[@]}"; do p1_pkgs+=(-p "$b"); done

echo "samples: cargo build --release --target wasm32-wasip1 (${p1_bins[*]})"
(cd "$here" && cargo build --quiet --release --target wasm32-wasip1 \
    --target-dir "$target_dir" "${p1_pkgs[@]}")
echo "samples: cargo build --release --target wasm32-wasip2 (hello-p2)"
(cd "$here" && cargo build --quiet --release --target wasm32-wasip2 \
    --target-dir "$target_dir" -p hello-p2)

for b in "${p1_bins[@]}"; do
    put "$target_dir/wasm32-wasip1/release/$b.wasm" "$b.wasm"
done
put "$target_dir/wasm32-wasip2/release/hello-p2.wasm" "hello-p2.wasm"

# --- WAT samples -------------------------------------------------------------
# wat/hello.wat becomes wat-hello.wasm (hello.wasm is the Rust one).
echo "samples: wat2wasm (hello exit7 missing-import trap)"
for w in hello exit7 missing-import trap; do
    name="$w"; [ "$w" = hello ] && name="wat-hello"
    src="$here/wat/$w.wat" dst="$out/$name.wasm"
    if [ ! -f "$dst" ] || [ "$src" -nt "$dst" ]; then
        wat2wasm "$src" -o "$dst.tmp" || die "wat2wasm failed on wat/$w.wat"
        mv -f "$dst.tmp" "$dst"
    fi
done
put "$here/wat/not-wasm.txt" "not-wasm.txt"

# --- check what came out -----------------------------------------------------
magic() { od -An -tx1 -N8 "$1" | tr -d ' \n'; }
for f in hello spin memhog cat sleep wat-hello exit7 missing-import trap; do
    [ "$(magic "$out/$f.wasm")" = 0061736d01000000 ] \
        || die "out/$f.wasm is not a core wasm module (bad header)"
done
[ "$(magic "$out/hello-p2.wasm")" = 0061736d0d000100 ] \
    || die "out/hello-p2.wasm is not a wasm component (bad header)"

echo "samples: built into $out:"
(cd "$out" && ls -l hello.wasm spin.wasm memhog.wasm cat.wasm sleep.wasm hello-p2.wasm \
    wat-hello.wasm exit7.wasm missing-import.wasm trap.wasm not-wasm.txt \
    | awk '{ printf "  %-20s %8d bytes\n", $9, $5 }')

# --- optional: images --------------------------------------------------------
[ "$import" = 1 ] || exit 0

if [ -n "${BERTH:-}" ]; then
    berth="$BERTH"
    case "$berth" in */*) ;; *) berth="$(command -v "$berth" || echo "$berth")" ;; esac
elif command -v berth >/dev/null; then
    berth="$(command -v berth)"
else
    berth="$repo_root/target/debug/berth"
fi
[ -x "$berth" ] || die "berth CLI not found at '$berth'; build it (cargo build -p berth-cli) or set BERTH=/path/to/berth"

for name in hello hello-p2 spin memhog cat sleep wat-hello; do
    echo "samples: $berth wasm import out/$name.wasm $name:latest"
    "$berth" wasm import "$out/$name.wasm" "$name:latest" \
        || die "'berth wasm import out/$name.wasm $name:latest' failed (is berthd running?)"
done
