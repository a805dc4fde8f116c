"""The GS training loop: one objective, distillation + GAN + sparsity + quantisation, end to end.

Read top to bottom: set-up (teacher, photos, teacher-labelled views, student, discriminator),
then the loop (student step -> proximal step -> discriminator step -> MAC-budget pruning ->
checkpoint), then the final evaluation and the RUN_DIR files. Every random choice is derived from
(seed, step, rank), and every piece of state is in the checkpoint, so a run killed and resumed with
--resume ends exactly where an uninterrupted one ends (CPU).
"""
from __future__ import annotations

import csv
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from gs_contract import VAL_VIEWS_FILE, atomic_path, write_json_atomic, write_val_views

from . import channels
from .bank import bank_batch, open_bank
from .config import G, TrainConfig, check_config
from .colour_fit import fit_colour_head
from .data import CropDataset, PhotoSet, build_default_photos, jittered_views, load_photo_folder, val_batch
from .errors import GsError
from .evaluate import evaluate_student, run_batched, save_grid
from .macs import count_module_macs, count_params
from .objective import FeatureDistance, GSObjective, PatchDiscriminator, ReplayBuffer
from .quant import freeze_ranges, set_quantisation
from .safeload import check_fields, check_tensors, load_plain
from .student import StudentGenerator, read_payload, save_student, student_from_teacher, student_of
from .teachers import Teacher, load_teacher
from .zoo import load_state_into

CKPT_FORMAT = "gs-mobile/train-state"


class TrainingDiverged(GsError):
    """The loss became NaN/inf; the last good checkpoint is left intact."""


# ----------------------------------------------------------------------------- distributed
@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.world > 1:
            dist.barrier()


