"""SessionM simulator: the Core API's customer profiles and campaigns and the Connect API's wallet and transactions,
with the checks the real APIs make.

Accepts HTTP Basic `smk-sandbox-7f3a91` / `sms-sandbox-c41e2d` (the key also names the app in Core paths; Connect also
accepts its own pair `smck-sandbox-2b9e57` / `smcs-sandbox-d806af`, Core never does) and the Connect store
`fancy-fries-001`, client `portal-demo-client`. Every new user's wallet gets the offers of `auto_offers` (by default
one new offer, one that expires in 7 days and one that appears 10 minutes later); Connect answers a repeated
request_id with its first answer. State lives in this process. `/_control` shows it (GET) and changes it (POST
JSON): {"reset": true}, {"auto_offers": [{"name": ..., "days": 30, "appear_in_s": 0}]}, {"add_offer":
{"external_id" | "user_id": ..., "name": ..., "days": 10 | "end_date": "2026-12-01", "redeemed": false}},
{"redeem": "<offer id>"}, {"fail": "401|429|500|503|slow", "fail_path": "users|offers|transactions|campaigns",
"times": 1}, {"lose_answer_next": 1} (a transaction is applied but answered 504), {"fail_after_reads": n} (503 for
wallet reads after n), {"unknown_user_404": true} (an unknown user answered 404 instead of Connect's 200 envelope),
{"seed_users": [[external_id, user_id], ...]}.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from integrations.sandbox.base import FailureKnobs, failure_answer, json_object, simulator
from members.phones import is_e164

API_KEY = "smk-sandbox-7f3a91"
API_SECRET = "sms-sandbox-c41e2d"
# Connect's own credentials (a tenant may also let Connect accept the Core pair, as the demo does).
CONNECT_KEY = "smck-sandbox-2b9e57"
CONNECT_SECRET = "smcs-sandbox-d806af"
CONNECT_ENDPOINTS = ("offers", "transactions")
STORE_ID = "fancy-fries-001"
CONNECT_CLIENT_ID = "portal-demo-client"
# What the demo client's connection holds (seed_demo).
DEMO_SECRETS = {"api_key": API_KEY, "api_secret": API_SECRET}
DEMO_SETTINGS = {"store_id": STORE_ID, "connect_client_id": CONNECT_CLIENT_ID}
DEMO_WALLET = (
    {"name": "Large fries on us", "description": "A free large fries with any burger.", "days": 30},
    {"name": "20% off Mobile Tuesdays", "description": "20% off your order on Tuesdays.", "days": 7},
    {"name": "Snack box", "description": "A snack box for 500 points.", "days": 45, "appear_in_s": 600},
)
CAMPAIGNS = (
    {"id": "cmp-mobile-tuesdays", "name": "Mobile Tuesdays"},
    {"id": "cmp-snack-box", "name": "Snack box promotion"},
)


@dataclass
class State(FailureKnobs):
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_external_id: dict[str, str] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)
    wallets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    auto_offers: list[dict[str, Any]] = field(default_factory=lambda: [dict(o) for o in DEMO_WALLET])
    # Connect's idempotency: the first answer per request_id.
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    # Every request as received (method, path, body, Basic user), for contract tests.
    requests: list[dict[str, Any]] = field(default_factory=list)
    wallet_reads: int = 0
    # Wallet reads answered before SessionM "goes down" (503 from then on); 0 = never.
    fail_after_reads: int = 0
    lose_answer_next: int = 0
    # Some tenants answer Connect's unknown user as HTTP 404 (code user_not_found) instead of a 200 envelope.
    unknown_user_404: bool = False
    ids: Any = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)


state = State()


def error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"status": "error", "errors": {"code": code, "message": message}}, status=status)


def connect_answer(payload: Any = None, *, code: str = "", message: str = "") -> dict[str, Any]:
    """Connect's answer: HTTP 200 with `status` saying whether it worked."""
    if code:
        return {"status": "error", "payload": None, "errors": {"code": code, "message": message}}
    return {"status": "OK", "payload": payload, "errors": None}


