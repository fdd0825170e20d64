"""Every admin list — the portal's and the libraries' (Axes, Celery beat, users) — with each cell's contents clamped
to a few lines (portal.css `.cell`) and a long one's whole text on hover: a row stays a few lines tall whatever the
values, and no admin has to clip its columns one by one. The whole value is also on the record's page."""

from __future__ import annotations

import html
import re
from typing import Any, cast

from django import template
from django.contrib.admin.templatetags.admin_list import ResultList, result_list
from django.contrib.admin.views.main import ChangeList
from django.utils.html import escape, strip_tags
from django.utils.safestring import mark_safe

register = template.Library()

# Django's admin renders a row's cell as one element, <td class="field-…">…</td> (<th> for the row's link).
CELL = re.compile(r"^<(?P<tag>td|th)(?P<attributes>[^>]*)>(?P<contents>.*)</(?P=tag)>$", re.DOTALL)
# Contents left alone: the selection checkbox and the inputs of an editable list.
FORM_FIELDS = re.compile(r"<(input|select|textarea)\b")
# Text longer than this may be clamped (a column is at least 4em wide, three lines of it): its cell carries the
# whole as a tooltip.
TOOLTIP_FROM_CHARACTERS = 16


@register.inclusion_tag("admin/change_list_results.html")
def clamped_result_list(cl: ChangeList) -> dict[str, Any]:
    """Django's `{% result_list cl %}`, each cell's contents wrapped in a clamped box."""
    context = result_list(cl)
    rows = cast("list[ResultList]", context["results"])
    context["results"] = [ResultList(row.form, [clamped(cell) for cell in row]) for row in rows]
    return context


def clamped(cell: str) -> str:
    found = CELL.match(cell)
    if found is None or FORM_FIELDS.search(found["contents"]):
        return cell
    return mark_safe(  # noqa: S308 - Django's own escaped cell; the tooltip is escaped here
        f'<{found["tag"]}{found["attributes"]}><div class="cell"{tooltip(found["contents"])}>'
        f"{found['contents']}</div></{found['tag']}>"
    )


def tooltip(contents: str) -> str:
    """` title="…"` with the cell's whole text when it is long, unless the contents give their own (`clipped`)."""
    if len(contents) <= TOOLTIP_FROM_CHARACTERS or " title=" in contents:
        return ""  # short (the markup is never shorter than its text), or the contents give their own
    # Most cells are plain text: Django's strip_tags (an HTML parser) only where there is markup to take out.
    plain = contents if "<" not in contents and "&" not in contents else html.unescape(strip_tags(contents))
    text = " ".join(plain.split())
    if len(text) <= TOOLTIP_FROM_CHARACTERS:
        return ""
    return f' title="{escape(text)}"'
