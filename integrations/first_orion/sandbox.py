"""First Orion ENGAGE simulator: seed 002's contract, with the checks the real API makes.

Accepts client id `sandbox-fo-client` with secret `sandbox-fo-secret-7d41`; tokens live 15 minutes (shortened with
`token_lifetime`). A batch push is checked rule by rule: a UUID programContentUuid, E.164 bNumbers, exactly one of
aNumbers (1-400, E.164) / aNumberGroupId (a UUID), ttlSeconds present. aNumbers in `unregistered` (by default
UNREGISTERED_A_NUMBER) get the 200-with-error answer, programs in `misconfigured` (by default MISCONFIGURED_PROGRAM)
the 400. State lives in this process. `/_control` shows counts (GET) and sets knobs (POST JSON: {"token_lifetime":
30, "fail": "401|500|503|slow|lose", "times": 1, "latency_ms": 20, "unregistered": [...], "misconfigured": [...],
"reset": true}); "lose" accepts the batch and answers 504, as a gateway that gave up would.

Its record, for tests and benches: the numbers pushed (with how many times), every destination as received, each
batch request's token and the status it was answered, and the personalised values over 20 characters it received
(seed 002's best practice; recorded, not refused, as First Orion does). E.164 is checked by syntax, as the seed says.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from integrations.first_orion.numbers import is_e164_syntax
from integrations.sandbox.base import FailureKnobs, failure_answer, json_object, simulator

CLIENT_ID = "sandbox-fo-client"
CLIENT_SECRET = "sandbox-fo-secret-7d41"
DEMO_SECRETS = {"client_secret": CLIENT_SECRET}
DEMO_SETTINGS = {"client_id": CLIENT_ID}
DEMO_PROGRAM = "3e1b9b27-d1f9-4c8d-800f-bb534d6928d6"
DEMO_A_NUMBERS = ["+15014008029", "+15013509988"]
UNREGISTERED_A_NUMBER = "+12025550199"
MISCONFIGURED_PROGRAM = "00000000-0000-4000-8000-000000000400"
TOKEN_LIFETIME = 15 * 60
MAX_A_NUMBERS = 400
# First Orion's own failure mode (the `fail` knob): the batch is accepted, then answered 504 (a gateway gave up).
LOSE = "lose"
# First Orion's best practice (the portal's MAX_PERSONALIZATION_LENGTH): a personalised text longer than this may not
# display on every handset. The simulator counts such values.
DISPLAYABLE_LENGTH = 20


@dataclass
class State(FailureKnobs):
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch seconds)
    token_lifetime: float = TOKEN_LIFETIME
    token_calls: int = 0
    health_calls: int = 0
    batches: int = 0
    received: Counter[str] = field(default_factory=Counter)  # bNumber -> times pushed
    tracking_ids: list[str] = field(default_factory=list)
    destinations: list[dict[str, Any]] = field(default_factory=list)  # every destination accepted, as received
    batch_calls: list[tuple[str, int]] = field(default_factory=list)  # (token carried, HTTP status answered)
    long_values: int = 0  # personalised values over 20 characters received
    last_body: dict[str, Any] = field(default_factory=dict)
    last_headers: dict[str, str] = field(default_factory=dict)
    unregistered: set[str] = field(default_factory=lambda: {UNREGISTERED_A_NUMBER})
    misconfigured: set[str] = field(default_factory=lambda: {MISCONFIGURED_PROGRAM})
    latency_ms: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


state = State()


def request_id() -> str:
    return str(uuid.uuid4())


def batch_error(status: int, response: str, message: str = "Batch push could not complete push successfully.") -> Any:
    return JsonResponse(
        {"response": response, "message": message, "errorCode": status, "requestId": request_id()}, status=status
    )


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def new_token() -> str:
    """JWT-shaped, like First Orion's (Cognito) tokens, with the expiry in its `exp` claim."""
    now = time.time()
    claims = {"sub": CLIENT_ID, "token_use": "access", "iat": int(now), "exp": now + state.token_lifetime}
    token = f"{b64({'alg': 'RS256'})}.{b64(claims)}.{secrets.token_urlsafe(32)}"
    state.tokens[token] = now + state.token_lifetime
    return token


def valid_token(request: HttpRequest) -> bool:
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip()
    with state.lock:
        expiry = state.tokens.get(token)
    return expiry is not None and time.time() < expiry


def unauthorized() -> HttpResponse:
    return HttpResponse(status=401)  # the seed: 401 with no body


@simulator
def token(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    body = json_object(request) or {}
    with state.lock:
        state.token_calls += 1
        purpose_ok = request.headers.get("X-Federated-Purpose") == "inform"
        if not purpose_ok or body.get("clientId") != CLIENT_ID or body.get("clientSecret") != CLIENT_SECRET:
            return JsonResponse(
                {
                    "accessToken": None,
                    "message": "Failed to grant access token",
                    "errorCode": 500,
                    "requestId": request_id(),
                },
                status=500,
            )
        issued = new_token()
    return JsonResponse({"accessToken": issued, "message": "Success", "errorCode": 0, "requestId": request_id()})


@simulator
def health(request: HttpRequest) -> HttpResponse:
    with state.lock:
        state.health_calls += 1
    if not valid_token(request):
        return unauthorized()
    return JsonResponse({"accessToken": None, "message": "Healthy", "errorCode": "", "requestId": request_id()})


def is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(str(value))) == str(value).lower()
    except ValueError:
        return False


