"""Fill the asset cache: every (model, prompt, seed) of the chosen arenas gets a ready output.

Built-in generators run in a local process pool (pure CPU functions; the parent stores the
results), other backends go to their Celery queues.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from arena.models import Arena, Asset, AssetStatus, GenerativeModel, ModerationState, Prompt
from arena.services import asset_claim, asset_fail, asset_request, assets_enqueue
from workers.backends import run_builtin
from workers.generation import asset_store_generated, generation_request_for
from workers.generators import GeneratedFile
from workers.media import InvalidMedia


@dataclass
class PregenerateSummary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    queued: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PregeneratePlan:
    todo: list[Asset]
    skipped: int


def pregenerate_plan(
    *,
    arenas: Iterable[Arena],
    model_slugs: list[str] | None,
    prompts: int | None,
    seeds: int,
    retry_failed: bool,
) -> PregeneratePlan:
    """The pending assets to generate (created as rows if missing); ready/running ones are skipped."""
    todo: dict[int, Asset] = {}
    skipped = 0
    for arena in arenas:
        models = GenerativeModel.objects.filter(arenas=arena, is_active=True)
        if model_slugs:
            models = models.filter(slug__in=model_slugs)
        prompt_qs = Prompt.objects.filter(
            prompt_set_id=arena.prompt_set_id, moderation_state=ModerationState.APPROVED
        ).order_by("id")
        prompt_list = list(prompt_qs[:prompts] if prompts else prompt_qs)
        for model in models:
            for prompt in prompt_list:
                for seed in range(seeds):
                    asset, _ = asset_request(model=model, prompt=prompt, seed=seed)
                    if asset.status == AssetStatus.FAILED and retry_failed:
                        Asset.objects.filter(pk=asset.pk).update(
                            status=AssetStatus.PENDING, error=""
                        )
                        asset.status = AssetStatus.PENDING
                    if asset.status == AssetStatus.PENDING:
                        todo[asset.pk] = asset
                    else:
                        skipped += 1
    return PregeneratePlan(todo=list(todo.values()), skipped=skipped)


def pregenerate_run(
    *,
    plan: PregeneratePlan,
    jobs: int,
    via_queue: bool,
    progress: Callable[[int], object] | None = None,
) -> PregenerateSummary:
    summary = PregenerateSummary(skipped=plan.skipped)
    tick = progress or (lambda n: None)
    local = [a for a in plan.todo if not via_queue and a.model.backend == "builtin"]
    remote = [a for a in plan.todo if via_queue or a.model.backend != "builtin"]
    summary.queued = assets_enqueue(assets=remote)
    tick(len(remote))
    if not local:
        return summary
    # "spawn": children import only the pure generator modules, never Django or its DB connection.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context) as pool:
        futures: list[tuple[Asset, Future[tuple[GeneratedFile, int]]]] = []
        for asset in local:
            if not asset_claim(asset_id=asset.pk):
                summary.skipped += 1
                tick(1)
                continue
            futures.append((asset, pool.submit(run_builtin, generation_request_for(asset))))
        for asset, future in futures:
            try:
                output, elapsed_ms = future.result()
                asset_store_generated(asset=asset, output=output, generation_ms=elapsed_ms)
            except (InvalidMedia, ValueError, OSError) as exc:
                asset_fail(asset_id=asset.pk, error=f"{type(exc).__name__}: {exc}")
                summary.failed += 1
                summary.errors.append(f"{asset.model.name} / {asset.prompt.text[:40]}: {exc}")
            else:
                summary.done += 1
            tick(1)
    return summary