def init_distributed(device: str) -> Dist:
    """torchrun sets WORLD_SIZE/RANK: gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def all_reduce_grads(module: nn.Module, d: Dist) -> None:
    """Average gradients over ranks (what DDP does; done by hand because the student changes shape
    when it is compacted, and re-wrapping DDP mid-run would rebuild its buckets every time)."""
    if d.world == 1:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(d.world)


# ----------------------------------------------------------------------------- data
def load_photos(source: str) -> PhotoSet:
    return build_default_photos() if source == "default" else load_photo_folder(Path(source))


@torch.no_grad()
def label_views(teacher: nn.Module, photos: PhotoSet, cfg: TrainConfig, cache: Path, show: bool,
                device: torch.device | str = "cpu") -> dict:
    """Teacher outputs for n_views random crops of the train photos (none when cfg.bank_views: the
    label bank supplies the training views), for n_jitter views of
    jitter_size px (mostly colour-jittered, for the colour head) and for the val photos.

    The teacher runs once per view (it is the expensive network) on `device`; training then cuts
    random crops from these (input, teacher output) pairs, kept on the CPU. Cached in RUN_DIR/cache,
    keyed by the set-up.
    """
    from tqdm import tqdm

    n_crops = 0 if cfg.bank_views else cfg.n_views  # with the bank, its whole views are the training set
    key = {"views": n_crops, "view_size": cfg.view_size, "eval_size": cfg.eval_size, "seed": cfg.seed,
           "photos": [e.sha256 for e in photos.entries], "jitter": cfg.n_jitter if cfg.colour_head else 0,
           "jitter_size": cfg.jitter_size}
    path = cache / "teacher_views.pt"
    cached = read_cached_views(path) if path.is_file() else None
    if cached is not None and cached.get("key") == key:
        return cached
    views = CropDataset(photos.subset("train"), crop=cfg.view_size, seed=cfg.seed, length=n_crops or None)
    inputs = (torch.stack([views[i] for i in range(n_crops)]) if n_crops
              else torch.zeros(0, 3, cfg.view_size, cfg.view_size))
    jitter = jittered_views(photos.subset("train"), key["jitter"], cfg.jitter_size, cfg.seed)
    val_in = val_batch(photos.subset("val"), cfg.eval_size)

    def label(images: torch.Tensor, what: str, batch: int) -> torch.Tensor:
        starts = range(0, len(images), batch)
        outs = [teacher(images[i:i + batch].to(device)).cpu()
                for i in tqdm(starts, desc=f"teacher labels {what}", unit="batch", disable=not show or not len(images))]
        return torch.cat(outs).half() if outs else images.half()

    teacher.to(device)
    try:
        labelled = {"key": key, "inputs": inputs.half(), "targets": label(inputs, "views", 4),
                    "jitter_inputs": jitter.half(), "jitter_targets": label(jitter, "colour views", 16),
                    "val_inputs": val_in, "val_targets": run_batched(teacher, val_in.to(device)).cpu()}
    finally:
        teacher.to("cpu")
    with atomic_path(path) as tmp:
        torch.save(labelled, tmp)
    return labelled


VIEW_CACHE_FIELDS = {"key": dict, **{k: torch.Tensor for k in ("inputs", "targets", "jitter_inputs",
                                                                  "jitter_targets", "val_inputs", "val_targets")}}


def read_cached_views(path: Path) -> dict | None:
    """The teacher-label cache, or None (with a one-line warning) when it cannot be used: the cache
    is only a speed-up, so a damaged one is labelled again rather than stopping the run."""
    what, remedy = "teacher-label cache", "Labelling the views again."
    try:
        cached = load_plain(path, what, remedy, GsError)
        if not isinstance(cached, dict):
            raise GsError(f"{what} {path} is not a dict. {remedy}")
        check_fields(cached, VIEW_CACHE_FIELDS, path, what, remedy, GsError)
    except GsError as exc:
        print(f"gs-compress: warning: {exc}", file=sys.stderr)
        return None
    return cached


def head_views(views: dict, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour head's training set: the labelled views, downscaled to about 2x `size` and tiled
    into size x size squares, plus the jittered views (size x size)."""
    factor = max(1, views["inputs"].shape[-1] // (2 * size))

    def tiles(images: torch.Tensor) -> list[torch.Tensor]:
        images = F.avg_pool2d(images.float(), factor) if factor > 1 else images
        starts = range(0, images.shape[-1] - size + 1, size)
        return [images[:, :, y:y + size, x:x + size] for y in starts for x in starts]

    inputs = tiles(views["inputs"]) + [views["jitter_inputs"].float()]
    targets = tiles(views["targets"]) + [views["jitter_targets"].float()]
    return torch.cat(inputs).half(), torch.cat(targets).half()


def sample_batch(views: dict, cfg: TrainConfig, step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of aligned (input, teacher output) crops, a pure function of (seed, step, rank)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 101 + rank)
    n, size, crop = len(views["inputs"]), views["inputs"].shape[-1], cfg.crop
    idx = torch.randint(n, (cfg.batch,), generator=gen)
    ys = torch.randint(size - crop + 1, (cfg.batch,), generator=gen)
    xs = torch.randint(size - crop + 1, (cfg.batch,), generator=gen)
    flip = torch.rand(cfg.batch, generator=gen) < 0.5
    xin, yt = [], []
    for i, y0, x0, f in zip(idx.tolist(), ys.tolist(), xs.tolist(), flip.tolist()):
        a = views["inputs"][i, :, y0:y0 + crop, x0:x0 + crop].float()
        b = views["targets"][i, :, y0:y0 + crop, x0:x0 + crop].float()
        xin.append(a.flip(-1) if f else a)
        yt.append(b.flip(-1) if f else b)
    return torch.stack(xin), torch.stack(yt)


# ----------------------------------------------------------------------------- state
@dataclass
class TrainState:
    """Everything that changes during training (and goes into the checkpoint)."""

    student: StudentGenerator
    disc: PatchDiscriminator | None
    opt_w: torch.optim.Optimizer
    opt_gamma: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    replay: ReplayBuffer
    reference: dict[str, float]
    original_channels: dict[str, tuple[int, int]]
    step: int = 0
    history: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)


