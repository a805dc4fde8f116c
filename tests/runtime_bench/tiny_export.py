"""Build a tiny but real EXPORT_DIR for the gs-bench tests (run as a script, in its own process).

    python tiny_export.py OUT_DIR [--size 32]

The same conv nets exist in torch (-> TorchScript, ONNX via torch.onnx.export dynamo=False opset 17)
and in Keras with copied weights (-> TFLite fp32 and full-INT8 with a representative dataset),
plus a manifest.json following docs/CONTRACTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import torch  # noqa: E402

TEACHER_CH = (3, 16, 16, 3)
STUDENT_CH = (3, 4, 3)


def torch_net(channels: tuple[int, ...], seed: int) -> torch.nn.Sequential:
    """3x3 convs with ReLU between them and tanh at the end."""
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(torch.nn.Conv2d(cin, cout, 3, padding=1))
        layers.append(torch.nn.Tanh() if i == len(channels) - 2 else torch.nn.ReLU())
    return torch.nn.Sequential(*layers).eval()


def keras_net(net: torch.nn.Sequential, size: int):  # noqa: ANN201 - keras types
    """The same network in Keras (NHWC), weights copied from torch."""
    import tensorflow as tf

    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    x = inp = tf.keras.Input((size, size, 3), batch_size=1, name="input")
    for i, c in enumerate(convs):
        layer = tf.keras.layers.Conv2D(c.out_channels, 3, padding="same",
                                       activation="tanh" if i == len(convs) - 1 else "relu")
        x = layer(x)
        layer.set_weights([c.weight.detach().numpy().transpose(2, 3, 1, 0), c.bias.detach().numpy()])
    return tf.keras.Model(inp, x)


def to_tflite(model, size: int, int8: bool) -> bytes:  # noqa: ANN001
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)

        def rep():
            for _ in range(8):
                yield [rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def tflite_io(path: Path) -> tuple[list[dict], list[dict]]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))

    def spec(d: dict, name: str) -> dict:
        dt = np.dtype(d["dtype"]).name
        scale, zp = d["quantization"]
        q = dt != "float32"
        return {"name": name, "shape": [int(s) for s in d["shape"]], "dtype": dt, "layout": "NHWC",
                "scale": float(scale) if q else None, "zero_point": int(zp) if q else None}

    return [spec(it.get_input_details()[0], "input")], [spec(it.get_output_details()[0], "output")]


def nchw_io(size: int) -> tuple[list[dict], list[dict]]:
    t = {"shape": [1, 3, size, size], "dtype": "float32", "layout": "NCHW", "scale": None, "zero_point": None}
    return [dict(t, name="input")], [dict(t, name="output")]


def build(out: Path, size: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    teacher, student = torch_net(TEACHER_CH, 0), torch_net(STUDENT_CH, 1)
    x = torch.rand(1, 3, size, size) * 2 - 1
    files: list[tuple[str, str, str, str, str]] = []  # name, path, format, role, precision
    torch.jit.save(torch.jit.trace(teacher, x), str(out / "teacher_fp32.pt"))
    files.append(("teacher_fp32_torch", "teacher_fp32.pt", "torchscript", "teacher", "fp32"))
    for net, stem, role in ((teacher, "teacher_fp32", "teacher"), (student, "student_fp32", "student")):
        torch.onnx.export(net, (x,), str(out / f"{stem}.onnx"), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"])
        files.append((f"{stem}_onnx", f"{stem}.onnx", "onnx", role, "fp32"))
    for net, stem, role, int8 in ((teacher, "teacher_fp32", "teacher", False),
                                  (student, "student_fp32", "student", False),
                                  (student, "student_int8", "student", True)):
        (out / f"{stem}.tflite").write_bytes(to_tflite(keras_net(net, size), size, int8))
        files.append((f"{stem}_tflite", f"{stem}.tflite", "tflite", role, "int8" if int8 else "fp32"))
    artifacts = []
    for name, path, fmt, role, precision in files:
        data = (out / path).read_bytes()
        ins, outs = tflite_io(out / path) if fmt == "tflite" else nchw_io(size)
        net = teacher if role == "teacher" else student
        artifacts.append({"name": name, "path": path, "format": fmt, "role": role, "precision": precision,
                          "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                          "params": sum(p.numel() for p in net.parameters()), "macs": 0,
                          "inputs": ins, "outputs": outs})
    manifest = {"format": "gs-mobile/export", "version": 1,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "student_checkpoint": {"path": "none", "sha256": "0" * 64}, "image_size": [size, size],
                "mac_convention": "test", "teacher": {"arch": "tiny", "params": 0, "macs": 0},
                "student": {"params": 0, "macs": 0, "channels": {}}, "ratios": {}, "artifacts": artifacts}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(1)
    build(a.out, a.size)
