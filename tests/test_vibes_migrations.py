"""Moving what Vibes keeps into its own app loses nothing on upgrade: the list subscriptions keep their table, rows
and content type (so permissions granted on them stay granted), and each member's Vibes person id becomes a
VibesPerson row."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from integrations.vibes.models import VibesListSubscription, VibesPerson
from tests.migrating import migrate, migrate_to_latest

BEFORE = [("members", "0015_outboundmessage_to"), ("vibes", None)]


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_keeps_the_subscriptions_their_permissions_and_the_members_person_ids(client_a):
    executor = migrate(BEFORE)
    try:
        old = executor.loader.project_state([BEFORE[0]]).apps  # the members app before the move, no vibes app
        OldMember = old.get_model("members", "Member")
        OldSubscription = old.get_model("members", "VibesListSubscription")
        known = OldMember.objects.create(client_id=client_a.pk, phone="+14045550001", vibes_person_id="P-1")
        unknown = OldMember.objects.create(client_id=client_a.pk, phone="+14045550002")
        OldSubscription.objects.create(
            client_id=client_a.pk, member_id=known.pk, person_id="P-1", list_id="7", state="subscribed",
            last_event_date="2026-01-01T00:00:00Z",
        )  # fmt: skip
        # Before the move the model's content type is the members app's (reversing vibes/0001 put it back there).
        content_type = ContentType.objects.get(model="vibeslistsubscription")
        assert content_type.app_label == "members"
        view = Permission.objects.get(content_type=content_type, codename="view_vibeslistsubscription")

        migrate_to_latest()

        subscription = VibesListSubscription.objects.get()
        assert (subscription.member_id, subscription.person_id, subscription.list_id) == (known.pk, "P-1", "7")
        assert dict(VibesPerson.objects.values_list("member_id", "person_id")) == {known.pk: "P-1"}
        assert not VibesPerson.objects.filter(member_id=unknown.pk).exists()
        view.refresh_from_db()
        assert (view.content_type.pk, view.content_type.app_label) == (content_type.pk, "vibes")
    finally:
        # Back to the latest schema whatever happened: the tests after this one need it.
        migrate_to_latest()
