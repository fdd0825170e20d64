"""Annex Cloud points with lost answers (issue 20, finding 4): N credits, one per member, through the portal's API
(`POST /api/members/{id}/points/`) to the Annex Cloud simulator, both served by gunicorn. The simulator applies every
credit, drops the connection unanswered after every --lose-every'th one, and answers a repeated `customId` with AC1006
"already exists" (409), as a strict Annex Cloud does.

    .venv/bin/python bench/points_lost_answers.py --credits 200 [--lose-every 10] [--database-url postgres://...]

The bench is a careful caller: a 2xx is done (and repeated once with the same key, which must answer 200 with the
same body); a 502 is repeated with the same key; a 422 "failed" is what a caller told "refused" may do next — the
credit sent again under a new key, which is how a lost answer became a double credit. Prints one line and exits 1
when one of INVARIANTS breaks. Counted from the simulator's own record: `applied_at_vendor` the bench's credits
Annex Cloud applied (by customId), `double_credits` points applied more than once to a member (each member's
balance against one credit), `lost_answers` the answers it dropped. From the portal: `portal_applied` and
`portal_failed` transactions, `unanswered_attempts` its POST /points attempts that got no answer at all. From the
caller: `api_2xx` credits whose first request answered 2xx, `repeats_differing` repeats that did not answer 200
with the first body, `refused_answers` 422s it saw.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_database_argument, bench_django, free_port, peak_rss_mb, print_result
from bench.simulator_records import bench_client, control, records, sandbox_env, served, simulated_connection

# Portal modules are imported inside the functions below: Django is set up (bench_django) only once the bench runs.
SMOKE_ARGS = ["--credits", "20"]
INVARIANTS = [
    "applied_at_vendor == credits",
    "portal_applied == credits",
    "portal_failed == 0",
    "double_credits == 0",
    "api_2xx == credits",
    "repeats_differing == 0",
    # The drill happened: about one answer in --lose-every was lost after the credit was applied.
    "lost_answers >= lost_answers_min",
    # …for real: the portal's attempts got no answer at all (the connection was dropped), not an error status.
    "unanswered_attempts == lost_answers",
]
POINTS = 25
PENDING_REPEATS = 5  # how often the caller repeats a 502 (not answered) with the same key


def member_email(n: int) -> str:
    return f"points{n}@example.com"


def set_up(credits: int) -> tuple[str, list[int]]:
    """A client with an active sandbox Annex Cloud connection, N members and an API token; returns (token key, the
    members' ids in order)."""
    from integrations.annexcloud import sandbox as annex_cloud_simulator
    from integrations.models import ApiToken
    from members.models import Member

    client = bench_client()
    simulated_connection(client, "annex_cloud", annex_cloud_simulator.DEMO_SECRETS, rate_limit_per_second=1000)
    members = Member.objects.bulk_create(
        Member(client=client, email=member_email(n), known_to_annex_cloud=True) for n in range(credits)
    )
    _, key = ApiToken.issue(client, "bench")
    return key, [member.pk for member in members]


def loyalty_members(credits: int) -> list[dict[str, Any]]:
    return [{"id": member_email(n), "email": member_email(n), "availablePoints": 0} for n in range(credits)]


@dataclass
class Caller:
    """The API caller: what it was answered, and what it did next."""

    session: requests.Session
    base: str
    api_2xx: int = 0
    repeats_differing: int = 0
    refused_answers: int = 0

    def post(self, member_id: int, key: str) -> requests.Response:
        body = {"activity": "credit", "points": POINTS, "reason": "bench", "idempotency_key": key}
        return self.session.post(f"{self.base}/api/members/{member_id}/points/", json=body, timeout=120)

    def credit(self, member_id: int, key: str) -> None:
        """One credit as a careful caller makes it (see the module's doc)."""
        response = self.post(member_id, key)
        self.api_2xx += int(response.status_code in (200, 201))
        response = self.until_answered(member_id, key, response)
        if response.status_code == 422:
            # Told "refused": the caller sends the credit again under a new key (the double credit of finding 4).
            self.refused_answers += 1
            key = f"{key}-again"
            response = self.until_answered(member_id, key, self.post(member_id, key))
        if response.status_code in (200, 201):
            repeat = self.post(member_id, key)
            self.repeats_differing += int(repeat.status_code != 200 or repeat.json() != response.json())

    def until_answered(self, member_id: int, key: str, response: requests.Response) -> requests.Response:
        """A 502 (Annex Cloud did not answer: the transaction is pending) is repeated with the same key."""
        for _ in range(PENDING_REPEATS):
            if response.status_code != 502:
                break
            response = self.post(member_id, key)
        return response


@dataclass(frozen=True)
class PortalRecord:
    applied: int  # the bench's credits the portal holds applied under their first key
    failed: int  # transactions it holds failed
    unanswered_attempts: int  # POST /points attempts that got no answer at all (the connection dropped)


def portal_record(credits: int) -> PortalRecord:
    from integrations.models import VendorCall
    from members.models import PointsTransaction

    applied = PointsTransaction.objects.filter(status="applied", key__in=[credit_key(n) for n in range(credits)])
    unanswered = VendorCall.objects.filter(url__endswith="/points", status_code__isnull=True)
    return PortalRecord(applied.count(), PointsTransaction.objects.filter(status="failed").count(), unanswered.count())


def credit_key(n: int) -> str:
    return f"bench-credit-{n}"


@dataclass(frozen=True)
class VendorRecord:
    applied_at_vendor: int
    double_credits: int
    lost_answers: int
    points_received: int


def vendor_record(port: int, credits: int) -> VendorRecord:
    """What the simulator itself holds: the credits it applied (by customId), each member's balance, the answers it
    dropped."""
    annex = records(port, "annex_cloud")
    applied = {key for key, answer in annex["points"].items() if answer["activity"] == "credit"}
    balances = annex["balances"]
    counts = control(port, "annex_cloud")
    return VendorRecord(
        applied_at_vendor=len(applied & {credit_key(n) for n in range(credits)}),
        double_credits=sum(max(0, balances.get(member_email(n), 0) // POINTS - 1) for n in range(credits)),
        lost_answers=int(counts["lost_points_answers"]),
        points_received=int(counts["points_received"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--credits", type=int, default=200)
    parser.add_argument("--lose-every", type=int, default=10, help="the simulator loses every Nth points answer")
    add_database_argument(parser)
    args = parser.parse_args()
    port = free_port()
    env = sandbox_env(port, VENDOR_RETRY_BACKOFF_SECONDS="0.05")
    # One gunicorn process, many threads: the simulator keeps its state (and records) in memory, and a portal thread
    # calls it while serving the bench's request.
    with bench_django(args.database_url, **env) as full_env, served(full_env, port, threads=8):
        token, member_ids = set_up(args.credits)
        control(
            port,
            "annex_cloud",
            {
                "members": loyalty_members(args.credits),
                "repeats": "already_exists",
                "lose_every_nth_points_answer": args.lose_every,
            },
        )
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        caller = Caller(session, f"http://127.0.0.1:{port}")
        started = time.perf_counter()
        for n, member_id in enumerate(member_ids):
            caller.credit(member_id, credit_key(n))
        seconds = time.perf_counter() - started
        portal = portal_record(args.credits)
        vendor = vendor_record(port, args.credits)
    print_result(
        INVARIANTS,
        credits=args.credits,
        applied_at_vendor=vendor.applied_at_vendor,
        portal_applied=portal.applied,
        portal_failed=portal.failed,
        double_credits=vendor.double_credits,
        lost_answers=vendor.lost_answers,
        lost_answers_min=f"{args.credits // args.lose_every * 0.8:g}",
        unanswered_attempts=portal.unanswered_attempts,
        api_2xx=caller.api_2xx,
        refused_answers=caller.refused_answers,
        repeats_differing=caller.repeats_differing,
        points_calls=vendor.points_received,
        seconds=f"{seconds:.1f}",
        credits_per_s=f"{args.credits / seconds:.1f}",
        peak_rss_mb=f"{peak_rss_mb():.0f}",
    )


if __name__ == "__main__":
    main()
