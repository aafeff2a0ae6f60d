"""Generate one asset: claim the row, call the backend, validate and strip the file, store it."""

from __future__ import annotations

import logging
import time

from arena.models import Asset
from arena.services import asset_claim, asset_fail, asset_store
from workers.backends import BackendConfigError, GenerationRequest, backend_get
from workers.generators import GeneratedFile
from workers.media import InvalidMedia, strip_metadata, validate

log = logging.getLogger(__name__)


def generation_request_for(asset: Asset) -> GenerationRequest:
    prompt = asset.prompt
    conditioning = None
    if prompt.conditioning_image:
        with prompt.conditioning_image.open("rb") as handle:
            conditioning = handle.read()
    return GenerationRequest(
        fmt=asset.fmt,
        prompt=prompt.text,
        seed=asset.seed,
        config=dict(asset.model.backend_config or {}),
        conditioning_image=conditioning,
    )


def asset_store_generated(*, asset: Asset, output: GeneratedFile, generation_ms: int) -> Asset:
    """Strip identifying metadata, validate, and store a backend's output (raises InvalidMedia)."""
    data = strip_metadata(output.data, output.extension)
    info = validate(data, output.extension)
    return asset_store(
        asset=asset,
        data=data,
        fmt=output.extension,
        width=info.width,
        height=info.height,
        duration_s=info.duration_s,
        generation_ms=generation_ms,
    )


def asset_generate(*, asset_id: int) -> str:
    """Run one generation job; idempotent: a second delivery of the same job does nothing.

    Returns ``"ready"``, ``"failed"`` or ``"skipped"`` (another worker holds or finished it).
    """
    if not asset_claim(asset_id=asset_id):
        return "skipped"
    asset = Asset.objects.select_related("model", "prompt").get(pk=asset_id)
    started = time.perf_counter()
    try:
        backend = backend_get(asset.model.backend)
        output = backend.generate(generation_request_for(asset))
        asset_store_generated(
            asset=asset, output=output, generation_ms=int((time.perf_counter() - started) * 1000)
        )
    except (BackendConfigError, InvalidMedia, ValueError, OSError) as exc:
        log.warning("generation of asset %s failed: %s", asset_id, exc)
        asset_fail(asset_id=asset_id, error=f"{type(exc).__name__}: {exc}")
        return "failed"
    return "ready"