def make_optimizers(student: StudentGenerator, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for weights (reference betas), SGD momentum 0.5 for the GS channel scales."""
    scale_ids = {id(student.scale_of(g)) for g in student.groups()}
    scales = [p for p in student.parameters() if id(p) in scale_ids]
    weights = [p for p in student.parameters() if id(p) not in scale_ids]
    opt_w = torch.optim.Adam(weights, lr=cfg.lr, betas=(0.5, 0.999), weight_decay=cfg.weight_decay)
    opt_gamma = torch.optim.SGD(scales, lr=cfg.lr_gamma, momentum=0.5)
    return opt_w, opt_gamma


def lr_factor(step: int, total: int) -> float:
    """Cosine decay to 5% of the base rate."""
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


def apply_phase(student: StudentGenerator, cfg: TrainConfig, step: int) -> None:
    """Quantisation on/off and range freezing as pure functions of the step (resume-safe)."""
    set_quantisation(student, cfg.qat and step >= int(cfg.qat_start * cfg.steps))
    freeze_ranges(student, step >= int(cfg.freeze_ranges * cfg.steps))


def save_state(path: Path, st: TrainState, cfg: TrainConfig, teacher: Teacher) -> None:
    payload = {
        "format": CKPT_FORMAT, "config": cfg.to_dict(), "step": st.step,
        "spec": st.student.gen_spec.to_dict(), "student": st.student.state_dict(),
        "disc": st.disc.state_dict() if st.disc else None,
        "opt_w": st.opt_w.state_dict(), "opt_gamma": st.opt_gamma.state_dict(),
        "opt_d": st.opt_d.state_dict() if st.opt_d else None, "replay": st.replay.state_dict(),
        "reference": st.reference, "original_channels": st.original_channels,
        "history": st.history, "evals": st.evals, "teacher_sha256": teacher.sha256,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


CKPT_REMEDY = "Delete it to start the run over, or train into another --out."
CKPT_FIELDS = {"config": dict, "step": int, "spec": dict, "student": dict, "disc": (dict, type(None)),
               "opt_w": dict, "opt_gamma": dict, "opt_d": (dict, type(None)), "replay": dict, "reference": dict,
               "original_channels": dict, "history": list, "evals": list, "teacher_sha256": str}


def read_train_state(path: Path) -> dict:
    """A training checkpoint's payload: plain data, every field present with its type."""
    what = "training checkpoint"
    p = read_payload(path, CKPT_FORMAT, what, "a gs-compress training checkpoint", CKPT_REMEDY, GsError)
    check_fields(p, CKPT_FIELDS, path, what, CKPT_REMEDY, GsError)
    check_fields(p["config"], {"preset": str, "steps": int}, path, f"{what} (config)", CKPT_REMEDY, GsError)
    check_tensors(p["student"], "student", path, what, CKPT_REMEDY, GsError)
    return p


def saved_config(path: Path) -> TrainConfig:
    """The configuration a training checkpoint was written with (what --resume continues)."""
    return TrainConfig.from_dict(read_train_state(path)["config"])


def load_state(path: Path, cfg: TrainConfig, teacher: Teacher, device: torch.device | str = "cpu") -> TrainState:
    """A checkpoint's training state, the modules on `device` before their optimizer states load (an
    optimizer's state lands on its parameters' device at load time, not when they move later)."""
    p = read_train_state(path)
    if p["teacher_sha256"] != teacher.sha256:
        raise GsError(f"{path} was trained against another teacher (sha256 {p['teacher_sha256'][:12]}...)")
    student = student_of(p, "spec", path, "training checkpoint", CKPT_REMEDY, GsError)
    load_state_into(student, p["student"], source=f"training checkpoint {path}")
    student.train().to(device)
    try:
        return _restore(p, student, cfg, device)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError):
        raise GsError(f"training checkpoint {path} is damaged (its discriminator, optimizer or replay state "
                      f"does not fit its student). {CKPT_REMEDY}") from None


