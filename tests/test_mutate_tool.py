"""portal/mutate.py trusts a run's kills only where they repeat alone: a sample of killed mutants is run again with
one child, and a kill that does not repeat makes the run invalid (side-by-side workers once shared a test database
and every mutant of a module read as killed)."""

from __future__ import annotations

from portal.mutate import RECHECKED_KILLS, kills_not_repeated

KILLED = [f"m.x_f__mutmut_{n}" for n in range(1, 21)]


def test_kills_that_repeat_alone_stand():
    asked: list[list[str]] = []

    def run_alone(names: list[str]) -> dict[str, str]:
        asked.append(names)
        return dict.fromkeys(names, "killed")

    assert kills_not_repeated(KILLED, run_alone) == []
    assert len(asked) == 1 and len(asked[0]) == RECHECKED_KILLS and set(asked[0]) <= set(KILLED)


def test_a_kill_that_survives_alone_is_named():
    def run_alone(names: list[str]) -> dict[str, str]:
        return {name: "survived" if name == names[0] else "killed" for name in names}

    assert len(kills_not_repeated(KILLED, run_alone)) == 1


def test_every_kill_that_did_not_repeat_is_named_and_a_timeout_counts_as_a_kill():
    def run_alone(names: list[str]) -> dict[str, str]:
        return {names[0]: "timeout"}  # the others: no result recorded

    assert len(kills_not_repeated(KILLED, run_alone)) == RECHECKED_KILLS - 1


def test_a_run_with_fewer_kills_than_the_sample_rechecks_them_all():
    not_repeated = kills_not_repeated(KILLED[:2], lambda names: dict.fromkeys(names, "survived"))
    assert sorted(not_repeated) == KILLED[:2]
    assert kills_not_repeated([], lambda names: {}) == []
