"""The scene-curve plot: head_zoom's photo-subset rows grouped into two curves, drawn, bad files refused."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.experiments.scene_curve import curves, main


def rows() -> list[dict]:
    out = [{"subset": "all", "views": 4800, "val": 25.5}, {"subset": "zoom<=2", "views": 2385, "val": 26.1}]
    for draw, (few, spread) in enumerate(((24.0, 23.5), (25.0, 24.5))):
        out += [{"subset": f"photos50_p{draw}", "views": 594 + 3 * draw, "val": few},
                {"subset": f"views_like_photos50_p{draw}", "views": 594 + 3 * draw, "val": spread},
                {"subset": f"photos100_p{draw}", "views": 1194, "val": few + 1}]
    return out


def test_curves_group_the_photo_draws_by_view_count_and_end_with_all() -> None:
    got = curves(rows())
    assert got["photos"] == {596: [24.0, 25.0], 1194: [25.0, 26.0], 4800: [25.5]}
    assert got["views_like_photos"] == {596: [23.5, 24.5], 4800: [25.5]}  # zoom subsets are no part of it


def test_the_plot_is_written_and_a_bad_rows_file_is_one_line(tmp_path: Path, capsys) -> None:
    good = tmp_path / "rows.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in rows()))
    out = tmp_path / "curve.png"
    assert main([str(good), "--names", "trunk", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tmp_path / "bad.jsonl"
    for text in ("not json\n", '{"subset": "all"}\n', "[1, 2]\n"):
        bad.write_text(text)
        with pytest.raises(SystemExit) as exc:
            main([str(bad), "--out", str(tmp_path / "x.png")])
        assert exc.value.code == 2 and "bad.jsonl: not head_zoom's JSON lines" in capsys.readouterr().err
        assert not (tmp_path / "x.png").exists()
