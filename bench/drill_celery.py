"""The portal's Celery worker or beat as bench/fault_drill.py starts it, writing down what it does in the file that
DRILL_RECORD names, so the drill counts from its own record rather than from log wording or the portal's rows:

    start <time> <pid> <task id> <task name>     a worker's pool child begins a task
    end <time> <pid> <task id> <task name>       … and finishes it (a killed child never writes this)
    publish <time> <pid> <task id> <task name>   a beat sends a task it scheduled (written before the broker has it)
    call <time> <pid> <limiter key> <rate>       a shared rate limiter lets a vendor call go: the start of the window
                                                 it counted the call in (while the cache is down no call goes)

    DRILL_RECORD=/tmp/x.record python -m bench.drill_celery worker -Q messages …   (the arguments of `celery -A portal`)
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun, worker_process_init


def record(kind: str, what: str, detail: object, at: float | None = None) -> None:
    """One line, appended in one write: the pool children of a worker share the file."""
    line = f"{kind} {time.time() if at is None else at:.3f} {os.getpid()} {what} {detail}\n"
    fd = os.open(os.environ["DRILL_RECORD"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@task_prerun.connect
def task_started(task_id: str, task: Any, **_: Any) -> None:
    record("start", task_id, task.name)


@task_postrun.connect
def task_ended(task_id: str, task: Any, **_: Any) -> None:
    record("end", task_id, task.name)


@before_task_publish.connect
def task_scheduled(sender: str, headers: dict[str, Any], **_: Any) -> None:
    record("publish", headers["id"], sender)


def record_calls_let_go() -> None:
    """Every call a shared rate limiter lets go, as the limiter decided it: the window it counted the call in. The
    simulator sees the same calls later, bunched by however long each process of a loaded machine waited for a
    CPU before the call arrived; this is the pace the portal itself kept."""
    from integrations.ratelimit import SharedWindowLimiter

    count_in = SharedWindowLimiter.count_in

    def recorded_count_in(self: SharedWindowLimiter, slot: int) -> int:
        count = count_in(self, slot)
        if count <= self.per_window:
            record("call", self.key, self.rate, at=slot * self.window)
        return count

    SharedWindowLimiter.count_in = recorded_count_in  # type: ignore[method-assign]


@worker_process_init.connect
def pool_child_started(**_: Any) -> None:
    record_calls_let_go()


if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv = ["celery", "-A", "portal", *sys.argv[1:]]
    main()
