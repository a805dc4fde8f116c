"""The TFLite builder's own pieces, against independent references."""
from __future__ import annotations

import numpy as np
import pytest

from export.tflite_build import _tf, reflect_pad, space_to_depth_kernel


@pytest.mark.parametrize("pad", [1, 3])
def test_reflect_pad_equals_numpy_reflect(pad: int) -> None:
    x = np.random.default_rng(pad).normal(size=(1, 9, 7, 4)).astype(np.float32)
    got = reflect_pad(_tf(), _tf().constant(x), pad).numpy()
    want = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("k", [3, 7])
def test_space_to_depth_conv_equals_direct_conv(k: int) -> None:
    """pad -> SPACE_TO_DEPTH -> conv(expanded kernel) -> DEPTH_TO_SPACE == pad -> conv."""
    import torch

    tf = _tf()
    rng = np.random.default_rng(k)
    x = rng.normal(size=(1, 10, 12, 5)).astype(np.float32)
    w = torch.from_numpy(rng.normal(size=(3, 5, k, k)).astype(np.float32))
    xp = np.pad(x, [(0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)])
    want = tf.nn.conv2d(xp, w.permute(2, 3, 1, 0).numpy(), 1, "VALID").numpy()
    big = space_to_depth_kernel(w)
    assert big.shape == (12, 20, k // 2 + 1, k // 2 + 1)
    got = tf.nn.depth_to_space(tf.nn.conv2d(tf.nn.space_to_depth(xp, 2), big.permute(2, 3, 1, 0).numpy(), 1, "VALID"), 2)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-4)
