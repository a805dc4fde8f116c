"""The GS training loop: one objective, distillation + GAN + sparsity + quantisation, end to end.

Read top to bottom: set-up (teacher, photos, teacher-labelled views, student, discriminator),
then the loop (student step -> proximal step -> discriminator step -> MAC-budget pruning ->
checkpoint), then the final evaluation and the RUN_DIR files. Every random choice is derived from
(seed, step, rank), and every piece of state is in the checkpoint, so a run killed and resumed with
--resume ends exactly where an uninterrupted one ends (CPU).

Around the loop: distributed.py (ranks, gradient averaging), views.py (the teacher-labelled views
and the batches cut from them), checkpoint.py (student.pt and the training state).
"""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import torch

from gs_contract import VAL_VIEWS_FILE, atomic_path, write_json_atomic, write_val_views

from . import channels
from .bank import bank_batch, open_bank
from .checkpoint import TrainState, load_state, make_optimizers, save_state, save_student
from .colour_fit import fit_colour_head
from .config import G, TrainConfig, check_config
from .distributed import all_reduce_grads, init_distributed
from .errors import GsError
from .evaluate import evaluate_student, save_grid
from .layer_distill import LayerDistillation
from .macs import count_module_macs, count_params, count_spec_macs
from .objective import FeatureDistance, GSObjective, PatchDiscriminator, ReplayBuffer
from .photo_types import PhotoSet
from .quant import freeze_ranges, set_quantisation
from .student import StudentGenerator, student_from_teacher
from .teachers import Teacher, load_teacher
from .views import head_views, label_views, load_photos, sample_batch


class TrainingDiverged(GsError):
    """The loss became NaN/inf; the last good checkpoint is left intact."""


# ----------------------------------------------------------------------------- schedules and budgets
def lr_factor(step: int, total: int) -> float:
    """Cosine decay to 5% of the base rate."""
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


def apply_phase(student: StudentGenerator, cfg: TrainConfig, step: int) -> None:
    """Quantisation on/off and range freezing as pure functions of the step, and the pre-norm grids'
    range fraction: non-persistent switches a resumed checkpoint does not carry, so set every step."""
    set_quantisation(student, cfg.qat and step >= int(cfg.qat_start * cfg.steps))
    freeze_ranges(student, step >= int(cfg.freeze_ranges * cfg.steps))
    student.clip_prenorm_ranges(cfg.prenorm_range)


def prune_window(cfg: TrainConfig) -> tuple[int, int]:
    """First and last step of the MAC budget's cubic schedule."""
    return int(cfg.prune_start * cfg.steps), int(cfg.prune_end * cfg.steps)


def check_budgets(cfg: TrainConfig, teacher_macs: float, teacher_params: float) -> None:
    """A MAC or parameter budget above the teacher's own cannot compress anything: refuse it."""
    size = f"{cfg.eval_size}x{cfg.eval_size}"
    if cfg.target_macs is not None and cfg.target_macs > teacher_macs:
        raise GsError(f"--target-macs {cfg.target_macs / G:.4g}G is above the teacher's {teacher_macs / G:.4g}G MACs "
                      f"at {size}; give a smaller budget (the default is 1/9 of the teacher's)")
    if cfg.target_params is not None and cfg.target_params > teacher_params:
        raise GsError(f"--target-params {cfg.target_params / 1e6:.4g}M is above the teacher's "
                      f"{teacher_params / 1e6:.4g}M parameters; give a smaller budget")


def head_phase(student: StudentGenerator, views: dict, cfg: TrainConfig, device: torch.device | str,
               show: bool, without_head: dict) -> dict:
    """The last phase of a run: the colour head fitted on the frozen, compacted student from the
    labelled views (views.head_views), then the student's quantisation switches as at the last step.
    Returns metrics.json's `colour_head` record; `without_head` is the student's evaluation before it."""
    inputs, targets = head_views(views, cfg.jitter_size)
    fit = fit_colour_head(student, inputs.to(device), targets.to(device), cfg.head_steps, seed=cfg.seed, show=show,
                          heads=cfg.head_ensemble)
    apply_phase(student, cfg, cfg.steps)
    return {**fit, "without_head": {k: without_head[k] for k in ("fp32", "fakequant")}}


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
        # built by setup() (loading the teacher and labelling the views is slow; run() calls it first)
        self.teacher: Teacher | None = None
        self.teacher_macs: float | None = None
        self.teacher_params: float | None = None
        self.photos: PhotoSet | None = None
        self.views: dict | None = None           # teacher-labelled views (views.py)
        self.full_student_macs: float | None = None    # the uncompressed student: where the budgets start
        self.full_student_params: float | None = None
        self.target: float | None = None         # MAC budget at the eval size (None: no pruning)
        self.target_params: float | None = None
        self.objective: GSObjective | None = None
        self.layers: LayerDistillation | None = None   # layer-wise distillation (cfg.w_layer > 0)
        self.state: TrainState | None = None
        self.last_val_images: torch.Tensor | None = None  # the student's val outputs at the last evaluate()

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
        self.layers = LayerDistillation(self.teacher.model) if cfg.w_layer > 0 else None
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
        student = student_from_teacher(self.teacher.model, calib, norm=cfg.norm).train()
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
        taps = st.student.record_taps(self.layers is not None)
        y_s = st.student(x)
        st.student.record_taps(False)
        terms = self.objective.generator_terms(y_s, y_t, st.disc)
        if self.layers is not None:
            terms["layer"] = self.layers.loss(st.student, taps, self.layers.teacher_activations(x))
            terms["total"] = terms["total"] + cfg.beta * cfg.w_layer * terms["layer"]
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
        # GS sparsity: proximal step on the channel scales (MAC-aware weights); with a MAC budget and
        # shrink_after_budget off it stops once the budget is reached, so the student keeps its size
        if self.target is None or cfg.shrink_after_budget or step <= prune_window(cfg)[1]:
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
        start, end = prune_window(cfg)
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
        metrics = self.finish() if self.dist.main else {}  # the other ranks wait in close() meanwhile
        self.dist.close()
        return metrics

    def fit_colour_head(self) -> dict | None:
        """Train the per-image colour head on the frozen student (plain + colour-jittered views)."""
        cfg, st = self.cfg, self.state
        if not cfg.colour_head:
            return None
        return head_phase(st.student, self.views, cfg, self.device, self.show, self.evaluate(cfg.steps))

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
