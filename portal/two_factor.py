"""The two-factor rule (ADMIN_REQUIRE_2FA), in one place for every session-authenticated entry: the admin's pages
(PortalAdminSite.has_permission) and the API's session authentication (integrations.api_auth).

Token authentication is not a log-in session and is not asked: a client API token acts for one client, never as a
site admin."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from integrations.tenancy import is_site_admin

# What the API answers a site admin's session that was opened without the one-time code.
API_SECOND_FACTOR_MISSING = (
    "This session was opened without the one-time code that site admins need (ADMIN_REQUIRE_2FA): log in again at "
    "/admin/login/ with the code from your authenticator app, or call the API with a client token."
)


def lacks_second_factor(user: Any) -> bool:
    """Whether this logged-in user's session may not be used: 2FA is required, the user is a site admin, and no
    one-time code verified the session (django-otp's OTPMiddleware adds `is_verified`)."""
    if not (settings.ADMIN_REQUIRE_2FA and is_site_admin(user)):
        return False
    is_verified = getattr(user, "is_verified", None)
    # Without OTPMiddleware there is no way to have verified the session: it does not count.
    return not (callable(is_verified) and is_verified())
