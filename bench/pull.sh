#!/usr/bin/env bash
# Cold pull of a multi-layer image (5 gzip layers of random data, about
# 50 MB in all) from a distribution registry on loopback: `berth pull`
# (whole CLI; the image is downloaded, verified, stored durably and its
# layers unpacked ready to run) against `skopeo copy docker://... oci:DIR`
# (download and verify into an OCI layout), median of RUNS runs each.
#
# Every berth run starts from an empty berthd root (a fresh daemon, started
# before the clock starts), so nothing is cached: not blobs, not unpacked
# layers, not registry tokens or connections. Every skopeo run writes a new
# directory.
#
#   bench/pull.sh            (RUNS=11 by default)
#
# Needs: docker-registry, skopeo, python3.
source "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-11}"
LAYERS="${LAYERS:-5}"
LAYER_MB="${LAYER_MB:-10}"
need docker-registry "apt-get install docker-registry"
need skopeo "apt-get install skopeo"
need python3 "apt-get install python3"

bench_build

# The registry, on a free loopback port.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$BENCH_TMP/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $BENCH_TMP/registry
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$BENCH_TMP/registry.yml" >"$BENCH_TMP/registry.log" 2>&1 &
REGISTRY_PID=$!
stop_registry() { kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true; }
trap 'stop_registry; bench_cleanup' EXIT
for _ in $(seq 200); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/v2/')" 2>/dev/null && break
    sleep 0.05
done

# The image: an OCI layout with LAYERS gzip layers of random bytes, pushed
# by skopeo.
python3 - "$BENCH_TMP/src" "$LAYERS" "$LAYER_MB" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return "sha256:" + d
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
layers, diff_ids = [], []
for i in range(n):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        data = os.urandom(mb * 1000 * 1000)
        info = tarfile.TarInfo(f"data/layer{i}.bin"); info.size = len(data); info.mtime = 0
        t.addfile(info, io.BytesIO(data))
    tar = raw.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    gz = gzip.compress(tar, compresslevel=1, mtime=0)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/true"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
                       "layers": layers}).encode()
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": put(manifest), "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
json.dump(index, open(os.path.join(out, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
PY
IMAGE="127.0.0.1:$PORT/bench:1"
skopeo copy --quiet --dest-tls-verify=false "oci:$BENCH_TMP/src:bench" "docker://$IMAGE"
SIZE_MB=$(du -sm "$BENCH_TMP/src/blobs" | cut -f1)

# Wall time of one command in ms.
ms() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>"$BENCH_TMP/last.err" || { echo "bench: '$*' failed:" >&2; cat "$BENCH_TMP/last.err" >&2; exit 1; }
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000)) | python3 -c 'import sys; print("%.1f" % (int(sys.stdin.read()) / 1000))'
}
median() { python3 -c 'import statistics, sys; print("%.1f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

berth_times=()
skopeo_times=()
for i in $(seq "$RUNS"); do
    # berth: a fresh daemon on an empty root, then the clock.
    if [ -n "$BENCH_DAEMON_PID" ]; then
        kill "$BENCH_DAEMON_PID"; wait "$BENCH_DAEMON_PID" 2>/dev/null || true
        BENCH_DAEMON_PID=""
    fi
    rm -rf "$BENCH_TMP/root"
    sync
    bench_start_daemon
    berth_times+=("$(ms "$BERTH" pull -q "$IMAGE")")
    # skopeo: a new OCI layout directory.
    rm -rf "$BENCH_TMP/skopeo-out"
    sync
    skopeo_times+=("$(ms skopeo copy --quiet --src-tls-verify=false "docker://$IMAGE" "oci:$BENCH_TMP/skopeo-out:bench")")
done
# The last pull's image is recorded, with every layer unpacked.
"$BERTH" image inspect "$IMAGE" >/dev/null
unpacked=$(find "$BENCH_TMP/root/layers" -mindepth 2 -maxdepth 2 -name diff | wc -l)

berth_ms=$(median "${berth_times[@]}")
skopeo_ms=$(median "${skopeo_times[@]}")
echo
echo "Cold pull of a $LAYERS-layer image ($SIZE_MB MB of gzip layers), median of $RUNS runs ($(nproc) CPUs, $(uname -r))"
printf '%-58s %10s\n' "command" "ms"
printf '%-58s %10s\n' "berth pull (verified, durable, unpacked)" "$berth_ms"
printf '%-58s %10s\n' "skopeo copy docker:// oci: (verified)" "$skopeo_ms"
echo "berth runs: ${berth_times[*]}"
echo "skopeo runs: ${skopeo_times[*]}"
echo "berth stored the image with $unpacked of $LAYERS layers unpacked"
python3 -c "r = $berth_ms / $skopeo_ms; print('ratio berth/skopeo: %.2f (target <= 1.0: %s)' % (r, 'met' if r <= 1.0 else 'MISSED'))"
