"""Re-seal every encrypted value under the first key of FIELD_ENCRYPTION_KEYS, in batches.

Afterwards the older keys can be removed from FIELD_ENCRYPTION_KEYS with nothing lost. Safe to interrupt and run
again: values already under the first key are skipped.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils.translation import ngettext

from integrations.rotation import rotate_all


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        skipped = 0
        for label, (count, unreadable) in rotate_all(batch_size=batch_size).items():
            self.stdout.write(f"{label}: re-encrypted {count} {ngettext('value', 'values', count)}")
            if unreadable:
                self.stdout.write(
                    f"{label}: {unreadable} {ngettext('value', 'values', unreadable)} no key opens "
                    f"{ngettext('was left as it is: re-enter it', 'were left as they are: re-enter them', unreadable)}"
                )
                skipped += unreadable
        if skipped:
            self.stdout.write(self.style.WARNING("Done, except the values no key opens (listed above)."))
        else:
            self.stdout.write(self.style.SUCCESS("Every encrypted value is now under the first key."))
