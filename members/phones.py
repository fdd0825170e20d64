"""Phone numbers are parsed once, at the edge, and kept in E.164 everywhere inside."""

from __future__ import annotations

from contextlib import suppress

import phonenumbers


class InvalidPhone(ValueError):
    pass


def to_e164(raw: str, region: str = "US") -> str:
    """Parse a number as typed (national numbers read in the client's region) into E.164, or raise InvalidPhone
    with a message fit for a form field."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("A mobile number is required.")
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{text!r} is not a phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{text!r} is not a valid number for region {region.upper()}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_e164(value: str) -> bool:
    try:
        return to_e164(value, "US") == value and value.startswith("+")
    except InvalidPhone:
        return False


def numbers_for(term: str, regions: set[str]) -> set[str]:
    """The E.164 numbers a typed number can be: as given, and read as a national number in each region."""
    numbers = set()
    for region in regions or {"US"}:
        with suppress(InvalidPhone):  # not a number in that region
            numbers.add(to_e164(term, region))
    return numbers
