"""The First Orion fixtures the First Orion test files share: the simulator over real HTTP (reset before and after),
client A's sandbox connection, and the "Order ready" program content. tests/conftest.py loads this module as a
plugin, so every test file may ask for them; a file's own fixture of the same name wins there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.first_orion import sandbox as simulator
from integrations.first_orion.models import ProgramContent
from integrations.models import Client, Connection
from tests.factories import ConnectionFactory


def connect_first_orion(client: Client, **settings: object) -> Connection:
    """The client's active First Orion sandbox connection with the simulator's demo credentials; `settings` are added
    to the demo settings (e.g. `batch_size=2`)."""
    return ConnectionFactory(
        client=client,
        vendor="first_orion",
        environment=Connection.Environment.SANDBOX,
        secrets=dict(simulator.DEMO_SECRETS),
        settings={**simulator.DEMO_SETTINGS, **settings},
    )


@pytest.fixture
def fo_simulator(live_server, settings) -> Iterator[simulator.State]:
    """The First Orion simulator over real HTTP, reset before the test and after it."""
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    simulator.state.__init__()
    yield simulator.state
    simulator.state.__init__()


@pytest.fixture
def fo_connection(client_a) -> Connection:
    """Client A's active First Orion connection (batches of 2)."""
    return connect_first_orion(client_a, batch_size=2)


@pytest.fixture
def content(client_a) -> ProgramContent:
    """Client A's "Order ready" program content on the simulator's demo program, personalised by first name."""
    return ProgramContent.objects.create(
        client=client_a,
        name="Order ready",
        program_content_uuid=simulator.DEMO_PROGRAM,
        a_numbers=simulator.DEMO_A_NUMBERS,
        personalization={"MY_VAR": "Hi {first_name}"},
    )
