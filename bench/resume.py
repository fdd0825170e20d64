"""How long a killed run blocks its work: after the kill, a bench runs the job the way its schedule would — an attempt
every `period` seconds — until one is no longer turned away by the killed run's hold, while a thread watches the
simulator for the first sign of progress. Nothing releases the killed run's hold by hand: it runs out by itself.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# How often the watcher reads the simulator's progress counter.
SAMPLE_SECONDS = 0.05


@dataclass(frozen=True)
class Resumed:
    blocked_runs: int  # attempts turned away by the killed run's hold
    # From the kill to the first progress the simulator saw from the run that took over; infinite when none was seen
    # (printed as `inf`, it breaks any bound on it).
    seconds_to_resume: float


def resume_on_schedule(
    killed_at: float, attempt: Callable[[], bool], progress: Callable[[], int], period: float, patience: float
) -> Resumed:
    """Attempt the work every `period` seconds until an attempt runs (`attempt` answers whether it did, or whether
    the hold turned it away), for at most `patience` seconds. Progress is counted from the simulator's reading taken
    just before the attempt that ran: by then whatever the killed run had in flight has long arrived. A run that
    never resumes (still turned away after `patience`, or making no progress) is reported, not raised: the bench
    prints its line and its invariants say what broke."""
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), progress()))
            stop.wait(SAMPLE_SECONDS)

    watcher = threading.Thread(target=watch, name="resume-watch", daemon=True)
    watcher.start()
    blocked, deadline = 0, time.monotonic() + patience
    try:
        while True:
            started, baseline = time.monotonic(), progress()
            if attempt():
                break
            blocked += 1
            if time.monotonic() > deadline:
                print(f"the work did not resume within {patience:g} s of the kill", file=sys.stderr)
                return Resumed(blocked, math.inf)
            time.sleep(period)  # the schedule's period: the next run is due
    finally:
        stop.set()
        watcher.join()
    samples.append((time.monotonic(), progress()))
    moved = next((moment for moment, value in samples if moment >= started and value > baseline), None)
    if moved is None:
        print("the run that took over made no progress the simulator saw", file=sys.stderr)
        return Resumed(blocked, math.inf)
    return Resumed(blocked, moved - killed_at)
