"""First Orion's records: a client's program contents (what is pushed, from which outbound numbers), each push of
one to a set of destinations and its batches, and the one access token each connection shares across processes."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import ngettext

from integrations.crypto import EncryptedJSONField
from integrations.first_orion.numbers import is_e164_syntax
from integrations.models import Client, Connection, JobRun
from members.models import Member, Segment
from members.templates_text import placeholders_in

MAX_A_NUMBERS = 400
# First Orion's best practice: a personalised text over 20 characters may not display on every handset.
MAX_PERSONALIZATION_LENGTH = 20
# The portal's bounds at entry (seed 002 sets none): a content's personalization is copied into every destination of
# every push, so its size multiplies by the push's size. 20 variables of 100 characters leave ample room for what a
# phone can display (20 characters) and keep a destination near 2 KB at most, a 500-destination batch near 1 MB.
MAX_PERSONALIZATION_VARIABLES = 20
MAX_VARIABLE_NAME_LENGTH = 50
MAX_TEMPLATE_LENGTH = 100
RECOMMENDED_TTL_SECONDS = 960
# What a personalization template may use about a member.
PERSONALIZATION_PLACEHOLDERS = ("first_name", "last_name", "tier", "points", "client_name")
MEMBER_PLACEHOLDERS = frozenset(PERSONALIZATION_PLACEHOLDERS) - {"client_name"}


class LongValues(models.TextChoices):
    """What a push does with a personalised value over 20 characters: never cut without being asked."""

    LEAVE_OUT = "leave_out", "Leave those members out"
    SHORTEN = "shorten", f"Shorten the values at {MAX_PERSONALIZATION_LENGTH} characters"
    # May not display on some handsets: a site admin's decision.
    AS_IS = "send_as_is", "Send them as they are (site admins only)"


def validate_uuid(value: str) -> None:
    try:
        uuid.UUID(str(value))
    except ValueError as exc:
        raise ValidationError(
            f"{value!r} is not a UUID: copy it from the Content Portal, e.g. 3e1b9b27-d1f9-4c8d-800f-bb534d6928d6."
        ) from exc


def canonical_uuid(value: str) -> str:
    """The one spelling of a UUID (lower case, hyphenated), so the same program content typed as
    3E1B9B27D1F94C8D... or 3e1b9b27-d1f9-... is one row; a value that is not a UUID is kept (stripped) for the
    validator to explain."""
    text = str(value or "").strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def a_number_errors(numbers: Any) -> list[str]:
    """What is wrong with a list of aNumbers (E.164, 1-400, no repeats), in words; empty when it is right."""
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        return ["The aNumbers must be a list of phone numbers."]
    if not 1 <= len(numbers) <= MAX_A_NUMBERS:
        return [f"Give between 1 and {MAX_A_NUMBERS} aNumbers (got {len(numbers)})."]
    errors = [
        f"{n!r} is not in E.164 format (+ then 8 to 15 digits, e.g. +15014008029)."
        for n in numbers
        if not is_e164_syntax(n)
    ]
    if len(set(numbers)) != len(numbers):
        errors.append("An aNumber is listed twice.")
    return errors


def personalization_errors(value: Any) -> list[str]:
    """Variables are NAMES (letters, digits, _; up to 50) mapped to templates (up to 100 characters) using only the
    member placeholders; up to 20 of them. The one rule for the admin form, the API and the model: each message is
    short whatever was sent (a long name is quoted cut, a template never quoted)."""
    if not isinstance(value, dict):
        return ['Personalization must map variable names to templates, e.g. {"MY_VAR": "Hi {first_name}"}.']
    if len(value) > MAX_PERSONALIZATION_VARIABLES:
        return [f"At most {MAX_PERSONALIZATION_VARIABLES} variables (got {len(value)})."]
    errors = []
    for name, template in value.items():
        if problem := variable_name_error(name) or template_error(name, template):
            errors.append(problem)
    return errors


def variable_name_error(name: Any) -> str:
    if isinstance(name, str) and len(name) > MAX_VARIABLE_NAME_LENGTH:
        return f"{name[:20]!r}… is too long for a variable name: at most {MAX_VARIABLE_NAME_LENGTH} characters."
    if not (isinstance(name, str) and name.replace("_", "").isalnum() and name[:1].isalpha()):
        return f"{name!r} is not a variable name: use letters, digits and _, e.g. MY_VAR."
    return ""


def template_error(name: str, template: Any) -> str:
    if not isinstance(template, str):
        return f"{name}: the template must be text."
    if len(template) > MAX_TEMPLATE_LENGTH:
        # Stored templates are bounded; what a member's values make of one over 20 characters is each push's choice.
        return f"{name}: a template is at most {MAX_TEMPLATE_LENGTH} characters (got {len(template)})."
    try:
        unknown = sorted(set(placeholders_in(template)) - set(PERSONALIZATION_PLACEHOLDERS))
    except ValidationError as exc:
        return f"{name}: {' '.join(exc.messages)}"
    if unknown:
        allowed = ", ".join(f"{{{p}}}" for p in PERSONALIZATION_PLACEHOLDERS)
        placeholders = ngettext("placeholder", "placeholders", len(unknown))
        return f"{name}: unknown {placeholders} {', '.join(unknown)}; use only {allowed}."
    return ""


class ProgramContent(models.Model):
    """A First Orion program content of a client and the outbound numbers it is pushed from: either a list of
    aNumbers or an aNumber group, never both."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="program_contents")
    name = models.CharField(max_length=200)
    program_content_uuid = models.CharField(
        "program content UUID", max_length=36, validators=[validate_uuid], help_text="From the Content Portal."
    )
    a_numbers = models.JSONField(
        "aNumbers",
        default=list,
        blank=True,
        help_text=f"Outbound numbers (E.164, up to {MAX_A_NUMBERS}) uploaded in the Content Portal; or use a group.",
    )
    a_number_group_id = models.CharField(
        "aNumber group UUID",
        max_length=36,
        blank=True,
        validators=[validate_uuid],
        help_text="Outbound Calling Numbers → Grouping Numbers in the Content Portal; or list aNumbers instead.",
    )
    ttl_seconds = models.PositiveIntegerField(
        "TTL (seconds)",
        default=RECOMMENDED_TTL_SECONDS,
        help_text="How long the content lives on the phone after a push; First Orion recommends 960 (16 minutes).",
    )
    keep_after_call = models.BooleanField(default=False, help_text="First Orion recommends not keeping it.")
    personalization = models.JSONField(
        default=dict,
        blank=True,
        help_text=f"Up to {MAX_PERSONALIZATION_VARIABLES} variables and their templates (up to {MAX_TEMPLATE_LENGTH} "
        'characters each), e.g. {"MY_VAR": "Hi {first_name}"}; best kept to 20 characters.',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["client", "name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "program_content_uuid"], name="program_content_once_per_client"),
            # Exactly one source of outbound numbers: a non-empty list or a group id.
            models.CheckConstraint(
                condition=(models.Q(a_numbers=[]) & ~models.Q(a_number_group_id=""))
                | (~models.Q(a_numbers=[]) & models.Q(a_number_group_id="")),
                name="program_content_one_number_source",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.normalise_uuids()
        super().save(*args, **kwargs)

    def normalise_uuids(self) -> None:
        self.program_content_uuid = canonical_uuid(self.program_content_uuid)
        self.a_number_group_id = canonical_uuid(self.a_number_group_id)

    def clean(self) -> None:
        self.normalise_uuids()
        errors: dict[str, list[str]] = {}
        if bool(self.a_numbers) == bool(self.a_number_group_id):
            errors["a_numbers"] = ["Give exactly one of: a list of aNumbers, or an aNumber group UUID."]
        elif self.a_numbers and (problems := a_number_errors(self.a_numbers)):
            errors["a_numbers"] = problems
        if problems := personalization_errors(self.personalization):
            errors["personalization"] = problems
        if not self.ttl_seconds:
            errors["ttl_seconds"] = ["First Orion requires a TTL; 960 seconds is recommended."]
        if errors:
            raise ValidationError(errors)


class Push(models.Model):
    """One send of one program content to a set of destinations (deduplicated by number), in batches."""

    class Source(models.TextChoices):
        SEGMENT = "segment"
        MEMBERS = "members"
        NUMBERS = "numbers"

    class Status(models.TextChoices):
        # Its destinations and batches are being built by a worker (never in the web request: a push may reach
        # 100,000 numbers); `planning_read` of `planning_total` members or numbers are read so far.
        PLANNING = "planning"
        QUEUED = "queued"
        SENDING = "sending"
        # The connection could not be used (disabled, unreachable): the push continues when it can.
        WAITING = "waiting"
        SENT = "sent"
        FAILED = "failed"
        # A batch's answer was lost: First Orion may have pushed it. Shown, never resent automatically.
        UNCERTAIN = "uncertain"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="first_orion_pushes")
    # RESTRICT, not PROTECT: a content with pushes cannot be deleted alone, but deleting the client deletes both.
    program_content = models.ForeignKey(ProgramContent, on_delete=models.RESTRICT, related_name="pushes")
    source = models.CharField(max_length=8, choices=Source.choices)
    segment = models.ForeignKey(Segment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    not_before = models.DateTimeField(null=True, blank=True, help_text="First Orion shows the content from then on.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # What was asked, until the push is planned: member ids (source members) or numbers (source numbers). Emptied
    # once the batches are built (they, and `skipped`, are the record of what became of them).
    requested = models.JSONField(default=list, blank=True, editable=False)
    planning_total = models.PositiveIntegerField(default=0, help_text="Members or numbers to read while planning.")
    planning_read = models.PositiveIntegerField(default=0, help_text="Members or numbers read so far while planning.")
    # When its batches were all built: until then the push has no batch to send (a planning interrupted midway is
    # started again; none of its batches had been sent).
    planned_at = models.DateTimeField(null=True, blank=True)
    destinations = models.PositiveIntegerField(default=0)
    batches_total = models.PositiveIntegerField(default=0)
    batches_sent = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField("failed or uncertain batches", default=0)
    skipped = models.JSONField(default=dict, blank=True, help_text="Members left out, counted by reason.")
    long_values = models.CharField(
        "personalised values over 20 characters",
        max_length=10,
        choices=LongValues.choices,
        default=LongValues.LEAVE_OUT,
    )
    shortened = models.PositiveIntegerField(
        default=0, help_text="Destinations whose personalised values were shortened at 20 characters."
    )
    warnings = models.JSONField(
        default=dict, blank=True, help_text="Destinations pushed that are worth a look, counted by reason."
    )
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    # The runner sending it holds it until then (renewed per batch): one runner at a time, a dead one's push resumes.
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The task id of the runner holding it (integrations.job_runs.lease_holder): its redelivered execution takes the
    # push over at once, and the push is released when that run is closed as interrupted.
    holder = models.CharField(max_length=64, blank=True)
    # The latest job run sending it, whose progress its page shows.
    job_run = models.ForeignKey(JobRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "pushes"

    def __str__(self) -> str:
        return f"Push {self.pk} of {self.program_content}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SENT, self.Status.FAILED, self.Status.UNCERTAIN)


class PushBatch(models.Model):
    """One batch push call: its destinations as sent, First Orion's requestId and what came of it. Committed as
    `sending` before the call, so a killed worker's batch is known (and becomes uncertain, never resent)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        UNCERTAIN = "uncertain"
        # Not sent: an earlier batch showed the whole push cannot succeed (e.g. aNumbers not registered).
        CANCELLED = "cancelled"

    push = models.ForeignKey(Push, on_delete=models.CASCADE, related_name="batches")
    index = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    size = models.PositiveIntegerField()
    destinations = models.JSONField(help_text="The destinations as sent: bNumber, personalization, customTrackingId.")
    request_id = models.CharField("First Orion request id", max_length=64, blank=True)
    error = models.TextField(blank=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["push", "index"]
        verbose_name_plural = "push batches"
        constraints = [models.UniqueConstraint(fields=["push", "index"], name="push_batch_index_once")]

    def __str__(self) -> str:
        return f"Batch {self.index + 1} of push {self.push_id}"

    @property
    def numbers(self) -> list[str]:
        return [d["bNumber"] for d in self.destinations]


class PushRecipient(models.Model):
    """A member a batch pushes to, so the member's timeline finds their pushes by an index rather than by reading
    every batch's destinations. Written with the batches; goes with its push."""

    batch = models.ForeignKey(PushBatch, on_delete=models.CASCADE, related_name="recipients")
    # No database constraint: a member deleted while the push was being planned must not fail the plan's insert
    # (deleting a member still deletes these rows, through Django).
    # Indexed by the (member, -batch) index below, which starts with it.
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False)

    class Meta:
        indexes = [models.Index(fields=["member", "-batch"], name="pushrecipient_member_batch")]

    def __str__(self) -> str:
        return f"Member {self.member_id} in {self.batch}"


class AccessToken(models.Model):
    """The one First Orion access token of a connection, shared by every process and worker (the database is the
    one store they all see, whatever the cache). `lease_until` marks a refresh in progress by one caller."""

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, related_name="first_orion_token")
    value = EncryptedJSONField(default=dict, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    refresh_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=32, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"First Orion token of {self.connection_id}"

    @property
    def access_token(self) -> str:
        return str((self.value or {}).get("access_token") or "")

    @property
    def credentials(self) -> str:
        """A hash of the base URL, client id and secret the token was granted for."""
        return str((self.value or {}).get("credentials") or "")
