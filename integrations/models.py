"""The vendor side's data: clients and who may see them, vendor connections with encrypted secrets, the log of
outbound vendor calls, recorded job runs and client API tokens."""

from __future__ import annotations

import hashlib
import secrets as token_secrets
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import dateformat, timezone

from integrations.crypto import EncryptedJSONField, UnreadableSecrets
from integrations.job_catalog import job_label
from integrations.vendors import VENDOR_CHOICES, VENDORS, VendorSpec


def validate_phone_region(value: str) -> None:
    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"{value!r} is not a phone region: use an ISO country code such as US, GB or IN.")


class DateFormat(models.TextChoices):
    """Django date formats (django.utils.dateformat) a client may choose for dates in messages."""

    US = "n/j/Y", "11/23/2026"
    EUROPEAN = "j/n/Y", "23/11/2026"
    ISO = "Y-m-d", "2026-11-23"
    WORDS = "N j, Y", "Nov. 23, 2026"


@cache
def time_zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(f"{value!r} is not a time zone: use an IANA name such as America/New_York or UTC.")


class Client(models.Model):
    """One Annex Cloud customer (a brand / site). Everything else belongs to one client."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    site_id = models.CharField("Annex Cloud site id", max_length=64, blank=True)
    default_region = models.CharField(
        "default phone region",
        max_length=2,
        default="US",
        validators=[validate_phone_region],
        help_text="ISO country code used to read national phone numbers, e.g. US, GB, IN.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone of the client's members, e.g. America/New_York: dates in messages and the start of "
        "the client's day (when a daily cut-off applies) are in it.",
    )
    date_format = models.CharField(
        max_length=16,
        choices=DateFormat.choices,
        default=DateFormat.US,
        help_text="How dates read in messages to members, e.g. an offer's expiry date.",
    )
    active = models.BooleanField(default=True)
    honour_opt_outs_everywhere = models.BooleanField(
        "honour an SMS opt-out everywhere",
        default=True,
        help_text="A member who opts out at one SMS vendor (e.g. STOP to Vibes) is opted out at the portal and at the "
        "client's other SMS vendors.",
    )
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="clients",
        blank=True,
        help_text="Client users: they see and manage only this client's data.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("view_all_clients", "Site admin: can see and manage every client")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.default_region = self.default_region.upper()
        super().save(*args, **kwargs)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def local_date(self, moment: datetime) -> date:
        """The calendar date of an aware moment in the client's time zone."""
        return moment.astimezone(self.zone).date()

    def format_date(self, day: date) -> str:
        """A date as the client's members read it (the client's date format)."""
        return dateformat.format(day, self.date_format)


class Connection(models.Model):
    """A client's account with one vendor: where it is, how it is configured, its secrets and its health."""

    class Environment(models.TextChoices):
        PRODUCTION = "production"
        STAGING = "staging"
        SANDBOX = "sandbox"

    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        FAILING = "failing"
        DISABLED = "disabled"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="connections")
    vendor = models.CharField(max_length=32, choices=VENDOR_CHOICES)
    environment = models.CharField(max_length=16, choices=Environment.choices, default=Environment.PRODUCTION)
    base_url = models.URLField(
        "base URL", blank=True, help_text="Leave blank for the vendor's default for the chosen environment."
    )
    settings = models.JSONField(default=dict, blank=True)
    secrets = EncryptedJSONField(default=dict, blank=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True)
    last_check_result = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # The unguessable part of this connection's callback URL (vendors that call the portal, e.g. Vibes).
    inbound_token = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client__name", "vendor"]
        constraints = [models.UniqueConstraint(fields=["client", "vendor"], name="one_connection_per_vendor")]

    def __str__(self) -> str:
        return f"{self.client} · {self.spec.label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.spec.receives_callbacks and not self.inbound_token:
            self.inbound_token = token_secrets.token_urlsafe(32)
        super().save(*args, **kwargs)

    @property
    def spec(self) -> VendorSpec:
        return VENDORS[self.vendor]

    @property
    def effective_base_url(self) -> str:
        return (self.base_url or self.spec.base_url_for(self.environment, self.settings)).rstrip("/")

    @property
    def rate_limit_per_second(self) -> float:
        return float(self.settings.get("rate_limit_per_second") or self.spec.default_rate_limit)

    @property
    def rate_limit_chosen(self) -> bool:
        """Whether an admin set this connection's rate limit (rather than leaving the vendor's default)."""
        return bool(self.settings.get("rate_limit_per_second"))

    def secret(self, name: str) -> str:
        return str(self.secrets.get(name) or "")

    @property
    def secrets_unreadable(self) -> bool:
        """Sealed under a key that FIELD_ENCRYPTION_KEYS no longer holds: the secrets must be entered again."""
        return isinstance(self.secrets, UnreadableSecrets)


