"""The shared benchmark method: rotation order and per-round ratios."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))

import benchlib  # noqa: E402


class FakeVariant:
    """Returns scripted per-step times and records the order it was run in."""

    def __init__(self, name, times, log):
        self.name, self.times, self.log = name, list(times), log

    def steps(self, count):
        self.log.append(self.name)
        return self.times.pop(0)


def test_rounds_rotate_and_ratios_are_paired_per_round():
    log = []
    # warm-up value first, then three rounds; b is 2x a in every round although
    # the machine "slows down" 10x in round 2, which a ratio of medians would hide.
    a = FakeVariant("a", [9.0, 1.0, 10.0, 1.0], log)
    b = FakeVariant("b", [9.0, 2.0, 20.0, 2.0], log)
    results = benchlib.measure([a, b], rounds=3, steps=5, warmup=1)
    assert log == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert results["a"] == (1.0, 1.0)
    assert results["b"] == (2.0, 2.0)
