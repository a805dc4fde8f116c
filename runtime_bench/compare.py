"""Baseline vs current bench JSON -> verdict per (model, runtime) and a Markdown report.

Default metric: the student/teacher p50 latency ratio in the same runtime, both measured in the
same run; machine speed and load largely cancel in it. When both runs have interleaved rounds
(runtime_bench.paired), the ratio and its noise band come from those rounds. ``absolute=True`` judges p50 milliseconds.
A row regresses when its metric grew by more than the threshold AND by more than the combined
noise band of the two runs (stats.noise_band). Teacher rows are the reference of the ratio and
are judged only in absolute mode.

Only comparable runs are compared (``check_comparable``, BenchError otherwise): the same input
size, the same thread count, and every (artifact, runtime) of the baseline measured in the current
run too, so that nothing the baseline gates goes unjudged. Artifacts only in the current run (a new
export format) are listed as notes; the artifacts' contents (sha256) may differ: that is what is compared.

Instruction gate: when both runs carry ``instructions_per_inference`` (``gs-bench --instructions``,
counted under callgrind, independent of machine load), every row with a count in both runs is
judged on it against ``instr_threshold`` (default 2 %), teacher rows included, and only those
verdicts decide the exit code; the wall-time verdicts are still computed and reported, as
information. Without counts in both runs the wall-time gate above applies unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .arm import cost_lines
from .errors import BenchError
from .manifest import read_json
from .stats import ratio_noise

BENCH_FORMAT = "gs-mobile/bench"
_ENV_KEYS = ("cpu_model", "machine", "threads", "usable_cores")
INSTR_KEY = "instructions_per_inference"


def load_bench(path: Path) -> dict[str, Any]:
    """Read a gs-bench JSON file; BenchError when it is missing or not a bench result."""
    redo = "re-run gs-bench to write it again"
    doc = read_json(path, "bench result", redo, missing=f"bench result not found: {path}")
    if not isinstance(doc, dict) or doc.get("format") != BENCH_FORMAT or not isinstance(doc.get("results"), list):
        raise BenchError(f"{path} is not a {BENCH_FORMAT} result (a bench.json written by gs-bench)")
    for i, r in enumerate(doc["results"]):
        if not (isinstance(r, dict) and isinstance(r.get("name"), str) and isinstance(r.get("runtime"), str)
                and isinstance(r.get("latency_ms"), dict) and isinstance(r["latency_ms"].get("p50"), (int, float))):
            raise BenchError(f"corrupt bench result {path}: result #{i + 1} lacks name, runtime or "
                             f"latency_ms.p50; {redo}")
    return doc


def parse_threshold(text: str) -> float:
    """'10%' or '0.1' -> 0.1."""
    try:
        t = text.strip()
        v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError as exc:
        raise BenchError(f"bad threshold {text!r} (use e.g. 10% or 0.1)") from exc
    if not (math.isfinite(v) and v > 0):
        raise BenchError(f"threshold must be a positive number, got {text!r} (use e.g. 10% or 0.1)")
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
    base_instr: float | None = None
    cur_instr: float | None = None
    instr_delta: float | None = None
    instr_verdict: str = "n/a"


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    threshold: float = 0.1
    absolute: bool = False
    instr_gate: bool = False
    instr_threshold: float = 0.02
    instr_counter: str = "callgrind"
    cost: list[str] = field(default_factory=list)  # "ARM cost on CORE: Nx fewer instructions ..." lines

    @property
    def regressions(self) -> list[Row]:
        """The rows that fail the gate: on instructions when both runs have them, else on wall time."""
        if self.instr_gate:
            return [r for r in self.rows if r.instr_verdict == "regression"]
        return self.time_regressions

    @property
    def time_regressions(self) -> list[Row]:
        """Rows whose wall-time metric regressed (information only under the instruction gate)."""
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


def interleaved_ratio(doc: dict[str, Any], r: dict[str, Any]) -> dict[str, Any] | None:
    """Stats of ``r``'s ratio to its same-runtime teacher from interleaved rounds (None if not run)."""
    t = _teacher(doc, r["runtime"])
    if t is None or r.get("role") == "teacher":
        return None
    return (r.get("interleaved") or {}).get(f"{t['name']} [{t['runtime']}]")


def metric(doc: dict[str, Any], r: dict[str, Any], absolute: bool,
           interleaved: dict[str, Any] | None = None) -> Metric | None:
    """The figure judged for result ``r`` (None for a teacher row in ratio mode).

    ``interleaved``: ``r``'s interleaved-ratio stats (``interleaved_ratio``), given only when both
    runs have them, so that baseline and current are the same kind of figure.
    """
    if absolute:
        return Metric(_p50(r), _noise(r), "ms")
    if r.get("role") == "teacher":
        return None
    t = _teacher(doc, r["runtime"])
    if t is None:
        return Metric(_p50(r), _noise(r), "ms")  # no teacher in this runtime: absolute fallback
    if interleaved:
        return Metric(float(interleaved["p50"]), float(interleaved["noise"]), "ratio")
    return Metric(_p50(r) / _p50(t), ratio_noise(_noise(r), _noise(t)), "ratio")


