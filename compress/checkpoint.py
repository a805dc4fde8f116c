"""The two checkpoints gs-compress writes, and reading them back with every field checked.

student.pt (the contract with gs-export, docs/CONTRACTS.md): the student's generator description,
its weights and metadata. checkpoints/last.pt: the whole training state (student, discriminator,
optimizers, replay buffer, history), so that --resume ends exactly where an uninterrupted run ends.
Both hold plain data only and are written atomically.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from gs_contract import atomic_path

from .colour import HIDDEN
from .config import TrainConfig
from .errors import CheckpointError, GsError
from .objective import PatchDiscriminator, ReplayBuffer
from .safeload import check_fields, check_tensors, load_plain
from .student import StudentGenerator
from .teachers import Teacher
from .zoo import load_state_into
from .zoo.spec import GeneratorSpec

STUDENT_FORMAT = "gs-mobile/student"
CKPT_FORMAT = "gs-mobile/train-state"


# ----------------------------------------------------------------------------- student.pt
def save_student(path: Path, student: StudentGenerator, **meta: object) -> None:
    """Atomically write the student checkpoint (spec + state + metadata)."""
    path = Path(path)
    payload = {"format": STUDENT_FORMAT, "version": 1, "arch": student.gen_spec.arch,
               "spec": student.gen_spec.to_dict(), "state_dict": student.state_dict(), **meta}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


STUDENT_REMEDY = "Use the student.pt that gs-compress wrote in its RUN_DIR (re-run gs-compress to make a new one)."


def read_student_checkpoint(path: Path) -> dict:
    """Read and check a student checkpoint written by `save_student` (plain data only, fields checked)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"student checkpoint not found: {path}")
    what = "student checkpoint"
    payload = read_payload(path, STUDENT_FORMAT, what, "a gs-compress student checkpoint", STUDENT_REMEDY)
    check_fields(payload, {"arch": str, "spec": dict, "state_dict": dict}, path, what, STUDENT_REMEDY)
    check_tensors(payload["state_dict"], "state_dict", path, what, STUDENT_REMEDY)
    if "teacher" in payload:
        check_fields(payload, {"teacher": dict}, path, what, STUDENT_REMEDY)
    return payload


def read_payload(path: Path, fmt: str, what: str, kind: str, remedy: str,
                 error: type[Exception] = CheckpointError) -> dict:
    """A plain-data dict whose "format" is `fmt` (`kind` in words); anything else -> one-line `error`."""
    payload = load_plain(path, what, remedy, error)
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise error(f"{path} is not {kind}. {remedy}")
    return payload


def student_of(payload: dict, key: str, path: Path, what: str, remedy: str,
               error: type[Exception] = CheckpointError) -> StudentGenerator:
    """A fresh student over the generator description stored under `key`; one-line `error` if malformed."""
    try:
        return StudentGenerator(GeneratorSpec.from_dict(payload[key]))
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise error(f"{what} {path} is damaged (its '{key}' is not a generator description). {remedy}") from None


def load_student(path: Path, expect_arch: str | None = None) -> tuple[StudentGenerator, dict]:
    """Rebuild the masked QAT student from a checkpoint; returns (student in eval mode, payload)."""
    payload = read_student_checkpoint(path)
    if expect_arch and payload["arch"] != expect_arch:
        raise CheckpointError(f"{path} holds a {payload['arch']} student, expected {expect_arch}")
    student = student_of(payload, "spec", path, "student checkpoint", STUDENT_REMEDY)
    if any(k.startswith("colour.") for k in payload["state_dict"]):
        w1 = payload["state_dict"].get("colour.w1")  # an ensemble of heads is one wider head
        student.attach_colour_head(w1.shape[0] if isinstance(w1, torch.Tensor) and w1.dim() == 4 else HIDDEN)
    load_state_into(student, payload["state_dict"], source=f"student checkpoint {path}")
    return student.eval(), payload


# ----------------------------------------------------------------------------- training state
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


def save_state(path: Path, st: TrainState, cfg: TrainConfig, teacher: Teacher) -> None:
    """Atomically write the whole training state (what `load_state` restores for --resume)."""
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
