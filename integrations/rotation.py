"""Key rotation: find every EncryptedJSONField in the project and re-seal values not under the current key."""

from __future__ import annotations

from django.apps import apps
from django.db import models, transaction
from django.db.models.functions import Cast

from integrations.crypto import PREFIX, EncryptedJSONField, UnreadableSecrets, key_ring


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedJSONField)
    ]


def rotate_field(model: type[models.Model], field: str, batch_size: int = 500) -> tuple[int, int]:
    """Re-encrypt one field's stale values, one committed batch at a time, walking the primary key. Values no key
    opens are skipped (and counted): they stay as they are until an admin re-enters them."""
    current_prefix = f"{PREFIX}{key_ring().primary_id}:"
    # The raw stored text, read past the field's decryption, tells which key sealed each value.
    stale = (
        model._default_manager.annotate(sealed=Cast(field, output_field=models.TextField()))
        .filter(sealed__isnull=False)
        .exclude(sealed__startswith=current_prefix)
        .order_by("pk")
    )
    rotated, unreadable, last_pk = 0, 0, 0
    while True:
        with transaction.atomic():
            batch = list(stale.filter(pk__gt=last_pk).select_for_update()[:batch_size])
            if not batch:
                return rotated, unreadable
            readable = [row for row in batch if not isinstance(getattr(row, field), UnreadableSecrets)]
            # Loading decrypted the values with whichever key sealed them; saving seals them with the first key.
            if readable:
                model._default_manager.bulk_update(readable, [field])
        rotated += len(readable)
        unreadable += len(batch) - len(readable)
        last_pk = batch[-1].pk


def rotate_all(batch_size: int = 500) -> dict[str, tuple[int, int]]:
    return {
        f"{model._meta.label}.{field}": rotate_field(model, field, batch_size) for model, field in encrypted_fields()
    }
