"""The loyalty side: members of a client's program, their per-vendor channel subscriptions, the loyalty events
they cause and the outbound messages those events produce."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import ngettext

from integrations.models import Client, Connection, JobRun
from integrations.vendor_spec import VendorSpec
from integrations.vendors import MESSAGE_VENDORS, VENDORS
from members.templates_text import MAX_TEMPLATE_LENGTH, placeholders_in

# What a message template may say: {first_name}, {points}, ...
PLACEHOLDERS = {
    "first_name": "The member's first name",
    "last_name": "The member's last name",
    "points": "Points of this event (earned or redeemed)",
    "points_balance": "The member's points balance (from the event's data, else as last read from Annex Cloud)",
    "tier": "The member's tier (from the event's data, else the member's)",
    "reward": "The reward of this event",
    "offer_name": "The offer of this event",
    "expires_on": "When the offer of this event expires",
    "offer_description": "The description of the offer of this event",
    "client_name": "The client's name",
}

ANNEX_CLOUD_ID_TAKEN = "Another member of this client has this Annex Cloud id."


class Member(models.Model):
    """A loyalty member of one client. The E.164 mobile number is the member's key towards SMS vendors."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="members")
    annex_cloud_id = models.CharField("Annex Cloud id", max_length=100, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField("mobile number (E.164)", max_length=16, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    zip_code = models.CharField(max_length=20, blank=True)
    # Consent to texts (TCPA): set only by an SMS source — the client's own sign-up (admin, API, import) or an
    # Attentive or Vibes subscription. Annex Cloud's loyalty opt-in never sets or clears it.
    opted_in = models.BooleanField("SMS opt-in", default=False)
    # Annex Cloud's `optInStatus` (YES/NO, its default YES) as last read: the loyalty program's opt-in, not SMS
    # consent. Empty until the member has been read from Annex Cloud. Annex Cloud owns it, so it is not edited here.
    loyalty_opted_in = models.BooleanField("loyalty opt-in (Annex Cloud)", null=True, blank=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    tier = models.CharField(max_length=50, blank=True)
    points = models.IntegerField(default=0)
    # When `points` (and `tier`) last came from Annex Cloud; empty means the portal does not know the balance.
    points_synced_at = models.DateTimeField(null=True, blank=True)
    # Whether Annex Cloud knew the member at the last look-up (False: it answered "no data", AC1005); empty until
    # the member has been looked up. With `status` and `loyalty_opted_in`, what makes a manual credit doubtful.
    known_to_annex_cloud = models.BooleanField("known to Annex Cloud", null=True, blank=True, editable=False)
    annex_cloud_read_at = models.DateTimeField("last read from Annex Cloud", null=True, blank=True, editable=False)
    # What the portal did not take from Annex Cloud's answer and why (an invalid e-mail, an id another member has).
    annex_cloud_note = models.TextField("Annex Cloud note", blank=True, editable=False)
    # Empty for a member who joined the client's program (sign-up, admin, API, import). Otherwise how the portal
    # came to know an existing loyalty member (e.g. "Annex Cloud, as a Bazaarvoice reviewer"): such a member never
    # signed up here, so gets no welcome.
    found_through = models.CharField(max_length=100, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client", "last_name", "first_name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "phone"], condition=~Q(phone=""), name="unique_member_phone_per_client"
            ),
            # Annex Cloud's id is how its points and the Vibes person reach a member: two members with one id
            # would share (and mix up) both accounts.
            models.UniqueConstraint(
                fields=["client", "annex_cloud_id"],
                condition=~Q(annex_cloud_id=""),
                name="unique_member_annex_cloud_id_per_client",
                violation_error_message=ANNEX_CLOUD_ID_TAKEN,
            ),
        ]
        indexes = [
            models.Index(fields=["client", "email"]),
            models.Index(fields=["client", "annex_cloud_id"]),
            # The admin's search across clients (members/admin/members.py): an e-mail in any case, a number, an
            # Annex Cloud id; and its list's order, so the first page of millions is read from an index.
            models.Index(Lower("email"), name="member_email_lower"),
            models.Index(fields=["phone"], name="member_phone"),
            models.Index(fields=["annex_cloud_id"], name="member_annex_cloud_id"),
            models.Index(fields=["client", "last_name", "first_name", "id"], name="member_list_order"),
            # The list's filters (issue 22: each choice ≤ 300 ms at 2 M members). Walking `member_list_order` and
            # skipping the rows that do not match is fast for a common value, but a rare one (1 to 5 % of members)
            # reads tens of thousands of rows (4.3 to 4.6 s at 2 M, EXPLAIN ANALYZE) and a value no member has reads
            # all of them (0.9 s a page, its count a scan of the table). Which value is rare depends on the client:
            # consent may be given by most members or few, and Annex Cloud's flags are empty until members are read.
            # So each two- or three-valued filter has one index led by its column in the list's order: every value's
            # page and bounded count, alone or with a client, are read from it.
            models.Index(fields=["opted_in", "client", "last_name", "first_name", "id"], name="member_sms_list_order"),
            models.Index(
                fields=["loyalty_opted_in", "client", "last_name", "first_name", "id"], name="member_loyalty_list_order"
            ),
            models.Index(
                fields=["known_to_annex_cloud", "client", "last_name", "first_name", "id"],
                name="member_known_list_order",
            ),
            # A tier can be any client's rarest: one index by tier in the list's order serves them all, and the
            # filter's choices (a skip over its first column) as the plain tier index did.
            models.Index(fields=["tier", "client", "last_name", "first_name", "id"], name="member_tier_list_order"),
            # Inactive members: few, or none (0.9 s a client's page when they sort together); active ones are the
            # many, walked from `member_list_order`. Only their rows, so it stays small.
            models.Index(
                fields=["client", "last_name", "first_name", "id"],
                condition=Q(status="inactive"),
                name="member_inactive",
            ),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.phone or f"member {self.pk}"

    def reasons_not_to_credit(self) -> list[str]:
        """Why Annex Cloud's last word on this member makes a manual credit doubtful (empty when nothing does): an
        opted-out, inactive or unknown loyalty member is credited only when someone confirms it."""
        reasons = []
        if self.known_to_annex_cloud is False:
            reasons.append('unknown to Annex Cloud (it answered "no data" at the last look-up)')
        if self.loyalty_opted_in is False:
            reasons.append("opted out of the loyalty program (Annex Cloud's optInStatus NO)")
        if self.status == self.Status.INACTIVE:
            reasons.append("inactive")
        return reasons


EMAIL_FORMAT_HINT = "e.g. ann@example.com: no spaces, one @"


def email_problem(address: str) -> str:
    """Why `address` is not an e-mail address the vendors would take ("" when it is one); the check every way in
    (API, import, admin, Annex Cloud refresh) makes before an address is stored and passed on."""
    try:
        validate_email(address)
    except ValidationError:
        return f"{address[:60]!r} is not a valid e-mail address ({EMAIL_FORMAT_HINT})."
    return ""


def annex_cloud_id_holder(client_id: int, annex_cloud_id: str, *, exclude_pk: int | None = None) -> Member | None:
    """The member of the client that already has this Annex Cloud id (other than `exclude_pk`), if any."""
    if not annex_cloud_id:
        return None
    holders = Member.objects.filter(client_id=client_id, annex_cloud_id=annex_cloud_id).exclude(annex_cloud_id="")
    if exclude_pk is not None:
        holders = holders.exclude(pk=exclude_pk)
    return holders.order_by("pk").first()


def annex_cloud_id_taken(holder: Member) -> str:
    return f"{ANNEX_CLOUD_ID_TAKEN[:-1]}: {holder} (member {holder.pk})."


class MemberVendorState(models.Model):
    """What one vendor should hold for a member against what it last confirmed.

    Every change of a member that a vendor cares about bumps `desired_version` in the same transaction as the change;
    the reconciler (members/sync.py) brings the vendor in line and records the version it confirmed. A member is in
    step with the vendor when `synced_version == desired_version`."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        IN_SYNC = "in_sync", "in sync"
        DEFERRED = "deferred", "deferred (will retry)"
        REJECTED = "rejected", "rejected by the vendor"
        # The portal's own reason not to send (no mobile number for a vendor keyed by it): never the vendor's refusal.
        NOT_SENT = "not_sent", "not sent by the portal"

    member = models.ForeignKey("Member", on_delete=models.CASCADE, related_name="vendor_states")
    vendor = models.CharField(max_length=32)
    desired_version = models.PositiveIntegerField(default=0)
    synced_version = models.PositiveIntegerField(default=0)
    # What the vendor last confirmed (e.g. {"phone": "+1...", "text": "subscribed"}); empty until it has.
    confirmed = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    detail = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Held by the reconciler working on this row (a lease, not a row lock: no transaction stays open during the
    # vendor call); a reconciler that died frees it when it expires.
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The vendor calls its last attempt made, oldest first (VendorCall ids): the call log names no member, so the
    # member's timeline links them from here. Ids only, a few per attempt: this table has a row per member and vendor.
    last_call_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["member", "vendor"]
        constraints = [models.UniqueConstraint(fields=["member", "vendor"], name="one_state_per_member_vendor")]
        indexes = [models.Index(fields=["vendor", "status", "next_attempt_at"])]

    def __str__(self) -> str:
        spec = VENDORS.get(self.vendor)  # "SessionM: in sync", not the vendor's key
        return f"{spec.label if spec else self.vendor}: {self.get_status_display()}"

    @property
    def in_step(self) -> bool:
        return self.synced_version == self.desired_version


class PointsTransaction(models.Model):
    """One award or deduction of points at Annex Cloud, unique on the caller's key, so a repeat changes nothing."""

    class Activity(models.TextChoices):
        CREDIT = "credit"
        DEBIT = "debit"

    class Status(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"
        FAILED = "failed"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="points_transactions")
    member = models.ForeignKey("Member", on_delete=models.CASCADE, related_name="points_transactions")
    key = models.CharField("idempotency key", max_length=100, help_text="Sent to Annex Cloud as customId.")
    activity = models.CharField(max_length=8, choices=Activity.choices)
    points = models.PositiveIntegerField()
    action_id = models.CharField("Annex Cloud action id", max_length=50)
    reason = models.CharField(max_length=200, blank=True)
    order_id = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    response = models.JSONField(default=dict, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)  # the dashboard charts a window of it
    reversed_at = models.DateTimeField(
        null=True, blank=True, help_text="When an applied credit was taken back (e.g. a Bazaarvoice award reversed)."
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="one_points_transaction_per_key")]

    def __str__(self) -> str:
        return f"{self.activity} {self.points} · {self.member}"


class ChannelSubscription(models.Model):
    """A member's subscription to one channel at one vendor (e.g. Attentive MARKETING TEXT), as last known."""

    class State(models.TextChoices):
        SUBSCRIBED = "subscribed"
        UNSUBSCRIBED = "unsubscribed"
        ELIGIBLE = "eligible"
        NOT_ELIGIBLE = "not_eligible"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="subscriptions")
    vendor = models.CharField(max_length=32)
    channel = models.CharField(max_length=16)  # TEXT, EMAIL
    type = models.CharField(max_length=32, default="MARKETING")
    state = models.CharField(max_length=16, choices=State.choices)
    last_result = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["vendor", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["member", "vendor", "type", "channel"], name="one_state_per_channel")
        ]

    def __str__(self) -> str:
        return f"{self.vendor} {self.type} {self.channel}: {self.state}"


