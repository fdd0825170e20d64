"""Rows with long, realistic values for every model the admin lists, so that a layout check measures lists as they
look in use (long e-mails, error texts, URLs and names), not near-empty ones.

Each field is filled from its type: no list is left out because nobody wrote a factory for it. A model whose rows
cannot be built this way (a save() that insists on a combination of fields) gets a small builder in BUILDERS.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, models
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from integrations.crypto import EncryptedJSONField
from integrations.vendors import VENDORS

ROWS = 30
WORDS = "the vendor answered with an unexpected error while the request was retried by the portal "
LONG_TEXT = (WORDS * 6).strip()
LONG_TOKEN = "customer-relationship-loyalty-programme-identifier-" * 3


def long_email(n: int) -> str:
    return f"firstname.middlename.lastname.{n}@a-long-company-name-international-holdings.example.com"


def long_url(n: int) -> str:
    return f"https://public-api.example-vendor.com/companies/demo/mobiledb/persons/external/{LONG_TOKEN}{n}?expand=all"


def value_for(field: models.Field, n: int) -> Any:
    """A long but valid value for one field of the n-th row."""
    if field.choices:
        return [value for value, _ in field.flatchoices][n % len(field.flatchoices)]
    if field.name == "vendor":  # a vendor key without choices on the field (the vendor apps register themselves)
        return list(VENDORS)[n % len(VENDORS)]
    if isinstance(field, models.EmailField):
        return long_email(n)[: field.max_length]
    if isinstance(field, models.URLField):
        return long_url(n)[: field.max_length]
    if isinstance(field, models.SlugField):
        return f"slug-{n}-{uuid.uuid4().hex}"[: field.max_length]
    if isinstance(field, models.GenericIPAddressField):
        return f"203.0.113.{n % 250}"
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.BooleanField):
        return n % 2 == 0
    if isinstance(field, models.DateTimeField):
        return timezone.now() - timedelta(hours=n)
    if isinstance(field, models.DateField):
        return timezone.now().date() - timedelta(days=n)
    if isinstance(field, models.DurationField):
        return timedelta(seconds=n)
    if isinstance(field, models.JSONField):
        return field.get_default() if field.has_default() else []
    if isinstance(field, models.IntegerField | models.FloatField | models.DecimalField):
        return n + 1
    if isinstance(field, models.CharField):
        text = f"{n} {LONG_TOKEN}" if field.max_length and field.max_length <= 80 else f"{n} {LONG_TEXT} {LONG_TOKEN}"
        return text[: field.max_length]
    if isinstance(field, models.TextField):
        return f"{n} {LONG_TEXT} {LONG_TOKEN}"
    return field.get_default()


def fields_of(model: type[models.Model]) -> list[models.Field]:
    """The fields a row is built with: all but the key, the relations (see LongRows), encrypted secrets and fields
    the model fills itself (a callable default: tokens, timestamps)."""
    return [
        field
        for field in model._meta.concrete_fields
        if not field.primary_key
        and not field.is_relation
        and not isinstance(field, EncryptedJSONField)
        and not (field.has_default() and callable(field.default))
    ]


class LongRows:
    """Builds rows for models, sharing one row of each related model where the database allows it."""

    def __init__(self, shared: dict[type[models.Model], models.Model]) -> None:
        self.shared = dict(shared)
        self.serial = 0  # numbers every row built, so that unique values never repeat

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def related(self, field: models.ForeignKey, n: int, fresh: bool) -> models.Model:
        model = field.related_model
        if not fresh and not field.one_to_one and model in self.shared:
            return self.shared[model]
        row = self.build(model, n, fresh=True)
        self.shared.setdefault(model, row)
        return row

    def build(self, model: type[models.Model], n: int, *, fresh: bool = False) -> models.Model:
        if model in BUILDERS:
            return BUILDERS[model](self, n)
        values = {field.name: value_for(field, self.next_serial()) for field in fields_of(model)}
        for field in model._meta.concrete_fields:
            if isinstance(field, models.ForeignKey) and not field.null:
                values[field.name] = self.related(field, n, fresh)
        return model.objects.create(**values)

    def fill(self, model: type[models.Model], rows: int = ROWS) -> None:
        """`rows` rows of the model: with the shared related rows, or with rows of their own where a unique
        constraint (one connection per client and vendor, ...) refuses the shared ones."""
        for n in range(rows):
            try:
                self.build(model, n)
            except IntegrityError:
                self.build(model, n, fresh=True)


def periodic_task(rows: LongRows, n: int) -> PeriodicTask:
    # django-celery-beat's save() insists on exactly one schedule.
    every = IntervalSchedule.objects.get_or_create(every=n + 1, period=IntervalSchedule.MINUTES)[0]
    return PeriodicTask.objects.create(
        name=f"{n} {LONG_TEXT}"[:200], task=f"integrations.{LONG_TOKEN}{n}"[:200], interval=every
    )


BUILDERS: dict[type[models.Model], Callable[[LongRows, int], models.Model]] = {PeriodicTask: periodic_task}
