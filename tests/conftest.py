from __future__ import annotations

import pytest
from django.test import Client as HttpClient

from tests.factories import PASSWORD, ClientFactory, ClientUserFactory, ConnectionFactory, SiteAdminFactory


@pytest.fixture(autouse=True)
def close_keep_alive_connections():
    """Vendor calls reuse a pooled keep-alive connection. To the live server that would keep a request thread, and
    the database connection it holds, alive after the test: close it after each test."""
    yield
    from integrations.http import pooled_session

    session = pooled_session()
    # urllib3 2 only forgets its pools on close(); their idle connections close when the pool is collected, which
    # for a pool caught in a reference cycle (a raised vendor error's traceback) is whenever the cyclic GC runs.
    # Close them now, so no live-server thread outlives the test.
    for adapter in session.adapters.values():
        pools = adapter.poolmanager.pools
        for key in pools.keys():  # noqa: SIM118 - the container refuses iteration; keys() is its copy
            pool = pools.get(key)
            if pool is not None:
                pool.close()
    session.close()


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache (processing-scheduled marks and the like)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def site_admin(db):
    return SiteAdminFactory(username="site-admin")


@pytest.fixture
def client_a(db):
    return ClientFactory(name="Alpha Apparel", slug="alpha")


@pytest.fixture
def client_b(db):
    return ClientFactory(name="Beta Boutique", slug="beta")


@pytest.fixture
def user_a(client_a):
    return ClientUserFactory(username="alice", client=client_a)


@pytest.fixture
def connection_a(client_a):
    return ConnectionFactory(client=client_a)


@pytest.fixture
def connection_b(client_b):
    return ConnectionFactory(
        client=client_b, secrets={"api_key": "beta-secret-key-ABCDEFGH", "legacy_token": "beta-legacy-ZYXWVUT"}
    )


def login(user) -> HttpClient:
    http = HttpClient()
    assert http.login(username=user.username, password=PASSWORD)
    return http


@pytest.fixture
def admin_http(site_admin) -> HttpClient:
    return login(site_admin)


@pytest.fixture
def alice_http(user_a) -> HttpClient:
    return login(user_a)


@pytest.fixture
def api_client_for(db):
    """An API client authenticated with a fresh token of the given client."""
    from rest_framework.test import APIClient

    from integrations.models import ApiToken

    def make(client):
        _, key = ApiToken.issue(client, "test token")
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return api

    return make


@pytest.fixture
def attentive_sandbox(live_server, settings):
    """The Attentive simulator, served over real HTTP by the live server, reset for each test."""
    from integrations.attentive import sandbox as simulator

    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    settings.MESSAGE_SEND_CONCURRENCY = 1  # SQLite's shared in-memory test database is not for parallel writers
    simulator.state.__init__()
    yield simulator.state
    simulator.state.__init__()


@pytest.fixture
def sandbox_attentive_connection(attentive_sandbox, client_a):
    from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
    from integrations.models import Connection, SignUpSource

    SignUpSource.objects.create(client=client_a, source_id="132109", name="Loyalty", is_default=True)
    return ConnectionFactory(
        client=client_a,
        vendor="attentive",
        environment=Connection.Environment.SANDBOX,
        secrets={"api_key": API_KEY, "legacy_token": LEGACY_TOKEN},
    )


@pytest.fixture
def eager_celery():
    """Tasks run in-process when queued, so the on-commit subscribe can be observed."""
    from portal.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def annex_cloud_sandbox(live_server, settings, client_a):
    """Client A's Annex Cloud connection pointed at the simulator over real HTTP."""
    from integrations.annexcloud import sandbox as simulator
    from integrations.models import Connection

    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    simulator.state.__init__()
    client_a.site_id = "100001"
    client_a.save()
    connection = ConnectionFactory(
        client=client_a,
        vendor="annex_cloud",
        environment=Connection.Environment.SANDBOX,
        secrets={"api_secret": simulator.SECRET, "loyalty_token": "loyal"},
    )
    yield simulator.state, connection
    simulator.state.__init__()


@pytest.fixture
def vibes_sandbox(live_server, settings, client_a):
    """Client A's active Vibes connection pointed at the simulator over real HTTP."""
    from integrations.models import Connection
    from integrations.vibes import sandbox as simulator

    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    simulator.state.__init__()
    connection = ConnectionFactory(
        client=client_a,
        vendor="vibes",
        environment=Connection.Environment.SANDBOX,
        secrets={"api_username": simulator.USERNAME, "api_password": simulator.PASSWORD},
        settings={"company_key": "acme"},
    )
    yield simulator.state, connection
    simulator.state.__init__()