def basic_user(request: HttpRequest) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def injected_failure(name: str) -> HttpResponse | None:
    with state.lock:
        mode = state.take_failure(name)
    return failure_answer(mode, failure_in_sessionms_words)


def failure_in_sessionms_words(status: int) -> HttpResponse:
    response = error(status, f"http_{status}", "injected failure")
    if status == 429:
        response["Retry-After"] = "1"
    return response


def endpoint(name: str) -> Callable[[Any], Any]:
    """Common checks in the order SessionM makes them: injected failure, Basic auth, the app key in the path."""

    def wrap(view: Any) -> Any:
        @simulator
        def checked(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            body = json_object(request)
            user, password = basic_user(request)
            with state.lock:
                state.requests.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "body": body,
                        "user": user,
                        "content_type": request.content_type,
                    }
                )
            if (failure := injected_failure(name)) is not None:
                return failure
            accepted = {(API_KEY, API_SECRET)}
            if name in CONNECT_ENDPOINTS:
                accepted.add((CONNECT_KEY, CONNECT_SECRET))
            if (user, password) not in accepted:
                return error(401, "unauthorized", "Invalid API key or secret")
            if kwargs.pop("api_key", API_KEY) != API_KEY:
                return error(401, "unauthorized", "The API key in the path is not this app's")
            return view(request, body, **kwargs)

        return checked

    return wrap


# --- Core: customer profiles ---------------------------------------------------------------------------------------


def profile_problem(user: Any, *, creating: bool) -> str:
    if not isinstance(user, dict):
        return "user is required"
    if creating and not user.get("external_id"):
        return "user.external_id is required"
    if "opted_in" in user and not isinstance(user["opted_in"], bool):
        return "user.opted_in must be true or false"
    if user.get("email") and "@" not in str(user["email"]):
        return f"user.email {user['email']} is not an e-mail address"
    for number in user.get("phone_numbers") or []:
        if not is_e164(str(number.get("phone_number", ""))):
            return f"phone_number {number.get('phone_number')} must be E.164"
    return ""


@endpoint("users")
def users(request: HttpRequest, body: dict[str, Any] | None) -> JsonResponse:
    if request.method != "POST":
        return error(405, "method_not_allowed", "Use POST to create a user")
    user: Any = (body or {}).get("user")  # unchecked JSON until profile_problem() passes it
    if problem := profile_problem(user, creating=True):
        return error(422, "validation_failed", problem)
    with state.lock:
        if user["external_id"] in state.by_external_id:
            return error(422, "external_id_taken", f"external_id {user['external_id']} is already in use")
        user_id = f"u-{next(state.ids):06d}"
        stored = state.users[user_id] = {**user, "id": user_id}
        state.by_external_id[user["external_id"]] = user_id
        state.wallets[user_id] = [new_offer(user_id, **template) for template in state.auto_offers]
    return JsonResponse({"status": "ok", "user": stored})


@endpoint("users")
def user(request: HttpRequest, body: dict[str, Any] | None, user_id: str) -> JsonResponse:
    with state.lock:
        stored = state.users.get(user_id)
        if stored is None:
            return error(404, "user_not_found", f"No user {user_id}")
        if request.method == "GET":
            return JsonResponse({"status": "ok", "user": stored})
        if request.method == "DELETE":
            # Forget: the profile and its wallet are removed.
            del state.users[user_id]
            state.by_external_id.pop(stored.get("external_id", ""), None)
            state.wallets.pop(user_id, None)
            state.forgotten.append(user_id)
            return JsonResponse({"status": "ok"})
        if request.method != "PUT":
            return error(405, "method_not_allowed", "Use GET, PUT or DELETE")
        changes: Any = (body or {}).get("user")  # unchecked JSON until profile_problem() passes it
        if problem := profile_problem(changes, creating=False):
            return error(422, "validation_failed", problem)
        if changes.get("external_id") not in (None, stored.get("external_id")):
            return error(422, "validation_failed", "external_id cannot be changed")
        stored.update(changes)
        return JsonResponse({"status": "ok", "user": stored})


