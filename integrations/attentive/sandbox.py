"""Attentive simulator: Attentive's documented contract, with the checks the real API makes.

Accepts the API key `sandbox-attentive-key` (a key ending in `-noscope` authenticates but may not touch
subscriptions) and the legacy messages token `sandbox-legacy-token`. Phones must be E.164, sign-up source ids
numeric. State lives in this process. `/_control` shows it (GET) and sets failures and latency (POST JSON:
{"fail": "401|403|429|500|slow", "fail_path": "messages", "times": 1, "latency_ms": 20, "lose_answer_every": 10,
"reset": true}). It also acts as Attentive's webhooks: {"webhook": {"token": <the connection's inbound token>,
"type": "sms.unsubscribed", "phone": "+1…"}} changes the subscriber here as the event says and POSTs the event,
signed with WEBHOOK_SIGNING_KEY, to the portal's receiver for that connection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt

from integrations.sandbox.base import FailureKnobs, failure_answer, json_object, simulator
from members.phones import is_e164

API_KEY = "sandbox-attentive-key"
LEGACY_TOKEN = "sandbox-legacy-token"
# The signing key of the webhook "Attentive" sends to the portal (a site admin pastes it into the connection).
WEBHOOK_SIGNING_KEY = "sandbox-attentive-webhook-signing-key"
# What the demo client's connection holds (seed_demo).
DEMO_SECRETS = {"api_key": API_KEY, "legacy_token": LEGACY_TOKEN, "webhook_signing_key": WEBHOOK_SIGNING_KEY}
CHANNELS = ("TEXT", "EMAIL")
# What each webhook event does to the subscriber here: (channel, subscribed afterwards).
WEBHOOK_EVENTS = {
    "sms.subscribed": ("TEXT", True),
    "sms.unsubscribed": ("TEXT", False),
    "email.unsubscribed": ("EMAIL", False),
}
# The knobs the /sandbox/ page lists (path under this simulator, what it does).
CONTROLS = (
    (
        "_control",
        "GET: the simulator's state (subscribed phones, messages received, the busiest second, failures set). "
        'POST JSON: {"fail": "401|403|429|500|slow", "fail_path": "messages", "times": 1} makes the next `times` '
        'calls (to paths containing `fail_path`, or any) fail; {"latency_ms": 20} delays every answer; '
        '{"lose_answer_every": 10} answers every 10th accepted message 504 although it was sent (a lost answer); '
        '{"reset": true} forgets everything. '
        '{"webhook": {"token": "<connection inbound token>", "type": "sms.unsubscribed", "phone": "+1…", '
        '"email": "…", "timestamp": <ms, default now>, "signing_key": "<default: the sandbox\'s>"}} acts as a STOP '
        "(or sms.subscribed, email.unsubscribed) at Attentive: the subscriber changes here and the signed event is "
        "POSTed to the portal's webhook URL for that connection; the answer shows the portal's reply.",
    ),
)


@dataclass
class State(FailureKnobs):
    subscribed: set[tuple[str, str]] = field(default_factory=set)  # (phone, channel)
    messages: list[dict[str, str]] = field(default_factory=list)
    message_times: list[float] = field(default_factory=list)
    already_subscribed_texts: int = 0
    accepted: int = 0
    # Every n-th accepted message is answered 504 although it was sent (drills of lost answers); 0 = never.
    lose_answer_every: int = 0
    # Webhook events sent to the portal, with the portal's answer status.
    webhooks_sent: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


state = State()


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"message": message}, status=status)


def injected_failure(name: str) -> HttpResponse | None:
    with state.lock:
        mode = state.take_failure(name)
    return failure_answer(mode, failure_in_attentives_words)


def failure_in_attentives_words(status: int) -> HttpResponse:
    reasons = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}
    response = error(status, reasons.get(status, "error"))
    if status == 429:
        response["x-ratelimit-limit"], response["x-ratelimit-remaining"] = "10", "0"
    return response


def bearer(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else ""


def endpoint(name: str, *, token: str = API_KEY, needs_scope: bool = True) -> Callable[[Any], Any]:
    """Common checks in the order Attentive makes them: latency, injected failure, auth, scope."""

    def wrap(view: Any) -> Any:
        @simulator
        def checked(request: HttpRequest) -> HttpResponse:
            if state.latency_ms:
                time.sleep(state.latency_ms / 1000)
            if (failure := injected_failure(name)) is not None:
                return failure
            key = bearer(request)
            if token == API_KEY and key.endswith("-noscope") and key.startswith(API_KEY):
                return error(403, "Forbidden: missing scope subscriptions:write") if needs_scope else view(request)
            if key != token:
                return error(401, "Unauthorized")
            return view(request)

        return checked

    return wrap


def body_with_user(request: HttpRequest) -> tuple[dict[str, Any], str, str] | JsonResponse:
    """The JSON body and its user's phone and e-mail, or the 400 Attentive answers."""
    body = json_object(request)
    if body is None:
        return error(400, "Body must be a JSON object")
    user = body.get("user")
    if not isinstance(user, dict) or not user.get("phone"):
        return error(400, "user.phone is required")
    if not is_e164(str(user["phone"])):
        return error(400, f"Invalid phone number {user['phone']}: use E.164, e.g. +17707651750")
    return body, str(user["phone"]), str(user.get("email", ""))


