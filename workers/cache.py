"""The asset cache ("museum"): keep enough ready outputs that battles start instantly.

Every active arena wants ``outputs_per_prompt`` ready outputs for each (active model, approved
prompt). A top-up creates the missing rows and sends their jobs, oldest prompts first, within
each model's budgets:

- ``max_in_flight``: pending (sent) + running outputs of the model at any time;
- ``daily_budget``: jobs started for the model since midnight UTC.

A pending row is sent again only when its job was never sent or was sent longer ago than
``GENERATION_RESEND_AFTER_S`` (a lost message); the claim makes a duplicate delivery harmless.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from arena.models import (
    MEDIA_TYPE_BY_FORMAT,
    Arena,
    Asset,
    AssetStatus,
    GenerativeModel,
    ModerationState,
    Prompt,
)
from arena.services import assets_enqueue


@dataclass
class TopUpSummary:
    created: int = 0
    queued: int = 0
    over_budget: int = 0
    arenas: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _budget_left(models: list[GenerativeModel], now: datetime) -> dict[int, int]:
    """How many more jobs each model may have sent right now (a large number means no limit)."""
    unlimited = 10**9
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    counts = {
        row["model_id"]: row
        for row in Asset.objects.filter(model__in=models)
        .values("model_id")
        .annotate(
            in_flight=Count(
                "pk",
                filter=Q(status=AssetStatus.RUNNING)
                | Q(status=AssetStatus.PENDING, enqueued_at__isnull=False),
            ),
            today=Count("pk", filter=Q(enqueued_at__gte=midnight)),
        )
    }
    left: dict[int, int] = {}
    for model in models:
        row = counts.get(model.pk, {"in_flight": 0, "today": 0})
        flight = model.max_in_flight - row["in_flight"] if model.max_in_flight else unlimited
        daily = model.daily_budget - row["today"] if model.daily_budget else unlimited
        left[model.pk] = max(0, min(flight, daily))
    return left


def cache_top_up(*, arenas: list[Arena] | None = None, now: datetime | None = None) -> TopUpSummary:
    now = now or timezone.now()
    summary = TopUpSummary()
    for arena in arenas if arenas is not None else Arena.objects.filter(is_active=True):
        summary.arenas += 1
        _top_up_arena(arena=arena, now=now, summary=summary)
    return summary


def _top_up_arena(*, arena: Arena, now: datetime, summary: TopUpSummary) -> None:
    """Create and send the arena's missing outputs, within each model's budget."""
    models = list(GenerativeModel.objects.filter(arenas=arena, is_active=True).order_by("pk"))
    prompts = list(
        Prompt.objects.filter(
            prompt_set_id=arena.prompt_set_id, moderation_state=ModerationState.APPROVED
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not models or not prompts:
        return
    to_create, to_send = _top_up_plan(
        arena=arena, models=models, prompts=prompts, now=now, summary=summary
    )
    created = Asset.objects.bulk_create(to_create, ignore_conflicts=True)
    summary.created += len(created)
    # bulk_create with ignore_conflicts gives no ids on every backend: read them back.
    keys = {(a.model_id, a.prompt_id, a.seed) for a in to_create}
    new_ids = [
        a.pk
        for a in Asset.objects.filter(
            model__in=models,
            prompt_id__in=prompts,
            status=AssetStatus.PENDING,
            enqueued_at=None,
        ).only("pk", "model_id", "prompt_id", "seed")
        if (a.model_id, a.prompt_id, a.seed) in keys
    ]
    ids = new_ids + to_send
    summary.queued += assets_enqueue(
        assets=Asset.objects.filter(pk__in=ids).select_related("model")
    )


def _top_up_plan(
    *,
    arena: Arena,
    models: list[GenerativeModel],
    prompts: list[int],
    now: datetime,
    summary: TopUpSummary,
) -> tuple[list[Asset], list[int]]:
    """The assets to create and the ids of pending ones to send again (lost jobs)."""
    resend_before = now - timedelta(seconds=settings.GENERATION_RESEND_AFTER_S)
    existing: dict[tuple[int, int, int], Asset] = {
        (a.model_id, a.prompt_id, a.seed): a
        for a in Asset.objects.filter(model__in=models, prompt_id__in=prompts).only(
            "pk", "model_id", "prompt_id", "seed", "status", "enqueued_at"
        )
    }
    budget = _budget_left(models, now)
    to_create: list[Asset] = []
    to_send: dict[int, list[int]] = defaultdict(list)
    for prompt_id in prompts:
        for model in models:
            for seed in range(arena.outputs_per_prompt):
                asset = existing.get((model.pk, prompt_id, seed))
                if asset is not None and asset.status != AssetStatus.PENDING:
                    continue  # ready, running, or failed (an admin retries failures)
                if asset is not None and asset.enqueued_at and asset.enqueued_at > resend_before:
                    continue  # sent recently: its job is on the way
                if budget[model.pk] <= 0:
                    summary.over_budget += 1
                    continue
                budget[model.pk] -= 1
                if asset is None:
                    fmt = model.primary_format
                    to_create.append(
                        Asset(
                            model=model,
                            prompt_id=prompt_id,
                            seed=seed,
                            fmt=fmt,
                            media_type=MEDIA_TYPE_BY_FORMAT[fmt],
                        )
                    )
                else:
                    to_send[model.pk].append(asset.pk)
    return to_create, [pk for pks in to_send.values() for pk in pks]
