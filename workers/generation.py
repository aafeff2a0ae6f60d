"""Generate one asset: claim the row, call the backend, validate and strip the file, store it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from arena.models import Arena, Asset
from arena.services import asset_claim, asset_fail, asset_heartbeat, asset_release, asset_store
from workers.backends import (
    BackendConfigError,
    BackendError,
    GenerationRequest,
    TransientBackendError,
    backend_get,
)
from workers.generators import GeneratedFile
from workers.media import InvalidMedia, normalise_format, strip_metadata, validate
from workers.normalise import Profile, normalise

log = logging.getLogger(__name__)


def generation_request_for(asset: Asset) -> GenerationRequest:
    prompt = asset.prompt
    conditioning = None
    if prompt.conditioning_image:
        with prompt.conditioning_image.open("rb") as handle:
            conditioning = handle.read()
    return GenerationRequest(
        fmt=asset.original_fmt or asset.fmt,
        prompt=prompt.text,
        seed=asset.seed,
        config=dict(asset.model.backend_config or {}),
        conditioning_image=conditioning,
    )


def media_profile_for(asset: Asset) -> Profile:
    """The normalisation profile of the arena the asset's prompt belongs to (the first by
    position when several arenas share a prompt set); raises ValueError for a bad profile."""
    arena = (
        Arena.objects.filter(prompt_set_id=asset.prompt.prompt_set_id)
        .order_by("position", "pk")
        .only("media_profile", "slug")
        .first()
    )
    try:
        return Profile.from_config(arena.media_profile if arena else None)
    except ValueError as exc:
        raise ValueError(f"arena {arena.slug if arena else '?'}: {exc}") from None


def asset_normalise_stored(asset: Asset, *, again: bool = False) -> bool:
    """Bring a stored output into its arena's served form, keeping the model's own file as the
    original: one stored before normalising existed, or with ``again`` any (after the arena's
    media profile changed; normalised afresh from the kept original). False when there is
    nothing to do; raises InvalidMedia or ValueError, leaving the asset as it was."""
    if not asset.file or (asset.original_fmt and not again):
        return False
    source = asset.original if asset.original else asset.file
    original_fmt = asset.original_fmt or asset.fmt
    with source.open("rb") as handle:
        original = handle.read()
    old_names = {name for name in (asset.file.name, asset.original.name) if name}
    _store_normalised(asset, original, original_fmt, generation_ms=asset.generation_ms or 0)
    for name in old_names - {asset.file.name, asset.original.name}:
        asset.file.storage.delete(name)  # replaced: the model's bytes live on as the original
    return True


def asset_store_generated(*, asset: Asset, output: GeneratedFile, generation_ms: int) -> Asset:
    """Strip identifying metadata, validate, normalise to the arena's one served form and store
    both files: battles serve the normalised one, the reveal links the original (raises
    InvalidMedia or ValueError)."""
    original_fmt = normalise_format(output.extension)
    original = strip_metadata(output.data, original_fmt)
    validate(original, original_fmt)
    return _store_normalised(asset, original, original_fmt, generation_ms=generation_ms)


def _store_normalised(
    asset: Asset, original: bytes, original_fmt: str, *, generation_ms: int
) -> Asset:
    """Normalise ``original`` to the arena's served form, validate it and store both files."""
    data, fmt = normalise(original, original_fmt, media_profile_for(asset))
    info = validate(data, fmt)
    return asset_store(
        asset=asset,
        data=data,
        fmt=fmt,
        original=original,
        original_fmt=original_fmt,
        width=info.width,
        height=info.height,
        duration_s=info.duration_s,
        generation_ms=generation_ms,
    )


@contextmanager
def _heartbeat(*, asset_id: int, worker: str) -> Iterator[None]:
    """Beat for the running job every ``GENERATION_HEARTBEAT_S`` until it ends.

    The reaper takes a running row back once its beats stop (a killed worker, a lost machine),
    so recovery takes about a heartbeat timeout rather than the longest a job may run. The first
    beat is the claim itself; a job shorter than one interval never touches the database here.
    """
    stop = threading.Event()
    interval = settings.GENERATION_HEARTBEAT_S

    def beat() -> None:
        try:
            while not stop.wait(interval):
                if not asset_heartbeat(asset_id=asset_id, worker=worker):
                    return  # reaped or finished: nothing left to keep alive
        except Exception:  # a beat must never break the job; the reaper copes with silence
            log.warning("heartbeat of asset %s failed", asset_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"heartbeat-{asset_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def asset_generate(*, asset_id: int, worker: str = "", final_attempt: bool = True) -> str:
    """Run one generation job; idempotent: a second delivery of the same job does nothing.

    Returns ``"ready"``, ``"failed"`` or ``"skipped"`` (another worker holds or finished it).
    A ``TransientBackendError`` gives the row back (pending) and propagates so that the task can
    retry it, unless this was the ``final_attempt``: then the asset ends as failed.
    """
    if not asset_claim(asset_id=asset_id, worker=worker):
        return "skipped"
    asset = Asset.objects.select_related("model", "prompt").get(pk=asset_id)
    started = time.perf_counter()
    try:
        backend = backend_get(asset.model.backend)
        # The beats cover storing too: validating and writing a long video takes a while.
        with _heartbeat(asset_id=asset_id, worker=worker):
            output = backend.generate(generation_request_for(asset))
            asset_store_generated(
                asset=asset,
                output=output,
                generation_ms=int((time.perf_counter() - started) * 1000),
            )
    except TransientBackendError as exc:
        message = f"{type(exc).__name__}: {exc}"
        if final_attempt:
            log.warning("generation of asset %s failed after retries: %s", asset_id, exc)
            asset_fail(asset_id=asset_id, error=f"gave up after retries; last error: {message}")
            return "failed"
        log.info("generation of asset %s hit a transient error, will retry: %s", asset_id, exc)
        asset_release(asset_id=asset_id, error=message)
        raise
    except (BackendConfigError, BackendError, InvalidMedia, ValueError, OSError) as exc:
        log.warning("generation of asset %s failed: %s", asset_id, exc)
        asset_fail(asset_id=asset_id, error=f"{type(exc).__name__}: {exc}")
        return "failed"
    return "ready"
