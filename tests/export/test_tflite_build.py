"""The TFLite builder's own pieces, against independent references."""
from __future__ import annotations

import numpy as np
import pytest

from export.tflite_build import _tf, reflect_pad


@pytest.mark.parametrize("pad", [1, 3])
def test_reflect_pad_equals_numpy_reflect(pad: int) -> None:
    x = np.random.default_rng(pad).normal(size=(1, 9, 7, 4)).astype(np.float32)
    got = reflect_pad(_tf(), _tf().constant(x), pad).numpy()
    want = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(got, want)