class EventType(models.TextChoices):
    SIGNED_UP = "signed_up", "Signed up"
    POINTS_EARNED = "points_earned", "Earned points"
    POINTS_REDEEMED = "points_redeemed", "Redeemed points"
    TIER_CHANGED = "tier_changed", "Tier changed"
    REWARD_ISSUED = "reward_issued", "Reward issued"
    OFFER_ISSUED = "offer_issued", "Offer issued"
    OFFER_EXPIRING = "offer_expiring", "Offer expiring"
    REVIEW_REWARDED = "review_rewarded", "Review rewarded"


# Numbers an event's data may carry that a message states: this event's points and the balance after it. JSON null
# counts as not given.
WHOLE_NUMBER_DATA = ("points", "balance", "points_balance")


def is_whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class MemberChange(models.Model):
    """A change to a member made other than by a person on the member's admin page (whose own log says who): by the
    API, an import, a vendor's callback, a refresh or a pull — who, when and which fields (members/changes.py). Kept
    MEMBER_CHANGE_RETENTION_DAYS, for the member's timeline."""

    # Indexed by the (member, -changed_at) index below, which starts with it.
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="changes", db_index=False)
    changed_at = models.DateTimeField(default=timezone.now)
    by = models.CharField(max_length=200)
    fields = models.CharField(max_length=300)
    # The record the change came from, where there is one ("integrations.webhookevent:42"): the timeline links it.
    source = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-changed_at"]
        indexes = [
            # The timeline's newest changes of one member, and retention by time.
            models.Index(fields=["member", "-changed_at"], name="memberchange_member_time"),
            models.Index(fields=["changed_at"], name="memberchange_changed_at"),
        ]

    def __str__(self) -> str:
        return f"{self.fields} changed by {self.by}"


