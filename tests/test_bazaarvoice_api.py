"""Bazaarvoice's contract, against a local HTTP server: the exact request of a page and of Verify, every documented
error answer (the passkey refused in a 200 body, Limit above 100, a 429 with its quota reset, a 5xx), narrowing a
window that holds more than Offset can reach; and e-mail decryption against vectors made with
`openssl enc -aes-128-ecb` (both key derivations) and the seed's own sample."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations.bazaarvoice import flows as bazaarvoice
from integrations.bazaarvoice.api import BazaarvoiceAPI, seconds_until_reset
from integrations.bazaarvoice.emails import SHA1, Undecryptable, decrypt_email, email_key, encrypt_email, masked
from integrations.connections import verify
from integrations.http import AuthError, RateLimited, Rejected, RetryPolicy, Unavailable
from integrations.models import Connection, VendorCall
from integrations.redaction import REDACTED
from tests.factories import ConnectionFactory

PASSKEY = "contract-passkey-0123456789"
SECRET = "bvsbx-shared-Z9k4m2Lp"
# Made with: printf %s "$ADDRESS" | openssl enc -aes-128-ecb -K "$KEY_HEX" -base64 -A, where KEY_HEX is the first 16
# bytes of the secret (62767362782d7368617265642d5a396b) or of its SHA-1 (9ccdaef7164f64edad4a3334baa26090).
OPENSSL_PLAIN16 = "Aes3+LWcqFYGnG+TY9YK0F67Wy3jgJKHKurqMK/xQ9E="
OPENSSL_SHA1 = "VYoKQZ93CZ415aupbfjR85vZCthOIyQmDIhzcG6rftY="
OPENSSL_SHORT = "//iz8muo8LUG+8p0Lzz7uQ=="  # "a@b.co", one block
SEED_SAMPLE = "0eGkCOLTAjRxwM38N8Qg/p7Z7ruhbxjJfcQKxzURlHs="


def api_for(server: HTTPServer, **kwargs) -> BazaarvoiceAPI:
    return BazaarvoiceAPI(server.url_for(""), passkey=PASSKEY, secret_values=[PASSKEY], **kwargs)


def page(results: list[dict], total: int, **extra) -> dict:
    return {"Limit": 100, "Offset": 0, "TotalResults": total, "Results": results, "HasErrors": False, **extra}


# --- Decryption ----------------------------------------------------------------------------------------------------


def test_decrypts_openssl_vectors_with_both_key_derivations():
    assert email_key(SECRET).hex() == "62767362782d7368617265642d5a396b"
    assert email_key(SECRET, SHA1).hex() == "9ccdaef7164f64edad4a3334baa26090"
    assert decrypt_email(OPENSSL_PLAIN16, email_key(SECRET)) == "jimmy.sinek@example.com"
    assert decrypt_email(OPENSSL_SHA1, email_key(SECRET, SHA1)) == "jimmy.sinek@example.com"
    assert decrypt_email(OPENSSL_SHORT, email_key(SECRET)) == "a@b.co"
    assert encrypt_email("jimmy.sinek@example.com", email_key(SECRET)) == OPENSSL_PLAIN16


@pytest.mark.parametrize(
    "value",
    [OPENSSL_SHA1, SEED_SAMPLE, "", "not base64!", "AAAA", "QUJDREVGR0hJSktMTU5PUA=="],
    ids=["other-derivation", "seed-sample-other-key", "empty", "not-base64", "short", "block-not-an-address"],
)
def test_anything_else_is_undecryptable(value):
    with pytest.raises(Undecryptable):
        decrypt_email(value, email_key(SECRET))


def test_the_seed_sample_has_the_shape_of_an_encrypted_address():
    assert len(base64.b64decode(SEED_SAMPLE, validate=True)) == 32  # two AES blocks


def test_a_secret_shorter_than_a_key_is_said_so_and_addresses_are_masked():
    with pytest.raises(Undecryptable, match="shorter than 16 bytes"):
        email_key("short")
    assert masked("jimmy.sinek@example.com") == "j•••@example.com"


# --- Requests and answers ------------------------------------------------------------------------------------------


def test_a_page_request_is_exactly_the_documented_one(httpserver: HTTPServer):
    seen: list[list[tuple[str, str]]] = []

    def handler(request: Request) -> Response:
        seen.append(list(request.args.items(multi=True)))
        return Response(json.dumps(page([{"Id": "1"}], 1)), content_type="application/json")

    httpserver.expect_request("/data/reviews.json", method="GET").respond_with_handler(handler)
    answer = api_for(httpserver).reviews(
        filters=["ModerationStatus:eq:APPROVED", "LastModeratedTime:gte:1680000000"],
        sort="LastModeratedTime:asc",
        offset=200,
    )
    assert answer["Results"] == [{"Id": "1"}]
    assert seen == [
        [
            ("apiversion", "5.4"),
            ("passkey", PASSKEY),
            ("Filter", "ModerationStatus:eq:APPROVED"),
            ("Filter", "LastModeratedTime:gte:1680000000"),
            ("Sort", "LastModeratedTime:asc"),
            ("Limit", "100"),
            ("Offset", "200"),
        ]
    ]


def test_paging_beyond_the_documented_limits_is_refused_before_sending(httpserver: HTTPServer):
    with pytest.raises(ValueError, match="Limit"):
        api_for(httpserver).reviews(limit=101)
    with pytest.raises(ValueError, match="Offset"):
        api_for(httpserver).reviews(offset=300_001)


def test_a_passkey_refused_in_a_200_body_is_an_auth_error(httpserver: HTTPServer):
    body = {"HasErrors": True, "Errors": [{"Code": "ERROR_PARAM_INVALID_API_KEY", "Message": "bad passkey"}]}
    httpserver.expect_request("/data/reviews.json").respond_with_json(body)
    with pytest.raises(AuthError, match="bad passkey") as caught:
        api_for(httpserver).reviews()
    assert "passkey" in caught.value.hint


def test_limit_above_100_answered_400_is_a_rejected_request(httpserver: HTTPServer):
    body = {"HasErrors": True, "Errors": [{"Code": "ERROR_PARAM_INVALID_LIMIT", "Message": "Limit too big"}]}
    httpserver.expect_request("/data/reviews.json").respond_with_json(body, status=400)
    with pytest.raises(Rejected) as caught:
        api_for(httpserver).reviews()
    assert caught.value.code == "ERROR_PARAM_INVALID_LIMIT" and caught.value.status == 400


# The header counts whole seconds, so "45" may mean 45.9 s: the wait is rounded up plus a second, and a reset of
# zero still waits a second (the HTTP layer would otherwise send again at once and meet a second 429).
@pytest.mark.parametrize(
    ("header", "seconds"), [("00:59:30", 3571), ("45", 46), ("00:00:59", 60), ("00:00:00", 1), ("0", 1)]
)
def test_a_429_is_not_retried_and_carries_the_quota_reset_rounded_up_plus_a_second(
    httpserver: HTTPServer, header, seconds
):
    httpserver.expect_request("/data/reviews.json").respond_with_json(
        {"message": "Too Many Requests"}, status=429, headers={"X-Bazaarvoice-Quota-Reset": header}
    )
    with pytest.raises(RateLimited) as caught:
        api_for(httpserver).reviews()
    assert caught.value.retry_after == seconds
    assert len(httpserver.log) == 1  # stopped at once: never slept through, never sent again at once
    assert seconds_until_reset("soon") is None


def test_a_quota_error_in_a_200_body_waits_the_rounded_reset_too(httpserver: HTTPServer):
    body = {"HasErrors": True, "Errors": [{"Code": "ERROR_REQUEST_LIMIT_REACHED", "Message": "limit"}]}
    httpserver.expect_request("/data/reviews.json").respond_with_json(
        body, headers={"X-Bazaarvoice-Quota-Reset": "00:00:00"}
    )
    with pytest.raises(RateLimited) as caught:
        api_for(httpserver).reviews()
    assert caught.value.retry_after == 1 and len(httpserver.log) == 1


def test_a_5xx_is_retried_then_reported_unavailable(httpserver: HTTPServer):
    httpserver.expect_request("/data/reviews.json").respond_with_json({"message": "down"}, status=503)
    with pytest.raises(Unavailable):
        api_for(httpserver, retry=RetryPolicy(max_attempts=2, backoff_base=0.01)).reviews()
    assert len(httpserver.log) == 2  # a GET is safe to repeat


@pytest.mark.django_db
def test_verify_is_one_side_effect_free_get_of_one_approved_review_and_the_passkey_is_redacted(
    httpserver: HTTPServer, client_a
):
    seen: list[list[tuple[str, str]]] = []

    def handler(request: Request) -> Response:
        seen.append(list(request.args.items(multi=True)))
        return Response(json.dumps(page([], 68)), content_type="application/json")

    httpserver.expect_request("/data/reviews.json", method="GET").respond_with_handler(handler)
    connection = ConnectionFactory(
        client=client_a,
        vendor="bazaarvoice",
        base_url=httpserver.url_for(""),
        status=Connection.Status.DRAFT,
        secrets={"passkey": PASSKEY, "shared_secret": SECRET},
    )
    outcome = verify(connection)
    assert outcome.ok and "68 approved reviews" in outcome.message
    # What Bazaarvoice received: the pull's own filter (what Verify counts is what a pull reads), one review at most.
    assert seen == [
        [("apiversion", "5.4"), ("passkey", PASSKEY), ("Filter", "ModerationStatus:eq:APPROVED"), ("Limit", "1")]
    ]
    call = VendorCall.objects.get(connection=connection)
    assert PASSKEY not in call.url and f"passkey={REDACTED}" in call.url


def test_a_window_holding_more_than_offset_can_reach_is_narrowed(httpserver: HTTPServer):
    """A fake Bazaarvoice with 10 reviews per second of moderation time: a 30-day window holds millions."""
    windows: list[tuple[int, int]] = []

    def handler(request: Request) -> Response:
        filters = dict(f.rsplit(":", 1) for f in request.args.getlist("Filter") if "Time" in f)
        start, end = int(filters["LastModeratedTime:gte"]), int(filters["LastModeratedTime:lt"])
        windows.append((start, end))
        return Response(json.dumps(page([], (end - start) * 10)), content_type="application/json")

    httpserver.expect_request("/data/reviews.json").respond_with_handler(handler)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    counts = bazaarvoice.RunCounts()
    end, first = bazaarvoice.narrowed_window(api_for(httpserver), start, start + timedelta(days=30), counts)

    assert first["TotalResults"] <= 300_100
    assert (end - start).total_seconds() * 10 <= 300_100 < (end - start).total_seconds() * 20
    assert counts["narrowed"] == len(windows) - 1 and all(w[0] == windows[0][0] for w in windows)
