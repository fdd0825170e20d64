"""What the benchmark scripts share: a database of their own, Django configured for it, the processes they start,
their measurements and their one result line.

Every bench creates what it needs and removes it afterwards, even when it fails, so it runs the same on a fresh
machine and leaves nothing behind: on PostgreSQL a uniquely named database on the server that --database-url names,
on SQLite a temporary file.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.invariants import broken

ROOT = Path(__file__).resolve().parent.parent
SQLITE = "sqlite://"
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "psql"}

# What every bench runs with unless it says otherwise: no developer .env, an in-process broker, quiet logs.
BASE_ENV = {
    "ENV_FILE": "",
    "DEBUG": "true",
    "CELERY_BROKER_URL": "memory://",
    "DJANGO_SETTINGS_MODULE": "portal.settings",
    "LOG_LEVEL": "WARNING",
    # Every run starts its simulators empty: what an earlier run (or `make run`) left in var/sandbox is not its input.
    "SANDBOX_STATE_DIR": "",
}


def add_database_argument(parser: argparse.ArgumentParser, default: str = SQLITE) -> None:
    parser.add_argument(
        "--database-url",
        default=default,
        help="sqlite:// for a temporary SQLite file, or a PostgreSQL server such as "
        "postgres://postgres@127.0.0.1:5432/postgres to create (and drop) the bench's own database on",
    )


def database_prefix(script: str, pid: int) -> str:
    """Names of one run's database (PostgreSQL) or folder (SQLite) start with this; bench/smoke.py checks that
    nothing by that name is left after the run."""
    return f"bench_{re.sub(r'[^a-z0-9]', '_', script.lower())}_{pid}_"


def script_name() -> str:
    return Path(sys.argv[0]).stem


@contextmanager
def bench_django(database_url: str, **env: str) -> Iterator[dict[str, str]]:
    """A fresh migrated database for the server `database_url` names, Django set up on it in this process; yields
    the environment for the processes the bench starts. The database is dropped at the end, whatever happens."""
    exit_on_sigterm()
    with fresh_database(database_url) as url:
        full_env = {**os.environ, **BASE_ENV, **env, "DATABASE_URL": url}
        os.environ.update(full_env)
        try:
            setup_django()
            yield full_env
        finally:
            close_django_connections()


def exit_on_sigterm() -> None:
    """A terminated bench (a CI timeout, bench/smoke.py) unwinds like Ctrl-C, so it still stops its processes and
    drops its database."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    scheme = urlsplit(server_url).scheme
    if scheme == "sqlite":
        with sqlite_database() as url:
            yield url
    elif scheme in POSTGRES_SCHEMES:
        with postgres_database(server_url) as url:
            yield url
    else:
        raise SystemExit(f"--database-url: expected sqlite:// or postgres://…, not {server_url}")


@contextmanager
def sqlite_database() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix=database_prefix(script_name(), os.getpid()))
    try:
        yield f"sqlite:///{folder}/bench.sqlite3"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """CREATE DATABASE on the server, yield its URL, DROP it at the end (WITH FORCE: a process the bench started
    may still hold a connection)."""
    import psycopg
    from psycopg import sql

    name = database_prefix(script_name(), os.getpid()) + os.urandom(3).hex()
    server = libpq_url(server_url)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def libpq_url(url: str) -> str:
    """A Django PostgreSQL URL as libpq takes it: libpq knows postgres:// and postgresql:// only, and connects to
    the `postgres` maintenance database when the URL names none."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql", path=parts.path if parts.path.strip("/") else "/postgres"))


def setup_django() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def close_django_connections() -> None:
    from django.apps import apps

    if apps.ready:
        from django.db import connections

        connections.close_all()


@contextmanager
def process(command: list[str], env: Mapping[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (gunicorn, a Celery worker) stopped when the block ends. Its output goes to stderr: stdout
    carries only the bench's result line."""
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sys.stderr)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextmanager
def gunicorn(env: Mapping[str, str], port: int, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """The portal served by gunicorn on loopback, once it answers /healthz."""
    command = [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    with process([*command, *options], env) as server:
        wait_until_serving(server, port)
        yield server


def wait_until_serving(server: subprocess.Popen[bytes], port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers; an unhealthy answer shows in the measurement
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer on port {port} (exit code {server.poll()})")


def free_port() -> int:
    """A port nothing listens on, for a server the benchmark starts on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def workers_peak_rss_mb(master_pid: int) -> float:
    """The largest peak resident memory among a gunicorn master's workers; read while they run."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    peaks = [0.0]
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def print_result(invariants: list[str], **figures: object) -> None:
    """The bench's one result line on stdout (key=value figures separated by spaces), then its promises checked
    against it: each broken one is named on stderr and the bench exits 1."""
    print(" ".join(f"{key}={value}" for key, value in figures.items()), flush=True)
    failures = broken(invariants, figures)
    for failure in failures:
        print(f"invariant broken: {failure}", file=sys.stderr, flush=True)
    if failures:
        sys.exit(1)
