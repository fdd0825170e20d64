"""The portal's URLs plus the benchmark's baseline: `/baseline/<connection id>/` is a bare Django view that stores
one row, through the same middleware, so the Vibes callback endpoint is compared with the least a view can do."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from integrations.models import WebhookEvent


@csrf_exempt
def baseline(request: HttpRequest, connection_id: int) -> JsonResponse:
    WebhookEvent.objects.create(connection_id=connection_id, body=request.body.decode(), status="ignored")
    return JsonResponse({})


urlpatterns = [path("baseline/<int:connection_id>/", baseline), path("", include("portal.urls"))]
