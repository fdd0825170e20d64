"""Vendor hooks are typed capabilities (integrations/hooks.py), and start-up fails on a vendor package whose hooks
do not match its spec (integrations/checks.py): a misspelt hook, half a capability, a hook its spec promises."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from integrations.checks import problems_of
from integrations.hooks import ExplainsAuthFailure, HasDemoSecrets, KeepsMembersInSync, SendsMessages, hook, hooks
from integrations.vendor_spec import Schedule, VendorSpec
from integrations.vendors import VENDORS

MISSPELT = VendorSpec(
    key="misspelt",
    label="Misspelt",
    package="tests.misspelt_vendor",
    base_urls={"production": "https://api.misspelt.example"},
    sends_messages=True,
    task_queues={"misspelt.*": "nowhere"},
    schedules=(Schedule(name="Pull misspelt things", task="misspelt.pul", crontab={"minute": "*"}, description=""),),
)


def problem_ids(spec: VendorSpec) -> dict[str, str]:
    return {problem.msg: problem.id for problem in problems_of(spec)}


def test_the_registered_vendors_pass_the_check():
    assert [problem for spec in VENDORS.values() for problem in problems_of(spec)] == []


def test_start_up_fails_on_a_registered_vendor_with_a_misspelt_hook(monkeypatch):
    monkeypatch.setitem(VENDORS, MISSPELT.key, MISSPELT)
    with pytest.raises(SystemCheckError) as failed:
        call_command("check")
    report = str(failed.value)
    assert (
        "tests.misspelt_vendor.flows.explain_auth_failur looks like a misspelt hook: did you mean explain_auth_failure?"
        in report
    )
    assert "tests.misspelt_vendor.sandbox.DEMO_SECRET looks like a misspelt hook: did you mean DEMO_SECRETS?" in report


def test_the_check_names_half_a_capability_a_promised_hook_and_a_queue_nobody_serves():
    found = problem_ids(MISSPELT)
    assert (
        found[
            "tests.misspelt_vendor.flows has reconcile_member but not needs_sync: the shared code uses none of "
            "KeepsMembersInSync until it has all."
        ]
        == "integrations.E002"
    )
    assert (
        found[
            "Misspelt lacks message_sender in tests.misspelt_vendor.flows, which it must have: its spec says "
            "sends_messages."
        ]
        == "integrations.E001"
    )
    assert found["Misspelt routes 'misspelt.*' to the queue 'nowhere', which no worker listens to."] == (
        "integrations.E004"
    )
    assert found[
        "Misspelt's schedule 'Pull misspelt things' names the task 'misspelt.pul', which no tasks module defines."
    ] == ("integrations.E005")
    assert found["Misspelt routes 'misspelt.*', which names no task: the tasks it meant go to the default queue."] == (
        "integrations.E006"
    )
    assert found[
        "tests.misspelt_vendor.flows.check_connection(connection: 'Any', timeout: 'float') -> 'str' does not take what "
        "ChecksConnection passes it: check_connection(connection: 'Connection') -> 'str'."
    ] == ("integrations.E007")
    assert found["tests.misspelt_vendor.webhook looks like a misspelt module: did you mean webhooks?"] == (
        "integrations.E008"
    )
    # The simulator's State class is not taken for a misspelt `state`.
    assert not [message for message in found if ".State " in message]
    assert sorted(found.values()).count("integrations.E003") == 2


def test_the_shared_code_finds_a_capability_only_when_the_vendor_has_all_of_it():
    assert hook(MISSPELT, ExplainsAuthFailure) is None  # misspelt: not found (the check says why)
    assert hook(MISSPELT, KeepsMembersInSync) is None  # half of it
    assert hook(MISSPELT, HasDemoSecrets) is None
    assert hook(VENDORS["attentive"], SendsMessages) is not None
    assert sorted(hooks(SendsMessages)) == sorted(key for key, spec in VENDORS.items() if spec.sends_messages)
