"""End-to-end fixtures: real Celery processes, and headless Chromium.

These tests skip where their parts are missing (no PostgreSQL + Redis, no chromium), unless REQUIRE_SERVICES=1 or
REQUIRE_BROWSER=1 — as CI sets them — turn a missing part into a failure, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from portal.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def missing(reason: str, requirement: str) -> None:
    if os.environ.get(requirement) == "1":
        pytest.fail(f"{requirement}=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def real_services() -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing("the worker/beat test needs DATABASE_URL to point at PostgreSQL", "REQUIRE_SERVICES")
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        missing("the worker/beat test needs CELERY_BROKER_URL to point at Redis", "REQUIRE_SERVICES")


@pytest.fixture
def chromium_path() -> str:
    if not shutil.which(CHROMIUM):
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)", "REQUIRE_BROWSER")
    return CHROMIUM


def test_database_url() -> str:
    """The URL of the test database pytest-django created, for processes started outside this one."""
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class CeleryProcesses:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.test_settings",
            "DATABASE_URL": test_database_url(),
        }

    def start(self, name: str, *args: str) -> None:
        log = (self.tmp_path / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


def purge_queues() -> None:
    """Tasks earlier tests queued without a worker (their rows are gone) must not reach this test's worker."""
    with celery_app.connection_for_write() as conn:
        for queue in settings.PORTAL_QUEUES:
            conn.default_channel.queue_purge(queue)


@pytest.fixture
def celery_processes(real_services, transactional_db, tmp_path: Path) -> Iterator[CeleryProcesses]:
    purge_queues()
    processes = CeleryProcesses(tmp_path)
    yield processes
    processes.stop()