def has_instructions(doc: dict[str, Any]) -> bool:
    """Whether any result of a bench document carries an instruction count."""
    return any(r.get(INSTR_KEY) for r in doc["results"])


def _verdict(delta: float, threshold: float) -> str:
    if abs(delta) <= threshold:
        return "ok"
    return "regression" if delta > 0 else "improved"


def _judge_instructions(row: Row, b: dict[str, Any], c: dict[str, Any], threshold: float) -> str | None:
    """Set the instruction verdict of ``row``; return a note when the row cannot be judged fairly."""
    label = f"{row.name} [{row.runtime}]"
    if not b.get(INSTR_KEY) or not c.get(INSTR_KEY):
        return f"{label}: no instruction count in both runs; not gated"
    row.base_instr, row.cur_instr = float(b[INSTR_KEY]), float(c[INSTR_KEY])
    row.instr_delta = row.cur_instr / row.base_instr - 1.0
    bm, cm = b.get("instructions") or {}, c.get("instructions") or {}
    if bm.get("host_isa") != cm.get("host_isa"):  # callgrind follows the host's vector ISA
        row.instr_verdict = "n/a"
        return (f"{label}: x86 instructions counted on another ISA ({bm.get('host_isa')!r} in the baseline, "
                f"{cm.get('host_isa')!r} here); not gated (the aarch64 count under qemu is host-independent)")
    row.instr_verdict = _verdict(row.instr_delta, threshold)
    diffs = [f"{k}: {bm.get(k)!r} -> {cm.get(k)!r}" for k in ("valgrind", "counter", "core", "threads")
             if bm.get(k) != cm.get(k)]
    bv, cv = (b.get("runtime_info") or {}).get("version"), (c.get("runtime_info") or {}).get("version")
    if bv != cv:
        diffs.append(f"{row.runtime} version: {bv!r} -> {cv!r}")
    return f"{label}: instructions counted differently ({'; '.join(diffs)})" if diffs else None


def _setting(doc: dict[str, Any], key: str) -> Any:
    """A bench setting (``settings``, else ``environment`` for threads); None when the run does not say."""
    value = (doc.get("settings") or {}).get(key)
    if value is None and key == "threads":
        value = (doc.get("environment") or {}).get("threads")
    return value


def _size_text(size: Any) -> str:
    return "x".join(str(v) for v in size) if isinstance(size, list) else repr(size)


def check_comparable(base: dict[str, Any], cur: dict[str, Any]) -> None:
    """BenchError (one line: what differs, what to do) unless the two runs measured the same thing."""
    problems = []
    bs, cs = _setting(base, "image_size"), _setting(cur, "image_size")
    if bs is not None and cs is not None and bs != cs:
        problems.append(f"image size {_size_text(bs)} in the baseline, {_size_text(cs)} in the current run "
                        f"(bench an export made with gs-export --size {bs[0] if isinstance(bs, list) else bs})")
    bt, ct = _setting(base, "threads"), _setting(cur, "threads")
    if bt is not None and ct is not None and bt != ct:
        problems.append(f"{bt} threads in the baseline, {ct} in the current run (re-run the bench with --threads {bt})")
    missing = sorted(set(_index(base)) - set(_index(cur)))
    if missing:
        listed = ", ".join(f"{n} [{rt}]" for n, rt in missing[:4]) + (" ..." if len(missing) > 4 else "")
        runtime = _setting(base, "runtime")
        problems.append(f"the current run lacks {listed} (re-run the bench on an export with the baseline's "
                        f"formats{f' and --runtime {runtime}' if runtime else ''})")
    if problems:
        raise BenchError("the runs are not comparable: " + "; ".join(problems))


def compare(base: dict[str, Any], cur: dict[str, Any], threshold: float = 0.1, absolute: bool = False,
            instructions: bool = True, instr_threshold: float = 0.02) -> Comparison:
    """Judge every (model, runtime) of the baseline in the current run (on instructions too when both have counts).

    BenchError when the runs are not comparable (``check_comparable``).
    """
    check_comparable(base, cur)
    out = Comparison(threshold=threshold, absolute=absolute, instr_threshold=instr_threshold,
                     instr_gate=instructions and has_instructions(base) and has_instructions(cur))
    bi, ci = _index(base), _index(cur)
    out.cost = cost_lines(cur["results"])
    counters = {(r.get("instructions") or {}).get("counter") for r in cur["results"]} - {None}
    if counters:
        out.instr_counter = ", ".join(sorted(counters))
    for key in sorted(set(bi) | set(ci)):
        b, c = bi.get(key), ci.get(key)
        if b is None or c is None:
            out.notes.append(f"{key[0]} [{key[1]}] only in the current run; not judged")
            continue
        row = Row(name=key[0], runtime=key[1], role=c.get("role", "student"), base_ms=_p50(b), cur_ms=_p50(c))
        out.rows.append(row)
        sb, sc = interleaved_ratio(base, b), interleaved_ratio(cur, c)
        paired = sb is not None and sc is not None
        mb, mc = metric(base, b, absolute, sb if paired else None), metric(cur, c, absolute, sc if paired else None)
        if mb is None or mc is None:
            row.verdict = "reference"
        elif mb.kind != mc.kind:
            row.verdict = "n/a"
            out.notes.append(f"{key[0]} [{key[1]}]: teacher present in only one run; not judged")
        else:
            if mc.kind == "ratio":
                row.base_ratio, row.cur_ratio = mb.value, mc.value
            row.judged = "interleaved ratio" if paired and mc.kind == "ratio" else mc.kind
            row.delta = mc.value / mb.value - 1.0
            row.noise = mb.noise + mc.noise
            beyond = abs(row.delta) > threshold and abs(row.delta) > row.noise
            row.verdict = ("regression" if row.delta > 0 else "improved") if beyond else "ok"
            if mc.kind == "ms" and not absolute:
                out.notes.append(f"{key[0]} [{key[1]}]: no teacher in this runtime, judged in absolute ms")
        if out.instr_gate and (note := _judge_instructions(row, b, c, instr_threshold)):
            out.notes.append(note)
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


