"""The shared tiny export: every format produced, runnable, validated, described by manifest.json."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from gs_contract import sha256_file
from export.artifact_info import tflite_info
from export.formats import artifacts
from export.manifest import ARTIFACT_KEYS, MAC_CONVENTION, path_sha256
from export.onnx_build import U8_OFFSET
from export.slim import slim_graph
from export.validate import TOLERANCE_DB

from tests.export.helpers import SIZE


def _grids(student) -> set[tuple[float, int]]:  # noqa: ANN001
    return {(q.scale, q.zero_point) for q in slim_graph(student).act_quantisers()}


def _in(grid: tuple[float, int], grids: set[tuple[float, int]]) -> bool:
    return any(abs(grid[0] - s) <= 1e-6 * s and grid[1] == z for s, z in grids)


def test_every_artifact_written_and_described(shared_export) -> None:
    m = shared_export.manifest
    names = {a.name for a in artifacts()}
    assert {a["name"] for a in m["artifacts"]} == names
    leftovers = [p.name for p in shared_export.out.iterdir() if p.name.startswith(".")]
    assert not leftovers
    for a in m["artifacts"]:
        path = shared_export.out / a["path"]
        assert path.exists(), a["path"]
        assert list(a)[: len(ARTIFACT_KEYS)] == list(ARTIFACT_KEYS)
        assert a["sha256"] == path_sha256(path)
        assert a["bytes"] > 0
        assert a["macs"] == m[a["role"]]["macs"]


def test_manifest_top_level(shared_export) -> None:
    m = shared_export.manifest
    assert m["format"] == "gs-mobile/export" and m["version"] == 1
    assert m["image_size"] == [SIZE, SIZE]
    assert m["mac_convention"] == MAC_CONVENTION
    assert m["student_checkpoint"]["sha256"] == sha256_file(shared_export.run.run / "student.pt")
    student = shared_export.run.student
    assert m["student"]["params"] == student.slim_params()
    assert m["student"]["macs"] == student.macs(SIZE, SIZE)
    assert m["student"]["channels"]["trunk"][1] == student.groups()["trunk"].size
    assert m["teacher"]["checkpoint_bytes"] == shared_export.run.teacher.stat().st_size
    tflite = next(a for a in m["artifacts"] if a["name"] == "student_int8_tflite")
    assert m["ratios"]["size_teacher_ckpt_over_student_int8_tflite"] == pytest.approx(
        m["teacher"]["checkpoint_bytes"] / tflite["bytes"], rel=1e-3)
    assert m["ratios"]["macs_teacher_over_student"] > 1
    json.dumps(m, allow_nan=False)  # strict JSON


def test_psnr_within_tolerance(shared_export) -> None:
    for a in shared_export.manifest["artifacts"]:
        if a["format"] == "coreml":
            assert a["psnr_vs_reference"] is None
            continue
        assert a["psnr_vs_reference"] >= TOLERANCE_DB[a["precision"]], a["name"]
        assert a["psnr_vs_teacher"] is not None and a["psnr_vs_student_fakequant"] is not None


def test_int8_tflite_is_full_integer_with_qat_grids(shared_export) -> None:
    art = next(a for a in shared_export.manifest["artifacts"] if a["name"] == "student_int8_tflite")
    hist = art["op_histogram"]
    assert art["float_ops"] == 0 and hist.get("CONV_2D/int8", 0) > 0
    assert not [k for k in hist if k.startswith(("CONV_2D/float", "RSQRT", "SQUARED_DIFFERENCE"))]
    # the colour head: global mean and max of the trunk, 1x1 convs, a per-channel multiply-add, all int8
    assert hist.get("MEAN/int8") == 1 and hist.get("REDUCE_MAX/int8") == 1
    assert hist.get("MUL/int8", 0) >= 1 and hist.get("ADD/int8", 0) >= 1
    # reflection padding is slices + concat: MIRROR_PAD is not XNNPACK-delegated (3x slower measured)
    assert "MIRROR_PAD/int8" not in hist and hist.get("CONCATENATION/int8", 0) > 0
    # 7x7 stem and head run as space-to-depth convolutions (2x faster measured, same int8 output)
    assert hist.get("SPACE_TO_DEPTH/int8", 0) == 2
    assert art["inputs"][0] | {"scale": round(art["inputs"][0]["scale"], 6)} == {
        "name": "input", "shape": [1, SIZE, SIZE, 3], "dtype": "int8", "layout": "NHWC", "scale": round(2 / 255, 6),
        "zero_point": 0}
    assert (art["outputs"][0]["dtype"], art["outputs"][0]["scale"], art["outputs"][0]["zero_point"]) == ("int8", 1 / 128, 0)
    # every int8 activation tensor of the file is on one of the student's QAT grids, and all are used
    from export.artifact_info import tflite_interpreter

    it = tflite_interpreter(shared_export.out / "student_int8.tflite", delegates=False)
    grids = _grids(shared_export.run.student)
    acts = {(float(t["quantization"][0]), int(t["quantization"][1])) for t in it.get_tensor_details()
            if t["dtype"] == np.int8 and len(t["shape"]) == 4 and t["shape"][0] == 1 and t["quantization"][0] > 0}
    assert all(_in(g, grids) for g in acts)
    assert all(_in(g, acts) for g in grids)


def test_int8_onnx_is_qdq_with_qat_grids(shared_export) -> None:
    import onnx
    from onnx import numpy_helper

    art = next(a for a in shared_export.manifest["artifacts"] if a["name"] == "student_int8_onnx")
    assert art["op_histogram"]["QuantizeLinear"] > 0 and "Conv/float32" not in art["op_histogram"]
    model = onnx.load(str(shared_export.out / "student_int8.onnx"))
    assert model.opset_import[0].version >= 17
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    # uint8 activations: zero point = the student's int8 zero point + 128, same scale
    assert {inits[n.input[2]].dtype for n in quantize} == {np.dtype(np.uint8)}
    qs = {(float(inits[n.input[1]].item()), int(inits[n.input[2]].item()) - U8_OFFSET) for n in quantize}
    grids = _grids(shared_export.run.student)
    assert all(_in(g, grids) for g in qs) and all(_in(g, qs) for g in grids)
    # uint8 weights with every zero point 128: the int8 values in [-127, 127], offset by 128
    weights = [n for n in model.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4]
    assert weights and all(inits[n.input[0]].dtype == np.uint8 and inits[n.input[0]].min() >= 1
                           and set(inits[n.input[2]].tolist()) == {U8_OFFSET} for n in weights)
    onnx.checker.check_model(model, full_check=True)


def test_int8_onnx_runs_quantised_in_onnxruntime(shared_export, tmp_path) -> None:
    """ORT fuses every Conv, Add, Mul and Concat with its Q/DQ into a QLinear op (no float conv left)."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(shared_export.out / "student_int8.onnx"), opts, providers=["CPUExecutionProvider"])
    ops = Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
    assert ops["QLinearConv"] > 0 and ops["QLinearAdd"] > 0 and ops["QLinearMul"] == 1 and ops["QLinearConcat"] == 1
    assert not {"Conv", "ConvTranspose", "Add", "Mul", "Concat"} & set(ops), ops


