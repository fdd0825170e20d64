"""Races made to happen: another caller, on a database connection of its own (as another worker or request would
be), let in at a chosen instant of the flow under test — between its read and its write — by a wrapper around the
test's own queries (Django's `connection.execute_wrapper`). The flow runs unchanged; only the moment is chosen."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")


def meanwhile(work: Callable[[], T]) -> T:
    """Run `work` in a thread of its own (so on its own database connections) and wait for it; hand back what it
    returned, or raise here what it raised."""
    answers: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            answers.append(work())
        except BaseException as exc:  # raised in the test's thread instead
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return answers[0]


def at_query(matches: Callable[[str], bool], then: Callable[[], Any], *, nth: int = 1, after: bool = False):
    """A query wrapper that runs `then` meanwhile, once: at the `nth` query whose SQL `matches` accepts, just before
    it runs (or just after, with `after`)."""
    seen: list[str] = []

    def wrapper(execute, sql, params, many, context):
        hit = False
        if len(seen) < nth and matches(sql):
            seen.append(sql)
            hit = len(seen) == nth
        if hit and not after:
            meanwhile(then)
        answer = execute(sql, params, many, context)
        if hit and after:
            meanwhile(then)
        return answer

    return wrapper


def statement(verb: str, table: str, *naming: str) -> Callable[[str], bool]:
    """Matches an SQL statement of this verb on this table that names each of `naming` (columns)."""
    return lambda sql: sql.lstrip().startswith(verb) and f'"{table}"' in sql and all(n in sql for n in naming)
