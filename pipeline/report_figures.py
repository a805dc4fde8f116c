"""The pipeline report's figures: training curves, channels per layer, and the val-photo grid of the
student INT8 TFLite (run here with gs-bench's LiteRT runner) against the teacher."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

import gs_contract
from gs_contract.figures import pyplot as _plt
from gs_contract.figures import save_figure, save_grid
from runtime_bench.errors import BenchError

if TYPE_CHECKING:
    from .report import Sources

STUDENT_TFLITE = "student_int8_tflite"
LOSS_KEYS = ("l1", "feat", "gan_g", "total", "d")


def plot_training(history: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Loss terms, sparsity and MACs over steps (keys absent from the history are left out)."""
    steps = [h.get("step") for h in history]
    if not history or any(s is None for s in steps):
        return None

    def series(key: str) -> np.ndarray | None:
        vals = [h.get(key) for h in history]
        if all(v is None for v in vals):
            return None
        return np.array([np.nan if v is None else float(v) for v in vals])

    losses = {k: s for k in LOSS_KEYS if (s := series(k)) is not None}
    panels: list[tuple[str, dict[str, np.ndarray], str]] = [("loss terms", losses, "loss")]
    if (sp := series("sparsity")) is not None:
        panels.append(("channel sparsity", {"sparsity": sp}, "fraction of channels pruned"))
    if (macs := series("macs")) is not None:
        panels.append(("student MACs", {"MACs (M)": macs / 1e6}, "MACs, millions"))
    panels = [p for p in panels if p[1]]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
    for ax, (title, lines, ylabel) in zip(axes[0], panels):
        for label, ys in lines.items():
            ax.plot(steps, ys, label=label, lw=1.4)
        positive = all(np.nanmin(ys) > 0 for ys in lines.values() if np.isfinite(ys).any())
        if title == "loss terms" and positive:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_channels(layers: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Grouped bars: output channels of each layer before (teacher) and after (student) slimming."""
    rows = [ly for ly in layers if "unit" in ly and "out_channels" in ly]
    if not rows:
        return None
    plt = _plt()
    x = np.arange(len(rows))
    before = [ly.get("original_out_channels") or 0 for ly in rows]
    after = [ly["out_channels"] for ly in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(rows) + 2), 3.6))
    ax.bar(x - 0.2, before, 0.4, label="before (teacher)", color="tab:gray")
    ax.bar(x + 0.2, after, 0.4, label="after (student)", color="tab:blue")
    ax.set_xticks(x, [str(ly["unit"]) for ly in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("output channels")
    ax.set_title("channels per layer, before / after slimming")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------------------------
# the student INT8 TFLite on the val photos


@dataclass
class GridResult:
    """The image grid (or why there is none) and per-image PSNR of the INT8 TFLite vs the teacher."""

    path: Path | None
    reason: str | None = None
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    size: tuple[int, ...] = ()


def _resize(x: Any, hw: tuple[int, int]) -> Any:
    """NCHW float tensor -> spatial size ``hw`` (antialiased bilinear; unchanged if already there)."""
    import torch.nn.functional as F

    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    return F.interpolate(x.float(), size=hw, mode="bilinear", align_corners=False, antialias=True).clamp(-1, 1)


def run_student_tflite(export_dir: Path, manifest: dict[str, Any], inputs: Any) -> Any:
    """Run the manifest's student INT8 .tflite on float NCHW inputs (resized to its input shape)."""
    import torch

    from runtime_bench.manifest import verify_artifact
    from runtime_bench.runners import LiteRTRunner, TensorSpec

    entry = next((a for a in manifest.get("artifacts", []) if a.get("name") == STUDENT_TFLITE), None)
    if entry is None:
        raise LookupError(f"manifest lists no {STUDENT_TFLITE}")
    ins, outs = TensorSpec.from_manifest(entry["inputs"][0]), TensorSpec.from_manifest(entry["outputs"][0])
    runner = LiteRTRunner(verify_artifact(export_dir, entry), ins, outs, threads=1)
    runner.load()
    hw = (ins.shape[1], ins.shape[2]) if ins.layout == "NHWC" else (ins.shape[2], ins.shape[3])
    x = _resize(inputs, hw).numpy().astype(np.float32)
    return torch.from_numpy(np.concatenate([runner.run(x[i:i + 1]) for i in range(len(x))]))


def make_grid(src: Sources, path: Path) -> GridResult:
    """input | teacher | student INT8 TFLite grid of the val photos, with per-image PSNR notes.

    The val photos and the teacher's outputs come from RUN_DIR/val_views.npz (docs/CONTRACTS.md).
    """
    import torch

    views_path = src.run_dir / gs_contract.VAL_VIEWS_FILE
    if src.manifest is None:
        return GridResult(None, "no manifest.json")
    try:
        inputs_np, targets_np = gs_contract.read_val_views(views_path)
        inputs, targets = torch.from_numpy(inputs_np), torch.from_numpy(targets_np)
        student = run_student_tflite(src.export_dir, src.manifest, inputs)
    except FileNotFoundError:
        return GridResult(None, f"{views_path} not found (written by gs-compress; re-run it)")
    except (BenchError, ImportError, OSError, RuntimeError, ValueError, LookupError) as exc:
        return GridResult(None, str(exc))
    hw = tuple(student.shape[-2:])
    inputs, targets = _resize(inputs, hw), _resize(targets, hw)
    student_np, targets_np = student.float().numpy(), targets.float().numpy()
    p = gs_contract.psnr_per_image(student_np, targets_np).tolist()
    s = gs_contract.ssim_per_image(student_np, targets_np).tolist()
    notes = [f"{v:.1f} dB vs teacher" for v in p]
    save_grid(path, {"input": inputs.float().numpy(), "teacher": targets_np, "student INT8 TFLite": student_np},
              max_rows=len(inputs), notes=notes)
    return GridResult(path, None, p, s, hw)
