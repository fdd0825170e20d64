"""Leases that know their holder (issue 21, finding 4), over real HTTP against the simulators: a First Orion push
claim, a SessionM wallet scan and a Bazaarvoice pull record the task id of the run holding them, so a killed pool
child's redelivered task (same task id) takes its work over at once, a worker's runs closed as interrupted release
their leases at once (a new task claims straight away), a live holder under another task id is never taken over, and
the admin says a run is at it, since when (in the client's time zone)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.bazaarvoice import flows as bazaarvoice
from integrations.bazaarvoice import sandbox as bazaarvoice_simulator
from integrations.bazaarvoice.models import PullState, Review
from integrations.first_orion import flows as first_orion
from integrations.first_orion import sandbox as first_orion_simulator
from integrations.first_orion.models import ProgramContent, Push
from integrations.job_runs import reap_interrupted_runs, run_job
from integrations.models import Connection, JobRun
from integrations.sessionm import sandbox as sessionm_simulator
from integrations.sessionm.models import OfferScan, SessionMOffer
from integrations.sessionm.offers import claim_scan, scan_lease, scan_offers
from integrations.tasks import close_runs_of_the_previous_worker
from members.models import Member
from tests.factories import ConnectionFactory
from tests.test_run_leases import sessionm_with_an_offer_in_each_wallet

pytestmark = pytest.mark.django_db(transaction=True)
RUNNING, INTERRUPTED = JobRun.Outcome.RUNNING, JobRun.Outcome.INTERRUPTED
WORKER, OTHER_WORKER = "celery@host-1", "celery@host-2"


class Killed(BaseException):
    """A SIGKILL as far as the run can tell: nothing after it runs in the process (not even `except Exception`)."""


def killed_execution(job: str, task_id: str, take_lease: Callable[[], Any], worker: str = WORKER) -> JobRun:
    """What a killed execution of a task leaves: its run `running` with no end, and the lease it had taken."""

    def work() -> dict[str, int]:
        assert take_lease(), "the killed execution took its lease"
        raise Killed

    with pytest.raises(Killed):
        run_job(job, work, task_id=task_id, worker=worker)
    run = JobRun.objects.get(task_id=task_id)
    JobRun.objects.filter(pk=run.pk).update(finished_at=None)
    assert run.outcome == RUNNING
    return run


def execution(job: str, task_id: str, work: Callable[[], dict[str, int]], worker: str = WORKER) -> JobRun:
    """An execution of a task as the worker runs it (task_base.run_as_job): a recorded run under the task's id."""
    return run_job(job, work, task_id=task_id, worker=worker)


# --- SessionM wallet scans -----------------------------------------------------------------------------------------

SCAN = "sessionm.scan_offers"


@pytest.fixture
def scanned(sessionm_sandbox, client_a):
    """An active SessionM connection and three members opted in with a profile, each wallet holding one offer."""
    return sessionm_with_an_offer_in_each_wallet(client_a)


def wallets_read() -> int:
    """How many wallet reads the simulator answered (its own record)."""
    return sessionm_simulator.state.wallet_reads


def test_a_killed_scans_redelivered_task_takes_the_scan_over_at_once(scanned):
    killed = killed_execution(SCAN, "task-1", lambda: claim_scan(scanned))
    assert scan_offers() == {"busy": 1}  # the lease is still well within its time

    redelivered = execution(SCAN, "task-1", scan_offers)

    assert redelivered.counts["members"] == 3 and redelivered.counts["passes_completed"] == 1
    assert SessionMOffer.objects.count() == 3 and wallets_read() == 3
    assert JobRun.objects.get(pk=killed.pk).outcome == INTERRUPTED
    assert OfferScan.objects.get().claimed_until is None


def test_a_scan_held_under_the_runs_own_task_id_is_taken_over_even_with_no_run_to_close(scanned):
    # The earlier execution's run is gone (closed by another reaper meanwhile), its lease is not.
    OfferScan.objects.create(connection=scanned, holder="task-1", claimed_until=timezone.now() + timedelta(seconds=40))

    redelivered = execution(SCAN, "task-1", scan_offers)

    assert redelivered.counts["members"] == 3


def test_a_restarted_workers_scan_is_free_at_once_for_a_new_task(scanned):
    killed_execution(SCAN, "task-1", lambda: claim_scan(scanned))

    close_runs_of_the_previous_worker(sender=SimpleNamespace(hostname=WORKER))
    assert OfferScan.objects.get().claimed_until is None
    resumed = execution(SCAN, "task-2", scan_offers, worker=OTHER_WORKER)

    assert resumed.counts["members"] == 3 and SessionMOffer.objects.count() == 3


