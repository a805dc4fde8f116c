"""A per-image-normalised student (--norm image) exports to every format, INT8 end to end, XNNPACK whole."""
from __future__ import annotations

import json

import pytest
import torch

from compress.checkpoint import load_student
from compress.quant import set_quantisation
from export.artifact_info import tflite_interpreter
from export.errors import ExportError
from export.formats import artifacts
from export.graph import GraphModule
from export.slim import slim_graph
from export.tflite_build import convert_tflite
from export.validate import TOLERANCE_DB
from tests.export.helpers import SIZE, cli_args, make_tiny_run
from tests.tiny import make_tiny_student


@pytest.mark.parametrize("arch", ["cyclegan", "cartoongan"])
def test_slim_graph_computes_the_student(arch: str) -> None:
    student = make_tiny_student(arch, norm="image")
    graph = slim_graph(student)
    assert graph.params() == student.slim_params()
    assert sum(l.standardise is not None for l in graph.layers()) == sum(u.norm for u in student.gen_spec.units())
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(GraphModule(graph, quantise=True)(x), student(x))  # same grids, same ops
        set_quantisation(student, False)
        assert (GraphModule(graph)(x) - student(x)).abs().max().item() < 1e-4


def _delegate_partitions(tflite: bytes) -> tuple[int, set[str]]:
    """(XNNPACK partitions after allocation, op names) of a converted model."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(tflite)
        interpreter = tflite_interpreter(path)
        ops = {op["op_name"] for op in interpreter._get_ops_details()}
        interpreter.allocate_tensors()
        return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details()), ops


def test_int8_tflite_adds_no_undelegated_op() -> None:
    """The per-image norm uses no RSQRT and splits no XNNPACK partition beyond the fixed-norm student's."""
    image, image_ops = _delegate_partitions(convert_tflite(slim_graph(make_tiny_student(norm="image")), SIZE, True))
    fixed, _ = _delegate_partitions(convert_tflite(slim_graph(make_tiny_student()), SIZE, True))
    assert {"MEAN", "SUB", "MUL", "RESHAPE", "DEPTHWISE_CONV_2D"} <= image_ops
    assert not image_ops & {"RSQRT", "SQRT", "DIV", "SQUARED_DIFFERENCE"}
    assert image == fixed


@pytest.mark.slow
def test_every_format_validates(tmp_path) -> None:
    run = make_tiny_run(tmp_path / "image", norm="image")
    out = tmp_path / "out"
    from export.cli import main

    assert main(cli_args(run, out)) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert {a["name"] for a in m["artifacts"]} == {a.name for a in artifacts()}
    for a in m["artifacts"]:
        if a["format"] != "coreml":
            assert a["psnr_vs_reference"] >= TOLERANCE_DB[a["precision"]], a["name"]
    assert next(a for a in m["artifacts"] if a["name"] == "student_int8_tflite")["float_ops"] == 0


def test_exact_norm_is_refused(tmp_path) -> None:
    from compress.checkpoint import save_student

    path = tmp_path / "student.pt"
    save_student(path, make_tiny_student(norm="image-exact"), teacher={"source": "tiny", "sha256": "", "arch": "cyclegan"},
                 step=0, config={"image_size": SIZE})
    student, _ = load_student(path)
    with pytest.raises(ExportError, match="--norm image-exact.*--norm image"):
        slim_graph(student)
