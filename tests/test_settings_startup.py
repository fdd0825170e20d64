"""The portal refuses to start in production without real secrets, and `check --deploy` is clean when they are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


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
    result = run_manage("check", DEBUG="false", SECRET_KEY="x" * 60)
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr


def test_check_deploy_is_clean_in_a_production_like_environment():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="a-long-random-production-secret-key-with-enough-entropy-1234567890",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="portal.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_refuses_empty_short_or_development_secrets_and_malformed_keys():
    good_key = Fernet.generate_key().decode()
    cases = {
        "SECRET_KEY": {"SECRET_KEY": "", "FIELD_ENCRYPTION_KEYS": good_key},
        "shorter than 32": {"SECRET_KEY": "short", "FIELD_ENCRYPTION_KEYS": good_key},
        "not a Fernet key": {"SECRET_KEY": "x" * 60, "FIELD_ENCRYPTION_KEYS": "not-a-key"},
        "public development key": {
            "SECRET_KEY": "x" * 60,
            "FIELD_ENCRYPTION_KEYS": "ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdGk=",
        },
    }
    for expected, env in cases.items():
        result = run_manage("check", DEBUG="false", **env)
        assert result.returncode != 0 and expected in result.stderr, (expected, result.stderr[-500:])


def test_the_technical_500_page_hides_known_secret_values(rf, settings):
    import sys as _sys

    from django.views.debug import ExceptionReporter

    from portal.logging import register_secret_values

    secret = "-".join(["frame", "local", "secret", str(6 * 7)])  # built, so the page's source excerpts lack it
    register_secret_values([secret])
    settings.DEBUG = True
    try:
        token = secret  # noqa: F841 - a local the report would show
        raise RuntimeError("boom")
    except RuntimeError:
        html = ExceptionReporter(rf.get("/"), *_sys.exc_info()).get_traceback_html()
    assert secret not in html
