"""Every admin list clamps its cells to a few lines and gives a long value's whole text on hover
(integrations/templatetags/list_cells.py; the browser check is tests/e2e/test_console_journeys.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import MemberFactory
from tests.list_pages import column

pytestmark = pytest.mark.django_db
LONG_EMAIL = "firstname.middlename.lastname@a-long-company-name-international-holdings.example.com"


def members_list(admin_http) -> str:
    return admin_http.get(reverse("admin:members_member_changelist")).content.decode()


def test_a_long_value_is_clamped_with_its_whole_text_on_hover_and_a_short_one_is_left_plain(admin_http, client_a):
    MemberFactory(client=client_a, email=LONG_EMAIL, last_name="A")
    MemberFactory(client=client_a, email="ann@example.com", last_name="B")
    page = members_list(admin_http)
    assert column(page, "email") == [{"text": LONG_EMAIL, "title": LONG_EMAIL}, {"text": "ann@example.com"}]
    assert f'<td class="field-email"><div class="cell" title="{LONG_EMAIL}">{LONG_EMAIL}</div></td>' in page


def test_a_tooltip_is_escaped_like_the_cell(admin_http, client_a):
    hostile = '"><script>alert(1)</script>' + "x" * 40
    MemberFactory(client=client_a, first_name=hostile)
    page = members_list(admin_http)
    assert "<script>alert(1)" not in page
    [member] = column(page, "member")
    assert hostile in member["text"]


def test_the_selection_checkbox_is_left_as_django_renders_it(admin_http, client_a):
    member = MemberFactory(client=client_a)
    page = members_list(admin_http)
    checkbox = f'<td class="action-checkbox"><input type="checkbox" name="_selected_action" value="{member.pk}"'
    assert checkbox in page


def test_a_list_of_a_library_app_is_clamped_too(admin_http):
    """The users list (django.contrib.auth's admin) goes through the same template."""
    page = admin_http.get(reverse("admin:auth_user_changelist")).content.decode()
    assert '<div class="cell">' in page
