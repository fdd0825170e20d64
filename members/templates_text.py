"""Message template text: placeholders such as {first_name} and nothing else.

Python's str.format would also run format specs ({name:>99999999}) and attribute access ({name.__class__}) written
by a client user; this small renderer knows only `{name}` for the names in PLACEHOLDERS, so a template can neither
allocate gigabytes nor reach into objects. Literal braces are written doubled: {{ and }}.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.core.exceptions import ValidationError

MAX_TEMPLATE_LENGTH = 1000
# {{ or }} (literal braces), {name} (a placeholder), or any other brace (an error).
TOKEN = re.compile(r"\{\{|\}\}|\{([a-z_]+)\}|[{}]")


def placeholders_in(text: str) -> list[str]:
    """The placeholder names in a template, in order; raises ValidationError for anything else in braces."""
    names = []
    for match in TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if match.group(1) is None:
            snippet = text[match.start() : match.start() + 30]
            raise ValidationError(
                f"Braces may only hold a placeholder such as {{first_name}} (no formats or attributes), near "
                f"“{snippet}”. Write a literal brace as {{{{ or }}}}."
            )
        names.append(match.group(1))
    return names


def render_text(text: str, values: Mapping[str, object]) -> str:
    """Replace each placeholder by its value (str()), doubled braces by single ones."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        return str(values.get(name, "")) if name is not None else token

    return TOKEN.sub(replace, text)