class WebhookEvent(models.Model):
    """One inbound delivery exactly as received, stored before anything is parsed. Deduplicated on the vendor's
    event id; processed by a task after commit; failed ones can be reprocessed."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        IGNORED = "ignored"
        DUPLICATE = "duplicate"
        REJECTED = "rejected"
        FAILED = "failed"

    # Its index is `webhookevent_connection_time` below (connection first: it serves the cascade's look-ups too).
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="webhook_events", db_index=False)
    event_id = models.CharField(max_length=100, null=True, blank=True)
    event_type = models.CharField(max_length=50, blank=True, db_index=True)
    # The vendor's id of this delivery and its attempt number (Vibes: callback_id, delivery_attempt), when given.
    delivery_id = models.CharField(max_length=100, blank=True)
    delivery_attempt = models.PositiveIntegerField(null=True, blank=True)
    # Also the database's default, so an INSERT returns the status the row was stored with: on PostgreSQL the dedup
    # trigger stores a repeated event as a duplicate in the same statement (migration 0020).
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RECEIVED, db_default=Status.RECEIVED, db_index=True
    )
    headers = models.JSONField(default=dict)
    body = models.TextField(blank=True)
    remote_addr = models.GenericIPAddressField("sender's IP address", null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        # The admin list's filters and search (integrations/admin/records.py): newest first within a status or
        # an event type, and a delivery by the vendor's event id.
        indexes = [
            # A client's, a vendor's or a client user's list, read per connection newest first (keyset_partition):
            # without it the list walks the time index past every other connection's deliveries. On PostgreSQL the
            # table is partitioned by day, so this is one index per day's partition.
            models.Index(fields=["connection", "received_at"], name="webhookevent_connection_time"),
            models.Index(fields=["status", "received_at"], name="webhookevent_status_time"),
            models.Index(fields=["event_type", "received_at"], name="webhookevent_type_time"),
            models.Index(fields=["event_id"], name="webhookevent_event_id"),
        ]
        constraints = [
            # A vendor may reuse an event id across event types (Vibes does in its own examples).
            models.UniqueConstraint(
                fields=["connection", "event_id", "event_type"],
                condition=models.Q(event_id__isnull=False),
                name="one_webhook_event_per_vendor_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type or 'delivery'} {self.event_id or self.pk} ({self.status})"


class VendorCall(models.Model):
    """One outbound HTTP attempt, with secrets already redacted by integrations.http."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="calls")
    method = models.CharField(max_length=8)
    url = models.TextField("URL")
    attempt = models.PositiveSmallIntegerField(default=1)
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField(blank=True)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error_type = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    # Indexed by `vendorcall_created` below: the log's order and pruning by age.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        # Every index costs bytes on every call (issue 22: ≤ 120 a call on PostgreSQL), so there are three: the
        # connection's own (the ForeignKey's: a vendor's, a client's or a client user's calls, from which the keyset
        # list reads each connection's newest rows), the time and the failures. On PostgreSQL the table is
        # partitioned by day and an id is found through a BRIN index (integrations/partitions.py).
        indexes = [
            # The log's order (newest first, keyset "older" pages) and pruning by age. The charts read rollups, so
            # the columns this index once carried for them (an index-only scan) are no longer worth their bytes.
            models.Index(fields=["created_at"], name="vendorcall_created"),
            # The admin's "error" and "status" filters and the search for an error kind ("timeout"): the failures
            # only (a few percent of the calls), in time order, so a filtered list's newest page and its bounded
            # count read those rows, not the whole log.
            models.Index(
                fields=["created_at"],
                condition=~models.Q(error_type="")
                | models.Q(status_code__isnull=True)
                | models.Q(status_code__lt=200)
                | models.Q(status_code__gte=300),
                name="vendorcall_failures",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.url} → {self.status_code or self.error_type}"

    @property
    def ok(self) -> bool:
        return not self.error_type


class JobRun(models.Model):
    """One execution of a scheduled or queued job, with what it did."""

    class Outcome(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        # Stopped without finishing (worker killed, time limit, database gone); closed by the reaper.
        INTERRUPTED = "interrupted"

    job = models.CharField(max_length=100, db_index=True)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True, related_name="job_runs")
    task_id = models.CharField(max_length=64, blank=True)
    # The Celery worker (hostname) that ran it, so a restarted worker can close the runs it left open.
    worker = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # Progress of long work (rows of an import, destinations of a push): how much of how much is done so far.
    done = models.PositiveBigIntegerField(null=True, blank=True)
    total = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        # The admin list's outcome filter (newest first within it) and its search by task id.
        indexes = [
            models.Index(fields=["outcome", "started_at"], name="jobrun_outcome_time"),
            models.Index(fields=["task_id"], name="jobrun_task_id"),
        ]

    def __str__(self) -> str:
        return f"{self.job_label} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def job_label(self) -> str:
        """The job in words, as the Jobs page names it."""
        return job_label(self.job)

    @property
    def percent(self) -> int | None:
        if not self.total or self.done is None:
            return 100 if self.outcome == self.Outcome.SUCCEEDED else None
        return min(100, round(100 * self.done / self.total))

    @property
    def eta_seconds(self) -> int | None:
        """Seconds left at the pace so far, while the run goes on and has done something."""
        if self.outcome != self.Outcome.RUNNING or not self.total or not self.done:
            return None
        elapsed = (timezone.now() - self.started_at).total_seconds()
        return round(elapsed / self.done * (self.total - self.done))

    @property
    def counts_in_words(self) -> str:
        """{"sent": 3, "failed": 0} reads "3 sent, 0 failed"; {"passes_completed": 1} "1 pass completed"."""
        counts = self.counts if isinstance(self.counts, dict) else {}
        return ", ".join(count_in_words(value, key) for key, value in counts.items()) or "nothing to do"


def count_in_words(value: Any, key: str) -> str:
    """A count with its words, the plural ones made singular for a count of one: the job's keys are written in the
    plural ("passes_completed", "members_created")."""
    words = key.replace("_", " ").split()
    if value == 1:
        words = [singular(word) for word in words]
    return " ".join([str(value), *words])


def singular(word: str) -> str:
    """English's regular plurals only (the job counts' nouns); a word that is not one is left as it is."""
    if len(word) < 4 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith(("sses", "ches", "shes", "xes")):
        return word[:-2]
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1]


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class WorkerHeartbeat(models.Model):
    """The last time a worker consuming `queue` answered the minute's heartbeat (integrations/liveness.py): one row
    per queue, so /healthz can tell a queue no worker consumes."""

    queue = models.CharField(max_length=50, primary_key=True)
    worker = models.CharField(max_length=200)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.queue}: {self.worker} at {self.seen_at:%H:%M:%S}"


