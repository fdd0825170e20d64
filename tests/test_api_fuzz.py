"""Schemathesis against the live OpenAPI schema (the app's own /api/schema/): every operation, fed generated and
schema-violating input with the API token of a client that has members, segments, events and an export, answers
anything but a 5xx (the check `not_a_server_error`).

Bounded for the suite: at most MAX_EXAMPLES examples per operation, and a stateful run
(operations chained through the links schemathesis infers, e.g. POST /members/ then PATCH /members/{id}/) of a few
short scenarios. The vendors are the sandbox simulators served by the live server, so no call leaves the machine and
a vendor's failure is not mistaken for the portal's. Webhook callbacks are left out of the stateful token run; the
stateless run posts generated bodies to a real callback URL, and their parser is fuzzed directly in
test_hostile_input.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from django.core.files.base import ContentFile
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from integrations.models import ApiToken, Connection
from members.models import SegmentExport
from tests.factories import ConnectionFactory, LoyaltyEventFactory, MemberFactory, SegmentFactory

# The sandbox vendors answer from the live server's thread, which sees committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = 25
# No per-example deadline (the project's Hypothesis profile, tests/conftest.py): on a loaded machine a slow example
# that passes when replayed is reported as a failure; the suite is bounded by MAX_EXAMPLES.
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # The client and its rows are made once per operation, not per example: examples build on each other's rows.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Loaded from the app's own schema endpoint when the module is collected (pytest-django has set Django up by then).
# schemathesis.pytest.from_fixture would load it per test, but its lazy loader sets `Function._nodeid`, which
# pytest 9 no longer has.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def fuzz_client(client_a, sandbox_attentive_connection, annex_cloud_sandbox):
    """Client A with Attentive and Annex Cloud in the sandbox, a Vibes connection (for its callback URL), members,
    a segment holding some of them, loyalty events and a finished export."""
    ConnectionFactory(client=client_a, vendor="vibes", secrets={}, settings={"company_key": "acme"})
    members = MemberFactory.create_batch(5, client=client_a)
    segment = SegmentFactory(client=client_a)
    segment.members.add(*members[:3])
    for member in members[:2]:
        LoyaltyEventFactory(member=member, data={"points": 50, "balance": 1250})
    export = SegmentExport.objects.create(segment=segment, status=SegmentExport.Status.READY, rows=3)
    export.file.save("fuzz.csv", ContentFile(b"phone,email\n"))
    return client_a


@pytest.fixture
def token_header(fuzz_client) -> dict[str, str]:
    _, key = ApiToken.issue(fuzz_client, "fuzz token")
    return {"Authorization": f"Token {key}"}


def existing(client: Any) -> dict[str, list[Any]]:
    """Values that name the client's rows, per path prefix, so that generated requests get past their 404s."""
    exports = SegmentExport.objects.filter(segment__client=client)
    callbacks = Connection.objects.filter(client=client, vendor="vibes")
    return {
        "/api/clients/": [client.pk],
        "/api/connections/": list(client.connections.values_list("pk", flat=True)),
        "/api/members/": list(client.members.values_list("pk", flat=True)),
        "/api/loyalty-events/": list(client.loyalty_events.values_list("pk", flat=True)),
        "/api/segments/": list(client.segments.values_list("pk", flat=True)),
        "/api/segment-exports/": list(exports.values_list("pk", flat=True)),
        "/api/webhooks/vibes/": list(callbacks.values_list("inbound_token", flat=True)),
    }


def body_nudges(client: Any) -> dict[str, Callable[[Callable[..., Any]], Any]]:
    """Values of body fields that the schema cannot tell (a member reference that matches, a key), drawn now and
    then in place of the generated ones, so that writes reach the flows behind validation."""
    emails = list(client.members.values_list("email", flat=True))
    return {
        "member": lambda draw: {"email": one_of_now(draw, emails, "member")},
        "idempotency_key": lambda draw: draw(st.text(min_size=1, max_size=100), label="idempotency_key"),
        "client": lambda draw: client.slug,
    }


def one_of_now(draw: Callable[..., Any], rows: list[Any], label: str) -> Any:
    """One of the rows as they are now ("" when there are none). Drawn as an index whatever the rows: Hypothesis
    replays its draws, and the rows change under it (the examples create members), so a draw whose shape followed
    them — `sampled_from(rows)` — made it fail the test as "flaky data generation"."""
    index = draw(st.integers(min_value=0, max_value=10**6), label=label)
    return rows[index % len(rows)] if rows else ""


def nudge(case: Any, draw: Callable[..., Any], client: Any) -> None:
    """Half the time, point the case at the client's real rows and fill in fields that only match real data."""
    if not draw(st.booleans(), label="aim at real rows"):
        return
    for prefix, values in existing(client).items():
        if case.operation.path.startswith(prefix):
            for name in case.path_parameters or {}:
                if (row := one_of_now(draw, values, name)) != "":
                    case.path_parameters[name] = row
    if isinstance(case.body, dict):
        for field, value_of in body_nudges(client).items():
            if field in case.body or draw(st.booleans(), label=f"add {field}"):
                case.body[field] = value_of(draw)


@schema.parametrize()
@schema.given(data=st.data())
@FUZZ_SETTINGS
def test_no_operation_answers_a_server_error(case, data, fuzz_client, token_header):
    nudge(case, data.draw, fuzz_client)
    case.call_and_validate(headers=token_header, checks=[not_a_server_error])


def test_no_sequence_of_operations_answers_a_server_error(fuzz_client, token_header):
    stateful = schema.exclude(path_regex="^/api/webhooks/").as_state_machine()

    class TokenStateMachine(stateful):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": token_header}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=[not_a_server_error])

    TokenStateMachine.run(
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
