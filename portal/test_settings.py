"""Settings for the test suite: the real settings with fixed test-only secrets and plain HTTP.

DATABASE_URL and CELERY_BROKER_URL still come from the environment, so the same suite runs on SQLite and on
PostgreSQL + Redis.
"""

import atexit
import contextlib
import copy
import os
import tempfile
import uuid

# The suite never reads a developer's .env: it runs the same on every machine.
os.environ.setdefault("ENV_FILE", "")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-long-enough-for-the-check")
# Two test-only Fernet keys: the first encrypts, both decrypt.
os.environ.setdefault(
    "FIELD_ENCRYPTION_KEYS",
    "dGVzdC1rZXktb25lLW5vdC1mb3ItcHJvZHVjdGlvbi0=,dGVzdC1rZXktdHdvLW5vdC1mb3ItcHJvZHVjdGlvbi0=",
)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SANDBOX_ENABLED", "true")
# In-process broker unless the run names a real one (CI's PostgreSQL + Redis pass).
os.environ.setdefault("CELERY_BROKER_URL", "memory://")

from portal.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405

# Retries of vendor calls are exercised, not slept through; a message run's budget is short.
VENDOR_RETRY_BACKOFF_SECONDS = 0.001
MESSAGE_RUN_SECONDS = 3
# Every call row keeps its bodies, so the tests that read them (redaction above all) check something; the compact
# rows of production are tested where they are the subject (tests/test_call_rows.py sets the sample itself).
VENDOR_CALL_BODY_SAMPLE_RATE = 1.0
# Rollups written as each event happens, so a test reads them at once (tests/test_rollups.py tests the buffer).
ROLLUP_FLUSH_SECONDS = 0

# The simulators keep no state between test runs (tests/test_sandbox_persistence.py names a folder of its own).
SANDBOX_STATE_DIR = ""

# Files the tests write (segment exports) go to a throwaway folder; a process a test starts may name its own.
MEDIA_ROOT = os.environ.get("TEST_MEDIA_ROOT") or tempfile.mkdtemp(prefix="portal-test-media-")


def sqlite_test_database_path() -> str:
    """A file name for this run's SQLite test database: pytest-django creates the file and deletes it at the end.

    Not Django's default in-memory database: that one shares a cache between connections, where a thread that meets
    another's write fails at once with "database table is locked" instead of waiting, so tests with threads (and the
    live server's request threads) were flaky. A file in WAL mode waits, as the portal's own database does. Only a
    name is chosen here, nothing is created: processes that merely import these settings leave nothing behind.
    """
    path = os.path.join(tempfile.gettempdir(), f"portal-test-{uuid.uuid4().hex}.sqlite3")
    atexit.register(remove_if_present, path, f"{path}-wal", f"{path}-shm")  # what a crashed run leaves
    return path


# The process that loaded these settings. A process forked from it (mutmut's workers fork from one server and run
# side by side) takes test databases of its own: with the parent's names, each dropped the other's tables and every
# mutant was "killed" by those errors, not by its tests.
SETTINGS_PID = os.getpid()


def name_test_databases_for_this_process(databases: dict) -> None:
    """Give a forked process test databases of its own (the suite's conftest calls this before creating them)."""
    if os.getpid() == SETTINGS_PID:
        return
    default = databases["default"]
    if default["ENGINE"] == "django.db.backends.sqlite3":
        default["TEST"]["NAME"] = sqlite_test_database_path()
    else:
        default["TEST"]["NAME"] = f"{default['TEST'].get('NAME') or 'test_' + default['NAME']}_{os.getpid()}"


def remove_if_present(*paths: str) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": sqlite_test_database_path()}  # noqa: F405
    # A test database need not survive a power cut: no fsync on each commit.
    DATABASES["default"]["OPTIONS"]["init_command"] += "PRAGMA synchronous=OFF;"  # noqa: F405
else:
    DATABASES["default"].setdefault("TEST", {})  # noqa: F405


# A second alias on the same test database, as a read replica would be (Django's test mirror). Reads are routed to
# it only where a test turns READ_REPLICA on (tests/test_replica.py): elsewhere every test keeps one database.
DATABASES["replica"] = {**copy.deepcopy(DATABASES["default"]), "TEST": {"MIRROR": "default"}}  # noqa: F405
DATABASE_ROUTERS = ["portal.db_router.PrimaryReplicaRouter"]
