"""aarch64 under qemu-user: the core models, the sysroot, the counting plugin, the counted command line.

A phone's core is not available on an x86 CI machine, but its instruction stream is: QEMU's TCG
emulates a named Arm core (its ISA features: dot product on Cortex-A76 / Neoverse-N1, i8mm on
``max``) and XNNPACK picks its kernels for that core exactly as on the phone. A small TCG plugin
(``qemu/count_insns.c``) counts the instructions one inference executes, split into MAC classes
(SDOT, SMMLA, FMLA, SMLAL, other). The count is a property of (binary, core model, input size):
the same on every host, however loaded, so it works as a CI gate and as a cost figure across
machines. It is a count of instructions, not a time: a SDOT does 16 MACs, an FMLA 4.

Layout on disk (``runtime_bench/qemu/setup.sh`` makes the sysroot, ~30 s):
    ROOTFS/                     Debian arm64 packages (python3) + ROOTFS/opt/gs-bench-site wheels
    ROOTFS/.gs-cores/CORE/      a view of ROOTFS (symlinks) whose proc/cpuinfo names CORE
qemu runs ``qemu-aarch64 -L VIEW -cpu MODEL ROOTFS/usr/bin/python3 -m runtime_bench.qemu_worker``:
``-L`` makes guest paths resolve inside VIEW first, so no chroot, mount or root is needed, and the
guest reads the host's /sys (CPU topology) and the view's /proc/cpuinfo (the core's MIDR). Both
are needed: without them LiteRT's cpuinfo fails and XNNPACK is silently not used.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BenchError

PACKAGE_DIR = Path(__file__).resolve().parent
PLUGIN_SOURCE = PACKAGE_DIR / "qemu" / "count_insns.c"
SETUP_SCRIPT = PACKAGE_DIR / "qemu" / "setup.sh"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gs-mobile"
DEFAULT_ROOTFS = Path(os.environ.get("GS_BENCH_QEMU_ROOTFS", CACHE / "qemu-aarch64-rootfs"))
SITE = "opt/gs-bench-site"
#: syscall number the guest issues to snapshot the counters (see count_insns.c).
MARK_SYSCALL = 0x6773
CLASSES = ("sdot", "smmla", "fmla", "smlal")
_PLUGIN_LINE = re.compile(r"^(mark|exit) (\d+)((?: \w+ \d+)+)$")


@dataclass(frozen=True)
class Core:
    """One emulated Arm core: QEMU's -cpu value and the MIDR its /proc/cpuinfo reports."""

    name: str
    qemu_cpu: str
    part: int
    features: str
    about: str


_DOTPROD = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
CORES: dict[str, Core] = {c.name: c for c in (
    Core("neoverse-n1", "neoverse-n1", 0xD0C, _DOTPROD, "Armv8.2 + dot product (server twin of Cortex-A76)"),
    Core("cortex-a76", "cortex-a76", 0xD0B, _DOTPROD, "Armv8.2 + dot product: big core of 2019-2021 phones"),
    Core("cortex-a72", "cortex-a72", 0xD08, "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid",
         "Armv8.0 NEON, no dot product (Raspberry Pi 4)"),
    Core("cortex-a53", "cortex-a53", 0xD03, "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid",
         "Armv8.0 in-order little core, no dot product"),
    Core("max-i8mm", "max,sve=off,sme=off", 0xD40, _DOTPROD + " i8mm bf16",
         "QEMU's newest core without SVE/SME: dot product + i8mm (SMMLA), as on Armv8.6+ phones"),
)}
#: Why some names are refused (QEMU 7.2 lacks the model, or the model gives wrong int8 results).
REFUSED = {
    "max": "QEMU 7.2's plain 'max' enables SME, on which XNNPACK's int8 kernels give wrong outputs; "
           "use max-i8mm",
    "cortex-a55": "QEMU 7.2 has no cortex-a55 model; cortex-a76 (dot product) or cortex-a53 (little core) are "
                  "the nearest",
}
DEFAULT_CORE = "neoverse-n1"


