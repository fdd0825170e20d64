"""Strings in a parsed JSON delivery that the database cannot hold.

JSON may escape a lone UTF-16 surrogate (`"\\ud800"`), and Python's json module also decodes one sent as raw bytes
(it reads bytes with `surrogatepass`). Such a string cannot be encoded as UTF-8, so neither SQLite nor PostgreSQL
text can store it, nor can a page show it; and PostgreSQL text cannot hold NUL (`"\\u0000"`) either. Callback
parsers refuse a delivery carrying either anywhere, keys included, at receipt, so nothing fails later in processing.
"""

from __future__ import annotations

from typing import Any

# Deeper than this is not walked: json.loads has already refused what would overflow the stack, and no vendor's
# payload nests more than a few levels.
MAX_DEPTH = 64


def unstorable_string_reason(value: Any) -> str | None:
    """Why a parsed JSON value holds a string the database cannot store, naming where (`subscription.person.id`);
    None when every string is storable."""
    return _reason(value, "", 0)


def _reason(value: Any, where: str, depth: int) -> str | None:
    if isinstance(value, str):
        return _string_reason(value, where or "the body")
    if depth >= MAX_DEPTH:
        return f"{where or 'the body'} is nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, dict):
        for key, item in value.items():
            if (reason := _string_reason(key, f"a key in {where or 'the body'}")) is not None:
                return reason
            if (reason := _reason(item, f"{where}.{key}" if where else key, depth + 1)) is not None:
                return reason
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (reason := _reason(item, f"{where}[{index}]", depth + 1)) is not None:
                return reason
    return None


def _string_reason(text: str, where: str) -> str | None:
    if "\x00" in text:
        return f"{clipped(where)} contains a NUL character"
    try:
        text.encode("utf-8")  # the C codec finds a surrogate far faster than a loop over the characters
    except UnicodeEncodeError:
        return f"{clipped(where)} contains a lone surrogate (not valid Unicode)"
    return None


def clipped(where: str, limit: int = 120) -> str:
    """A path made of the sender's keys, kept short enough for a reason."""
    return where if len(where) <= limit else f"{where[: limit - 1]}…"
