"""Member state converges through an outage: N members are changed through every path (admin, API, CSV import,
Annex Cloud refresh, Vibes callbacks) while the Attentive and Vibes simulators fail every call, then they recover
and the portal's sweep (what beat runs every minute) converges each vendor.

    .venv/bin/python bench/member_convergence.py --members 1000 --outage 120 [--database-url postgres://...]

Prints one line: changes=… drift_after_recovery=0 duplicate_subscribes=0 lost=0 seconds_to_converge=… …
`lost` counts members whose final opt-in, at the portal or at Attentive, is not what their last change said;
`drift_after_recovery` is the drift report with the vendors read (Attentive eligibility, Vibes persons);
`duplicate_subscribes` counts subscribes of a number Attentive already had (it texts "already subscribed").
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_database_argument, bench_django, free_port, gunicorn, peak_rss_mb, print_result

SMOKE_ARGS = ["--members", "25", "--outage", "3"]
INVARIANTS = ["lost == 0", "duplicate_subscribes == 0", "drift_after_recovery == 0"]
PATHS = ("admin", "api", "import", "refresh", "callback")


def sandbox_call(port: int, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/{path}", data=data)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local only
        return json.loads(response.read())


def outage(port: int, *, on: bool) -> None:
    for vendor in ("attentive", "vibes"):
        sandbox_call(port, f"{vendor}/_outage", {"status": 503, "times": 10**9} if on else {"reset": True})


class Bench:
    """The client, its connections and members, and the changes made to them. Portal code is imported here only."""

    def __init__(self, port: int, members: int) -> None:
        from integrations.annexcloud import sandbox as annex_sandbox
        from integrations.attentive import sandbox as attentive_sandbox
        from integrations.models import ApiToken, Client, Connection, SignUpSource
        from integrations.vibes import sandbox as vibes_sandbox
        from members.models import Member

        self.port = port
        self.client = Client.objects.create(name="Bench", slug="bench", site_id="100001")
        SignUpSource.objects.create(client=self.client, source_id="132109", is_default=True)
        for vendor, secrets, settings in (
            ("attentive", {"api_key": attentive_sandbox.API_KEY, "legacy_token": attentive_sandbox.LEGACY_TOKEN}, {}),
            ("vibes", {"api_username": vibes_sandbox.USERNAME, "api_password": vibes_sandbox.PASSWORD}, {}),
            ("annex_cloud", {"api_secret": annex_sandbox.SECRET}, {}),
        ):
            settings = {"company_key": "bench"} if vendor == "vibes" else settings
            Connection.objects.create(
                client=self.client, vendor=vendor, environment="sandbox", status="active", secrets=secrets,
                settings=settings,
            )  # fmt: skip
        self.vibes = Connection.objects.get(client=self.client, vendor="vibes")
        self.members = Member.objects.bulk_create(
            Member(client=self.client, phone=f"+1404{5550000 + n:07d}", email=f"m{n}@example.com", first_name="Old")
            for n in range(members)
        )
        self.token = ApiToken.issue(self.client, "bench")[1]
        self.expected_opt_in: dict[int, bool] = {}
        self.changes = 0

    def by_path(self) -> dict[str, list[Any]]:
        return {path: self.members[i :: len(PATHS)] for i, path in enumerate(PATHS)}

    def change_everything(self) -> None:
        """Every member: opted in (or out, for the callback path) and renamed, each through its path."""
        groups = self.by_path()
        self.via_admin(groups["admin"])
        self.via_api(groups["api"])
        self.via_import(groups["import"])
        self.via_refresh(groups["refresh"])
        self.via_callbacks(groups["callback"])

    def via_admin(self, members: list[Any]) -> None:
        from django.contrib.auth import get_user_model
        from django.test import Client as HttpClient

        admin = get_user_model().objects.create_superuser("bench-admin", "b@example.com", "x")
        http = HttpClient(HTTP_HOST="127.0.0.1")
        http.force_login(admin)
        for member in members:
            url = f"/admin/members/member/{member.pk}/change/"
            # Every inline of the page (vendors add their own) submits its management form, empty: none is edited.
            prefixes = re.findall(r'name="([\w-]+)-TOTAL_FORMS"', http.get(url).content.decode())
            form = {
                "client": self.client.pk, "phone": member.phone, "email": member.email, "first_name": "New",
                "opted_in": "on", "status": "active", "points": 0,
                **{f"{prefix}-{key}": 0 for prefix in prefixes for key in ("TOTAL_FORMS", "INITIAL_FORMS")},
            }  # fmt: skip
            response = http.post(url, form)
            assert response.status_code == 302, response.content[:2000]
            self.record(member, opted_in=True)

    def via_api(self, members: list[Any]) -> None:
        for member in members:
            body = json.dumps({"opted_in": True, "first_name": "New"}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/api/members/{member.pk}/", data=body, method="PATCH",
                headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - local only
                self.record(member, opted_in=True)

    def via_import(self, members: list[Any]) -> None:
        from members.imports import import_members

        lines = ["phone,first_name,opted_in", *(f"{m.phone},New,yes" for m in members)]
        report = import_members(self.client, io.BytesIO("\n".join(lines).encode()))
        assert report.failed == 0, report.errors
        for member in members:
            self.record(member, opted_in=True)

    def via_refresh(self, members: list[Any]) -> None:
        from integrations.annexcloud.flows import refresh_member

        profiles = [{"id": m.email, "email": m.email, "firstName": "New", "optInStatus": "YES"} for m in members]
        sandbox_call(self.port, "annex_cloud/_control", {"members": profiles})
        for member in members:
            assert refresh_member(member).ok
            self.record(member, opted_in=True)

    def via_callbacks(self, members: list[Any]) -> None:
        """These members were subscribed before the outage; each sends STOP at Vibes during it."""
        from integrations.vibes.flows import vibes_external_id
        from integrations.vibes.sandbox import callback_payload

        for member in members:
            payload = callback_payload(
                "subscription_removed", person_id=f"P{member.pk}", external_id=vibes_external_id(member), list_id="1"
            )
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/api/webhooks/vibes/{self.vibes.inbound_token}/",
                data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"},
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - local only
                self.record(member, opted_in=False)

    def subscribe_callback_members_first(self) -> None:
        from members import sync

        for member in self.by_path()["callback"]:
            sync.change_member(member, opted_in=True)
            sync.reconcile(member.pk, "attentive")

    def record(self, member: Any, *, opted_in: bool) -> None:
        self.expected_opt_in[member.pk] = opted_in
        self.changes += 1


def converge(timeout: float) -> float:
    """What beat and the worker do every minute (apply callbacks, sweep member state), until nothing differs."""
    from integrations.inbound import process_received
    from members import sync

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        process_received()
        sync.reconcile_pending()
        if not sync.drift():
            break
        time.sleep(0.5)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--outage", type=float, default=120.0, help="seconds the vendors fail every call")
    add_database_argument(parser)
    args = parser.parse_args()
    port = free_port()
    env = {
        "SANDBOX_ENABLED": "true",
        "SANDBOX_BASE_URL": f"http://127.0.0.1:{port}/sandbox",
        "MEMBER_SYNC_RETRY_SECONDS": "1",
        "VENDOR_RETRY_BACKOFF_SECONDS": "0.05",
    }
    with bench_django(args.database_url, **env) as full_env, gunicorn(full_env, port, "--threads", "16"):
        result = run(args, port)
    print_result(INVARIANTS, **result, peak_rss_mb=f"{peak_rss_mb():.0f}")


def run(args: argparse.Namespace, port: int) -> dict[str, Any]:
    from members import sync

    bench = Bench(port, args.members)
    bench.subscribe_callback_members_first()
    outage(port, on=True)
    outage_started = time.monotonic()
    bench.change_everything()
    while time.monotonic() - outage_started < args.outage:  # the sweep keeps probing during the outage
        sync.reconcile_pending()
        time.sleep(min(1.0, args.outage))
    outage(port, on=False)
    seconds = converge(timeout=max(600.0, args.members))
    state = sandbox_call(port, "attentive/_control")
    subscribed = {line.split()[0] for line in state["subscribed"] if line.endswith("TEXT")}
    lost = count_lost(bench, subscribed)
    return {
        "members": args.members,
        "changes": bench.changes,
        "outage_s": f"{args.outage:g}",
        "drift_after_recovery": len(sync.drift(read_vendors=True)),
        "duplicate_subscribes": state["already_subscribed_texts"],
        "lost": lost,
        "seconds_to_converge": f"{seconds:.1f}",
    }


def count_lost(bench: Bench, subscribed: set[str]) -> int:
    from members.models import Member

    lost = 0
    for member in Member.objects.filter(pk__in=bench.expected_opt_in):
        expected = bench.expected_opt_in[member.pk]
        lost += member.opted_in != expected or (member.phone in subscribed) != expected
    return lost


if __name__ == "__main__":
    main()
