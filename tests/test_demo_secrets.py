"""Demo secrets are redacted wherever they appear (integrations/http.py): each must be a long, distinctive string, never
a common word such as "sandbox" (the old Vibes username, which blanked that word in every vendor-call URL)."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from integrations import redaction
from integrations.models import Client, Connection
from integrations.vendors import vendor_modules

DISTINCTIVE = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+){2,}")


def every_demo_secret() -> list[tuple[str, str]]:
    return [(key, v) for key, module in vendor_modules("sandbox").items() for v in module.DEMO_SECRETS.values()]


@pytest.mark.parametrize(("vendor", "value"), every_demo_secret())
def test_demo_secrets_are_long_distinctive_strings_not_common_words(vendor, value):
    assert len(value) >= 16 and DISTINCTIVE.fullmatch(value), f"{vendor}: {value!r}"


@pytest.mark.django_db
def test_seed_demo_replaces_the_retired_common_word_vibes_username(settings, monkeypatch):
    settings.DEBUG = True
    # Decrypting the old value makes the process redact the word "sandbox" everywhere (as it should, for a secret):
    # keep that to this test.
    monkeypatch.setattr(redaction, "_known_secrets", set(redaction._known_secrets))
    call_command("seed_demo")
    vibes = Connection.objects.get(client__slug="demo", vendor="vibes")
    vibes.secrets = {**vibes.secrets, "api_username": "sandbox"}  # what older demos stored
    vibes.save()
    production = Connection.objects.create(  # an admin's own credentials are never traded, whatever they are
        client=Client.objects.create(name="Live", slug="live"),
        vendor="vibes",
        environment=Connection.Environment.PRODUCTION,
        secrets={"api_username": "sandbox", "api_password": "their-own-password"},
    )
    call_command("seed_demo")
    vibes.refresh_from_db()
    production.refresh_from_db()
    assert vibes.secret("api_username") == vendor_modules("sandbox")["vibes"].USERNAME
    assert production.secret("api_username") == "sandbox"
    assert Client.objects.filter(slug="demo").count() == 1


@pytest.mark.django_db
def test_the_demo_client_has_attentives_default_sign_up_source_once(settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    client = Client.objects.get(slug="demo")
    assert list(client.sign_up_sources.values_list("source_id", "is_default")) == [("132109", True)]
