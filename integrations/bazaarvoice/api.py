"""Bazaarvoice Conversations API (v5.4), the reviews endpoint. HTTP only: no ORM here.

Quirks: the passkey is a query parameter (redacted from every recorded URL by `VendorAPI`, by name and by value);
the API answers many errors with HTTP 200 and `{"HasErrors": true, "Errors": [{"Code", "Message"}]}`, so the body is
always read; a 429 carries no Retry-After, only `X-Bazaarvoice-Quota-Reset` (the time left until the quota resets),
in whole seconds: the true time left is up to a second longer, so the wait is rounded up plus a second, and a reset
of "00:00:00" (or "0") still waits a second, never retried at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import requests

from integrations.http import AuthError, RateLimited, Rejected, RetryPolicy, Unavailable, VendorAPI, VendorError

API_VERSION = "5.4"
MAX_LIMIT = 100
MAX_OFFSET = 300_000
APPROVED_FILTER = "ModerationStatus:eq:APPROVED"
# When a 429 says nothing about the reset, wait this long before the next run tries again.
DEFAULT_QUOTA_WAIT_SECONDS = 60.0
QUOTA_RESET_HEADER = "X-Bazaarvoice-Quota-Reset"
# The header counts whole seconds (truncated): "59" may mean 59.9 s. Waiting the value rounded up plus this margin
# never calls before the reset; a pull started at hh:mm:59 otherwise met a second 429.
QUOTA_RESET_MARGIN_SECONDS = 1

# Bazaarvoice's documented error codes (Conversations API "Errors"), mapped to the portal's error kinds.
AUTH_CODES = frozenset({"ERROR_PARAM_INVALID_API_KEY", "ERROR_ACCESS_DENIED"})
RATE_CODES = frozenset({"ERROR_REQUEST_LIMIT_REACHED", "ERROR_THROTTLED"})
UNAVAILABLE_CODES = frozenset({"ERROR_UNKNOWN"})


def seconds_until_reset(value: str) -> float | None:
    """`X-Bazaarvoice-Quota-Reset` as seconds: plain seconds ("3540") or a duration ("00:59:00")."""
    value = (value or "").strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    if match := re.fullmatch(r"(\d+):(\d{2}):(\d{2})", value):
        hours, minutes, seconds = (int(part) for part in match.groups())
        return float(hours * 3600 + minutes * 60 + seconds)
    return None


def quota_wait(reset: float) -> float:
    """Seconds to wait for a quota that resets in `reset` whole seconds: rounded up, plus a second. Never 0, so the
    HTTP layer (which sleeps through no wait longer than 0 s here) never sends again at once."""
    return float(math.ceil(reset) + QUOTA_RESET_MARGIN_SECONDS)


class BazaarvoiceAPI(VendorAPI):
    vendor = "Bazaarvoice"

    def __init__(self, base_url: str, *, passkey: str, **kwargs: Any) -> None:
        # A 429 stops the pull until the quota resets (remembered by the flow); it is never slept through here.
        kwargs.setdefault("retry", RetryPolicy(max_retry_after=0.0))
        super().__init__(base_url, **kwargs)
        self.passkey = passkey

    def error_for(self, response: requests.Response) -> VendorError | None:
        if response.status_code == 429:
            return RateLimited(
                self.vendor,
                "the API key's quota is used up",
                status=429,
                body=self.redactor.body(response.content),
                retry_after=self.retry_after(response),
            )
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and payload.get("HasErrors"):
            return self.body_error(response, payload)
        return super().error_for(response)

    def body_error(self, response: requests.Response, payload: dict[str, Any]) -> VendorError:
        errors = [e for e in payload.get("Errors") or [] if isinstance(e, dict)]
        first = errors[0] if errors else {}
        code, message = str(first.get("Code") or "ERROR"), str(first.get("Message") or "error")
        status = response.status_code
        if code in AUTH_CODES:
            return AuthError(
                self.vendor,
                message,
                status=status,
                code=code,
                hint="Check the Conversations API passkey and the environment (staging or production) of the "
                "Bazaarvoice connection.",
            )
        if code in RATE_CODES:
            return RateLimited(self.vendor, message, status=status, code=code, retry_after=self.retry_after(response))
        if code in UNAVAILABLE_CODES:
            return Unavailable(self.vendor, message, status=status, code=code)
        return Rejected(self.vendor, message, status=status, code=code)

    def retry_after(self, response: requests.Response) -> float | None:
        reset = seconds_until_reset(response.headers.get(QUOTA_RESET_HEADER, ""))
        if reset is not None:
            return quota_wait(reset)
        return super().retry_after(response) or DEFAULT_QUOTA_WAIT_SECONDS

    # The calls ------------------------------------------------------------------------------------------

    def reviews(
        self, *, filters: Sequence[str] = (), sort: str = "", limit: int = MAX_LIMIT, offset: int = 0
    ) -> dict[str, Any]:
        """One page of reviews. Each filter is `Attribute:op:value`; repeated filters are ANDed."""
        if not 0 < limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
            raise ValueError(f"Limit must be 1 to {MAX_LIMIT} and Offset 0 to {MAX_OFFSET}")
        params: list[tuple[str, Any]] = [("apiversion", API_VERSION), ("passkey", self.passkey)]
        params += [("Filter", condition) for condition in filters]
        if sort:
            params.append(("Sort", sort))
        params += [("Limit", limit), ("Offset", offset)]
        answer = self.request_json("GET", "/data/reviews.json", params=params)
        if not isinstance(answer, dict) or not isinstance(answer.get("Results"), list):
            raise Rejected(self.vendor, "answered without a list of Results")
        return answer

    def check(self) -> int:
        """Side-effect free: one approved review at most (what the pull reads); returns TotalResults."""
        params = [("apiversion", API_VERSION), ("passkey", self.passkey), ("Filter", APPROVED_FILTER), ("Limit", 1)]
        answer = self.request_json("GET", "/data/reviews.json", params=params)
        return int((answer or {}).get("TotalResults") or 0) if isinstance(answer, dict) else 0
