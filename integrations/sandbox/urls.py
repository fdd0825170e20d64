"""URL patterns of the vendor simulators, one prefix per vendor (the sandbox base URL of its connections)."""

from django.urls import include, path

from integrations.sandbox.base import index

# vendor key -> module with `urlpatterns`; each vendor's work adds its simulator here.
SIMULATORS: dict[str, str] = {
    "annex_cloud": "integrations.sandbox.annex_cloud",
    "attentive": "integrations.sandbox.attentive",
    "vibes": "integrations.sandbox.vibes",
}

urlpatterns = [
    path("", index, name="sandbox-index"),
    *[path(f"{vendor}/", include(module)) for vendor, module in SIMULATORS.items()],
]
