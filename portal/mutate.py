"""Mutation testing of the core rules with mutmut: `make mutate`, or `python -m portal.mutate [module ...]`.

Each module is mutated on its own, in var/mutation/<name>/, against only the tests that exercise its rules (mutmut
then runs, per mutant, just those of them that reach the mutated function), so a module finishes in minutes on two
cores instead of running the whole suite per mutant. mutmut reads its settings from the pyproject.toml of the folder
it runs in and copies the tree into mutants/ there: this script writes that file (the project's own, plus a
[tool.mutmut] section for the module) and links the project's folders in beside it.

Prints one line per module — mutants, killed, survived, and what was neither — then each survivor's name; `mutmut show
NAME` in the module's folder shows its diff. docs/mutation.md lists the survivors that are equivalent, with why; a
survivor missing from that list makes the run exit 1. mutmut runs again every mutant it is named, and keeps the
result of every other: `--resume` runs only the mutants a stopped run did not reach, `--survivors` only the survivors
docs/mutation.md does not explain (to check that new tests kill them).

A kill is trusted only where it repeats alone: after a run, a few of its killed mutants are run again with one child,
and a module whose sampled kills do not all repeat fails the run. Side-by-side workers once shared a test database,
and every mutant of a module read as killed from the errors (docs/mutation.md).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "mutation"
MUTMUT = Path(sys.executable).parent / "mutmut"
EQUIVALENTS = ROOT / "docs" / "mutation.md"
# The limiter shared by processes exists only on a shared cache: its tests need Redis (a database of their own, as
# the tests empty the cache).
SHARED_CACHE_URL = os.environ.get("MUTATE_CACHE_URL", "rediscache://127.0.0.1:6379/13")
# A mutant whose tests fail, or never finish (mutmut stops them at 15 times their normal time), was detected.
DETECTED = frozenset({"killed", "timeout"})
NOT_REACHED = "not checked"  # a run stopped before it tried this mutant
MODES = ("--report", "--resume", "--survivors")
# How many killed mutants of a run are run again alone (one child) to check that its kills are the tests' doing.
RECHECKED_KILLS = 3
# What the tests need beside the mutated packages: templates, the pytest settings, the entry point.
LINKED = ("integrations", "members", "portal", "templates", "tests", "manage.py")


@dataclass(frozen=True)
class Target:
    """A module under mutation, the tests that pin its rules, and (for part of a module) which functions."""

    path: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    # Tests left out of the selection: slow ones (each mutant that reaches them would wait for them) whose rules
    # faster tests pin as well.
    deselect: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def mutant_globs(self) -> list[str]:
        """mutmut's names for the mutants to run: `module.x_function__mutmut_N`, `module.xǁClassǁmethod__mutmut_N`."""
        if not self.functions:
            return [f"{self.name}.*"]
        return [f"{self.name}.x*{function}__mutmut_*" for function in self.functions]


