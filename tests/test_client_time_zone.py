"""A client's time zone and date format: the start of its day and the dates its members read."""

from datetime import UTC, date, datetime

import pytest
from django.core.exceptions import ValidationError

from integrations.models import Client


def test_a_moment_falls_on_the_clients_calendar_date_and_reads_in_its_format():
    client = Client(name="x", slug="x", time_zone="America/New_York", date_format="N j, Y")
    # 03:00 UTC on the 24th is still the evening of the 23rd in New York.
    assert client.local_date(datetime(2026, 11, 24, 3, 0, tzinfo=UTC)) == date(2026, 11, 23)
    assert client.format_date(date(2026, 11, 23)) == "Nov. 23, 2026"


@pytest.mark.django_db
def test_an_unknown_time_zone_is_refused_in_words():
    with pytest.raises(ValidationError, match="not a time zone"):
        Client(name="x", slug="x", time_zone="Mars/Olympus").full_clean()
