"""A process forked from the one that loaded the test settings gets test databases of its own (portal/
test_settings.py): mutmut's workers fork from one server and run side by side, and with one shared SQLite file each
dropped the other's tables, so every mutant was "killed" by errors instead of by its tests."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.db import connection

from portal import test_settings


def test_a_forked_process_names_a_sqlite_test_database_of_its_own(monkeypatch):
    databases = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x", "TEST": {"NAME": "/tmp/parent"}}}
    unchanged = copy.deepcopy(databases)
    test_settings.name_test_databases_for_this_process(databases)
    assert databases == unchanged  # the process that loaded the settings keeps its names

    monkeypatch.setattr(test_settings, "SETTINGS_PID", os.getpid() + 1)  # as seen from a forked child
    test_settings.name_test_databases_for_this_process(databases)
    name = databases["default"]["TEST"]["NAME"]
    assert name != "/tmp/parent" and name.endswith(".sqlite3") and not os.path.exists(name)


def test_a_forked_process_suffixes_a_server_test_database_with_its_pid(monkeypatch):
    databases = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "portal", "TEST": {}}}
    monkeypatch.setattr(test_settings, "SETTINGS_PID", os.getpid() + 1)
    test_settings.name_test_databases_for_this_process(databases)
    assert databases["default"]["TEST"]["NAME"] == f"test_portal_{os.getpid()}"


def test_the_test_settings_load_for_postgresql_without_a_server():
    # The settings module alone, as `make test` loads it for CI's PostgreSQL run (no connection is made).
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/portal"}
    code = "import portal.test_settings as s; print(s.DATABASES['default']['ENGINE'])"
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["django.db.backends.postgresql"]


@pytest.mark.django_db
def test_on_sqlite_the_test_database_is_a_file_in_wal_mode_not_the_shared_in_memory_one():
    """Issue 19, finding 7: threads of a test meeting another's write wait (as on the portal's own database) instead
    of failing at once with "database table is locked", which the shared in-memory database does."""
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite test database only")
    name = connection.settings_dict["NAME"]
    assert not connection.is_in_memory_db() and os.path.isfile(name), name
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


def test_an_exception_in_a_tests_thread_fails_that_test(tmp_path):
    """Issue 19, finding 7: an exception left unhandled in a thread a test started fails the test (pyproject's
    filterwarnings), instead of passing quietly with a warning. Run by pytest in a folder of its own."""
    warnings = "".join(f"    {line}\n" for line in configured_filterwarnings())
    (tmp_path / "pytest.ini").write_text(f"[pytest]\nfilterwarnings =\n{warnings}")
    (tmp_path / "test_thread.py").write_text(
        "import threading\n\n\ndef test_with_a_failing_thread():\n"
        "    thread = threading.Thread(target=lambda: 1 / 0)\n    thread.start()\n    thread.join()\n"
    )
    command = [sys.executable, "-m", "pytest", "-p", "no:django", "-p", "no:cacheprovider", "-q", str(tmp_path)]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 1 and "1 failed" in run.stdout and "ZeroDivisionError" in run.stdout, run.stdout


def configured_filterwarnings() -> list[str]:
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    return pyproject["tool"]["pytest"]["ini_options"]["filterwarnings"]
