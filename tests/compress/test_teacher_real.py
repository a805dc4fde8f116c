"""The real default teacher (vintagify, fetched from PyPI): strict load and a reference statistic."""
from __future__ import annotations

import pytest
import torch

from compress.errors import TeacherError
from compress.teachers import DEFAULT_SHA256, load_teacher

pytestmark = pytest.mark.slow


def test_default_teacher_output_on_a_real_photo() -> None:
    from skimage import data

    from compress.data import val_batch

    teacher = load_teacher("default")
    assert teacher.sha256 == DEFAULT_SHA256
    assert sum(p.numel() for p in teacher.model.parameters()) == 11_388_675
    x = val_batch([data.astronaut()], 128)
    with torch.no_grad():
        y = teacher.model(x)
    # measured once from the original checkpoint; a wrong key mapping or norm changes these
    ref_mean = torch.tensor([0.1321, -0.1255, -0.2049])
    ref_std = torch.tensor([0.5245, 0.4964, 0.4963])
    assert torch.allclose(y.mean((0, 2, 3)), ref_mean, atol=2e-3)
    assert torch.allclose(y.std((0, 2, 3)), ref_std, atol=2e-3)
    assert torch.allclose(y[0, :, 64, 64], torch.tensor([-0.7018, -0.7225, -0.7369]), atol=2e-3)


def test_offline_without_cache_is_one_clear_line(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("GS_MOBILE_CACHE", str(tmp_path))
    with pytest.raises(TeacherError, match="gs-compress fetch-teacher"):
        load_teacher("default", fetch=False)
