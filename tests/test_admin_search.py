"""The admin's search boxes on large tables read indexed columns only (issue 22): a vendor call by id, status,
vendor, client or error kind — never its bodies or URL; a member by e-mail in any case, mobile number however typed,
or Annex Cloud id; and a filter's choices come from an index, not a DISTINCT over the table."""

from __future__ import annotations

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.models import VendorCall
from members.models import Member
from tests.factories import LoyaltyEventFactory

pytestmark = pytest.mark.django_db

CALLS_URL = reverse("admin:integrations_vendorcall_changelist")
MEMBERS_URL = reverse("admin:members_member_changelist")


def shown(http, url: str, **params) -> list[int]:
    response = http.get(url, params)
    assert response.status_code == 200
    return [row.pk for row in response.context["cl"].result_list]


def call(connection, **fields) -> VendorCall:
    defaults = {"method": "POST", "url": "https://vendor.example/v1/events", "status_code": 200}
    return VendorCall.objects.create(connection=connection, **{**defaults, **fields})


def test_a_call_is_found_by_id_status_vendor_client_or_error_kind(admin_http, connection_a, connection_b):
    ok = call(connection_a)
    failed = call(connection_b, status_code=503, error_type="unavailable")
    assert shown(admin_http, CALLS_URL, q=str(ok.pk)) == [ok.pk]
    assert shown(admin_http, CALLS_URL, q="503") == [failed.pk]
    assert shown(admin_http, CALLS_URL, q="unavailable") == [failed.pk]
    assert shown(admin_http, CALLS_URL, q="beta") == [failed.pk]  # the client's slug
    assert shown(admin_http, CALLS_URL, q="Beta Boutique") == [failed.pk]  # its name
    assert set(shown(admin_http, CALLS_URL, q=connection_a.vendor)) >= {ok.pk}


def test_the_call_search_never_reads_bodies_or_urls(admin_http, connection_a):
    call(connection_a, response_body='{"needle": true}', url="https://vendor.example/needle")
    with CaptureQueriesContext(db) as queries:
        assert shown(admin_http, CALLS_URL, q="needle") == []
    listed = [q["sql"] for q in queries.captured_queries if 'FROM "integrations_vendorcall"' in q["sql"]]
    unindexed = [
        f'"integrations_vendorcall"."{column}"' for column in ("url", "request_body", "response_body", "error")
    ]
    searched = [sql.split("WHERE", 1)[-1] for sql in listed]
    assert listed and not any(column in where for column in unindexed for where in searched), listed


def test_a_client_user_searching_a_status_finds_only_their_calls(alice_http, connection_a, connection_b):
    mine = call(connection_a, status_code=500)
    call(connection_b, status_code=500)
    assert shown(alice_http, CALLS_URL, q="500") == [mine.pk]


@pytest.fixture
def ann(client_a) -> Member:
    return Member.objects.create(
        client=client_a, email="Ann.Lee@Example.com", phone="+14045550123", annex_cloud_id="AC-77", first_name="Ann"
    )


@pytest.mark.parametrize(
    "term", ["ann.lee@example.com", "ANN.LEE@EXAMPLE.COM", "+14045550123", "(404) 555-0123", "404 555 0123", "AC-77"]
)
def test_a_member_is_found_by_email_in_any_case_number_as_typed_or_annex_cloud_id(admin_http, ann, client_b, term):
    Member.objects.create(client=client_b, email="bob@example.com", phone="+14045550999", annex_cloud_id="AC-78")
    assert shown(admin_http, MEMBERS_URL, q=term) == [ann.pk]


def test_the_member_search_matches_whole_values_on_indexed_columns(admin_http, ann):
    with CaptureQueriesContext(db) as queries:
        assert shown(admin_http, MEMBERS_URL, q="Ann") == []  # a name or a fragment is not a search key
    listed = [q["sql"] for q in queries.captured_queries if 'FROM "members_member"' in q["sql"]]
    assert listed and not any("LIKE" in sql.upper() for sql in listed), listed


