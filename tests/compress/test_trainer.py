"""gs-compress end to end on a tiny teacher: outputs, resume-after-kill, NaN stop, bad input, DDP."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from compress import trainer as trainer_mod
from compress.checkpoint import load_student, saved_config
from compress.colour import HIDDEN
from compress.cli import main
from tests.compress.helpers import args, interrupt_at

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def full_run(setup_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "full"
    assert main(args(setup_dir, out)) == 0
    return out


def test_run_writes_the_contract(full_run: Path) -> None:
    for name in ("student.pt", "metrics.json", "samples.png", "train_log.csv", "checkpoints/last.pt", "photos.json",
                 "val_views.npz"):
        assert (full_run / name).is_file(), name
    m = json.loads((full_run / "metrics.json").read_text())
    assert m["student_macs"] < m["teacher_macs"] and m["student_params"] < m["teacher_params"]
    assert {"fp32", "fakequant", "identity_baseline"} <= set(m["quality"])
    assert m["layers"][0]["unit"] == "stem" and m["history"][-1]["step"] == 11
    student, payload = load_student(full_run / "student.pt", expect_arch="cyclegan")
    assert payload["teacher"]["arch"] == "cyclegan" and student.macs(48, 48) == m["student_macs"]
    assert all(int(student.alive_of(g).min()) == 1 for g in student.groups())  # compacted: no dead channels
    # the colour head was fitted after GS training on the tiled views + the jittered ones: four heads,
    # saved as one head of their mean grade
    assert student.colour is not None and m["colour_head"]["views"] == 6 * 1 + 8
    assert m["colour_head"]["heads"] == 4 and student.colour.hidden == 4 * HIDDEN
    assert set(m["colour_head"]["without_head"]) == {"fp32", "fakequant"}


def test_killed_and_resumed_equals_uninterrupted(setup_dir: Path, full_run: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "resumed"
    original = interrupt_at(monkeypatch, 9)
    assert main(args(setup_dir, out)) == 130
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"] == 8
    assert _logged_steps(out)[-1] == 8  # logged after the checkpoint: trained again on resume
    monkeypatch.setattr(trainer_mod.Trainer, "train_step", original)
    # the README's form: no other flag, so teacher, data, preset (tiny) and steps come from the checkpoint
    assert main(["--out", str(out), "--resume", "--no-progress"]) == 0
    full, resumed = (json.loads((d / "metrics.json").read_text()) for d in (full_run, out))
    assert resumed["config"] == full["config"] and resumed["config"]["preset"] == "tiny"
    steps = _logged_steps(out)
    assert steps == sorted(set(steps)) == list(range(0, 12, 2)) + [11]  # strictly increasing, no repeats
    a = torch.load(full_run / "student.pt", weights_only=True)["state_dict"]
    b = torch.load(out / "student.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _logged_steps(run: Path) -> list[int]:
    with open(run / "train_log.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


@pytest.fixture()
def killed_run(setup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny run stopped after its step-4 checkpoint."""
    original = interrupt_at(monkeypatch, 5)
    out = tmp_path / "killed"
    assert main(args(setup_dir, out, "--no-colour-head")) == 130
    monkeypatch.setattr(trainer_mod.Trainer, "train_step", original)
    return out