def core(name: str) -> Core:
    """The Core called ``name``; BenchError naming the choices otherwise."""
    if name in CORES:
        return CORES[name]
    why = REFUSED.get(name, "unknown core model")
    raise BenchError(f"--arm-cpu {name!r}: {why} (choose from {', '.join(CORES)})")


def qemu_binary() -> Path:
    """Debian's dynamic qemu-aarch64 (package qemu-user): the static build cannot load plugins."""
    exe = shutil.which("qemu-aarch64")
    if exe is None:
        raise BenchError(f"qemu-aarch64 not found (Debian package qemu-user); run {SETUP_SCRIPT}")
    return Path(exe)


def qemu_version(exe: Path) -> str:
    """'7.2.22' from ``qemu-aarch64 --version``."""
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else "unknown"


def check_rootfs(rootfs: Path) -> None:
    """BenchError with the set-up command unless ``rootfs`` holds python3 and the runtimes."""
    if not (rootfs / "usr/bin/python3").exists() or not (rootfs / SITE).is_dir():
        raise BenchError(f"qemu-aarch64: no aarch64 sysroot at {rootfs}; run {SETUP_SCRIPT} {rootfs} "
                         f"(about 30 s, as root)")


def why_unavailable(rootfs: Path = DEFAULT_ROOTFS) -> str | None:
    """Why aarch64 counts cannot run on this machine (None when they can)."""
    try:
        check_rootfs(rootfs)
        qemu_binary()
    except BenchError as exc:
        return str(exc)
    if shutil.which(os.environ.get("CC", "gcc")) is None and shutil.which("cc") is None:
        return "no C compiler for the qemu counting plugin (apt-get install gcc)"
    return None


def _cpu_count() -> int:
    """CPUs the host's /sys lists as possible: the guest's cpuinfo must describe as many."""
    try:
        text = Path("/sys/devices/system/cpu/possible").read_text().strip()
        return max(int(part.split("-")[-1]) for part in text.split(",")) + 1
    except (OSError, ValueError):
        return os.cpu_count() or 1


def cpuinfo_text(c: Core, n: int) -> str:
    """A Linux arm64 /proc/cpuinfo for ``n`` cores of model ``c``."""
    block = (f"processor\t: {{i}}\nBogoMIPS\t: 50.00\nFeatures\t: {c.features}\nCPU implementer\t: 0x41\n"
             f"CPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0x{c.part:03x}\nCPU revision\t: 1\n\n")
    return "".join(block.format(i=i) for i in range(n))


def core_view(rootfs: Path, c: Core) -> Path:
    """ROOTFS/.gs-cores/CORE: symlinks to every top-level entry of ROOTFS, with its own proc/cpuinfo."""
    view = rootfs / ".gs-cores" / c.name
    (view / "proc").mkdir(parents=True, exist_ok=True)
    for entry in rootfs.iterdir():
        link = view / entry.name
        if entry.name in ("proc", ".gs-cores") or link.is_symlink():
            continue
        link.symlink_to(entry)
    text = cpuinfo_text(c, _cpu_count())
    cpuinfo = view / "proc" / "cpuinfo"
    if not cpuinfo.exists() or cpuinfo.read_text() != text:
        tmp = cpuinfo.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, cpuinfo)
    return view


def plugin_path() -> Path:
    """The counting plugin, compiled from ``qemu/count_insns.c`` on first use and cached by its hash."""
    digest = hashlib.sha256(PLUGIN_SOURCE.read_bytes()).hexdigest()[:16]
    lib = CACHE / "qemu-plugin" / f"libgs_count-{digest}.so"
    if lib.exists():
        return lib
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        raise BenchError("compiling the qemu counting plugin needs gcc (apt-get install gcc)")
    lib.parent.mkdir(parents=True, exist_ok=True)
    tmp = lib.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(PLUGIN_SOURCE)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise BenchError(f"compiling {PLUGIN_SOURCE.name} failed: {tail}")
    os.replace(tmp, lib)
    return lib


