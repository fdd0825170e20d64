"""URL patterns of the vendor simulators: each vendor's `sandbox.py` is mounted under its key (the sandbox base URL
of its connections), found through the vendor registry. `/sandbox/` itself is a page listing them."""

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, clear_url_caches, include, path, reverse
from django.views.decorators.http import require_POST

from integrations.hooks import Simulates, hooks
from integrations.sandbox import persistence
from integrations.sandbox.base import outage_control, simulator
from integrations.sandbox.directory import FAILURE_HEADER, simulators
from integrations.vendors import registry_changed

# Each simulator's views read the saved states first and have their changes written (integrations/sandbox/persistence).
SIMULATORS = {key: persistence.remember_views_of(module) for key, module in hooks(Simulates).items()}


def wants_json(request: HttpRequest) -> bool:
    return request.GET.get("format") == "json" or "application/json" in request.headers.get("Accept", "")


@simulator
def index(request: HttpRequest) -> HttpResponse:
    """Lists the simulators that are mounted: a page for people, JSON for scripts (Accept: application/json or
    ?format=json)."""
    if wants_json(request):
        return JsonResponse({"sandbox": True, "vendors": sorted(SIMULATORS)})
    persistence.load_all()
    context = {
        "simulators": simulators(),
        "failure_header": FAILURE_HEADER,
        "kept_in": persistence.state_dir(),
        "was_reset": request.GET.get("reset") == "done",
    }
    return TemplateResponse(request, "sandbox/index.html", context)


@require_POST
def reset(request: HttpRequest) -> HttpResponse:
    """*Reset the sandbox*: every simulator back to how it starts (the page says what that clears)."""
    persistence.load_all()  # so a later first request does not bring the saved states back
    persistence.reset_all()
    return HttpResponseRedirect(f"{reverse('sandbox-index')}?reset=done")


def patterns() -> list[URLPattern | URLResolver]:
    return [
        path("", index, name="sandbox-index"),
        path("_reset", reset, name="sandbox-reset"),
        *[path(f"{vendor}/", include(module.urlpatterns)) for vendor, module in SIMULATORS.items()],
        path("<str:vendor>/_outage", outage_control, name="sandbox-outage"),
    ]


def mount_simulators(**kwargs: Any) -> None:
    """Mount the simulators of the vendors registered now (the URLconf keeps this module's list: filled in place)."""
    found = hooks(Simulates)
    for key in set(SIMULATORS) - set(found):
        del SIMULATORS[key]
    for key, module in found.items():
        SIMULATORS.setdefault(key, persistence.remember_views_of(module))
    urlpatterns[:] = patterns()
    clear_url_caches()


urlpatterns = patterns()
registry_changed.connect(mount_simulators, dispatch_uid="integrations.sandbox.mount_simulators")
