"""The one First Orion access token of a connection, shared by every process and worker.

It lives in the database (AccessToken, encrypted), because that is the one store every process sees on both set-ups
(SQLite with a per-process locmem cache, PostgreSQL with Redis). It is refreshed a little before it expires (a
minute early for a 15-minute token, lifetime/15 in general) by exactly one caller: the one whose compare-and-set on
the row wins a short lease. The others keep using the old token while it is still valid, or wait for the new one,
so an expiry never causes a stampede of token requests.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import OperationalError
from django.db.models import Q
from django.utils import timezone

from integrations.first_orion.api import FirstOrionAPI, IssuedToken, TokenExpired, TokenRefused
from integrations.first_orion.models import AccessToken
from integrations.http import Unavailable
from integrations.models import Connection

T = TypeVar("T")
# Longer than a token call may take with its retries; a refresher that died frees the lease after this.
LEASE_SECONDS = 30.0
WAIT_STEP_SECONDS = 0.05


def refresh_margin(lifetime_seconds: float) -> float:
    """How early a token is refreshed: 60 s of a 15-minute token, proportionally less of a shorter one."""
    return lifetime_seconds / 15


def credentials_fingerprint(api: FirstOrionAPI) -> str:
    """Which credentials a token was granted for (stored with it, encrypted; a hash, so no secret is copied)."""
    return hashlib.sha256("\n".join((api.base_url, api.client_id, api.client_secret)).encode()).hexdigest()


class TokenSource:
    """Hands out the connection's token; `api` makes the token call (and learns the token, to redact it)."""

    def __init__(self, connection: Connection, api: FirstOrionAPI) -> None:
        self.connection = connection
        self.api = api
        self.owner = uuid.uuid4().hex
        self.fingerprint = credentials_fingerprint(api)

    def current(self) -> str:
        """A token that is valid now: the stored one, or a new one fetched by exactly one caller."""
        deadline = time.monotonic() + LEASE_SECONDS + 5
        while True:
            row = self._row()
            now = timezone.now()
            token = self._ours(row)
            if token and row.refresh_at and now < row.refresh_at:
                return self._known(token)
            if self._take_lease(row, now):
                return self._fetch()
            if token and row.expires_at and now < row.expires_at:
                # Another caller is refreshing; the old token is still good meanwhile.
                return self._known(token)
            if time.monotonic() > deadline:
                raise Unavailable(self.api.vendor, "a token refresh by another worker did not finish in time")
            time.sleep(WAIT_STEP_SECONDS)

    def refused(self, token: str) -> str:
        """First Orion answered 401 to `token`: unless another caller has already replaced it, it is forgotten and
        a new one fetched."""
        self.expire(token)
        return self.current()

    def expire(self, token: str) -> None:
        """Mark `token` expired (First Orion refused it), unless another caller has already replaced it."""
        row = self._row()
        if row.access_token == token:
            AccessToken.objects.filter(pk=row.pk, issued_at=row.issued_at).update(
                refresh_at=timezone.now(), expires_at=timezone.now()
            )

    def forget(self) -> None:
        """Drop the stored token (new credentials, or a verify that must prove them)."""
        AccessToken.objects.filter(connection=self.connection).update(
            value={}, refresh_at=None, expires_at=None, issued_at=None
        )

    def with_token(self, call: Callable[[str], T]) -> T:
        """Make a call with the token; on a 401 get a new token once and repeat the call once (it was refused,
        not applied, so repeating it cannot do harm). The first 401 is ordinary (an expired token) and does not
        count against the connection; a 401 to the new token does, and is not retried again."""
        token = self.current()
        try:
            return call(token)
        except TokenExpired:
            fresh = self.refused(token)
        try:
            return call(fresh)
        except TokenExpired as exc:
            raise self._refused_again(exc) from exc

    def with_token_as_it_leaves(
        self, call: Callable[[Callable[[], str]], T], refused: Callable[[], None] = lambda: None
    ) -> T:
        """Like `with_token`, for a call that takes its token only as it leaves, once the rate limit has let it go
        (VendorAPI.request's `before_send`): `call` gets the function that hands out the token then. A wait at the
        limit can be seconds on a busy connection, and a token taken before it may have been refused (and replaced)
        meanwhile. On a 401 the token the call carried is dropped, `refused` runs (the call was refused, not
        applied) and the call is made once more, taking a new token as it leaves."""
        carried: list[str] = []

        def take() -> str:
            token = self._known(self.current())
            carried.append(token)
            return token

        try:
            return call(take)
        except TokenExpired:
            if carried:
                self.expire(carried[-1])
            refused()
        try:
            return call(take)
        except TokenExpired as exc:
            raise self._refused_again(exc) from exc

    def _refused_again(self, exc: TokenExpired) -> TokenRefused:
        """A 401 to a token just fetched: the credentials, not the token, are refused (counts against the
        connection)."""
        refused = TokenRefused(self.api.vendor, exc.message, status=401)
        self.api.call_log.failed(refused)
        return refused

    # Internals ----------------------------------------------------------------------------------------------

    def _ours(self, row: AccessToken) -> str:
        """The stored token if it was granted for the credentials (and URL) in use now: one granted before the
        client id or secret changed is not used, so new credentials are proven by the next call."""
        return row.access_token if row.credentials == self.fingerprint else ""

    def _known(self, token: str) -> str:
        self.api.remember_secret(token)
        return token

    def _row(self) -> AccessToken:
        row, _ = AccessToken.objects.get_or_create(connection=self.connection)
        return row

    def _take_lease(self, row: AccessToken, now: datetime) -> bool:
        """Compare-and-set: the lease is free (or abandoned) and nobody refreshed since `row` was read."""
        unchanged = Q(refresh_at=row.refresh_at) if row.refresh_at else Q(refresh_at__isnull=True)
        free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        try:
            taken = AccessToken.objects.filter(unchanged, free, pk=row.pk).update(
                lease_until=now + timedelta(seconds=LEASE_SECONDS), lease_owner=self.owner
            )
        except OperationalError:
            # SQLite: another writer holds the database at this instant; it is most likely the refresher.
            return False
        return taken == 1

    def _fetch(self) -> str:
        try:
            issued = self.api.get_token()
        except Exception:
            AccessToken.objects.filter(connection=self.connection, lease_owner=self.owner).update(lease_until=None)
            raise
        self._store(issued)
        return issued.access_token

    def _store(self, issued: IssuedToken) -> None:
        now = timezone.now()
        lifetime = timedelta(seconds=issued.lifetime_seconds)
        AccessToken.objects.filter(connection=self.connection, lease_owner=self.owner).update(
            value={"access_token": issued.access_token, "credentials": self.fingerprint},
            issued_at=now,
            expires_at=now + lifetime,
            refresh_at=now + lifetime - timedelta(seconds=refresh_margin(issued.lifetime_seconds)),
            lease_until=None,
            lease_owner="",
        )
