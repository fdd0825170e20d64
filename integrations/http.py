"""The one way out: every outbound vendor call goes through `VendorAPI.request`.

It owns what every vendor needs and no vendor should rewrite: a pooled `requests.Session`, connect and read
timeouts, a client-side rate limit per connection, retries with exponential backoff and full jitter (only where a
retry cannot do harm), Retry-After and vendor rate-limit headers, a small typed error hierarchy that the admin can
explain, and a call record per attempt with secrets redacted before it leaves this module.

Vendor API classes (integrations/<vendor>/api.py) subclass `VendorAPI`, take their configuration as arguments and
know nothing of the ORM; the call log they write to is passed in (see integrations/connections.py).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests
from django.conf import settings
from urllib3.exceptions import NameResolutionError, NewConnectionError

from integrations.redaction import REDACTED, redact_text, secret_forms

MAX_LOGGED_BODY = 20_000
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
# Answers after which the request may still have been acted on (the gateway or the app failed mid-way).
UNCERTAIN_STATUSES = frozenset({500, 502, 504})


# --- Errors -------------------------------------------------------------------------------------------------


class VendorError(Exception):
    """A vendor call that did not succeed. `hint` tells an admin what to do next."""

    kind = "error"
    # Whether this error says something about the connection itself (credentials, reachability), so that
    # repeated ones mark it failing. A rejected request is the request's fault, not the connection's.
    counts_against_connection = True
    # Whether the request may have reached the vendor and been acted on with no answer saying so (a read timeout,
    # a connection reset after sending, a gateway 502/504, a 500). For a call that is not safe to repeat this means
    # "uncertain": never sent again automatically. False for what never left or what the vendor refused.
    uncertain = False
    default_hint = "Try again later; if it keeps happening, check the vendor's status page."

    def __init__(
        self,
        vendor: str,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        body: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.message = message
        self.status = status
        self.code = code
        self.body = body
        self.hint = hint or self.default_hint

    def __str__(self) -> str:
        parts = [f"{self.vendor}: {self.message}"]
        if self.status is not None:
            parts.append(f"(HTTP {self.status}{', code ' + self.code if self.code else ''})")
        return " ".join(parts)

    @property
    def for_admin(self) -> str:
        return f"{self} — {self.hint}"

    @property
    def sentence(self) -> str:
        """The vendor's words closed as a sentence, for a text that goes on after them: a message that already ends
        with a stop ("Member not found.") gets no second one."""
        return self.message if self.message.endswith((".", "!", "?")) else f"{self.message}."


class AuthError(VendorError):
    kind = "auth"
    default_hint = "Check the connection's credentials in the admin and verify the connection again."


class RateLimited(VendorError):
    kind = "rate_limited"
    counts_against_connection = False
    default_hint = "The vendor is throttling calls; the job will retry later. Lower the connection's rate limit."

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class Unavailable(VendorError):
    kind = "unavailable"
    default_hint = "The vendor could not be reached or failed; try again in a few minutes."


class VendorTimeout(Unavailable):
    kind = "timeout"
    default_hint = "The vendor did not answer in time; try again in a few minutes."


class Rejected(VendorError):
    """The vendor refused this request and said why (its code and message are kept)."""

    kind = "rejected"
    counts_against_connection = False
    default_hint = "Correct the data the vendor named and try again."


class ForbiddenDestination(VendorError):
    """A request aimed anywhere but the connection's own base URL (it would carry the credentials there)."""

    kind = "forbidden_destination"
    counts_against_connection = False
    default_hint = "Only a site admin sets where a connection sends its calls (environment and base URL)."


class RateLimitUnknown(Unavailable):
    """The shared rate limit could not be read (the cache is unreachable), so the call was held back: nothing left,
    and the work waits for a later run. The vendor is not at fault."""

    kind = "rate_limit_unknown"
    counts_against_connection = False
    default_hint = "The shared cache (Redis) that keeps the rate limit is unreachable; the call will be tried later."


class NotFound(Rejected):
    kind = "not_found"
    default_hint = "The vendor has no such record."


