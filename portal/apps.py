from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """The Django admin, with the portal's site (dashboard index) as the default site."""

    default_site = "portal.admin.PortalAdminSite"
