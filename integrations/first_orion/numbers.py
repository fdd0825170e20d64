"""Numbers as First Orion takes them: E.164 by syntax (`+`, then 8 to 15 digits, the first not 0).

Seed 002 asks for "E.164 format" and nothing more. Whether a number can be dialled is a different question, answered
by the `phonenumbers` metadata, which lags behind real numbering plans and calls reserved ranges "invalid"
(`+15555550100` is E.164, yet `is_valid_number` says no). So syntax decides what is sent; "not valid for dialling"
is only a warning, shown where the push is confirmed and recorded with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

E164_SYNTAX = re.compile(r"\+[1-9]\d{7,14}")
# What people type around the digits of a number written in full: spaces, dashes, dots, brackets.
FORMATTING = re.compile(r"[\s\-.()]")
NOT_DIALLABLE = "not a valid number for dialling (pushed anyway: E.164 by syntax)"


class NotE164(ValueError):
    pass


@dataclass(frozen=True)
class PushNumber:
    e164: str
    diallable: bool


def is_e164_syntax(value: str) -> bool:
    """Exactly E.164 as written: `+` then 8-15 digits, no leading 0 after the `+`, nothing else."""
    return bool(E164_SYNTAX.fullmatch(value or ""))


def push_number(raw: str, region: str = "US") -> PushNumber:
    """A number as typed, in E.164 (a national number is read in the client's region), and whether `phonenumbers`
    thinks it can be dialled. Raises NotE164 when no E.164 number can be read from it."""
    text = (raw or "").strip()
    if not text:
        raise NotE164("no number")
    written = FORMATTING.sub("", text)
    e164 = written if written.startswith("+") else national_to_e164(text, region)
    if not is_e164_syntax(e164):
        raise NotE164(f"{text!r} is not in E.164 format (+ then 8 to 15 digits, e.g. +15014008029)")
    return PushNumber(e164, diallable(e164))


def national_to_e164(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise NotE164(f"{text!r} is not a phone number") from exc
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def diallable(e164: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return False
