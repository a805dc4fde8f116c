"""gs-export RUN_DIR --format tflite|onnx|coreml|torchscript|all [--out DIR] [--size 256] [--io int8|uint8|float]
[--android APP_DIR] [--teacher PATH --arch ARCH] [--images DIR]

The format choices, and which options apply to which format (`--io` and `--android` to tflite
only), come from the format table in `export.formats`.

Exit codes: 0 exported and validated; 2 bad input or an artifact that failed validation (one line
on stderr, no partial file left).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from compress.errors import GsError
from compress.zoo import available_archs

from .errors import ExportError
from .formats import FORMATS

IO_DEFAULT = "int8"


def format_choices() -> tuple[str, ...]:
    """The --format choices: every format of the table, and "all"."""
    return (*FORMATS, "all")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage otherwise)
        raise ExportError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gs-export", description="Export a gs-compress student to validated mobile artifacts.")
    p.add_argument("run", type=Path, help="RUN_DIR written by gs-compress (or its student.pt)")
    p.add_argument("--format", action="append", default=None, metavar="FMT",
                   help=f"one of {', '.join(format_choices())}; repeat or comma-separate (default: all)")
    p.add_argument("--out", type=Path, default=None, help="EXPORT_DIR (default: RUN_DIR/export)")
    p.add_argument("--size", type=int, default=256, help="square export resolution (default 256)")
    p.add_argument("--io", choices=("int8", "uint8", "float"), default=None,
                   help=f"input/output type of the INT8 TFLite model (default {IO_DEFAULT})")
    p.add_argument("--android", type=Path, default=None, metavar="APP_DIR",
                   help="also install the INT8 .tflite and manifest.json into this Android app project")
    p.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint (default: the one recorded in student.pt)")
    p.add_argument("--arch", choices=available_archs(), default=None,
                   help="architecture of --teacher (the student must be the same)")
    p.add_argument("--images", type=Path, default=None, help="validation photos (default: scikit-image samples); unreadable files are "
                   "skipped with a warning")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    return p


def _formats(values: list[str] | None) -> list[str]:
    items = [f.strip() for v in (values or ["all"]) for f in v.split(",") if f.strip()]
    choices = format_choices()
    bad = [f for f in items if f not in choices]
    if bad or not items:
        raise ExportError(f"unknown format {', '.join(bad) or '(none)'} (choose from {', '.join(choices)})")
    return items


def check_options(args: argparse.Namespace, formats: list[str]) -> None:
    """Refuse an option (given on the command line) that none of the chosen formats uses."""
    chosen = set(FORMATS) if "all" in formats else set(formats)
    for option in dict.fromkeys(o for fmt in FORMATS.values() for o in fmt.options):
        if getattr(args, option, None) is not None and not any(option in FORMATS[f].options for f in chosen):
            users = [name for name, fmt in FORMATS.items() if option in fmt.options]
            raise ExportError(f"--{option.replace('_', '-')} applies to {', '.join(users)} only")


def _check_args(args: argparse.Namespace) -> None:
    if not 16 <= args.size <= 4096 or args.size % 4:
        raise ExportError(f"--size must be a multiple of 4 between 16 and 4096, got {args.size}")
    if args.android is not None and not (args.android / "app" / "src" / "main").is_dir():
        raise ExportError(f"--android {args.android} is not the Android demo project (no app/src/main)")
    if args.images is not None and not args.images.is_dir():
        raise ExportError(f"--images {args.images} is not a folder")


def _install_android(export_dir: Path, app_dir: Path) -> Path:
    from .android_assets import install_into_app

    try:
        return install_into_app(export_dir, app_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"cannot install into the Android app {app_dir}: {exc}") from None


def _summary(manifest: dict) -> str:
    lines = [f"exported to {manifest['_dir']}"]
    for a in manifest["artifacts"]:
        ref = a.get("psnr_vs_reference")
        psnr = f"{ref:6.2f} dB vs {a['reference']}, {a['psnr_vs_teacher']:6.2f} dB vs teacher" if ref is not None \
            else "structure checked (no runtime on this OS)"
        lines.append(f"  {a['path']:<22} {a['bytes'] / 1e6:8.3f} MB  {a['macs'] / 1e9:7.3f} GMAC  {psnr}")
    r = manifest["ratios"]
    if r["size_teacher_ckpt_over_student_int8_tflite"]:
        lines.append(f"  teacher checkpoint / student INT8 TFLite: {r['size_teacher_ckpt_over_student_int8_tflite']:.1f}x;"
                     f" teacher / student MACs: {r['macs_teacher_over_student']:.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        args = build_parser().parse_args(argv)
        formats = _formats(args.format)
        _check_args(args)
        check_options(args, formats)
        args.io = args.io or IO_DEFAULT
        from .pipeline import ExportOptions, run_export
        from .progress import progress_display

        with progress_display(enabled=not args.quiet) as progress:
            manifest = run_export(ExportOptions(args.run, formats, args.out, args.size, args.io, args.teacher,
                                                args.arch, args.images, progress))
        if args.android is not None:
            assets = _install_android(Path(manifest["_dir"]), args.android)
            print(f"installed model.tflite and manifest.json into {assets}")
    except GsError as exc:
        print(f"gs-export: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gs-export: interrupted", file=sys.stderr)
        return 130
    print(_summary(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