def never_connected(exc: requests.ConnectionError) -> bool:
    """Whether a connection error happened before any byte of the request left (refused, unresolvable host), as
    opposed to a connection dropped after the request was sent."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | NameResolutionError) or isinstance(exc, requests.ConnectTimeout)


def connection_failure(exc: requests.ConnectionError) -> str:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return type(reason or exc).__name__


class UnsafePathSegment(Rejected):
    """A value that cannot be one segment of a URL path ("", "." or ".."), refused before anything is sent."""

    kind = "unsafe_path_segment"
    default_hint = "Correct the id or key: it names a record at the vendor, and '', '.' and '..' name none."


# Segments that escaping cannot make harmless. Dot segments are not special characters, so quote() leaves them as they
# are, and percent-encoding them (%2E%2E) is not enough: RFC 3986 lets a server decode %2E before it removes dot
# segments, and urllib3 itself removes a literal `..` before sending (`/users/..` leaves as `/`). An empty segment
# turns `/users/{id}` into `/users/`, the collection. So these are refused, never sent in any form.
UNSAFE_SEGMENTS = frozenset({"", ".", ".."})


def path_segment(value: object, *, vendor: str = "Portal") -> str:
    """A value placed in a URL path as exactly one segment: `c#d@x.com`, `a/b` or `../x?y=` stay one segment, never a
    fragment, a query or another path; `.`, `..` and "" raise UnsafePathSegment (see UNSAFE_SEGMENTS).

    Everything but unreserved characters is percent-encoded; `@` stays as it is: it means nothing special in a path
    (RFC 3986 pchar) and vendors' e-mail ids are written with it."""
    text = str(value)
    if text in UNSAFE_SEGMENTS:
        raise UnsafePathSegment(
            vendor,
            f"refused to put {text!r} into a URL path: it would name another resource than a record's",
        )
    return quote(text, safe="@")


# --- Call records -------------------------------------------------------------------------------------------


# What became of a call, as the dashboard counts it and the vendor-call list filters it: answered ("ok"), answered
# as the caller expected though it is an error answer ("not_found", "refused"), or a failure — "uncertain" when the
# request may have been acted on with no answer saying so (VendorError.uncertain), else "failed".
OK, NOT_FOUND, REFUSED, FAILED, UNCERTAIN = "ok", "not_found", "refused", "failed", "uncertain"
CALL_OUTCOMES = (OK, NOT_FOUND, REFUSED, FAILED, UNCERTAIN)
# The error_type a call row holds for an expected answer, in place of the error's kind: the row, its rollup and the
# list's outcome filter tell an expected 404 from a failed one by this alone.
EXPECTED_NOT_FOUND, EXPECTED_REFUSAL = "expected_not_found", "expected_refusal"
EXPECTED_KINDS = {EXPECTED_NOT_FOUND: NOT_FOUND, EXPECTED_REFUSAL: REFUSED}


@dataclass(frozen=True)
class ExpectedAnswer:
    """A refusal the caller expects and handles as an answer, not a failure: a look-up's 404 before the record is
    created, "not a member", a verify probe that is meant to be refused. `VendorAPI.request(expected=…)` records
    such a call as "not found" (a NotFound) or "refused" (any other refusal) instead of failed; the caller still
    gets the error raised. Only refusals can be expected, never an outage or refused credentials; `code`, when set,
    is the one vendor code expected (an Annex Cloud 404 without AC1005 is a wrong URL, not "no such member")."""

    error: type[Rejected] = NotFound
    code: str = ""

    def matches(self, error: VendorError) -> bool:
        return isinstance(error, self.error) and (not self.code or error.code == self.code)

    @staticmethod
    def recorded_as(error: VendorError) -> str:
        return EXPECTED_NOT_FOUND if isinstance(error, NotFound) else EXPECTED_REFUSAL


# The usual expectation: a 404 (the vendor has no such record) is an answer.
NOT_FOUND_EXPECTED = ExpectedAnswer()


@dataclass
class CallRecord:
    method: str
    url: str
    attempt: int
    request_headers: dict[str, str]
    request_body: str
    status_code: int | None = None
    response_body: str = ""
    latency_ms: int = 0
    error_type: str = ""  # the error's kind, or EXPECTED_NOT_FOUND / EXPECTED_REFUSAL for an expected answer
    error: str = ""
    uncertain: bool = False  # the request may have been acted on with no answer saying so

    @property
    def outcome(self) -> str:
        """One of CALL_OUTCOMES."""
        if not self.error_type:
            return OK
        if self.error_type in EXPECTED_KINDS:
            return EXPECTED_KINDS[self.error_type]
        return UNCERTAIN if self.uncertain else FAILED


class CallLog(Protocol):
    def record(self, call: CallRecord) -> None: ...

    def succeeded(self) -> None: ...

    def failed(self, error: VendorError) -> None: ...


class NullCallLog:
    def record(self, call: CallRecord) -> None:
        pass

    def succeeded(self) -> None:
        pass

    def failed(self, error: VendorError) -> None:
        pass


