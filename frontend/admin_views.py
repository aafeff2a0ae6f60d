"""The operators' generation dashboard inside the Django admin."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from arena.models import AssetStatus
from arena.services import assets_retry
from workers.ops import generations_in, model_generation_stats, queue_depths


@staff_member_required
def generation_dashboard(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and request.POST.get("action") == "retry":
        queued = assets_retry(
            asset_ids=[int(pk) for pk in request.POST.getlist("asset") if pk.isdigit()]
        )
        messages.success(request, f"{queued} failed generation(s) sent again.")
        return redirect("admin-generation")
    context = {
        **admin.site.each_context(request),
        "title": "Generation",
        "queues": queue_depths(),
        "stats": model_generation_stats(),
        "running": generations_in(AssetStatus.RUNNING),
        "failed": generations_in(AssetStatus.FAILED),
    }
    return render(request, "admin/generation.html", context)
