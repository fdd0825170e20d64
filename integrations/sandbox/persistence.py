"""The simulators remember across restarts: each one's in-memory `state` is kept in `<SANDBOX_STATE_DIR>/<vendor>.json`.

The portal's own records survive a second `make run`; without this the simulators would not (Attentive listing no
subscriptions, SessionM answering 422 "No user u-000001" for a user the portal created). Every simulator request
(its endpoints and its `_control` knob) marks the simulators changed; a short debounce later each state is dumped
under its own lock and written atomically (a temporary file, then a rename), and once more when the process exits.
The files are read once per process, before the first simulator request is served. `reset_all` (the sandbox page's
*Reset the sandbox*) empties every simulator and removes the files.

An empty SANDBOX_STATE_DIR turns this off (the test settings do: no test run shares a file with another).
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import itertools
import json
import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from integrations.hooks import KeepsSimulatorState, ResetsSimulator, Simulates, StartsSimulatorAgain, hooks
from integrations.sandbox.base import OUTAGES, EveryNth

SimulatorModule = TypeVar("SimulatorModule", bound=Simulates)

logger = logging.getLogger(__name__)

# Long enough to write once per burst of calls (a bench makes thousands), short enough that a Ctrl-C loses nothing
# in practice (the exit hook writes the rest).
DEBOUNCE_SECONDS = 0.5

_loaded = False
_load_lock = threading.Lock()
_timer: threading.Timer | None = None
_timer_lock = threading.Lock()
_last_written: dict[str, str] = {}


def state_dir() -> Path | None:
    """Where the simulators' states are kept, or None when they are not kept (tests)."""
    configured = getattr(settings, "SANDBOX_STATE_DIR", "")
    return Path(configured) if configured else None


def simulator_states() -> dict[str, Any]:
    """vendor key -> the simulator module's live `state` object (read each time: a reset may rebind it)."""
    return {key: module.state for key, module in hooks(KeepsSimulatorState).items()}


# --- JSON with the few types the states hold ----------------------------------------------------------------------


def encoded(value: Any) -> Any:
    """A state's value as JSON: sets, tuples, counters and id counters tagged so they come back as they were."""
    if isinstance(value, Counter):
        return {"__counter__": {str(k): v for k, v in value.items()}}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {str(k): encoded(v) for k, v in value.items()}
        return {"__items__": [[encoded(k), encoded(v)] for k, v in value.items()]}
    if isinstance(value, set | frozenset):
        return {"__set__": [encoded(v) for v in sorted(value, key=repr)]}
    if isinstance(value, tuple):
        return {"__tuple__": [encoded(v) for v in value]}
    if isinstance(value, list):
        return [encoded(v) for v in value]
    if isinstance(value, EveryNth):
        return {"__every_nth__": dataclasses.asdict(value)}
    if isinstance(value, itertools.count):
        return {"__count__": next(copy.copy(value))}  # the next id it will give, without taking it
    return value


def decoded(value: Any) -> Any:
    if isinstance(value, list):
        return [decoded(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), *_ = value.items()
        taggers: dict[str, Callable[[Any], Any]] = {
            "__counter__": lambda v: Counter(v),
            "__items__": lambda v: {decoded(k): decoded(x) for k, x in v},
            "__set__": lambda v: {decoded(x) for x in v},
            "__tuple__": lambda v: tuple(decoded(x) for x in v),
            "__every_nth__": lambda v: EveryNth(**v),
            "__count__": lambda v: itertools.count(v),
        }
        if tag in taggers:
            return taggers[tag](inner)
    return {k: decoded(v) for k, v in value.items()}


def kept_fields(state: Any) -> list[str]:
    """The state's fields worth keeping: all but its lock."""
    return [f.name for f in dataclasses.fields(state) if f.name != "lock"]


def dumped(state: Any) -> str:
    with state.lock:
        return json.dumps({name: encoded(getattr(state, name)) for name in kept_fields(state)}, sort_keys=True)


def restore(state: Any, text: str) -> None:
    """Take a saved state into the live one; fields the file does not have (added since) keep their defaults."""
    saved = json.loads(text)
    with state.lock:
        for name in kept_fields(state):
            if name in saved:
                setattr(state, name, decoded(saved[name]))


# --- Loading, saving, resetting ------------------------------------------------------------------------------------


def load_all() -> None:
    """Read every simulator's saved state, once per process (before the first simulator request is served)."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        _loaded = True
        folder = state_dir()
        if folder is None:
            return
        for vendor, state in simulator_states().items():
            path = folder / f"{vendor}.json"
            try:
                text = path.read_text()
                restore(state, text)
                _last_written[vendor] = text
            except FileNotFoundError:
                continue
            except (ValueError, TypeError, OSError) as exc:
                # A damaged file must not keep the sandbox from starting: it starts empty, and says so.
                logger.warning("Sandbox state %s not read (%s): the %s simulator starts empty.", path, exc, vendor)
        atexit.register(save_all)


def save_all() -> None:
    """Write each simulator's state that changed since it was last written (atomically: temp file, rename)."""
    folder = state_dir()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for vendor, state in simulator_states().items():
        text = dumped(state)
        if _last_written.get(vendor) == text:
            continue
        write_atomically(folder / f"{vendor}.json", text)
        _last_written[vendor] = text


def write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)  # a reader (or a crash) sees the old file or the new one, never half of one
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def changed() -> None:
    """A simulator may have changed: write the states once the burst of calls is over."""
    global _timer
    if state_dir() is None:
        return
    with _timer_lock:
        if _timer is not None:
            return
        _timer = threading.Timer(DEBOUNCE_SECONDS, _save_after_debounce)
        _timer.daemon = True
        _timer.start()


def _save_after_debounce() -> None:
    global _timer
    with _timer_lock:
        _timer = None
    try:
        save_all()
    except OSError as exc:
        logger.warning("Sandbox state not written (%s): it is kept in memory and written at the next change.", exc)


def reset_all() -> list[str]:
    """Empty every simulator (its records and its knobs), end every simulated outage, and forget the saved files.
    Returns the keys of the simulators reset."""
    resets, states = hooks(ResetsSimulator), hooks(KeepsSimulatorState)
    for vendor in hooks(Simulates):
        if vendor in resets:
            resets[vendor].reset()
        elif vendor in states:
            states[vendor].state.__init__()
        _last_written.pop(vendor, None)
    # A simulator that starts with demo records (Bazaarvoice's reviews, and their reviewers at Annex Cloud) starts
    # again with them, once every simulator is empty.
    for module in hooks(StartsSimulatorAgain).values():
        module.start_again()
    OUTAGES.clear()
    folder = state_dir()
    if folder is not None and folder.exists():
        for path in folder.glob("*.json"):
            path.unlink(missing_ok=True)
    return sorted(hooks(Simulates))


def remembering(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a simulator's view: saved states are read before it runs, its changes written soon after."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        load_all()
        try:
            return view(request, *args, **kwargs)
        finally:
            changed()

    return wrapper


def remember_views_of(module: SimulatorModule) -> SimulatorModule:
    """Every URL pattern of a simulator module, its views wrapped by `remembering` (once)."""
    for pattern in module.urlpatterns:
        callback = getattr(pattern, "callback", None)
        if callback is not None and not getattr(callback, "_remembering", False):
            wrapped = remembering(callback)
            # A mark on the function object (read with getattr above), which no function type declares.
            wrapped._remembering = True  # type: ignore[attr-defined]
            pattern.callback = wrapped
    return module
