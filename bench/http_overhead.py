"""What the one way out costs per call: N GETs to a local server through integrations/http.py (redaction, rate
limiter, a VendorCall row per call) against the same N GETs with a bare requests.Session.

    .venv/bin/python bench/http_overhead.py --calls 2000 [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Prints one line: calls=… bare_received=… portal_received=… bare_ms=… portal_ms=… overhead_ms=… call_rows=…
peak_rss_mb=…, and exits 1 when one of INVARIANTS breaks.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_database_argument, bench_django, peak_rss_mb, print_result

SMOKE_ARGS = ["--calls", "50"]
# Counted by the stand-in server: each call reached it once (no retry of a 200, none skipped), and each call through
# the portal left its VendorCall row.
INVARIANTS = ["bare_received == calls", "portal_received == calls", "call_rows == calls"]
PATH, PARAMS = "/v1/subscriptions", {"phone": "+17707651750"}


class JSONHandler(BaseHTTPRequestHandler):
    """Answers every GET with one small JSON body, and counts the requests it received: the record the calls are
    checked against."""

    body = json.dumps({"subscriptionEligibilities": [{"eligibility": {"isEligible": True}}]}).encode()
    received = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            JSONHandler.received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def json_server() -> Iterator[str]:
    """A local vendor stand-in in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), JSONHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def received_since(count: int) -> int:
    """Requests the server received after it had received `count`."""
    with JSONHandler.lock:
        return JSONHandler.received - count


def bare_seconds(base: str, calls: int) -> float:
    import requests

    session = requests.Session()
    started = time.perf_counter()
    for _ in range(calls):
        session.get(f"{base}{PATH}", params=PARAMS, timeout=5).json()
    return time.perf_counter() - started


def portal_seconds(base: str, calls: int) -> tuple[float, int]:
    """Seconds for the calls through the portal's HTTP layer, and the VendorCall rows they left. The portal code
    this bench uses is imported here only."""
    from integrations.connections import api_for
    from integrations.http import VendorAPI
    from integrations.models import Client, Connection, VendorCall

    client = Client.objects.create(name="Bench", slug="bench")
    connection = Connection.objects.create(
        client=client,
        vendor="attentive",
        base_url=base,
        secrets={"api_key": "bench-key-123456"},
        settings={"rate_limit_per_second": 1e6},
    )
    api = api_for(connection, VendorAPI)
    started = time.perf_counter()
    for _ in range(calls):
        api.request_json("GET", PATH, params=PARAMS)
    seconds = time.perf_counter() - started
    return seconds, VendorCall.objects.filter(connection=connection).count()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    add_database_argument(parser)
    args = parser.parse_args()
    with bench_django(args.database_url), json_server() as base:
        bare = bare_seconds(base, args.calls)
        bare_received = received_since(0)
        portal, call_rows = portal_seconds(base, args.calls)
        portal_received = received_since(bare_received)
    print_result(
        INVARIANTS,
        calls=args.calls,
        bare_received=bare_received,
        portal_received=portal_received,
        bare_ms=f"{bare / args.calls * 1000:.3f}",
        portal_ms=f"{portal / args.calls * 1000:.3f}",
        overhead_ms=f"{(portal - bare) / args.calls * 1000:.3f}",
        call_rows=call_rows,
        peak_rss_mb=f"{peak_rss_mb():.0f}",
    )


if __name__ == "__main__":
    main()