@endpoint("users")
def external_user(request: HttpRequest, body: dict[str, Any] | None, external_id: str) -> JsonResponse:
    with state.lock:
        user_id = state.by_external_id.get(external_id)
        if user_id is None:
            return error(404, "user_not_found", f"No user with external_id {external_id}")
        return JsonResponse({"status": "ok", "user": state.users[user_id]})


def campaigns_of(user_id: str | None) -> JsonResponse:
    if user_id is None or user_id not in state.users:
        return error(404, "user_not_found", "No such user")
    return JsonResponse({"status": "ok", "campaigns": [dict(c) for c in CAMPAIGNS]})


@endpoint("campaigns")
def user_campaigns(request: HttpRequest, body: dict[str, Any] | None, user_id: str) -> JsonResponse:
    return campaigns_of(user_id)


@endpoint("campaigns")
def external_campaigns(request: HttpRequest, body: dict[str, Any] | None, external_id: str) -> JsonResponse:
    return campaigns_of(state.by_external_id.get(external_id))


# --- Connect: wallet and transactions ------------------------------------------------------------------------------


def new_offer(
    user_id: str,
    *,
    name: str,
    description: str = "",
    days: float = 30,
    end_date: str = "",
    appear_in_s: float = 0,
    redeemed: bool = False,
) -> dict[str, Any]:
    end = end_date or (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": f"uo-{next(state.ids):07d}",
        "name": name,
        "description": description,
        "redemption_end_date": end,
        "redeemed": redeemed,
        "appears_at": time.time() + appear_in_s,
    }


def envelope_problem(body: dict[str, Any] | None) -> str:
    if body is None or not isinstance(body.get("request_payload"), dict):
        return "the body must be an envelope with a request_payload object"
    if not body.get("request_id"):
        return "request_id is required"
    if (body.get("store_id"), body.get("client_id")) != (STORE_ID, CONNECT_CLIENT_ID):
        return f"unknown store_id {body.get('store_id')} / client_id {body.get('client_id')}"
    return ""


def connect(handle: Any) -> Any:
    """A Connect endpoint: the envelope checked, and a repeated request_id answered with its first answer."""

    def view(request: HttpRequest, body: dict[str, Any] | None) -> JsonResponse:
        if request.method != "POST":
            return error(405, "method_not_allowed", "Use POST")
        if problem := envelope_problem(body):
            return JsonResponse(connect_answer(code="invalid_request", message=problem))
        assert body is not None
        with state.lock:
            if (kept := state.answers.get(body["request_id"])) is not None:
                return JsonResponse(kept)
            answer = handle(body["request_payload"])
            if "http_status" in answer:
                return error(answer["http_status"], "unavailable", "Service Unavailable")
            if state.unknown_user_404 and (answer.get("errors") or {}).get("code") == "user_not_found":
                return error(404, "user_not_found", answer["errors"]["message"])
            state.answers[body["request_id"]] = answer
            lose = handle is send_transaction and state.lose_answer_next > 0
            if lose:
                state.lose_answer_next -= 1
        if lose:
            return error(504, "gateway_timeout", "Gateway Timeout")  # applied, but the answer is lost
        return JsonResponse(answer)

    return view


def get_user_offers(payload: dict[str, Any]) -> dict[str, Any]:
    user_id = str(payload.get("user_id") or "")
    if user_id not in state.users:
        return connect_answer(code="user_not_found", message=f"No user {user_id}")
    if state.fail_after_reads and state.wallet_reads >= state.fail_after_reads:
        return {"http_status": 503}
    state.wallet_reads += 1
    now = time.time()
    offers = [
        {k: v for k, v in offer.items() if k != "appears_at"}
        for offer in state.wallets.get(user_id, [])
        if offer["appears_at"] <= now
    ]
    return connect_answer({"user_offers": offers})


