"""A process forked from the one that loaded the test settings gets test databases of its own (portal/
test_settings.py): mutmut's workers fork from one server and run side by side, and with one shared SQLite file each
dropped the other's tables, so every mutant was "killed" by errors instead of by its tests."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

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
