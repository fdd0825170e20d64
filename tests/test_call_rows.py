"""Compact call rows (issue 22): a successful vendor call keeps connection, method, URL, status, latency, time and
attempt, and its headers and bodies only within a debugging window or a sample; failed and uncertain calls keep
everything. Calls go over real HTTP to a local server."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from pytest_httpserver import HTTPServer

from integrations.connections import api_for
from integrations.http import RetryPolicy, VendorAPI, VendorError
from integrations.models import Connection, VendorCall
from tests.factories import ConnectionFactory

NOT_KEPT = "body not kept (successful call)"


class EchoAPI(VendorAPI):
    vendor = "Demo"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer call-rows-key-123456"}


@pytest.fixture
def connection(db, httpserver: HTTPServer) -> Connection:
    return ConnectionFactory(base_url=httpserver.url_for("/"), secrets={"api_key": "call-rows-key-123456"})


@pytest.fixture(autouse=True)
def no_sample_no_window(settings):
    settings.VENDOR_CALL_BODY_SAMPLE_RATE = 0.0
    settings.VENDOR_CALL_BODIES_FOR_SUCCESS_UNTIL = ""


def post(connection: Connection, httpserver: HTTPServer, status: int = 200) -> VendorCall:
    httpserver.expect_oneshot_request("/v1/things", method="POST").respond_with_json({"id": "t-1"}, status=status)
    api = api_for(connection, EchoAPI, retry=RetryPolicy(max_attempts=1))
    with contextlib.suppress(VendorError):  # a refused call is recorded all the same
        api.request("POST", "/v1/things", json_body={"name": "ann"})
    return VendorCall.objects.latest("pk")


def kept(call: VendorCall) -> bool:
    return bool(call.request_headers and call.request_body and call.response_body)


def test_a_successful_call_is_a_compact_row(connection, httpserver):
    call = post(connection, httpserver)
    assert (call.connection_id, call.method, call.status_code, call.attempt, call.error_type) == (
        connection.pk,
        "POST",
        200,
        1,
        "",
    )
    # Of the URL, the endpoint: the host is the connection's.
    assert call.url == "/v1/things" and call.created_at and call.latency_ms >= 0
    assert (call.request_headers, call.request_body, call.response_body) == ({}, "", "")


@pytest.mark.parametrize("status", [400, 500])  # a refusal, and an uncertain answer (the vendor may have it)
def test_failed_and_uncertain_calls_keep_everything(connection, httpserver, status):
    call = post(connection, httpserver, status=status)
    assert call.error_type and kept(call) and call.url == httpserver.url_for("/v1/things")
    assert call.request_headers["Authorization"] == "[redacted]" and '"ann"' in call.request_body


def test_a_call_that_could_not_connect_keeps_its_request(connection):
    # Nothing listens on this port: the request never left, still a failed call with its request kept.
    connection.base_url = "http://127.0.0.1:9/"
    connection.save()
    api = api_for(connection, EchoAPI, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(VendorError):
        api.request("POST", "/v1/things", json_body={"name": "ann"})
    call = VendorCall.objects.get()
    assert call.error_type and call.request_headers and '"ann"' in call.request_body


def test_within_the_debugging_window_a_successful_call_keeps_its_bodies(connection, httpserver, settings):
    settings.VENDOR_CALL_BODIES_FOR_SUCCESS_UNTIL = (timezone.now() + timedelta(hours=1)).isoformat()
    assert kept(post(connection, httpserver))
    settings.VENDOR_CALL_BODIES_FOR_SUCCESS_UNTIL = (timezone.now() - timedelta(minutes=1)).isoformat()
    assert not kept(post(connection, httpserver))
    settings.VENDOR_CALL_BODIES_FOR_SUCCESS_UNTIL = "2026-13-40T00:00:00"  # impossible: no window, the row is written
    assert not kept(post(connection, httpserver))


def test_a_sampled_successful_call_keeps_its_bodies(connection, httpserver, settings):
    settings.VENDOR_CALL_BODY_SAMPLE_RATE = 1.0
    assert kept(post(connection, httpserver))


def test_the_call_page_says_when_a_body_was_not_kept(connection, httpserver, admin_http, settings):
    compact = post(connection, httpserver)
    settings.VENDOR_CALL_BODY_SAMPLE_RATE = 1.0
    sampled = post(connection, httpserver)
    failed = post(connection, httpserver, status=400)
    page = admin_http.get(reverse("admin:integrations_vendorcall_change", args=[compact.pk])).content.decode()
    assert NOT_KEPT in page
    for call in (sampled, failed):
        page = admin_http.get(reverse("admin:integrations_vendorcall_change", args=[call.pk])).content.decode()
        assert NOT_KEPT not in page and "[redacted]" in page
