"""gs-bench reads EXPORT_DIR (artifacts + manifest.json) only: no runtime_bench module imports compress or export."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "runtime_bench"
OTHER_STAGES = ("compress", "export", "pipeline")


def stage_imports(path: Path) -> set[str]:
    """Modules of other stages that ``path`` imports (at any depth: lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        found |= {n for n in names if n.split(".")[0] in OTHER_STAGES}
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_runtime_bench_imports_no_other_stage(path: Path) -> None:
    assert stage_imports(path) == set()


def test_the_scan_sees_lazy_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("import numpy\ndef f():\n    from compress.evaluate import psnr\n    import export.cli as c\n")
    assert stage_imports(src) == {"compress.evaluate", "export.cli"}