def test_a_scan_held_by_a_live_run_under_another_task_id_is_never_taken_over(scanned):
    live = killed_execution(SCAN, "task-1", lambda: claim_scan(scanned))  # as far as anyone knows: alive
    held = OfferScan.objects.get()

    other = execution(SCAN, "task-2", scan_offers, worker=OTHER_WORKER)
    close_runs_of_the_previous_worker(sender=SimpleNamespace(hostname=OTHER_WORKER))  # not the holder's worker
    reap_interrupted_runs()

    assert other.counts == {"busy": 1} and wallets_read() == 0
    assert JobRun.objects.get(pk=live.pk).outcome == RUNNING
    assert (OfferScan.objects.get().holder, OfferScan.objects.get().claimed_until) == ("task-1", held.claimed_until)


def test_the_connection_page_says_a_scan_is_running_since_when_in_the_clients_time_zone(scanned, admin_http):
    scanned.client.time_zone = "America/New_York"
    scanned.client.save()
    run = killed_execution(SCAN, "task-1", lambda: claim_scan(scanned))
    page = admin_http.get(reverse("admin:integrations_connection_change", args=[scanned.pk])).content.decode()

    started = run.started_at.astimezone(ZoneInfo("America/New_York"))
    assert f"running since {started:%H:%M:%S} (America/New_York)" in page

    reap_interrupted_runs(worker=WORKER)
    page = admin_http.get(reverse("admin:integrations_connection_change", args=[scanned.pk])).content.decode()
    assert "running since" not in page and "not running" in page


def test_a_scan_lease_blocks_at_most_45_seconds():
    assert scan_lease() <= timedelta(seconds=45)


# --- First Orion pushes --------------------------------------------------------------------------------------------

PUSH = "first_orion.run_push"


@pytest.fixture
def push(live_server, settings, client_a) -> Push:
    """A push of four numbers (two batches) to client A's First Orion connection on the simulator, reset."""
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    first_orion_simulator.state.__init__()
    ConnectionFactory(
        client=client_a,
        vendor="first_orion",
        environment=Connection.Environment.SANDBOX,
        secrets=dict(first_orion_simulator.DEMO_SECRETS),
        settings={**first_orion_simulator.DEMO_SETTINGS, "batch_size": 2},
    )
    content = ProgramContent.objects.create(
        client=client_a,
        name="Order ready",
        program_content_uuid=first_orion_simulator.DEMO_PROGRAM,
        a_numbers=first_orion_simulator.DEMO_A_NUMBERS,
    )
    for n in range(4):
        Member.objects.create(client=client_a, phone=f"+1404555{n:04d}", opted_in=True, first_name=f"Ann{n}")
    yield first_orion.create_push(content, members=Member.objects.all())
    first_orion_simulator.state.__init__()


def received() -> dict[str, int]:
    """How many times the simulator was pushed each number (its own record)."""
    with first_orion_simulator.state.lock:
        return dict(first_orion_simulator.state.received)


def run_push(push: Push) -> Callable[[], dict[str, int]]:
    return lambda: first_orion.run_push(push.pk)


def test_a_killed_pushs_redelivered_task_sends_it_at_once(push):
    killed = killed_execution(PUSH, "task-1", lambda: first_orion.claim(push))
    assert first_orion.run_push(push.pk)["batches_sent"] == 0  # held: another runner sends nothing

    execution(PUSH, "task-1", run_push(push))

    push.refresh_from_db()
    assert (push.status, push.batches_sent, push.claimed_until, push.holder) == ("sent", 2, None, "")
    assert received() == {f"+1404555{n:04d}": 1 for n in range(4)}
    assert JobRun.objects.get(pk=killed.pk).outcome == INTERRUPTED


def test_a_restarted_workers_push_is_free_at_once_for_a_new_task(push):
    killed_execution(PUSH, "task-1", lambda: first_orion.claim(push))

    close_runs_of_the_previous_worker(sender=SimpleNamespace(hostname=WORKER))
    assert Push.objects.get(pk=push.pk).claimed_until is None
    assert first_orion.resume_pushes() == {"queued": 1}  # the schedule's safety net sees it free, too
    execution(PUSH, "task-2", run_push(push), worker=OTHER_WORKER)

    assert Push.objects.get(pk=push.pk).status == "sent" and sum(received().values()) == 4


def test_a_push_held_by_a_live_run_under_another_task_id_is_never_taken_over(push):
    killed_execution(PUSH, "task-1", lambda: first_orion.claim(push))  # as far as anyone knows: alive

    execution(PUSH, "task-2", run_push(push), worker=OTHER_WORKER)
    close_runs_of_the_previous_worker(sender=SimpleNamespace(hostname=OTHER_WORKER))

    push.refresh_from_db()
    assert (push.holder, push.batches_sent) == ("task-1", 0) and push.claimed_until > datetime.now(UTC)
    assert received() == {}


