"""How weak a production secret is, in words, for the start-up checks in settings (no Django imports: settings
import this before Django is configured).

SECRET_KEY follows Django's own deploy check (W009): at least 50 characters, at least 5 distinct ones, and not
Django's generated development key (`django-insecure-…`). A Fernet key is refused when its 32 bytes carry no entropy:
fewer than 5 distinct byte values (all zero, one repeated byte) or nothing but digits, as written or as bytes.
"""

from __future__ import annotations

import base64
import binascii

MIN_SECRET_KEY_LENGTH = 50
MIN_DISTINCT_CHARACTERS = 5
DJANGO_DEVELOPMENT_PREFIX = "django-insecure-"
MIN_DISTINCT_KEY_BYTES = 5
GENERATE_SECRET_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
GENERATE_FERNET_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


def secret_key_weakness(key: str) -> str | None:
    """Why `key` is too weak to sign sessions and tokens, or None. Never quotes the key."""
    if key.startswith(DJANGO_DEVELOPMENT_PREFIX):
        return f"starts with {DJANGO_DEVELOPMENT_PREFIX!r}, Django's development key"
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"is shorter than {MIN_SECRET_KEY_LENGTH} characters"
    if len(set(key)) < MIN_DISTINCT_CHARACTERS:
        return f"has fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
    return None


def fernet_key_weakness(key: str) -> str | None:
    """Why a well-formed Fernet key carries no entropy, or None (its form is checked by Fernet itself)."""
    try:
        raw = base64.urlsafe_b64decode(key)
    except (binascii.Error, ValueError):
        return None
    if key.rstrip("=").isdigit() or raw.isdigit():
        return "is digits only"
    if len(set(raw)) < MIN_DISTINCT_KEY_BYTES:
        return f"has fewer than {MIN_DISTINCT_KEY_BYTES} distinct byte values (e.g. all zero or one repeated byte)"
    return None
