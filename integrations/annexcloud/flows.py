"""Annex Cloud use cases of the portal: the signed API of a client, refreshing members, pushing segments."""

from __future__ import annotations

from integrations.annexcloud.api import AnnexCloudAPI
from integrations.connections import api_for
from integrations.models import Client, Connection


class AnnexCloudNotReady(Exception):
    """The client has no usable Annex Cloud connection; says what to set up."""


def annex_cloud_api(client: Client) -> AnnexCloudAPI:
    connection = Connection.objects.filter(client=client, vendor="annex_cloud").first()
    if connection is None or not connection.secret("api_secret") or not client.site_id:
        raise AnnexCloudNotReady(
            f"{client} has no Annex Cloud site credentials: enter the site id and API shared secret from the "
            "client's page (Annex Cloud site credentials)."
        )
    return api_for(
        connection,
        AnnexCloudAPI,
        site_id=client.site_id,
        secret=connection.secret("api_secret"),
        subject=connection.settings.get("jwt_subject", ""),
    )
