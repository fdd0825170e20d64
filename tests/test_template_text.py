"""Template text is placeholders only: no format specs, no attribute access, a length limit (a client user writes
it, the message job renders it for every member)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from members.models import PLACEHOLDERS, validate_template_text
from members.templates_text import placeholders_in, render_text


@pytest.mark.parametrize(
    "text",
    [
        "Hi {first_name:>99999999999999999999}",  # a width that would allocate gigabytes
        "Hi {first_name.__class__}",
        "Hi {first_name[0]}",
        "Hi {first_name!r}",
        "Hi {}",
        "Hi {first_name",
        "x" * 1001,
    ],
)
def test_anything_but_plain_placeholders_is_refused_when_saved(text):
    with pytest.raises(ValidationError):
        validate_template_text(text)


def test_placeholders_and_doubled_braces_render():
    text = "Hi {first_name}, {{literally}} {points} points"
    validate_template_text(text)
    assert render_text(text, {"first_name": "Ann", "points": 50}) == "Hi Ann, {literally} 50 points"


# Any text without braces, with known placeholders inserted anywhere.
plain = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=40)
names = st.sampled_from(sorted(PLACEHOLDERS))


@given(st.lists(st.tuples(plain, names), max_size=6), plain)
def test_rendering_replaces_exactly_the_placeholders(parts, tail):
    text = "".join(f"{before}{{{name}}}" for before, name in parts) + tail
    values = {name: f"<{name}>" for name in PLACEHOLDERS}
    assert placeholders_in(text) == [name for _, name in parts]
    assert render_text(text, values) == "".join(f"{before}<{name}>" for before, name in parts) + tail


@given(st.text(max_size=200))
def test_any_text_is_either_refused_or_renders_without_error(text):
    try:
        placeholders_in(text)
    except ValidationError:
        return
    assert isinstance(render_text(text, {}), str)
