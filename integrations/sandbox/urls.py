"""URL patterns of the vendor simulators: each vendor's `sandbox.py` is mounted under its key (the sandbox base URL
of its connections), found through the vendor registry."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from integrations.sandbox.base import outage_control, simulator
from integrations.vendors import vendor_modules

SIMULATORS = vendor_modules("sandbox")


@simulator
def index(request: HttpRequest) -> JsonResponse:
    """Lists the simulators that are mounted."""
    return JsonResponse({"sandbox": True, "vendors": sorted(SIMULATORS)})


urlpatterns = [
    path("", index, name="sandbox-index"),
    *[path(f"{vendor}/", include(module)) for vendor, module in SIMULATORS.items()],
    path("<str:vendor>/_outage", outage_control, name="sandbox-outage"),
]
