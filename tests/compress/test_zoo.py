"""Generator zoo: original key layouts load back exactly; bad checkpoints fail with one clear line."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compress.errors import CheckpointError
from compress.macs import count_module_macs, count_params
from compress.zoo import create_generator, load_generator

from tests.tiny import make_tiny_teacher


@pytest.mark.parametrize("arch", ["cyclegan", "cartoongan"])
def test_roundtrip_original_layout(arch: str, tmp_path: Path) -> None:
    gen = make_tiny_teacher(arch, seed=3)
    path = tmp_path / "g.pth"
    torch.save(gen.state_dict(), path)
    loaded = load_generator(arch, path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), gen.eval()(x))
    for k, v in gen.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_cyclegan_accepts_block_key_variant(tmp_path: Path) -> None:
    gen = make_tiny_teacher("cyclegan")
    state = {k.replace(".conv_block.", ".block."): v for k, v in gen.state_dict().items()}
    torch.save(state, tmp_path / "g.pth")
    assert any(".block." in k for k in state)
    loaded = load_generator("cyclegan", tmp_path / "g.pth")
    assert torch.equal(loaded.state_dict()["model.10.conv_block.1.weight"], state["model.10.block.1.weight"])


def test_full_size_shapes_match_the_references() -> None:
    cyc, cg = create_generator("cyclegan"), create_generator("cartoongan")
    assert count_params(cyc) == 11_388_675  # vintagify / CycleGAN 9 blocks ngf 64
    assert abs(count_params(cg) - 11.1e6) < 0.1e6
    assert abs(count_module_macs(cyc, 256, 256) / 2 ** 30 - 52.90) < 0.01  # the paper's 52.90G


def test_wrong_architecture_is_one_clear_line(tmp_path: Path) -> None:
    torch.save(make_tiny_teacher("cartoongan").state_dict(), tmp_path / "cg.pth")
    with pytest.raises(CheckpointError) as err:
        load_generator("cyclegan", tmp_path / "cg.pth")
    assert "does not fit a cyclegan generator" in str(err.value) and "\n" not in str(err.value)


def test_shape_mismatch_and_missing_keys(tmp_path: Path) -> None:
    state = make_tiny_teacher("cyclegan").state_dict()
    state["model.4.weight"] = torch.zeros(16, 8, 5, 5)
    del state[list(state)[-1]]
    torch.save(state, tmp_path / "g.pth")
    with pytest.raises(CheckpointError, match="missing keys.*shape mismatches"):
        load_generator("cyclegan", tmp_path / "g.pth")


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="bad.pth is not a plain weights file"):
        load_generator("cyclegan", bad)
    torch.save(make_tiny_teacher("cyclegan").state_dict(), bad)
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot read teacher checkpoint .*truncated"):
        load_generator("cyclegan", bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_generator("cyclegan", tmp_path / "nope.pth")
