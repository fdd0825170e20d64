"""Numbers for First Orion are E.164 by syntax (`+`, then 8-15 digits, the first not 0), as seed 002 asks: one the
phone-number metadata calls invalid for dialling (`+15555550100`) is pushed, with a warning, and the simulator
receives it; the aNumbers of a program content follow the same rule."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from integrations.first_orion import flows
from integrations.first_orion import sandbox as simulator
from integrations.first_orion.models import ProgramContent
from integrations.first_orion.numbers import NOT_DIALLABLE, NotE164, is_e164_syntax, push_number
from members.models import Member
from tests.first_orion_fixtures import connect_first_orion

RESERVED = "+15555550100"  # E.164, but `phonenumbers.is_valid_number` says no (a 555 number)


@pytest.fixture
def fo(fo_simulator, client_a):
    connect_first_orion(client_a)
    return fo_simulator


@pytest.fixture
def content(client_a):
    return ProgramContent.objects.create(
        client=client_a, name="Order ready", program_content_uuid=simulator.DEMO_PROGRAM, a_numbers=[RESERVED]
    )


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (RESERVED, True),
        ("+12345678", True),  # 8 digits
        ("+123456789012345", True),  # 15 digits
        ("+1234567", False),  # 7
        ("+1234567890123456", False),  # 16
        ("+0123456789", False),  # no leading 0 after +
        ("15555550100", False),
        ("+1 555 555 0100", False),  # as written: syntax only, no spaces
        ("+1555555010a", False),
        ("", False),
    ],
)
def test_e164_is_a_matter_of_syntax(value, ok):
    assert is_e164_syntax(value) is ok


def test_numbers_as_typed_are_read_into_e164_and_dialling_validity_is_only_noted():
    assert push_number(RESERVED) == push_number("(555) 555-0100", "US")
    assert push_number(RESERVED).diallable is False
    assert push_number("+1 (404) 555-0001").e164 == "+14045550001"
    assert push_number("+14045550001").diallable is True
    for bad in ("12", "+1555", "not a number", "+0445550001"):
        with pytest.raises(NotE164):
            push_number(bad)


def test_a_number_valid_by_syntax_is_pushed_with_a_warning(fo, content):
    push = flows.create_push(content, numbers=[RESERVED, "+14045550001", "+1555"])
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "sent" and push.destinations == 2
    assert push.warnings == {NOT_DIALLABLE: 1} and push.skipped == {"invalid mobile number": 1}
    assert fo.received == {RESERVED: 1, "+14045550001": 1}
    assert fo.last_body["aNumbers"] == [RESERVED]


def test_a_member_whose_number_is_e164_but_not_diallable_is_reached(fo, content, client_a):
    Member.objects.create(client=client_a, phone=RESERVED, opted_in=True, first_name="Ann")
    plan = flows.preview(content, members=Member.objects.all())
    assert len(plan.destinations) == 1 and plan.seen == {RESERVED}
    assert plan.warnings == {NOT_DIALLABLE: 1} and plan.warning_examples[NOT_DIALLABLE] == [RESERVED]
    flows.run_push(flows.create_push(content, members=Member.objects.all()).pk)
    assert fo.received == {RESERVED: 1}


def test_program_content_a_numbers_are_checked_by_syntax(client_a):
    content = ProgramContent(
        client=client_a, name="x", program_content_uuid=simulator.DEMO_PROGRAM, a_numbers=[RESERVED]
    )
    content.full_clean()
    content.a_numbers = ["+1555", "+05555550100"]
    with pytest.raises(ValidationError, match=r"not in E\.164 format"):
        content.full_clean()


def test_the_admin_keeps_an_undiallable_a_number_and_says_so(admin_http, client_a):
    data = {
        "client": client_a.pk,
        "name": "Reserved",
        "program_content_uuid": simulator.DEMO_PROGRAM,
        "a_numbers_text": RESERVED,
        "a_number_group_id": "",
        "ttl_seconds": 960,
        "personalization_text": "",
    }
    page = admin_http.post(reverse("admin:first_orion_programcontent_add"), data, follow=True).content.decode()
    assert ProgramContent.objects.get().a_numbers == [RESERVED]
    assert "not valid for dialling" in page


def test_the_confirmation_page_shows_the_warning(admin_http, fo, content, client_a):
    member = Member.objects.create(client=client_a, phone=RESERVED, opted_in=True, email="ann@x.com")
    page = admin_http.post(
        reverse("admin:members_member_changelist"),
        {
            "action": "push_members_content",
            "_selected_action": [member.pk],
            "program_content": content.pk,
            "push_step": "preview",
        },
    ).content.decode()
    assert "<strong>1</strong> destination in" in page and "not a valid number for dialling" in page