def _restore(p: dict, student: StudentGenerator, cfg: TrainConfig, device: torch.device | str) -> TrainState:
    """The rest of the training state around an already loaded `student`."""
    disc = PatchDiscriminator(ndf=cfg.ndf) if p["disc"] is not None else None
    if disc:
        disc.load_state_dict(p["disc"])
        disc.to(device)
    opt_w, opt_gamma = make_optimizers(student, cfg)
    opt_w.load_state_dict(p["opt_w"])
    opt_gamma.load_state_dict(p["opt_gamma"])
    opt_d = None
    if disc:
        opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
        opt_d.load_state_dict(p["opt_d"])
    replay = ReplayBuffer()
    replay.load_state_dict(p["replay"])
    return TrainState(student, disc, opt_w, opt_gamma, opt_d, replay, p["reference"],
                      {k: tuple(v) for k, v in p["original_channels"].items()}, p["step"], p["history"], p["evals"])


def check_budgets(cfg: TrainConfig, teacher_macs: float, teacher_params: float) -> None:
    """A MAC or parameter budget above the teacher's own cannot compress anything: refuse it."""
    size = f"{cfg.eval_size}x{cfg.eval_size}"
    if cfg.target_macs is not None and cfg.target_macs > teacher_macs:
        raise GsError(f"--target-macs {cfg.target_macs / G:.4g}G is above the teacher's {teacher_macs / G:.4g}G MACs "
                      f"at {size}; give a smaller budget (the default is 1/9 of the teacher's)")
    if cfg.target_params is not None and cfg.target_params > teacher_params:
        raise GsError(f"--target-params {cfg.target_params / 1e6:.4g}M is above the teacher's "
                      f"{teacher_params / 1e6:.4g}M parameters; give a smaller budget")


