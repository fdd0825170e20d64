"""Encryption at rest for secrets: a Fernet key ring and a model field that stores JSON encrypted on it.

Stored values look like `enc:fernet:<key id>:<token>`. The key id (a short hash of the key) travels inside the
value, so a value is opened with exactly the key that sealed it, and keys can rotate: the first key of
FIELD_ENCRYPTION_KEYS encrypts, every listed key decrypts, and `manage.py rotate_encryption_keys` re-seals old
values under the first key so older keys can then be dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models
from django.db.models.expressions import Combinable

from integrations.redaction import register_secret_values

PREFIX = "enc:fernet:"


class DecryptionError(Exception):
    """A stored value that none of the configured keys opens. Never answered with the ciphertext."""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


class KeyRing:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("A key ring needs at least one key.")
        self._fernets = {key_id(key): Fernet(key.encode()) for key in keys}
        self.primary_id = key_id(keys[0])

    def encrypt(self, plaintext: str) -> str:
        token = self._fernets[self.primary_id].encrypt(plaintext.encode()).decode()
        return f"{PREFIX}{self.primary_id}:{token}"

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            raise DecryptionError("The stored value is not an encrypted value of this portal.")
        kid, _, token = stored[len(PREFIX) :].partition(":")
        fernet = self._fernets.get(kid)
        if fernet is None:
            raise DecryptionError(
                f"The value was encrypted with key {kid}, which is not in FIELD_ENCRYPTION_KEYS: add that key back "
                "(after the current one) and run `manage.py rotate_encryption_keys`."
            )
        try:
            return fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionError(f"The value sealed with key {kid} is corrupt or the key is wrong.") from exc


@lru_cache(maxsize=4)
def _key_ring_for(keys: tuple[str, ...]) -> KeyRing:
    return KeyRing(keys)


def key_ring() -> KeyRing:
    """The key ring of the current settings (cached per key list, so tests may override the settings)."""
    return _key_ring_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


class UnreadableSecrets(dict):
    """What a sealed value that no key opens reads as: no secrets, and the sealed text kept as it was, so saving the
    row changes nothing until an admin re-enters the secrets (which replaces it). Only this field is affected: the
    rest of the row, and its pages, work."""

    def __init__(self, sealed: str) -> None:
        super().__init__()
        self.sealed = sealed

    @property
    def key_id(self) -> str:
        """The id of the key that sealed it (a short hash, not the key): which key to add back."""
        kid, _, _ = self.sealed.removeprefix(PREFIX).partition(":")
        return kid if self.sealed.startswith(PREFIX) else ""


class EncryptedJSONField(models.TextField):
    """A JSON object of secrets, encrypted as a whole. Not searchable: look rows up by other fields."""

    # The types django-stubs' plugin gives the model attribute (what it accepts, what it holds): a dict, not
    # TextField's str. Annotations only, read by the type checker; the plugin reads no other declaration of them, and
    # narrowing a base class's attribute type is what the ignores allow (django-stubs' own NullBooleanField does it).
    _pyi_private_set_type: dict[str, Any] | Combinable  # type: ignore[assignment]
    _pyi_private_get_type: dict[str, Any]  # type: ignore[assignment]

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            decoded = json.loads(key_ring().decrypt(value))
        except DecryptionError:
            return UnreadableSecrets(value)
        register_secret_values(decoded.values() if isinstance(decoded, dict) else [decoded])
        return decoded

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(PREFIX):
            return json.loads(key_ring().decrypt(value))
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, UnreadableSecrets) and not value:
            return value.sealed  # not re-entered: keep what is stored (a key may still be added back)
        return key_ring().encrypt(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj: models.Model) -> str:
        # Serialised dumps carry the sealed value, never plaintext.
        return self.get_prep_value(self.value_from_object(obj)) or ""
