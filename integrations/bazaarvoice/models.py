"""What the Bazaarvoice pull keeps: each review seen once per client with what became of it, and each connection's
pull state (the cursor, the last run's counts, when the quota allows the next call)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from integrations.models import Client, Connection
from members.models import Member


class Review(models.Model):
    """One Bazaarvoice review of a client, recorded once whatever the number of times it is pulled. The reviewer's
    e-mail is kept as Bazaarvoice sent it (encrypted) only while a retry may need it (pending, failed, undecryptable);
    the plain address is never stored: a member is linked, anyone else is shown masked."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "pending"
        AWARDED = "awarded", "awarded"
        NOT_MEMBER = "not_member", "not a member"
        NOT_ELIGIBLE = "not_eligible", "not eligible"
        NOT_COUNTED = "not_counted", "not counted (reward rules)"
        UNDECRYPTABLE = "undecryptable", "undecryptable"
        FAILED = "failed", "failed"
        REVERSED = "reversed", "reversed"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="bazaarvoice_reviews")
    review_id = models.CharField("review id", max_length=64)
    product_id = models.CharField("product", max_length=200, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    ratings_only = models.BooleanField(default=False)
    moderated_at = models.DateTimeField("moderated", db_index=True)
    encrypted_email = models.CharField(max_length=512, blank=True)
    masked_email = models.CharField("reviewer", max_length=254, blank=True)
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="bazaarvoice_reviews"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING, db_index=True)
    points = models.PositiveIntegerField(default=0)
    detail = models.TextField("what happened", blank=True)
    annex_cloud_answer = models.JSONField("Annex Cloud's answer", default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reversal_reason = models.TextField(blank=True)
    reversed_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-moderated_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["client", "review_id"], name="one_review_per_client")]

    def __str__(self) -> str:
        return f"review {self.review_id}"

    @property
    def award_key(self) -> str:
        """The idempotency key of the award: the portal's PointsTransaction key and Annex Cloud's customId."""
        return f"bv-review-{self.review_id}"

    @property
    def reversal_key(self) -> str:
        return f"bv-review-{self.review_id}-reversal"


class PullState(models.Model):
    """Where a Bazaarvoice connection's pull stands. The cursor is the LastModeratedTime up to which reviews are
    recorded: the next run reads from the look-back behind it. It moves forward only after the reviews before it are
    recorded, never past where "not today" ends (the earlier of the client's and UTC midnight), and back only by a
    site admin's "Re-read from…"."""

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, related_name="bazaarvoice_pull")
    cursor = models.DateTimeField(null=True, blank=True)
    quota_reset_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_counts = models.JSONField(default=dict, blank=True)
    last_run_result = models.TextField(blank=True)
    # A run holds the pull for a while, so that "Pull now" and the hourly run never pull one connection at once;
    # a killed run's lease runs out, or is released when its run is closed as interrupted.
    lease_until = models.DateTimeField(null=True, blank=True)
    # The task id of the run holding it (integrations.job_runs.lease_holder): its redelivered execution takes the pull
    # over at once, and the pull is released when that run is closed as interrupted.
    holder = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"pull state of {self.connection}"