class BeatLease(models.Model):
    """The lease that lets exactly one `celery beat` schedule at a time: the holder renews it on every tick; a
    standby takes it over once it has expired (the holder died)."""

    name = models.CharField(max_length=50, primary_key=True)
    holder = models.CharField(max_length=200)
    expires_at = models.DateTimeField()
    renewed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder} until {self.expires_at:%H:%M:%S}"


class ApiToken(models.Model):
    """A client's API credential. Only its hash is stored; the key is shown once, when it is created."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What uses this token, e.g. 'nightly CSV download'.")
    prefix = models.CharField(max_length=8, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.BooleanField(default=False)

    # The plain key, only on the instance that was just given it (never stored).
    issued_key: str = ""

    class Meta:
        ordering = ["client__name", "name"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def assign_new_key(self) -> str:
        """Give this token a fresh key and return it; only its hash is kept."""
        key = token_secrets.token_urlsafe(32)
        self.prefix, self.key_hash, self.issued_key = key[:8], hash_token(key), key
        return key

    @classmethod
    def issue(cls, client: Client, name: str) -> tuple[ApiToken, str]:
        """Create a token and return it with its key, which is never retrievable again."""
        token = cls(client=client, name=name)
        key = token.assign_new_key()
        token.save()
        return token, key


class AuditEntry(models.Model):
    """A person's change to a client or a connection: who, when, what and which fields, with the old and new value
    of each field except secrets, which are recorded by name only ("api_key changed"), never by value. Written by
    the admin's save paths and the pages and actions that change connections (integrations/audit.py); the portal's
    own state changes (a connection found failing by a job) are not a person's edit and are not recorded here."""

    class Action(models.TextChoices):
        CREATED = "created", "created"
        CHANGED = "changed", "changed"
        DELETED = "deleted", "deleted"
        VERIFIED = "verified", "verified"
        DISABLED = "disabled", "disabled"
        RESET_TO_DRAFT = "reset to draft", "reset to draft"
        ACTIVATED = "activation page", "saved on the activation page"
        CREDENTIALS = "credentials page", "saved on the credentials page"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as written: the entry still says who after the user is deleted.
    actor_name = models.CharField("who", max_length=150)
    action = models.CharField(max_length=32, choices=Action.choices)
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject_type = models.CharField("kind", max_length=32)
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = models.CharField("what", max_length=255)
    fields = models.JSONField("fields", default=list, blank=True)
    changes = models.JSONField(default=list, blank=True, help_text="One line per field; secrets by name only.")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.subject}"


