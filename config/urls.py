from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path

from frontend.admin_views import generation_dashboard
from frontend.api import api
from frontend.fraud_views import fraud_arena, fraud_overview, fraud_scan_now, fraud_voter
from frontend.health import healthz, readyz
from frontend.media import serve_battle_media, serve_media
from frontend.metrics import metrics_view

# The API first: Django tries the patterns in order, and the busiest requests are the API's
# battles and votes (no other pattern starts with "api/").
urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/", api.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/generation/", generation_dashboard, name="admin-generation"),
    path("admin/fraud/", fraud_overview, name="admin-fraud"),
    path("admin/fraud/<slug:slug>/", fraud_arena, name="admin-fraud-arena"),
    path("admin/fraud/<slug:slug>/scan/", fraud_scan_now, name="admin-fraud-scan"),
    path("admin/fraud/<slug:slug>/voter/<str:voter_id>/", fraud_voter, name="admin-fraud-voter"),
    path("admin/", admin.site.urls),
    path("m/<str:token>", serve_battle_media, name="battle-media"),
    path("", include("frontend.urls")),
]
if settings.SERVE_MEDIA:
    urlpatterns.append(re_path(r"^media/(?P<path>.+)$", serve_media, name="media"))
