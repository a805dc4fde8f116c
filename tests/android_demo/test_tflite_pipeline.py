"""The app's pipeline in Python (twin + LiteRT on a real int8 .tflite) against the float model."""
from __future__ import annotations

import numpy as np

import gs_contract
from export import android_assets as aa


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """The contract's PSNR of two uint8 images."""
    return gs_contract.psnr(gs_contract.pixels_to_real(a)[None], gs_contract.pixels_to_real(b)[None])


def test_int8_app_pipeline_matches_float_model(tiny_export, photo):
    from ai_edge_litert.interpreter import Interpreter

    in_spec, out_spec = aa.app_tensor_specs(tiny_export["manifest"])
    assert in_spec.dtype == out_spec.dtype == "int8"
    resized = aa.center_crop_resize(photo, in_spec.height, in_spec.width)

    interp = Interpreter(model_content=tiny_export["blob"], num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], aa.encode(resized, in_spec))
    interp.invoke()
    app_image = aa.decode(interp.get_tensor(interp.get_output_details()[0]["index"]), out_spec)

    float_out = tiny_export["model"](gs_contract.pixels_to_real(resized)[None].astype(np.float32)).numpy()
    float_image = gs_contract.real_to_pixels(float_out[0])

    assert app_image.shape == float_image.shape == (in_spec.height, in_spec.width, 3)
    print(f"int8 app pipeline vs float model: {psnr(app_image, float_image):.1f} dB")
    assert psnr(app_image, float_image) > 40.0
    assert psnr(app_image, resized) < psnr(app_image, float_image)  # the model did something