def transaction_problem(payload: dict[str, Any]) -> str:
    if str(payload.get("user_id") or "") not in state.users:
        return f"No user {payload.get('user_id')}"
    txn = payload.get("transaction")
    if not isinstance(txn, dict):
        return "transaction is required"
    try:
        amount: Any = txn.get("amount")  # anything the caller sent: float() refuses what is not a number
        if float(amount) < 0:
            return "transaction.amount must not be negative"
    except (TypeError, ValueError):
        return "transaction.amount must be a number"
    return ""


def send_transaction(payload: dict[str, Any]) -> dict[str, Any]:
    if problem := transaction_problem(payload):
        return connect_answer(code="invalid_transaction", message=problem)
    state.transactions.append(payload)
    points = int(float(payload["transaction"]["amount"]))
    return connect_answer({"transaction_id": f"t-{next(state.ids):07d}", "points_earned": points})


offers_view = endpoint("offers")(connect(get_user_offers))
transactions_view = endpoint("transactions")(connect(send_transaction))


# --- Control -------------------------------------------------------------------------------------------------------


def add_offer(spec: dict[str, Any]) -> dict[str, Any]:
    user_id = spec.get("user_id") or state.by_external_id.get(str(spec.get("external_id")))
    if user_id not in state.users:
        return {"error": "no such user"}
    fields = {k: spec[k] for k in ("name", "description", "days", "end_date", "appear_in_s", "redeemed") if k in spec}
    offer = new_offer(user_id, **{"name": "Offer", **fields})
    state.wallets.setdefault(user_id, []).append(offer)
    return offer


def seed_users(pairs: list[list[str]]) -> None:
    """Users created at once (benches): [[external_id, user_id], ...], each with the `auto_offers` wallet."""
    for external, user_id in pairs:
        state.users[user_id] = {"id": user_id, "external_id": external, "opted_in": True}
        state.by_external_id[external] = user_id
        state.wallets[user_id] = [new_offer(user_id, **template) for template in state.auto_offers]


def redeem(offer_id: str) -> None:
    for wallet in state.wallets.values():
        for offer in wallet:
            if offer["id"] == offer_id:
                offer["redeemed"] = True


@csrf_exempt
def control(request: HttpRequest) -> JsonResponse:
    """Inspect the simulator (GET) or change it (POST): see the module's docstring."""
    result: dict[str, Any] = {}
    if request.method == "POST":
        settings = json_object(request) or {}
        if settings.get("reset"):
            State.__init__(state)
        with state.lock:
            if "auto_offers" in settings:
                state.auto_offers = list(settings["auto_offers"])
            if "seed_users" in settings:
                seed_users(settings["seed_users"])
            if "add_offer" in settings:
                result["offer"] = add_offer(settings["add_offer"])
            if "redeem" in settings:
                redeem(str(settings["redeem"]))
            if "fail_after_reads" in settings:
                state.fail_after_reads = int(settings["fail_after_reads"])
            if "unknown_user_404" in settings:
                state.unknown_user_404 = bool(settings["unknown_user_404"])
            if "lose_answer_next" in settings:
                state.lose_answer_next = int(settings["lose_answer_next"])
            state.set_failure(settings)
    with state.lock:
        return JsonResponse(
            {
                **result,
                "users": len(state.users),
                "forgotten": len(state.forgotten),
                "offers": sum(len(w) for w in state.wallets.values()),
                "wallet_reads": state.wallet_reads,
                "transactions": len(state.transactions),
                "fail": state.fail,
                "fail_times": state.fail_times,
            }
        )


urlpatterns = [
    path("priv/v1/apps/<str:api_key>/users", users),
    path("priv/v1/apps/<str:api_key>/users/<str:user_id>", user),
    path("priv/v1/apps/<str:api_key>/users/<str:user_id>/campaigns", user_campaigns),
    path("priv/v1/apps/<str:api_key>/external/users/<str:external_id>", external_user),
    path("priv/v1/apps/<str:api_key>/external/users/<str:external_id>/campaigns", external_campaigns),
    path("api/2.0/offers/get_user_offers", offers_view),
    path("api/2.0/send_transaction", transactions_view),
    path("_control", control),
]
