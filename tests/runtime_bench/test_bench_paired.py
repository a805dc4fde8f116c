"""Interleaved rounds (runtime_bench.paired): repetitions, order, and why they make ratios robust."""
from __future__ import annotations

import numpy as np
import pytest

from runtime_bench.paired import interleaved_rounds, ratio_stats, reps_for, round_order


def test_reps_fill_a_round_but_stay_bounded() -> None:
    assert reps_for(10.0) == 10 and reps_for(25.0) == 4 and reps_for(600.0) == 1
    assert reps_for(0.01) == 10 and reps_for(0.0) == 10


def test_round_order_is_serpentine() -> None:
    assert round_order(["t", "a", "b"], 0) == ["t", "a", "b"]
    assert round_order(["t", "a", "b"], 1) == ["b", "a", "t"]


class DriftingMachine:
    """A machine whose speed changes every round (2x swings, as measured on the shared VM)."""

    def __init__(self, slowdowns: list[float]) -> None:
        self.slowdowns, self.calls, self.round = slowdowns, [], 0

    def artifact(self, label: str, cost_ms: float):  # noqa: ANN201 - a timed-invoke callable
        def invoke() -> float:
            self.calls.append(label)
            return cost_ms * self.slowdowns[self.round]
        return invoke


def test_interleaved_ratio_cancels_a_drifting_machine() -> None:
    slowdowns = [1.0, 2.0, 1.1, 1.9, 1.0, 2.1, 1.5]
    machine = DriftingMachine(slowdowns)
    invoke = {"teacher": machine.artifact("teacher", 600.0), "student": machine.artifact("student", 12.0)}
    medians = interleaved_rounds(invoke, {"teacher": 1, "student": 8}, len(slowdowns),
                                 progress=lambda r: setattr(machine, "round", min(r, len(slowdowns) - 1)))
    assert machine.calls[:9] == ["teacher"] + ["student"] * 8 and machine.calls[9:17] == ["student"] * 8
    stats = ratio_stats(medians["student"], medians["teacher"])
    assert stats["p50"] == pytest.approx(0.02) and stats["min"] == pytest.approx(stats["max"])
    assert stats["noise"] == pytest.approx(0.0) and stats["rounds"] == len(slowdowns)
    # what measuring one artifact after the other would report when the machine changed in between
    sequential = np.median(medians["student"][:3]) / np.median(medians["teacher"][3:])
    assert abs(sequential / 0.02 - 1) > 0.05


def test_ratio_stats_noise_grows_with_spread() -> None:
    rng = np.random.default_rng(0)
    teacher = np.full(40, 600.0)
    tight = ratio_stats(12.0 * (1 + 0.01 * rng.standard_normal(40)), teacher)
    loose = ratio_stats(12.0 * (1 + 0.2 * rng.standard_normal(40)), teacher)
    assert tight["p50"] == pytest.approx(0.02, rel=0.01) and tight["noise"] < loose["noise"]