class MemberAction(models.Model):
    """A one-off action for a member at a vendor — an eligibility check, an e-mail unsubscribe, a refresh from Annex
    Cloud, a points adjustment — whatever started it (the admin, the API, a job): what, when, how it went and the
    calls it made (members/actions.py), for the member's timeline. The call log names no member; this does. Kept
    MEMBER_CHANGE_RETENTION_DAYS, as who changed a member."""

    # Indexed by the (member, -done_at) index below, which starts with it.
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="actions", db_index=False)
    done_at = models.DateTimeField(default=timezone.now)

    class Result(models.TextChoices):
        DONE = "done", "done"
        FAILED = "failed", "failed"
        NOT_SENT = "not_sent", "not sent (the portal's reason)"

    vendor = models.CharField(max_length=30)
    action = models.CharField(max_length=100)
    result = models.CharField(max_length=10, choices=Result.choices)
    said = models.CharField(max_length=500, blank=True)
    # The VendorCall rows it made, oldest first (the log keeps calls for a while only: a pruned one is not shown).
    call_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-done_at"]
        indexes = [
            models.Index(fields=["member", "-done_at"], name="memberaction_member_time"),
            models.Index(fields=["done_at"], name="memberaction_done_at"),
        ]

    def __str__(self) -> str:
        return f"{self.action} for {self.member_id}"