def _count(v: float) -> str:
    """1,234,567: instruction counts with thousands separators."""
    return f"{v:,.0f}"


def _cell(cur: float | None, base: float | None, unit: str, threshold: float,
          fmt: Callable[[float], str] = _num) -> str:
    if cur is None or base is None:
        return "-"
    delta = cur / base - 1.0 if base else None
    d = f", {delta:+.1%}" if delta is not None else ""
    return f"{fmt(cur)}{unit} (vs {fmt(base)}{d}){_arrow(delta, threshold)}"


_BADGE = {"regression": "❌ regression", "improved": "✅ faster", "ok": "ok", "reference": "reference",
          "n/a": "n/a"}
_INSTR_BADGE = {**_BADGE, "improved": "✅ fewer"}
_INFO_BADGE = {**_BADGE, "regression": "⚠️ slower (info)"}


def _summary(cmp: Comparison) -> list[str]:
    """The verdict line(s) at the top of the report: what was gated and on which metric."""
    verdict = (f"**{len(cmp.regressions)} regression(s)**" if cmp.regressions else "**no regression**")
    mode = "absolute p50 latency" if cmp.absolute else "student/teacher p50 ratio within each run"
    if not cmp.instr_gate:
        return [f"{verdict} (judged on {mode}; threshold {cmp.threshold:.0%} and beyond the noise band of both runs)."]
    return [f"{verdict} (judged on instructions per inference under {cmp.instr_counter}; "
            f"threshold {cmp.instr_threshold:.0%}).",
            f"The wall-time tables are information only ({len(cmp.time_regressions)} row(s) beyond "
            f"{cmp.threshold:.0%} on {mode}); they do not affect the exit code."]


def _instruction_table(cmp: Comparison) -> list[str]:
    """The gated table: instructions per inference per (model, runtime)."""
    lines = ["## Instructions per inference (gate)", "", "| model | runtime | instructions / inference | verdict |",
             "|---|---|---|---|"]
    for r in cmp.rows:
        lines.append(f"| {r.name} | {r.runtime} | "
                     f"{_cell(r.cur_instr, r.base_instr, '', cmp.instr_threshold, _count)} | {_INSTR_BADGE[r.instr_verdict]} |")
    return lines + [""]


def to_markdown(cmp: Comparison, base_label: str = "baseline", cur_label: str = "current") -> str:
    """Markdown report: one table per runtime, a row per model, cells like ``12.4 ms (vs 11.9, +4.2%) ↑``.

    Under the instruction gate a table of instructions per inference comes first and the
    wall-time tables are labelled as information.
    """
    lines = [f"# gs-bench: {cur_label} vs {base_label}", "", *_summary(cmp),
             "↑ slower, ↓ faster, → within a quarter of the threshold.", "",
             *(f"- {line}" for line in cmp.cost), *([""] if cmp.cost else [])]
    if cmp.instr_gate:
        lines += _instruction_table(cmp)
    info = " (wall time, information only)" if cmp.instr_gate else ""
    for runtime in sorted({r.runtime for r in cmp.rows}):
        lines += [f"## {runtime}{info}", "", "| model | p50 latency | student/teacher | noise band | verdict |",
                  "|---|---|---|---|---|"]
        for r in (r for r in cmp.rows if r.runtime == runtime):
            noise = "-" if r.noise is None else f"±{r.noise:.1%}"
            lines.append(f"| {r.name} | {_cell(r.cur_ms, r.base_ms, ' ms', cmp.threshold)} | "
                         f"{_cell(r.cur_ratio, r.base_ratio, '', cmp.threshold)} | {noise} | "
                         f"{(_INFO_BADGE if cmp.instr_gate else _BADGE)[r.verdict]}{' (' + r.judged + ')' if r.judged != '-' else ''} |")
        lines.append("")
    if cmp.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in cmp.notes] + [""]
    return "\n".join(lines)
