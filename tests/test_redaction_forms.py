"""A secret is redacted from what is recorded in every form it can take there: as it is, URL-encoded (quote, quote_plus,
lower-case hex) and base64-encoded. Before, a SessionM key with "+" was written "%2B" in the call row's URL, where a
client user could read it (issue 21, finding 10)."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

import pytest
from django.urls import reverse
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations.connections import verify
from integrations.http import Redactor, VendorAPI
from integrations.models import VendorCall
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db

KEY = "smk+live/key=01?x"
SECRET = "sessionm-secret+0123/456"


def every_form(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "as is": value,
        "quote, no safe": quote(value, safe=""),
        "quote": quote(value),
        "quote, @ safe": quote(value, safe="@"),
        "quote_plus": quote_plus(value),
        "lower-case hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(value, safe="")),
        "base64": base64.b64encode(raw).decode(),
        "base64 url-safe": base64.urlsafe_b64encode(raw).decode(),
        "base64 unpadded": base64.b64encode(raw).decode().rstrip("="),
    }


def leaked_forms(text: str, *values: str) -> list[str]:
    return [f"{value} {name}" for value in values for name, form in every_form(value).items() if form in text]


@pytest.mark.parametrize("name", list(every_form(KEY)))
def test_the_redactor_removes_each_form_of_a_secret(name):
    form = every_form(KEY)[name]
    redactor = Redactor(headers=frozenset(), query_params=frozenset(), json_fields=frozenset(), values=(KEY,))
    assert form not in redactor.text(f"the vendor said: unknown app {form}.")
    assert form not in redactor.body(json.dumps({"message": f"unknown app {form}"}))


def test_a_secret_in_a_url_path_or_query_is_redacted_encoded():
    redactor = Redactor(headers=frozenset(), query_params=frozenset(), json_fields=frozenset(), values=(KEY,))
    recorded = redactor.url(f"https://vendor.example/apps/{quote(KEY, safe='')}/users?app={quote_plus(KEY)}")
    assert leaked_forms(recorded, KEY) == []
    assert recorded.startswith("https://vendor.example/apps/")


def test_values_added_after_construction_are_expanded_too():
    """Vibes and SessionM add their Basic credentials' base64 to `values` after the redactor is built."""
    api = VendorAPI("https://vendor.example", secret_values=["first-secret-1"])
    api.redactor.values = (*api.redactor.values, "later+secret/2")
    assert "later" not in api.redactor.text(f"x {quote_plus('later+secret/2')} y")


def echo_the_request_line(request: Request) -> Response:
    """A vendor that echoes the path it could not route, as many do in their 404 bodies."""
    target = request.environ.get("RAW_URI") or request.environ["REQUEST_URI"]
    body = {"message": f"no route for {target}", "hint": f"check app {quote_plus(KEY)}"}
    return Response(json.dumps(body), status=404, content_type="application/json")


def test_a_sessionm_key_with_a_plus_never_reaches_a_call_row(httpserver: HTTPServer, client_a, alice_http):
    httpserver.expect_request(re.compile(".*")).respond_with_handler(echo_the_request_line)
    connection = ConnectionFactory(
        client=client_a,
        vendor="sessionm",
        base_url=httpserver.url_for("/"),
        secrets={"api_key": KEY, "api_secret": SECRET},
        settings={"store_id": "store-1", "connect_client_id": "client-1"},
    )
    outcome = verify(connection)
    connection.refresh_from_db()
    assert leaked_forms(f"{outcome.message} {connection.last_check_result}", KEY, SECRET) == []
    assert httpserver.log, "the vendor was called"
    # The key went out escaped, as one segment (this is the form the call row used to show).
    sent = [request.environ.get("RAW_URI") or request.environ["REQUEST_URI"] for request, _ in httpserver.log]
    assert any(quote(KEY, safe="@") in target for target in sent)
    rows = list(VendorCall.objects.filter(connection=connection).values())
    assert rows
    assert leaked_forms(json.dumps(rows, default=str), KEY, SECRET) == []
    # What the client user reads in the admin: the list of calls and each call.
    pages = [alice_http.get(reverse("admin:integrations_vendorcall_changelist")).content.decode()]
    pages += [
        alice_http.get(reverse("admin:integrations_vendorcall_change", args=[row["id"]])).content.decode()
        for row in rows
    ]
    assert all(page for page in pages)
    assert leaked_forms("".join(pages), KEY, SECRET) == []
