"""Secrets at rest: sealed with the key id inside, never handed back as ciphertext, rotatable without loss."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection as db

from integrations.crypto import DecryptionError, KeyRing, key_id
from integrations.models import Connection
from tests.factories import ConnectionFactory

OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored_secrets(pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT secrets FROM {Connection._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_secrets_are_stored_sealed_with_the_key_id(db, settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    connection = ConnectionFactory(secrets={"api_key": "plain-api-key-value"})
    raw = stored_secrets(connection.pk)
    assert raw.startswith(f"enc:fernet:{key_id(OLD_KEY)}:")
    assert "plain-api-key-value" not in raw
    assert Connection.objects.get(pk=connection.pk).secrets == {"api_key": "plain-api-key-value"}


def test_a_value_no_key_opens_raises_a_clear_error():
    ring = KeyRing([NEW_KEY])
    with pytest.raises(DecryptionError, match="not in FIELD_ENCRYPTION_KEYS"):
        ring.decrypt(KeyRing([OLD_KEY]).encrypt("secret"))


def test_a_secret_no_key_opens_affects_only_its_own_field(admin_http, client_a, settings, api_client_for):
    """Pages render and say what to do, rotation skips it and says so, the API omits it, saving keeps it."""
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    connection = ConnectionFactory(client=client_a, secrets={"api_key": "lost-key-value-123"})
    sealed = stored_secrets(connection.pk)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    page = admin_http.get(f"/admin/integrations/connection/{connection.pk}/change/")
    assert page.status_code == 200 and "cannot be decrypted" in page.content.decode()
    assert admin_http.get("/admin/integrations/client/").status_code == 200
    api = api_client_for(client_a).get("/api/connections/").json()["results"]
    assert api[0]["secrets_set"] == {secret.name: False for secret in connection.spec.secrets}
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "no key opens" in out.getvalue()
    Connection.objects.get(pk=connection.pk).save()
    assert stored_secrets(connection.pk) == sealed  # untouched until the secrets are entered again


def test_a_tampered_value_raises_instead_of_returning_ciphertext():
    ring = KeyRing([OLD_KEY])
    sealed = ring.encrypt("secret")
    with pytest.raises(DecryptionError):
        ring.decrypt(sealed[:-4] + "AAAA")
    with pytest.raises(DecryptionError):
        ring.decrypt("plain text that was never sealed")


def test_rotation_reseals_under_the_first_key_then_the_old_key_can_go(db, settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    connections = [ConnectionFactory(secrets={"api_key": f"key-{n}"}) for n in range(7)]
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    already_new = ConnectionFactory(secrets={"api_key": "fresh"})
    before_new = stored_secrets(already_new.pk)

    call_command("rotate_encryption_keys", batch_size=3)

    assert all(stored_secrets(c.pk).startswith(f"enc:fernet:{key_id(NEW_KEY)}:") for c in connections)
    assert stored_secrets(already_new.pk) == before_new  # values already current are left alone
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert [Connection.objects.get(pk=c.pk).secret("api_key") for c in connections] == [f"key-{n}" for n in range(7)]
