"""`make run`'s processes (portal/run.py: web, worker, beat from portal/Procfile) start, serve, and stop on Ctrl-C with
exit 0 and no traceback, no kill noise. Own SQLite database and in-memory broker: needs no services."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
NOISE = ("Traceback", "SIGTERM", "SIGKILL", "Error 130", "did not stop", "exited with code")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def healthy(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code in (200, 503)
    except requests.RequestException:
        return False


def test_make_run_processes_stop_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "ENV_FILE": "",
        "DEBUG": "true",
        "SANDBOX_ENABLED": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
        "SANDBOX_STATE_DIR": str(tmp_path / "sandbox"),  # not the developer's var/sandbox
        "PORTAL_PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    log = (tmp_path / "run.log").open("w+b")
    runner = subprocess.Popen([sys.executable, "-m", "portal.run"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        assert wait_for(lambda: healthy(f"http://127.0.0.1:{port}/healthz"), 30), "the web process never answered"
        assert wait_for(lambda: b"ready" in (tmp_path / "run.log").read_bytes(), 20), "the worker never got ready"
        runner.send_signal(signal.SIGINT)
        assert runner.wait(30) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
    output = (tmp_path / "run.log").read_text(errors="replace")
    assert "system | stopped" in output.replace("  ", " ").replace("  ", " ")
    assert not [word for word in NOISE if word in output], output[-3000:]
