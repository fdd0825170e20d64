"""Enrol a site admin's authenticator app for the two-factor log-in (ADMIN_REQUIRE_2FA): prints the QR code (and the
otpauth:// URL) to scan, once. Run on the server: whoever runs the portal's commands is trusted with its secrets."""

from __future__ import annotations

from typing import Any, TextIO, cast

import segno
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Give a user a new authenticator (TOTP) for the admin's two-factor log-in, replacing any they had."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--no-qr", action="store_true", help="Print only the otpauth:// URL.")

    def handle(self, *args: Any, username: str, no_qr: bool = False, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        with transaction.atomic():
            # One authenticator per person: a lost phone is replaced, and the old codes stop working at once.
            TOTPDevice.objects.filter(user=user).delete()
            device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=True)
        if not no_qr:
            out = cast(TextIO, self.stdout)  # OutputWrapper, a text stream: segno only writes to it
            segno.make(device.config_url, error="m").terminal(out=out, compact=True)
        self.stdout.write(device.config_url)
        self.stdout.write(
            f"Scan this with {username}'s authenticator app now: it is not shown again. "
            "With ADMIN_REQUIRE_2FA on, the admin's log-in asks for the app's current code."
        )
