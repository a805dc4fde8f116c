#!/usr/bin/env bash
# Build the aarch64 rootfs that `gs-bench --target qemu-aarch64` runs LiteRT / ONNX Runtime in.
#
#   sudo runtime_bench/qemu/setup.sh [ROOTFS]      (default $GS_BENCH_QEMU_ROOTFS or
#                                                   ~/.cache/gs-mobile/qemu-aarch64-rootfs)
#
# What it does (see ../shared/TOOLCHAIN.md, "ARM (aarch64) without hardware"):
#   1. qemu-user-static + debootstrap (installed with apt-get if missing), binfmt for aarch64;
#   2. a minimal Debian arm64 rootfs with python3 + pip (debootstrap --foreign, then --second-stage
#      when binfmt_misc handles aarch64, else the downloaded packages unpacked with dpkg-deb -x);
#   3. aarch64 wheels of numpy, ai-edge-litert and onnxruntime downloaded on THIS host with
#      `pip download --platform manylinux_2_28_aarch64 --only-binary=:all:` and installed offline
#      inside the rootfs;
#   4. an ARM-looking cpuinfo at ROOTFS/etc/gs-bench-cpuinfo: both runtimes crash at import under
#      qemu-user unless /proc/cpuinfo looks like ARM; gs-bench bind-mounts it in a private mount
#      namespace (unshare -m) for each run.
# Timings under emulation mean nothing: the target checks outputs against x86 only.
set -euo pipefail

ROOTFS=${1:-${GS_BENCH_QEMU_ROOTFS:-$HOME/.cache/gs-mobile/qemu-aarch64-rootfs}}
SUITE=${SUITE:-bookworm}                 # bookworm's python3 is 3.11: the wheels below must match
PYVER=${PYVER:-3.11}
LITERT=${LITERT:-ai-edge-litert==2.3.0}
ORT=${ORT:-onnxruntime==1.32.0}
NUMPY=${NUMPY:-numpy==2.4.6}
PIP=${PIP:-$(command -v pip3 || command -v pip || true)}

die() { echo "setup.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and mount need it)"
[ -n "$PIP" ] || die "no pip on the host (needed to download aarch64 wheels)"

mirror() {  # the Debian mirror this host already uses, else deb.debian.org
  local m=""
  [ -f /etc/apt/sources.list ] && m=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  [ -z "$m" ] && [ -d /etc/apt/sources.list.d ] && \
    m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  echo "${MIRROR:-${m:-http://deb.debian.org/debian}}"
}

if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-user-static debootstrap binfmt-support
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && [ -z "${NO_BINFMT:-}" ]; then
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi

if [ ! -x "$ROOTFS/usr/bin/python3" ]; then
  mkdir -p "$ROOTFS"
  debootstrap --arch=arm64 --foreign --variant=minbase \
    --include=python3,python3-pip,ca-certificates "$SUITE" "$ROOTFS" "$(mirror)"
  cp "$(command -v qemu-aarch64-static)" "$ROOTFS/usr/bin/"
  if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && [ -z "${NO_BINFMT:-}" ]; then
    chroot "$ROOTFS" /debootstrap/debootstrap --second-stage
  else
    # No binfmt_misc (typical in containers; registering it would change the shared kernel):
    # unpack every downloaded package without running maintainer scripts. gs-bench starts
    # python3 through qemu-aarch64-static explicitly, so nothing else needs to execute.
    echo "setup.sh: no binfmt for aarch64; unpacking packages without their scripts" >&2
    for deb in "$ROOTFS"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$ROOTFS"; done
  fi
fi
[ -x "$ROOTFS/usr/bin/python3" ] || die "no python3 in $ROOTFS after debootstrap"
cp "$(command -v qemu-aarch64-static)" "$ROOTFS/usr/bin/"

WHEELS="$ROOTFS/opt/gs-bench-wheels"
mkdir -p "$WHEELS"
"$PIP" download --dest "$WHEELS" --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
  --platform manylinux2014_aarch64 --python-version "$PYVER" --implementation cp --only-binary=:all: \
  "$NUMPY" "$LITERT" "$ORT"

N=$(nproc)
: > "$ROOTFS/etc/gs-bench-cpuinfo"
for ((i = 0; i < N; i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i" \
    >> "$ROOTFS/etc/gs-bench-cpuinfo"
done

in_rootfs() {  # run an aarch64 command (plain words, no quoting) in the rootfs with the ARM cpuinfo
  unshare -m -- sh -c "mount -t proc proc '$ROOTFS/proc' && mount --bind '$ROOTFS/etc/gs-bench-cpuinfo' \
'$ROOTFS/proc/cpuinfo' && exec chroot '$ROOTFS' /usr/bin/qemu-aarch64-static $*"
}
in_rootfs /usr/bin/python3 -m pip install --break-system-packages --no-index \
  --find-links /opt/gs-bench-wheels "$NUMPY" "$LITERT" "$ORT"
cat > "$ROOTFS/tmp/gs-bench-check.py" <<'PY'
import numpy, onnxruntime
from ai_edge_litert.interpreter import Interpreter
print("aarch64 runtimes OK: numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__)
PY
in_rootfs /usr/bin/python3 /tmp/gs-bench-check.py
echo "rootfs ready: $ROOTFS   (gs-bench EXPORT_DIR --target qemu-aarch64 --qemu-rootfs $ROOTFS)"