def batch_rule_broken(program: str, body: dict[str, Any] | None) -> HttpResponse | None:
    """The 400s, in the order First Orion checks: program, numbers source, destinations, ttl."""
    if not is_uuid(program):
        return batch_error(400, f"Invalid programContentUuid {program!r}")
    if program.lower() in state.misconfigured:
        return batch_error(400, "Invalid program setup on this program")
    if body is None:
        return batch_error(400, "Body must be a JSON object")
    has_list, group = "aNumbers" in body, body.get("aNumberGroupId")
    if has_list == bool(group) or (group and not is_uuid(group)):
        return batch_error(
            400, "Must send aNumbers or a valid ANumberGroupId", "Batch could not complete push successfully."
        )
    numbers = body.get("aNumbers")
    if has_list and (not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_A_NUMBERS):
        return batch_error(400, f"aNumbers must be a list of 1 to {MAX_A_NUMBERS} numbers")
    if isinstance(numbers, list) and not all(isinstance(n, str) and is_e164_syntax(n) for n in numbers):
        return batch_error(400, "aNumbers must be in E.164 format")
    destinations = body.get("destinations")
    if not isinstance(destinations, list) or not destinations:
        return batch_error(400, "destinations is required")
    for item in destinations:
        if not isinstance(item, dict) or not is_e164_syntax(str(item.get("bNumber", ""))):
            return batch_error(400, f"bNumber must be in E.164 format: {item!r}"[:200])
    ttl = body.get("ttlSeconds")
    if ttl is None or not str(ttl).isdigit():
        return batch_error(400, "ttlSeconds is required")
    return None


@simulator
def batch(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    if state.latency_ms:
        time.sleep(state.latency_ms / 1000)
    response = batch_answer(request)
    with state.lock:
        state.batch_calls.append((bearer(request), response.status_code))
    return response


def bearer(request: HttpRequest) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ").strip()


def failure_in_first_orions_words(status: int) -> HttpResponse | None:
    """The injected statuses First Orion's batch answers: 401 (as the seed shows it, no body), 500 and 503."""
    if status == 401:
        return unauthorized()
    return JsonResponse({"message": "error"}, status=status) if status in (500, 503) else None


def batch_answer(request: HttpRequest) -> HttpResponse:
    with state.lock:
        failure = state.take_failure("batch")
    if (answer := failure_answer(failure, failure_in_first_orions_words)) is not None:
        return answer
    if not valid_token(request):
        return unauthorized()
    body = json_object(request)
    if (broken := batch_rule_broken(request.GET.get("programContentUuid", ""), body)) is not None:
        return broken
    assert body is not None
    if set(body.get("aNumbers") or []) & state.unregistered:
        return batch_error(200, "Not allowed to use one or more anumbers.")
    record_batch(body, {k: v for k, v in request.headers.items() if k.lower() != "authorization"})
    if failure == LOSE:
        return JsonResponse({"message": "Gateway Timeout"}, status=504)
    return JsonResponse({"response": "success", "message": None, "errorCode": "", "requestId": request_id()})


def record_batch(body: dict[str, Any], headers: dict[str, str]) -> None:
    with state.lock:
        state.batches += 1
        state.last_body = body
        state.last_headers = headers
        for item in body["destinations"]:
            state.received[item["bNumber"]] += 1
            state.tracking_ids.append(str(item.get("customTrackingId", "")))
            state.destinations.append(item)
            values = item.get("personalization") or {}
            state.long_values += sum(1 for value in values.values() if len(str(value)) > DISPLAYABLE_LENGTH)


@csrf_exempt
def control(request: HttpRequest) -> JsonResponse:
    """Inspect the simulator (GET) or set knobs (POST)."""
    if request.method == "POST":
        settings = json_object(request) or {}
        with state.lock:
            if settings.get("reset"):
                fresh = State()
                for name in (
                    "tokens", "token_calls", "health_calls", "batches", "received", "tracking_ids", "destinations",
                    "batch_calls", "long_values",
                ):  # fmt: skip
                    setattr(state, name, getattr(fresh, name))
                state.token_lifetime, state.latency_ms = TOKEN_LIFETIME, 0
                state.clear_failure()
                state.unregistered, state.misconfigured = fresh.unregistered, fresh.misconfigured
            if "token_lifetime" in settings:
                state.token_lifetime = float(settings["token_lifetime"])
            if "expire_tokens" in settings:
                state.tokens.clear()
            if "latency_ms" in settings:
                state.latency_ms = int(settings["latency_ms"])
            state.set_failure(settings)
            if "unregistered" in settings:
                state.unregistered = set(settings["unregistered"])
            if "misconfigured" in settings:
                state.misconfigured = {str(p).lower() for p in settings["misconfigured"]}
    with state.lock:
        return JsonResponse(
            {
                "token_calls": state.token_calls,
                "health_calls": state.health_calls,
                "batches": state.batches,
                "destinations": sum(state.received.values()),
                "numbers": len(state.received),
                "duplicates": sum(n - 1 for n in state.received.values() if n > 1),
                "long_values": state.long_values,
                "refused_batches": sum(1 for _, status in state.batch_calls if status == 401),
                "token_lifetime": state.token_lifetime,
            }
        )


urlpatterns = [
    path("federated/content/v2/token", token),
    path("federated/content/v2/token/health", health),
    path("federated/outbound/v2/batch", batch),
    path("_control", control),
]