def event_data_errors(data: dict[str, Any]) -> dict[str, str]:
    """Per key, what is wrong with an event's data (empty when nothing is): a message must not say "Balance: abc"."""
    return {
        key: f"Must be a whole number, e.g. 50 (got {json.dumps(data[key])})."
        for key in WHOLE_NUMBER_DATA
        if data.get(key) is not None and not is_whole_number(data[key])
    }


class LoyaltyEvent(models.Model):
    """Something a member did or received. Unique on the sender's event id, so a repeated delivery is one event."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="loyalty_events")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="loyalty_events")
    external_id = models.CharField("sender's event id", max_length=100)
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    # Set once every message this event causes has been created; the dispatcher looks only at unset ones.
    messages_planned_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [models.UniqueConstraint(fields=["client", "external_id"], name="unique_event_per_client")]
        # The admin list's order (newest first) and its search by the sender's event id across clients.
        indexes = [
            models.Index(fields=["occurred_at"], name="loyaltyevent_occurred_at"),
            models.Index(fields=["external_id"], name="loyaltyevent_external_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_type_display()} · {self.member}"

    def clean(self) -> None:
        if not isinstance(self.data, dict):
            raise ValidationError({"data": 'Must be a JSON object, e.g. {"points": 50, "balance": 1250}.'})
        if errors := event_data_errors(self.data):
            raise ValidationError({"data": " ".join(f"{key}: {error}" for key, error in errors.items())})


def template_placeholders(text: str) -> set[str]:
    return set(placeholders_in(text))


def validate_template_text(text: str) -> None:
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise ValidationError(f"Keep the text under {MAX_TEMPLATE_LENGTH} characters (it has {len(text)}).")
    names = template_placeholders(text)
    unknown = sorted(name for name in names if name not in PLACEHOLDERS)
    if unknown:
        raise ValidationError(
            f"Unknown {ngettext('placeholder', 'placeholders', len(unknown))}: {', '.join(unknown)}. Use only: "
            + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
            + "."
        )


def cannot_send_sms(spec: VendorSpec) -> str:
    """Why a template on a connection of this vendor can send nothing (the admin's field error, and the detail of
    the messages such a template would have produced)."""
    senders = ", ".join(VENDORS[key].label for key in MESSAGE_VENDORS)
    return f"The template's connection ({spec.label}) cannot send SMS: choose an SMS connection ({senders})."


class MessageTemplate(models.Model):
    """The text a client sends for one event type, and the connection it goes out through."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="message_templates")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="message_templates")
    text = models.TextField(validators=[validate_template_text], help_text="Placeholders such as {first_name}.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["client", "event_type"]
        constraints = [models.UniqueConstraint(fields=["client", "event_type"], name="one_template_per_event_type")]

    def __str__(self) -> str:
        return f"{self.client} · {self.get_event_type_display()}"

    def clean(self) -> None:
        if self.connection_id and self.client_id and self.connection.client_id != self.client_id:
            raise ValidationError({"connection": "Choose a connection of the same client."})
        if self.connection_id and not self.connection.spec.sends_messages:
            raise ValidationError({"connection": cannot_send_sms(self.connection.spec)})


class OutboundMessage(models.Model):
    """One message to one member caused by one event. Unique on (event, template): never sent twice.

    Sending is a small state machine, each step recorded before it is taken: pending → claimed (a run holds it;
    nothing sent yet) → attempting (the request may have left) → sent | failed | uncertain (it may have reached
    the vendor and no answer says so: shown to the admin, never sent again by itself). Only what was never
    attempted goes back to pending."""

    class Status(models.TextChoices):
        PENDING = "pending"
        CLAIMED = "claimed"
        ATTEMPTING = "attempting"
        SENT = "sent"
        SKIPPED = "skipped"
        FAILED = "failed"
        UNCERTAIN = "uncertain"

    event = models.ForeignKey(LoyaltyEvent, on_delete=models.CASCADE, related_name="messages")
    # Indexed with the time (Meta.indexes), which also serves every lookup by template alone.
    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="messages", db_index=False)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="messages")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="messages")
    to = models.CharField(max_length=16, blank=True)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    detail = models.TextField(blank=True)
    # Indexed for the list's order and for retention (the newest message past it is found through this column).
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Which dispatch run holds this message while it is being sent; two runs can never hold the same one.
    claim = models.CharField(max_length=32, blank=True, db_index=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    # Indexed for the dashboard's "messages sent" chart (a window of sent_at).
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Set while a pending message waits on its connection (draft, disabled, failing); `detail` says why.
    held_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["event", "template"], name="one_message_per_event_template")]
        indexes = [
            # The list's search by the number a message went to (exact, E.164).
            models.Index(fields=["to"], name="outboundmessage_to"),
            # The list read per template, newest first: a client's messages, an event type's (portal/keyset.py).
            models.Index(fields=["template", "created_at"], name="outboundmessage_template_time"),
        ]

    def __str__(self) -> str:
        return f"{self.to}: {self.body[:40]}"


