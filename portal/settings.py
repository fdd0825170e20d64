"""Settings, all read from the environment (or a `.env` file beside manage.py) through django-environ.

The defaults run the portal with nothing installed: SQLite under `var/` and kombu's filesystem broker, which
works across processes. Production sets DATABASE_URL and CELERY_BROKER_URL and must set real secrets: with
DEBUG off the portal refuses to start on a default or weak SECRET_KEY, or without FIELD_ENCRYPTION_KEYS (or with weak
ones).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from integrations.vendors import vendor_apps
from portal.secret_strength import (
    GENERATE_FERNET_KEY,
    GENERATE_SECRET_KEY,
    fernet_key_weakness,
    secret_key_weakness,
)
from portal.storage_url import default_storage_from_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local `.env` (written by `make run`) fills in what the environment leaves unset; ENV_FILE="" skips it.
ENV_FILE = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE:
    environ.Env.read_env(ENV_FILE)

INSECURE_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
# Used only with DEBUG on and no FIELD_ENCRYPTION_KEYS, so a checkout runs at once; never valid in production.
DEVELOPMENT_ENCRYPTION_KEY = "ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdGk="

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_SECRET_KEY)
FIELD_ENCRYPTION_KEYS: list[str] = env.list("FIELD_ENCRYPTION_KEYS", default=[])


def _refuse_unsafe_secrets() -> None:
    """With DEBUG off the portal starts only on real secrets: a set SECRET_KEY with enough entropy and encryption
    keys that are valid Fernet keys with entropy, not the public development key. Each refusal says how to generate
    a good value and never quotes the refused one."""
    generate = f"Generate one with: {GENERATE_FERNET_KEY}"
    if not SECRET_KEY.strip() or SECRET_KEY == INSECURE_SECRET_KEY:
        raise ImproperlyConfigured(
            f"SECRET_KEY is not set: set the SECRET_KEY environment variable (DEBUG is off). "
            f"Generate one with: {GENERATE_SECRET_KEY}"
        )
    if (weakness := secret_key_weakness(SECRET_KEY)) is not None:
        raise ImproperlyConfigured(
            f"SECRET_KEY {weakness}: set a long random one (DEBUG is off). Generate one with: {GENERATE_SECRET_KEY}"
        )
    if not FIELD_ENCRYPTION_KEYS:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is not set: set it to one or more comma-separated Fernet keys, newest first "
            f"(DEBUG is off). {generate}"
        )
    for position, key in enumerate(FIELD_ENCRYPTION_KEYS, start=1):
        if key == DEVELOPMENT_ENCRYPTION_KEY:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {position} is the public development key. {generate}"
            )
        try:
            Fernet(key)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe base64 bytes). {generate}"
            ) from exc
        if (weakness := fernet_key_weakness(key)) is not None:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS: key {position} {weakness}. {generate}")


if not DEBUG:
    _refuse_unsafe_secrets()
elif not FIELD_ENCRYPTION_KEYS:
    FIELD_ENCRYPTION_KEYS = [DEVELOPMENT_ENCRYPTION_KEY]

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=False)
# Where the sandbox vendors answer; connections in the sandbox environment default to it.
SANDBOX_BASE_URL = env.str("SANDBOX_BASE_URL", default="http://127.0.0.1:8000/sandbox")
# Where the simulators keep their state across restarts (one JSON file per vendor); empty: not kept.
SANDBOX_STATE_DIR = env.str("SANDBOX_STATE_DIR", default=str(BASE_DIR / "var" / "sandbox"))

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "integrations",
    # Vendor packages with an apps.py (records, tasks, commands or templates of their own), from the registry.
    *vendor_apps(),
    # Last: the portal's post-migrate setup (client users' group, schedules) hangs on this app's signal.
    "members",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "portal.middleware.RejectNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Admin pages in the viewer's time zone (their choice, else the client's, or UTC when clients are in several zones).
    "portal.zones.ViewerZoneMiddleware",
    # Adds request.user.is_verified() (a one-time code was given at log-in); enforced only by ADMIN_REQUIRE_2FA.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = env.str("ROOT_URLCONF", default="portal.urls")
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, IMMEDIATE transactions and a
    # timeout make writers queue instead of failing with "database is locked". In WAL mode synchronous=NORMAL
    # syncs at checkpoints rather than on every commit: still never corrupt, and a power cut loses only the last
    # commits — while writers queued behind one fsync per commit held the message job to half its pace.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# A read replica (PostgreSQL streaming replication): the dashboard, the large admin lists and CSV downloads read
# from it where they opt in (portal/db_router.py); every write, and every read in a transaction or in a job, stays
# on the primary. Without DATABASE_REPLICA_URL the portal has one database.
READ_REPLICA = ""
if env.str("DATABASE_REPLICA_URL", default=""):
    READ_REPLICA = "replica"
    DATABASES[READ_REPLICA] = env.db("DATABASE_REPLICA_URL")
    DATABASES[READ_REPLICA].setdefault("CONN_MAX_AGE", DATABASES["default"].get("CONN_MAX_AGE", 0))
    DATABASES[READ_REPLICA].setdefault("CONN_HEALTH_CHECKS", True)
DATABASE_ROUTERS = ["portal.db_router.PrimaryReplicaRouter"] if READ_REPLICA else []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# While the shared cache that counts rate limits is unreachable no vendor call goes; after this long it is held back.
RATE_LIMIT_CACHE_WAIT_SECONDS = env.float("RATE_LIMIT_CACHE_WAIT_SECONDS", default=10.0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Every time shown with its zone ("Dec. 7, 2026, 4:41 a.m. EST"): the project's `en` formats win over Django's.
FORMAT_MODULE_PATH = ["portal.formats"]

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
# Member imports and segment exports: MEDIA_ROOT on this host, or with STORAGE_URL=s3://… a store every host reads
# (portal/storage_url.py), so a worker on another host finds the file a web host took.
STORAGES = {
    "default": default_storage_from_url(env.str("STORAGE_URL", default="")),
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
LOGIN_URL = "admin:login"

# --- Failed logins (django-axes): AXES_FAILURE_LIMIT wrong passwords for one username from one address lock that pair
# out for AXES_COOLOFF_MINUTES, even with the right password afterwards. The axes backend comes first: it refuses a
# locked-out pair before the password is checked. A site admin unlocks with `manage.py axes_reset_username <name>`
# (or `axes_reset` for everyone), or by deleting the attempt under Axes > Access attempts.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# django-axes' own default, named here because the lockout page (portal/admin.py) answers with it.
AXES_HTTP_RESPONSE_CODE = 429
# Username and address together: a stranger guessing an admin's name cannot lock the admin out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The lockout page (templates/admin/locked_out.html) in the admin's frame.
AXES_LOCKOUT_CALLABLE = "portal.admin.locked_out"
# Two-factor log-in for site admins (django-otp, TOTP): with ADMIN_REQUIRE_2FA on, a site admin logs in with a code
# from an authenticator app as well as the password, and a session without one is sent back to the log-in page.
# Client users are not asked. Enrol with `manage.py add_totp_device <username>` before turning it on.
ADMIN_REQUIRE_2FA = env.bool("ADMIN_REQUIRE_2FA", default=False)
# A log list (vendor calls, webhook events, job runs) filtered by what no index answers (a method, an error kind)
# searches this many of the newest rows per page, then offers the next stretch (portal/keyset.py).
ADMIN_LOG_SEARCH_ROWS = env.int("ADMIN_LOG_SEARCH_ROWS", default=200_000)
OTP_TOTP_ISSUER = "Annex Cloud Integration Portal"
# A TOTP key is a secret like a vendor's: shown once when enrolled, never again on an admin page.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# The client address as the callbacks read it: X-Forwarded-For only from TRUSTED_PROXIES, since anyone can write it.
AXES_CLIENT_IP_CALLABLE = "integrations.inbound.client_address"

# --- Security: strict unless DEBUG; each can be relaxed from the environment (e.g. behind a TLS proxy).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Content-Security-Policy (django-csp): everything from the portal itself, no inline script or style (the admin's
# scripts and styles are static files; Swagger UI is served by drf-spectacular-sidecar with its start-up script as a
# file), no plugins, no framing. Images may also be data: URIs (Swagger UI's icons). CSP_REPORT_ONLY=true sends it as
# Content-Security-Policy-Report-Only, to try a change without breaking a page; CSP_REPORT_URI collects violations.
_CSP_POLICY: dict[str, object] = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        **({"report-uri": [env.str("CSP_REPORT_URI")]} if env.str("CSP_REPORT_URI", default="") else {}),
    }
}
if env.bool("CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP_POLICY
else:
    CONTENT_SECURITY_POLICY = _CSP_POLICY

# --- Celery
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_DIR = VAR_DIR / "broker"
    # kombu creates the control folder without its parents, so it is made here with the others.
    for folder in ("queue", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # The exchange tables; kombu's default is `control/` in the working directory.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    # The filesystem transport has no fanout exchange, so no remote control or event broadcast.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    # A task not acknowledged within this time is redelivered; every task's time limit stays below it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# One queue per kind of work, so a backlog of one never delays the others (a worker per queue in production;
# `make run` starts one worker on all of them). Tasks not named here go to the default queue, `celery`.
CELERY_TASK_DEFAULT_QUEUE = "celery"
PORTAL_QUEUES = ["celery", "inbound", "messages", "sync", "bulk"]
CELERY_TASK_ROUTES = [
    # The shared tasks by name, then each vendor's by the queues its spec names (`VendorSpec.task_queues`).
    {
        "integrations.process_received_callbacks": {"queue": "inbound"},
        "integrations.sweep_received_callbacks": {"queue": "inbound"},
        "members.dispatch_loyalty_messages": {"queue": "messages"},
        "members.reconcile_member": {"queue": "sync"},
        "members.reconcile_pending": {"queue": "sync"},
        "members.backfill_vendor_state": {"queue": "bulk"},
        "members.export_segment": {"queue": "bulk"},
        "members.import_members": {"queue": "bulk"},
        "integrations.prune_old_records": {"queue": "bulk"},
    },
    "integrations.vendors.route_vendor_task",
]
# The database scheduler, behind a lease so that exactly one beat schedules (a second one waits as a standby).
CELERY_BEAT_SCHEDULER = "portal.beat:LeasedDatabaseScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
# A beat that has not renewed its lease for this long is taken for dead; a standby takes over.
BEAT_LEASE_SECONDS = env.int("BEAT_LEASE_SECONDS", default=30)
CELERY_TIMEZONE = "UTC"

# --- Connections: after this many failed calls in a row, a connection is marked failing.
CONNECTION_FAILURE_THRESHOLD = env.int("CONNECTION_FAILURE_THRESHOLD", default=3)
# Vendor call rows and job runs older than this are pruned nightly.
RECORD_RETENTION_DAYS = env.int("RECORD_RETENTION_DAYS", default=30)
# Retention per growing table (integrations/retention.py says which rows of each are never pruned).
VENDOR_CALL_RETENTION_DAYS = env.int("VENDOR_CALL_RETENTION_DAYS", default=RECORD_RETENTION_DAYS)
JOB_RUN_RETENTION_DAYS = env.int("JOB_RUN_RETENTION_DAYS", default=RECORD_RETENTION_DAYS)
WEBHOOK_EVENT_RETENTION_DAYS = env.int("WEBHOOK_EVENT_RETENTION_DAYS", default=30)
OUTBOUND_MESSAGE_RETENTION_DAYS = env.int("OUTBOUND_MESSAGE_RETENTION_DAYS", default=90)
LOYALTY_EVENT_RETENTION_DAYS = env.int("LOYALTY_EVENT_RETENTION_DAYS", default=30)
MEMBER_CHANGE_RETENTION_DAYS = env.int("MEMBER_CHANGE_RETENTION_DAYS", default=30)
# PostgreSQL: the vendor calls' and webhook events' daily partitions are made this many days ahead (nightly and at
# migrate), so a day's rows never land in the DEFAULT partition while the prune job runs (integrations/partitions.py).
PARTITION_DAYS_AHEAD = env.int("PARTITION_DAYS_AHEAD", default=7)
# A successful vendor call keeps its bodies and headers only until this moment (ISO 8601, e.g. a debugging window
# "2026-05-01T18:00:00Z"; empty: no window) or for this share of calls (a sample); failed and uncertain calls always do.
VENDOR_CALL_BODIES_FOR_SUCCESS_UNTIL = env.str("VENDOR_CALL_BODIES_FOR_SUCCESS_UNTIL", default="")
VENDOR_CALL_BODY_SAMPLE_RATE = env.float("VENDOR_CALL_BODY_SAMPLE_RATE", default=0.01)
# /healthz turns 503 when beat has not ticked for this long (its most frequent schedules run every minute).
HEALTH_SILENT_SECONDS = env.int("HEALTH_SILENT_SECONDS", default=120)
# Each process writes the dashboard's hourly counts at most this long after they happen (0: as each happens).
ROLLUP_FLUSH_SECONDS = env.float("ROLLUP_FLUSH_SECONDS", default=1.0)
# First delay (seconds) of the exponential backoff between retries of a vendor call; tests set it near zero.
VENDOR_RETRY_BACKOFF_SECONDS = env.float("VENDOR_RETRY_BACKOFF_SECONDS", default=0.5)
# The message job's time budget per connection per run (it runs every minute); what is left waits for the next run.
MESSAGE_RUN_SECONDS = env.int("MESSAGE_RUN_SECONDS", default=45)
# A message left "attempting" this long by a run that died is uncertain (it may have reached the vendor).
MESSAGE_ATTEMPT_LEASE = timedelta(seconds=env.int("MESSAGE_ATTEMPT_LEASE_SECONDS", default=120))
# Longest pause of a connection after a transient error (throttled, unavailable) within a run.
MESSAGE_BACKOFF_CAP_SECONDS = env.float("MESSAGE_BACKOFF_CAP_SECONDS", default=20.0)
# Parallel sends per connection in the message job (each still within the vendor's rate limit).
MESSAGE_SEND_CONCURRENCY = env.int("MESSAGE_SEND_CONCURRENCY", default=8)

# Segments with more members than this are exported by a background job to a file instead of streamed to the
# browser. PostgreSQL's COPY streams a million rows in a couple of seconds; SQLite is slower.
SEGMENT_EXPORT_STREAM_MAX_ROWS = env.int(
    "SEGMENT_EXPORT_STREAM_MAX_ROWS",
    default=2_000_000 if DATABASES["default"]["ENGINE"].endswith("postgresql") else 200_000,
)

# Proxies in front of the portal (addresses or networks): behind them the client address of a callback is read
# from X-Forwarded-For (the IP allow-lists use it); from anyone else the header is ignored.
TRUSTED_PROXIES: list[str] = env.list("TRUSTED_PROXIES", default=[])

# Member CSV imports: files with more rows than this are imported by a background job (stored under MEDIA_ROOT,
# progress on the import page, an error report to download); smaller ones during the upload. Larger uploads than
# MEMBER_IMPORT_MAX_BYTES are refused. A background run stops after MEMBER_IMPORT_RUN_SECONDS (well inside the task
# time limit) and queues the next, which resumes where it stopped.
MEMBER_IMPORT_SYNC_MAX_ROWS = env.int("MEMBER_IMPORT_SYNC_MAX_ROWS", default=2_000)
MEMBER_IMPORT_MAX_BYTES = env.int("MEMBER_IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
MEMBER_IMPORT_RUN_SECONDS = env.int("MEMBER_IMPORT_RUN_SECONDS", default=300)

# Inbound callbacks larger than this are refused (400) and kept truncated for inspection.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=64 * 1024)
# While the database is down a callback is answered 503 with this Retry-After: the vendor sends it again.
WEBHOOK_RETRY_AFTER_SECONDS = env.int("WEBHOOK_RETRY_AFTER_SECONDS", default=30)

# Edits to a member within this many seconds reach each vendor as one update (e.g. one Vibes person update).
MEMBER_SYNC_DELAY_SECONDS = env.int("MEMBER_SYNC_DELAY_SECONDS", default=2)
# A member change deferred by a failing vendor is tried again after this long (the sweep runs every minute).
MEMBER_SYNC_RETRY_INTERVAL = timedelta(seconds=env.int("MEMBER_SYNC_RETRY_SECONDS", default=60))

# Mail (alerts to site admins): e.g. EMAIL_URL=smtp+tls://user:password@smtp.example.com:587; console in development.
vars().update(env.email("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")
# One alert e-mail per subject (a connection, a job) per this many seconds.
ALERT_THROTTLE_SECONDS = env.int("ALERT_THROTTLE_SECONDS", default=3600)
# Addresses that get every alert besides the site admins, and the only ones while the database is down.
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
# An alert that reached nobody (no address known, mail server down) is tried again after this long.
ALERT_RETRY_SECONDS = env.int("ALERT_RETRY_SECONDS", default=60)

# Error reports: SENTRY_DSN turns on sentry-sdk (Django and Celery), with no personal data and secrets redacted.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    from portal.logging import redact_event

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        before_send=redact_event,
    )

# Prometheus scrapes /metrics with `Authorization: Bearer <METRICS_TOKEN>`; empty turns the endpoint off.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# The technical 500 page (DEBUG) and error e-mails hide every known secret value, not only settings named *KEY*.
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.logging.RedactingExceptionReporterFilter"

# --- API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "integrations.api_auth.ClientTokenAuthentication",
        # DRF's session authentication under the admin's two-factor rule (portal/two_factor.py).
        "integrations.api_auth.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "portal.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Annex Cloud Integration Portal API",
    "DESCRIPTION": "Client-facing API and vendor callbacks of the integration portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from the portal itself, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Logging: one configuration; every handler redacts secrets and authorization headers.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "portal.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django's own handlers (a console one in DEBUG, mail_admins) would print without the redaction filter:
        # its loggers go through the portal's handler only.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}