@dataclass
class Redactor:
    """Removes secrets from what is recorded: named headers, query parameters and JSON fields, and any
    occurrence of a known secret value anywhere (a key in a URL path, an echo in a response body), as it is or
    URL-encoded or base64-encoded (`secret_forms`)."""

    headers: frozenset[str]
    query_params: frozenset[str]
    json_fields: frozenset[str]
    values: tuple[str, ...] = ()

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        query = [(k, REDACTED if k.lower() in self.query_params else v) for k, v in parse_qsl(parts.query, True)]
        return self.text(urlunsplit(parts._replace(query=urlencode(query, safe="[]"))))

    def header_map(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {k: REDACTED if k.lower() in self.headers else self.text(str(v)) for k, v in headers.items()}

    def body(self, body: bytes | str | None) -> str:
        if not body:
            return ""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        with contextlib.suppress(ValueError):
            text = json.dumps(self._redact_json(json.loads(text)))
        return self.text(text)[:MAX_LOGGED_BODY]

    def text(self, text: str) -> str:
        # Each secret also in its URL-encoded and base64 forms: a key with "+" reads "%2B" in a recorded URL.
        return redact_text(text, secret_forms(tuple(self.values)))

    def _redact_json(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: REDACTED if k.lower() in self.json_fields and v else self._redact_json(v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._redact_json(v) for v in value]
        return value


# --- Client-side rate limit ----------------------------------------------------------------------------------


class RateLimiter(Protocol):
    def acquire(self) -> float:
        """Wait until one more call is allowed; returns the seconds waited. Raises `LimitUnknown` when the limit
        cannot be read for longer than the limiter is willing to wait."""
        ...


class LimitUnknown(Exception):
    """A rate limiter could not tell whether one more call is allowed (its shared count is unreachable)."""


class TokenBucket:
    """Allows `rate` calls per second on average, in bursts of at most `burst`. Thread-safe."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is free; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait:
            time.sleep(wait)
        return wait


_buckets: dict[str, TokenBucket] = {}
_buckets_lock = threading.Lock()


def shared_rate_limiter(key: str, rate: float) -> TokenBucket:
    """One bucket per key (a connection) in this process, shared by every API object built for it."""
    with _buckets_lock:
        bucket = _buckets.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = _buckets[key] = TokenBucket(rate)
        return bucket


_local = threading.local()


def pooled_session() -> requests.Session:
    """One session per thread, so connections to a vendor are reused across calls and API objects."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


# --- The base vendor API ---------------------------------------------------------------------------------------


def default_backoff_base() -> float:
    return settings.VENDOR_RETRY_BACKOFF_SECONDS


@dataclass
class RetryPolicy:
    max_attempts: int = 4
    backoff_base: float = field(default_factory=default_backoff_base)
    backoff_cap: float = 20.0
    # A Retry-After longer than this is not slept through inside a request: the error goes up with retry_after
    # so that the job can be retried later instead of holding a worker.
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def backoff(self, attempt: int) -> float:
        """Full jitter: a random delay up to base·2^(attempt-1), capped."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))


class VendorAPI:
    """Base of every vendor API class. Subclasses set `vendor`, add auth in `auth_headers`, and read the vendor's
    error bodies in `error_for`."""

    vendor: ClassVar[str] = "vendor"
    redact_headers: ClassVar[frozenset[str]] = frozenset(
        {"authorization", "x-api-key", "cookie", "proxy-authorization"}
    )
    redact_query_params: ClassVar[frozenset[str]] = frozenset({"passkey", "apikey", "api_key", "token", "key"})
    # Vendors with per-endpoint limits name them here (requests per second); calls pass `rate_limit_key`.
    endpoint_rate_limits: ClassVar[dict[str, float]] = {}
    redact_json_fields: ClassVar[frozenset[str]] = frozenset(
        {"password", "secret", "clientsecret", "client_secret", "accesstoken", "access_token", "token", "api_key"}
    )

    def __init__(
        self,
        base_url: str,
        *,
        secret_values: Iterable[str] = (),
        call_log: CallLog | None = None,
        rate_limiter: RateLimiter | None = None,
        endpoint_rate_limiters: Mapping[str, RateLimiter] | None = None,
        connection_limit_on_published_endpoints: bool = True,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 15.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.call_log: CallLog = call_log or NullCallLog()
        self.rate_limiter = rate_limiter
        self.endpoint_rate_limiters = dict(endpoint_rate_limiters or {})
        self.connection_limit_on_published_endpoints = connection_limit_on_published_endpoints
        self.retry = retry or RetryPolicy()
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or pooled_session()
        self.redactor = Redactor(
            headers=self.redact_headers,
            query_params=self.redact_query_params,
            json_fields=self.redact_json_fields,
            values=tuple(v for v in secret_values if v),
        )

    # Hooks for subclasses ----------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {}

    def error_for(self, response: requests.Response) -> VendorError | None:
        """The error a response means, or None for success. Vendors whose errors can come with HTTP 200 extend
        this to read the body."""
        status = response.status_code
        if status < 400:
            return None
        message = self.error_message(response) or response.reason or "error"
        body = self.redactor.body(response.content)
        if status in (401, 403):
            return AuthError(self.vendor, message, status=status, body=body)
        if status == 429:
            return RateLimited(self.vendor, message, status=status, body=body, retry_after=self.retry_after(response))
        if status >= 500:
            return Unavailable(self.vendor, message, status=status, body=body)
        if status == 404:
            return NotFound(self.vendor, message, status=status, body=body)
        return Rejected(self.vendor, message, status=status, body=body)

    def error_message(self, response: requests.Response) -> str:
        """The vendor's own words for an error, from common body shapes."""
        try:
            payload = response.json()
        except ValueError:
            return response.text[:300].strip()
        if isinstance(payload, dict):
            for key in ("errorMessage", "message", "error_description", "error", "detail"):
                if payload.get(key):
                    return str(payload[key])
        return ""

    def retry_after(self, response: requests.Response) -> float | None:
        """Seconds to wait before retrying, from Retry-After (seconds or an HTTP date); vendors with their own
        rate-limit headers extend this."""
        value = response.headers.get("Retry-After")
        if not value:
            return None
        if value.strip().isdigit():
            return float(value)
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):  # neither seconds nor a date: as if the vendor had said nothing
            return None
        return max(0.0, parsed.timestamp() - time.time())

    # The call ---------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        safe_to_repeat: bool | None = None,
        rate_limit_key: str | None = None,
        before_send: Callable[[requests.PreparedRequest], None] | None = None,
        not_acted_on: Callable[[], None] | None = None,
        expected: ExpectedAnswer | None = None,
    ) -> requests.Response:
        """Send one logical call, retrying where that is safe. `safe_to_repeat` defaults to whether the method is
        idempotent; a POST that the vendor deduplicates (an idempotency key) may pass True.

        `before_send` runs once the rate limit has let an attempt go, just before it leaves: the moment to take a
        short-lived token or to record that the call is leaving, so that nothing waits between that record and the
        call itself. Whatever it raises stops the call before anything is sent. `not_acted_on` runs when an attempt
        is known not to have been acted on (a 429, a 503, no connection) and the call waits to try again: the
        moment to undo that record, so that a process killed during the wait leaves nothing uncertain.

        `expected` names a refusal the caller handles as an answer (NOT_FOUND_EXPECTED for a look-up): its call is
        recorded and counted as "not found" or "refused", not failed. It is raised all the same."""
        method = method.upper()
        repeatable = method in IDEMPOTENT_METHODS if safe_to_repeat is None else safe_to_repeat
        url = self.url(path)
        all_headers = {"Accept": "application/json", **self.auth_headers(), **(headers or {})}
        data = None
        if json_body is not None:
            data = self.encode_json(json_body)
            all_headers.setdefault("Content-Type", "application/json")
        prepared = self.session.prepare_request(
            requests.Request(method, url, params=params, data=data, headers=all_headers)
        )
        limiters = self.limiters_for(rate_limit_key)
        error: VendorError | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            self._wait_for_limits(limiters)
            if before_send is not None:
                before_send(prepared)
            response, error, retry_allowed = self._attempt(prepared, attempt, repeatable, expected)
            if error is None and response is not None:
                self.call_log.succeeded()
                return response
            assert error is not None
            if not retry_allowed or attempt == self.retry.max_attempts:
                break
            delay = self._delay_before_retry(error, attempt)
            if delay is None:
                break
            if not_acted_on is not None and not error.uncertain:
                not_acted_on()
            self.retry.sleep(delay)
        assert error is not None
        self.call_log.failed(error)
        raise error

    def _wait_for_limits(self, limiters: list[RateLimiter]) -> None:
        try:
            for limiter in limiters:
                limiter.acquire()
        except LimitUnknown as exc:
            error = RateLimitUnknown(self.vendor, f"not sent: {exc}")
            self.call_log.failed(error)
            raise error from exc

    def limiters_for(self, rate_limit_key: str | None) -> list[RateLimiter]:
        """What a call waits for: its endpoint's published limit where the vendor publishes one, and the
        connection's own limit everywhere else — on a published endpoint too, when the connection's limit is one
        an admin chose rather than the default."""
        endpoint = self.endpoint_rate_limiters.get(rate_limit_key or "")
        if endpoint is None:
            return [self.rate_limiter] if self.rate_limiter is not None else []
        if self.rate_limiter is not None and self.connection_limit_on_published_endpoints:
            return [self.rate_limiter, endpoint]
        return [endpoint]

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise Rejected(self.vendor, "answered with a body that is not JSON", status=response.status_code) from exc

    def segment(self, value: object) -> str:
        """`value` as one segment of a URL path (see `path_segment`); `.`, `..` and "" are refused in this vendor's
        name. Every value an api.py puts into a path goes through here."""
        return path_segment(value, vendor=self.vendor)

    def url(self, path: str) -> str:
        """The URL of a path on the connection's base URL. Only site admins decide where a connection's secrets go
        (its base URL): a full URL to any other scheme, host or port is refused, never sent."""
        if "://" not in path and not path.startswith("//"):
            return f"{self.base_url}/{path.lstrip('/')}"
        target, base = urlsplit(path), urlsplit(self.base_url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise ForbiddenDestination(
                self.vendor,
                f"refused to call {target.scheme}://{target.netloc}: only {base.netloc} (the connection's base URL) "
                "may receive this connection's credentials",
            )
        return path

    def encode_json(self, body: Any) -> bytes:
        return json.dumps(body, separators=(",", ":")).encode()

    # Internals --------------------------------------------------------------------------------------------

    def _attempt(
        self, prepared: requests.PreparedRequest, attempt: int, repeatable: bool, expected: ExpectedAnswer | None = None
    ) -> tuple[requests.Response | None, VendorError | None, bool]:
        record = CallRecord(
            method=prepared.method or "",
            url=self.redactor.url(prepared.url or ""),
            attempt=attempt,
            request_headers=self.redactor.header_map(prepared.headers),
            request_body=self.redactor.body(prepared.body),
        )
        started = time.perf_counter()
        response: requests.Response | None = None
        error: VendorError | None
        try:
            response = self.session.send(prepared, timeout=self.timeout, allow_redirects=False)
        except requests.ConnectTimeout as exc:
            # Nothing reached the vendor: always safe to try again.
            error, retry_allowed = VendorTimeout(self.vendor, f"connection timed out ({exc.__class__.__name__})"), True
        except requests.ReadTimeout:
            error = VendorTimeout(self.vendor, f"no answer within {self.timeout[1]:g} s")
            error.uncertain, retry_allowed = True, repeatable
        except requests.ConnectionError as exc:
            sent = not never_connected(exc)
            what = "answer lost after the request was sent" if sent else "could not connect"
            error = Unavailable(self.vendor, f"{what}: {connection_failure(exc)}")
            error.uncertain = sent
            retry_allowed = repeatable or not error.uncertain
        else:
            error = self.error_for(response)
            if error is not None and response.status_code in UNCERTAIN_STATUSES:
                error.uncertain = True
            # A 429 or a 503 means the vendor did not process the request, so even a POST may be sent again.
            retry_allowed = isinstance(error, RateLimited) or (
                isinstance(error, Unavailable)
                and response.status_code in RETRYABLE_STATUSES
                and (repeatable or not error.uncertain)
            )
        record.latency_ms = int((time.perf_counter() - started) * 1000)
        if response is not None:
            record.status_code = response.status_code
            record.response_body = self.redactor.body(response.content)
        if error is not None:
            # The vendor's own words may echo a secret (a key in an error text): redacted before anyone stores,
            # shows or logs them.
            error.message = self.redactor.text(error.message)
            error.args = (error.message,)
            expected_here = expected is not None and expected.matches(error)
            record.error_type = ExpectedAnswer.recorded_as(error) if expected_here else error.kind
            record.error = self.redactor.text(str(error))
            record.uncertain = error.uncertain
        self.call_log.record(record)
        return response, error, retry_allowed

    def _delay_before_retry(self, error: VendorError, attempt: int) -> float | None:
        if isinstance(error, RateLimited) and error.retry_after is not None:
            if error.retry_after > self.retry.max_retry_after:
                return None
            return error.retry_after + random.uniform(0, self.retry.backoff_base)
        return self.retry.backoff(attempt)
