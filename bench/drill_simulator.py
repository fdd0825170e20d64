"""The portal served with a recorder at the Attentive simulator's door, for bench/fault_drill.py: every message
request the simulator answers is written down with when it arrived, its recipient and the status it was answered
with (504 when the simulator accepted the message but lost the answer). GET /_drill/record returns the record.

    gunicorn bench.drill_simulator:application --threads 32      (one process: the record lives in it)
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from portal.wsgi import application as portal

RECORD_PATH = "/_drill/record"
MESSAGES_PATH = "/sandbox/attentive/v1/subscriptions/messages"

_lock = threading.Lock()
_answers: list[dict[str, Any]] = []


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == RECORD_PATH:
        with _lock:
            body = json.dumps(_answers).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if environ.get("PATH_INFO") != MESSAGES_PATH or environ.get("REQUEST_METHOD") != "POST":
        return portal(environ, start_response)
    return recorded(environ, start_response)


def recorded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    arrived = time.time()
    request_body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(request_body)
    statuses: list[int] = []

    def start_recording(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(int(status.split()[0]))
        return start_response(status, headers, exc_info)

    response = portal(environ, start_recording)
    try:
        to = str(json.loads(request_body).get("to", ""))
    except (ValueError, AttributeError):
        to = ""
    with _lock:
        _answers.append({"to": to, "arrived": arrived, "answered": time.time(), "status": statuses[0]})
    return response
