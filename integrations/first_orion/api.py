"""First Orion ENGAGE's federated API as seed 002 documents it. HTTP only: no ORM here.

Quirks worth knowing:
- The token endpoint wants `X-Federated-Purpose: inform`; a missing or wrong client id/secret is answered 500 with
  `"accessToken": null` ("Failed to grant access token"): bad credentials, not an outage.
- A batch push can fail with HTTP 200: the body then says "Not allowed to use one or more anumbers" / "Batch push
  could not complete push successfully" instead of `"response": "success"`.
- The seed's examples send `ttlSeconds` and `keepAfterCall` as strings ("3600", "false"): sent as shown.
- A batch push is not safe to repeat (the phones would be pushed twice): only a refusal (401, 429, 503) or a call
  that never left is sent again; a lost answer is uncertain.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import requests

from integrations.http import AuthError, Rejected, VendorAPI, VendorError

TOKEN_PATH = "/federated/content/v2/token"
HEALTH_PATH = "/federated/content/v2/token/health"
BATCH_PATH = "/federated/outbound/v2/batch"
# Documented lifetime; a token whose JWT says it expires sooner is believed...
TOKEN_LIFETIME_SECONDS = 15 * 60
# ...unless it says (almost) already: that is our clock ahead of First Orion's, not a token worth one call. Believing
# it would fetch a new token on every call; with the documented lifetime, a token that really expired gets a 401
# and is replaced once.
MIN_BELIEVED_LIFETIME_SECONDS = 10
UPLOAD_HINT = (
    "Upload these numbers in the Branded Communication Content Portal (aNumbers) and assign them to the program, "
    "then push again."
)


class BadCredentials(AuthError):
    """The token endpoint's 500 with a null accessToken: the client id or secret is wrong."""

    default_hint = (
        "First Orion refused to grant a token: check the client id (connection setting) and client secret delivered "
        "by First Orion, then verify the connection again."
    )


class TokenExpired(AuthError):
    """401 on a call with a token: it expired or was revoked; a new token is fetched once. An ordinary event, so it
    does not count against the connection (only TokenRefused, a 401 to a token just issued, does)."""

    default_hint = "The access token was refused; the portal fetches a new one and retries once."
    counts_against_connection = False


class TokenRefused(AuthError):
    """401 to a token First Orion has just issued: the credentials no longer work (revoked access, wrong
    environment). Counts against the connection, which turns failing and alerts."""

    default_hint = (
        "First Orion refused a token it had just granted: check with First Orion that the client id's access is "
        "enabled for this environment, then verify the connection again."
    )


class NumbersNotAllowed(Rejected):
    """HTTP 200 whose body says the aNumbers are not the account's: nothing was pushed."""

    default_hint = UPLOAD_HINT


class ProgramMisconfigured(Rejected):
    default_hint = (
        "First Orion says the program is not set up correctly: check the program content (assets, content, aNumbers) "
        "in the Branded Communication Content Portal and its UUID here."
    )


class MissingANumbers(Rejected):
    default_hint = (
        "First Orion needs the program content's aNumbers or a valid aNumber group UUID: correct the program content "
        "in the portal (Outbound Calling Numbers → Grouping Numbers for the group's UUID)."
    )


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    lifetime_seconds: float
    request_id: str


@dataclass(frozen=True)
class BatchAnswer:
    request_id: str


def jwt_lifetime(token: str, now: float | None = None) -> float | None:
    """Seconds until the `exp` claim of a JWT-shaped token, read without verifying (the vendor verifies it; we only
    want to know when to refresh). None when the token carries no readable expiry."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = float(payload["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    return exp - (time.time() if now is None else now)


def believed_lifetime(jwt_seconds: float | None) -> float:
    """How long a token is used: what its JWT says, at most the documented 15 minutes, and the documented 15 minutes
    when the JWT says it has (nearly) expired already (clock skew) or says nothing."""
    if jwt_seconds is None or jwt_seconds < MIN_BELIEVED_LIFETIME_SECONDS:
        return TOKEN_LIFETIME_SECONDS
    return min(jwt_seconds, TOKEN_LIFETIME_SECONDS)


def batch_body(
    destinations: list[dict[str, Any]],
    *,
    a_numbers: list[str],
    a_number_group_id: str,
    ttl_seconds: int,
    keep_after_call: bool,
    not_before: datetime | None = None,
) -> dict[str, Any]:
    """The batch push body in the seed's order: destinations, then aNumbers OR aNumberGroupId, notBefore, ttl."""
    body: dict[str, Any] = {"destinations": destinations}
    if a_number_group_id:
        body["aNumberGroupId"] = a_number_group_id
    else:
        body["aNumbers"] = a_numbers
    if not_before is not None:
        body["notBefore"] = not_before.strftime("%Y-%m-%dT%H:%M:%SZ")
    body["ttlSeconds"] = str(ttl_seconds)
    body["keepAfterCall"] = "true" if keep_after_call else "false"
    return body


