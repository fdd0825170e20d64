"""What the one way out costs per call: N GETs to a local server through integrations/http.py (redaction, rate
limiter, a VendorCall row per call) against the same N GETs with a bare requests.Session.

    .venv/bin/python bench/http_overhead.py --calls 2000 [--database-url postgres://postgres@127.0.0.1/bench]

Prints one line: calls=… bare_ms=… portal_ms=… overhead_ms=… call_rows=… peak_rss_mb=…
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class JSONHandler(BaseHTTPRequestHandler):
    body = json.dumps({"subscriptionEligibilities": [{"eligibility": {"isEligible": True}}]}).encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def configure_django(database_url: str) -> None:
    os.environ.update(
        ENV_FILE="",
        DEBUG="true",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL="memory://",
        DJANGO_SETTINGS_MODULE="portal.settings",
        LOG_LEVEL="WARNING",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--database-url", default=f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
    args = parser.parse_args()
    configure_django(args.database_url)

    import requests

    from integrations.connections import api_for
    from integrations.http import VendorAPI
    from integrations.models import Client, Connection, VendorCall

    server = ThreadingHTTPServer(("127.0.0.1", 0), JSONHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    client, _ = Client.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    connection, _ = Connection.objects.update_or_create(
        client=client,
        vendor="attentive",
        defaults={
            "base_url": base,
            "secrets": {"api_key": "bench-key-123456"},
            "settings": {"rate_limit_per_second": 1e6},
        },
    )
    VendorCall.objects.filter(connection=connection).delete()

    session = requests.Session()
    started = time.perf_counter()
    for _ in range(args.calls):
        session.get(f"{base}/v1/subscriptions", params={"phone": "+17707651750"}, timeout=5).json()
    bare = time.perf_counter() - started

    api = api_for(connection, VendorAPI)
    started = time.perf_counter()
    for _ in range(args.calls):
        api.request_json("GET", "/v1/subscriptions", params={"phone": "+17707651750"})
    portal = time.perf_counter() - started

    server.shutdown()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"calls={args.calls} bare_ms={bare / args.calls * 1000:.3f} portal_ms={portal / args.calls * 1000:.3f} "
        f"overhead_ms={(portal - bare) / args.calls * 1000:.3f} "
        f"call_rows={VendorCall.objects.filter(connection=connection).count()} peak_rss_mb={peak_mb:.0f}"
    )


if __name__ == "__main__":
    main()
