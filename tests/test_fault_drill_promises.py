"""The fault drill's exit code keeps issue 21's promises whatever options it runs with: /healthz notices a stopped beat
within 180 s, interrupted work resumes within 60 s, and a callback is never answered a bare 5xx (while the database
is down the portal answers 503 with Retry-After, nothing else). Read from the drill's INVARIANTS, as bench/smoke.py
reads them, without running the drill."""

from __future__ import annotations

import math

import pytest

from bench import smoke
from bench.fault_drill import CallbackPhase, Kill, callback_figures, seconds_to_last_claim
from bench.invariants import broken
from integrations.models import WebhookEvent
from tests.factories import ConnectionFactory

DRILL = smoke.BENCH_DIR / "fault_drill.py"


def broken_promises(**figures: object) -> list[str]:
    """The drill's invariants these figures break (those naming a figure not given here are left out)."""
    return [promise for promise in broken(smoke.invariants(DRILL), figures) if "(no figure" not in promise]


@pytest.mark.parametrize("beat_silent_s", [120, 100, 90])
def test_a_beat_stop_noticed_after_180_s_fails_the_drill_whatever_the_silent_interval(beat_silent_s):
    assert broken_promises(beat_stop_detected_s=170, beat_silent_s=beat_silent_s) == []
    assert any(
        promise.startswith("beat_stop_detected_s <= 180")
        for promise in broken_promises(beat_stop_detected_s=181, beat_silent_s=beat_silent_s)
    )


@pytest.mark.parametrize("run_seconds", [20, 55, 60])
def test_work_resumed_after_60_s_fails_the_drill_whatever_the_run_time(run_seconds):
    assert broken_promises(seconds_to_resume=9, run_seconds=run_seconds) == []
    assert any(
        promise.startswith("seconds_to_resume <= 60")
        for promise in broken_promises(seconds_to_resume=61, run_seconds=run_seconds)
    )


@pytest.mark.django_db
def test_a_callback_answered_a_bare_500_fails_the_drill_even_when_its_resend_is_stored(client_a):
    connection = ConnectionFactory(client=client_a, vendor="vibes", secrets={}, settings={"company_key": "acme"})
    redis = CallbackPhase(name="redis", web=0, token="", during_outage=1)
    phase = CallbackPhase(name="database", web=0, token="", during_outage=2)
    # The first try was answered 500 and not stored; the vendor sent it again and that try was stored.
    phase.answers["e1"] = [("e1#0", 500, ""), ("e1#1", 200, "")]
    phase.answers["e2"] = [("e2#0", 503, "30"), ("e2#1", 200, "")]
    for delivery_id in ("e1#1", "e2#1"):
        WebhookEvent.objects.create(connection=connection, delivery_id=delivery_id, body="{}")

    figures = callback_figures([redis, phase])

    assert figures["callbacks_5xx_other_than_503"] == 1
    assert figures["callback_5xx_while_stored"] == 0 and figures["callbacks_never_stored"] == 0
    assert broken_promises(**figures) == ["callbacks_5xx_other_than_503 == 0  (callbacks_5xx_other_than_503=1)"]


def test_the_last_claim_is_timed_until_the_last_message_the_killed_run_had_claimed_reaches_the_vendor():
    """Not when the next message arrives from anywhere (the other worker goes on sending at once): the killed run's
    claims come back only when its lease lapses, and one that never arrives is never resumed."""
    kill = Kill("main", at=100.0, runs=[1], in_flight=3, claimed=["+1", "+2"])
    answers = [
        {"to": "+9", "arrived": 100.4},  # the other worker's
        {"to": "+1", "arrived": 99.0},  # before the kill: not the resumption
        {"to": "+1", "arrived": 113.5},
        {"to": "+2", "arrived": 114.0},
        {"to": "+2", "arrived": 120.0},  # a second arrival changes nothing
    ]
    assert seconds_to_last_claim(kill, answers) == pytest.approx(14.0)
    assert seconds_to_last_claim(kill, answers[:3]) == math.inf
    assert seconds_to_last_claim(Kill("main", 100.0, [1], 1), answers) == pytest.approx(0.4)  # nothing was claimed
