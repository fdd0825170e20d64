"""What every vendor simulator shares: injected failures, so the portal's error handling can be tried by hand.

A request to a simulator may carry `X-Sandbox-Fail: <mode>` (tests, scripts), or a connection setting can point
at a URL with `?sandbox_fail=<mode>`. Modes: 401, 403, 429, 500, 503 (answer that status), `slow` (sleep
SANDBOX_SLOW_SECONDS first, to trigger read timeouts).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
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
    503: {"message": "Service Unavailable"},
}

View = Callable[..., HttpResponse]


def requested_failure(request: HttpRequest) -> str:
    return request.headers.get("X-Sandbox-Fail") or request.GET.get("sandbox_fail", "")


def simulator(view: View) -> View:
    """Wrap a simulator view: no CSRF (vendors are called by machines) and failure injection first."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        mode = requested_failure(request)
        if mode == "slow":
            time.sleep(SLOW_SECONDS)
        elif mode.isdigit() and int(mode) in FAILURE_BODIES:
            status = int(mode)
            response = JsonResponse(FAILURE_BODIES[status], status=status)
            if status == 429:
                response["Retry-After"] = "1"
            return response
        return view(request, *args, **kwargs)

    return wrapper


def json_object(request: HttpRequest) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(request.body or b"null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