class FirstOrionAPI(VendorAPI):
    vendor = "First Orion"

    def __init__(self, base_url: str, *, client_id: str, client_secret: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.client_id = client_id
        self.client_secret = client_secret
        self.connection_secrets = self.redactor.values
        self.tokens: tuple[str, ...] = ()

    def remember_secret(self, value: str) -> None:
        """A token is a secret too: redacted from this API's call rows and error texts wherever it appears. Only the
        current and the previous token are kept (an answer may still echo the one just replaced): every refresh
        brings a new one, and a process-wide list would grow forever. Log lines need no list: the token only
        travels in the Authorization header and the accessToken field, which the log patterns redact."""
        if value and value not in self.tokens:
            self.tokens = (*self.tokens, value)[-2:]
            self.redactor.values = (*self.connection_secrets, *self.tokens)

    def error_for(self, response: requests.Response) -> VendorError | None:
        path = urlparse(response.request.url or "").path if response.request else ""
        body = self._json(response)
        if path.endswith(TOKEN_PATH) and response.status_code == 500 and body.get("accessToken", "") is None:
            message = str(body.get("message") or "Failed to grant access token")
            return BadCredentials(self.vendor, message, status=500, code=str(body.get("errorCode", "")))
        if path.endswith(BATCH_PATH):
            return self._batch_error(response, body)
        error = super().error_for(response)
        if isinstance(error, AuthError) and response.status_code == 401:
            return TokenExpired(self.vendor, error.message, status=401)
        return error

    def _batch_error(self, response: requests.Response, body: dict[str, Any]) -> VendorError | None:
        error = self._batch_error_kind(response, body)
        if error is not None:
            # First Orion's id of the failed request, for the batch row and a support ticket. Set on whichever kind
            # of VendorError it is (shared classes that do not declare it); flows.py reads it with getattr.
            error.request_id = str(body.get("requestId") or "")  # type: ignore[attr-defined]
        return error

    def _batch_error_kind(self, response: requests.Response, body: dict[str, Any]) -> VendorError | None:
        status = response.status_code
        said = " ".join(str(body.get(k) or "") for k in ("response", "message")).strip()
        code = str(body.get("errorCode") or "")
        if status == 200:
            if str(body.get("response", "")).lower() == "success":
                return None
            # The 200 with an error is the aNumbers one, whether or not its "response" names them: some answers carry
            # only the message "Batch push could not complete push successfully".
            if "anumber" in said.lower() or "could not complete push" in said.lower():
                return NumbersNotAllowed(self.vendor, said, status=200, code=code)
            return Rejected(self.vendor, said or "the batch push did not succeed", status=200, code=code)
        if status == 400 and "program setup" in said.lower():
            return ProgramMisconfigured(self.vendor, said, status=400, code=code)
        if status == 400 and "anumber" in said.lower():
            return MissingANumbers(self.vendor, said, status=400, code=code)
        error = super().error_for(response)
        if isinstance(error, AuthError) and status == 401:
            return TokenExpired(self.vendor, error.message, status=401)
        return error

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    # The calls --------------------------------------------------------------------------------------------------

    def get_token(self) -> IssuedToken:
        """A new access token. A POST with no side effect but a token, so it is safe to repeat."""
        body = self.request_json(
            "POST",
            TOKEN_PATH,
            json_body={"clientId": self.client_id, "clientSecret": self.client_secret},
            headers={"Content-Type": "application/json", "X-Federated-Purpose": "inform"},
            safe_to_repeat=True,
        )
        token = str((body or {}).get("accessToken") or "")
        if not token:
            raise BadCredentials(self.vendor, "the token endpoint answered without an accessToken")
        self.remember_secret(token)
        return IssuedToken(token, believed_lifetime(jwt_lifetime(token)), str(body.get("requestId") or ""))

    def token_health(self, token: str) -> str:
        """First Orion's word on a token ("Healthy"); a 401 means it expired."""
        self.remember_secret(token)
        body = self.request_json(
            "GET",
            HEALTH_PATH,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        return str((body or {}).get("message") or "")

    def push_batch(
        self,
        token: str | Callable[[], str],
        program_content_uuid: str,
        body: dict[str, Any],
        *,
        leaving: Callable[[], None] | None = None,
        not_acted_on: Callable[[], None] | None = None,
    ) -> BatchAnswer:
        """Push one batch. Not safe to repeat: a lost answer raises an error with `uncertain` set.

        `token` is a token, or how to take one as the request leaves: once the rate limit has let it go, so the
        token is the one current then, not one refused while the call waited. `leaving` then records that the
        batch is on its way (it raises to stop the call); the order is slot, token, record, send. `not_acted_on`
        undoes that record while a 429 or a 503 waits to be tried again."""
        take_token = token if callable(token) else lambda: token

        def before_send(prepared: requests.PreparedRequest) -> None:
            taken = take_token()
            self.remember_secret(taken)
            prepared.headers["Authorization"] = f"Bearer {taken}"
            if leaving is not None:
                leaving()

        answer = self.request_json(
            "POST",
            BATCH_PATH,
            params={"programContentUuid": program_content_uuid},
            json_body=body,
            headers={"Content-Type": "application/json"},
            safe_to_repeat=False,
            before_send=before_send,
            not_acted_on=not_acted_on,
        )
        return BatchAnswer(str((answer or {}).get("requestId") or ""))