def channel_item(channel: str, key: str, value: Any) -> dict[str, Any]:
    return {"subscription": {"type": "MARKETING", "channel": channel}, key: value}


@endpoint("me", needs_scope=False)
def me(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"companyName": "Sandbox Outfitters", "domain": "sandbox.example", "contactEmail": "ops@sandbox.example"}
    )


@endpoint("subscriptions")
def subscriptions(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        return eligibility(request)
    if request.method != "POST":
        return error(405, "Method not allowed")
    parsed = body_with_user(request)
    if isinstance(parsed, JsonResponse):
        return parsed
    body, phone, email = parsed
    source = str(body.get("signUpSourceId", ""))
    if not source:
        return error(400, "signUpSourceId is required (or locale and subscriptionType)")
    if not source.isdigit():
        return error(400, f"Unknown signUpSourceId {source}")
    results = []
    with state.lock:
        for channel in CHANNELS if email else ("TEXT",):
            if (phone, channel) in state.subscribed:
                status = "ALREADY_SUBSCRIBED"
                if channel == "TEXT":
                    # The real Attentive texts the member "you are already subscribed" here.
                    state.already_subscribed_texts += 1
            else:
                state.subscribed.add((phone, channel))
                status = "NEWLY_CREATED"
            results.append(channel_item(channel, "subscriptionCreationStatus", status))
    return JsonResponse({"user": body["user"], "subscriptionResponses": results}, status=202)


def eligibility(request: HttpRequest) -> JsonResponse:
    phone = request.GET.get("phone", "")
    if not phone or not is_e164(phone):
        return error(400, f"Invalid phone number {phone}: use E.164")
    items = [
        channel_item(channel, "eligibility", {"isEligible": (phone, channel) not in state.subscribed})
        for channel in CHANNELS
    ]
    return JsonResponse({"subscriptionEligibilities": items})


@endpoint("unsubscribe")
def unsubscribe(request: HttpRequest) -> JsonResponse:
    parsed = body_with_user(request)
    if isinstance(parsed, JsonResponse):
        return parsed
    body, phone, _ = parsed
    channels = [s.get("channel") for s in body.get("subscriptions") or []] or list(CHANNELS)
    results = []
    with state.lock:
        for channel in channels:
            status = "NEWLY_UNSUBSCRIBED" if (phone, channel) in state.subscribed else "ALREADY_UNSUBSCRIBED"
            state.subscribed.discard((phone, channel))
            results.append(channel_item(channel, "subscriptionUnsubscribeStatus", status))
    return JsonResponse({"user": body["user"], "subscriptionResponses": results})


@endpoint("messages", token=LEGACY_TOKEN, needs_scope=False)
def messages(request: HttpRequest) -> JsonResponse:
    body = json_object(request)
    if body is None or not body.get("to") or not body.get("body"):
        return error(400, "to and body are required")
    if not is_e164(str(body["to"])):
        return error(400, f"Invalid phone number {body['to']}: use E.164")
    with state.lock:
        state.messages.append({"to": body["to"], "body": body["body"]})
        state.message_times.append(time.time())
        state.accepted += 1
        lose_answer = bool(state.lose_answer_every) and state.accepted % state.lose_answer_every == 0
    if lose_answer:
        # Accepted, but the answer is lost on the way back (a gateway gives up): the portal cannot know.
        return error(504, "Gateway Timeout")
    return JsonResponse(
        {
            "type": "v1",
            "to": body["to"],
            "body": body["body"],
            "skipFatigue": True,
            "createShortLink": False,
            "addSubscriber": "true",
        }
    )


# --- Acting as Attentive's webhooks -----------------------------------------------------------------------------


def webhook_event(event_type: str, *, phone: str, email: str = "", timestamp_ms: int | None = None) -> dict[str, Any]:
    """An event shaped as Attentive's webhooks send it."""
    return {
        "type": event_type,
        "timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        "company": {"display_name": "Sandbox Outfitters", "company_id": "sandbox-company"},
        "subscriber": {
            "external_id": int(hashlib.sha256(phone.encode()).hexdigest()[:12], 16),
            "phone": phone,
            "email": email,
            "external_identifiers": {"client_user_id": None, "custom_identifiers": []},
        },
        "creative": {"name": "Sandbox sign-up", "type": "SIGN_UP_UNIT", "subtype": "TEXT"},
        "subscription": {"type": "MARKETING"},
    }


def send_webhook(request: HttpRequest, order: dict[str, Any]) -> dict[str, Any]:
    """Apply the event here (a STOP unsubscribes TEXT, ...), then POST it signed to the portal's webhook URL for the
    connection whose token is given (on the host this simulator was reached at)."""
    event_type, phone = str(order.get("type", "")), str(order.get("phone", ""))
    if event_type not in WEBHOOK_EVENTS or not is_e164(phone) or not order.get("token"):
        return {"error": f"webhook needs token, type (one of {sorted(WEBHOOK_EVENTS)}) and an E.164 phone"}
    channel, subscribed = WEBHOOK_EVENTS[event_type]
    with state.lock:
        (state.subscribed.add if subscribed else state.subscribed.discard)((phone, channel))
    timestamp = order.get("timestamp")
    event = webhook_event(
        event_type, phone=phone, email=str(order.get("email", "")), timestamp_ms=int(timestamp) if timestamp else None
    )
    body = json.dumps(event).encode()
    key = str(order.get("signing_key") or WEBHOOK_SIGNING_KEY)
    url = request.build_absolute_uri(reverse("attentive-callback", args=[str(order["token"])]))
    headers = {
        "Content-Type": "application/json",
        "x-attentive-hmac-sha256": hmac.new(key.encode(), body, hashlib.sha256).hexdigest(),
    }
    answer = requests.post(url, data=body, headers=headers, timeout=30)
    sent = {"event": event, "status": answer.status_code, "answer": answer.text[:500]}
    with state.lock:
        state.webhooks_sent.append(sent)
    return sent


@csrf_exempt
def control(request: HttpRequest) -> JsonResponse:
    """Inspect the simulator (GET), set failures, latency, reset, or send a webhook event (POST)."""
    if request.method == "POST" and isinstance(order := (json_object(request) or {}).get("webhook"), dict):
        return JsonResponse({"webhook": send_webhook(request, order)})
    if request.method == "POST":
        settings = json_object(request) or {}
        with state.lock:
            if settings.get("reset"):
                state.subscribed.clear()
                state.messages.clear()
                state.message_times.clear()
                state.already_subscribed_texts = 0
                state.clear_failure()
                state.latency_ms = 0
                state.accepted, state.lose_answer_every = 0, 0
                state.webhooks_sent.clear()
            if "latency_ms" in settings:
                state.latency_ms = int(settings["latency_ms"])
            if "lose_answer_every" in settings:
                state.lose_answer_every = int(settings["lose_answer_every"])
            state.set_failure(settings)
    with state.lock:
        return JsonResponse(
            {
                "subscribed": sorted(f"{phone} {channel}" for phone, channel in state.subscribed),
                "messages": len(state.messages),
                "messages_by_phone": _count_by_phone(state.messages),
                "busiest_second": _busiest_second(state.message_times),
                "already_subscribed_texts": state.already_subscribed_texts,
                "webhooks_sent": [{"type": w["event"]["type"], "status": w["status"]} for w in state.webhooks_sent],
                "latency_ms": state.latency_ms,
                "fail": state.fail,
                "fail_times": state.fail_times,
            }
        )


def _busiest_second(times: list[float]) -> int:
    """The most messages received within any one second."""
    times, busiest, start = sorted(times), 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


def _count_by_phone(sent: list[dict[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in sent:
        counts[message["to"]] = counts.get(message["to"], 0) + 1
    return counts


urlpatterns = [
    path("v1/me", me),
    path("v1/subscriptions", subscriptions),
    path("v1/subscriptions/unsubscribe", unsubscribe),
    path("v1/subscriptions/messages", messages),
    path("_control", control),
]
