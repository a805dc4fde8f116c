"""Files and numbers a user hands in: no code runs from a file, damage and impossible values are one line."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from compress.checkpoint import CKPT_FORMAT, STUDENT_FORMAT, load_student, save_student
from compress.cli import main
from compress.errors import CheckpointError
from tests.compress.helpers import args
from tests.tiny import make_tiny_student

ROOT = Path(__file__).resolve().parents[2]
# what a message must never show instead of saying what is wrong
BARE = ("UnpicklingError", "EOFError", "RuntimeError", "KeyError", "TypeError", "Traceback", "Error:")


class Payload:
    """Pickles to a call of os.system that creates `marker`: what a hostile checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.fixture(scope="module")
def short_run(setup_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step tiny run (student.pt, checkpoints/last.pt, cache)."""
    out = tmp_path_factory.mktemp("run") / "short"
    assert main(args(setup_dir, out, "--steps", "4", "--no-colour-head")) == 0
    return out


def one_line(err: str, *expect: str) -> str:
    """The single stderr line, checked to contain `expect` and no bare exception class name."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert all(e in lines[0] for e in expect), lines[0]
    assert not any(b in lines[0] for b in BARE), lines[0]
    return lines[0]


def cli(module: str, *argv: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run `python -m module argv` from the repository root; (process, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    return proc, time.monotonic() - start


# ----------------------------------------------------------------------------- pickle payloads
@pytest.mark.parametrize("where", ["student.pt", "teacher", "last.pt"])
def test_a_pickle_payload_never_runs(where: str, setup_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    run = tmp_path / "run"
    if where == "student.pt":  # gs-export RUN_DIR
        run.mkdir()
        bad = run / "student.pt"
        torch.save({"format": STUDENT_FORMAT, "spec": Payload(marker)}, bad)
        proc, _ = cli("export.cli", str(run), "--format", "onnx")
        prog, remedy = "gs-export", "gs-compress"
    elif where == "teacher":  # gs-compress --teacher PATH
        bad = tmp_path / "teacher.pth"
        torch.save({"model.1.weight": Payload(marker)}, bad)
        proc, _ = cli("compress.cli", *args(setup_dir, run, "--teacher", str(bad)))
        prog, remedy = "gs-compress", "state_dict()"
    else:  # gs-compress --out RUN --resume
        (run / "checkpoints").mkdir(parents=True)
        bad = run / "checkpoints" / "last.pt"
        torch.save({"format": CKPT_FORMAT, "config": Payload(marker)}, bad)
        proc, _ = cli("compress.cli", "--out", str(run), "--resume", "--no-progress")
        prog, remedy = "gs-compress", "Delete it"
    assert proc.returncode == 2, proc.stderr[-2000:]
    one_line(proc.stderr, f"{prog}: error:", str(bad), "is not a plain weights file", "refusing to execute",
             "posix.system", remedy)
    assert not marker.exists()


# ----------------------------------------------------------------------------- damaged files
def _student_payload(tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "student.pt"
    save_student(path, make_tiny_student("cyclegan"), teacher={"source": "tiny", "arch": "cyclegan"}, step=0)
    return path, torch.load(path, weights_only=True)


@pytest.mark.parametrize("damage, expect", [
    ("no spec", "no 'spec'"),
    ("no state_dict", "no 'state_dict'"),
    ("spec is text", "'spec' is a str"),
    ("spec is incomplete", "its 'spec' is not a generator description"),
    ("state of numbers", "'state_dict' is not a dict of tensors"),
    ("state lacks a key", "does not fit a cyclegan generator: 1 missing keys"),
    ("teacher is text", "'teacher' is a str"),
    ("truncated", "the file is truncated"),
    ("empty", "the file is truncated"),
])
def test_a_damaged_student_is_one_line(damage: str, expect: str, tmp_path: Path) -> None:
    path, payload = _student_payload(tmp_path)
    if damage in ("truncated", "empty"):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    else:
        if damage.startswith("no "):
            del payload[damage[3:]]
        elif damage == "spec is text":
            payload["spec"] = "cyclegan"
        elif damage == "spec is incomplete":
            payload["spec"] = {"arch": "cyclegan"}
        elif damage == "state of numbers":
            payload["state_dict"] = {"stem.weight": 1.0}
        elif damage == "state lacks a key":
            del payload["state_dict"]["trunk_gate"]
        else:
            payload["teacher"] = "tiny"
        torch.save(payload, path)
    with pytest.raises(CheckpointError) as info:
        load_student(path)
    one_line(str(info.value), str(path), expect)


def test_gs_export_names_a_student_without_spec(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from export.cli import main as export_main

    path, payload = _student_payload(tmp_path)
    del payload["spec"]
    torch.save(payload, path)
    assert export_main([str(tmp_path), "--format", "onnx", "--quiet"]) == 2
    one_line(capsys.readouterr().err, "gs-export: error:", str(path), "no 'spec'", "gs-compress")


@pytest.mark.parametrize("damage, expect", [
    ("no opt_w", "no 'opt_w'"),
    ("history is text", "'history' is a str"),
    ("config lacks preset", "no 'preset'"),
    ("student lacks a key", "does not fit a cyclegan generator: 1 missing keys"),
    ("replay is empty", "its discriminator, optimizer or replay state does not fit its student"),
    ("truncated", "the file is truncated"),
])
def test_a_damaged_training_checkpoint_is_one_line_on_resume(damage: str, expect: str, short_run: Path,
                                                             tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    shutil.copytree(short_run, run)
    ckpt = run / "checkpoints" / "last.pt"
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:300])
    else:
        state = torch.load(ckpt, weights_only=True)
        if damage == "no opt_w":
            del state["opt_w"]
        elif damage == "history is text":
            state["history"] = "none"
        elif damage == "config lacks preset":
            del state["config"]["preset"]
        elif damage == "student lacks a key":
            del state["student"]["trunk_gate"]
        else:
            state["replay"] = {}
        torch.save(state, ckpt)
    assert main(["--out", str(run), "--resume", "--no-progress"]) == 2
    one_line(capsys.readouterr().err, "gs-compress: error:", str(ckpt), expect)


@pytest.mark.parametrize("damage", ["truncated", "payload", "not a dict"])
def test_a_damaged_label_cache_is_labelled_again(damage: str, setup_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "MARKER"
    out = tmp_path / "run"
    cache = out / "cache" / "teacher_views.pt"
    cache.parent.mkdir(parents=True)
    if damage == "truncated":
        torch.save({"key": {}, "inputs": torch.zeros(100, 3, 8, 8)}, cache)
        cache.write_bytes(cache.read_bytes()[:500])
    else:
        torch.save({"key": Payload(marker)} if damage == "payload" else [1, 2], cache)
    assert main(args(setup_dir, out, "--steps", "2", "--no-colour-head")) == 0
    warning = one_line(capsys.readouterr().err, "gs-compress: warning:", str(cache), "Labelling the views again.")
    assert ("refusing to execute" in warning) == (damage == "payload")
    assert not marker.exists()
    assert torch.load(cache, weights_only=True)["inputs"].shape[0] == 6  # the tiny preset's n_views, relabelled


# ----------------------------------------------------------------------------- impossible numbers
@pytest.mark.parametrize("flag, value, expect", [
    ("--steps", "-1", "must be a whole number above zero"),
    ("--steps", "0", "must be a whole number above zero"),
    ("--batch", "0", "must be a whole number above zero"),
    ("--crop", "0", "must be a multiple of 4"),
    ("--crop", "30", "must be a multiple of 4"),
    ("--crop", "64", "larger than the 48 px views"),
    ("--threads", "0", "must be a whole number above zero"),
    ("--rho", "-1", "must be zero or a positive number"),
    ("--target-macs", "0", "must be above zero"),
    ("--target-params", "0", "must be above zero"),
    ("--eval-size", "0", "must be a multiple of 4"),
    ("--bank-views", "-1", "must be zero or a positive whole number"),
    ("--lr", "0", "must be a number above zero"),
    ("--lr", "-0.001", "must be a number above zero"),
    ("--lr", "nan", "must be a number above zero"),
    ("--lambda-gan", "-1", "must be zero or a positive number"),
    ("--w-feat", "-0.5", "must be zero or a positive number"),
    ("--target-macs", "1G", "above the teacher's"),
    ("--target-params", "10M", "above the teacher's"),
])
def test_impossible_numbers_are_refused_before_any_work(flag: str, value: str, expect: str, setup_dir: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, seconds = cli("compress.cli", *args(setup_dir, out, flag, value))
    assert proc.returncode == 2, proc.stderr[-2000:]
    one_line(proc.stderr, "gs-compress: error:", flag, value, expect)
    assert seconds < 10 and not out.exists()
