"""The teacher's stride-2 ConvTranspose (k3, p1, output_padding 1) as an exactly equivalent sub-pixel
convolution: zero-pad right and bottom, a 2x2 conv to 4*C channels, depth-to-space (plain int8 CONV_2D
+ DEPTH_TO_SPACE on mobile)."""
from __future__ import annotations

import torch


def convtranspose_to_subpixel(weight: torch.Tensor) -> torch.Tensor:
    """ConvTranspose2d(k=3, s=2, p=1, output_padding=1) weight [in, out, 3, 3] -> sub-pixel conv weight.

    Result [out*4, in, 2, 2] in pixel_shuffle order (channel c*4 + a*2 + b is output phase (a, b)).
    Output row 2m takes tap 1 of input row m; row 2m+1 takes tap 2 of row m and tap 0 of row m+1.
    """
    cin, cout = weight.shape[:2]
    taps = {0: {0: 1}, 1: {0: 2, 1: 0}}  # phase -> {offset: kernel index}
    out = weight.new_zeros(cout, 2, 2, cin, 2, 2)
    for a in (0, 1):
        for b in (0, 1):
            for dy, ky in taps[a].items():
                for dx, kx in taps[b].items():
                    out[:, a, b, :, dy, dx] = weight[:, :, ky, kx].t()
    return out.reshape(cout * 4, cin, 2, 2)
