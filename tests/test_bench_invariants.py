"""A bench's promises fail the bench and CI's smoke run: bench/invariants.py reads them, bench/smoke.py checks them
again from the printed line whatever the bench's exit code says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import smoke
from bench.invariants import broken, parse_figures

LINE = "events=30 sent=30 delivered=29 duplicates=1 messages_per_s=140.2 rate_limit=150"


def test_a_kept_promise_is_not_reported():
    assert broken(["sent == events", "messages_per_s >= 0.9 * rate_limit"], parse_figures(LINE)) == []


def test_a_broken_promise_is_named_with_the_figures_it_read():
    assert broken(["delivered == events", "duplicates == 0"], parse_figures(LINE)) == [
        "delivered == events  (delivered=29 events=30)",
        "duplicates == 0  (duplicates=1)",
    ]


def test_a_figure_the_line_lacks_breaks_the_promise_instead_of_passing_it():
    assert broken(["lost == 0"], parse_figures(LINE)) == ["lost == 0  (no figure lost)"]


def test_a_size_guard_keeps_pace_promises_for_runs_long_enough_to_reach_them():
    slow = parse_figures("events=30 messages_per_s=12 rate_limit=150")
    assert broken(["events < 1000 or messages_per_s >= 0.9 * rate_limit"], slow) == []
    assert broken(["events < 10 or messages_per_s >= 0.9 * rate_limit"], slow) != []


def test_an_invariant_is_data_not_code():
    with pytest.raises(ValueError, match="not allowed"):
        broken(["__import__('os').getpid() > 0"], {})


def test_smoke_fails_a_bench_that_exits_0_with_a_broken_promise(tmp_path: Path):
    script = tmp_path / "lying_bench.py"
    script.write_text('INVARIANTS = ["lost == 0"]\nprint("sent=9 lost=1")\n')
    run = smoke.Run(script, [], None)
    result = subprocess.CompletedProcess([], 0, "sent=9 lost=1\n", "")
    assert smoke.problems(result, run, pid=0) == ["invariant broken: lost == 0  (lost=1)"]


def test_every_bench_declares_its_promises():
    for script in smoke.benches():
        assert smoke.invariants(script), script
