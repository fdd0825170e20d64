"""Vibes' own record of a member's SMS opt-in: a list subscription (a `subscription_added` callback)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from integrations.vibes.models import VibesListSubscription


def sms_opt_in_on_record() -> Q:
    opted_in = VibesListSubscription.objects.filter(member=OuterRef("pk")).filter(
        Q(state=VibesListSubscription.State.SUBSCRIBED) | Q(opt_in_date__isnull=False)
    )
    return Q(Exists(opted_in))
