#!/usr/bin/env bash
# Build the aarch64 sysroot that `gs-bench --target qemu-aarch64` runs LiteRT / ONNX Runtime in.
#
#   sudo runtime_bench/qemu/setup.sh [ROOTFS]      (default $GS_BENCH_QEMU_ROOTFS or
#                                                   ~/.cache/gs-mobile/qemu-aarch64-rootfs)
#
# Resumable: each step leaves a stamp file and is skipped when it is there; a killed run resumes
# where it stopped (debootstrap keeps the packages it already downloaded). Steps:
#   1. Debian's dynamic `qemu-aarch64` (package qemu-user: the static build cannot load the
#      instruction-counting plugin), debootstrap and gcc, installed with apt-get if missing;
#   2. the arm64 packages of a minimal Debian with python3 (debootstrap --foreign), unpacked with
#      dpkg-deb -x: nothing in the sysroot is ever executed except python3 through qemu, so no
#      maintainer script and no binfmt_misc registration (which would change the shared kernel);
#   3. aarch64 wheels of numpy, ai-edge-litert and onnxruntime, installed by THIS host's pip into
#      ROOTFS/opt/gs-bench-site (`--platform manylinux_2_27_aarch64 ...`: LiteRT's wheel carries
#      the 2_27 tag), so no pip runs under emulation;
#   4. a check that imports both runtimes under qemu.
# gs-bench runs `qemu-aarch64 -L ROOTFS -cpu CORE ROOTFS/usr/bin/python3 ...` without chroot or
# root; the core model's /proc/cpuinfo comes from a small per-core view of the sysroot (targets.py).
set -euo pipefail

ROOTFS=${1:-${GS_BENCH_QEMU_ROOTFS:-$HOME/.cache/gs-mobile/qemu-aarch64-rootfs}}
SUITE=${SUITE:-bookworm}                 # bookworm's python3 is 3.11: the wheels below must match
PYVER=${PYVER:-3.11}
LITERT=${LITERT:-ai-edge-litert==2.3.0}
ORT=${ORT:-onnxruntime==1.32.0}
NUMPY=${NUMPY:-numpy==2.4.6}
PIP=${PIP:-$(command -v pip3 || command -v pip || true)}
T0=$(date +%s)

die() { echo "setup.sh: $*" >&2; exit 1; }
step() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
[ -n "$PIP" ] || die "no pip on the host (needed to install the aarch64 wheels)"

mirror() {  # the Debian mirror this host already uses, else deb.debian.org
  local m=""
  [ -f /etc/apt/sources.list ] && m=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  [ -z "$m" ] && [ -d /etc/apt/sources.list.d ] && \
    m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  echo "${MIRROR:-${m:-http://deb.debian.org/debian}}"
}

need=()
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "run as root to install ${need[*]} (or install them first)"
  step "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$ROOTFS"
if [ ! -e "$ROOTFS/.gs-debs-unpacked" ]; then
  [ "$(id -u)" = 0 ] || die "run as root (debootstrap needs it)"
  step "downloading arm64 Debian $SUITE packages (debootstrap --foreign; a few minutes)"
  debootstrap --arch=arm64 --foreign --variant=minbase --include=python3 "$SUITE" "$ROOTFS" "$(mirror)" \
    | grep -E '^I: (Retrieving|Extracting) ' | awk '{n++} n % 25 == 0 {print "  ... " n " packages"}'
  step "unpacking $(ls "$ROOTFS"/var/cache/apt/archives/*.deb | wc -l) packages"
  for deb in "$ROOTFS"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$ROOTFS"; done
  touch "$ROOTFS/.gs-debs-unpacked"
fi
[ -e "$ROOTFS/usr/bin/python3" ] || die "no python3 in $ROOTFS after debootstrap; remove $ROOTFS and re-run"

SITE="$ROOTFS/opt/gs-bench-site"
STAMP="$SITE/.gs-$(echo "$NUMPY $LITERT $ORT" | tr -c 'A-Za-z0-9.=\n' _)"
if [ ! -e "$STAMP" ]; then
  step "installing aarch64 wheels: $NUMPY $LITERT $ORT"
  rm -rf "$SITE.partial"
  "$PIP" install --quiet --target "$SITE.partial" --platform manylinux_2_28_aarch64 \
    --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    --python-version "$PYVER" --implementation cp --only-binary=:all: "$NUMPY" "$LITERT" "$ORT"
  rm -rf "$SITE" && mv "$SITE.partial" "$SITE"
  touch "$STAMP"
fi

step "checking the runtimes under qemu-aarch64"
cat > "$ROOTFS/tmp/gs-bench-check.py" <<'PY'
import platform, numpy, onnxruntime
from ai_edge_litert.interpreter import Interpreter
print("aarch64 runtimes OK:", platform.machine(), "numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__)
PY
# ONNX Runtime and LiteRT read /proc/cpuinfo at import: give this check an ARM one (Cortex-A72).
mkdir -p "$ROOTFS/proc"
[ -s "$ROOTFS/proc/cpuinfo" ] || printf 'processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' > "$ROOTFS/proc/cpuinfo"
PYTHONPATH=/opt/gs-bench-site qemu-aarch64 -L "$ROOTFS" -cpu cortex-a72 "$ROOTFS/usr/bin/python3" -S -c \
  "import sys; sys.path.insert(0, '$SITE'); exec(open('$ROOTFS/tmp/gs-bench-check.py').read())"
step "sysroot ready: $ROOTFS   (gs-bench EXPORT_DIR --target qemu-aarch64 --qemu-rootfs $ROOTFS)"