class Rollup(models.Model):
    """What happened per hour, counted as it happens (integrations/rollups.py): the dashboard's charts and /metrics
    read these rows only, so their cost follows the window shown, not the history kept.

    One row per (hour, series, client, connection, outcome): `count` events and the `total` of their value (points
    awarded, destinations pushed, the milliseconds of the calls in a latency bucket). The hour ALL_TIME (the epoch)
    holds the running totals since the portal started, which /metrics exports as counters; retention keeps them.
    Client and connection are plain ids (0 for none) rather than foreign keys, so the unique key has no NULL in it
    (an upsert on PostgreSQL never matches a NULL) and a row outlives a deleted connection until retention."""

    hour = models.DateTimeField()
    series = models.CharField(max_length=40)
    client_pk = models.PositiveIntegerField("client id", default=0)
    connection_pk = models.PositiveIntegerField("connection id", default=0)
    outcome = models.CharField(max_length=64, blank=True)
    count = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "series", "client_pk", "connection_pk", "outcome"], name="one_rollup_per_hour_and_key"
            )
        ]
        # The dashboard reads a window of hours of a few series (the unique key's index serves it by hour).

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.series} {self.outcome}: {self.count}"


class RollupMark(models.Model):
    """How far a series rolled up from raw rows by a minute job has been counted (see rollups.roll_up_callbacks)."""

    series = models.CharField(max_length=40, primary_key=True)
    counted_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.series} counted until {self.counted_until:%Y-%m-%d %H:%M}"
