"""The columns that matter first (issue 24): a list at 1400 px shows its first columns whole and clips the rest, so
what support looks for comes first — a review's outcome, points and why before its product and rating; a member's
phone and e-mail before their standing."""

from __future__ import annotations

import pytest
from django.contrib import admin

from integrations.bazaarvoice.models import Review
from members.models import Member

pytestmark = pytest.mark.django_db


def first_columns(model, count: int) -> list[str]:
    return list(admin.site._registry[model].list_display[:count])


def test_a_reviews_outcome_points_and_reason_come_before_where_it_came_from():
    assert first_columns(Review, 4) == ["review_id", "outcome", "points", "what_happened"]


def test_a_members_phone_and_email_come_before_their_standing():
    assert first_columns(Member, 4) == ["member", "client", "phone", "email"]


def test_a_long_value_is_clipped_in_the_list_with_the_whole_on_hover_and_on_its_page(admin_http):
    from django.urls import reverse

    from tests.factories import OutboundMessageFactory

    body = "Hi Amanda, you earned 50 points at Alpha Apparel! " * 4
    message = OutboundMessageFactory(body=body)
    listing = admin_http.get(reverse("admin:members_outboundmessage_changelist")).content.decode()
    assert f'<span class="clipped" title="{body}">{body[:49]}…</span>' in listing
    page = admin_http.get(reverse("admin:members_outboundmessage_change", args=[message.pk])).content.decode()
    assert body in page
