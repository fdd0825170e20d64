"""Member state converges through an outage: N members are changed through every path (admin, API, CSV import,
Annex Cloud refresh, Vibes callbacks) while the Attentive and Vibes simulators fail every call, then they recover
and the portal's sweep (what beat runs every minute) converges each vendor.

    .venv/bin/python bench/member_convergence.py --members 1000 --outage 120 [--database-url postgres://...]

Prints one line: members=… changes=… outage_s=… attentive_refusals=… vibes_refusals=… converged=…
seconds_to_converge=… drift_after_recovery=… lost=… attentive_drift=… vibes_drift=… duplicate_subscribes=…
peak_rss_mb=…, and exits 1 when one of INVARIANTS breaks. Each member's expected state is the bench's own record of
its last change: `lost` counts members whose state at the portal (SMS opt-in, first name) is not that;
`attentive_drift` those whose TEXT subscription at the Attentive simulator (by phone) is not their opt-in;
`vibes_drift` renamed members whose person at the Vibes simulator (by the external id the bench expects) lacks their
new name or number; `duplicate_subscribes` counts subscribes of a number Attentive already had (it texts "already
subscribed"); `attentive_refusals` and `vibes_refusals` the calls each simulator refused during the outage (the
drill happened); `drift_after_recovery` is the portal's drift report with the vendors read. A run that has not
converged within --converge-seconds prints converged=0 and fails.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_database_argument, bench_django, free_port, gunicorn, peak_rss_mb, print_result
from bench.simulator_records import sandbox_env

SMOKE_ARGS = ["--members", "25", "--outage", "3", "--converge-seconds", "120"]  # a stuck sweep prints converged=0
# Counted at the simulators and against the bench's record of each member's last change, never from the portal's
# belief alone; the outage must have refused calls, and the sweep must have converged in time.
INVARIANTS = [
    "attentive_refusals >= 1",
    "vibes_refusals >= 1",
    "converged == 1",
    "lost == 0",
    "attentive_drift == 0",
    "vibes_drift == 0",
    "duplicate_subscribes == 0",
    "drift_after_recovery == 0",
]
PATHS = ("admin", "api", "import", "refresh", "callback")
VIBES_COMPANY = "bench"


def sandbox_call(port: int, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sandbox/{path}", data=data)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local only
        return json.loads(response.read())


OUTAGE_CALLS = 10**9
OUTAGE_VENDORS = ("attentive", "vibes")
# How long the outage may wait, after the changes, for each vendor to have refused a call.
PROBE_SECONDS = 60


def start_outage(port: int) -> dict[str, int]:
    """Every call to the vendors fails from now on; returns the failures each simulator has left to give."""
    return {
        vendor: sandbox_call(port, f"{vendor}/_outage", {"status": 503, "times": OUTAGE_CALLS})["times"]
        for vendor in OUTAGE_VENDORS
    }


def refusals(port: int, started: dict[str, int]) -> dict[str, int]:
    """Calls each simulator has refused since the outage began, by its own count."""
    return {
        vendor: started.get(vendor, 0) - sandbox_call(port, f"{vendor}/_outage")["times"] for vendor in OUTAGE_VENDORS
    }


def end_outage(port: int, started: dict[str, int]) -> dict[str, int]:
    """End the outage; returns the calls each simulator refused during it."""
    refused = refusals(port, started)
    for vendor in OUTAGE_VENDORS:
        sandbox_call(port, f"{vendor}/_outage", {"reset": True})
    return refused


@dataclass
class Expected:
    """A member's state as its last change said: the bench's own record."""

    opted_in: bool = False
    first_name: str = "Old"
    vibes_external_id: str = ""


class Bench:
    """The client, its connections and members, and the changes made to them. Portal code is imported here only."""

    def __init__(self, port: int, members: int) -> None:
        from integrations.annexcloud import sandbox as annex_sandbox
        from integrations.attentive import sandbox as attentive_sandbox
        from integrations.attentive.models import SignUpSource
        from integrations.models import ApiToken, Client, Connection
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
            settings = {"company_key": VIBES_COMPANY} if vendor == "vibes" else settings
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
        # The portal names a member without an Annex Cloud id to Vibes by its own id.
        self.expected = {m.pk: Expected(vibes_external_id=f"portal-{m.pk}") for m in self.members}
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
            self.record(member, opted_in=True, first_name="New")

    def via_api(self, members: list[Any]) -> None:
        for member in members:
            body = json.dumps({"opted_in": True, "first_name": "New"}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/api/members/{member.pk}/", data=body, method="PATCH",
                headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - local only
                self.record(member, opted_in=True, first_name="New")

    def via_import(self, members: list[Any]) -> None:
        from members.imports import import_members

        lines = ["phone,first_name,opted_in", *(f"{m.phone},New,yes" for m in members)]
        report = import_members(self.client, io.BytesIO("\n".join(lines).encode()))
        assert report.failed == 0, report.errors
        for member in members:
            self.record(member, opted_in=True, first_name="New")

    def via_refresh(self, members: list[Any]) -> None:
        from integrations.annexcloud.flows import refresh_member

        profiles = [{"id": m.email, "email": m.email, "firstName": "New", "optInStatus": "YES"} for m in members]
        sandbox_call(self.port, "annex_cloud/_control", {"members": profiles})
        for member in members:
            assert refresh_member(member).ok
            # Annex Cloud's optInStatus is the loyalty opt-in, never the SMS one; its id names the member to Vibes.
            self.record(member, first_name="New", vibes_external_id=member.email)

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
            self.expected[member.pk].opted_in = True

    def record(self, member: Any, **values: Any) -> None:
        for name, value in values.items():
            setattr(self.expected[member.pk], name, value)
        self.changes += 1


def converge(timeout: float) -> tuple[bool, float]:
    """What beat and the worker do every minute (apply callbacks, sweep member state), until nothing differs or
    `timeout` seconds pass; returns whether it converged and the seconds it took."""
    from integrations.inbound import process_received
    from members import sync

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        process_received()
        sync.reconcile_pending()
        if not sync.drift():
            return True, time.monotonic() - started
        time.sleep(0.5)
    return False, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--outage", type=float, default=120.0, help="seconds the vendors fail every call")
    parser.add_argument(
        "--converge-seconds", type=float, default=600.0, help="how long the sweep may take after the outage"
    )
    add_database_argument(parser)
    args = parser.parse_args()
    port = free_port()
    env = sandbox_env(port, MEMBER_SYNC_RETRY_SECONDS="1", VENDOR_RETRY_BACKOFF_SECONDS="0.05")
    with bench_django(args.database_url, **env) as full_env, gunicorn(full_env, port, "--threads", "16"):
        result = run(args, port)
    print_result(INVARIANTS, **result, peak_rss_mb=f"{peak_rss_mb():.0f}")


def run(args: argparse.Namespace, port: int) -> dict[str, Any]:
    from members import sync

    bench = Bench(port, args.members)
    bench.subscribe_callback_members_first()
    started = start_outage(port)
    outage_started = time.monotonic()
    bench.change_everything()
    # The sweep keeps probing during the outage, which lasts until every vendor has refused the portal at least once
    # (the changes may take longer than a short --outage, and each change waits MEMBER_SYNC_DELAY_SECONDS).
    probe_deadline = time.monotonic() + PROBE_SECONDS
    while time.monotonic() - outage_started < args.outage or (
        min(refusals(port, started).values()) == 0 and time.monotonic() < probe_deadline
    ):
        sync.reconcile_pending()
        time.sleep(min(1.0, args.outage))
    refused = end_outage(port, started)
    converged, seconds = converge(args.converge_seconds)
    return {
        "members": args.members,
        "changes": bench.changes,
        "outage_s": f"{args.outage:g}",
        "attentive_refusals": refused["attentive"],
        "vibes_refusals": refused["vibes"],
        "converged": int(converged),
        "seconds_to_converge": f"{seconds:.1f}" if converged else "timeout",
        "drift_after_recovery": len(sync.drift(read_vendors=True)),
        "lost": count_lost(bench),
        "attentive_drift": attentive_drift(port, bench),
        "vibes_drift": vibes_drift(port, bench),
        "duplicate_subscribes": sandbox_call(port, "attentive/_control")["already_subscribed_texts"],
    }


def count_lost(bench: Bench) -> int:
    """Members whose state at the portal is not what their last change said."""
    from members.models import Member

    lost = 0
    for pk, opted_in, first_name in Member.objects.filter(client=bench.client).values_list(
        "pk", "opted_in", "first_name"
    ):
        expected = bench.expected[pk]
        lost += (opted_in, first_name) != (expected.opted_in, expected.first_name)
    return lost


def attentive_drift(port: int, bench: Bench) -> int:
    """Members whose TEXT subscription at the Attentive simulator is not their expected opt-in."""
    state = sandbox_call(port, "attentive/_control")
    subscribed = {line.split()[0] for line in state["subscribed"] if line.endswith(" TEXT")}
    return sum((member.phone in subscribed) != bench.expected[member.pk].opted_in for member in bench.members)


def vibes_drift(port: int, bench: Bench) -> int:
    """Renamed members whose person at the Vibes simulator, found by the external id the bench expects, does not
    hold their new first name and their number."""
    from integrations.vibes.sandbox import PASSWORD, USERNAME

    credentials = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    drift = 0
    for member in bench.members:
        expected = bench.expected[member.pk]
        if expected.first_name == "Old":
            continue  # never renamed: the portal had nothing to tell Vibes
        external_id = urllib.parse.quote(expected.vibes_external_id, safe="")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/sandbox/vibes/companies/{VIBES_COMPANY}/mobiledb/persons/external/{external_id}",
            headers={"Authorization": f"Basic {credentials}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local only
                person = json.loads(response.read())
        except urllib.error.HTTPError:
            person = {}  # none (404), or the simulator cannot show it: either way not what the member expects
        held = ((person.get("custom_fields") or {}).get("first_name"), (person.get("mobile_phone") or {}).get("mdn"))
        drift += held != (expected.first_name, member.phone)
    return drift


if __name__ == "__main__":
    main()
