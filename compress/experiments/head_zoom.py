"""Which of the colour head's views teach it: how each view is framed, how many there are, of how many photos.

    python -m compress.experiments.head_zoom --student RUN/student.pt --cache DIR [DIR ...] \
        --features-file F [--head-seeds 2] [--subsets all zoom<=2 ...] [--threads 2]

Each DIR holds a teacher_views.pt of one draw of head views (gs-compress's RUN_DIR/cache, or
head_sweep's --cache folder) of the same photos; their head views are pooled (training views left out),
and every view's framing is recomputed from its draw's seed and photos (compress.data.jitter_crops: the
zoom is the photo's short side over the view's window, 1 to jitter_zoom). The student's head inputs for
all of them are computed once and kept in F (about 0.8 MB per 256 px view; reused when F exists). Then
four heads (the preset's ensemble) are fitted on each subset, as gs-compress fits them, and one JSON
line per (subset, head seed) gives val PSNR (fake-quant INT8), the worst photo and the photos below
their identity score. Subsets, in the order their random draws are taken from one generator (seed 123):
`all`, `zoom<=1.5`, `zoom>1.5`, `zoom<=2`; `random_like_zoom<=1.5` and `random_like_zoom<=2` (as many
views drawn at random from all of them); per draw K: `draw{K}`, `draw{K}_zoom<=2`, `draw{K}_zoom<=1.5`,
`draw{K}_random_like_zoom<=2`; `zoom<=2_random_like_zoom<=1.5` (as many as zoom<=1.5 drawn from
zoom<=2). How many scenes (a generator of seed 1000 + P per photo draw P in 0-2): `photos{N}_p{P}` is
every view of N photos drawn at random (N in PHOTO_COUNTS, each draw's N photos nested in its larger N)
and `views_like_photos{N}_p{P}` as many views drawn at random from all photos, so the two differ only in
how their views are spread over the photos.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..colour_fit import fit_heads, head_inputs
from ..config import TrainConfig
from ..data import jitter_crops
from ..errors import GsError
from ..evaluate import evaluate_student, psnr
from ..safeload import load_plain
from ..views import drawn_photos, head_view_images, load_head_photos, load_photos, read_cached_views
from .head_sweep import frozen_trunk, trunk_parser


PHOTO_COUNTS = (25, 50, 100, 200)
PHOTO_DRAWS = 3


def pooled_draws(student: torch.nn.Module, folders: list[Path], cfg: TrainConfig) -> dict:
    """Head inputs, targets, zoom, draw and photo index of every head view of `folders`, and the val photos."""
    photos = load_photos(cfg.data)
    head = load_head_photos(cfg.head_photos, photos)
    images = head_view_images(photos, head)
    shas = [e.sha256 for e in photos.entries], [sha for sha, _ in head]
    rows: dict[str, list] = {"pooled": [], "pres": [], "targets": [], "zoom": [], "draw": [], "photo": []}
    for k, folder in enumerate(folders):
        views = read_cached_views(folder / "teacher_views.pt")
        if views is None:
            raise GsError(f"no usable {folder / 'teacher_views.pt'}")
        key = views["key"]
        if (key.get("photos"), key.get("head_photos", [])) != shas:
            raise GsError(f"{folder}: its views are of other photos than the student's run config names")
        x = views["jitter_inputs"]
        zoom = key.get("jitter_zoom", TrainConfig.jitter_zoom)  # the key names it where it is not the default
        drawn = drawn_photos(len(images), key.get("head_view_photos", 0), key["seed"])  # as label_views drew them
        crops = jitter_crops([images[i] for i in drawn], len(x), x.shape[-1], key["seed"], zoom)
        pooled, pres = head_inputs(student, x)
        rows["pooled"].append(pooled)
        rows["pres"].append(pres)
        rows["targets"].append(views["jitter_targets"])
        rows["zoom"].append(torch.tensor([crops.zoom(i) for i in range(len(x))]))
        rows["draw"].append(torch.full((len(x),), k))
        rows["photo"].append(torch.tensor([drawn[crops.photo(i)] for i in range(len(x))]))  # among all photos
        print(f"head inputs of {folder}: {len(x)} views", file=sys.stderr, flush=True)  # stdout: JSON lines only
    return {**{name: torch.cat(parts) for name, parts in rows.items()},
            "val": views["val_inputs"].float(), "val_t": views["val_targets"].float()}


def subsets(zoom: torch.Tensor, draw: torch.Tensor, photo: torch.Tensor) -> dict[str, torch.Tensor]:
    """The named subsets (indices) of the docstring, random ones drawn in its order."""
    gen = torch.Generator().manual_seed(123)
    where = lambda mask: torch.nonzero(mask).flatten()  # noqa: E731
    picked = {"all": torch.arange(len(zoom)), "zoom<=1.5": where(zoom <= 1.5), "zoom>1.5": where(zoom > 1.5),
              "zoom<=2": where(zoom <= 2)}

    def random_like(pool: torch.Tensor, name: str, gen: torch.Generator) -> torch.Tensor:
        return pool[torch.randperm(len(pool), generator=gen)[:len(picked[name])]]

    for name in ("zoom<=1.5", "zoom<=2"):
        picked[f"random_like_{name}"] = random_like(picked["all"], name, gen)
    for k in draw.unique().tolist():
        picked[f"draw{k}"] = where(draw == k)
        picked[f"draw{k}_zoom<=2"] = where((draw == k) & (zoom <= 2))
        picked[f"draw{k}_zoom<=1.5"] = where((draw == k) & (zoom <= 1.5))
        picked[f"draw{k}_random_like_zoom<=2"] = random_like(picked[f"draw{k}"], f"draw{k}_zoom<=2", gen)
    picked["zoom<=2_random_like_zoom<=1.5"] = random_like(picked["zoom<=2"], "zoom<=1.5", gen)
    n_photos = int(photo.max()) + 1
    for p in range(PHOTO_DRAWS):  # a generator per photo draw: the subsets above stay as they were drawn
        photo_gen = torch.Generator().manual_seed(1000 + p)
        order = torch.randperm(n_photos, generator=photo_gen)
        for n in (n for n in PHOTO_COUNTS if n < n_photos):
            picked[f"photos{n}_p{p}"] = where(torch.isin(photo, order[:n]))
            picked[f"views_like_photos{n}_p{p}"] = random_like(picked["all"], f"photos{n}_p{p}", photo_gen)
    return picked


def main(argv: list[str] | None = None) -> int:
    p = trunk_parser(__spec__.name, __doc__, "folders holding teacher_views.pt, one per draw")
    p.add_argument("--features-file", type=Path, required=True,
                   help="where the head inputs of every view are kept (computed when missing)")
    p.add_argument("--head-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--subsets", nargs="+", default=["all", "zoom<=2", "random_like_zoom<=2"])
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        student, cfg = frozen_trunk(a.student)
        tag = {"student": str(a.student.resolve()), "caches": [str(c.resolve()) for c in a.cache]}
        data = (load_plain(a.features_file, "--features-file", "Name a new one to compute them again.", GsError)
                if a.features_file.is_file() else None)
        if data is not None and (not isinstance(data, dict) or data.get("tag") != tag):
            raise GsError(f"{a.features_file} holds the head inputs of another student or other caches; "
                          "name a new --features-file")
        if data is not None and "photo" not in data:
            raise GsError(f"{a.features_file} has no photo index per view (an older driver wrote it); "
                          "name a new --features-file")
        if data is None:
            data = {**pooled_draws(student, a.cache, cfg), "tag": tag}
            torch.save(data, a.features_file)
        picked = subsets(data["zoom"], data["draw"], data["photo"])
        unknown = [name for name in a.subsets if name not in picked]
        if unknown:
            raise GsError(f"--subsets {' '.join(unknown)}: choose from {' '.join(picked)}")
    except GsError as exc:
        p.error(str(exc))
    identity = psnr(data["val"], data["val_t"])
    for name in a.subsets:
        idx = picked[name]
        for seed in a.head_seeds:
            model = copy.deepcopy(student)
            fit_heads(model, data["pooled"][idx], data["pres"][idx], data["targets"][idx], cfg.head_steps,
                      cfg.head_ensemble, seed)
            fq = evaluate_student(model, data["val"], data["val_t"])["fakequant"]["psnr_per_image"]
            print(json.dumps({"student": a.student.name, "subset": name, "views": len(idx), "head_seed": seed,
                              "val": round(float(np.mean(fq)), 3), "worst": round(min(fq), 2),
                              "below_identity": sum(d < b for d, b in zip(fq, identity)),
                              "per_photo": [round(x, 2) for x in fq]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