class Segment(models.Model):
    """A named set of members with Annex Cloud's segment fields; exported as CSV and pushed to Annex Cloud."""

    class Type(models.TextChoices):
        CURRENT = "Current Data"
        PAST = "Past Data"

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        INACTIVE = "INACTIVE"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.CURRENT)
    from_date = models.DateField(null=True, blank=True)
    to_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    external_id = models.CharField(max_length=100, blank=True)
    external_name = models.CharField(max_length=200, blank=True)
    members = models.ManyToManyField(Member, through="SegmentMember", related_name="segments", blank=True)
    # A saved filter (opted_in, loyalty_opted_in, status, tier, joined_from, joined_to) that "Apply saved filter"
    # adds members by.
    saved_filter = models.JSONField(default=dict, blank=True)
    annex_cloud_segment_id = models.CharField("Annex Cloud segment id", max_length=50, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)
    push_result = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["client", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.from_date and self.to_date and self.from_date > self.to_date:
            raise ValidationError({"to_date": "The to date must be on or after the from date."})


class SegmentMember(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="links")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="segment_links")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "member"], name="member_once_per_segment")]

    def __str__(self) -> str:
        return f"{self.member_id} in {self.segment_id}"


class SegmentExport(models.Model):
    """A large export written to a file by a job; the admin links to it when it is ready."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        READY = "ready"
        FAILED = "failed"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="exports")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(upload_to="segment-exports/", blank=True)
    rows = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.segment} export {self.created_at:%Y-%m-%d %H:%M}"


def member_import_path(instance: MemberImport, filename: str) -> str:
    # A name of our own: the uploader's file name is only shown, never part of a path.
    return f"member-imports/{uuid.uuid4().hex}.csv"


class MemberImport(models.Model):
    """A member CSV too large to import during the upload request: stored under MEDIA_ROOT and imported by a job
    in batches. Each batch commits its members, its counts, its errors and where the next batch starts together,
    so a run that is killed half-way loses nothing and repeats nothing."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="member_imports")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    file = models.FileField(upload_to=member_import_path, blank=True)
    file_name = models.CharField("uploaded file", max_length=255)
    rows = models.PositiveIntegerField(help_text="Rows found when the file was uploaded.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    # Where the next batch starts: the byte offset in the file and the number of the line before it.
    offset = models.PositiveBigIntegerField(default=0)
    line = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    job_run = models.ForeignKey(JobRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.client})"

    @property
    def processed(self) -> int:
        return self.created + self.updated + self.failed


class MemberImportError(models.Model):
    """One line of a background import that was not imported, and why: the import's error report."""

    member_import = models.ForeignKey(MemberImport, on_delete=models.CASCADE, related_name="errors")
    line = models.PositiveIntegerField()
    reason = models.TextField()

    class Meta:
        ordering = ["member_import", "line"]
        indexes = [models.Index(fields=["member_import", "line"])]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"