def test_resume_refuses_settings_that_conflict_with_the_checkpoint(killed_run: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    before = (killed_run / "train_log.csv").read_text()
    assert main(["--out", str(killed_run), "--resume", "--steps", "500", "--lr", "0.001", "--no-gan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--steps 500 conflicts with the checkpoint's steps=12" in err[0], err
    assert "--lr 0.001 conflicts with the checkpoint's lr=0.0003" in err[0]
    assert "--no-gan conflicts with the checkpoint's gan=True" in err[0]
    assert (killed_run / "train_log.csv").read_text() == before  # refused before any work


def test_resume_accepts_equal_settings_and_a_new_thread_count(setup_dir: Path, killed_run: Path) -> None:
    from compress.cli import build_parser, config_from_args

    saved = saved_config(killed_run / "checkpoints" / "last.pt")
    same = build_parser().parse_args(args(setup_dir, killed_run, "--resume", "--steps", "12", "--lr", "3e-4",
                                          "--no-colour-head", "--threads", "1"))
    assert config_from_args(same) == replace(saved, threads=1)
    bare = build_parser().parse_args(["--out", str(killed_run), "--resume"])
    assert config_from_args(bare) == saved and saved.preset == "tiny" and saved.colour_head is False


def test_nan_loss_stops_with_checkpoint_intact(setup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    original = trainer_mod.GSObjective.generator_terms

    def nan_after_5(self, s, t, d):  # noqa: ANN001, ANN202
        terms = original(self, s, t, d)
        if len(calls) >= 5:
            terms["total"] = terms["total"] * float("nan")
        calls.append(1)
        return terms

    calls: list[int] = []
    monkeypatch.setattr(trainer_mod.GSObjective, "generator_terms", nan_after_5)
    out = tmp_path / "nan"
    assert main(args(setup_dir, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss became nan at step 5" in err[0]
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 4 and not (out / "student.pt").exists()


@pytest.mark.parametrize("case", ["corrupt_teacher", "arch_mismatch", "empty_data", "missing_head_photos",
                                  "rho_with_param_budget"])
def test_bad_input_is_one_line_and_nonzero(case: str, setup_dir: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    argv = args(setup_dir, tmp_path / "out")
    if case == "corrupt_teacher":
        bad = tmp_path / "t.pth"
        bad.write_bytes(b"\x00garbage")
        argv[argv.index("--teacher") + 1] = str(bad)
    elif case == "arch_mismatch":
        argv[argv.index("--teacher") + 1] = str(setup_dir / "cartoon.pth")
    elif case == "empty_data":
        (tmp_path / "empty").mkdir()
        argv[argv.index("--data") + 1] = str(tmp_path / "empty")
    elif case == "missing_head_photos":
        argv += ["--head-photos", str(tmp_path / "nowhere")]
    else:
        argv += ["--rho", "0.01", "--target-params", "1M"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gs-compress: error:"), err
    assert not (tmp_path / "out" / "student.pt").exists()


def test_head_ensemble_of_one_is_a_single_head(setup_dir: Path, tmp_path: Path) -> None:
    assert main(args(setup_dir, tmp_path / "one", "--steps", "4", "--head-ensemble", "1")) == 0
    student, _ = load_student(tmp_path / "one" / "student.pt")
    assert student.colour is not None and student.colour.hidden == HIDDEN


def test_no_colour_head_ablation(setup_dir: Path, tmp_path: Path) -> None:
    assert main(args(setup_dir, tmp_path / "plain", "--steps", "4", "--no-colour-head")) == 0
    m = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    student, _ = load_student(tmp_path / "plain" / "student.pt")
    assert m["colour_head"] is None and student.colour is None and m["config"]["colour_head"] is False
    assert len(torch.load(tmp_path / "plain" / "cache" / "teacher_views.pt", weights_only=True)["jitter_inputs"]) == 0


def test_ablation_table_reports_each_run_before_and_after_its_colour_head(setup_dir: Path, tmp_path: Path) -> None:
    from compress.ablation import plot_tradeoff, table

    assert main(args(setup_dir, tmp_path / "head", "--steps", "4")) == 0
    assert main(args(setup_dir, tmp_path / "plain", "--steps", "4", "--no-colour-head")) == 0
    md, rows = table({"with head": tmp_path / "head", "no head": tmp_path / "plain"})
    m = json.loads((tmp_path / "head" / "metrics.json").read_text())
    before = m["colour_head"]["without_head"]["fakequant"]["psnr"]
    assert rows[0]["psnr_fakequant_without_head"] == before and rows[1]["psnr_fakequant_without_head"] is None
    assert rows[0]["psnr_fakequant"] == m["quality"]["fakequant"]["psnr"] and rows[0]["steps"] == 4
    lines = md.splitlines()
    assert len(lines) == 4 and f"{before:.2f} dB" in lines[2] and "| - |" in lines[3]
    png = plot_tradeoff(rows, tmp_path / "tradeoff.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_mode & 0o777 == 0o644
    assert [f.name for f in tmp_path.iterdir() if f.is_file()] == ["tradeoff.png"]


def test_ablation_names_the_log_of_a_failed_run(tmp_path: Path) -> None:
    from compress.ablation import RunFailed, run_row

    with pytest.raises(RunFailed, match="budget_x.log"):
        run_row("budget x", ["--teacher", str(tmp_path / "missing.pth")], tmp_path, 2, None, {})
    assert "gs-compress: error:" in (tmp_path / "budget_x.log").read_text()
    assert not (tmp_path / "budget_x" / "metrics.json").exists()


def test_cartoongan_teacher_trains(setup_dir: Path, tmp_path: Path) -> None:
    argv = args(setup_dir, tmp_path / "cg", "--steps", "4")
    argv[argv.index("--teacher") + 1] = str(setup_dir / "cartoon.pth")
    argv[argv.index("--arch") + 1] = "cartoongan"
    assert main(argv) == 0
    m = json.loads((tmp_path / "cg" / "metrics.json").read_text())
    assert m["teacher"]["arch"] == "cartoongan" and np.isfinite(m["quality"]["fakequant"]["psnr"])


def test_torchrun_two_cpu_processes(setup_dir: Path, tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this python")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "compress.cli",
           *args(setup_dir, tmp_path / "ddp", "--steps", "6")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    own_errors = [line for line in proc.stderr.splitlines() if "gs-compress:" in line]
    assert proc.returncode == 0, (own_errors, proc.stderr[-2000:])
    assert (tmp_path / "ddp" / "student.pt").is_file()
    m = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert len(m["history"]) >= 3


@pytest.mark.parametrize("shrink", [True, False])
def test_l1_shrinking_stops_at_the_budget_unless_asked(shrink: bool, setup_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from compress import config

    tiny = config.PRESETS["tiny"]
    monkeypatch.setitem(config.PRESETS, "tiny", replace(tiny, shrink_after_budget=shrink))
    original, calls = trainer_mod.channels.proximal_step, []

    def counted(*a, **k):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return original(*a, **k)

    monkeypatch.setattr(trainer_mod.channels, "proximal_step", counted)
    assert main(args(setup_dir, tmp_path / "run", "--no-colour-head")) == 0
    budget_reached = int(tiny.prune_end * tiny.steps)
    assert len(calls) == (tiny.steps if shrink else budget_reached + 1)


def test_head_photos_feed_the_colour_head_views_only(setup_dir: Path, full_run: Path, tmp_path: Path) -> None:
    magenta = tmp_path / "head"
    magenta.mkdir()
    Image.new("RGB", (128, 96), (255, 0, 255)).save(magenta / "magenta.png")
    out = tmp_path / "run"
    assert main(args(setup_dir, out, "--head-photos", str(magenta))) == 0
    views = torch.load(out / "cache" / "teacher_views.pt", weights_only=True)
    assert len(views["key"]["head_photos"]) == 1 and len(views["jitter_inputs"]) == 8
    # views i with i % 4 == 3 are cut from the fourth image: the magenta one after the three train photos
    r, g, b = views["jitter_inputs"].float().mean((2, 3)).T
    assert ((g < r - 0.5) & (g < b - 0.5)).tolist() == [i % 4 == 3 for i in range(8)]
    m, base = (json.loads((run / "metrics.json").read_text()) for run in (out, full_run))
    assert m["val_photos"] == base["val_photos"] and m["config"]["head_photos"] == str(magenta)
    assert torch.equal(views["inputs"], torch.load(full_run / "cache" / "teacher_views.pt", weights_only=True)["inputs"])


def test_head_view_photos_cuts_every_head_view_from_that_many_photos(setup_dir: Path, tmp_path: Path) -> None:
    magenta = tmp_path / "head"
    magenta.mkdir()
    Image.new("RGB", (128, 96), (255, 0, 255)).save(magenta / "magenta.png")
    out = tmp_path / "run"
    assert main(args(setup_dir, out, "--head-photos", str(magenta), "--head-view-photos", "1", "--steps", "2")) == 0
    views = torch.load(out / "cache" / "teacher_views.pt", weights_only=True)
    assert views["key"]["head_view_photos"] == 1 and len(views["jitter_inputs"]) == 8
    assert json.loads((out / "metrics.json").read_text())["config"]["head_view_photos"] == 1
    r, g, b = views["jitter_inputs"].float().mean((2, 3)).T  # one photo: all magenta or none (see above)
    assert len(set(((g < r - 0.5) & (g < b - 0.5)).tolist())) == 1


def test_refit_head_with_an_unchanged_preset_reproduces_the_run(full_run: Path, tmp_path: Path) -> None:
    import shutil

    from compress.experiments import refit_head

    for name in ("student.pt", "metrics.json"):
        shutil.copy(full_run / name, tmp_path / name)
    assert refit_head.main(["--student", str(tmp_path / "student.pt"), "--metrics", str(tmp_path / "metrics.json"),
                            "--threads", "1"]) == 0
    before, after = (json.loads((d / "metrics.json").read_text()) for d in (full_run, tmp_path))
    assert after["colour_head"]["views"] == before["colour_head"]["views"] == 6 * 1 + 8
    for kind in ("fp32", "fakequant"):
        assert after["quality"][kind]["psnr"] == pytest.approx(before["quality"][kind]["psnr"], abs=1e-3)
    assert load_student(tmp_path / "student.pt")[1]["metrics"]["quality"] == after["quality"]


def test_refit_head_takes_the_presets_head_settings_and_its_overrides() -> None:
    from compress.config import make_config
    from compress.experiments.refit_head import head_config

    run = make_config("quick", n_jitter=8, head_steps=5, head_view_photos=7).to_dict()  # an older quick run
    assert (head_config(run).n_jitter, head_config(run).head_view_photos) == (1600, 0)
    cfg = head_config(run, head_steps=9, head_view_photos=133)
    assert (cfg.head_steps, cfg.head_view_photos, cfg.steps) == (9, 133, 750)


def test_bf16_labels_are_close_to_float32_keyed_apart_and_val_stays_float32(setup_dir: Path, tmp_path: Path) -> None:
    from compress.evaluate import psnr

    caches = {}
    for precision in ("float32", "bfloat16"):  # explicit: "auto" depends on the host's ISA (compress/labels.py)
        out = tmp_path / precision
        assert main(args(setup_dir, out, "--steps", "2", "--label-precision", precision)) == 0
        caches[precision] = torch.load(out / "cache" / "teacher_views.pt", weights_only=True)
    f32, bf16 = caches["float32"], caches["bfloat16"]
    assert "labels" not in f32["key"] and bf16["key"]["labels"] == "bfloat16"
    assert torch.equal(f32["val_targets"], bf16["val_targets"])  # every quality figure is against float32
    for name in ("targets", "jitter_targets"):
        assert torch.equal(f32[name.replace("targets", "inputs")], bf16[name.replace("targets", "inputs")])
        assert not torch.equal(f32[name], bf16[name])
        assert min(psnr(bf16[name].float(), f32[name].float())) > 35


@pytest.mark.parametrize("field, value", [("jitter_zoom", 1.0), ("head_view_photos", 2)])
def test_head_view_settings_are_keyed_and_leave_the_training_views(setup_dir: Path, tmp_path: Path, field: str,
                                                                   value: float) -> None:
    from compress.config import make_config
    from compress.views import label_views, load_photos
    from tests.tiny import make_tiny_teacher

    teacher, photos, cfg = make_tiny_teacher().eval(), load_photos(str(setup_dir / "photos")), make_config("tiny")
    changed = label_views(teacher, photos, replace(cfg, **{field: value}), tmp_path, show=False)
    default = label_views(teacher, photos, cfg, tmp_path, show=False)  # the cache above is not reused
    assert changed["key"][field] == value and field not in default["key"]
    assert not torch.equal(changed["jitter_inputs"], default["jitter_inputs"])
    assert torch.equal(changed["inputs"], default["inputs"])  # GS training's views do not depend on it


def test_head_view_photos_draws_that_many_photos_per_seed(setup_dir: Path) -> None:
    from compress.views import drawn_photos, head_view_images, load_photos

    photos = load_photos(str(setup_dir / "photos"))
    head = [(f"sha{k}", np.full((40, 40, 3), k, np.uint8)) for k in range(9)]
    pool = head_view_images(photos, head)
    assert len(pool) == len(photos.subset("train")) + 9
    for count in (0, len(pool), len(pool) + 5):  # 0 or at least every photo: all of them, in order
        assert [id(x) for x in head_view_images(photos, head, count, seed=0)] == [id(x) for x in pool]
    where = {id(x): i for i, x in enumerate(pool)}
    draws = {seed: [where[id(x)] for x in head_view_images(photos, head, 5, seed)] for seed in (0, 1)}
    for seed, indices in draws.items():
        assert len(set(indices)) == 5 and indices == sorted(indices)  # distinct photos, in the pool's order
        assert drawn_photos(len(pool), 5, seed) == indices  # the draw head_zoom recomputes from a cache key
    assert draws[0] != draws[1]


def test_auto_label_precision_follows_the_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    from compress import labels

    for flags, expected in ((frozenset({"avx2", "avx512_vnni"}), "float32"),
                            (frozenset({"avx2", "avx512_bf16"}), "bfloat16"), (frozenset({"asimd", "bf16"}), "bfloat16")):
        monkeypatch.setattr(labels, "cpu_flags", lambda flags=flags: flags)
        assert labels.label_precision("auto", "cpu") == expected
        assert labels.label_precision("float32", "cpu") == "float32"
