"""The logs' admin lists page by keyset (portal/keyset.py, issue 22): newest first, an "Older" link carrying the
last row's (time, id) instead of ?p=N, so a deep page reads the rows it shows and not the ones before it. Filters,
the search box and a client user's scope hold on every page."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.models import JobRun, VendorCall, WebhookEvent

pytestmark = pytest.mark.django_db

CALLS_URL = reverse("admin:integrations_vendorcall_changelist")
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def make_calls(connection, count: int, *, failing_every: int = 0) -> list[VendorCall]:
    """`count` calls, three to a moment (so the keyset's id breaks ties), newest last."""
    calls = [
        VendorCall(
            connection=connection,
            method="POST",
            url="https://vendor.example/v1/x",
            status_code=500 if failing_every and index % failing_every == 0 else 200,
            created_at=NOW - timedelta(seconds=count - index // 3),
        )
        for index in range(count)
    ]
    return VendorCall.objects.bulk_create(calls)


def newest_first(calls) -> list[int]:
    return [call.pk for call in sorted(calls, key=lambda call: (call.created_at, call.pk), reverse=True)]


def older_link(response) -> str | None:
    found = re.search(r'<a href="([^"]+)" class="older">', response.content.decode())
    return html.unescape(found.group(1)) if found else None


def walk(http, url: str) -> tuple[list[int], list[str]]:
    """Every row of the list, following Older links from the first page; the URLs of the pages visited."""
    seen, urls, base = [], [], url.split("?", 1)[0]
    while url is not None:
        response = http.get(url)
        assert response.status_code == 200, url
        seen += [row.pk for row in response.context["cl"].result_list]
        urls.append(url)
        link = older_link(response)
        url = base + link if link else None
        assert len(urls) < 50, "the Older links never end"
    return seen, urls


def test_older_links_walk_every_row_once_newest_first_with_ties_broken_by_id(admin_http, connection_a):
    calls = make_calls(connection_a, 250)
    seen, urls = walk(admin_http, CALLS_URL)
    assert seen == newest_first(calls)
    assert len(urls) == 3 and all("before=" in url for url in urls[1:])
    assert all("p=" not in url for url in urls)


def test_a_deep_page_reads_from_its_cursor_not_past_an_offset(admin_http, connection_a):
    make_calls(connection_a, 250)
    _, urls = walk(admin_http, CALLS_URL)
    with CaptureQueriesContext(db) as queries:
        admin_http.get(urls[-1])
    rows = [q["sql"] for q in queries.captured_queries if 'FROM "integrations_vendorcall"' in q["sql"]]
    assert rows and not any("OFFSET" in sql for sql in rows), rows


def test_a_filter_holds_on_every_older_page_and_a_changed_filter_starts_at_the_newest(admin_http, connection_a):
    calls = make_calls(connection_a, 600, failing_every=4)  # 150 failing calls: two pages of them
    seen, urls = walk(admin_http, CALLS_URL + "?status_class=5")
    assert seen == newest_first(call for call in calls if call.status_code == 500)
    assert all("status_class=5" in url for url in urls)
    # On an older page, the filter's own links drop the cursor: another status starts at the newest calls.
    page = admin_http.get(urls[1]).content.decode()
    links = [html.unescape(link) for link in re.findall(r'href="(\?[^"]*status_class=2[^"]*)"', page)]
    assert links and all("before=" not in link for link in links)


def test_the_search_holds_on_every_older_page(admin_http, connection_a):
    calls = make_calls(connection_a, 600, failing_every=4)
    seen, _ = walk(admin_http, CALLS_URL + "?q=500")  # a status, or a call's id
    assert seen == newest_first(call for call in calls if call.status_code == 500 or call.pk == 500)


# --- A filter no index answers searches a bounded stretch per page -------------------------------------------------


@pytest.fixture
def stretch_of_40(settings):
    settings.ADMIN_LOG_SEARCH_ROWS = 40
    return 40


def page_queries(http, url: str) -> list[str]:
    with CaptureQueriesContext(db) as queries:
        assert http.get(url).status_code == 200
    return [q["sql"] for q in queries.captured_queries if 'FROM "integrations_vendorcall"' in q["sql"]]


def test_an_unindexed_filter_searches_a_stretch_per_page_and_the_older_links_find_every_match_once(
    admin_http, connection_a, stretch_of_40
):
    calls = make_calls(connection_a, 600, failing_every=4)
    # A client's calls (read per connection), filtered by status: no index answers the pair.
    seen, urls = walk(admin_http, f"{CALLS_URL}?client={connection_a.client_id}&status_class=5")
    assert seen == newest_first(call for call in calls if call.status_code == 500)
    assert len(urls) >= 600 // stretch_of_40  # a stretch a page, never the whole log at once
    page = admin_http.get(urls[0]).content.decode()
    assert "every match back to" in page and "10 vendor calls, newest first" in page  # 40 rows, every 4th
    # The page's read of the log is bounded below by the stretch; only the stretch's own look-up reads past it.
    for sql in page_queries(admin_http, urls[1]):
        assert '"created_at" >=' in sql or ("OFFSET 40" in sql and "status_code" not in sql), sql


def test_a_filter_matching_nothing_still_answers_a_stretch_at_a_time(admin_http, connection_a, stretch_of_40):
    make_calls(connection_a, 200)
    response = admin_http.get(CALLS_URL + "?method=PUT")
    assert response.context["cl"].result_list == []
    assert "every match back to" in response.content.decode() and older_link(response)
    seen, _ = walk(admin_http, CALLS_URL + "?method=PUT")
    assert seen == []


def test_lists_the_indexes_answer_are_never_cut_into_stretches(admin_http, alice_http, connection_a, stretch_of_40):
    calls = make_calls(connection_a, 250)
    for http, url in [(admin_http, CALLS_URL), (admin_http, f"{CALLS_URL}?client={connection_a.client_id}"),
                      (alice_http, CALLS_URL)]:  # fmt: skip
        seen, urls = walk(http, url)
        assert seen == newest_first(calls) and len(urls) == 3
        assert "every match back to" not in http.get(url).content.decode()
    # A webhook event's status has its (status, time) index: whole pages, not stretches.
    events = [
        WebhookEvent.objects.create(connection=connection_a, status="failed", body="{}", received_at=NOW - timedelta(n))
        for n in range(120)
    ]
    seen, urls = walk(admin_http, reverse("admin:integrations_webhookevent_changelist") + "?status__exact=failed")
    assert seen == [event.pk for event in events] and len(urls) == 2


def test_a_client_users_messages_and_a_status_filter_are_never_cut_into_stretches(alice_http, templates, settings):
    """A client user's scope names the templates by id (no join): their messages are read per template, whole."""
    settings.ADMIN_LOG_SEARCH_ROWS = 40
    earned, rewarded, theirs = templates
    mine = make_messages(earned, 90) + make_messages(rewarded, 60)
    make_messages(theirs, 60)
    for url in (MESSAGES_URL, MESSAGES_URL + "?status__exact=pending"):
        assert walk_messages(alice_http, url) == newest_first(mine)
        assert "every match back to" not in alice_http.get(url).content.decode()


def test_a_filter_matching_no_connection_offers_no_older_stretch(admin_http, connection_a, stretch_of_40):
    make_calls(connection_a, 200)
    absent = next(vendor for vendor in ("vibes", "attentive", "bazaarvoice") if vendor != connection_a.vendor)
    response = admin_http.get(CALLS_URL, {"connection__vendor__exact": absent, "method": "PUT"})
    assert response.context["cl"].result_list == [] and older_link(response) is None


def test_a_client_user_pages_through_only_their_clients_calls(alice_http, connection_a, connection_b):
    mine = make_calls(connection_a, 150)
    make_calls(connection_b, 150)
    seen, _ = walk(alice_http, CALLS_URL)
    assert seen == newest_first(mine)


def test_a_bare_time_opens_the_list_at_that_moment(admin_http, connection_a):
    calls = make_calls(connection_a, 30)
    moment = NOW - timedelta(seconds=25)
    response = admin_http.get(CALLS_URL, {"before": moment.isoformat()})
    shown = [row.pk for row in response.context["cl"].result_list]
    assert shown == newest_first(call for call in calls if call.created_at < moment)
    assert 'class="newest"' in response.content.decode()


def test_a_malformed_cursor_is_an_invalid_lookup_not_an_error(admin_http, connection_a):
    make_calls(connection_a, 3)
    response = admin_http.get(CALLS_URL, {"before": "yesterday,abc"})
    assert response.status_code == 302 and "e=1" in response["Location"]


def test_webhook_events_and_job_runs_page_by_keyset_too(admin_http, connection_a):
    WebhookEvent.objects.bulk_create(
        WebhookEvent(connection=connection_a, event_id=f"ev-{n}", received_at=NOW - timedelta(seconds=n // 2))
        for n in range(150)
    )
    JobRun.objects.bulk_create(
        JobRun(job="members.sync_members", started_at=NOW - timedelta(seconds=n // 2)) for n in range(150)
    )
    for table, model, field in [
        ("webhookevent", WebhookEvent, "received_at"),
        ("jobrun", JobRun, "started_at"),
    ]:
        url = reverse(f"admin:integrations_{table}_changelist")
        first = admin_http.get(url)
        link = older_link(first)
        assert link and "before=" in link
        second = admin_http.get(url + link)
        shown = [row.pk for row in first.context["cl"].result_list + second.context["cl"].result_list]
        expected = list(model.objects.order_by(f"-{field}", "-pk").values_list("pk", flat=True))
        assert shown == expected
        assert older_link(second) is None


# --- Filters that match few calls: read per connection (issue 22, follow-up) --------------------------------------


def call_queries(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if 'FROM "integrations_vendorcall"' in q["sql"]]


def test_a_vendor_with_no_connection_lists_nothing_without_reading_the_call_table(admin_http, connection_a):
    make_calls(connection_a, 5)
    absent = next(vendor for vendor in ("vibes", "attentive", "bazaarvoice") if vendor != connection_a.vendor)
    with CaptureQueriesContext(db) as queries:
        response = admin_http.get(CALLS_URL, {"connection__vendor__exact": absent})
    assert response.status_code == 200 and response.context["cl"].result_list == []
    assert response.context["cl"].paginator.count == 0
    assert call_queries(queries) == []


def test_a_client_filter_reads_each_connection_from_its_index_and_merges_them_newest_first(
    admin_http, client_a, connection_a, connection_b
):
    from tests.factories import ConnectionFactory

    second = ConnectionFactory(client=client_a, vendor="vibes" if connection_a.vendor != "vibes" else "attentive")
    mine = make_calls(connection_a, 130) + make_calls(second, 70)
    make_calls(connection_b, 100)
    with CaptureQueriesContext(db) as queries:
        first = admin_http.get(CALLS_URL, {"client": client_a.pk})
    assert first.context["cl"].paginator.count == 200
    wheres = [sql.split("WHERE", 1)[-1] for sql in call_queries(queries)]
    per_connection = [where for where in wheres if '"integrations_vendorcall"."connection_id" = ' in where]
    assert per_connection, call_queries(queries)  # each connection's newest rows, from (connection, created_at)
    seen, urls = walk(admin_http, f"{CALLS_URL}?client={client_a.pk}")
    assert seen == newest_first(mine)
    assert len(urls) == 2


def test_a_client_user_and_a_vendor_filter_page_per_connection_too(alice_http, connection_a, connection_b):
    mine = make_calls(connection_a, 120)
    make_calls(connection_b, 60)
    seen, _ = walk(alice_http, f"{CALLS_URL}?connection__vendor__exact={connection_a.vendor}")
    assert seen == newest_first(mine)


def test_the_search_for_a_client_or_an_error_kind_never_joins_in_its_where(admin_http, connection_a, connection_b):
    calls = make_calls(connection_a, 40, failing_every=5)
    VendorCall.objects.filter(status_code=500).update(error_type="timeout")
    make_calls(connection_b, 40)
    for term, expected in [
        ("timeout", [c for c in calls if c.status_code == 500]),
        ("alpha", calls),
    ]:
        with CaptureQueriesContext(db) as queries:
            seen, _ = walk(admin_http, f"{CALLS_URL}?q={term}")
        assert seen == newest_first(expected), term
        wheres = [sql.split("WHERE", 1)[-1] for sql in call_queries(queries)]
        assert not any('"integrations_client"' in where or " OR " in where for where in wheres), wheres


def test_the_evidence_link_of_a_message_reads_its_connections_calls_per_connection(
    admin_http, connection_a, connection_b
):
    calls = make_calls(connection_a, 20)
    make_calls(connection_b, 20)
    params = {"connection__id__exact": connection_a.pk, "created_at__gte": (NOW - timedelta(seconds=10)).isoformat()}
    with CaptureQueriesContext(db) as queries:
        response = admin_http.get(CALLS_URL, params)
    shown = [row.pk for row in response.context["cl"].result_list]
    assert shown == newest_first(call for call in calls if call.created_at >= NOW - timedelta(seconds=10))
    wheres = [sql.split("WHERE", 1)[-1] for sql in call_queries(queries)]
    assert any('"integrations_vendorcall"."connection_id" = ' in where and "LIMIT" in where for where in wheres)


# --- Outbound messages: a client user's list and the event-type filter read per template --------------------------

MESSAGES_URL = reverse("admin:members_outboundmessage_changelist")


def message_queries(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if 'FROM "members_outboundmessage"' in q["sql"]]


def make_messages(template, count: int) -> list:
    from tests.factories import OutboundMessageFactory

    messages = OutboundMessageFactory.create_batch(count, template=template)
    for index, message in enumerate(messages):  # three to a moment, so the id breaks ties
        message.created_at = NOW - timedelta(seconds=count - index // 3)
    type(messages[0]).objects.bulk_update(messages, ["created_at"])
    return messages


def walk_messages(http, url: str) -> list[int]:
    seen = []
    while url is not None:
        response = http.get(url)
        assert response.status_code == 200, url
        seen += [row.pk for row in response.context["cl"].result_list]
        link = older_link(response)
        url = MESSAGES_URL + link if link else None
    return seen


@pytest.fixture
def templates(client_a, client_b, connection_a):
    from members.models import EventType
    from tests.factories import MessageTemplateFactory

    earned = MessageTemplateFactory(client=client_a, connection=connection_a, event_type=EventType.POINTS_EARNED)
    rewarded = MessageTemplateFactory(client=client_a, connection=connection_a, event_type=EventType.REWARD_ISSUED)
    theirs = MessageTemplateFactory(client=client_b, event_type=EventType.REWARD_ISSUED)
    return earned, rewarded, theirs


def test_a_client_users_messages_are_read_per_template_and_never_join_members(alice_http, templates):
    earned, rewarded, theirs = templates
    mine = make_messages(earned, 40) + make_messages(rewarded, 30)
    make_messages(theirs, 30)
    with CaptureQueriesContext(db) as queries:
        seen = walk_messages(alice_http, MESSAGES_URL)
    assert seen == newest_first(mine)
    wheres = [sql.split("WHERE", 1)[-1] for sql in message_queries(queries)]
    assert any('"members_outboundmessage"."template_id" = ' in where and "LIMIT" in where for where in wheres), wheres
    assert not any('"members_member"' in where for where in wheres), wheres


def test_the_event_type_filter_reads_its_templates_newest_rows_and_keeps_links_made_before(admin_http, templates):
    earned, rewarded, theirs = templates
    make_messages(earned, 40)
    rewards = make_messages(rewarded, 30) + make_messages(theirs, 30)
    url = f"{MESSAGES_URL}?template__event_type__exact={rewarded.event_type}"
    with CaptureQueriesContext(db) as queries:
        seen = walk_messages(admin_http, url)
    assert seen == newest_first(rewards)
    wheres = [sql.split("WHERE", 1)[-1] for sql in message_queries(queries)]
    assert any('"members_outboundmessage"."template_id" = ' in where for where in wheres), wheres
    assert not any('"members_messagetemplate"' in where for where in wheres), wheres


# --- Webhook events: a client, a vendor and a client user's scope read per connection ----------------------------

EVENTS_URL = reverse("admin:integrations_webhookevent_changelist")


def make_events(connection, count: int) -> list[WebhookEvent]:
    """`count` deliveries, three to a moment (so the keyset's id breaks ties), newest last."""
    events = [
        WebhookEvent(
            connection=connection,
            event_id=f"{connection.pk}-{index}",
            event_type="points_earned",
            received_at=NOW - timedelta(seconds=count - index // 3),
        )
        for index in range(count)
    ]
    return WebhookEvent.objects.bulk_create(events)


def newest_events_first(events) -> list[int]:
    return [event.pk for event in sorted(events, key=lambda event: (event.received_at, event.pk), reverse=True)]


def walk_events(http, url: str) -> tuple[list[int], list[str]]:
    """Every event of the list, following Older links; the WHERE clauses of the queries that read the events."""
    seen, wheres = [], []
    while url is not None:
        with CaptureQueriesContext(db) as queries:
            response = http.get(url)
        assert response.status_code == 200, url
        seen += [row.pk for row in response.context["cl"].result_list]
        wheres += [
            q["sql"].split("WHERE", 1)[-1]
            for q in queries.captured_queries
            if 'FROM "integrations_webhookevent"' in q["sql"]
        ]
        link = older_link(response)
        url = EVENTS_URL + link if link else None
        assert len(seen) < 2000, "the Older links never end"
    return seen, wheres


def assert_read_per_connection_without_a_join(wheres: list[str]) -> None:
    per_connection = [w for w in wheres if '"integrations_webhookevent"."connection_id" = ' in w and "LIMIT" in w]
    assert per_connection, wheres  # each connection's newest rows, from `webhookevent_connection_time`
    assert not any('"integrations_connection"' in w or '"integrations_client"' in w for w in wheres), wheres


def test_a_client_users_webhook_events_are_read_per_connection_without_a_join(
    alice_http, client_a, connection_a, connection_b
):
    from tests.factories import ConnectionFactory

    second = ConnectionFactory(client=client_a, vendor="vibes" if connection_a.vendor != "vibes" else "attentive")
    mine = make_events(connection_a, 90) + make_events(second, 40)
    make_events(connection_b, 60)
    seen, wheres = walk_events(alice_http, EVENTS_URL)
    assert seen == newest_events_first(mine)
    assert_read_per_connection_without_a_join(wheres)


def test_the_client_and_vendor_filters_of_webhook_events_read_per_connection_without_a_join(
    admin_http, client_a, connection_a, connection_b
):
    from tests.factories import ConnectionFactory

    vendor = "vibes" if connection_a.vendor != "vibes" else "attentive"
    second = ConnectionFactory(client=client_a, vendor=vendor)
    first_events, second_events = make_events(connection_a, 90), make_events(second, 40)
    theirs = make_events(connection_b, 60)
    vendors_events = second_events + (theirs if connection_b.vendor == vendor else [])
    for params, expected in [
        (f"client={client_a.pk}", first_events + second_events),
        # The parameter Django's own vendor filter had: links made before still open.
        (f"connection__vendor__exact={vendor}", vendors_events),
    ]:
        seen, wheres = walk_events(admin_http, f"{EVENTS_URL}?{params}")
        assert seen == newest_events_first(expected), params
        assert_read_per_connection_without_a_join(wheres)