@pytest.mark.parametrize("name", ["student_w8_mlpackage", "student_w8a8_mlpackage"])
def test_coreml_packages(shared_export, name: str) -> None:
    art = next(a for a in shared_export.manifest["artifacts"] if a["name"] == name)
    assert art["weight_dtypes"] == {"int8": art["op_histogram"]["conv"]}
    assert art["deployment_target"] == "iOS17"
    assert art["inputs"][0]["shape"] == [1, 3, SIZE, SIZE]
    quantisers = len(slim_graph(shared_export.run.student).act_quantisers())
    assert art["op_histogram"].get("quantize", 0) == (quantisers if name.endswith("w8a8_mlpackage") else 0)


def test_android_install(shared_export) -> None:
    assets = shared_export.app / "app" / "src" / "main" / "assets"
    assert (assets / "model.tflite").read_bytes() == (shared_export.out / "student_int8.tflite").read_bytes()
    assert json.loads((assets / "manifest.json").read_text())["format"] == "gs-mobile/export"


@pytest.mark.parametrize("io", ["uint8", "float"])
def test_tflite_io_options(shared_export, tmp_path, io: str) -> None:
    from export.graph import GraphModule
    from export.tflite_build import convert_tflite
    from export.runners import run_tflite
    from export.validate import load_images
    from gs_contract import psnr
    from compress.checkpoint import load_student

    student, _ = load_student(shared_export.run.run / "student.pt")
    graph = slim_graph(student)
    path = tmp_path / "m.tflite"
    path.write_bytes(convert_tflite(graph, SIZE, True, io))
    info = tflite_info(path)
    want = {"uint8": ("uint8", 128), "float": ("float32", None)}[io]
    assert (info["inputs"][0]["dtype"], info["inputs"][0]["zero_point"]) == want
    assert info["op_histogram"].get("CONV_2D/int8") and not [k for k in info["op_histogram"] if k.startswith("CONV_2D/f")]
    x = load_images(SIZE)
    import torch

    with torch.no_grad():
        ref = GraphModule(graph, quantise=True)(x).numpy()
    assert psnr(run_tflite(path, x), ref) >= TOLERANCE_DB["int8"]


def test_cartoongan_end_to_end(tmp_path) -> None:
    """The other architecture through ONNX + TFLite (BGR teacher folded to RGB, CartoonGAN decoder)."""
    import json as _json

    from export.cli import main
    from tests.export.helpers import cli_args, make_tiny_run

    run = make_tiny_run(tmp_path / "cartoon", "cartoongan")
    out = tmp_path / "out"
    assert main(cli_args(run, out, "--format", "onnx,tflite")) == 0
    m = _json.loads((out / "manifest.json").read_text())
    assert {a["name"] for a in m["artifacts"]} == {a.name for a in artifacts() if a.format in ("onnx", "tflite")}
    for a in m["artifacts"]:
        assert a["psnr_vs_reference"] >= TOLERANCE_DB[a["precision"]]
        assert a["macs"] == m[a["role"]]["macs"]
    int8 = next(a for a in m["artifacts"] if a["name"] == "student_int8_tflite")
    assert int8["float_ops"] == 0


def test_missing_recorded_teacher_hint(tmp_path, capsys) -> None:
    from compress.checkpoint import save_student
    from export.cli import main
    from tests.tiny import make_tiny_student

    save_student(tmp_path / "student.pt", make_tiny_student(), teacher={"source": "tiny", "sha256": "", "arch": "cyclegan"},
                 step=0, config={})
    assert main([str(tmp_path), "--format", "onnx", "--size", str(SIZE), "--quiet"]) == 2
    assert "pass --teacher PATH --arch ARCH" in capsys.readouterr().err
