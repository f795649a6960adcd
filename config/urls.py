from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from sis_sync.api.errors import not_found_view
from sis_sync.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("sis_sync.api.urls")),
    re_path(r"^api/", not_found_view),  # any other /api/ path: a JSON 404 too
    path("webhooks/", include("sis_sync.webhooks.urls")),
]
