"""Baseline vs current bench JSON -> verdict per (model, runtime) and a Markdown report.

Default metric: the student/teacher p50 latency ratio in the same runtime, both measured in the
same run; machine speed and load largely cancel in it. ``absolute=True`` judges p50 milliseconds.
A row regresses when its metric grew by more than the threshold AND by more than the combined
noise band of the two runs (stats.noise_band). Teacher rows are the reference of the ratio and
are judged only in absolute mode.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BenchError
from .stats import ratio_noise

BENCH_FORMAT = "gs-mobile/bench"
_ENV_KEYS = ("cpu_model", "machine", "threads", "usable_cores")


def load_bench(path: Path) -> dict[str, Any]:
    """Read a gs-bench JSON file; BenchError when it is missing or not a bench result."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise BenchError(f"bench result not found: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"corrupt bench result {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != BENCH_FORMAT or not isinstance(doc.get("results"), list):
        raise BenchError(f"{path} is not a {BENCH_FORMAT} result")
    return doc


def parse_threshold(text: str) -> float:
    """'10%' or '0.1' -> 0.1."""
    try:
        t = text.strip()
        v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError as exc:
        raise BenchError(f"bad threshold {text!r} (use e.g. 10% or 0.1)") from exc
    if v <= 0:
        raise BenchError(f"threshold must be positive, got {text!r}")
    return v


@dataclass
class Metric:
    """One measured figure of a row in one run."""

    value: float
    noise: float
    kind: str  # "ratio" or "ms"


@dataclass
class Row:
    """One (model, runtime) line of the comparison."""

    name: str
    runtime: str
    role: str
    base_ms: float | None
    cur_ms: float | None
    base_ratio: float | None = None
    cur_ratio: float | None = None
    judged: str = "-"
    delta: float | None = None
    noise: float | None = None
    verdict: str = "ok"


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    threshold: float = 0.1
    absolute: bool = False

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "regression"]


def _index(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["name"], r["runtime"]): r for r in doc["results"]}


def _teacher(doc: dict[str, Any], runtime: str) -> dict[str, Any] | None:
    teachers = [r for r in doc["results"] if r.get("role") == "teacher" and r["runtime"] == runtime]
    teachers.sort(key=lambda r: r.get("precision") != "fp32")
    return teachers[0] if teachers else None


def _p50(r: dict[str, Any]) -> float:
    return float(r["latency_ms"]["p50"])


def _noise(r: dict[str, Any]) -> float:
    n = r["latency_ms"].get("noise")
    return float(n) if n is not None else 0.0


def metric(doc: dict[str, Any], r: dict[str, Any], absolute: bool) -> Metric | None:
    """The figure judged for result ``r`` (None for a teacher row in ratio mode)."""
    if absolute:
        return Metric(_p50(r), _noise(r), "ms")
    if r.get("role") == "teacher":
        return None
    t = _teacher(doc, r["runtime"])
    if t is None:
        return Metric(_p50(r), _noise(r), "ms")  # no teacher in this runtime: absolute fallback
    return Metric(_p50(r) / _p50(t), ratio_noise(_noise(r), _noise(t)), "ratio")


def compare(base: dict[str, Any], cur: dict[str, Any], threshold: float = 0.1, absolute: bool = False) -> Comparison:
    """Judge every (model, runtime) present in both runs."""
    out = Comparison(threshold=threshold, absolute=absolute)
    bi, ci = _index(base), _index(cur)
    for key in sorted(set(bi) | set(ci)):
        b, c = bi.get(key), ci.get(key)
        if b is None or c is None:
            out.notes.append(f"{key[0]} [{key[1]}] only in the {'current' if b is None else 'baseline'} run")
            continue
        row = Row(name=key[0], runtime=key[1], role=c.get("role", "student"), base_ms=_p50(b), cur_ms=_p50(c))
        out.rows.append(row)
        mb, mc = metric(base, b, absolute), metric(cur, c, absolute)
        if mb is None or mc is None:
            row.verdict = "reference"
        elif mb.kind != mc.kind:
            row.verdict = "n/a"
            out.notes.append(f"{key[0]} [{key[1]}]: teacher present in only one run; not judged")
        else:
            if mc.kind == "ratio":
                row.base_ratio, row.cur_ratio = mb.value, mc.value
            row.judged = mc.kind
            row.delta = mc.value / mb.value - 1.0
            row.noise = mb.noise + mc.noise
            beyond = abs(row.delta) > threshold and abs(row.delta) > row.noise
            row.verdict = ("regression" if row.delta > 0 else "improved") if beyond else "ok"
            if mc.kind == "ms" and not absolute:
                out.notes.append(f"{key[0]} [{key[1]}]: no teacher in this runtime, judged in absolute ms")
    be, ce = base.get("environment", {}), cur.get("environment", {})
    diffs = [f"{k}: {be.get(k)!r} -> {ce.get(k)!r}" for k in _ENV_KEYS if be.get(k) != ce.get(k)]
    if diffs:
        out.notes.append("environments differ (" + "; ".join(diffs) + ")" +
                         ("; absolute milliseconds are not comparable" if absolute else ""))
    return out


def _arrow(delta: float | None, threshold: float) -> str:
    if delta is None:
        return ""
    if abs(delta) < threshold / 4:
        return " →"
    return " ↑" if delta > 0 else " ↓"


def _num(v: float) -> str:
    """12.4, 686.0, 0.0512: one decimal from 10 up, three significant digits below."""
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"


def _cell(cur: float | None, base: float | None, unit: str, threshold: float) -> str:
    if cur is None or base is None:
        return "-"
    delta = cur / base - 1.0 if base else None
    d = f", {delta:+.1%}" if delta is not None else ""
    return f"{_num(cur)}{unit} (vs {_num(base)}{d}){_arrow(delta, threshold)}"


_BADGE = {"regression": "❌ regression", "improved": "✅ faster", "ok": "ok", "reference": "reference",
          "n/a": "n/a"}


def to_markdown(cmp: Comparison, base_label: str = "baseline", cur_label: str = "current") -> str:
    """Markdown report: one table per runtime, a row per model, cells like ``12.4 ms (vs 11.9, +4.2%) ↑``."""
    mode = "absolute p50 latency" if cmp.absolute else "student/teacher p50 ratio within each run"
    verdict = (f"**{len(cmp.regressions)} regression(s)**" if cmp.regressions else "**no regression**")
    lines = [f"# gs-bench: {cur_label} vs {base_label}", "",
             f"{verdict} (judged on {mode}; threshold {cmp.threshold:.0%} and beyond the noise band of both runs).",
             "↑ slower, ↓ faster, → within a quarter of the threshold.", ""]
    for runtime in sorted({r.runtime for r in cmp.rows}):
        lines += [f"## {runtime}", "", "| model | p50 latency | student/teacher | noise band | verdict |",
                  "|---|---|---|---|---|"]
        for r in (r for r in cmp.rows if r.runtime == runtime):
            noise = "-" if r.noise is None else f"±{r.noise:.1%}"
            lines.append(f"| {r.name} | {_cell(r.cur_ms, r.base_ms, ' ms', cmp.threshold)} | "
                         f"{_cell(r.cur_ratio, r.base_ratio, '', cmp.threshold)} | {noise} | "
                         f"{_BADGE[r.verdict]}{' (' + r.judged + ')' if r.judged != '-' else ''} |")
        lines.append("")
    if cmp.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in cmp.notes] + [""]
    return "\n".join(lines)
