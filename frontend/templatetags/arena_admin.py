"""Template tags of the operators' admin pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone

from frontend.admin_views import arena_overview_context

register = template.Library()


@register.inclusion_tag("admin/arena_overview.html")
def arena_overview() -> dict[str, Any]:
    """The per-arena overview on the admin index. The admin's own index view renders that
    page, and its context cannot be extended without replacing the admin site, so the index
    template asks for the overview here."""
    return arena_overview_context()


@register.filter
def percent(value: float | None) -> str:
    """A share as a percentage: one decimal below 10 % (0.4 %, not 0 %), whole ones above."""
    if value is None:
        return "\N{EN DASH}"
    shown = value * 100
    return f"{shown:.1f} %" if shown < 10 else f"{shown:.0f} %"


@register.filter
def age(value: datetime | None) -> str:
    """How long ago, in its largest unit only: "just now", "12 min", "3 h", "2 d"."""
    if value is None:
        return "never"
    seconds = max(0, int((timezone.now() - value).total_seconds()))
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds // 60} min"
