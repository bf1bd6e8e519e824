"""Interleaved measurement: the shared helper of the benchmarks.

On a shared machine one run of A followed by one run of B measures the
machine as much as A and B: a neighbour's burst, a frequency change or a
cache evicted by the other side lands on one side only, and single runs
swing by 2x. So nothing here runs one side once. Every comparison
alternates its operations in short rounds (at least 20), each round timing
every operation for about the same short time, in an order that rotates
from round to round (so that no operation always follows the same one), and
reports medians over the rounds: a disturbance spoils a round or two, not
the figure. A ratio is computed *within* each round (both sides measured
moments apart) and its median and spread over the rounds are printed.

Time is this thread's CPU time by default (``time.thread_time``): while a
neighbour holds the core, the operation is not charged for the wait. What a
neighbour still costs (caches, memory bandwidth, frequency) is shared by
both sides of a round. ``Settings(clock="wall")`` measures wall time.

Use it from a bench script (the scripts of ``bench/`` import it as a sibling
module)::

    from interleaved import compare, measure

    result = compare("decode", decode_once, "raw verify", verify_once)
    print(result.line())        # median ratio, its spread, both medians
    costs = measure({"stage 1": stage_one, "stage 2": stage_two})

Figures only: nothing in the test suite asserts a time. ``--tiny`` runs of
the bench scripts (:func:`Settings.tiny`) prove that they run.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Comparison", "Sample", "Settings", "compare", "measure"]


@dataclass(frozen=True, slots=True)
class Settings:
    """How long and how often to measure.

    Attributes:
        rounds: rounds over all operations (at least 20 for a figure worth printing).
        seconds_per_turn: how long each operation runs in each round.
        warmup_rounds: rounds run first and thrown away (caches, lazy imports).
        clock: ``cpu`` (this thread's CPU time) or ``wall``.
    """

    rounds: int = 41
    seconds_per_turn: float = 0.005
    warmup_rounds: int = 2
    clock: Literal["cpu", "wall"] = "cpu"

    @classmethod
    def tiny(cls) -> Settings:
        """A run that only proves the script works (figures meaningless)."""
        return cls(rounds=3, seconds_per_turn=0.0005, warmup_rounds=0)

    def timer(self) -> Callable[[], float]:
        """The clock: this thread's CPU time, or wall time."""
        return time.thread_time if self.clock == "cpu" else time.perf_counter


DEFAULT: Settings = Settings()


@dataclass(frozen=True, slots=True)
class Sample:
    """Seconds per call of one operation, one value per round."""

    name: str
    per_round: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median seconds per call over the rounds."""
        return statistics.median(self.per_round)

    @property
    def quartiles(self) -> tuple[float, float]:
        """First and third quartile of seconds per call over the rounds."""
        return _quartiles(self.per_round)

    def micros(self) -> str:
        """``median µs (p25-p75)``."""
        low, high = self.quartiles
        return f"{1e6 * self.median:8.1f} µs ({1e6 * low:.1f}-{1e6 * high:.1f})"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Subject against baseline, measured in the same rounds.

    ``ratios`` are per round: the subject's rate over the baseline's rate
    (baseline seconds per call / subject seconds per call), so 1.0 means the
    subject is as fast as the baseline and 0.5 means it takes twice as long.
    """

    subject: Sample
    baseline: Sample
    ratios: tuple[float, ...]

    @property
    def ratio(self) -> float:
        """Median of the per-round ratios."""
        return statistics.median(self.ratios)

    @property
    def spread(self) -> tuple[float, float]:
        """First and third quartile of the per-round ratios."""
        return _quartiles(self.ratios)

    def line(self) -> str:
        """One line: the median ratio, its spread and the medians of both sides."""
        low, high = self.spread
        return (
            f"{self.subject.name} / {self.baseline.name}: ratio {self.ratio:.3f} "
            f"(p25-p75 {low:.3f}-{high:.3f}, min-max {min(self.ratios):.3f}-"
            f"{max(self.ratios):.3f}, {len(self.ratios)} rounds); medians "
            f"{1e6 * self.subject.median:.1f} µs and {1e6 * self.baseline.median:.1f} µs"
        )


def _quartiles(values: tuple[float, ...]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0])
    cuts = statistics.quantiles(values, n=4, method="inclusive")
    return (cuts[0], cuts[2])


def _calls_for(operation: Callable[[], Any], seconds: float, clock: Callable[[], float]) -> int:
    """How many calls of ``operation`` take about ``seconds`` (at least 1)."""
    calls = 1
    while True:
        start = clock()
        for _ in range(calls):
            operation()
        elapsed = clock() - start
        if elapsed >= seconds / 4 or calls >= 1 << 20:
            return max(1, round(calls * seconds / max(elapsed, 1e-9)))
        calls *= 4


def _turn(operation: Callable[[], Any], calls: int, clock: Callable[[], float]) -> float:
    """Seconds per call over ``calls`` calls."""
    start = clock()
    for _ in range(calls):
        operation()
    return (clock() - start) / calls


def measure(
    operations: Mapping[str, Callable[[], Any]], settings: Settings = DEFAULT
) -> dict[str, Sample]:
    """Seconds per call of each operation, the operations interleaved round by round.

    In every round each operation runs for about ``settings.seconds_per_turn``;
    the order of the operations rotates by one from round to round. The
    garbage collector stays on (it is part of what a message costs), and a
    full collection before each round keeps one round's garbage from being
    charged to the next.
    """
    names = list(operations)
    if not names:
        return {}
    clock = settings.timer()
    calls = {name: _calls_for(operations[name], settings.seconds_per_turn, clock) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(settings.warmup_rounds + settings.rounds):
        gc.collect()
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = _turn(operations[name], calls[name], clock)
            if round_index >= settings.warmup_rounds:
                times[name].append(seconds)
    return {name: Sample(name, tuple(times[name])) for name in names}


def compare(
    subject_name: str,
    subject: Callable[[], Any],
    baseline_name: str,
    baseline: Callable[[], Any],
    settings: Settings = DEFAULT,
) -> Comparison:
    """``subject`` against ``baseline``, interleaved (see :func:`measure`).

    Each round runs both (in alternating order), and the ratio of that
    round is taken from the two turns moments apart.
    """
    samples = measure({subject_name: subject, baseline_name: baseline}, settings)
    subject_sample, baseline_sample = samples[subject_name], samples[baseline_name]
    ratios = tuple(
        base / sub
        for sub, base in zip(subject_sample.per_round, baseline_sample.per_round, strict=True)
    )
    return Comparison(subject_sample, baseline_sample, ratios)
