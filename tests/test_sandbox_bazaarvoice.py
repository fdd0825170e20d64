"""The Bazaarvoice simulator speaks the documented contract: the passkey and apiversion are checked, filters (AND
across Filter parameters, OR within one), Sort, Limit (400 above 100), Offset and TotalResults; every answer carries
the QPM and quota headers, and the 429 knob answers with `X-Bazaarvoice-Quota-Reset`. Its generated reviewers are
members, non-members, opted-out and inactive ones at the Annex Cloud simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client as HttpClient

from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.bazaarvoice import sandbox as simulator
from integrations.bazaarvoice.emails import decrypt_email, email_key

URL = "/sandbox/bazaarvoice/data/reviews.json"


@pytest.fixture
def http(settings):
    simulator.reset()
    annex_cloud_simulator.state.__init__()
    yield HttpClient()
    simulator.reset()
    annex_cloud_simulator.state.__init__()


def get(http: HttpClient, *filters: str, **params: str):
    query = {"apiversion": "5.4", "passkey": simulator.PASSKEY, "Filter": list(filters), **params}
    return http.get(URL, query)


def test_reviews_of_every_moderation_status_and_today(http):
    kinds = simulator.generate(20, days=2, today=3, pending=2, rejected=1)
    everything = get(http, Limit="100").json()
    approved = get(http, "ModerationStatus:eq:APPROVED", Limit="100").json()
    not_approved = get(http, "ModerationStatus:eq:PENDING,REJECTED", Limit="100").json()
    today = int(datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    before_today = get(http, "ModerationStatus:eq:APPROVED", f"LastModeratedTime:lt:{today}", Limit="100").json()

    assert everything["TotalResults"] == 26 and approved["TotalResults"] == 23 and not_approved["TotalResults"] == 3
    assert before_today["TotalResults"] == 20
    assert sum(kinds.values()) == 20 and kinds["member"] == 12
    assert annex_cloud_simulator.state.members["reviewer1@example.com"]["optInStatus"] == "NO"
    assert annex_cloud_simulator.state.members["reviewer2@example.com"]["status"] == "INACTIVE"
    assert "reviewer0@example.com" not in annex_cloud_simulator.state.members


def test_paging_sorting_and_limits(http):
    simulator.generate(25, days=1)
    first = get(http, Sort="LastModeratedTime:asc", Limit="10").json()
    last = get(http, Sort="LastModeratedTime:asc", Limit="10", Offset="20").json()
    newest = get(http, Sort="LastModeratedTime:desc", Limit="1").json()

    assert (first["Limit"], first["Offset"], first["TotalResults"], len(first["Results"])) == (10, 0, 25, 10)
    assert len(last["Results"]) == 5 and newest["Results"][0] == last["Results"][-1]
    times = [r["LastModeratedTime"] for r in first["Results"]]
    assert times == sorted(times)
    assert len(get(http).json()["Results"]) == 10  # Limit defaults to 10
    too_many = get(http, Limit="101")
    assert too_many.status_code == 400 and too_many.json()["Errors"][0]["Code"] == "ERROR_PARAM_INVALID_LIMIT"
    assert get(http, Offset="300001").status_code == 400
    assert get(http, "Nonsense:eq:1").status_code == 400


def test_the_passkey_and_version_are_checked_and_headers_sent(http):
    wrong = http.get(URL, {"apiversion": "5.4", "passkey": "nope"})
    no_version = http.get(URL, {"passkey": simulator.PASSKEY})
    good = get(http)

    assert wrong.json()["Errors"][0]["Code"] == "ERROR_PARAM_INVALID_API_KEY"
    assert no_version.json()["HasErrors"] is True
    assert good.json()["HasErrors"] is False
    for name in ("QPM-Allotted", "QPM-Current", "Quota-Allotted", "Quota-Current", "Quota-Reset"):
        assert good.headers[f"X-Bazaarvoice-{name}"]


def test_the_429_knob_answers_with_the_quota_reset(http):
    http.post("/sandbox/bazaarvoice/_control", {"rate_limit": 1, "quota_reset": "00:05:00"}, "application/json")
    limited, then = get(http), get(http)
    assert limited.status_code == 429 and limited.headers["X-Bazaarvoice-Quota-Reset"] == "00:05:00"
    assert "Retry-After" not in limited.headers
    assert then.status_code == 200


def test_emails_are_encrypted_with_the_state_derivation_and_some_are_not_decryptable(http):
    simulator.state.derivation = "sha1"
    simulator.generate(10, days=1)
    items = {r["Id"]: r["UserEmailAddress"] for r in get(http, Limit="100").json()["Results"]}
    key = email_key(simulator.SHARED_SECRET, "sha1")
    assert decrypt_email(items["46000004"], key) == "reviewer4@example.com"
    assert items["46000003"] == "not-a-valid-ciphertext=="


def test_time_filters_take_epoch_seconds_and_combine(http):
    simulator.generate(10, days=1)
    moments = [r["LastModeratedTime"] for r in get(http, Sort="LastModeratedTime:asc", Limit="100").json()["Results"]]
    middle = int(datetime.fromisoformat(moments[5]).timestamp())
    after = get(http, f"LastModeratedTime:gte:{middle}", Limit="100").json()
    window = get(
        http, f"LastModeratedTime:gte:{middle}", f"LastModeratedTime:lt:{middle + 1}", "Rating:gte:1", Limit="100"
    ).json()
    assert after["TotalResults"] == 5 and window["TotalResults"] == 1
    assert (
        get(http, f"LastModeratedTime:gt:{int((datetime.now(UTC) + timedelta(days=1)).timestamp())}").json()[
            "TotalResults"
        ]
        == 0
    )


def test_reviews_can_be_generated_over_a_span_such_as_behind_a_cursor(http):
    since = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    kinds = simulator.generate(
        10, first=500, moderated_from=since.isoformat(), moderated_until=(since + timedelta(hours=10)).isoformat()
    )
    answer = get(http, "ModerationStatus:eq:APPROVED", Sort="LastModeratedTime:asc", Limit="100").json()
    times = [datetime.fromisoformat(item["LastModeratedTime"]) for item in answer["Results"]]
    assert answer["TotalResults"] == 10 and sum(kinds.values()) == 10
    assert times[0] == since and times[-1] < since + timedelta(hours=10) and times == sorted(times)
    assert {item["Id"] for item in answer["Results"]} == {str(46_000_500 + n) for n in range(10)}
