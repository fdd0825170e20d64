"""Who changed a member, for the member's timeline.

A person's edit on the member's admin page is in the admin's own log (who, when, which fields). Every other way a
member changes — the API, an import, a vendor's callback, a refresh from Annex Cloud, a Bazaarvoice pull — names
itself around its work with `changed_by("…")`, and each change `members.sync.record_change` sees meanwhile is stored
as a MemberChange with that name. A change made with no name set is recorded as the portal's own, so a way in that
forgets to name itself still leaves its change on the timeline. An import stores its changes in one INSERT per
batch (`collected`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db.models import Model

from integrations.job_runs import current_run
from members.models import Member, MemberChange

THE_PORTAL = "the portal"
# The admin's member page: its LogEntry records the change already.
ON_THE_ADMIN_PAGE = "the member's admin page"

_by: ContextVar[str | Callable[[], str] | None] = ContextVar("member_changes_by", default=None)
_collected: ContextVar[list[MemberChange] | None] = ContextVar("member_changes_collected", default=None)
_source: ContextVar[str] = ContextVar("member_changes_source", default="")

BY_MAX = MemberChange._meta.get_field("by").max_length or 200
FIELDS_MAX = MemberChange._meta.get_field("fields").max_length or 300


@contextmanager
def changed_by(who: str | Callable[[], str], source: Model | None = None) -> Iterator[None]:
    """Changes made inside are recorded as made by `who` (e.g. "the API, token “CRM”"); a callable is asked when a
    change is recorded (an API request knows its caller only once it is authenticated). `source`: the record they
    come from (a callback's stored delivery, a background import, a review), linked from the timeline."""
    token, source_token = _by.set(who), _source.set(reference(source) if source is not None else "")
    try:
        yield
    finally:
        _by.reset(token)
        _source.reset(source_token)


def reference(record: Model) -> str:
    """A record named in a few bytes, whatever its model: "app_label.model_name:pk"."""
    return f"{record._meta.label_lower}:{record.pk}"


def job_run_reference() -> str:
    """The run of the job doing this work, if a job is: a change made by a job links its run."""
    run = current_run()
    return reference(run) if run is not None and run.pk else ""


def referenced(source: str) -> tuple[str, str, str] | None:
    """The app label, model name and primary key a `reference` names (None for none)."""
    label, _, pk = source.partition(":")
    app_label, _, model_name = label.partition(".")
    return (app_label, model_name, pk) if app_label and model_name and pk else None


@contextmanager
def undone_with_the_savepoint() -> Iterator[None]:
    """Around a savepoint inside `collected`: should it roll back, the changes it recorded are not stored either (they
    would name members that were never stored)."""
    rows = _collected.get()
    kept = len(rows) if rows is not None else 0
    try:
        yield
    except BaseException:
        if rows is not None:
            del rows[kept:]
        raise


@contextmanager
def collected() -> Iterator[None]:
    """Changes recorded inside are stored together when it ends (one INSERT), in the caller's transaction."""
    rows: list[MemberChange] = []
    token = _collected.set(rows)
    try:
        yield
    finally:
        _collected.reset(token)
    MemberChange.objects.bulk_create(rows)


# When the portal last read or synced a member: bookkeeping, not a change to the member (every refresh and every
# points answer moves them).
BOOKKEEPING = frozenset({"annex_cloud_read_at", "points_synced_at", "known_to_annex_cloud", "updated_at"})


def record(member: Member, fields: Iterable[str]) -> None:
    changed = sorted(set(fields) - BOOKKEEPING)
    if not changed:
        return
    who = _by.get()
    who = (who() if callable(who) else who) or THE_PORTAL
    if who == ON_THE_ADMIN_PAGE:
        return
    source = _source.get() or job_run_reference()
    row = MemberChange(member=member, by=who[:BY_MAX], fields=", ".join(changed)[:FIELDS_MAX], source=source)
    rows = _collected.get()
    if rows is None:
        row.save()
    else:
        rows.append(row)