def parse_plugin_output(text: str) -> list[dict[str, int]]:
    """The plugin's snapshot lines -> [{"mark": arg, "total": n, "sdot": n, ...}, ...] (exit last)."""
    snaps = []
    for line in text.splitlines():
        m = _PLUGIN_LINE.match(line.strip())
        if m is None:
            raise BenchError(f"unreadable line from the counting plugin: {line.strip()[:80]!r}")
        fields = m.group(3).split()
        snap = {fields[i]: int(fields[i + 1]) for i in range(0, len(fields), 2)}
        snap["mark"] = int(m.group(2)) if m.group(1) == "mark" else -1
        snaps.append(snap)
    return snaps


def between(snaps: list[dict[str, int]], first: int, last: int) -> dict[str, int]:
    """Counts executed between the marks ``first`` and ``last``: total, the MAC classes and 'other'."""
    by_mark = {s["mark"]: s for s in snaps}
    if first not in by_mark or last not in by_mark:
        raise BenchError(f"the counted run did not reach marks {first} and {last}")
    a, b = by_mark[first], by_mark[last]
    counts = {k: b[k] - a[k] for k in ("total", *CLASSES)}
    counts["other"] = counts["total"] - sum(counts[k] for k in CLASSES)
    return counts


def guest_env(rootfs: Path, threads: int) -> dict[str, str]:
    """The guest's environment: only what it needs (a host LD_LIBRARY_PATH would mislead its loader)."""
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": str(threads),
            "PYTHONPATH": os.pathsep.join([str(PACKAGE_DIR.parent), str(rootfs / SITE)])}


@dataclass(frozen=True)
class Emulator:
    """Everything resolved once per bench run: the qemu binary and its version, the core's sysroot
    view and the compiled plugin; ``command`` then builds each artifact's command line."""

    qemu: Path
    version: str
    rootfs: Path
    view: Path
    core: Core
    plugin: Path

    @classmethod
    def prepare(cls, rootfs: Path, c: Core) -> "Emulator":
        """Check the sysroot, find qemu, make the core's view and compile the plugin (BenchError if not)."""
        check_rootfs(rootfs)
        exe = qemu_binary()
        return cls(exe, qemu_version(exe), rootfs, core_view(rootfs, c), c, plugin_path())

    def command(self, args: list[str], counts_out: Path) -> list[str]:
        """``qemu-aarch64 -L VIEW -cpu MODEL -plugin PLUGIN,out=COUNTS ROOTFS/usr/bin/python3 ARGS``."""
        return [str(self.qemu), "-L", str(self.view), "-cpu", self.core.qemu_cpu,
                "-plugin", f"{self.plugin},out={counts_out}", str(self.rootfs / "usr/bin/python3"), *args]


def cost_lines(results: list[dict[str, Any]]) -> list[str]:
    """'ARM cost on neoverse-n1: 31.9x fewer instructions ...' for each student counted under qemu."""
    lines = []
    teachers = {r["runtime"]: r for r in results if r.get("role") == "teacher"}
    for r in results:
        meta, ratio = r.get("instructions") or {}, r.get("instruction_ratio_vs_teacher")
        if ratio and meta.get("core"):
            t = teachers.get(r["runtime"], {})
            lines.append(f"ARM cost on {meta['core']}: {ratio:.1f}x fewer instructions per inference "
                         f"({r['name']} vs {t.get('name', 'teacher')}, {r['runtime']}, 1 thread; "
                         f"{r['instructions_per_inference'] / 1e6:,.1f} M vs "
                         f"{t.get('instructions_per_inference', 0) / 1e6:,.1f} M; instructions, not time)")
    return lines
