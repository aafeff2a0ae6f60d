"""The operators' pages inside the Django admin: the per-arena overview on the admin index
(``admin/index.html`` renders it through ``{% arena_overview %}``) and the generation dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from arena.dashboard import ArenaOverview, ModelHealth, arena_overviews
from arena.models import AssetStatus
from arena.services import assets_retry
from workers.ops import QueueDepth, generations_in, model_generation_stats, queue_depths


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


@dataclass(frozen=True)
class ArenaPanel:
    """One arena's overview with the depths of the queues its models' jobs wait in."""

    overview: ArenaOverview
    queues: list[QueueDepth]
    models: list[tuple[ModelHealth, QueueDepth | None]]

    @property
    def waiting(self) -> int | None:
        """Jobs waiting in its queues (None: the broker could not be asked about one)."""
        if any(q.messages is None for q in self.queues):
            return None
        return sum(q.messages or 0 for q in self.queues)


def _chart_data(overviews: list[ArenaOverview]) -> dict[str, Any]:
    """What ``arena/dashboard.js`` plots: votes (counted and excluded) per hour and per day."""

    def series(points: list[tuple[Any, int, int]], fmt: str) -> dict[str, list[Any]]:
        return {
            "labels": [at.strftime(fmt) for at, _, _ in points],
            "counted": [votes - excluded for _, votes, excluded in points],
            "excluded": [excluded for _, _, excluded in points],
        }

    return {
        o.arena.slug: {"hours": series(o.hourly, "%a %H:00"), "days": series(o.daily, "%a %d %b")}
        for o in overviews
    }


def arena_overview_context(*, now: datetime | None = None) -> dict[str, Any]:
    """The admin index's overview: every active arena's figures (a fixed number of queries)
    and the broker's queue depths (one broker connection, no database query)."""
    overviews = arena_overviews(now=now)
    names = sorted({name for o in overviews for name in o.queues})
    depths = {d.name: d for d in queue_depths(names)} if names else {}
    panels = [
        ArenaPanel(
            overview=o,
            queues=[depths[name] for name in o.queues],
            models=[(m, depths.get(m.queue)) for m in o.models],
        )
        for o in overviews
    ]
    return {"panels": panels, "activity_chart": _chart_data(overviews)}
