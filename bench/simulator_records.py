"""The portal served with a door onto its simulators' own records, for the benches that count what a vendor
received: GET /_bench/records/<vendor> answers what that simulator holds in memory — First Orion's numbers pushed
(with how many times each), Attentive's messages (recipient and text), Annex Cloud's points (by customId) and its
members' balances, Bazaarvoice's reviews (each one's moderation time and status). The simulators' `_control` pages
give only totals, which cannot tell a missed message from a wrong one; the benches compare these records with their
own input instead. Also the pieces those benches share to set a run up: the environment that points the portal at
its simulators, a bench client with its sandbox connections, and a simulator's `_control` page.

    gunicorn bench.simulator_records:application --workers 1 --threads 8   (one process: the records live in it)
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from bench.common import process, wait_until_serving

if TYPE_CHECKING:
    from integrations.models import Client, Connection

RECORDS_PATH = "/_bench/records/"


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    from portal.wsgi import application as portal

    path = str(environ.get("PATH_INFO") or "")
    if not path.startswith(RECORDS_PATH):
        return portal(environ, start_response)
    reader = READERS.get(path.removeprefix(RECORDS_PATH))
    if reader is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no records of that vendor"]
    body = json.dumps(reader()).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def first_orion() -> dict[str, Any]:
    from integrations.first_orion.sandbox import state

    with state.lock:
        return {"received": dict(state.received)}


def attentive() -> dict[str, Any]:
    from integrations.attentive.sandbox import state

    with state.lock:
        return {"messages": [{"to": m["to"], "body": m["body"]} for m in state.messages]}


def annex_cloud() -> dict[str, Any]:
    from integrations.annexcloud.sandbox import state

    with state.lock:
        points = {
            custom_id: {"id": answer.get("id"), "activity": str(answer.get("activity", "")).lower()}
            for custom_id, answer in state.points.items()
        }
        balances = {member_id: int(m.get("availablePoints", 0)) for member_id, m in state.members.items()}
        return {"points": points, "balances": balances, "lose_points_answers": state.lose_points_answers}


def bazaarvoice() -> dict[str, Any]:
    from integrations.bazaarvoice.sandbox import state

    with state.lock:
        reviews = {
            str(item["Id"]): {"moderated": item["LastModeratedTime"], "status": item["ModerationStatus"]}
            for item in state.reviews
        }
        return {"reviews": reviews, "calls": state.calls}


READERS: dict[str, Callable[[], dict[str, Any]]] = {
    "first_orion": first_orion,
    "attentive": attentive,
    "annex_cloud": annex_cloud,
    "bazaarvoice": bazaarvoice,
}


def records(port: int, vendor: str) -> dict[str, Any]:
    """A simulator's records, read from the portal served on `port` by `served`."""
    url = f"http://127.0.0.1:{port}{RECORDS_PATH}{vendor}"
    with urllib.request.urlopen(url, timeout=120) as response:
        return json.loads(response.read())


def sandbox_env(port: int, **settings: str) -> dict[str, str]:
    """The environment that points the portal at its own simulators, served on `port`, with the bench's `settings`."""
    return {"SANDBOX_ENABLED": "true", "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}/sandbox", **settings}


def bench_client(**fields: str) -> Client:
    """A client of its own for this bench run (a slug no earlier run took)."""
    from integrations.models import Client

    return Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}", site_id="100001", **fields)


def simulated_connection(client: Client, vendor: str, secrets: dict[str, str], **settings: object) -> Connection:
    """The client's active sandbox connection to the vendor's simulator, with the simulator's demo `secrets`."""
    from integrations.models import Connection

    return Connection.objects.create(
        client=client, vendor=vendor, environment="sandbox", status="active", secrets=secrets, settings=settings
    )


def control(port: int, vendor: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read (or change, with settings) a simulator's state through its `_control` page; answers its counts."""
    data = json.dumps(settings or {}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/{vendor}/_control", data=data)
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - local only
        return json.loads(response.read())


@contextmanager
def served(env: Mapping[str, str], port: int, threads: int = 8) -> Iterator[None]:
    """The portal (with its simulators and their records) served by gunicorn in one process, once it answers."""
    command = [sys.executable, "-m", "gunicorn", "bench.simulator_records:application", "--bind", f"127.0.0.1:{port}"]
    options = ["--log-level", "warning", "--workers", "1", "--threads", str(threads)]
    with process([*command, *options], env) as server:
        wait_until_serving(server, port)
        yield
