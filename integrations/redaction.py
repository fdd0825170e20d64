"""Redaction: what keeps secrets and authorization headers out of logs, recorded vendor calls and alerts.

Two nets: patterns (Authorization headers, bearer/basic credentials, `password=...`-style pairs) and the exact
secret values the process has decrypted, which are registered here as they are read from the database. The project's
logging filter and error-report hooks (portal/logging.py) apply it; the way out (http.py) and crypto.py feed it.
"""

from __future__ import annotations

import base64
import functools
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
# Shorter values are never redacted: "ask" or "loyal" would take ordinary words out of every log line.
_MIN_SECRET_LENGTH = 6
# Values shorter than this are redacted only as whole tokens (not inside a word: a secret "basket" leaves
# "basketball" alone), and only as they are: their encoded forms are short enough to be found by chance.
_SHORT_SECRET_LENGTH = 8

_known_secrets: set[str] = set()
# Values redacted only while some work runs (secret_values_during), counted: one registered by two threads at once
# stays redacted until both are done.
_passing_secrets: Counter[str] = Counter()
_lock = threading.Lock()

_PATTERNS = [
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:bearer|basic|token)?\s*[^\s'\",}]+"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)(['\"]?(?:password|passwd|secret|client_?secret|api_?key|apikey|passkey|token|access_?token)"
        r"['\"]?\s*[:=]\s*['\"]?)[^\s'\",&}]+"
    ),
]


# The unguessable part of a callback URL is a credential too (Django logs 404s and 401s with the path).
_CALLBACK_TOKEN = re.compile(r"(/api/webhooks/[a-z_]+/)[^/\s'\"]+")


_LOWER_HEX = re.compile(r"%[0-9A-F]{2}")


def url_encoded_forms(value: str) -> set[str]:
    """How a value reads once percent-encoded by anything on the way: quote (path, with and without "/" and "@"
    escaped), quote_plus (query strings and forms, as `Redactor.url` re-encodes them), in upper- and lower-case hex."""
    forms = {
        quote(value, safe=""),
        quote(value),
        quote(value, safe="@"),
        quote_plus(value),
        quote_plus(value, safe="[]"),
    }
    return forms | {_LOWER_HEX.sub(lambda m: m.group(0).lower(), form) for form in forms}


def base64_forms(value: str) -> set[str]:
    """The value base64-encoded, standard and URL-safe alphabets, padded and not (a vendor echoing a credential it
    decoded, or a JWT-style encoding). The base64 of an HTTP Basic `user:secret` pair is not one of these (it depends on
    the user and the alignment): vendors that use Basic add that pair's encoding themselves (VibesAPI, SessionMAPI)."""
    raw = value.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return encoded | {form.rstrip("=") for form in encoded}


@functools.lru_cache(maxsize=256)
def secret_forms(values: tuple[str, ...]) -> tuple[str, ...]:
    """Every form in which these secret values may be written where a call is recorded: as they are, URL-encoded
    and base64-encoded. Cached: the same connection's secrets are expanded once, not for every recorded text."""
    forms: set[str] = set()
    for value in values:
        if len(value) >= _SHORT_SECRET_LENGTH:
            forms |= {value, *url_encoded_forms(value), *base64_forms(value)}
        elif len(value) >= _MIN_SECRET_LENGTH:
            forms.add(value)  # a short secret: as a whole token only (redact_text)
    return tuple(sorted(forms, key=len, reverse=True))


@functools.lru_cache(maxsize=256)
def _whole_token(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])")


def _redacted(text: str, secret: str) -> str:
    if len(secret) < _SHORT_SECRET_LENGTH:
        return _whole_token(secret).sub(REDACTED, text) if len(secret) >= _MIN_SECRET_LENGTH else text
    return text.replace(secret, REDACTED)


def register_secret_values(values: Iterable[object]) -> None:
    """Remember secret values so that any log line containing one is redacted."""
    kept = tuple(v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH)
    fresh = set(secret_forms(kept))  # a key may reach a log line URL-encoded (a request line) or base64-encoded
    if fresh - _known_secrets:
        with _lock:
            _known_secrets.update(fresh)


@contextmanager
def secret_values_during(values: Iterable[object]) -> Iterator[None]:
    """Redact these values from log lines while the block runs (personal data passing through, such as an e-mail
    address in a URL path), without keeping them for the life of the process as register_secret_values does."""
    passing = sorted({v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH})
    with _lock:
        _passing_secrets.update(passing)
    try:
        yield
    finally:
        with _lock:
            _passing_secrets.subtract(passing)
            for value in passing:
                if _passing_secrets[value] <= 0:
                    del _passing_secrets[value]


def redact_text(text: str, extra_secrets: Iterable[str] = ()) -> str:
    if _passing_secrets:
        with _lock:  # copied under the lock: another thread may be adding or removing values
            extra_secrets = [*extra_secrets, *_passing_secrets]
    for secret in sorted({*_known_secrets, *extra_secrets}, key=len, reverse=True):
        if secret and secret in text:
            text = _redacted(text, secret)
    text = _CALLBACK_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    text = _PATTERNS[0].sub(lambda m: m.group(1) + REDACTED, text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _PATTERNS[2].sub(lambda m: m.group(1) + REDACTED, text)
