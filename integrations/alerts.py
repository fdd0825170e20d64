"""E-mails to site admins when something needs a person: a connection turned failing, a job run failed or was
interrupted, messages became uncertain. Throttled to one e-mail per subject key per hour (ALERT_THROTTLE_SECONDS),
through Django's mail settings (EMAIL_URL). Texts are redacted like log lines.

Recipients are the site admins in the database plus ALERT_EMAILS (a setting): while the database is down — a 503 to
every callback — the site admins cannot be read, so only ALERT_EMAILS hear of it. An alert that could not go out
holds its key for ALERT_RETRY_SECONDS only, so the next occurrence after the outage is e-mailed, without a send
attempt per failing call meanwhile."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import DatabaseError, InterfaceError
from django.db.models import Q

from integrations.redaction import redact_text
from integrations.tenancy import SITE_ADMIN_PERMISSION

logger = logging.getLogger(__name__)


def site_admin_emails() -> list[str]:
    app_label, codename = SITE_ADMIN_PERMISSION.split(".")
    has_permission = Q(user_permissions__codename=codename, user_permissions__content_type__app_label=app_label) | Q(
        groups__permissions__codename=codename, groups__permissions__content_type__app_label=app_label
    )
    users = get_user_model().objects.filter(Q(is_superuser=True) | has_permission, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def alert(key: str, subject: str, body: str) -> bool:
    """E-mail the site admins unless the same `key` was alerted within the throttle window; never raises (an alert
    that cannot be sent is logged, and the work goes on). Returns whether an e-mail went out."""
    try:
        if not cache.add(f"alert:{key}", True, timeout=settings.ALERT_THROTTLE_SECONDS):
            return False
    except Exception:  # the cache (Redis) is down: no throttle, so no e-mail rather than one per call
        logger.warning("Could not throttle the alert %r (the cache is unreachable); not sent.", subject)
        return False
    sent = send_alert(subject, body, alert_recipients(subject))
    if not sent:
        hold_for_retry(key)
    return sent


def alert_recipients(subject: str) -> list[str]:
    """The site admins' addresses and ALERT_EMAILS; ALERT_EMAILS alone when the database cannot be read."""
    configured = set(settings.ALERT_EMAILS)
    try:
        return sorted(configured | set(site_admin_emails()))
    except (DatabaseError, InterfaceError):  # the database is down: who the site admins are is not known now
        logger.warning("Could not read the site admins for the alert %r; sent to ALERT_EMAILS only.", subject)
        return sorted(configured)


def send_alert(subject: str, body: str, recipients: list[str]) -> bool:
    if not recipients:
        return False
    try:
        send_mail(f"[Integration Portal] {redact_text(subject)}", redact_text(body), None, recipients)
    except Exception:  # the mail server is down: the dashboard still shows the problem
        logger.warning("Could not e-mail the alert %r to the site admins.", subject)
        return False
    return True


def hold_for_retry(key: str) -> None:
    """An alert nobody received keeps its key a short while instead of the throttle's hour."""
    try:
        cache.set(f"alert:{key}", True, timeout=settings.ALERT_RETRY_SECONDS)
    except Exception:
        logger.warning("Could not shorten the throttle of the alert %r.", key)
