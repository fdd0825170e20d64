"""What every vendor simulator shares: injected failures, so the portal's error handling can be tried by hand.

A request to a simulator may carry `X-Sandbox-Fail: <mode>` (tests, scripts), or a connection setting can point
at a URL with `?sandbox_fail=<mode>`. Modes: 401, 403, 429, 500, 503 (answer that status), `slow` (sleep
SANDBOX_SLOW_SECONDS first, to trigger read timeouts). `POST /sandbox/<vendor>/_outage` makes a vendor's next calls
fail (an outage for drills and benches). A simulator whose `State` extends `FailureKnobs` also takes failures through
its own `/_control` (`{"fail": mode, "fail_path": endpoint, "times": n}`), answered in the vendor's own error body.
`EveryNth` and `drop_connection` let a simulator lose an answer for real: it does the work, then closes the
connection without answering (the caller sees the connection dropped).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

SLOW_SECONDS = 3.0
FAILURE_BODIES: dict[int, dict[str, str]] = {
    401: {"message": "Unauthorized"},
    403: {"message": "Forbidden"},
    429: {"message": "Too Many Requests"},
    500: {"message": "Internal Server Error"},
    502: {"message": "Bad Gateway"},
    503: {"message": "Service Unavailable"},
    504: {"message": "Gateway Timeout"},
}

View = Callable[..., HttpResponse]


@dataclass
class Outage:
    """A simulated outage of one vendor: its next `times` calls answer `status` (set through /_outage)."""

    status: int = 0
    times: int = 0


OUTAGES: dict[str, Outage] = {}
_outage_lock = threading.Lock()


def vendor_of(request: HttpRequest) -> str:
    """The simulator a request is for: /sandbox/<vendor>/..."""
    _, _, rest = request.path.partition("/sandbox/")
    return rest.split("/", 1)[0]


def outage_status(request: HttpRequest) -> int:
    with _outage_lock:
        outage = OUTAGES.get(vendor_of(request))
        if outage is None or outage.times <= 0:
            return 0
        outage.times -= 1
        return outage.status


@csrf_exempt
def outage_control(request: HttpRequest, vendor: str) -> JsonResponse:
    """POST {"status": 503, "times": 1000} makes the vendor's next calls fail; {"reset": true} ends it."""
    if request.method == "POST":
        settings = json_object(request) or {}
        with _outage_lock:
            outage = OUTAGES.setdefault(vendor, Outage())
            if settings.get("reset"):
                outage.status, outage.times = 0, 0
            if "status" in settings:
                outage.status, outage.times = int(settings["status"]), int(settings.get("times", 1_000_000))
    outage = OUTAGES.get(vendor, Outage())
    return JsonResponse({"vendor": vendor, "status": outage.status, "times": outage.times})


def requested_failure(request: HttpRequest) -> str:
    if status := outage_status(request):
        return str(status)
    return request.headers.get("X-Sandbox-Fail") or request.GET.get("sandbox_fail", "")


def generic_failure(status: int) -> HttpResponse | None:
    """The answer of a failure asked for by header, URL or outage: the same body whatever the vendor."""
    if status not in FAILURE_BODIES:
        return None
    response = JsonResponse(FAILURE_BODIES[status], status=status)
    if status == 429:
        response["Retry-After"] = "1"
    return response


def failure_answer(mode: str, answer: Callable[[int], HttpResponse | None]) -> HttpResponse | None:
    """What a call failing in `mode` gets: `slow` sleeps SLOW_SECONDS, then the call goes on; a status is answered
    by `answer` (None lets the call go on); any other mode is the simulator's own to honour (First Orion's `lose`)."""
    if mode == "slow":
        time.sleep(SLOW_SECONDS)
        return None
    return answer(int(mode)) if mode.isdigit() else None


def simulator(view: View) -> View:
    """Wrap a simulator view: no CSRF (vendors are called by machines) and failure injection first."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (failure := failure_answer(requested_failure(request), generic_failure)) is not None:
            return failure
        return view(request, *args, **kwargs)

    return wrapper


@dataclass
class FailureKnobs:
    """Failures set through a simulator's `/_control`: the next `fail_times` calls to the endpoint named `fail_path`
    (any endpoint when empty) fail in mode `fail` (see `failure_answer`). A simulator's `State` extends it, so every
    simulator reads the same POST shape and keeps the knobs with the rest of its state (persistence.py)."""

    fail: str = ""
    fail_path: str = ""
    fail_times: int = 0

    def set_failure(self, settings: dict[str, Any]) -> None:
        """Take a `/_control` POST's `fail`, `fail_path` and `times`, when it sets `fail` (under the state's lock)."""
        if "fail" in settings:
            self.fail, self.fail_path = str(settings["fail"]), str(settings.get("fail_path", ""))
            self.fail_times = int(settings.get("times", 1))

    def clear_failure(self) -> None:
        self.fail, self.fail_path, self.fail_times = "", "", 0

    def take_failure(self, endpoint: str) -> str:
        """The mode this call to `endpoint` fails in, counted against `fail_times`; "" when it does not fail (under
        the state's lock)."""
        if not self.fail or self.fail_times <= 0 or self.fail_path not in ("", endpoint):
            return ""
        self.fail_times -= 1
        return self.fail


def json_object(request: HttpRequest) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(request.body or b"null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class EveryNth:
    """Counts events and says which are the Nth, 2Nth, … (0 = none): "lose the answer of every 10th call"."""

    every: int = 0
    seen: int = 0
    fired: int = 0

    def __call__(self) -> bool:
        """Count one event; True when it is one of every Nth."""
        self.seen += 1
        if self.every <= 0 or self.seen % self.every:
            return False
        self.fired += 1
        return True


def client_socket(request: HttpRequest) -> socket.socket | None:
    """The socket the request came in on: gunicorn puts it in the environ; Django's development and test servers
    only through the request's input stream (a LimitedStream over the socket's buffered reader)."""
    if isinstance(sock := request.META.get("gunicorn.socket"), socket.socket):
        return sock
    read = getattr(request.META.get("wsgi.input"), "_read", None)
    raw = getattr(getattr(read, "__self__", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def drop_connection(request: HttpRequest) -> bool:
    """Close the caller's connection without an answer (the request body was read): the caller sees the connection
    dropped after sending, as when a network path or a proxy fails mid-call. False when the socket cannot be found
    (another server): the caller then answers something else that loses the answer."""
    sock = client_socket(request)
    if sock is None:
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return False
    return True
