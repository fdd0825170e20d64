"""URL patterns of the vendor simulators: each vendor's `sandbox.py` is mounted under its key (the sandbox base URL
of its connections), found through the vendor registry. `/sandbox/` itself is a page listing them."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import include, path

from integrations.sandbox.base import outage_control, simulator
from integrations.sandbox.directory import FAILURE_HEADER, simulators
from integrations.vendors import vendor_modules

SIMULATORS = vendor_modules("sandbox")


def wants_json(request: HttpRequest) -> bool:
    return request.GET.get("format") == "json" or "application/json" in request.headers.get("Accept", "")


@simulator
def index(request: HttpRequest) -> HttpResponse:
    """Lists the simulators that are mounted: a page for people, JSON for scripts (Accept: application/json or
    ?format=json)."""
    if wants_json(request):
        return JsonResponse({"sandbox": True, "vendors": sorted(SIMULATORS)})
    context = {"simulators": simulators(), "failure_header": FAILURE_HEADER}
    return TemplateResponse(request, "sandbox/index.html", context)


urlpatterns = [
    path("", index, name="sandbox-index"),
    *[path(f"{vendor}/", include(module)) for vendor, module in SIMULATORS.items()],
    path("<str:vendor>/_outage", outage_control, name="sandbox-outage"),
]