def test_a_runner_that_lost_its_push_stops_at_its_next_batch(push):
    """Renewal is a compare-and-set on the holder: a runner whose push was released (its run closed as interrupted)
    and taken by another sends no further batch."""
    assert first_orion.claim(push)
    assert first_orion.build_batches(push, 2) and push.batches.count() == 2  # planned: two batches wait to go
    Push.objects.filter(pk=push.pk).update(holder="task-2")  # another runner has it now

    first_orion.send_pending_batches(push, push.client.connections.get(vendor="first_orion"))

    assert received() == {} and Push.objects.get(pk=push.pk).holder == "task-2"
    assert push.batches.filter(status="pending").count() == 2


def test_the_push_page_says_it_is_being_sent_since_when_in_the_clients_time_zone(push, admin_http):
    push.client.time_zone = "Europe/Paris"
    push.client.save()
    run = killed_execution(PUSH, "task-1", lambda: first_orion.claim(push))

    page = admin_http.get(reverse("admin:first_orion_push_change", args=[push.pk])).content.decode()

    started = run.started_at.astimezone(ZoneInfo("Europe/Paris"))
    assert f"running since {started:%H:%M:%S} (Europe/Paris)" in page


def test_a_push_claim_blocks_at_most_45_seconds():
    assert first_orion.claim_seconds() <= 45


# --- Bazaarvoice pulls ---------------------------------------------------------------------------------------------

PULL = "bazaarvoice.pull_reviews"


@pytest.fixture
def bv(bazaarvoice_connection, settings):
    settings.VENDOR_RETRY_BACKOFF_SECONDS = 0.01
    bazaarvoice_simulator.generate(30, days=1)  # moderated before today: due now
    return bazaarvoice_connection


def take_pull(connection: Connection) -> Callable[[], bazaarvoice.PullLease | None]:
    return lambda: bazaarvoice.claim(PullState.objects.get_or_create(connection=connection)[0], datetime.now(UTC))


def pull(connection: Connection) -> Callable[[], dict[str, int]]:
    return lambda: bazaarvoice.pull_all(connection.client_id)


def credits() -> int:
    """How many credits Annex Cloud applied (its own record)."""
    return sum(1 for answer in annex_cloud_simulator.state.points.values() if answer["activity"] == "CREDIT")


def test_a_killed_pulls_redelivered_task_pulls_at_once(bv):
    killed = killed_execution(PULL, "task-1", take_pull(bv))
    assert bazaarvoice.pull_reviews(bv).counts == {"skipped": 1}

    redelivered = execution(PULL, "task-1", pull(bv))

    assert redelivered.counts["reviews"] == 30 and Review.objects.count() == 30
    assert credits() == Review.objects.filter(outcome=Review.Outcome.AWARDED).count() > 0
    assert JobRun.objects.get(pk=killed.pk).outcome == INTERRUPTED
    assert PullState.objects.get(connection=bv).lease_until is None


def test_a_restarted_workers_pull_is_free_at_once_for_a_new_task(bv):
    killed_execution(PULL, "task-1", take_pull(bv))

    close_runs_of_the_previous_worker(sender=SimpleNamespace(hostname=WORKER))
    assert PullState.objects.get(connection=bv).lease_until is None
    resumed = execution(PULL, "task-2", pull(bv), worker=OTHER_WORKER)

    assert resumed.counts["reviews"] == 30 and Review.objects.count() == 30


def test_a_pull_held_by_a_live_run_under_another_task_id_is_never_taken_over(bv):
    killed_execution(PULL, "task-1", take_pull(bv))  # as far as anyone knows: alive
    held = PullState.objects.get(connection=bv)

    other = execution(PULL, "task-2", pull(bv), worker=OTHER_WORKER)
    close_runs_of_the_previous_worker(sender=SimpleNamespace(hostname=OTHER_WORKER))

    state = PullState.objects.get(connection=bv)
    assert other.counts == {"skipped": 1, "connections": 1} and Review.objects.count() == 0
    assert (state.holder, state.lease_until) == ("task-1", held.lease_until)


def test_pull_now_while_a_run_pulls_says_since_when_and_queues_nothing(bv, admin_http, eager_celery):
    bv.client.time_zone = "Asia/Tokyo"
    bv.client.save()
    run = killed_execution(PULL, "task-1", take_pull(bv))
    url = reverse("admin:integrations_connection_bazaarvoice_pull", args=[bv.pk])

    page = admin_http.post(url, follow=True).content.decode()

    started = run.started_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"is running since {started:%H:%M:%S} (Asia/Tokyo): not queued again" in page
    assert "succeeded" not in page and "skipped" not in page
    assert JobRun.objects.filter(job=PULL).count() == 1 and Review.objects.count() == 0


def test_a_pull_lease_blocks_at_most_45_seconds():
    assert bazaarvoice.pull_lease() <= timedelta(seconds=45)
