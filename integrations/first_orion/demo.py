"""First Orion in the demo (manage.py seed_demo): the demo client's program content, as registered at the simulator
(sandbox.py), and a segment to push it to."""

from __future__ import annotations

from integrations.first_orion.models import ProgramContent
from integrations.first_orion.sandbox import DEMO_A_NUMBERS, DEMO_PROGRAM
from integrations.models import Client
from members.models import Member, Segment
from members.segments import add_members


def seed_demo(client: Client) -> None:
    """The demo client's program content and a segment of its members with a phone to push it to (idempotent; the
    confirmation page shows who is skipped: members count once they opt in, e.g. through the Attentive journey)."""
    ProgramContent.objects.get_or_create(
        client=client,
        program_content_uuid=DEMO_PROGRAM,
        defaults={
            "name": "Order ready call",
            "a_numbers": DEMO_A_NUMBERS,
            "personalization": {"MY_VAR": "Hi {first_name}!"},
        },
    )
    segment, _ = Segment.objects.get_or_create(client=client, name="Branded call: order ready")
    add_members(segment, Member.objects.filter(client=client).exclude(phone=""))
