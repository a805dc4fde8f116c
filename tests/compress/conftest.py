"""Fixtures shared by the gs-compress tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.compress.helpers import make_setup


@pytest.fixture(scope="module")
def setup_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny teacher and a folder of real photos (see `make_setup`), once per test module."""
    return make_setup(tmp_path_factory.mktemp("gs"))
