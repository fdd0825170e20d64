"""The portal refuses to start in production without real secrets, and `check --deploy` is clean when they are."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET_KEY = "a-long-random-production-secret-key-with-enough-entropy-1234567890"
GENERATE_SECRET_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
GENERATE_FERNET_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # A bare environment, as a fresh production host would have: no .env, nothing from the test run.
    clean_env = {"PATH": os.environ["PATH"], "ENV_FILE": "", "DJANGO_SETTINGS_MODULE": "portal.settings", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean_env, capture_output=True, text=True, timeout=60
    )


def test_refuses_to_start_on_the_default_secret_key():
    result = run_manage("check", DEBUG="false", FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_refuses_to_start_without_encryption_keys():
    result = run_manage("check", DEBUG="false", SECRET_KEY=GOOD_SECRET_KEY)
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr


def test_check_deploy_is_clean_in_a_production_like_environment():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=GOOD_SECRET_KEY,
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="portal.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_refuses_empty_short_or_development_secrets_and_malformed_keys():
    good_key = Fernet.generate_key().decode()
    cases = {
        "SECRET_KEY": {"SECRET_KEY": "", "FIELD_ENCRYPTION_KEYS": good_key},
        "shorter than 50": {"SECRET_KEY": "short", "FIELD_ENCRYPTION_KEYS": good_key},
        "not a Fernet key": {"SECRET_KEY": GOOD_SECRET_KEY, "FIELD_ENCRYPTION_KEYS": "not-a-key"},
        "public development key": {
            "SECRET_KEY": GOOD_SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": "ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdGk=",
        },
    }
    for expected, env in cases.items():
        result = run_manage("check", DEBUG="false", **env)
        assert result.returncode != 0 and expected in result.stderr, (expected, result.stderr[-500:])


LOW_ENTROPY_SECRET_KEYS = {
    "36 times a": "a" * 36,
    "60 times a": "a" * 60,
    "four characters repeated": "abcd" * 20,
    "Django's development prefix": "django-insecure-" + "k3j5h6g7f8d9s0a1q2w3e4r5t6y7u8i9o0p1z2x3c4v5b6n7m8",
    "49 characters": "Zx9-Qw8_Er7-Ty6_Ui5-Op4_As3-Df2_Gh1-Jk0_Lz9-Xc8_V",
}


@pytest.mark.parametrize("secret_key", LOW_ENTROPY_SECRET_KEYS.values(), ids=LOW_ENTROPY_SECRET_KEYS.keys())
def test_refuses_a_low_entropy_secret_key_and_says_how_to_make_one(secret_key):
    result = run_manage(
        "check", DEBUG="false", SECRET_KEY=secret_key, FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode()
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and GENERATE_SECRET_KEY in result.stderr, result.stderr[-500:]
    assert secret_key not in result.stderr  # the refused value is not echoed into logs


NO_ENTROPY_FERNET_KEYS = {
    "all zero bytes": base64.urlsafe_b64encode(bytes(32)).decode(),
    "one repeated byte": base64.urlsafe_b64encode(b"\x41" * 32).decode(),
    "digits only (as written)": "1234567890123456789012345678901234567890123=",
    "digits only (as bytes)": base64.urlsafe_b64encode(b"12345678901234567890123456789012").decode(),
    "two bytes alternating": base64.urlsafe_b64encode(b"\x00\xff" * 16).decode(),
}


@pytest.mark.parametrize("fernet_key", NO_ENTROPY_FERNET_KEYS.values(), ids=NO_ENTROPY_FERNET_KEYS.keys())
def test_refuses_a_fernet_key_with_no_entropy_and_says_how_to_make_one(fernet_key):
    Fernet(fernet_key)  # a well-formed key: only its entropy is wrong
    keys = f"{Fernet.generate_key().decode()},{fernet_key}"
    result = run_manage("check", DEBUG="false", SECRET_KEY=GOOD_SECRET_KEY, FIELD_ENCRYPTION_KEYS=keys)
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS: key 2" in result.stderr and GENERATE_FERNET_KEY in result.stderr, result.stderr
    assert fernet_key not in result.stderr


def test_a_generated_secret_key_and_fernet_key_start():
    import secrets

    result = run_manage(
        "check",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    assert result.returncode == 0, result.stderr


def test_the_technical_500_page_hides_known_secret_values(rf, settings):
    import sys as _sys

    from django.views.debug import ExceptionReporter

    from integrations.redaction import register_secret_values

    secret = "-".join(["frame", "local", "secret", str(6 * 7)])  # built, so the page's source excerpts lack it
    register_secret_values([secret])
    settings.DEBUG = True
    try:
        token = secret  # noqa: F841 - a local the report would show
        raise RuntimeError("boom")
    except RuntimeError:
        html = ExceptionReporter(rf.get("/"), *_sys.exc_info()).get_traceback_html()
    assert secret not in html
