from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from integrations.hooks import ServesClientApi, hooks
from integrations.views import ClientViewSet, ConnectionViewSet
from integrations.webhooks import callback_urlpatterns
from members.api import LoyaltyEventViewSet, MemberViewSet, SegmentExportViewSet, SegmentViewSet
from portal.metrics import metrics
from portal.views import healthz

router = DefaultRouter()
router.register("clients", ClientViewSet, basename="client")
router.register("connections", ConnectionViewSet, basename="connection")
router.register("members", MemberViewSet, basename="member")
router.register("loyalty-events", LoyaltyEventViewSet, basename="loyalty-event")
router.register("segments", SegmentViewSet, basename="segment")
router.register("segment-exports", SegmentExportViewSet, basename="segment-export")
# Each vendor's own client-API routes (its views.py), e.g. Attentive's member actions.
for views in hooks(ServesClientApi).values():
    for prefix, viewset, basename in views.ROUTES:
        router.register(prefix, viewset, basename=basename)

urlpatterns = [
    # Vendor callbacks first: the most frequent request resolves without trying (and listing) every other route.
    path("api/", include(callback_urlpatterns())),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (?script=), so the page needs no inline script.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api_docs/swagger_ui.html"),
        name="api-docs",
    ),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("integrations.sandbox.urls")))
