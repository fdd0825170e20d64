"""One answer to "did it work, and what do we tell the admin?" for every use case that an admin action, an API view
or a task runs, and one way to turn the expected failures of a flow into such an answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from integrations.http import VendorError

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    # A failure that is an error (the vendor failed, the set-up is missing), not just an answer such as "not a
    # member"; the admin shows it in red rather than as a warning.
    error: bool = False

    @classmethod
    def success(cls, message: str) -> Outcome:
        return cls(True, message)

    @classmethod
    def failure(cls, message: str) -> Outcome:
        return cls(False, message)


class NotReady(Exception):
    """Something to set up before any vendor call can be made (no usable connection, no phone, no sign-up source);
    the message says what to do."""


def outcome_of(flow: Callable[[T], Outcome], subject: T) -> Outcome:
    """Run a flow on one subject; a missing set-up or a vendor error becomes a failed outcome that says why."""
    try:
        return flow(subject)
    except NotReady as exc:
        return Outcome(False, str(exc), error=True)
    except VendorError as exc:
        return Outcome(False, f"{subject}: {exc.for_admin}", error=True)
