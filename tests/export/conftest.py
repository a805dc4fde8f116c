"""One shared tiny export (all formats, 32x32) for the tests that only read its results."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.export.helpers import TinyRun, cli_args, make_tiny_run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    return make_tiny_run(tmp_path_factory.mktemp("tiny_run"))


@dataclass
class SharedExport:
    run: TinyRun
    out: Path
    app: Path
    manifest: dict


@pytest.fixture(scope="session")
def shared_export(tiny_run: TinyRun, tmp_path_factory: pytest.TempPathFactory) -> SharedExport:
    """`gs-export --format all --android APP` of the tiny student, run once in-process."""
    import json

    from export.cli import main

    root = tmp_path_factory.mktemp("export")
    app = root / "app_project"
    (app / "app" / "src" / "main").mkdir(parents=True)
    out = root / "out"
    assert main(cli_args(tiny_run, out, "--format", "all", "--android", str(app))) == 0
    return SharedExport(tiny_run, out, app, json.loads((out / "manifest.json").read_text()))
