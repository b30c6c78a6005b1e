#!/usr/bin/env bash
# Builds a busybox root filesystem tarball for native berth containers from
# Debian's busybox-static (see samples/busybox/README.md).
#
#   samples/busybox/build.sh            build samples/out/busybox-rootfs.tar (idempotent)
#   samples/busybox/build.sh --import   build, then import it into a running berthd as
#                                       busybox:latest with `berth import`
#
# Needs: GNU tar, and /bin/busybox from Debian's busybox-static (installed with
# apt-get when missing and run as root). BUSYBOX=/path/to/static/busybox uses
# another binary. The berth binary for --import is $BERTH, else `berth` on PATH,
# else ./target/debug/berth at the repository root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
samples="$(cd "$here/.." && pwd)"
repo_root="$(cd "$samples/.." && pwd)"
out="$samples/out"
tarball="$out/busybox-rootfs.tar"
image="busybox:latest"

die() { echo "samples/busybox/build.sh: error: $*" >&2; exit 1; }

import=0
for arg in "$@"; do
    case "$arg" in
        --import) import=1 ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$arg' (usage: samples/busybox/build.sh [--import])" ;;
    esac
done

# --- prerequisites -----------------------------------------------------------
tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is needed (apt-get install tar)"

if [ -n "${BUSYBOX:-}" ]; then
    busybox="$BUSYBOX"
    [ -x "$busybox" ] || die "BUSYBOX=$busybox is not an executable"
else
    busybox=/bin/busybox
    if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
        if [ "$(id -u)" = 0 ]; then
            echo "busybox: installing busybox-static (apt-get)"
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y -q busybox-static >/dev/null 2>&1 \
                || { apt-get update -q >/dev/null && apt-get install -y -q busybox-static >/dev/null; } \
                || die "apt-get install busybox-static failed"
        else
            die "Debian's busybox-static is not installed; run: sudo apt-get install busybox-static
       (or set BUSYBOX=/path/to/a/statically/linked/busybox)"
        fi
    fi
    [ -x "$busybox" ] || die "$busybox is missing although busybox-static is installed"
fi
# A dynamically linked busybox would not run in a rootfs without libc: look
# for a PT_INTERP program header (ELF read with od; host byte order).
num() { od -An -t "u$3" -j "$2" -N "$3" "$1" | tr -d ' \n'; }
has_interp() {
    [ "$(od -An -c -N4 "$1" | tr -d ' \n')" = '177ELF' ] || return 2
    local class phoff phentsize phnum i
    class="$(num "$1" 4 1)"
    if [ "$class" = 2 ]; then
        phoff="$(num "$1" 32 8)" phentsize="$(num "$1" 54 2)" phnum="$(num "$1" 56 2)"
    else
        phoff="$(num "$1" 28 4)" phentsize="$(num "$1" 42 2)" phnum="$(num "$1" 44 2)"
    fi
    for ((i = 0; i < phnum; i++)); do
        [ "$(num "$1" $((phoff + i * phentsize)) 4)" = 3 ] && return 0
    done
    return 1
}
if has_interp "$busybox"; then
    die "$busybox is dynamically linked; the rootfs needs a static one (busybox-static)"
elif [ $? = 2 ]; then
    die "$busybox is not an ELF executable"
fi

# --- the tree ----------------------------------------------------------------
mkdir -p "$out"
stage="$(mktemp -d "${TMPDIR:-/tmp}/berth-busybox.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
umask 022
r="$stage/rootfs"
mkdir -p "$r"/{bin,dev,etc,home/app,proc,root,sys,tmp,usr/bin,var}
chmod 1777 "$r/tmp"
chmod 0700 "$r/root"

cp "$busybox" "$r/bin/busybox"
chmod 0755 "$r/bin/busybox"
applets="$("$r/bin/busybox" --list)" || die "'$busybox --list' failed"
n=0
for a in $applets; do
    case "$a" in busybox|*/*|'') continue ;; esac
    ln -s busybox "$r/bin/$a"
    n=$((n + 1))
done
[ -e "$r/bin/sh" ] || ln -s busybox "$r/bin/sh"
# For `#!/usr/bin/env ...` scripts.
ln -s ../../bin/busybox "$r/usr/bin/env"

cat > "$r/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$r/etc/group" <<'GROUP'
root:x:0:
app:x:1000:
nogroup:x:65534:
GROUP
chmod 0644 "$r/etc/passwd" "$r/etc/group"

# --- the tarball ---------------------------------------------------------------
# Deterministic: names sorted, mtime 0, numeric owners, GNU format (no PAX
# atime/ctime). Everything is root's except /home/app, which is app's
# (1000:1000) and appended last, so no chown (and no root) is needed.
common=(--sort=name --mtime=@0 --numeric-owner --format=gnu -C "$r")
tar "${common[@]}" --owner=0 --group=0 --exclude=./home/app -cf "$stage/rootfs.tar" .
tar "${common[@]}" --owner=1000 --group=1000 -rf "$stage/rootfs.tar" ./home/app
if cmp -s "$stage/rootfs.tar" "$tarball"; then
    echo "busybox: $tarball is up to date"
else
    mv -f "$stage/rootfs.tar" "$tarball"
    echo "busybox: wrote $tarball"
fi
version="$("$busybox" 2>&1 | head -1 | awk '{print $2}')" || version="?"
printf '  busybox %s, %d applets, %d bytes, sha256 %s\n' "$version" "$n" \
    "$(stat -c %s "$tarball")" "$(sha256sum "$tarball" | cut -d' ' -f1)"

# --- optional: the image -------------------------------------------------------
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

echo "busybox: $berth import samples/out/busybox-rootfs.tar $image"
"$berth" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["sh"]' \
    "$tarball" "$image" \
    || die "'berth import $tarball $image' failed (is berthd running?)"
