"""What the portal keeps of SessionM: each member's profile (the SessionM user id, and a forget request that
outlives the deleted member), the offers seen in members' wallets, the wallet scan's cursor per connection, and the
transactions relayed to Connect (one per caller's transaction id)."""

from __future__ import annotations

from django.db import models

from integrations.models import Client, Connection
from members.models import LoyaltyEvent, Member


class SessionMProfile(models.Model):
    """A member's SessionM profile. Kept when the member is deleted (member empty, `forget_requested_at` set) until
    SessionM has removed the profile: a failing SessionM delays the forget, nothing drops it."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="sessionm_profiles")
    member = models.OneToOneField(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessionm_profile"
    )
    external_id = models.CharField("external id", max_length=100, help_text="The portal's stable member key.")
    user_id = models.CharField("SessionM user id", max_length=100, blank=True, db_index=True)
    forget_requested_at = models.DateTimeField(null=True, blank=True)
    forgotten_at = models.DateTimeField(null=True, blank=True)
    # The first wallet read recorded: the offers of a member from before SessionM was activated that are already in
    # the wallet then are not announced as new.
    wallet_first_read_at = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "SessionM profile"
        ordering = ["client", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "external_id"], name="one_sessionm_profile_per_external_id")
        ]

    def __str__(self) -> str:
        return f"{self.external_id} → {self.user_id or 'not created yet'}"


class SessionMOffer(models.Model):
    """One offer in one member's wallet, as last read; the events it caused are linked so each is made once."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="sessionm_offers")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="sessionm_offers")
    offer_id = models.CharField("SessionM user offer id", max_length=100)
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    redemption_end_date = models.DateTimeField(null=True, blank=True)
    redeemed = models.BooleanField(default=False)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    issued_event = models.ForeignKey(LoyaltyEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    expiring_event = models.ForeignKey(LoyaltyEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = "SessionM offer"
        ordering = ["member", "redemption_end_date"]
        constraints = [models.UniqueConstraint(fields=["member", "offer_id"], name="one_sessionm_offer_per_member")]

    def __str__(self) -> str:
        return self.name or self.offer_id


class OfferScan(models.Model):
    """Where the wallet scan of one connection stands: the last member whose wallet was read and recorded (the
    cursor moves only in the transaction that records that member's offers), and the lease of the run scanning."""

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, related_name="sessionm_offer_scan")
    last_member_id = models.PositiveBigIntegerField(default=0)
    passes = models.PositiveIntegerField(default=0, help_text="Complete passes over the client's members.")
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The task id of the run holding the scan (integrations.job_runs.lease_holder): its redelivered execution takes the
    # scan over at once, and the scan is released when that run is closed as interrupted.
    holder = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.connection}: after member {self.last_member_id}"


class SessionMActivation(models.Model):
    """When the connection was first usable (active): members who joined from then on are welcomed, those imported
    before it (while it was a draft) are not. Not the row's creation: a connection is often set up long before."""

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, related_name="sessionm_activation")
    first_active_at = models.DateTimeField()

    class Meta:
        verbose_name = "SessionM activation"

    def __str__(self) -> str:
        return f"{self.connection}: first active {self.first_active_at:%Y-%m-%d %H:%M}"


class SessionMTransaction(models.Model):
    """A purchase relayed to Connect's send_transaction, unique on the caller's transaction id (SessionM's
    request_id): a repeat answers the stored answer without calling SessionM again."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending (no answer yet: repeat to send again)"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="sessionm_transactions")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="sessionm_transactions")
    request_id = models.CharField("transaction id (request_id)", max_length=100)
    request = models.JSONField(default=dict, help_text="The request_payload sent.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    response = models.JSONField(default=dict, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SessionM transaction"
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["client", "request_id"], name="one_sessionm_transaction_per_id")]

    def __str__(self) -> str:
        return f"{self.request_id} · {self.member}"
