from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path

from arena.api import api
from arena.media import serve_media
from workers.admin_views import generation_dashboard

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/generation/", generation_dashboard, name="admin-generation"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("frontend.urls")),
]
if settings.SERVE_MEDIA:
    urlpatterns.append(re_path(r"^media/(?P<path>.+)$", serve_media, name="media"))