TARGETS = (
    Target("integrations/http.py", ("tests/test_http.py", "tests/test_mutants_http.py")),
    Target(
        "integrations/ratelimit.py",
        ("tests/test_ratelimit.py", "tests/test_mutants_ratelimit.py"),
        env=(("CACHE_URL", SHARED_CACHE_URL),),
    ),
    Target("integrations/first_orion/tokens.py", ("tests/test_first_orion_flows.py", "tests/test_mutants_tokens.py")),
    Target(
        "integrations/bazaarvoice/rewards.py",
        ("tests/test_bazaarvoice_flows.py", "tests/test_mutants_rewards.py"),
        # About the pull's paging, cursor, look-back and "today" (flows.py), not the award: 20 to 57 s each on a
        # loaded machine for the first six, 1 to 3 s for the rest, and every surviving mutant waits for all of them.
        # The AC1002 stop is pinned by the outage test's stop as well.
        deselect=tuple(
            f"tests/test_bazaarvoice_flows.py::{name}"
            for name in (
                "test_a_review_re_moderated_while_the_pages_are_read_skips_no_other_review",
                "test_ac1002_marks_annex_cloud_failing_stops_the_run_and_the_next_run_resumes",
                "test_many_reviews_of_one_second_are_paged_by_offset_within_that_second",
                "test_reruns_and_overlapping_pages_record_and_reward_each_review_once",
                "test_a_run_out_of_time_stops_after_a_page_and_the_next_continues_from_the_cursor",
                "test_pages_are_read_by_keyset_with_the_documented_filters",
                "test_today_is_the_clients_today",
                "test_re_read_from_moves_the_cursor_back_and_awards_only_what_was_never_recorded",
                "test_a_429_stops_the_run_until_the_quota_resets_then_it_resumes",
                "test_no_review_moderated_today_by_either_reading_is_taken",
                "test_a_review_indexed_late_behind_the_cursor_is_found_by_the_look_back_and_awarded_once",
                "test_the_look_back_is_a_connection_setting_and_re_moderation_into_the_past_awards_nothing_twice",
                "test_reviews_moderated_today_are_taken_by_the_first_run_tomorrow",
            )
        ),
    ),
    # The points rule of the Annex Cloud module: adjust_points and the functions it settles a transaction with.
    Target(
        "integrations/annexcloud/flows.py",
        ("tests/test_annexcloud_points_and_segments.py", "tests/test_mutants_points.py"),
        functions=(
            "adjust_points",
            "default_action_id",
            "check_same_adjustment",
            "send_points",
            "refusal",
            "settle",
            "apply_points_answer",
            "applied_summary",
            "whole_number",
        ),
    ),
    Target(
        "integrations/inbound.py",
        (
            "tests/test_vibes_callbacks.py",
            "tests/test_hostile_input.py",
            "tests/test_mutants_inbound.py",
            "tests/test_callbacks_outages.py",
            "tests/test_attentive_webhooks.py",
        ),
    ),
    Target("members/sync.py", ("tests/test_member_convergence.py", "tests/test_vibes_persons.py")),
    # The sent-once rule of the message job: planning each message once, the consent check, and the claim →
    # attempting → settled state machine with its recovery (the rendering and the holding of messages are left out).
    Target(
        "members/messaging.py",
        ("tests/test_messaging.py", "tests/test_messaging_held.py"),
        functions=(
            "plan_messages",
            "plan_message",
            "skip_reason",
            "settle_interrupted_sends",
            "claim_lease",
            "claim_batch",
            "mark_attempting",
            "finish",
            "record_patiently",
            "SendRunǁdeliver",
            "SendRunǁ_send",
            "SendRunǁ_outcome_of",
            "SendRunǁ_stop",
        ),
    ),
)


@dataclass
class Outcome:
    target: Target
    counts: dict[str, int]
    survivors: list[str]
    not_reached: list[str]


def mutmut_section(target: Target) -> str:
    # mutmut forgets every result of a module whose test selection changed: create a module's tests/test_mutants_*.py
    # before its first run, and add to it afterwards.
    tests = [test for test in target.tests if (ROOT / test).exists()]
    deselected = [arg for test in target.deselect for arg in ("--deselect", test)]
    return "\n".join(
        (
            "",
            "[tool.mutmut]",
            'source_paths = ["integrations", "members", "portal"]',
            f"only_mutate = [{json.dumps(target.path)}]",
            'also_copy = ["templates", "manage.py"]',
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
            # Workers fork from a server that never opened the test database: a SQLite handle inherited across a
            # fork fails ("disk I/O error") as soon as two workers use it.
            'process_isolation = "forkserver"',
            # The settings named outright (an inherited DJANGO_SETTINGS_MODULE would win over the ini), and the test
            # database built from the models: each mutant's worker builds its own, and the migrations only move data.
            f"pytest_add_cli_args = {json.dumps(['--ds=portal.test_settings', '--no-migrations', *deselected])}",
            # Each worker sets up Django and its database before the tests mutmut timed: allow for it on a busy machine.
            "timeout_constant = 5.0",
            "",
        )
    )


def prepare(target: Target) -> Path:
    """The module's folder: links to the project's folders and a pyproject.toml with its [tool.mutmut] section."""
    folder = WORK / target.name
    folder.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name)
    (folder / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + mutmut_section(target))
    return folder


def run_target(target: Target, log: Path, mutants: list[str], children: str = "") -> None:
    """One mutmut child at a time unless MUTATE_CHILDREN says more: the machine runs other work beside it."""
    folder = prepare(target)
    env = {**os.environ, **dict(target.env)}
    with log.open("a" if children else "w") as out:
        command = [str(MUTMUT), "run", "--max-children", children or os.environ.get("MUTATE_CHILDREN", "1"), *mutants]
        subprocess.run(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)


