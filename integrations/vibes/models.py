"""What Vibes work keeps: which Vibes person each member is, and each person's subscription to each list, as the
callbacks say."""

from __future__ import annotations

from django.db import models

from integrations.models import Client
from members.models import Member


class VibesListSubscription(models.Model):
    """A Vibes person's subscription to one list, as the latest applied callback says. Kept even when the person
    matches no member yet (member is empty until one appears)."""

    class State(models.TextChoices):
        SUBSCRIBED = "subscribed"
        UNSUBSCRIBED = "unsubscribed"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="vibes_subscriptions")
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="vibes_subscriptions"
    )
    person_id = models.CharField("Vibes person id", max_length=100)
    external_id = models.CharField(max_length=100, blank=True)
    mdn = models.CharField("mobile number (MDN)", max_length=16, blank=True)
    list_id = models.CharField("subscription list id", max_length=100)
    state = models.CharField(max_length=16, choices=State.choices)
    opt_in_date = models.DateTimeField(null=True, blank=True)
    opt_out_date = models.DateTimeField(null=True, blank=True)
    opt_out_reason = models.CharField(max_length=50, blank=True)
    acquisition_campaign_id = models.CharField(max_length=100, blank=True)
    # The event_date of the callback this row reflects: older callbacks arriving later are ignored.
    last_event_date = models.DateTimeField()
    last_event_id = models.CharField(max_length=100, blank=True)

    class Meta:
        # The table it had as a members model (moved here by state alone: its rows stay where they were).
        db_table = "members_vibeslistsubscription"
        ordering = ["client", "person_id", "list_id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "person_id", "list_id"], name="one_vibes_state_per_list")
        ]

    def __str__(self) -> str:
        return f"Vibes {self.person_id} list {self.list_id}: {self.state}"


class VibesPerson(models.Model):
    """The Vibes person a member is: the id Vibes answered when the portal added or updated the member, or the one a
    callback matched to the member. Later updates go to that person; a callback naming it finds the member."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="vibes_person")
    person_id = models.CharField("Vibes person id", max_length=100, db_index=True)

    def __str__(self) -> str:
        return f"Vibes person {self.person_id} ({self.member_id})"