# ----------------------------------------------------------------------------- the run
class Trainer:
    """Owns one gs-compress run in RUN_DIR."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, resume: bool = False, show_progress: bool = True) -> None:
        self.cfg, self.run_dir, self.resume = cfg, Path(run_dir), resume
        self.dist = init_distributed(cfg.device)
        self.show = show_progress and self.dist.main
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(cfg.device)
        self.ckpt_path = self.run_dir / "checkpoints" / "last.pt"

    # -- set-up --
    def setup(self) -> None:
        cfg = self.cfg
        check_config(cfg)
        if cfg.device.startswith("cuda") and not torch.cuda.is_available():
            raise GsError("--device cuda requested but no CUDA device is available")
        self.teacher = load_teacher(cfg.teacher, cfg.arch)
        self.teacher_macs = count_module_macs(self.teacher.model, cfg.eval_size, cfg.eval_size)
        self.teacher_params = count_params(self.teacher.model)
        check_budgets(cfg, self.teacher_macs, self.teacher_params)  # before the slow teacher labelling
        (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "cache").mkdir(exist_ok=True)
        self.photos = load_photos(cfg.data)
        if self.dist.main:
            self.photos.write_manifest(self.run_dir / "photos.json")
        # rank 0 labels and writes the cache; the others wait for it, then read it (two ranks
        # writing the same file raced: one rank's rename removed the other's temporary file)
        if not self.dist.main:
            self.dist.barrier()
        self.views = label_views(self.teacher.model, self.photos, cfg, self.run_dir / "cache", self.show, self.device)
        if cfg.bank_views:  # whole labelled views from the user cache replace the crops' source views
            self.views.update(open_bank(self.teacher, self.photos, cfg).ensure(
                cfg.bank_views, self.teacher.model, self.device, self.show))
        if self.dist.main:
            self.dist.barrier()
        # the uncompressed student (sub-pixel form) at eval size: where the MAC budget starts
        self.full_student_macs = StudentGenerator(self.teacher.model.spec()).macs(cfg.eval_size, cfg.eval_size)
        self.target = cfg.target_macs if cfg.target_macs is not None else (
            cfg.target_ratio * self.teacher_macs if cfg.target_ratio else None)
        self.target_params = cfg.target_params if cfg.target_params is not None else (
            cfg.target_params_ratio * self.teacher_params if cfg.target_params_ratio and self.target is not None
            else None)
        self.full_student_params = StudentGenerator(self.teacher.model.spec()).slim_params()
        self.objective = GSObjective(FeatureDistance(self.teacher.model.encoder()) if cfg.w_feat > 0 else None,
                                     cfg.beta, cfg.w_feat, cfg.lambda_gan if cfg.gan else 0.0).to(self.device)
        if self.resume and self.ckpt_path.is_file():
            self.state = load_state(self.ckpt_path, cfg, self.teacher, self.device)
            if self.dist.main:
                self.rewrite_log(self.state.history)  # rows past the checkpoint are trained again
        else:
            if self.resume and self.dist.main:
                print(f"no checkpoint in {self.ckpt_path.parent}: starting from scratch")
            self.state = self.fresh_state()
        self.move_to_device()

    def fresh_state(self) -> TrainState:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        calib = self.views["inputs"][:16].float()
        student = student_from_teacher(self.teacher.model, calib).train()
        disc = PatchDiscriminator(ndf=cfg.ndf) if cfg.gan else None
        opt_w, opt_gamma = make_optimizers(student, cfg)
        opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999)) if disc else None
        original = student.channel_counts()
        return TrainState(student, disc, opt_w, opt_gamma, opt_d, ReplayBuffer(),
                          channels.initial_reference(student), original)

    def move_to_device(self) -> None:
        st = self.state
        st.student.to(self.device)
        if st.disc:
            st.disc.to(self.device)
        self.objective.to(self.device)

    # -- the loop --
    def train_step(self, step: int) -> dict[str, float]:
        cfg, st = self.cfg, self.state
        apply_phase(st.student, cfg, step)
        factor = lr_factor(step, cfg.steps)
        for opt, base in ((st.opt_w, cfg.lr), (st.opt_gamma, cfg.lr_gamma), (st.opt_d, cfg.lr_d)):
            if opt:
                for g in opt.param_groups:
                    g["lr"] = base * factor
        sample = bank_batch if cfg.bank_views else sample_batch
        x, y_t = (t.to(self.device) for t in sample(self.views, cfg, step, self.dist.rank))
        y_s = st.student(x)
        terms = self.objective.generator_terms(y_s, y_t, st.disc)
        if not torch.isfinite(terms["total"]):
            raise TrainingDiverged(
                f"loss became {terms['total'].item()} at step {step}; the last good checkpoint "
                f"({self.ckpt_path}) is intact: lower --lr and --resume")
        st.opt_w.zero_grad(set_to_none=True)
        st.opt_gamma.zero_grad(set_to_none=True)
        terms["total"].backward()
        all_reduce_grads(st.student, self.dist)
        st.opt_w.step()
        st.opt_gamma.step()
        # GS sparsity: proximal step on the channel scales (MAC-aware weights)
        channels.proximal_step(st.student, cfg.lr_gamma * factor, cfg.rho)
        if st.disc:
            gen = torch.Generator().manual_seed(cfg.seed * 7919 + step)
            fake = st.replay.push_and_sample(y_s.detach().cpu(), gen).to(self.device)
            d_loss = self.objective.discriminator_loss(st.disc, y_t, fake)
            st.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            all_reduce_grads(st.disc, self.dist)
            st.opt_d.step()
            terms["d"] = d_loss
        return {k: float(v.detach()) for k, v in terms.items()}

    def budget_step(self, step: int) -> None:
        """Shrink to the scheduled MAC budget; compact the student when it paid off."""
        cfg, st = self.cfg, self.state
        if self.target is None:
            return
        start, end = int(cfg.prune_start * cfg.steps), int(cfg.prune_end * cfg.steps)
        if step < start or step > end:
            return
        size = cfg.eval_size
        budget = channels.budget_schedule(step, start, end, self.full_student_macs, self.target)
        params_budget = None if self.target_params is None else channels.budget_schedule(
            step, start, end, self.full_student_params, self.target_params)
        channels.prune_to_budget(st.student, budget, st.reference, size, size, params_budget)
        live = st.student.macs(size, size)
        allocated = self.allocated_macs()
        if live < 0.8 * allocated or (step == end and live < allocated):
            self.compact()

    def allocated_macs(self) -> float:
        """MACs the student's tensors physically hold (dead channels included)."""
        st, size = self.state.student, self.cfg.eval_size
        counts = {u.name: (u.in_ch, u.out_ch) for u in st.gen_spec.units()}
        from .macs import count_spec_macs

        return float(sum(count_spec_macs(st.gen_spec, counts, size, size, up_kernel=2).values()))

    def compact(self) -> None:
        st, cfg = self.state, self.cfg
        st.student = channels.compact(st.student).to(self.device)
        st.opt_w, st.opt_gamma = make_optimizers(st.student, cfg)

    # -- evaluation and outputs --
    def evaluate(self, step: int) -> dict:
        views = self.views
        ev = evaluate_student(self.state.student, views["val_inputs"].to(self.device), views["val_targets"].to(self.device))
        images = ev.pop("_fakequant_images")
        ev.update(step=step, macs=self.state.student.macs(self.cfg.eval_size, self.cfg.eval_size),
                  params=self.state.student.slim_params())
        self.last_val_images = images
        return ev

    def rewrite_log(self, rows: list[dict]) -> None:
        """train_log.csv holding exactly `rows` (the checkpoint's history), written atomically."""
        path = self.run_dir / "train_log.csv"
        if not rows:
            path.unlink(missing_ok=True)
            return
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def write_log_row(self, row: dict) -> None:
        path = self.run_dir / "train_log.csv"
        new = not path.is_file() or row["step"] == 0
        with open(path, "w" if new else "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def run(self) -> dict:
        from tqdm import tqdm

        self.setup()
        cfg, st = self.cfg, self.state
        t0 = time.time()
        bar = tqdm(total=cfg.steps, initial=st.step, desc="gs-compress", unit="step", disable=not self.show,
                   dynamic_ncols=True)
        while st.step < cfg.steps:
            step = st.step
            terms = self.train_step(step)
            self.budget_step(step)
            st.step = step + 1
            if step % cfg.log_every == 0 or st.step == cfg.steps:
                row = {"step": step, **{k: round(v, 6) for k, v in terms.items()},
                       "macs": st.student.macs(cfg.eval_size, cfg.eval_size), "params": st.student.slim_params(),
                       "lr": cfg.lr * lr_factor(step, cfg.steps), "seconds": round(time.time() - t0, 2),
                       "sparsity": round(1 - st.student.macs(cfg.eval_size, cfg.eval_size) / self.full_student_macs, 4)}
                st.history.append(row)
                if self.dist.main:
                    self.write_log_row(row)
                bar.set_postfix(loss=f"{terms['total']:.3f}", macs=channels.log_budget(row["macs"]))
            if cfg.eval_every and st.step % cfg.eval_every == 0 and st.step < cfg.steps and self.dist.main:
                ev = self.evaluate(st.step)
                st.evals.append({k: v for k, v in ev.items() if k != "psnr_per_image"})
                bar.write(f"step {st.step}: fake-quant PSNR vs teacher {ev['fakequant']['psnr']:.2f} dB "
                          f"(identity {ev['identity_baseline']['psnr']:.2f} dB), MACs {channels.log_budget(ev['macs'])}")
            if (st.step % cfg.ckpt_every == 0 or st.step == cfg.steps) and self.dist.main:
                save_state(self.ckpt_path, st, cfg, self.teacher)
            bar.update(1)
        bar.close()
        return self.finish() if self.dist.main else {}

    def fit_colour_head(self) -> dict | None:
        """Train the per-image colour head on the frozen student (plain + colour-jittered views)."""
        cfg, st = self.cfg, self.state
        if not cfg.colour_head:
            return None
        before = self.evaluate(cfg.steps)
        inputs, targets = head_views(self.views, cfg.jitter_size)
        fit = fit_colour_head(st.student, inputs.to(self.device), targets.to(self.device), cfg.head_steps,
                              seed=cfg.seed, show=self.show)
        apply_phase(st.student, cfg, cfg.steps)
        return {**fit, "without_head": {k: before[k] for k in ("fp32", "fakequant")}}

    def finish(self) -> dict:
        cfg, st = self.cfg, self.state
        self.compact()
        apply_phase(st.student, cfg, cfg.steps)
        colour = self.fit_colour_head()
        ev = self.evaluate(cfg.steps)
        size = cfg.eval_size
        metrics = {
            "format": "gs-mobile/metrics", "config": cfg.to_dict(), "teacher": self.teacher.describe(),
            "image_size": [size, size],
            "mac_convention": "conv MACs at each layer's output resolution for one image; G = 2**30",
            "teacher_macs": self.teacher_macs, "teacher_params": self.teacher_params,
            "student_macs": ev["macs"], "student_params": ev["params"],
            "macs_ratio": self.teacher_macs / ev["macs"], "params_ratio": self.teacher_params / ev["params"],
            "quality": {k: ev[k] for k in ("fp32", "fakequant", "identity_baseline")},
            "colour_head": colour,
            "layers": channels.layer_report(st.student, st.original_channels, size, size),
            "sparsity": {g: 1 - st.student.channel_counts()[g][1] / st.original_channels[g][1]
                         for g in st.student.groups() if g in st.original_channels},
            "evals": st.evals, "history": st.history,
            "val_photos": [e.name for e, s in zip(self.photos.entries, self.photos.split) if "val" in s],
        }
        save_student(self.run_dir / "student.pt", st.student, teacher=self.teacher.describe(), step=st.step,
                     config=cfg.to_dict(), original_spec=self.teacher.model.spec().to_dict(),
                     metrics={k: metrics[k] for k in ("student_macs", "student_params", "quality")})
        views = self.views
        notes = [f"{p:.1f} dB (input {q:.1f})" for p, q in zip(ev["fakequant"]["psnr_per_image"],
                                                             ev["identity_baseline"]["psnr_per_image"])]
        save_grid(self.run_dir / "samples.png", {"input": views["val_inputs"], "teacher": views["val_targets"],
                                                 "student (fake-quant int8)": self.last_val_images.cpu()}, notes=notes)
        write_val_views(self.run_dir / VAL_VIEWS_FILE, views["val_inputs"].float().cpu().numpy(),
                        views["val_targets"].float().cpu().numpy())
        write_json_atomic(self.run_dir / "metrics.json", metrics)
        return metrics


def summarise(metrics: dict) -> str:
    """Human-readable end-of-run lines."""
    q = metrics["quality"]
    return "\n".join([
        f"student: {metrics['student_macs'] / G:.2f}G MACs ({metrics['macs_ratio']:.1f}x fewer than the teacher's "
        f"{metrics['teacher_macs'] / G:.2f}G), {metrics['student_params'] / 1e6:.3f}M params "
        f"({metrics['params_ratio']:.1f}x fewer)",
        f"PSNR vs teacher on {len(q['fakequant']['psnr_per_image'])} val photos: fake-quant INT8 "
        f"{q['fakequant']['psnr']:.2f} dB, fp32 {q['fp32']['psnr']:.2f} dB "
        f"(identity baseline: the input itself scores {q['identity_baseline']['psnr']:.2f} dB); "
        f"SSIM {q['fakequant']['ssim']:.3f}",
    ] + ([f"colour head: fake-quant {metrics['colour_head']['without_head']['fakequant']['psnr']:.2f} dB "
          f"without it ({metrics['colour_head']['views']} views, {metrics['colour_head']['steps']} steps)"]
         if metrics.get("colour_head") else []))