def statuses_of(target: Target) -> dict[str, str]:
    """mutmut's last result for each of the target's mutants ("killed", "survived", "not checked", ...)."""
    folder = WORK / target.name
    if not folder.exists():
        return {}
    results = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"], cwd=folder, capture_output=True, text=True, check=False
    ).stdout
    statuses = dict(re.findall(r"^\s+(\S+): (.+)$", results, re.MULTILINE))
    globs = target.mutant_globs()
    return {name: status for name, status in statuses.items() if any(fnmatchcase(name, g) for g in globs)}


def kills_not_repeated(
    killed: list[str], run_alone: Callable[[list[str]], dict[str, str]], count: int = RECHECKED_KILLS
) -> list[str]:
    """A sample of the run's killed mutants, run again alone: those the tests no longer kill (none: the kills
    stand). The sample is drawn afresh each time, so no fixed few can hide a run whose kills are not real."""
    sample = random.sample(sorted(killed), min(count, len(killed)))
    statuses = run_alone(sample)
    return [name for name in sample if statuses.get(name) not in DETECTED]


def recheck_kills(target: Target, killed_before: list[str]) -> list[str]:
    def run_alone(names: list[str]) -> dict[str, str]:
        run_target(target, WORK / f"{target.name}.log", names, children="1")
        return statuses_of(target)

    return kills_not_repeated(killed_before, run_alone)


def outcome_of(target: Target) -> Outcome:
    """What the module's last run found (mutants it has not reached yet count as `not_checked`)."""
    ours = statuses_of(target)
    if not ours:
        return Outcome(target, {"mutants": 0}, [], [])
    counts = {"mutants": len(ours)}
    for status in ours.values():
        counts[status] = counts.get(status, 0) + 1
    survivors = sorted(name for name, status in ours.items() if status not in DETECTED | {NOT_REACHED})
    return Outcome(target, counts, survivors, sorted(name for name, status in ours.items() if status == NOT_REACHED))


def documented_equivalents() -> set[str]:
    """The survivor names docs/mutation.md explains (each in backquotes at the start of a table row)."""
    if not EQUIVALENTS.exists():
        return set()
    return set(re.findall(r"^\| `([^`]+)`", EQUIVALENTS.read_text(), re.MULTILINE))


def report(outcome: Outcome, explained: set[str]) -> bool:
    counts = dict(outcome.counts)
    if not counts["mutants"]:
        print(f"{outcome.target.path}: not run", flush=True)
        return False
    line = f"{outcome.target.path}: mutants={counts.pop('mutants')} killed={counts.pop('killed', 0)}"
    line += f" survived={counts.pop('survived', 0)}"
    line += "".join(f" {status.replace(' ', '_')}={n}" for status, n in sorted(counts.items()))
    print(line, flush=True)
    unexplained = [name for name in outcome.survivors if name not in explained]
    for name in outcome.survivors:
        print(f"    {name}{'' if name in explained else '  (not explained in docs/mutation.md)'}")
    complete = outcome.counts["mutants"] > 0 and NOT_REACHED not in outcome.counts
    return complete and not unexplained


def mutants_to_run(target: Target, explained: set[str], mode: str) -> list[str]:
    if mode == "--survivors":
        return [name for name in outcome_of(target).survivors if name not in explained]
    if mode == "--resume" and (untried := outcome_of(target).not_reached):
        return untried
    return target.mutant_globs()


def main(argv: list[str]) -> int:
    """`--report` prints the last results without running anything (for a run that was stopped part-way)."""
    modes = [arg for arg in argv if arg in MODES]
    mode = modes[-1] if modes else ""
    argv = [arg for arg in argv if arg not in MODES]
    chosen = [t for t in TARGETS if not argv or t.path in argv or t.name in argv]
    if argv and not chosen:
        print(f"No such module; choose from: {', '.join(t.path for t in TARGETS)}", file=sys.stderr)
        return 2
    explained = documented_equivalents()
    all_good = True
    for target in chosen:
        mutants = [] if mode == "--report" else mutants_to_run(target, explained, mode)
        if mutants:
            WORK.mkdir(parents=True, exist_ok=True)
            run_target(target, WORK / f"{target.name}.log", mutants)
            killed = [
                name
                for name, status in statuses_of(target).items()
                if status == "killed" and any(fnmatchcase(name, pattern) for pattern in mutants)
            ]
            if not_repeated := recheck_kills(target, killed):
                print(f"{target.path}: not valid, kills that did not repeat alone: {', '.join(not_repeated)}")
                all_good = False
        all_good &= report(outcome_of(target), explained)
    return 0 if all_good else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