def test_a_client_user_finds_no_member_of_another_client(alice_http, client_b):
    Member.objects.create(client=client_b, email="bob@example.com")
    assert shown(alice_http, MEMBERS_URL, q="bob@example.com") == []


def test_filter_choices_come_without_a_distinct_scan(admin_http, client_a, connection_a):
    Member.objects.create(client=client_a, email="a@example.com", tier="Gold")
    Member.objects.create(client=client_a, email="b@example.com", tier="Silver")
    call(connection_a, error_type="timeout", status_code=None)
    with CaptureQueriesContext(db) as queries:
        page = admin_http.get(MEMBERS_URL).content.decode()
        admin_http.get(CALLS_URL)
    assert "tier=Gold" in page and "tier=Silver" in page
    distinct = [q["sql"] for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]
    assert distinct == []


# --- Outbound messages: keyset paging and a search on indexed columns (issue 22, follow-up) ------------------------

MESSAGES_URL = reverse("admin:members_outboundmessage_changelist")


def test_outbound_messages_page_by_keyset_newest_first(admin_http, client_a):
    import html
    import re

    from members.models import OutboundMessage
    from tests.factories import MessageTemplateFactory, OutboundMessageFactory

    template = MessageTemplateFactory(client=client_a)
    made = [OutboundMessageFactory(template=template).pk for _ in range(103)]
    first = admin_http.get(MESSAGES_URL)
    link = re.search(r'<a href="([^"]+)" class="older">', first.content.decode())
    assert link and "before=" in link.group(1)
    second = admin_http.get(MESSAGES_URL + html.unescape(link.group(1)))
    shown_pks = [row.pk for row in first.context["cl"].result_list + second.context["cl"].result_list]
    assert sorted(shown_pks) == sorted(made)
    assert shown_pks == list(OutboundMessage.objects.order_by("-created_at", "-pk").values_list("pk", flat=True))


@pytest.mark.parametrize("term", ["+14045550123", "(404) 555-0123", "404 555 0123"])
def test_a_message_is_found_by_its_number_as_typed_or_its_id_never_by_a_fragment(admin_http, client_a, term):
    from tests.factories import MessageTemplateFactory, OutboundMessageFactory

    template = MessageTemplateFactory(client=client_a)
    mine = OutboundMessageFactory(template=template, to="+14045550123", body="Hi Ann, 50 points")
    OutboundMessageFactory(template=template, to="+14045550999")
    assert shown(admin_http, MESSAGES_URL, q=term) == [mine.pk]
    assert shown(admin_http, MESSAGES_URL, q=str(mine.pk)) == [mine.pk]
    with CaptureQueriesContext(db) as queries:
        assert shown(admin_http, MESSAGES_URL, q="points") == []  # the text is not a search key (a scan)
    listed = [q["sql"] for q in queries.captured_queries if 'FROM "members_outboundmessage"' in q["sql"]]
    assert listed and not any("LIKE" in sql.upper() for sql in listed), listed


def test_a_loyalty_event_is_found_by_the_senders_id_as_given_from_its_index(admin_http, client_a):
    """Django's "=" search compares in any case (UPPER on both sides): no index answers that, so 2 million events
    were scanned on every search."""
    wanted = LoyaltyEventFactory(client=client_a, external_id="Order-123")
    LoyaltyEventFactory(client=client_a, external_id="order-1234")
    url = reverse("admin:members_loyaltyevent_changelist")
    with CaptureQueriesContext(db) as queries:
        assert shown(admin_http, url, q="Order-123") == [wanted.pk]
    listed = [q["sql"] for q in queries.captured_queries if 'FROM "members_loyaltyevent"' in q["sql"]]
    assert listed and not any("UPPER" in sql.upper() or "LIKE" in sql.upper() for sql in listed), listed
