"""Attentive's REST API as its documentation describes it. HTTP only: no ORM here.

Quirks worth knowing:
- Phones must be E.164; 10-digit national numbers, which the API rejects.
- Re-subscribing an existing TEXT subscriber makes Attentive text them "already subscribed", so subscribe is never
  repeated blindly (it is a POST, and only a 429 — which Attentive did not process — is sent again).
- Messages go out with a separate legacy token that Attentive activates on request; 401/403 there means exactly that.
- 429 comes with x-ratelimit-* headers and no Retry-After: the base class backs off exponentially with jitter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import requests

from integrations.http import UNSAFE_SEGMENTS, AuthError, UnsafePathSegment, VendorAPI, VendorError

DEFAULT_MESSAGES_PATH = "/v1/subscriptions/messages"
LEGACY_TOKEN_HINT = (
    "Attentive rejected the messages token: ask Attentive to activate the legacy messages token "
    "(legacyapi@attentivemobile.com), then enter it on the Attentive connection."
)


class LegacyTokenRejected(AuthError):
    default_hint = LEGACY_TOKEN_HINT


class MissingScope(AuthError):
    default_hint = (
        "The API key works but may not manage subscriptions: give the app write permission for Subscriptions in "
        "Attentive's Integrations tab, then verify again."
    )


@dataclass(frozen=True)
class ChannelResult:
    type: str
    channel: str
    status: str  # NEWLY_CREATED, ALREADY_SUBSCRIBED, NEWLY_UNSUBSCRIBED, ELIGIBLE, NOT_ELIGIBLE, ...


def is_plain_segment(segment: str) -> bool:
    """Neither empty nor a dot segment, also once percent-decoded (a server may decode %2E before resolving)."""
    return unquote(segment) not in UNSAFE_SEGMENTS


def user_payload(phone: str, email: str = "") -> dict[str, str]:
    user = {"phone": phone}
    if email:
        user["email"] = email
    return user


class AttentiveAPI(VendorAPI):
    vendor = "Attentive"
    # Attentive's published defaults: 150 req/s per endpoint, subscribe 10 req/s, unsubscribe 5 req/s.
    endpoint_rate_limits: ClassVar[dict[str, float]] = {
        "subscribe": 10.0,
        "unsubscribe": 5.0,
        "eligibility": 150.0,
        "messages": 150.0,
    }

    def __init__(
        self, base_url: str, *, api_key: str, legacy_token: str = "", messages_path: str = "", **kwargs: Any
    ) -> None:
        super().__init__(base_url, **kwargs)
        self.api_key = api_key
        self.legacy_token = legacy_token
        self.messages_path = messages_path or DEFAULT_MESSAGES_PATH

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def error_for(self, response: requests.Response) -> VendorError | None:
        """A 401/403 on the messages endpoint is about the legacy token, not the API key: say so (the connection's
        call log records this error, so the dashboard shows the instruction)."""
        error = super().error_for(response)
        if isinstance(error, AuthError) and self._is_messages_call(response.request):
            return LegacyTokenRejected(self.vendor, error.message, status=error.status, body=error.body)
        return error

    def _is_messages_call(self, request: requests.PreparedRequest) -> bool:
        return urlsplit(request.url or "").path.endswith(self.messages_path.rstrip("/"))

    def me(self) -> dict[str, Any]:
        """Who the key belongs to; no side effect on subscribers, so it is how a key is verified."""
        return self.request_json("GET", "/v1/me") or {}

    def eligibility(self, phone: str, email: str = "") -> list[ChannelResult]:
        params = user_payload(phone, email)
        body = self.request_json("GET", "/v1/subscriptions", params=params, rate_limit_key="eligibility") or {}
        return [
            ChannelResult(
                type=item.get("subscription", {}).get("type", ""),
                channel=item.get("subscription", {}).get("channel", ""),
                status="ELIGIBLE" if item.get("eligibility", {}).get("isEligible") else "NOT_ELIGIBLE",
            )
            for item in body.get("subscriptionEligibilities", [])
        ]

    def subscribe(self, phone: str, email: str, sign_up_source_id: str) -> list[ChannelResult]:
        payload = {"user": user_payload(phone, email), "signUpSourceId": sign_up_source_id}
        body = self.request_json("POST", "/v1/subscriptions", json_body=payload, rate_limit_key="subscribe") or {}
        return self._channel_results(body, "subscriptionCreationStatus")

    def unsubscribe(
        self, phone: str, email: str = "", subscriptions: list[dict[str, str]] | None = None
    ) -> list[ChannelResult]:
        """Without `subscriptions` Attentive unsubscribes the user from everything."""
        payload: dict[str, Any] = {"user": user_payload(phone, email)}
        if subscriptions:
            payload["subscriptions"] = subscriptions
        body = self.request_json(
            "POST", "/v1/subscriptions/unsubscribe", json_body=payload, rate_limit_key="unsubscribe"
        )
        return self._channel_results(body or {}, "subscriptionUnsubscribeStatus")

    def send_message(
        self, to: str, body: str, before_send: Callable[[requests.PreparedRequest], None] | None = None
    ) -> dict[str, Any]:
        """Send one SMS through the messages endpoint with the legacy token (`before_send`: see VendorAPI.request)."""
        if not self.legacy_token:
            raise LegacyTokenRejected(self.vendor, "no legacy messages token is set on the connection")
        response = self.request_json(
            "POST",
            self._messages_endpoint(),
            json_body={"to": to, "body": body},
            headers={"Authorization": f"Bearer {self.legacy_token}"},
            rate_limit_key="messages",
            before_send=before_send,
        )
        return response or {}

    def _messages_endpoint(self) -> str:
        """The messages path chosen in the settings (one of Attentive's documented paths). A value stored before the
        choice was enforced never climbs out of itself with the legacy token: a dot or empty segment, a query or a
        fragment is refused here (another host is refused by `url`)."""
        parts = urlsplit(self.messages_path)
        if parts.netloc:
            return self.messages_path
        segments = parts.path.strip("/").split("/")
        if "?" in self.messages_path or "#" in self.messages_path or not all(map(is_plain_segment, segments)):
            raise UnsafePathSegment(self.vendor, f"refused to send messages to {self.messages_path!r}: not a path")
        return self.messages_path

    @staticmethod
    def _channel_results(body: dict[str, Any], status_field: str) -> list[ChannelResult]:
        return [
            ChannelResult(
                type=item.get("subscription", {}).get("type", ""),
                channel=item.get("subscription", {}).get("channel", ""),
                status=item.get(status_field, ""),
            )
            for item in body.get("subscriptionResponses", [])
        ]
