"""The head-view framing driver: each view's zoom and the subsets it fits heads on."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compress.data import jitter_crops
from compress.experiments.head_zoom import PHOTO_COUNTS, PHOTO_DRAWS, subsets


def test_each_views_zoom_is_the_drawn_framing() -> None:
    photos = [np.zeros((60, 90, 3), np.uint8), np.zeros((120, 40, 3), np.uint8)]
    crops = jitter_crops(photos, 40, 16, seed=3, zoom=2.0)
    zooms = [crops.zoom(i) for i in range(40)]
    assert all(1.0 - 1e-9 <= z <= 2.0 + 1e-9 for z in zooms) and max(zooms) - min(zooms) > 0.5
    for i in range(40):  # the drawn zoom is the first draw of the view's own generator (compress.data.crop_params)
        assert zooms[i] == pytest.approx(np.random.default_rng([4, 0, i]).uniform(1.0, 2.0), rel=1e-12)


def test_subsets_split_by_zoom_and_draw_and_random_ones_match_their_sizes() -> None:
    gen = torch.Generator().manual_seed(0)
    zoom, draw = 1 + 2 * torch.rand(300, generator=gen), torch.arange(300) // 100
    photo = torch.arange(300) % 20  # fewer photos than the smallest photo count: no photo subsets
    picked = subsets(zoom, draw, photo)
    assert not any(name.startswith(("photos", "views_like_photos")) for name in picked)
    assert len(picked["all"]) == 300
    assert sorted(picked["zoom<=1.5"].tolist() + picked["zoom>1.5"].tolist()) == list(range(300))
    assert bool((zoom[picked["zoom<=2"]] <= 2).all()) and bool((draw[picked["draw1_zoom<=2"]] == 1).all())
    for name, like in (("random_like_zoom<=2", "zoom<=2"), ("draw2_random_like_zoom<=2", "draw2_zoom<=2"),
                       ("zoom<=2_random_like_zoom<=1.5", "zoom<=1.5")):
        assert len(picked[name]) == len(picked[like]) and len(set(picked[name].tolist())) == len(picked[name])
    assert bool((draw[picked["draw2_random_like_zoom<=2"]] == 2).all())
    assert set(picked["zoom<=2_random_like_zoom<=1.5"].tolist()) <= set(picked["zoom<=2"].tolist())
    assert all(torch.equal(a, b) for a, b in zip(picked.values(), subsets(zoom, draw, photo).values()))  # reproducible


def test_photo_subsets_hold_every_view_of_n_nested_photos_and_their_controls_as_many_views() -> None:
    n_photos, per_photo = 250, 3
    photo = torch.arange(n_photos * per_photo) % n_photos
    zoom, draw = torch.ones(len(photo)), torch.arange(len(photo)) // n_photos
    picked = subsets(zoom, draw, photo)
    for p in range(PHOTO_DRAWS):
        seen: set[int] = set()
        for n in PHOTO_COUNTS:
            views = picked[f"photos{n}_p{p}"]
            shown = set(photo[views].tolist())
            assert len(shown) == n and len(views) == n * per_photo and seen <= shown
            seen = shown
            control = picked[f"views_like_photos{n}_p{p}"]
            assert len(control) == len(views) and len(set(control.tolist())) == len(control)
            assert len(set(photo[control].tolist())) > n  # the control's views show more scenes
    assert set(photo[picked["photos25_p0"]].tolist()) != set(photo[picked["photos25_p1"]].tolist())
    assert all(torch.equal(a, b) for a, b in zip(picked.values(), subsets(zoom, draw, photo).values()))
