"""Every bench in bench/ at a tiny size, so that a change that breaks one (a new NOT NULL column, a moved module)
fails CI instead of the next person who measures: on SQLite, and those that take --database-url once more on the
PostgreSQL server given here (each bench creates and drops its own database there).

    .venv/bin/python bench/smoke.py [--postgres-url postgres://postgres@127.0.0.1:5432/postgres]

A bench is any bench/*.py script with a `__main__` block that prints its line with print_result; it declares its
tiny size as SMOKE_ARGS and its promises as INVARIANTS (see bench/invariants.py). A run fails if it exits non-zero,
prints anything but one line of key=value figures on stdout, breaks one of its invariants (checked here again from
that line, whatever the bench's exit code says), or leaves its database behind.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, SQLITE, database_prefix, exit_on_sigterm, libpq_url
from bench.invariants import broken, parse_figures

BENCH_DIR = ROOT / "bench"
RESULT_LINE = re.compile(r"\S+=\S+( \S+=\S+)*")
# Long enough for the fault drill on a loaded 2-core machine (its private PostgreSQL, Redis and five processes start
# first); a bench past it has hung.
TIMEOUT_SECONDS = 300


@dataclass
class Run:
    script: Path
    args: list[str]
    database_url: str | None

    def __str__(self) -> str:
        backend = "" if self.database_url is None else f" on {self.database_url.split(':', 1)[0]}"
        return f"{self.script.relative_to(ROOT)} {' '.join(self.args)}{backend}"


def benches() -> list[Path]:
    return [
        path
        for path in sorted(BENCH_DIR.glob("*.py"))
        if path.name != Path(__file__).name and is_bench(path.read_text())
    ]


def is_bench(source: str) -> bool:
    """A script run as a program that prints its result line; the drill's process wrappers (`drill_celery.py`) are
    programs too, but print no result."""
    return 'if __name__ == "__main__":' in source and "print_result(" in source


def declared(script: Path, name: str, what: str) -> list[str]:
    """A list the script declares at module level (SMOKE_ARGS, INVARIANTS), read without importing it."""
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            values = [str(value) for value in ast.literal_eval(node.value)]
            if values:
                return values
    raise SystemExit(f"{script.relative_to(ROOT)}: declare {name}, {what}")


def smoke_args(script: Path) -> list[str]:
    return declared(script, "SMOKE_ARGS", "the arguments of a run that takes seconds")


def invariants(script: Path) -> list[str]:
    return declared(script, "INVARIANTS", "the promises its result line must keep (bench/invariants.py)")


def takes_database_url(script: Path) -> bool:
    usage = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, cwd=ROOT)
    if usage.returncode != 0:
        raise SystemExit(f"{script.relative_to(ROOT)} --help failed:\n{usage.stderr}")
    return "--database-url" in usage.stdout


def planned_runs(postgres_url: str, only: list[str]) -> list[Run]:
    runs = []
    for script in benches():
        if only and script.stem not in only:
            continue
        args = smoke_args(script)
        invariants(script)  # declared, before anything runs
        if not takes_database_url(script):
            runs.append(Run(script, args, None))
            continue
        runs.append(Run(script, args, SQLITE))
        if postgres_url:
            runs.append(Run(script, args, postgres_url))
    return runs


def execute(run: Run) -> tuple[subprocess.CompletedProcess[str], int]:
    """The bench in its own process group, with its output captured; returns the result and the bench's pid."""
    command = [sys.executable, str(run.script), *run.args]
    if run.database_url is not None:
        command += ["--database-url", run.database_url]
    child = subprocess.Popen(
        command, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = child.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        stdout, stderr = stop(child)
        stderr += f"\nstopped after {TIMEOUT_SECONDS} s"
    except BaseException:  # Ctrl-C or SIGTERM of the smoke run: the bench, in its own group, did not get it
        stop(child)
        raise
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr), child.pid


def stop(child: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM first, so that the bench stops its processes and drops its database; SIGKILL to its whole group if it
    does not end."""
    child.terminate()
    try:
        return child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        return child.communicate()


def problems(result: subprocess.CompletedProcess[str], run: Run, pid: int) -> list[str]:
    found = []
    if result.returncode != 0:
        found.append(f"exit code {result.returncode}")
    lines = result.stdout.strip().splitlines()
    if len(lines) != 1 or not RESULT_LINE.fullmatch(lines[0]):
        found.append(f"stdout is not one line of key=value figures: {result.stdout.strip()!r}")
    else:
        found += [f"invariant broken: {failure}" for failure in broken(invariants(run.script), parse_figures(lines[0]))]
    found += [f"left behind: {name}" for name in leftovers(run, pid)]
    return found


def leftovers(run: Run, pid: int) -> list[str]:
    """The run's database (PostgreSQL) or temporary folder (SQLite), if it is still there."""
    prefix = database_prefix(run.script.stem, pid)
    if run.database_url is None or run.database_url == SQLITE:
        return [str(path) for path in Path(tempfile.gettempdir()).glob(f"{prefix}*")]
    import psycopg

    try:
        with psycopg.connect(libpq_url(run.database_url)) as connection:
            names = connection.execute("SELECT datname FROM pg_database").fetchall()
    except psycopg.Error as exc:
        return [f"(cannot tell: {exc})"]
    return [name for (name,) in names if name.startswith(prefix)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--postgres-url",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="the PostgreSQL server the benches create their databases on; empty to run on SQLite only",
    )
    parser.add_argument("--only", action="append", default=[], metavar="BENCH", help="run this bench only (repeatable)")
    args = parser.parse_args()
    exit_on_sigterm()
    started, failures = time.monotonic(), 0
    runs = planned_runs(args.postgres_url, args.only)
    if not runs:
        raise SystemExit(f"no bench found in {BENCH_DIR}")
    for run in runs:
        run_started = time.monotonic()
        result, pid = execute(run)
        found = problems(result, run, pid)
        print(f"{'FAIL' if found else 'ok  '} {run} ({time.monotonic() - run_started:.0f} s)", flush=True)
        print(f"     {result.stdout.strip()}", flush=True)
        if found:
            failures += 1
            print("\n".join(f"     {problem}" for problem in found), result.stderr, sep="\n", flush=True)
    print(f"bench smoke: {failures} failed, {time.monotonic() - started:.0f} s")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
